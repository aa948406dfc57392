/* test_image.c: image decode, resize, colormap, blend and preprocessing against OpenCV 4.6.
 *
 * The oracle outputs come from tests/make_image_fixtures.py (cv2, numpy) and live in
 * tests/fixtures/image/, listed in cases.txt. Sources that are cheap to regenerate (u8 images,
 * float maps) are not stored: the xorshift32 generators below repeat the script's.
 * Tolerances: bicubic u8 within 1 level (and we report, and require, the share of identical
 * pixels); bilinear f32 within 1e-5; colormap, heat->u8, blend, PNG decode exact; JPEG within
 * the level difference measured between stb_image and libjpeg-turbo (JPEG_TOLERANCE).
 * Run from the repository root (ctest does). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "gcam.h"
#include "image/image.h"
#include "test.h"

#define FIXTURES "tests/fixtures/image/"
/* stb_image vs libjpeg-turbo (cv2.imdecode): their IDCT, chroma upsampling and YCbCr rounding
 * differ slightly. Measured: max 2 levels on the fixtures here; max 3 (at most 44 of 921600
 * values, 93-95% identical) on a 640x480 noisy synthetic photo at quality 50..100, 4:2:0.
 * A systematic error (a channel swap, a colour-conversion shift) would break the share of
 * identical values long before the maximum. */
#define JPEG_TOLERANCE 3
#define JPEG_MIN_IDENTICAL 0.90
/* bicubic: share of pixels that must be identical to cv2, not just within 1 level */
#define CUBIC_MIN_IDENTICAL 1.0

/* ---- fixtures ------------------------------------------------------------------------- */

static uint8_t *read_all(const char *name, size_t *size) {
  char path[512];
  snprintf(path, sizeof path, FIXTURES "%s", name);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  uint8_t *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? 2 * cap : 65536;
      uint8_t *nb = realloc(buf, cap);
      if (!nb) break;
      buf = nb;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  fclose(f);
  *size = n;
  return buf;
}

/* A reference u8 array (h, w, ch): raw .u8, or a PNG whose channels are the array's. PNG refs
 * go through gcam_image_decode, which the decode section checks against cv2 on raw refs. */
static uint8_t *load_u8(const char *name, int32_t w, int32_t h, int32_t ch) {
  size_t size = 0, want = (size_t)w * h * ch;
  uint8_t *data = read_all(name, &size);
  if (!data) return NULL;
  if (strstr(name, ".png")) {
    uint8_t *rgba = NULL;
    int32_t pw = 0, ph = 0;
    gcam_status st = gcam_image_decode(data, size, 0, &rgba, &pw, &ph);
    free(data);
    if (st != GCAM_STATUS_OK || pw != w || ph != h) {
      gcam_image_free(rgba);
      return NULL;
    }
    uint8_t *out = malloc(want);
    for (size_t i = 0; i < (size_t)w * h; i++)
      for (int32_t c = 0; c < ch; c++) out[i * ch + c] = rgba[i * 4 + c];
    gcam_image_free(rgba);
    return out;
  }
  if (size != want) {
    free(data);
    return NULL;
  }
  return data;
}

static float *load_f32(const char *name, size_t n) {
  size_t size = 0;
  uint8_t *data = read_all(name, &size);
  if (!data || size != n * sizeof(float)) {
    free(data);
    return NULL;
  }
  return (float *)data; /* little-endian on every target we build for */
}

static unsigned xorshift(unsigned s) {
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  return s;
}

/* the top byte of each state, as make_image_fixtures.xorshift_bytes */
static uint8_t *gen_u8(unsigned seed, size_t n) {
  uint8_t *out = malloc(n);
  for (size_t i = 0; i < n; i++) {
    seed = xorshift(seed);
    out[i] = (uint8_t)(seed >> 24);
  }
  return out;
}

static float *gen_f32(unsigned seed, size_t n) {
  float *out = malloc(n * sizeof(float));
  test_fill_uniform(out, n, &seed, 0.f, 1.f);
  return out;
}

static int compare_u8(const uint8_t *a, const uint8_t *b, size_t n, size_t *identical) {
  int worst = 0;
  size_t same = 0;
  for (size_t i = 0; i < n; i++) {
    int d = abs((int)a[i] - (int)b[i]);
    if (d > worst) worst = d;
    same += d == 0;
  }
  *identical = same;
  return worst;
}

/* ---- resize ----------------------------------------------------------------------------- */

static size_t cubic_total, cubic_same;

