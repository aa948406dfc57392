/* fuzz_overlay.c: libFuzzer harness of gcam_overlay_rgba and gcam_heatmap_rgba with random
 * image and map sizes (including zero, negative and over the limit), strides, weights
 * (including NaN and infinities), colormaps and map values. Valid arguments must give OK
 * and write exactly width*height*4 bytes; invalid ones a status with a message. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gcam.h"

typedef struct {
  const uint8_t *p;
  size_t n;
} fuzz_bytes;

static uint32_t fuzz_take(fuzz_bytes *b, int nbytes) {
  uint32_t v = 0;
  for (int i = 0; i < nbytes; i++) {
    v = v << 8 | (b->n ? *b->p : 0);
    if (b->n) b->p++, b->n--;
  }
  return v;
}

static float fuzz_float(fuzz_bytes *b) {
  uint32_t u = fuzz_take(b, 4);
  float f;
  memcpy(&f, &u, 4);
  return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_bytes b = {data, size};
  /* sizes: mostly small, sometimes at or past the edges */
  int32_t w = (int32_t)(fuzz_take(&b, 2) % 300) - 2, h = (int32_t)(fuzz_take(&b, 2) % 300) - 2;
  int32_t mw = (int32_t)(fuzz_take(&b, 1) % 40) - 1, mh = (int32_t)(fuzz_take(&b, 1) % 40) - 1;
  const uint32_t mode = fuzz_take(&b, 1);
  if (mode & 0x80) w = (int32_t)fuzz_take(&b, 4), h = (int32_t)fuzz_take(&b, 4); /* anything */
  const int64_t s64 = w > 0 ? (int64_t)w * 4 + (int64_t)(mode & 7) * 4 : 0;
  int32_t stride = s64 > INT32_MAX ? INT32_MAX : (int32_t)s64;
  if (mode & 0x40) stride = (int32_t)fuzz_take(&b, 4);
  gcam_overlay_params params = gcam_overlay_default_params();
  if (mode & 0x20) {
    params.heat_weight = fuzz_float(&b);
    params.image_weight = fuzz_float(&b);
  }
  params.colormap = (gcam_colormap)(mode & 0x10 ? (int32_t)fuzz_take(&b, 1) - 1 : (mode >> 3) & 1);

  /* buffers only as large as valid arguments need: an argument check that lets a wrong
   * size through then reads or writes past them, which ASan reports */
  const int sizes_ok = w > 0 && h > 0 && (int64_t)w * h <= 1 << 16 && stride >= 4 * (int64_t)w &&
                       (int64_t)stride * h <= 1 << 20 && mw > 0 && mh > 0;
  const size_t out_n = sizes_ok ? (size_t)w * h * 4 : 16;
  const size_t in_n = sizes_ok ? (size_t)stride * (h - 1) + (size_t)w * 4 : 16;
  const size_t map_n = mw > 0 && mh > 0 ? (size_t)mw * mh : 1;
  uint8_t *out = malloc(out_n), *img = malloc(in_n);
  float *map = malloc(map_n * sizeof(float));
  for (size_t i = 0; i < in_n; i++) img[i] = (uint8_t)fuzz_take(&b, 1);
  for (size_t i = 0; i < map_n; i++) {
    /* mostly [0,1], sometimes any float: NaN and out-of-range must be refused or clamped */
    uint32_t u = fuzz_take(&b, 1);
    map[i] = u & 0x80 ? fuzz_float(&b) : (float)u / 127.0f;
  }
  if (sizes_ok) {
    gcam_status st = gcam_overlay_rgba(out, img, w, h, stride, map, mw, mh, &params);
    if (st && strlen(gcam_last_error()) == 0) abort();
    st = gcam_heatmap_rgba(out, w, h, map, mw, mh, params.colormap);
    if (st && strlen(gcam_last_error()) == 0) abort();
  } else {
    /* invalid sizes: must be refused without touching the (too small) buffers */
    if ((w <= 0 || h <= 0 || mw <= 0 || mh <= 0 || stride < 4 * (int64_t)w || (int64_t)w * h > ((int64_t)1 << 26)) &&
        gcam_overlay_rgba(out, img, w, h, stride, map, mw, mh, &params) == GCAM_STATUS_OK)
      abort();
  }
  free(out);
  free(img);
  free(map);
  return 0;
}
