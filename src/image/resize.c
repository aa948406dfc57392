/* resize.c: cv2.resize reproduced bit for bit: INTER_CUBIC on u8 and INTER_LINEAR on f32.
 *
 * The numbers follow OpenCV 4.6's resizeGeneric_ (imgproc/src/resize.cpp), which is what
 * Keras-era Grad-CAM code calls:
 *   - source coordinate of destination pixel d: f = (float)((d + 0.5) * scale - 0.5) with
 *     scale = 1 / ((double)dst_size / src_size), computed in double, then rounded to float;
 *     s = floor(f), f -= s;
 *   - border: replicate, by clamping the source index;
 *   - cubic weights from a float polynomial with A = -0.75, and on u8 rounded to 11-bit
 *     fixed point (x 2048) per axis; the horizontal pass sums in int;
 *   - the vertical cubic pass on u8 has two arithmetics in OpenCV: its SIMD loop (used on the
 *     first (width * channels) rounded down to a multiple of 8 elements of every row) works in
 *     float and rounds half to even; the scalar tail works in fixed point and rounds half up.
 *     Both are reproduced, because they disagree on exact halves;
 *   - linear on f32: plain float, source index and weight clamped in x (not in y).
 * Every float operation is written in the order OpenCV evaluates it; FMA contraction must stay
 * off or the last bit changes. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdint.h>

#include "image/image.h"

#define RESIZE_COEF_BITS 11
#define RESIZE_COEF_SCALE (1 << RESIZE_COEF_BITS)
/* columns whose coefficients are kept on the stack at a time */
#define RESIZE_TILE 128
/* OpenCV's vertical SIMD loop covers whole groups of 8 u8 elements (one v_int16x8) */
#define RESIZE_SIMD_GROUP 8

static inline int32_t gcam__clamp_i32(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* OpenCV's cvRound on float: nearest, ties to even (SSE cvtss2si in the default mode) */
static inline int32_t gcam__round_even(float v) { return (int32_t)lrintf(v); }

static inline int16_t gcam__saturate_i16(int32_t v) {
  return (int16_t)(v < INT16_MIN ? INT16_MIN : (v > INT16_MAX ? INT16_MAX : v));
}

static inline uint8_t gcam__saturate_u8(int64_t v) { return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v)); }

/* 1 / (dst / src) in double, as cv::resize derives its scale from the sizes */
static double gcam__resize_scale(int32_t dst_size, int32_t src_size) {
  double inv_scale = (double)dst_size / (double)src_size;
  return 1.0 / inv_scale;
}

/* source position of destination index d: integer part in *s, fraction returned */
static inline float gcam__source_coord(int32_t d, double scale, int32_t *s) {
  float f = (float)(((double)d + 0.5) * scale - 0.5);
  float fl = floorf(f);
  *s = (int32_t)fl;
  return f - fl;
}

