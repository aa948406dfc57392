/* gemm.c: the IGEMM microkernels (see gemm.h for the contract), vector and scalar. */
#include "gemm.h"

#include "simd.h"

#define MR GCAM_GEMM_MR
#define NR GCAM_GEMM_NR

size_t gcam__gemm_pack(float *packed, const float *b, size_t ldb, const float *bias, size_t K,
                       size_t N) {
  float *p = packed;
  for (size_t n0 = 0; n0 < N; n0 += NR) {
    size_t nb = N - n0 < NR ? N - n0 : NR;
    for (size_t j = 0; j < NR; j++) *p++ = (j < nb && bias) ? bias[n0 + j] : 0.0f;
    for (size_t k = 0; k < K; k++)
      for (size_t j = 0; j < NR; j++) *p++ = j < nb ? b[k * ldb + n0 + j] : 0.0f;
  }
  return (size_t)(p - packed);
}

/* Stores 1..8 columns of one row from two vectors. */
static inline void gcam__store_row(float *c, size_t nc, gcam_f32x4 v0, gcam_f32x4 v1) {
  if (nc >= 8) {
    gcam__f32x4_store(c, v0);
    gcam__f32x4_store(c + 4, v1);
    return;
  }
  if (nc & 4) {
    gcam__f32x4_store(c, v0);
    v0 = v1;
    c += 4;
  }
  if (nc & 2) {
    memcpy(c, &v0, 2 * sizeof(float));
    v0 = __builtin_shufflevector(v0, v0, 2, 3, 2, 3);
    c += 2;
  }
  if (nc & 1) *c = v0[0];
}

/* Loads 1..8 columns of one row into two vectors, the columns past nc zero. */
static inline void gcam__load_row(const float *c, size_t nc, gcam_f32x4 *v0, gcam_f32x4 *v1) {
  if (nc >= 8) {
    *v0 = gcam__f32x4_load(c), *v1 = gcam__f32x4_load(c + 4);
    return;
  }
  float t[8] = {0};
  memcpy(t, c, nc * sizeof *t);
  *v0 = gcam__f32x4_load(t), *v1 = gcam__f32x4_load(t + 4);
}

/* The 4x8 body; `relu` and `acc` are constants after inlining (acc: start from C, not from
 * the packed bias, which is skipped). Four rows, two vectors each: eight
 * accumulators, two weight vectors and a splat. Written for V8's register allocator as much as
 * for the CPU (measured with bench_kernels under Node):
 *   - one splat load per input value (v128.load32_splat), no k unrolling: V8 hoists the loads
 *     of an unrolled body and then spills accumulators (6x8 and 4x8 "splat" variants that
 *     load four k-values and shuffle lanes, or unroll by 2 or 4, measured 20-30% slower);
 *   - the rows are read at a common index k rather than through four bumped pointers, which
 *     clang would pack into one i32x4 and V8 then unpacks lane by lane. */
static inline __attribute__((always_inline)) void gcam__igemm_4x8_vec(
    size_t mr, size_t nc, size_t kc, size_t ks, const float *const *a, const float *w,
    float *c, size_t cm_stride, int relu, int acc) {
  float *c0 = c;
  float *c1 = mr > 1 ? c0 + cm_stride : c0;
  float *c2 = mr > 2 ? c1 + cm_stride : c1;
  float *c3 = mr > 3 ? c2 + cm_stride : c2;
  for (;;) {
    gcam_f32x4 acc00 = gcam__f32x4_load(w), acc01 = gcam__f32x4_load(w + 4);
    gcam_f32x4 acc10 = acc00, acc11 = acc01, acc20 = acc00, acc21 = acc01;
    gcam_f32x4 acc30 = acc00, acc31 = acc01;
    if (acc) {
      gcam__load_row(c0, nc, &acc00, &acc01), gcam__load_row(c1, nc, &acc10, &acc11);
      gcam__load_row(c2, nc, &acc20, &acc21), gcam__load_row(c3, nc, &acc30, &acc31);
    }
    w += NR;
    const float *const *ap = a;
    for (size_t s = 0; s < ks; s++, ap += MR) {
      const float *a0 = ap[0], *a1 = ap[1], *a2 = ap[2], *a3 = ap[3];
      for (size_t k = 0; k < kc; k++) {
        const gcam_f32x4 w0 = gcam__f32x4_load(w), w1 = gcam__f32x4_load(w + 4);
        w += NR;
        gcam_f32x4 v = gcam__f32x4_splat(a0[k]);
        acc00 += v * w0;
        acc01 += v * w1;
        v = gcam__f32x4_splat(a1[k]);
        acc10 += v * w0;
        acc11 += v * w1;
        v = gcam__f32x4_splat(a2[k]);
        acc20 += v * w0;
        acc21 += v * w1;
        v = gcam__f32x4_splat(a3[k]);
        acc30 += v * w0;
        acc31 += v * w1;
      }
    }
    if (relu) {
      acc00 = gcam__f32x4_relu(acc00), acc01 = gcam__f32x4_relu(acc01);
      acc10 = gcam__f32x4_relu(acc10), acc11 = gcam__f32x4_relu(acc11);
      acc20 = gcam__f32x4_relu(acc20), acc21 = gcam__f32x4_relu(acc21);
      acc30 = gcam__f32x4_relu(acc30), acc31 = gcam__f32x4_relu(acc31);
    }
    /* last row first: when mr < 4 the extra rows alias row mr-1 and the real one wins */
    gcam__store_row(c3, nc, acc30, acc31);
    gcam__store_row(c2, nc, acc20, acc21);
    gcam__store_row(c1, nc, acc10, acc11);
    gcam__store_row(c0, nc, acc00, acc01);
    if (nc <= NR) return;
    nc -= NR;
    c0 += NR, c1 += NR, c2 += NR, c3 += NR;
  }
}

