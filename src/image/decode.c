/* decode.c: JPEG and PNG from memory to RGBA, with stb_image (Debian's libstb-dev).
 *
 * Checks come before pixels: formats we do not read are named by their magic, and the
 * dimensions are read from the header and capped before stb allocates anything. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "gcam.h"

#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
/* stb declares static functions that STBI_ONLY_* leaves undefined; gcc reports those at the
 * end of the file, after a pop, so this one stays off for the (short) rest of this file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#endif
#include "stb_image.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* The name of an image format we recognise but do not decode, or NULL. */
static const char *unsupported_format(const uint8_t *p, size_t n) {
  if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) return "GIF";
  if (n >= 4 && memcmp(p, "8BPS", 4) == 0) return "PSD";
  if (n >= 2 && memcmp(p, "BM", 2) == 0) return "BMP";
  if (n >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0)) return "TIFF";
  if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) return "WebP";
  if (n >= 2 && memcmp(p, "#?", 2) == 0) return "HDR"; /* "#?RADIANCE", "#?RGBE" */
  return NULL;
}

static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t be32(const uint8_t *p) { return be16(p) << 16 | be16(p + 2); }

/* Width and height from a PNG's IHDR or a JPEG's start-of-frame, read here rather than by
 * stb so that a header claiming more pixels than stb itself would ever handle is still
 * answered "too large" rather than "undecodable". 0 when the header is not found. */
static int header_dimensions(const uint8_t *p, size_t n, uint32_t *w, uint32_t *h) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n >= 24 && memcmp(p, png_sig, 8) == 0 && memcmp(p + 12, "IHDR", 4) == 0) {
    *w = be32(p + 16);
    *h = be32(p + 20);
    return 1;
  }
  if (n < 4 || p[0] != 0xFF || p[1] != 0xD8) return 0;
  size_t i = 2;
  while (i + 4 <= n) {
    if (p[i] != 0xFF) return 0;
    const uint8_t m = p[i + 1];
    if (m == 0xFF) { /* fill byte */
      i++;
      continue;
    }
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) { /* markers without a length */
      i += 2;
      continue;
    }
    if (m == 0xDA || m == 0xD9) return 0; /* scan or end before any frame header */
    const size_t len = be16(p + i + 2);
    /* SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) */
    if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
      if (i + 9 > n || len < 7) return 0;
      *h = be16(p + i + 5);
      *w = be16(p + i + 7);
      return 1;
    }
    i += 2 + len;
  }
  return 0;
}

/* stb fills a JPEG that ends early with zeros and calls it a success; a complete file has
 * an EOI marker (FF D9) after its last start-of-scan (FF DA). Scan data cannot contain
 * either: an FF byte there is always stuffed as FF 00. */
static int jpeg_is_complete(const uint8_t *p, size_t n) {
  size_t last_sos = 0;
  int have_sos = 0;
  for (size_t i = 0; i + 1 < n; i++)
    if (p[i] == 0xFF && p[i + 1] == 0xDA) last_sos = i, have_sos = 1;
  if (!have_sos) return 0;
  for (size_t i = last_sos + 2; i + 1 < n; i++)
    if (p[i] == 0xFF && p[i + 1] == 0xD9) return 1;
  return 0;
}

gcam_status gcam_image_decode(const void *data, size_t size, int64_t max_pixels, uint8_t **rgba,
                              int32_t *width, int32_t *height) {
  if (!data || !rgba || !width || !height)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "image decode: NULL argument");
  *rgba = NULL;
  *width = *height = 0;
  if (max_pixels <= 0 || max_pixels > GCAM_MAX_IMAGE_PIXELS) max_pixels = GCAM_MAX_IMAGE_PIXELS;
  const uint8_t *bytes = data;
  if (size == 0) return gcam__error(GCAM_STATUS_IMAGE_DECODE, "image is empty (0 bytes)");
  const char *other = unsupported_format(bytes, size);
  if (other)
    return gcam__error(GCAM_STATUS_UNSUPPORTED_FORMAT,
                       "image is %s: only JPEG and PNG are supported", other);
  if (size > (size_t)INT_MAX)
    return gcam__error(GCAM_STATUS_IMAGE_TOO_LARGE, "image file of %zu bytes is over 2 GiB",
                       size);

  uint32_t hw = 0, hh = 0;
  if (header_dimensions(bytes, size, &hw, &hh) && (uint64_t)hw * hh > (uint64_t)max_pixels)
    return gcam__error(GCAM_STATUS_IMAGE_TOO_LARGE,
                       "image is %ux%u = %llu pixels, over the limit of %lld", (unsigned)hw,
                       (unsigned)hh, (unsigned long long)hw * hh, (long long)max_pixels);

  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(bytes, (int)size, &w, &h, &comp))
    return gcam__error(GCAM_STATUS_IMAGE_DECODE, "not a readable JPEG or PNG (%s)",
                       stbi_failure_reason());
  if (w <= 0 || h <= 0)
    return gcam__error(GCAM_STATUS_IMAGE_DECODE, "image has no pixels (%dx%d)", w, h);
  if ((int64_t)w * (int64_t)h > max_pixels)
    return gcam__error(GCAM_STATUS_IMAGE_TOO_LARGE,
                       "image is %dx%d = %lld pixels, over the limit of %lld", w, h,
                       (long long)w * h, (long long)max_pixels);
  const int is_jpeg = size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
  if (is_jpeg && !jpeg_is_complete(bytes, size))
    return gcam__error(GCAM_STATUS_IMAGE_DECODE, "JPEG is truncated (no end-of-image marker)");

  int dw = 0, dh = 0;
  uint8_t *pixels = stbi_load_from_memory(bytes, (int)size, &dw, &dh, &comp, 4);
  if (!pixels) {
    const char *why = stbi_failure_reason();
    return gcam__error(GCAM_STATUS_IMAGE_DECODE, "%s could not be decoded (%s)",
                       is_jpeg ? "JPEG" : "PNG", why && *why ? why : "corrupt or truncated");
  }
  if (dw != w || dh != h) { /* cannot happen with a sane decoder; never hand out a lie */
    stbi_image_free(pixels);
    return gcam__error(GCAM_STATUS_IMAGE_DECODE, "header says %dx%d, decoder gave %dx%d", w, h,
                       dw, dh);
  }
  *rgba = pixels;
  *width = dw;
  *height = dh;
  return GCAM_STATUS_OK;
}

void gcam_image_free(uint8_t *rgba) { stbi_image_free(rgba); }