static void test_cubic(const char *ref_name, int32_t sw, int32_t sh, int32_t ch, int32_t dw,
                       int32_t dh, unsigned seed) {
  size_t n_src = (size_t)sw * sh * ch, n_dst = (size_t)dw * dh * ch;
  uint8_t *src = gen_u8(seed, n_src);
  uint8_t *ref = load_u8(ref_name, dw, dh, ch);
  CHECK(ref != NULL, "%s: cannot load the reference", ref_name);
  if (!ref) {
    free(src);
    return;
  }
  /* the same pixels once tightly packed and once with padded rows */
  const int32_t stride = sw * ch + 5;
  uint8_t *padded = malloc((size_t)stride * sh);
  memset(padded, 0xAB, (size_t)stride * sh);
  for (int32_t y = 0; y < sh; y++)
    memcpy(padded + (size_t)y * stride, src + (size_t)y * sw * ch, (size_t)sw * ch);
  uint8_t *out = malloc(n_dst), *out2 = malloc(n_dst);
  gcam__resize_bicubic_u8(out, dw, dh, src, sw, sh, sw * ch, ch);
  gcam__resize_bicubic_u8(out2, dw, dh, padded, sw, sh, stride, ch);
  size_t same = 0, same2 = 0;
  int worst = compare_u8(out, ref, n_dst, &same);
  compare_u8(out2, out, n_dst, &same2);
  printf("  cubic %-28s max diff %d, identical %zu/%zu (%.4f%%)\n", ref_name, worst, same, n_dst,
         100.0 * same / n_dst);
  CHECK(worst <= 1, "%s: max diff %d > 1 grey level", ref_name, worst);
  CHECK(same >= CUBIC_MIN_IDENTICAL * n_dst, "%s: only %zu of %zu identical", ref_name, same,
        n_dst);
  CHECK(same2 == n_dst, "%s: padded stride changes the output", ref_name);
  cubic_total += n_dst;
  cubic_same += same;
  free(src);
  free(padded);
  free(ref);
  free(out);
  free(out2);
}

static void test_linear(const char *ref_name, int32_t sw, int32_t sh, int32_t dw, int32_t dh,
                        unsigned seed) {
  size_t n = (size_t)dw * dh;
  float *src = gen_f32(seed, (size_t)sw * sh);
  float *ref = load_f32(ref_name, n);
  CHECK(ref != NULL, "%s: cannot load the reference", ref_name);
  if (ref) {
    float *out = malloc(n * sizeof(float));
    gcam__resize_bilinear_f32(out, dw, dh, src, sw, sh);
    double err = test_max_abs_err(out, ref, n);
    size_t exact = 0;
    for (size_t i = 0; i < n; i++) exact += out[i] == ref[i];
    printf("  linear %-27s max abs err %.3g, bit-identical %zu/%zu\n", ref_name, err, exact, n);
    CHECK(err <= 1e-5, "%s: max abs err %g > 1e-5", ref_name, err);
    free(out);
  }
  free(src);
  free(ref);
}

/* ---- colors ----------------------------------------------------------------------------- */

static void test_jet(const char *ref_name) {
  uint8_t *ref = load_u8(ref_name, 256, 1, 3);
  CHECK(ref != NULL, "%s: cannot load", ref_name);
  if (!ref) return;
  uint8_t gray[256], rgb[768];
  for (int i = 0; i < 256; i++) gray[i] = (uint8_t)(255 - i); /* any order works */
  gcam__colormap_jet(rgb, gray, 256);
  int bad = 0;
  for (int i = 0; i < 256; i++)
    for (int c = 0; c < 3; c++)
      if (rgb[3 * i + c] != ref[3 * gray[i] + c]) {
        if (bad < 5)
          fprintf(stderr, "  jet[%d][%d] = %d, cv2 %d\n", gray[i], c, rgb[3 * i + c],
                  ref[3 * gray[i] + c]);
        bad++;
      }
  printf("  jet: %d of 768 entries differ from cv2.COLORMAP_JET\n", bad);
  CHECK(bad == 0, "JET: %d entries differ", bad);
  free(ref);
}

