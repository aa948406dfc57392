/* validate.c: a structural check of a JPEG or PNG before stb_image sees it.
 *
 * stb_image 2.27 (Debian's) has open bugs that a crafted file reaches: DHT counts that sum
 * past 256 write out of bounds (nothings/stb #1289, #1291), a progressive scan that uses a
 * Huffman table never defined reads uninitialized memory (#1535), and a PNG chunk length is
 * trusted before the bytes behind it are (a 25 KB file made stb reserve 2 GB). We keep stb
 * (the design names it) but only hand it files whose every length lies inside the file,
 * whose tables exist before they are used, and whose declared size fits a memory budget.
 * The walk reads each byte at most a few times and allocates nothing. */
#include <stdint.h>
#include <string.h>

#include "error.h"
#include "image.h"

static uint32_t gcam__be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }
static uint32_t gcam__be32(const uint8_t *p) { return gcam__be16(p) << 16 | gcam__be16(p + 2); }

static gcam_status gcam__too_large(uint64_t w, uint64_t h, int64_t max_pixels) {
  return gcam__error(GCAM_STATUS_IMAGE_TOO_LARGE,
                     "image is %llux%llu = %llu pixels, over the limit of %lld",
                     (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
                     (long long)max_pixels);
}

static gcam_status gcam__over_budget(const char *what, uint64_t bytes) {
  return gcam__error(GCAM_STATUS_IMAGE_TOO_LARGE,
                     "decoding this %s needs about %llu MiB, over the budget of %llu MiB", what,
                     (unsigned long long)(bytes >> 20),
                     (unsigned long long)(GCAM__IMAGE_DECODE_BUDGET >> 20));
}

/* ---- JPEG ------------------------------------------------------------------------------ */

typedef struct gcam__jpeg {
  int have_sof, progressive, n_scans;
  uint32_t w, h, n_comp, hmax, vmax;
  uint8_t comp_id[4], comp_h[4], comp_v[4];
  uint8_t have_dc[4], have_ac[4]; /* Huffman tables defined so far, by id */
} gcam__jpeg;

#define GCAM__JPEG_BAD(...) gcam__error(GCAM_STATUS_IMAGE_DECODE, "JPEG is corrupt: " __VA_ARGS__)

/* DHT: each table's 16 counts sum to at most 256 codes, and its values lie in the segment */
static gcam_status gcam__jpeg_dht(gcam__jpeg *j, const uint8_t *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (len - i < 17) return GCAM__JPEG_BAD("a Huffman table is cut short");
    const uint32_t tc = p[i] >> 4, th = p[i] & 15;
    if (tc > 1 || th > 3) return GCAM__JPEG_BAD("Huffman table class %u id %u", tc, th);
    uint32_t n = 0;
    for (int k = 0; k < 16; k++) n += p[i + 1 + k];
    if (n > 256) return GCAM__JPEG_BAD("a Huffman table has %u codes (at most 256)", n);
    /* the codes of each length must fit in that many bits: the canonical code never
     * exceeds 2^len (stb builds its lookup tables on this) */
    uint32_t code = 0;
    for (int k = 0; k < 16; k++) {
      code += p[i + 1 + k];
      if (code > (2u << k)) return GCAM__JPEG_BAD("a Huffman table is over-subscribed");
      code <<= 1;
    }
    if (len - i - 17 < n) return GCAM__JPEG_BAD("a Huffman table runs past its segment");
    (tc ? j->have_ac : j->have_dc)[th] = 1;
    i += 17 + n;
  }
  return GCAM_STATUS_OK;
}

