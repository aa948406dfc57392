/* elementwise.c: ReLU backward and softmax (forward, and backward of one probability). */
#include <math.h>

#include "ops.h"

void gcam__relu_backward(float *d, const float *y, size_t N) {
  for (size_t i = 0; i < N; i++) d[i] = y[i] > 0.0f ? d[i] : 0.0f;
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

void gcam__softmax_backward_onehot(float *dz, const float *p, int32_t N, int32_t c) {
  const double pc = p[c];
  for (int32_t i = 0; i < N; i++) dz[i] = (float)(pc * ((i == c ? 1.0 : 0.0) - (double)p[i]));
}