static void test_heat(const char *in_name, const char *ref_name, int32_t n) {
  float *in = load_f32(in_name, (size_t)n);
  uint8_t *ref = load_u8(ref_name, n, 1, 1);
  CHECK(in && ref, "heat fixtures missing");
  if (in && ref) {
    int bad = 0;
    for (int32_t i = 0; i < n; i++) bad += gcam__heat_to_u8(in[i]) != ref[i];
    printf("  heat_to_u8: %d of %d differ from np.uint8(255 * heat)\n", bad, (int)n);
    CHECK(bad == 0, "heat_to_u8: %d differ", bad);
  }
  CHECK(gcam__heat_to_u8(-0.5f) == 0 && gcam__heat_to_u8(2.f) == 255 &&
            gcam__heat_to_u8(NAN) == 0,
        "heat_to_u8 out of range values");
  free(in);
  free(ref);
}

static void test_blend(const char *ref_name) {
  uint8_t *ref = load_u8(ref_name, 256, 256, 1);
  CHECK(ref != NULL, "%s: cannot load", ref_name);
  if (!ref) return;
  int bad = 0;
  for (int a = 0; a < 256; a++)
    for (int b = 0; b < 256; b++) {
      uint8_t v = gcam__blend_u8((uint8_t)a, 0.4f, (uint8_t)b, 0.9f);
      if (v != ref[a * 256 + b]) {
        if (bad < 5) fprintf(stderr, "  blend(%d, %d) = %d, cv2 %d\n", a, b, v, ref[a * 256 + b]);
        bad++;
      }
    }
  printf("  blend: %d of 65536 (colored, image) pairs differ from cv2.addWeighted\n", bad);
  CHECK(bad == 0, "blend: %d pairs differ", bad);
  free(ref);
}

static void test_overlay(const char *ref_name, const char *heat_name, const char *gray_name,
                         const char *map_name, int32_t w, int32_t h, int32_t mw, int32_t mh,
                         unsigned seed) {
  size_t n = (size_t)w * h;
  uint8_t *img = gen_u8(seed, n * 4);
  float *map = load_f32(map_name, (size_t)mw * mh);
  uint8_t *ref = load_u8(ref_name, w, h, 4), *ref_heat = load_u8(heat_name, w, h, 4);
  uint8_t *ref_gray = load_u8(gray_name, w, h, 1);
  CHECK(map && ref && ref_heat && ref_gray, "%s: fixtures missing", ref_name);
  if (map && ref && ref_heat && ref_gray) {
    /* the input with padded rows: the output is tightly packed */
    const int32_t stride = w * 4 + 12;
    uint8_t *padded = calloc((size_t)stride * h, 1);
    for (int32_t y = 0; y < h; y++)
      memcpy(padded + (size_t)y * stride, img + (size_t)y * w * 4, (size_t)w * 4);
    uint8_t *out = malloc(n * 4);
    gcam_overlay_params op = gcam_overlay_default_params();
    CHECK(op.heat_weight == 0.4f && op.image_weight == 0.9f && op.colormap == GCAM_COLORMAP_JET,
          "default overlay params");
    gcam_status st = gcam_overlay_rgba(out, padded, w, h, stride, map, mw, mh, &op);
    CHECK(st == GCAM_STATUS_OK, "overlay: %s", gcam_last_error());
    size_t same = 0;
    int worst = compare_u8(out, ref, n * 4, &same);
    printf("  overlay %-26s max diff %d, identical %zu/%zu (%.4f%%)\n", ref_name, worst, same,
           n * 4, 100.0 * same / (n * 4));
    CHECK(same == n * 4, "%s: %zu of %zu bytes differ (max %d)", ref_name, n * 4 - same, n * 4,
          worst);

    st = gcam_heatmap_rgba(out, w, h, map, mw, mh, GCAM_COLORMAP_JET);
    CHECK(st == GCAM_STATUS_OK, "heatmap: %s", gcam_last_error());
    worst = compare_u8(out, ref_heat, n * 4, &same);
    printf("  heatmap %-26s max diff %d, identical %zu/%zu\n", heat_name, worst, same, n * 4);
    CHECK(same == n * 4, "%s: %zu bytes differ", heat_name, n * 4 - same);

    st = gcam_heatmap_rgba(out, w, h, map, mw, mh, GCAM_COLORMAP_GRAY);
    CHECK(st == GCAM_STATUS_OK, "gray heatmap: %s", gcam_last_error());
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
      bad += out[4 * i] != ref_gray[i] || out[4 * i + 1] != ref_gray[i] ||
             out[4 * i + 2] != ref_gray[i] || out[4 * i + 3] != 255;
    printf("  heatmap gray %-21s %zu of %zu pixels differ from np.uint8(255 * heat)\n",
           gray_name, bad, n);
    CHECK(bad == 0, "%s: %zu pixels differ", gray_name, bad);
    free(padded);
    free(out);
  }
  free(img);
  free(map);
  free(ref);
  free(ref_heat);
  free(ref_gray);
}

