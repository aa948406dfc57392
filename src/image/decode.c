/* decode.c: JPEG and PNG from memory to RGBA, with stb_image (Debian's libstb-dev).
 *
 * Checks come before pixels: formats we do not read are named by their magic, and every
 * file passes gcam__image_validate() (validate.c: lengths, tables, dimensions, a memory
 * budget) before stb reads a byte of it; stb 2.27 has open bugs that crafted files reach. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "gcam.h"
#include "image.h"

/* Every buffer stb allocates starts zeroed: where a corrupt stream makes its reads run ahead
 * of its writes (nothings/stb #1535), they read zeros, the same on every run, never what an
 * earlier image left in the heap.
 *
 * stb grows only two buffers, by doubling: the PNG's compressed stream (at most twice the
 * file) and its inflated rows, which start at the size the declared image needs and, for a
 * zlib bomb (image data inflating far past the image), grew until the stream ended (a 33 KB
 * file: 64 MiB). This decode's growth is capped at twice what the image (or the file) needs;
 * past it the realloc fails and stb stops. Per thread: decodes may run in parallel. */
static _Thread_local uint64_t gcam__stbi_grow_cap = UINT64_MAX;
static _Thread_local int gcam__stbi_refused;
static void *gcam__stbi_realloc(void *p, size_t old_size, size_t new_size) {
  if (new_size > gcam__stbi_grow_cap) {
    gcam__stbi_refused = 1;
    return NULL;
  }
  uint8_t *q = realloc(p, new_size ? new_size : 1);
  if (q && new_size > old_size) memset(q + old_size, 0, new_size - old_size);
  return q;
}
#define STBI_MALLOC(sz) calloc(1, (sz) ? (sz) : 1)
#define STBI_REALLOC(p, newsz) realloc(p, newsz) /* unused: stb calls the _SIZED form */
#define STBI_REALLOC_SIZED(p, oldsz, newsz) gcam__stbi_realloc(p, oldsz, newsz)
#define STBI_FREE(p) free(p)

#include "stb_image_impl.h"

/* The name of an image format we recognise but do not decode, or NULL. */
static const char *gcam__unsupported_format(const uint8_t *p, size_t n) {
  if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) return "GIF";
  if (n >= 4 && memcmp(p, "8BPS", 4) == 0) return "PSD";
  if (n >= 2 && memcmp(p, "BM", 2) == 0) return "BMP";
  if (n >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0)) return "TIFF";
  if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) return "WebP";
  if (n >= 2 && memcmp(p, "#?", 2) == 0) return "HDR"; /* "#?RADIANCE", "#?RGBE" */
  return NULL;
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
  const char *other = gcam__unsupported_format(bytes, size);
  if (other)
    return gcam__error(GCAM_STATUS_UNSUPPORTED_FORMAT,
                       "image is %s: only JPEG and PNG are supported", other);
  if (size > (size_t)INT_MAX)
    return gcam__error(GCAM_STATUS_IMAGE_TOO_LARGE, "image file of %zu bytes is over 2 GiB",
                       size);

  uint32_t hw = 0, hh = 0;
  uint64_t inflated = 0;
  gcam_status st = gcam__image_validate(bytes, size, max_pixels, &hw, &hh, &inflated);
  if (st) return st;
  int w = 0, h = 0, comp = 0;
  if (!stbi_info_from_memory(bytes, (int)size, &w, &h, &comp))
    return gcam__error(GCAM_STATUS_IMAGE_DECODE, "not a readable JPEG or PNG (%s)",
                       stbi_failure_reason());
  if ((uint32_t)w != hw || (uint32_t)h != hh)
    return gcam__error(GCAM_STATUS_IMAGE_DECODE, "header says %ux%u, stb reads %dx%d", hw, hh,
                       w, h);
  const int is_jpeg = bytes[0] == 0xFF;

  int dw = 0, dh = 0;
  gcam__stbi_grow_cap = is_jpeg ? UINT64_MAX : 2 * (inflated > size ? inflated : size) + (64 << 10);
  gcam__stbi_refused = 0;
  uint8_t *pixels = stbi_load_from_memory(bytes, (int)size, &dw, &dh, &comp, 4);
  gcam__stbi_grow_cap = UINT64_MAX;
  if (!pixels && gcam__stbi_refused)
    return gcam__error(GCAM_STATUS_IMAGE_DECODE,
                       "PNG is corrupt: its image data inflates to far more than the %llu "
                       "bytes a %ux%u image needs (a zlib bomb?)",
                       (unsigned long long)inflated, hw, hh);
  if (!pixels) {
    /* stb writes a PNG chunk's raw type bytes into some reasons: printable ASCII only */
    const char *why = stbi_failure_reason();
    char reason[64] = "corrupt or truncated";
    if (why && *why) {
      size_t k = 0;
      for (; why[k] && k + 1 < sizeof reason; k++)
        reason[k] = why[k] >= 0x20 && why[k] < 0x7f ? why[k] : '?';
      reason[k] = 0;
    }
    return gcam__error(GCAM_STATUS_IMAGE_DECODE, "%s could not be decoded (%s)",
                       is_jpeg ? "JPEG" : "PNG", reason);
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
