/* conv3x3_backward.c: the input gradient of a 3x3 "same" convolution (stride 1, zero
 * padding 1), which the backward through the conv blocks needs (never the weight gradient).
 *
 * The forward is out[y,x,o] = sum_{ky,kx,c} in[y+ky-1, x+kx-1, c] w[ky,kx,c,o] + b[o], so
 *   dx[y,x,c] = sum_{ky,kx,o} dy[y-ky+1, x-kx+1, o] w[ky,kx,c,o]
 *             = sum_{ky,kx,o} dy[y+ky-1, x+kx-1, o] w[2-ky, 2-kx, c, o],
 * a "same" convolution of dy by the weights rotated 180 degrees with in and out channels
 * swapped: w'[ky,kx,o,c] = w[2-ky,2-kx,c,o], OC -> C, no bias and no activation. The fast
 * path packs w' once, the way the forward packs a (OC -> C) layer, and runs the forward's own
 * kernels (direct IGEMM or Winograd, chosen by gcam__conv3x3_path(OC, C)) without the ReLU,
 * so it costs what a forward of that shape costs. The ReLU in front of it (d *= y > 0 on the
 * layer's post-ReLU output) is gcam__relu_backward (elementwise.c).
 * The reference twin scatters each dy through the unflipped weights (the adjoint written the
 * other way round), so it shares no index arithmetic with the fast path. */
#include <string.h>

#include "conv3x3.h"
#include "gemm.h"
#include "ops.h"
#include "parallel.h"

#define NR GCAM_GEMM_NR

/* strides of w' (tap, in-channel o, out-channel c) inside w_hwio, from its last tap: tap i of
 * w' is tap 8-i of w */
#define GCAM__FLIP_BASE(C, OC) ((ptrdiff_t)8 * (C) * (OC))
#define GCAM__FLIP_S_TAP(C, OC) (-(ptrdiff_t)(C) * (OC))
#define GCAM__FLIP_S_IN(C, OC) ((ptrdiff_t)1)
#define GCAM__FLIP_S_OUT(C, OC) ((ptrdiff_t)(OC))

size_t gcam__conv3x3_backward_packed_floats(int32_t C, int32_t OC) {
  return gcam__conv3x3_packed_floats(OC, C);
}

/* the direct path's layout (conv3x3.h) for w': per block of NR columns c, NR zero biases, then
 * for k = s*OC + o the NR weights w'[s][o][c..c+NR) */
static void gcam__conv3x3_backward_direct_pack(float *packed, const float *w_hwio, int32_t C,
                                               int32_t OC) {
  float *p = packed;
  for (int32_t c0 = 0; c0 < C; c0 += NR) {
    const int32_t nb = C - c0 < NR ? C - c0 : NR;
    for (int32_t j = 0; j < NR; j++) *p++ = 0.0f;
    for (int32_t s = 0; s < 9; s++)
      for (int32_t o = 0; o < OC; o++)
        for (int32_t j = 0; j < NR; j++)
          *p++ = j < nb ? w_hwio[((size_t)(8 - s) * C + (size_t)(c0 + j)) * OC + o] : 0.0f;
  }
}

void gcam__conv3x3_backward_pack(float *packed, const float *w_hwio, int32_t C, int32_t OC) {
  const int m = gcam__conv3x3_path(OC, C);
  if (m)
    gcam__conv3x3_wino_pack_strided(m, packed, w_hwio + GCAM__FLIP_BASE(C, OC),
                                    GCAM__FLIP_S_TAP(C, OC), GCAM__FLIP_S_IN(C, OC),
                                    GCAM__FLIP_S_OUT(C, OC), NULL, OC, C);
  else
    gcam__conv3x3_backward_direct_pack(packed, w_hwio, C, OC);
}

size_t gcam__conv3x3_backward_scratch_floats_pool(int32_t H, int32_t W, int32_t C, int32_t OC,
                                                  int32_t n_threads) {
  return gcam__conv3x3_scratch_floats_pool(H, W, OC, C, n_threads);
}

size_t gcam__conv3x3_backward_scratch_floats(int32_t H, int32_t W, int32_t C, int32_t OC) {
  return gcam__conv3x3_backward_scratch_floats_pool(H, W, C, OC, 1);
}

void gcam__conv3x3_backward_input_pool(float *dx, const float *dy, const float *packed,
                                       int32_t H, int32_t W, int32_t C, int32_t OC,
                                       float *scratch, const gcam_threadpool *pool) {
  const int m = gcam__conv3x3_path(OC, C);
  if (m)
    gcam__conv3x3_wino_run_pool(m, dx, dy, packed, H, W, OC, C, scratch, 0, 0, 0, pool);
  else
    gcam__conv3x3_direct_run_pool(dx, dy, packed, H, W, OC, C, scratch, 0, 0, pool);
}

void gcam__conv3x3_backward_input(float *dx, const float *dy, const float *packed, int32_t H,
                                  int32_t W, int32_t C, int32_t OC, float *scratch) {
  gcam__conv3x3_backward_input_pool(dx, dy, packed, H, W, C, OC, scratch, NULL);
}

void gcam__conv3x3_backward_input_ref(float *dx, const float *dy, const float *w_hwio,
                                      int32_t H, int32_t W, int32_t C, int32_t OC) {
  /* dx[iy,ix,c] += dy[y,x,o] w[ky,kx,c,o] for every output (y,x) whose window holds
   * (iy,ix) = (y+ky-1, x+kx-1): accumulated in double per input value */
  for (int32_t iy = 0; iy < H; iy++)
    for (int32_t ix = 0; ix < W; ix++)
      for (int32_t c = 0; c < C; c++) {
        double acc = 0.0;
        for (int32_t ky = 0; ky < 3; ky++)
          for (int32_t kx = 0; kx < 3; kx++) {
            const int32_t y = iy - ky + 1, x = ix - kx + 1;
            if (y < 0 || y >= H || x < 0 || x >= W) continue;
            const float *g = dy + ((size_t)y * W + x) * OC;
            const float *wk = w_hwio + ((size_t)(ky * 3 + kx) * C + c) * OC;
            for (int32_t o = 0; o < OC; o++) acc += (double)g[o] * wk[o];
          }
        dx[((size_t)iy * W + ix) * C + c] = (float)acc;
      }
}
