/* gemm.h: the GEMM microkernels behind the convolutions (XNNPACK's IGEMM shape).
 *
 * One call computes an (mr x nc) block of C = A.B (+ packed bias), mr <= GCAM_GEMM_MR, any nc:
 *   - A is indirect: for each of the `ks` taps s, a[s*GCAM_GEMM_MR + m] points to `kc`
 *     contiguous floats of row m (an input pixel, or a row of zeros for padding). Rows m >= mr
 *     are never stored but are read: point them at any valid row (e.g. row mr-1).
 *   - B is packed per block of GCAM_GEMM_NR columns: NR biases, then ks*kc times NR weights
 *     (k = s*kc + c order), columns past nc zero-padded. Blocks follow each other.
 *   - C row m starts at c + m*cm_stride; columns are contiguous.
 * The accumulators start from the packed bias; one input value is splatted and multiplied
 * by a vector of packed weights; ReLU, when fused, is applied once at the end. k is not
 * unrolled (see gemm.c: unrolling measured slower under V8). The scalar twins are the tests'
 * oracle.
 * The _acc_ variant adds to C instead (C += A.B: the accumulators start from the mr x nc block
 * of C, the packed bias is skipped), for a GEMM split along k (winograd.c's compact path); it
 * sums each value in the order one call over the whole k would. */
#ifndef GCAM_KERNELS_GEMM_H
#define GCAM_KERNELS_GEMM_H

#include <stddef.h>

#define GCAM_GEMM_MR 4
#define GCAM_GEMM_NR 8

void gcam__f32_igemm_relu_ukernel_4x8__vec(size_t mr, size_t nc, size_t kc, size_t ks,
                                          const float *const *a, const float *w, float *c,
                                          size_t cm_stride);
void gcam__f32_igemm_ukernel_4x8__vec(size_t mr, size_t nc, size_t kc, size_t ks,
                                     const float *const *a, const float *w, float *c,
                                     size_t cm_stride);
void gcam__f32_igemm_acc_ukernel_4x8__vec(size_t mr, size_t nc, size_t kc, size_t ks,
                                         const float *const *a, const float *w, float *c,
                                         size_t cm_stride);
void gcam__f32_igemm_relu_ukernel_4x8__scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                             const float *const *a, const float *w, float *c,
                                             size_t cm_stride);
void gcam__f32_igemm_ukernel_4x8__scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                        const float *const *a, const float *w, float *c,
                                        size_t cm_stride);
void gcam__f32_igemm_acc_ukernel_4x8__scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                            const float *const *a, const float *w, float *c,
                                            size_t cm_stride);

/* floats of one packed block of NR columns for K = ks*kc */
static inline size_t gcam__gemm_block_floats(size_t K) { return GCAM_GEMM_NR * (1 + K); }

/* Pack B (K, N) with row stride ldb (B[k*ldb + n]) and bias (N, or NULL for zeros) into
 * ceil(N/NR) blocks; returns the number of floats written. */
size_t gcam__gemm_pack(float *packed, const float *b, size_t ldb, const float *bias, size_t K,
                       size_t N);

#endif
