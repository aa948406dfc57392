/* conv3x3.c: 3x3 "same" convolution + bias + ReLU: the direct IGEMM path, and the ops.h
 * entry points that choose between it and Winograd (winograd.c) per layer. */
#include "conv3x3.h"

#include <string.h>

#include "gemm.h"
#include "ops.h"
#include "parallel.h"

#define MR GCAM_GEMM_MR
#define NR GCAM_GEMM_NR

/* Measured with bench_kernels, in wasm and natively: F(4,3) beats F(2,3) and direct on all 13
 * VGG16 layers, the first (C = 3) included, and test_kernels shows a whole VGG16 on F(4,3)
 * keeps its logits within a few 1e-6 of the reference, well inside the 1e-4 budget. Inputs
 * with fewer channels (unmeasured) stay direct.
 * The price is memory: F(4,3) weights take 36/9 = 4x the direct ones (VGG16: 236 MB instead
 * of 59 MB; F(2,3): 105 MB). Build with -DGCAM_WINOGRAD_M=2 (or 0: direct only) to trade
 * speed for memory. */
#ifndef GCAM_WINOGRAD_M
#define GCAM_WINOGRAD_M 4
#endif
#if GCAM_WINOGRAD_M != 0 && GCAM_WINOGRAD_M != 2 && GCAM_WINOGRAD_M != 4
#error "GCAM_WINOGRAD_M must be 0 (direct only), 2 or 4"
#endif

int gcam__conv3x3_path(int32_t C, int32_t OC) {
  (void)OC;
  return C >= 3 ? GCAM_WINOGRAD_M : 0;
}

int32_t gcam__conv3x3_oc_block(int32_t K, int32_t OC) {
  const size_t budget = 64 * 1024; /* floats: 256 KB of packed weights per pass */
  size_t blocks = budget / ((size_t)NR * (1 + (size_t)K));
  if (blocks < 1) blocks = 1;
  const size_t nblk = ((size_t)OC + NR - 1) / NR;
  const size_t passes = (nblk + blocks - 1) / blocks; /* balanced: no short last pass */
  const size_t ocb = (nblk + passes - 1) / passes * NR;
  return ocb >= (size_t)OC ? OC : (int32_t)ocb;
}

size_t gcam__conv3x3_direct_packed_floats(int32_t C, int32_t OC) {
  size_t nblk = ((size_t)OC + NR - 1) / NR;
  return nblk * gcam__gemm_block_floats((size_t)9 * C);
}

void gcam__conv3x3_direct_pack(float *packed, const float *w_hwio, const float *bias, int32_t C,
                               int32_t OC) {
  /* w_hwio is already (K = (ky*3+kx)*C + c, OC): the IGEMM's k order */
  gcam__gemm_pack(packed, w_hwio, (size_t)OC, bias, (size_t)9 * C, (size_t)OC);
}

size_t gcam__conv3x3_direct_scratch_floats(int32_t H, int32_t W, int32_t C, int32_t OC) {
  (void)H, (void)W, (void)OC;
  return (size_t)C; /* the row of zeros the padding taps point at */
}

/* The 9 tap pointers of MR output pixels starting at pixel p0 (rows past mr repeat the last) */
static void gcam__conv3x3_indirection(const float **a, const float *in, const float *zero,
                                      int32_t H, int32_t W, int32_t C, size_t p0, size_t mr) {
  for (size_t m = 0; m < MR; m++) {
    size_t p = p0 + (m < mr ? m : mr - 1);
    int32_t y = (int32_t)(p / (size_t)W), x = (int32_t)(p % (size_t)W);
    for (int32_t s = 0; s < 9; s++) {
      int32_t iy = y + s / 3 - 1, ix = x + s % 3 - 1;
      a[s * MR + m] = (iy < 0 || iy >= H || ix < 0 || ix >= W)
                          ? zero
                          : in + ((size_t)iy * W + ix) * C;
    }
  }
}

typedef struct {
  float *out;
  const float *in, *packed, *zero;
  int32_t H, W, C, OC, ocb, n_tasks;
  int relu; /* 0 for the backward (conv3x3_backward.c), which has no activation */
} gcam__direct_job;

/* output pixels [MR*g0, MR*g1) of every output channel, g = task's share of the MR groups */
static void gcam__conv3x3_direct_task(void *context, int32_t task) {
  const gcam__direct_job *j = context;
  const size_t K = (size_t)9 * j->C, P = (size_t)j->H * j->W, block = gcam__gemm_block_floats(K);
  size_t g0, g1;
  gcam__split((P + MR - 1) / MR, j->n_tasks, task, &g0, &g1);
  const float *a[9 * MR];
  for (int32_t oc0 = 0; oc0 < j->OC; oc0 += j->ocb) {
    const size_t nc = (size_t)(j->OC - oc0 < j->ocb ? j->OC - oc0 : j->ocb);
    const float *w = j->packed + (size_t)(oc0 / NR) * block;
    for (size_t p0 = g0 * MR; p0 < P && p0 < g1 * MR; p0 += MR) {
      const size_t mr = P - p0 < MR ? P - p0 : MR;
      gcam__conv3x3_indirection(a, j->in, j->zero, j->H, j->W, j->C, p0, mr);
      if (j->relu)
        gcam__f32_igemm_relu_ukernel_4x8__vec(mr, nc, (size_t)j->C, 9, a, w,
                                             j->out + p0 * j->OC + oc0, (size_t)j->OC);
      else
        gcam__f32_igemm_ukernel_4x8__vec(mr, nc, (size_t)j->C, 9, a, w,
                                        j->out + p0 * j->OC + oc0, (size_t)j->OC);
    }
  }
}