static void test_preprocess(const char *ref_name, gcam_preprocess mode, int32_t w, int32_t h,
                            int32_t ch, unsigned seed) {
  size_t n = (size_t)w * h * 3;
  uint8_t *img = gen_u8(seed, (size_t)w * h * ch);
  float *ref = load_f32(ref_name, n);
  CHECK(ref != NULL, "%s: cannot load", ref_name);
  if (ref) {
    const float caffe_mean[3] = {103.939f, 116.779f, 123.68f};
    const float torch_mean[3] = {0.485f, 0.456f, 0.406f}, torch_std[3] = {0.229f, 0.224f, 0.225f};
    float *out = malloc(n * sizeof(float));
    if (mode == GCAM_PREPROCESS_CAFFE)
      gcam__preprocess(out, img, h, w, ch, mode, caffe_mean, NULL);
    else
      gcam__preprocess(out, img, h, w, ch, mode, torch_mean, torch_std);
    double err = test_max_abs_err(out, ref, n);
    printf("  preprocess %-23s max abs err %.3g\n", ref_name, err);
    CHECK(err <= 1e-5, "%s: max abs err %g", ref_name, err);
    free(out);
  }
  free(img);
  free(ref);
}

/* ---- decode ----------------------------------------------------------------------------- */

static void test_decode(const char *file, const char *ref_name, int32_t w, int32_t h,
                        int tolerance) {
  size_t size = 0;
  uint8_t *data = read_all(file, &size);
  uint8_t *ref = load_u8(ref_name, w, h, 4);
  CHECK(data && ref, "%s: fixtures missing", file);
  if (data && ref) {
    uint8_t *rgba = NULL;
    int32_t dw = 0, dh = 0;
    gcam_status st = gcam_image_decode(data, size, GCAM_MAX_IMAGE_PIXELS, &rgba, &dw, &dh);
    CHECK(st == GCAM_STATUS_OK, "%s: %s (%s)", file, gcam_status_string(st), gcam_last_error());
    CHECK(dw == w && dh == h, "%s: %dx%d, cv2 %dx%d", file, (int)dw, (int)dh, (int)w, (int)h);
    if (st == GCAM_STATUS_OK && dw == w && dh == h) {
      size_t same = 0, n = (size_t)w * h * 4;
      int worst = compare_u8(rgba, ref, n, &same);
      printf("  decode %-27s max diff %d vs cv2.imdecode, identical %zu/%zu\n", file, worst, same,
             n);
      CHECK(worst <= tolerance, "%s: max diff %d > %d", file, worst, tolerance);
      CHECK(same >= (tolerance ? JPEG_MIN_IDENTICAL : 1.0) * n, "%s: only %zu of %zu identical",
            file, same, n);
    }
    gcam_image_free(rgba);
  }
  free(data);
  free(ref);
}

static void test_refuse(const char *file, const char *expect) {
  size_t size = 0;
  uint8_t *data = read_all(file, &size);
  CHECK(data != NULL, "%s: missing", file);
  if (!data) return;
  gcam_status want = strcmp(expect, "unsupported") == 0 ? GCAM_STATUS_UNSUPPORTED_FORMAT
                     : strcmp(expect, "too_large") == 0 ? GCAM_STATUS_IMAGE_TOO_LARGE
                                                        : GCAM_STATUS_IMAGE_DECODE;
  uint8_t *rgba = (uint8_t *)data; /* must be reset to NULL on failure */
  int32_t w = -1, h = -1;
  gcam__error(GCAM_STATUS_OK, "%s", "");
  gcam_status st = gcam_image_decode(data, size, GCAM_MAX_IMAGE_PIXELS, &rgba, &w, &h);
  printf("  refuse %-27s %s: %s\n", file, gcam_status_string(st), gcam_last_error());
  CHECK(st == want, "%s: %s, expected %s", file, gcam_status_string(st), gcam_status_string(want));
  CHECK(rgba == NULL && w == 0 && h == 0, "%s: outputs not cleared on failure", file);
  CHECK(gcam_last_error()[0] != '\0', "%s: no message", file);
  if (st == GCAM_STATUS_OK) gcam_image_free(rgba);
  free(data);
}