static gcam_status gcam__jpeg_sof(gcam__jpeg *j, uint8_t marker, const uint8_t *p, size_t len,
                                  int64_t max_pixels) {
  if (j->have_sof) return GCAM__JPEG_BAD("two frame headers");
  /* stb reads baseline (C0), extended (C1) and progressive (C2) Huffman JPEGs only */
  if (marker != 0xC0 && marker != 0xC1 && marker != 0xC2)
    return gcam__error(GCAM_STATUS_IMAGE_DECODE,
                       "JPEG uses coding process SOF%d (lossless, hierarchical or arithmetic): "
                       "only baseline and progressive JPEGs are supported",
                       marker - 0xC0);
  if (len < 6) return GCAM__JPEG_BAD("frame header too short");
  j->have_sof = 1, j->progressive = marker == 0xC2;
  j->h = gcam__be16(p + 1), j->w = gcam__be16(p + 3), j->n_comp = p[5];
  if (p[0] != 8) return GCAM__JPEG_BAD("%u-bit samples (only 8-bit is supported)", p[0]);
  if (j->w == 0 || j->h == 0) return GCAM__JPEG_BAD("frame of %ux%u pixels", j->w, j->h);
  if ((uint64_t)j->w * j->h > (uint64_t)max_pixels) return gcam__too_large(j->w, j->h, max_pixels);
  if (j->n_comp != 1 && j->n_comp != 3 && j->n_comp != 4)
    return GCAM__JPEG_BAD("%u components (1, 3 or 4)", j->n_comp);
  if (len != 6 + 3 * (size_t)j->n_comp) return GCAM__JPEG_BAD("frame header length %zu", len);
  for (uint32_t c = 0; c < j->n_comp; c++) {
    const uint8_t *q = p + 6 + 3 * c;
    j->comp_id[c] = q[0], j->comp_h[c] = q[1] >> 4, j->comp_v[c] = q[1] & 15;
    if (j->comp_h[c] < 1 || j->comp_h[c] > 4 || j->comp_v[c] < 1 || j->comp_v[c] > 4 || q[2] > 3)
      return GCAM__JPEG_BAD("component %u: sampling %ux%u, quantization table %u", c,
                            j->comp_h[c], j->comp_v[c], q[2]);
    if (j->comp_h[c] > j->hmax) j->hmax = j->comp_h[c];
    if (j->comp_v[c] > j->vmax) j->vmax = j->comp_v[c];
  }
  /* what stb allocates: per component its padded plane (+ 64 int16 per block when
   * progressive) and a line buffer, then the RGBA result */
  const uint64_t mcu_w = 8 * (uint64_t)j->hmax, mcu_h = 8 * (uint64_t)j->vmax;
  const uint64_t pw = (j->w + mcu_w - 1) / mcu_w * mcu_w, ph = (j->h + mcu_h - 1) / mcu_h * mcu_h;
  const uint64_t need = (uint64_t)j->n_comp * pw * ph * (j->progressive ? 3 : 1) +
                        (uint64_t)j->n_comp * (pw + 16) + (uint64_t)j->w * j->h * 4;
  if (need > GCAM__IMAGE_DECODE_BUDGET) return gcam__over_budget("JPEG", need);
  return GCAM_STATUS_OK;
}

/* SOS: the components are the frame's, the spectral selection is sane, and every Huffman
 * table the scan decodes with has been defined (#1535: progressive scans included) */
static gcam_status gcam__jpeg_sos(gcam__jpeg *j, const uint8_t *p, size_t len) {
  if (!j->have_sof) return GCAM__JPEG_BAD("a scan before the frame header");
  if (len < 1) return GCAM__JPEG_BAD("scan header too short");
  const uint32_t ns = p[0];
  if (ns < 1 || ns > j->n_comp || len != 4 + 2 * (size_t)ns)
    return GCAM__JPEG_BAD("scan of %u components, header length %zu", ns, len);
  const uint32_t ss = p[1 + 2 * ns], se = p[2 + 2 * ns], ah = p[3 + 2 * ns] >> 4,
                 al = p[3 + 2 * ns] & 15;
  if (j->progressive) {
    if (ss > se || se > 63 || (ss == 0 && se != 0) || (ss > 0 && ns != 1) || ah > 13 || al > 13)
      return GCAM__JPEG_BAD("progressive scan Ss=%u Se=%u Ah=%u Al=%u (%u components)", ss, se,
                            ah, al, ns);
  }
  for (uint32_t k = 0; k < ns; k++) {
    const uint8_t id = p[1 + 2 * k], td = p[2 + 2 * k] >> 4, ta = p[2 + 2 * k] & 15;
    uint32_t c = 0;
    while (c < j->n_comp && j->comp_id[c] != id) c++;
    if (c == j->n_comp) return GCAM__JPEG_BAD("a scan names component %u, not in the frame", id);
    if (td > 3 || ta > 3) return GCAM__JPEG_BAD("Huffman table ids %u/%u", td, ta);
    /* which tables this scan decodes with: baseline both; progressive DC first scans the DC
     * table, AC scans (first and refinement) the AC table; DC refinement reads raw bits */
    const int uses_dc = !j->progressive || (ss == 0 && ah == 0);
    const int uses_ac = !j->progressive ? 1 : ss > 0;
    if ((uses_dc && !j->have_dc[td]) || (uses_ac && !j->have_ac[ta]))
      return GCAM__JPEG_BAD("scan %d uses Huffman table %s%u, which is not defined",
                            j->n_scans, uses_dc && !j->have_dc[td] ? "DC" : "AC",
                            uses_dc && !j->have_dc[td] ? (unsigned)td : (unsigned)ta);
  }
  j->n_scans++;
  return GCAM_STATUS_OK;
}

