/* elementwise.c: ReLU backward (plain and guided) and softmax (forward, and backward of one probability). */
#include <math.h>

#include "ops.h"

void gcam__relu_backward(float *d, const float *y, size_t N) {
  for (size_t i = 0; i < N; i++) d[i] = y[i] > 0.0f ? d[i] : 0.0f;
}

void gcam__relu_backward_guided(float *d, const float *y, size_t N) {
  for (size_t i = 0; i < N; i++) d[i] = y[i] > 0.0f && d[i] > 0.0f ? d[i] : 0.0f;
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
