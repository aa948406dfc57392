/* elementwise.c: ReLU backward (plain and guided) and softmax (forward, and backward of one probability). */
#include <math.h>

#include "ops.h"
#include "simd.h"

/* Both masks are spelled as vector compares and an and: clang 14 leaves the guided one's
 * two-condition select scalar in wasm (measured: guided backprop's backward 40 ms slower
 * than saliency's on VGG16, whose masks cover 15M values). Same values as the scalar tail:
 * a NaN or a zero (either sign) in y, or in d for the guided mask, gives +0. */
void gcam__relu_backward(float *d, const float *y, size_t N) {
  const gcam_f32x4 z = gcam__f32x4_splat(0.0f);
  size_t i = 0;
  for (; i + 4 <= N; i += 4) {
    const gcam_f32x4 dv = gcam__f32x4_load(d + i), yv = gcam__f32x4_load(y + i);
    gcam__f32x4_store(d + i, (gcam_f32x4)((gcam_i32x4)dv & (gcam_i32x4)(yv > z)));
  }
  for (; i < N; i++) d[i] = y[i] > 0.0f ? d[i] : 0.0f;
}

void gcam__relu_backward_guided(float *d, const float *y, size_t N) {
  const gcam_f32x4 z = gcam__f32x4_splat(0.0f);
  size_t i = 0;
  for (; i + 4 <= N; i += 4) {
    const gcam_f32x4 dv = gcam__f32x4_load(d + i), yv = gcam__f32x4_load(y + i);
    gcam__f32x4_store(d + i, (gcam_f32x4)((gcam_i32x4)dv & (gcam_i32x4)(yv > z) &
                                          (gcam_i32x4)(dv > z)));
  }
  for (; i < N; i++) d[i] = y[i] > 0.0f && d[i] > 0.0f ? d[i] : 0.0f;
}

void gcam__softmax_forward(float *p, const float *z, int32_t N) {
  if (N <= 0) return;
  double zmax = z[0];
  for (int32_t i = 1; i < N; i++)
    if (z[i] > zmax) zmax = z[i];
  double sum = 0.0;
  for (int32_t i = 0; i < N; i++) sum += exp((double)z[i] - zmax);
  for (int32_t i = 0; i < N; i++) p[i] = (float)(exp((double)z[i] - zmax) / sum);
}

/* From the logits, not from float probabilities: when p_c saturates (0.99999994 or 1 in
 * float) 1 - p_c cancels to 0 or to a multiple of 6e-8, whatever its true value. Here
 * 1 - p_c = sum_{i != c} e_i / S is a sum of small positive terms, exact to double rounding,
 * so the gradient matches float64 autograd (tests/test_cam_methods.c). */
void gcam__softmax_backward_onehot_logits(float *dz, const float *z, int32_t N, int32_t c) {
  if (N <= 0) return;
  double zmax = z[0];
  for (int32_t i = 1; i < N; i++)
    if (z[i] > zmax) zmax = z[i];
  double sum = 0.0, rest = 0.0;
  for (int32_t i = 0; i < N; i++) {
    const double e = exp((double)z[i] - zmax);
    sum += e;
    if (i != c) rest += e;
  }
  const double pc = exp((double)z[c] - zmax) / sum;
  for (int32_t i = 0; i < N; i++)
    dz[i] = (float)(i == c ? pc * (rest / sum) : -pc * (exp((double)z[i] - zmax) / sum));
}