/* index just past the entropy-coded data that starts at i: up to the next marker that is
 * neither a stuffed FF 00 nor a restart marker */
static size_t gcam__jpeg_skip_scan(const uint8_t *p, size_t n, size_t i) {
  while (i + 1 < n) {
    if (p[i] != 0xFF) {
      i++;
      continue;
    }
    const uint8_t m = p[i + 1];
    if (m == 0x00 || (m >= 0xD0 && m <= 0xD7)) {
      i += 2;
      continue;
    }
    if (m == 0xFF) { /* fill byte before a marker */
      i++;
      continue;
    }
    return i;
  }
  return n;
}

static gcam_status gcam__validate_jpeg(const uint8_t *p, size_t n, int64_t max_pixels,
                                       uint32_t *w, uint32_t *h) {
  gcam__jpeg j;
  memset(&j, 0, sizeof j);
  size_t i = 2;
  for (;;) {
    if (i + 2 > n) {
      if (j.n_scans) return gcam__error(GCAM_STATUS_IMAGE_DECODE,
                                        "JPEG is truncated (no end-of-image marker)");
      return GCAM__JPEG_BAD("the file ends before any image data");
    }
    if (p[i] != 0xFF) return GCAM__JPEG_BAD("no marker at byte %zu", i);
    const uint8_t m = p[i + 1];
    if (m == 0xFF) { /* fill */
      i++;
      continue;
    }
    if (m == 0xD9) break; /* EOI */
    if (m == 0xD8 || m == 0x00 || (m >= 0xD0 && m <= 0xD7))
      return GCAM__JPEG_BAD("marker FF %02X out of place at byte %zu", m, i);
    if (m == 0x01) { /* TEM: no length */
      i += 2;
      continue;
    }
    if (i + 4 > n) return gcam__error(GCAM_STATUS_IMAGE_DECODE, "JPEG is truncated in a header");
    const size_t len = gcam__be16(p + i + 2);
    if (len < 2 || len > n - i - 2)
      return gcam__error(GCAM_STATUS_IMAGE_DECODE,
                         "JPEG is truncated or corrupt: a segment of %zu bytes at byte %zu runs "
                         "past the end of the %zu-byte file",
                         len, i, n);
    const uint8_t *seg = p + i + 4;
    const size_t body = len - 2;
    gcam_status st = GCAM_STATUS_OK;
    if (m == 0xC4) st = gcam__jpeg_dht(&j, seg, body);
    else if (m >= 0xC0 && m <= 0xCF && m != 0xC8 && m != 0xCC)
      st = gcam__jpeg_sof(&j, m, seg, body, max_pixels);
    else if (m == 0xDA) st = gcam__jpeg_sos(&j, seg, body);
    else if (m == 0xDB) { /* DQT: 64 or 128 bytes per table */
      for (size_t k = 0; k < body && !st;) {
        const size_t t = (seg[k] >> 4) ? 129 : 65;
        if ((seg[k] & 15) > 3 || (seg[k] >> 4) > 1 || body - k < t)
          st = GCAM__JPEG_BAD("quantization table");
        k += t;
      }
    } else if (m == 0xDD && body != 2)
      st = GCAM__JPEG_BAD("restart interval segment of %zu bytes", body);
    if (st) return st;
    i += 2 + len;
    if (m == 0xDA) i = gcam__jpeg_skip_scan(p, n, i);
  }
  if (!j.have_sof || j.n_scans == 0) return GCAM__JPEG_BAD("no frame or no scan before the end");
  *w = j.w, *h = j.h;
  return GCAM_STATUS_OK;
}