/* Cubic convolution weights (Keys, A = -0.75) for fraction x, in OpenCV's float order. */
static void gcam__cubic_weights(float x, float w[4]) {
  const float A = -0.75f;
  w[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
  w[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
  w[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
  w[3] = 1.f - w[0] - w[1] - w[2];
}

static void gcam__cubic_weights_fixed(float x, int16_t w[4]) {
  float wf[4];
  gcam__cubic_weights(x, wf);
  for (int k = 0; k < 4; k++) w[k] = gcam__saturate_i16(gcam__round_even(wf[k] * RESIZE_COEF_SCALE));
}

void gcam__resize_bicubic_u8(uint8_t *dst, int32_t dw, int32_t dh, const uint8_t *src,
                             int32_t sw, int32_t sh, int32_t src_stride, int32_t ch) {
  const double scale_x = gcam__resize_scale(dw, sw), scale_y = gcam__resize_scale(dh, sh);
  const int64_t row_elems = (int64_t)dw * ch;
  const int64_t simd_end = row_elems - row_elems % RESIZE_SIMD_GROUP;
  const float beta_scale = 1.f / (RESIZE_COEF_SCALE * RESIZE_COEF_SCALE);
  int32_t tap_x[RESIZE_TILE][4]; /* clamped source columns, in elements (times ch) */
  int16_t alpha[RESIZE_TILE][4];

  for (int32_t x0 = 0; x0 < dw; x0 += RESIZE_TILE) {
    const int32_t n = dw - x0 < RESIZE_TILE ? dw - x0 : RESIZE_TILE;
    for (int32_t i = 0; i < n; i++) {
      int32_t sx;
      float fx = gcam__source_coord(x0 + i, scale_x, &sx);
      gcam__cubic_weights_fixed(fx, alpha[i]);
      for (int k = 0; k < 4; k++) tap_x[i][k] = gcam__clamp_i32(sx - 1 + k, 0, sw - 1) * ch;
    }
    for (int32_t dy = 0; dy < dh; dy++) {
      int32_t sy;
      int16_t beta[4];
      float fy = gcam__source_coord(dy, scale_y, &sy);
      gcam__cubic_weights_fixed(fy, beta);
      const float bf[4] = {beta[0] * beta_scale, beta[1] * beta_scale, beta[2] * beta_scale,
                           beta[3] * beta_scale};
      const uint8_t *rows[4];
      for (int k = 0; k < 4; k++)
        rows[k] = src + (size_t)gcam__clamp_i32(sy - 1 + k, 0, sh - 1) * (size_t)src_stride;
      uint8_t *out = dst + ((size_t)dy * (size_t)dw + (size_t)x0) * (size_t)ch;

      for (int32_t i = 0; i < n; i++) {
        const int32_t *tx = tap_x[i];
        const int16_t *a = alpha[i];
        for (int32_t c = 0; c < ch; c++) {
          int32_t h[4]; /* horizontal pass of the 4 rows, x 2048 */
          for (int k = 0; k < 4; k++) {
            const uint8_t *r = rows[k] + c;
            h[k] = r[tx[0]] * a[0] + r[tx[1]] * a[1] + r[tx[2]] * a[2] + r[tx[3]] * a[3];
          }
          const int64_t elem = ((int64_t)x0 + i) * ch + c;
          if (elem < simd_end) {
            float v = (float)h[0] * bf[0] +
                      ((float)h[1] * bf[1] + ((float)h[2] * bf[2] + (float)h[3] * bf[3]));
            out[(size_t)i * ch + c] = gcam__saturate_u8(gcam__round_even(v));
          } else {
            int64_t v = (int64_t)h[0] * beta[0] + (int64_t)h[1] * beta[1] +
                        (int64_t)h[2] * beta[2] + (int64_t)h[3] * beta[3];
            /* round half up; a negative sum saturates to 0 whatever the shift does */
            const int64_t q = v + ((int64_t)1 << (2 * RESIZE_COEF_BITS - 1));
            const int64_t shifted = q < 0 ? 0 : q >> (2 * RESIZE_COEF_BITS);
            out[(size_t)i * ch + c] = gcam__saturate_u8(shifted);
          }
        }
      }
    }
  }
}

/* cv::resize turns INTER_LINEAR with a scale of exactly 2 into its "fast area" path: the
 * mean of each 2x2 block. Its SIMD loop (groups of 4 outputs) adds the two rows' pairs, the
 * scalar tail adds the four values in reading order; both then multiply by 0.25. */
static void gcam__resize_half_f32(float *dst, int32_t dw, int32_t dh, const float *src, int32_t sw) {
  const int32_t simd_end = dw - dw % 4;
  for (int32_t dy = 0; dy < dh; dy++) {
    const float *r0 = src + (size_t)(2 * dy) * (size_t)sw, *r1 = r0 + sw;
    float *out = dst + (size_t)dy * (size_t)dw;
    for (int32_t dx = 0; dx < dw; dx++) {
      const float a = r0[2 * dx], b = r0[2 * dx + 1], c = r1[2 * dx], d = r1[2 * dx + 1];
      out[dx] = dx < simd_end ? ((a + b) + (c + d)) * 0.25f : (a + b + c + d) * 0.25f;
    }
  }
}

void gcam__resize_bilinear_f32(float *dst, int32_t dw, int32_t dh, const float *src, int32_t sw,
                               int32_t sh) {
  if (sw == 2 * dw && sh == 2 * dh) {
    gcam__resize_half_f32(dst, dw, dh, src, sw);
    return;
  }
  const double scale_x = gcam__resize_scale(dw, sw), scale_y = gcam__resize_scale(dh, sh);
  int32_t col[RESIZE_TILE];
  float wx[RESIZE_TILE];

  for (int32_t x0 = 0; x0 < dw; x0 += RESIZE_TILE) {
    const int32_t n = dw - x0 < RESIZE_TILE ? dw - x0 : RESIZE_TILE;
    for (int32_t i = 0; i < n; i++) {
      int32_t sx;
      float fx = gcam__source_coord(x0 + i, scale_x, &sx);
      /* in x OpenCV clamps the position itself, so border pixels are copied exactly */
      if (sx < 0) fx = 0, sx = 0;
      if (sx >= sw - 1) fx = 0, sx = sw - 1;
      col[i] = sx;
      wx[i] = fx;
    }
    for (int32_t dy = 0; dy < dh; dy++) {
      int32_t sy;
      const float fy = gcam__source_coord(dy, scale_y, &sy);
      const float b0 = 1.f - fy, b1 = fy;
      const float *r0 = src + (size_t)gcam__clamp_i32(sy, 0, sh - 1) * (size_t)sw;
      const float *r1 = src + (size_t)gcam__clamp_i32(sy + 1, 0, sh - 1) * (size_t)sw;
      float *out = dst + (size_t)dy * (size_t)dw + (size_t)x0;
      for (int32_t i = 0; i < n; i++) {
        const int32_t sx = col[i];
        float h0, h1;
        if (sx + 1 < sw) {
          const float a0 = 1.f - wx[i], a1 = wx[i];
          h0 = r0[sx] * a0 + r0[sx + 1] * a1;
          h1 = r1[sx] * a0 + r1[sx + 1] * a1;
        } else { /* the last column: OpenCV copies it without weights */
          h0 = r0[sx];
          h1 = r1[sx];
        }
        out[i] = h0 * b0 + h1 * b1;
      }
    }
  }
}