void gcam__f32_igemm_relu_ukernel_4x8__vec(size_t mr, size_t nc, size_t kc, size_t ks,
                                          const float *const *a, const float *w, float *c,
                                          size_t cm_stride) {
  gcam__igemm_4x8_vec(mr, nc, kc, ks, a, w, c, cm_stride, 1, 0);
}

void gcam__f32_igemm_ukernel_4x8__vec(size_t mr, size_t nc, size_t kc, size_t ks,
                                     const float *const *a, const float *w, float *c,
                                     size_t cm_stride) {
  gcam__igemm_4x8_vec(mr, nc, kc, ks, a, w, c, cm_stride, 0, 0);
}

void gcam__f32_igemm_acc_ukernel_4x8__vec(size_t mr, size_t nc, size_t kc, size_t ks,
                                         const float *const *a, const float *w, float *c,
                                         size_t cm_stride) {
  gcam__igemm_4x8_vec(mr, nc, kc, ks, a, w, c, cm_stride, 0, 1);
}

static void gcam__igemm_4x8_scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                   const float *const *a, const float *w, float *c,
                                   size_t cm_stride, int relu, int start_c) {
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    const size_t nb = nc - n0 < NR ? nc - n0 : NR;
    float acc[MR][NR];
    for (size_t m = 0; m < MR; m++)
      for (size_t j = 0; j < NR; j++)
        acc[m][j] = !start_c ? w[j] : j < nb ? c[(m < mr ? m : mr - 1) * cm_stride + n0 + j] : 0;
    w += NR;
    for (size_t s = 0; s < ks; s++) {
      for (size_t k = 0; k < kc; k++) {
        for (size_t m = 0; m < MR; m++) {
          float x = a[s * MR + m][k];
          for (size_t j = 0; j < NR; j++) acc[m][j] += x * w[j];
        }
        w += NR;
      }
    }
    for (size_t m = 0; m < mr; m++)
      for (size_t j = 0; j < nb; j++) {
        float v = acc[m][j];
        c[m * cm_stride + n0 + j] = relu ? (v > 0.0f ? v : 0.0f) : v;
      }
  }
}

void gcam__f32_igemm_relu_ukernel_4x8__scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                             const float *const *a, const float *w, float *c,
                                             size_t cm_stride) {
  gcam__igemm_4x8_scalar(mr, nc, kc, ks, a, w, c, cm_stride, 1, 0);
}

void gcam__f32_igemm_ukernel_4x8__scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                        const float *const *a, const float *w, float *c,
                                        size_t cm_stride) {
  gcam__igemm_4x8_scalar(mr, nc, kc, ks, a, w, c, cm_stride, 0, 0);
}

void gcam__f32_igemm_acc_ukernel_4x8__scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                            const float *const *a, const float *w, float *c,
                                            size_t cm_stride) {
  gcam__igemm_4x8_scalar(mr, nc, kc, ks, a, w, c, cm_stride, 0, 1);
}
