/* maxpool.c: 2x2 stride-2 max-pool forward (with argmax) and backward, vectorized over C. */
#include "ops.h"
#include "simd.h"

/* One window, 4 channels at i00 (flat index of the top-left value). Same rule as the ref:
 * strict > keeps the first max, a NaN always takes over. */
static inline void gcam__pool4(float *out, int32_t *argmax, const float *in, int32_t i00,
                               int32_t dx, int32_t dy) {
  const int32_t offs[4] = {0, dx, dy, dy + dx};
  gcam_f32x4 best = gcam__f32x4_load(in + i00);
  gcam_i32x4 idx = (gcam_i32x4){i00, i00 + 1, i00 + 2, i00 + 3};
  for (int d = 1; d < 4; d++) {
    gcam_f32x4 v = gcam__f32x4_load(in + i00 + offs[d]);
    gcam_i32x4 take = (v > best) | (v != v);
    best = (gcam_f32x4)(((gcam_i32x4)v & take) | ((gcam_i32x4)best & ~take));
    gcam_i32x4 vi = (gcam_i32x4){i00, i00 + 1, i00 + 2, i00 + 3} + offs[d];
    idx = (vi & take) | (idx & ~take);
  }
  gcam__f32x4_store(out, best);
  if (argmax) memcpy(argmax, &idx, sizeof idx);
}

void gcam__maxpool2x2_forward(float *out, int32_t *argmax, const float *in, int32_t H,
                             int32_t W, int32_t C) {
  const int32_t OH = H / 2, OW = W / 2, dx = C, dy = W * C;
  for (int32_t y = 0; y < OH; y++)
    for (int32_t x = 0; x < OW; x++) {
      const int32_t base = (2 * y * W + 2 * x) * C;
      const size_t o = ((size_t)y * OW + x) * C;
      int32_t c = 0;
      for (; c + 4 <= C; c += 4)
        gcam__pool4(out + o + c, argmax ? argmax + o + c : NULL, in, base + c, dx, dy);
      for (; c < C; c++) {
        const int32_t offs[4] = {0, dx, dy, dy + dx};
        int32_t bi = base + c;
        float best = in[bi];
        for (int d = 1; d < 4; d++) {
          float v = in[base + c + offs[d]];
          if (v > best || v != v) {
            best = v;
            bi = base + c + offs[d];
          }
        }
        out[o + c] = best;
        if (argmax) argmax[o + c] = bi;
      }
    }
}

void gcam__maxpool2x2_backward(float *d_in, const float *d_out, const int32_t *argmax, int32_t H,
                              int32_t W, int32_t C) {
  const size_t n_in = (size_t)H * W * C, n_out = (size_t)(H / 2) * (W / 2) * C;
  memset(d_in, 0, n_in * sizeof *d_in);
  for (size_t i = 0; i < n_out; i++) d_in[argmax[i]] += d_out[i];
}