static void test_decode_limits(void) {
  size_t size = 0;
  uint8_t *data = read_all("tall_1x5000.png", &size);
  CHECK(data != NULL, "tall_1x5000.png missing");
  if (!data) return;
  uint8_t *rgba = NULL;
  int32_t w, h;
  CHECK(gcam_image_decode(data, size, 4999, &rgba, &w, &h) == GCAM_STATUS_IMAGE_TOO_LARGE,
        "max_pixels 4999 must refuse 1x5000");
  CHECK(gcam_image_decode(data, size, 5000, &rgba, &w, &h) == GCAM_STATUS_OK && w == 1 &&
            h == 5000,
        "max_pixels 5000 must accept 1x5000");
  gcam_image_free(rgba);
  /* 0 means the library's cap, GCAM_MAX_IMAGE_PIXELS */
  CHECK(gcam_image_decode(data, size, 0, &rgba, &w, &h) == GCAM_STATUS_OK, "max_pixels 0");
  gcam_image_free(rgba);
  CHECK(gcam_image_decode(NULL, size, 0, &rgba, &w, &h) == GCAM_STATUS_INVALID_ARGUMENT,
        "NULL data");
  CHECK(gcam_image_decode(data, size, 0, NULL, &w, &h) == GCAM_STATUS_INVALID_ARGUMENT,
        "NULL rgba");
  CHECK(gcam_image_decode(data, size, 0, &rgba, NULL, &h) == GCAM_STATUS_INVALID_ARGUMENT,
        "NULL width");
  CHECK(gcam_image_decode(data, size, 0, &rgba, &w, NULL) == GCAM_STATUS_INVALID_ARGUMENT,
        "NULL height");
  CHECK(gcam_image_decode(data, 0, 0, &rgba, &w, &h) == GCAM_STATUS_IMAGE_DECODE, "empty");
  gcam_image_free(NULL);
  free(data);
}

/* ---- argument checks of the public functions -------------------------------------------- */

#define EXPECT_INVALID(call, what)                                                   \
  do {                                                                               \
    gcam__error(GCAM_STATUS_OK, "%s", "");                                           \
    gcam_status st_ = (call);                                                        \
    CHECK(st_ == GCAM_STATUS_INVALID_ARGUMENT, "%s: got %s", what, gcam_status_string(st_)); \
    CHECK(gcam_last_error()[0] != '\0', "%s: no message", what);                     \
  } while (0)

static void test_arguments(void) {
  uint8_t img[4 * 4 * 4] = {0}, out[4 * 4 * 4];
  float map[4] = {0.f, 0.25f, 0.5f, 1.f};
  gcam_overlay_params op = gcam_overlay_default_params();
  const int32_t big = INT32_MAX;
  EXPECT_INVALID(gcam_overlay_rgba(NULL, img, 4, 4, 16, map, 2, 2, &op), "overlay out NULL");
  EXPECT_INVALID(gcam_overlay_rgba(out, NULL, 4, 4, 16, map, 2, 2, &op), "overlay rgba NULL");
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 4, 4, 16, NULL, 2, 2, &op), "overlay map NULL");
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 4, 4, 16, map, 2, 2, NULL), "overlay params NULL");
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 0, 4, 16, map, 2, 2, &op), "overlay width 0");
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 4, -1, 16, map, 2, 2, &op), "overlay height -1");
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 4, 4, 15, map, 2, 2, &op), "overlay stride < w*4");
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 4, 4, -16, map, 2, 2, &op), "overlay stride < 0");
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 4, 4, 16, map, 0, 2, &op), "overlay map width 0");
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 4, 4, 16, map, 2, -3, &op), "overlay map height<0");
  EXPECT_INVALID(gcam_overlay_rgba(out, img, big, big, big, map, 2, 2, &op), "overlay overflow");
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 4, 4, 16, map, big, big, &op), "overlay map size");
  /* over the pixel cap with a consistent stride: refused before any allocation */
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 8193, 8192, 8193 * 4, map, 2, 2, &op),
                 "overlay over GCAM_MAX_IMAGE_PIXELS");
  gcam_overlay_params bad = op;
  bad.colormap = (gcam_colormap)7;
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 4, 4, 16, map, 2, 2, &bad), "overlay colormap");
  bad = op;
  bad.heat_weight = NAN;
  EXPECT_INVALID(gcam_overlay_rgba(out, img, 4, 4, 16, map, 2, 2, &bad), "overlay NaN weight");
  EXPECT_INVALID(gcam_heatmap_rgba(NULL, 4, 4, map, 2, 2, GCAM_COLORMAP_JET), "heatmap out NULL");
  EXPECT_INVALID(gcam_heatmap_rgba(out, 4, 4, NULL, 2, 2, GCAM_COLORMAP_JET), "heatmap map NULL");
  EXPECT_INVALID(gcam_heatmap_rgba(out, 0, 4, map, 2, 2, GCAM_COLORMAP_JET), "heatmap width 0");
  EXPECT_INVALID(gcam_heatmap_rgba(out, 4, 4, map, 2, 0, GCAM_COLORMAP_JET), "heatmap map h 0");
  EXPECT_INVALID(gcam_heatmap_rgba(out, big, big, map, 2, 2, GCAM_COLORMAP_JET),
                 "heatmap overflow");
  EXPECT_INVALID(gcam_heatmap_rgba(out, 4, 4, map, 2, 2, (gcam_colormap)-1), "heatmap colormap");
  /* and a valid call works: the 2x2 map's corner pixel is copied exactly by the resize */
  CHECK(gcam_heatmap_rgba(out, 4, 4, map, 2, 2, GCAM_COLORMAP_GRAY) == GCAM_STATUS_OK &&
            out[0] == 0 && out[4 * 15] == 255 && out[3] == 255,
        "small gray heatmap");
}