/* ---- PNG ------------------------------------------------------------------------------- */

#define GCAM__PNG_BAD(...) gcam__error(GCAM_STATUS_IMAGE_DECODE, "PNG is corrupt: " __VA_ARGS__)

/* A chunk type as printable text: four ASCII letters, or its bytes in hex (a crafted name
 * must never reach a message, a log or a terminal raw). */
static void gcam__png_type_name(char out[20], const uint8_t *t) {
  int letters = 1;
  for (int k = 0; k < 4; k++)
    letters &= (t[k] >= 'A' && t[k] <= 'Z') || (t[k] >= 'a' && t[k] <= 'z');
  if (letters) {
    memcpy(out, t, 4);
    out[4] = 0;
    return;
  }
  static const char hex[] = "0123456789ABCDEF";
  char *o = out;
  memcpy(o, "0x", 2), o += 2;
  for (int k = 0; k < 4; k++) *o++ = hex[t[k] >> 4], *o++ = hex[t[k] & 15];
  *o = 0;
}

/* Bytes of zlib output a w x h image of `bits` bits per pixel needs: one filter byte and the
 * packed samples per row, summed over the seven Adam7 passes when interlaced. */
static uint64_t gcam__png_raw_bytes(uint64_t w, uint64_t h, uint64_t bits, int interlaced) {
  if (!interlaced) return h * (1 + (w * bits + 7) / 8);
  static const uint8_t x0[7] = {0, 4, 0, 2, 0, 1, 0}, y0[7] = {0, 0, 4, 0, 2, 0, 1};
  static const uint8_t dx[7] = {8, 8, 4, 4, 2, 2, 1}, dy[7] = {8, 8, 8, 4, 4, 2, 2};
  uint64_t total = 0;
  for (int k = 0; k < 7; k++) {
    const uint64_t pw = w > x0[k] ? (w - x0[k] + dx[k] - 1) / dx[k] : 0;
    const uint64_t ph = h > y0[k] ? (h - y0[k] + dy[k] - 1) / dy[k] : 0;
    if (pw && ph) total += ph * (1 + (pw * bits + 7) / 8);
  }
  return total;
}