void gcam__conv3x3_direct_run_pool(float *out, const float *in, const float *packed, int32_t H,
                                   int32_t W, int32_t C, int32_t OC, float *scratch,
                                   int32_t oc_block, int relu, const gcam_threadpool *pool) {
  float *zero = scratch; /* shared, read-only once the tasks run */
  memset(zero, 0, (size_t)C * sizeof *zero);
  const size_t groups = ((size_t)H * W + MR - 1) / MR;
  gcam__direct_job j = {out, in, packed, zero, H, W, C, OC, oc_block, gcam__pool_threads(pool),
                        relu};
  if (j.ocb <= 0) j.ocb = gcam__conv3x3_oc_block(9 * C, OC);
  if ((size_t)j.n_tasks > groups) j.n_tasks = (int32_t)groups;
  gcam__parallel_for(pool, gcam__conv3x3_direct_task, &j, j.n_tasks);
}

void gcam__conv3x3_direct_forward_pool(float *out, const float *in, const float *packed,
                                       int32_t H, int32_t W, int32_t C, int32_t OC,
                                       float *scratch, int32_t oc_block,
                                       const gcam_threadpool *pool) {
  gcam__conv3x3_direct_run_pool(out, in, packed, H, W, C, OC, scratch, oc_block, 1, pool);
}

void gcam__conv3x3_direct_forward(float *out, const float *in, const float *packed, int32_t H,
                                  int32_t W, int32_t C, int32_t OC, float *scratch,
                                  int32_t oc_block) {
  gcam__conv3x3_direct_forward_pool(out, in, packed, H, W, C, OC, scratch, oc_block, NULL);
}

/* ---- ops.h ------------------------------------------------------------------------------ */

size_t gcam__conv3x3_packed_floats(int32_t C, int32_t OC) {
  const int m = gcam__conv3x3_path(C, OC);
  return m ? gcam__conv3x3_wino_packed_floats(m, C, OC)
           : gcam__conv3x3_direct_packed_floats(C, OC);
}

void gcam__conv3x3_pack(float *packed, const float *w_hwio, const float *bias, int32_t C,
                       int32_t OC) {
  const int m = gcam__conv3x3_path(C, OC);
  if (m)
    gcam__conv3x3_wino_pack(m, packed, w_hwio, bias, C, OC);
  else
    gcam__conv3x3_direct_pack(packed, w_hwio, bias, C, OC);
}

size_t gcam__conv3x3_scratch_floats_pool(int32_t H, int32_t W, int32_t C, int32_t OC,
                                         int32_t n_threads) {
  const int m = gcam__conv3x3_path(C, OC);
  return m ? gcam__conv3x3_wino_scratch_floats_pool(m, H, W, C, OC, 0, n_threads)
           : gcam__conv3x3_direct_scratch_floats(H, W, C, OC);
}

size_t gcam__conv3x3_scratch_floats(int32_t H, int32_t W, int32_t C, int32_t OC) {
  return gcam__conv3x3_scratch_floats_pool(H, W, C, OC, 1);
}

void gcam__conv3x3_relu_forward_pool(float *out, const float *in, const float *packed,
                                     int32_t H, int32_t W, int32_t C, int32_t OC,
                                     float *scratch, const gcam_threadpool *pool) {
  const int m = gcam__conv3x3_path(C, OC);
  if (m)
    gcam__conv3x3_wino_forward_pool(m, out, in, packed, H, W, C, OC, scratch, 0, 0, pool);
  else
    gcam__conv3x3_direct_forward_pool(out, in, packed, H, W, C, OC, scratch, 0, pool);
}

void gcam__conv3x3_relu_forward(float *out, const float *in, const float *packed, int32_t H,
                               int32_t W, int32_t C, int32_t OC, float *scratch) {
  gcam__conv3x3_relu_forward_pool(out, in, packed, H, W, C, OC, scratch, NULL);
}

size_t gcam__conv3x3_compact_pack_floats(int32_t C, int32_t OC) {
  const int m = gcam__conv3x3_path(C, OC);
  return m ? gcam__conv3x3_wino_compact_scratch_floats(m, C, OC) : 0;
}

void gcam__conv3x3_relu_forward_compact_pool(float *out, const float *in, const void *w,
                                             gcam__dtype dt, const float *bias, int32_t H,
                                             int32_t W, int32_t C, int32_t OC, float *scratch,
                                             float *pack, const gcam_threadpool *pool) {
  gcam__conv3x3_wino_forward_compact_pool(gcam__conv3x3_path(C, OC), out, in, w, dt, bias, H, W,
                                          C, OC, scratch, pack, pool);
}