int main(void) {
  FILE *f = fopen(FIXTURES "cases.txt", "r");
  CHECK(f != NULL, "cannot open " FIXTURES "cases.txt (run from the repository root)");
  if (!f) TEST_MAIN_END();
  char line[1024];
  int cases = 0;
  while (fgets(line, sizeof line, f)) {
    char kind[32], a[256], b[256], c[256], d[256];
    int i[7];
    unsigned seed;
    if (line[0] == '#' || sscanf(line, "%31s", kind) != 1) continue;
    cases++;
    if (!strcmp(kind, "cubic") &&
        sscanf(line, "%*s %255s %d %d %d %d %d %u", a, &i[0], &i[1], &i[2], &i[3], &i[4],
               &seed) == 7)
      test_cubic(a, i[0], i[1], i[2], i[3], i[4], seed);
    else if (!strcmp(kind, "linear") &&
             sscanf(line, "%*s %255s %d %d %d %d %u", a, &i[0], &i[1], &i[2], &i[3], &seed) == 6)
      test_linear(a, i[0], i[1], i[2], i[3], seed);
    else if (!strcmp(kind, "jet") && sscanf(line, "%*s %255s", a) == 1)
      test_jet(a);
    else if (!strcmp(kind, "heat") && sscanf(line, "%*s %255s %255s %d", a, b, &i[0]) == 3)
      test_heat(a, b, i[0]);
    else if (!strcmp(kind, "blend") && sscanf(line, "%*s %255s", a) == 1)
      test_blend(a);
    else if (!strcmp(kind, "overlay") &&
             sscanf(line, "%*s %255s %255s %255s %255s %d %d %d %d %u", a, b, c, d, &i[0], &i[1],
                    &i[2], &i[3], &seed) == 9)
      test_overlay(a, b, c, d, i[0], i[1], i[2], i[3], seed);
    else if ((!strcmp(kind, "pre_caffe") || !strcmp(kind, "pre_torch")) &&
             sscanf(line, "%*s %255s %d %d %d %u", a, &i[0], &i[1], &i[2], &seed) == 5)
      test_preprocess(a, kind[4] == 'c' ? GCAM_PREPROCESS_CAFFE : GCAM_PREPROCESS_TORCH, i[0],
                      i[1], i[2], seed);
    else if ((!strcmp(kind, "decode_png") || !strcmp(kind, "decode_jpeg")) &&
             sscanf(line, "%*s %255s %255s %d %d", a, b, &i[0], &i[1]) == 4)
      test_decode(a, b, i[0], i[1], kind[7] == 'p' ? 0 : JPEG_TOLERANCE);
    else if (!strcmp(kind, "refuse") && sscanf(line, "%*s %255s %255s", a, b) == 2)
      test_refuse(a, b);
    else
      CHECK(0, "cases.txt: cannot parse: %s", line);
  }
  fclose(f);
  CHECK(cases >= 50, "cases.txt lists only %d cases", cases);
  if (cubic_total)
    printf("cubic overall: %zu of %zu values identical to cv2 (%.5f%%)\n", cubic_same,
           cubic_total, 100.0 * cubic_same / cubic_total);
  test_decode_limits();
  test_arguments();
  TEST_MAIN_END();
}
