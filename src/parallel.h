/* parallel.h: how the core spreads work over the host's threads without any platform code.
 *
 * The host lends a gcam_threadpool (gcam.h); the core cuts a layer into a few independent
 * tasks that write disjoint memory and runs them through it. The cuts fall on boundaries
 * where each output value keeps exactly the arithmetic of the serial loop (whole SIMD
 * vectors, whole GEMM column blocks, whole Winograd tile blocks), so a threaded run is
 * bit-identical to a serial one. Scratch is per task slot and sized in advance from
 * n_threads: nothing allocates while running.
 *
 * The pooled twins of the ops.h kernels; the ops.h functions are these with pool = NULL. */
#ifndef GCAM_PARALLEL_H
#define GCAM_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

#include "gcam.h"
#include "ops.h"

/* tasks a pool runs at once (1 for NULL, or a pool without run) */
static inline int32_t gcam__pool_threads(const gcam_threadpool *pool) {
  return pool && pool->run && pool->n_threads > 1 ? pool->n_threads : 1;
}

/* fn(context, t) for t in [0, n_tasks): on the pool, or inline when serial */
static inline void gcam__parallel_for(const gcam_threadpool *pool, gcam_task_fn fn,
                                      void *context, int32_t n_tasks) {
  if (n_tasks > 1 && gcam__pool_threads(pool) > 1) {
    pool->run(pool->pool, fn, context, n_tasks);
    return;
  }
  for (int32_t t = 0; t < n_tasks; t++) fn(context, t);
}

/* [*begin, *end) = part `task` of `n_tasks` near-equal parts of `n` units */
static inline void gcam__split(size_t n, int32_t n_tasks, int32_t task, size_t *begin,
                               size_t *end) {
  *begin = n * (size_t)task / (size_t)n_tasks;
  *end = n * ((size_t)task + 1) / (size_t)n_tasks;
}

/* ---- 3x3 conv + bias + ReLU (conv3x3.c, winograd.c) --------------------------------------- */

/* floats of scratch for gcam__conv3x3_relu_forward_pool on a pool of n_threads (>= 1);
 * n_threads = 1 gives gcam__conv3x3_scratch_floats() */
size_t gcam__conv3x3_scratch_floats_pool(int32_t H, int32_t W, int32_t C, int32_t OC,
                                         int32_t n_threads);
/* gcam__conv3x3_relu_forward() on a pool (NULL: serial); scratch sized for the pool's
 * n_threads by gcam__conv3x3_scratch_floats_pool() */
void gcam__conv3x3_relu_forward_pool(float *out, const float *in, const float *packed,
                                     int32_t H, int32_t W, int32_t C, int32_t OC,
                                     float *scratch, const gcam_threadpool *pool);

/* GCAM_MEMORY_COMPACT: the layer's weights kept as w (3,3,C,OC) of type dt (f32 or f16) +
 * bias (OC), transformed for the kernel as the layer runs, into `pack` (floats given by
 * gcam__conv3x3_compact_pack_floats; 0 = the layer has no compact form: direct path, whose
 * packed weights are no larger than the HWIO ones) */
size_t gcam__conv3x3_compact_pack_floats(int32_t C, int32_t OC);
void gcam__conv3x3_relu_forward_compact_pool(float *out, const float *in, const void *w,
                                             gcam__dtype dt, const float *bias, int32_t H,
                                             int32_t W, int32_t C, int32_t OC, float *scratch,
                                             float *pack, const gcam_threadpool *pool);
/* Winograd's compact form: output columns per transformed slice, its scratch, the run */
int32_t gcam__conv3x3_wino_compact_cols(int m, int32_t C, int32_t OC);
size_t gcam__conv3x3_wino_compact_scratch_floats(int m, int32_t C, int32_t OC);
void gcam__conv3x3_wino_forward_compact_pool(int m, float *out, const float *in, const void *w,
                                             gcam__dtype dt, const float *bias, int32_t H,
                                             int32_t W, int32_t C, int32_t OC, float *scratch,
                                             float *pack, const gcam_threadpool *pool);
/* gcam__conv3x3_backward_input() (ops.h) on a pool, its scratch sized for n_threads */
size_t gcam__conv3x3_backward_scratch_floats_pool(int32_t H, int32_t W, int32_t C, int32_t OC,
                                                  int32_t n_threads);
void gcam__conv3x3_backward_input_pool(float *dx, const float *dy, const float *packed,
                                       int32_t H, int32_t W, int32_t C, int32_t OC,
                                       float *scratch, const gcam_threadpool *pool);

/* the two paths with their block sizes exposed (conv3x3.h), on a pool: for the tests */
size_t gcam__conv3x3_wino_scratch_floats_pool(int m, int32_t H, int32_t W, int32_t C,
                                              int32_t OC, int32_t tiles, int32_t n_threads);
void gcam__conv3x3_wino_forward_pool(int m, float *out, const float *in, const float *packed,
                                     int32_t H, int32_t W, int32_t C, int32_t OC,
                                     float *scratch, int32_t tiles, int32_t oc_block,
                                     const gcam_threadpool *pool);
void gcam__conv3x3_direct_forward_pool(float *out, const float *in, const float *packed,
                                       int32_t H, int32_t W, int32_t C, int32_t OC,
                                       float *scratch, int32_t oc_block,
                                       const gcam_threadpool *pool);

/* ---- dense (dense.c) ------------------------------------------------------------------------ */

void gcam__dense_forward_pool(float *out, const float *in, const float *w, const float *bias,
                              int32_t IN, int32_t OUT, int relu, const gcam_threadpool *pool);
void gcam__dense_backward_input_pool(float *d_in, const float *d_out, const float *w,
                                     int32_t IN, int32_t OUT, const gcam_threadpool *pool);
void gcam__dense_forward_dt_pool(float *out, const float *in, const gcam__dense_weights *w,
                                 int32_t IN, int32_t OUT, int relu, const gcam_threadpool *pool);
void gcam__dense_backward_input_dt_pool(float *d_in, const float *d_out,
                                        const gcam__dense_weights *w, int32_t IN, int32_t OUT,
                                        const gcam_threadpool *pool);

#endif