static gcam_status gcam__validate_png(const uint8_t *p, size_t n, int64_t max_pixels,
                                      uint32_t *w, uint32_t *h, uint64_t *inflated) {
  size_t i = 8;
  uint64_t idat = 0, raw = 0;
  int seen_ihdr = 0, seen_plte = 0, color = 0, idat_done = 0;
  char name[20];
  for (;;) {
    if (n - i < 12)
      return gcam__error(GCAM_STATUS_IMAGE_DECODE, "PNG is truncated (no IEND chunk)");
    const uint64_t len = gcam__be32(p + i);
    const uint8_t *type = p + i + 4, *data = p + i + 8;
    gcam__png_type_name(name, type);
    if (len > 0x7fffffffu || len > n - i - 12)
      return gcam__error(GCAM_STATUS_IMAGE_DECODE,
                         "PNG is truncated or corrupt: chunk %s at byte %zu claims %llu bytes, "
                         "the file has %zu after it",
                         name, i, (unsigned long long)len, n - i - 12);
    if (name[0] == '0') return GCAM__PNG_BAD("chunk type %s at byte %zu is not a name", name, i);
    const int is_idat = memcmp(type, "IDAT", 4) == 0;
    if (!seen_ihdr && memcmp(type, "IHDR", 4) != 0)
      return GCAM__PNG_BAD("the first chunk is %s, not IHDR", name);
    if (memcmp(type, "IHDR", 4) == 0) {
      if (seen_ihdr || len != 13) return GCAM__PNG_BAD("IHDR repeated or of %llu bytes",
                                                       (unsigned long long)len);
      seen_ihdr = 1;
      *w = gcam__be32(data), *h = gcam__be32(data + 4);
      const uint32_t depth = data[8];
      color = data[9];
      if (*w == 0 || *h == 0 || *w > 0x7fffffffu || *h > 0x7fffffffu)
        return GCAM__PNG_BAD("image of %ux%u pixels", *w, *h);
      if ((uint64_t)*w * *h > (uint64_t)max_pixels) return gcam__too_large(*w, *h, max_pixels);
      static const uint8_t channels[7] = {1, 0, 3, 1, 2, 0, 4};
      const int depth_ok = depth == 8 || (depth == 16 && color != 3) ||
                           ((depth == 1 || depth == 2 || depth == 4) && (color == 0 || color == 3));
      if (color > 6 || channels[color] == 0 || !depth_ok || data[10] || data[11] || data[12] > 1)
        return GCAM__PNG_BAD("IHDR depth %u, color type %d, methods %u/%u/%u", depth, color,
                             data[10], data[11], data[12]);
      raw = gcam__png_raw_bytes(*w, *h, (uint64_t)depth * channels[color], data[12]);
      /* what stb allocates: the compressed stream (grown by doubling), its inflated rows
       * (at most twice them: decode.c refuses more), the unfiltered image at up to 4
       * channels x 2 bytes, and the RGBA result */
      const uint64_t px = (uint64_t)*w * *h, out_n = channels[color] < 4 ? channels[color] + 1 : 4;
      const uint64_t need = 2 * (uint64_t)n + 2 * raw + px * out_n * (depth == 16 ? 2 : 1) + px * 4;
      if (need > GCAM__IMAGE_DECODE_BUDGET) return gcam__over_budget("PNG", need);
    } else if (memcmp(type, "PLTE", 4) == 0) {
      if (len == 0 || len % 3 || len > 768 || idat) return GCAM__PNG_BAD("PLTE of %llu bytes",
                                                                         (unsigned long long)len);
      seen_plte = 1;
    } else if (is_idat) {
      if (idat_done) return GCAM__PNG_BAD("IDAT chunks are not consecutive");
      if (color == 3 && !seen_plte) return GCAM__PNG_BAD("a palette image without PLTE");
      idat += len;
    } else if (memcmp(type, "IEND", 4) == 0) {
      break;
    } else if (memcmp(type, "CgBI", 4) == 0) {
      return gcam__error(GCAM_STATUS_UNSUPPORTED_FORMAT,
                         "PNG is Apple's CgBI variant: only standard PNGs are supported");
    } else if (!(type[0] & 0x20)) { /* an unknown critical chunk: a decoder must refuse */
      return GCAM__PNG_BAD("unknown critical chunk %s", name);
    }
    if (idat && !is_idat) idat_done = 1;
    i += 12 + (size_t)len;
  }
  if (!idat) return GCAM__PNG_BAD("no image data (IDAT)");
  *inflated = raw;
  /* No sane deflate stream is twice its output (stored blocks cost 5 bytes per 64 KB, the
   * longest Huffman code is 15 bits for 8): more compressed data than that is not this
   * image's, and stb would reserve memory for all of it */
  const uint64_t most = 2 * raw + 1024;
  if (idat > most)
    return GCAM__PNG_BAD("%llu bytes of image data for an image that needs at most %llu",
                         (unsigned long long)idat, (unsigned long long)most);
  return GCAM_STATUS_OK;
}

gcam_status gcam__image_validate(const uint8_t *p, size_t n, int64_t max_pixels, uint32_t *w,
                                 uint32_t *h, uint64_t *inflated) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  *w = *h = 0;
  *inflated = 0;
  if (n >= 8 && memcmp(p, png_sig, 8) == 0)
    return gcam__validate_png(p, n, max_pixels, w, h, inflated);
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
    return gcam__validate_jpeg(p, n, max_pixels, w, h);
  return gcam__error(GCAM_STATUS_IMAGE_DECODE, "not a JPEG or PNG (unknown signature)");
}
