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

/* The 6x8 body; `relu` is a constant after inlining. Six rows, two vectors each: twelve
 * accumulators plus two weight vectors (x86 and V8 have 16 vector registers). The main loop
 * loads four k-values of each row at once and splats lanes with a shuffle ("splat" variant:
 * measured faster than one load-splat per value under V8, and equal natively). */
static inline __attribute__((always_inline)) void gcam__igemm_6x8_vec(
    size_t mr, size_t nc, size_t kc, size_t ks, const float *const *a, const float *w,
    float *c, size_t cm_stride, int relu) {
  float *c0 = c;
  float *c1 = mr > 1 ? c0 + cm_stride : c0;
  float *c2 = mr > 2 ? c1 + cm_stride : c1;
  float *c3 = mr > 3 ? c2 + cm_stride : c2;
  float *c4 = mr > 4 ? c3 + cm_stride : c3;
  float *c5 = mr > 5 ? c4 + cm_stride : c4;
  for (;;) {
    gcam_f32x4 acc00 = gcam__f32x4_load(w), acc01 = gcam__f32x4_load(w + 4);
    gcam_f32x4 acc10 = acc00, acc11 = acc01, acc20 = acc00, acc21 = acc01;
    gcam_f32x4 acc30 = acc00, acc31 = acc01, acc40 = acc00, acc41 = acc01;
    gcam_f32x4 acc50 = acc00, acc51 = acc01;
    w += NR;
    const float *const *ap = a;
    for (size_t s = 0; s < ks; s++, ap += MR) {
      const float *a0 = ap[0], *a1 = ap[1], *a2 = ap[2], *a3 = ap[3], *a4 = ap[4], *a5 = ap[5];
      size_t k = kc;
#define GCAM__STEP(x0, x1, x2, x3, x4, x5, u)                            \
  do {                                                                  \
    const gcam_f32x4 w0 = gcam__f32x4_load(w + (u) * NR);               \
    const gcam_f32x4 w1 = gcam__f32x4_load(w + (u) * NR + 4);           \
    acc00 += (x0) * w0;                                                 \
    acc01 += (x0) * w1;                                                 \
    acc10 += (x1) * w0;                                                 \
    acc11 += (x1) * w1;                                                 \
    acc20 += (x2) * w0;                                                 \
    acc21 += (x2) * w1;                                                 \
    acc30 += (x3) * w0;                                                 \
    acc31 += (x3) * w1;                                                 \
    acc40 += (x4) * w0;                                                 \
    acc41 += (x4) * w1;                                                 \
    acc50 += (x5) * w0;                                                 \
    acc51 += (x5) * w1;                                                 \
  } while (0)
#define GCAM__LANE(v, u) __builtin_shufflevector(v, v, u, u, u, u)
#define GCAM__STEP_LANE(u)                                                                  \
  GCAM__STEP(GCAM__LANE(va0, u), GCAM__LANE(va1, u), GCAM__LANE(va2, u), GCAM__LANE(va3, u), \
             GCAM__LANE(va4, u), GCAM__LANE(va5, u), u)
      for (; k >= GCAM_GEMM_KU; k -= GCAM_GEMM_KU) {
        const gcam_f32x4 va0 = gcam__f32x4_load(a0), va1 = gcam__f32x4_load(a1);
        const gcam_f32x4 va2 = gcam__f32x4_load(a2), va3 = gcam__f32x4_load(a3);
        const gcam_f32x4 va4 = gcam__f32x4_load(a4), va5 = gcam__f32x4_load(a5);
        GCAM__STEP_LANE(0);
        GCAM__STEP_LANE(1);
        GCAM__STEP_LANE(2);
        GCAM__STEP_LANE(3);
        a0 += GCAM_GEMM_KU, a1 += GCAM_GEMM_KU, a2 += GCAM_GEMM_KU;
        a3 += GCAM_GEMM_KU, a4 += GCAM_GEMM_KU, a5 += GCAM_GEMM_KU;
        w += GCAM_GEMM_KU * NR;
      }
      for (; k != 0; k--) {
        GCAM__STEP(gcam__f32x4_splat(*a0), gcam__f32x4_splat(*a1), gcam__f32x4_splat(*a2),
                   gcam__f32x4_splat(*a3), gcam__f32x4_splat(*a4), gcam__f32x4_splat(*a5), 0);
        a0++, a1++, a2++, a3++, a4++, a5++;
        w += NR;
      }
#undef GCAM__STEP_LANE
#undef GCAM__LANE
#undef GCAM__STEP
    }
    if (relu) {
      acc00 = gcam__f32x4_relu(acc00), acc01 = gcam__f32x4_relu(acc01);
      acc10 = gcam__f32x4_relu(acc10), acc11 = gcam__f32x4_relu(acc11);
      acc20 = gcam__f32x4_relu(acc20), acc21 = gcam__f32x4_relu(acc21);
      acc30 = gcam__f32x4_relu(acc30), acc31 = gcam__f32x4_relu(acc31);
      acc40 = gcam__f32x4_relu(acc40), acc41 = gcam__f32x4_relu(acc41);
      acc50 = gcam__f32x4_relu(acc50), acc51 = gcam__f32x4_relu(acc51);
    }
    /* last row first: when mr < 6 the extra rows alias row mr-1 and the real one wins */
    gcam__store_row(c5, nc, acc50, acc51);
    gcam__store_row(c4, nc, acc40, acc41);
    gcam__store_row(c3, nc, acc30, acc31);
    gcam__store_row(c2, nc, acc20, acc21);
    gcam__store_row(c1, nc, acc10, acc11);
    gcam__store_row(c0, nc, acc00, acc01);
    if (nc <= NR) return;
    nc -= NR;
    c0 += NR, c1 += NR, c2 += NR, c3 += NR, c4 += NR, c5 += NR;
  }
}

void gcam_f32_igemm_relu_ukernel_6x8__vec(size_t mr, size_t nc, size_t kc, size_t ks,
                                          const float *const *a, const float *w, float *c,
                                          size_t cm_stride) {
  gcam__igemm_6x8_vec(mr, nc, kc, ks, a, w, c, cm_stride, 1);
}

void gcam_f32_igemm_ukernel_6x8__vec(size_t mr, size_t nc, size_t kc, size_t ks,
                                     const float *const *a, const float *w, float *c,
                                     size_t cm_stride) {
  gcam__igemm_6x8_vec(mr, nc, kc, ks, a, w, c, cm_stride, 0);
}

static void gcam__igemm_6x8_scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                   const float *const *a, const float *w, float *c,
                                   size_t cm_stride, int relu) {
  for (size_t n0 = 0; n0 < nc; n0 += NR) {
    float acc[MR][NR];
    for (size_t m = 0; m < MR; m++)
      for (size_t j = 0; j < NR; j++) acc[m][j] = w[j];
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
    size_t nb = nc - n0 < NR ? nc - n0 : NR;
    for (size_t m = 0; m < mr; m++)
      for (size_t j = 0; j < nb; j++) {
        float v = acc[m][j];
        c[m * cm_stride + n0 + j] = relu ? (v > 0.0f ? v : 0.0f) : v;
      }
  }
}

void gcam_f32_igemm_relu_ukernel_6x8__scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                             const float *const *a, const float *w, float *c,
                                             size_t cm_stride) {
  gcam__igemm_6x8_scalar(mr, nc, kc, ks, a, w, c, cm_stride, 1);
}

void gcam_f32_igemm_ukernel_6x8__scalar(size_t mr, size_t nc, size_t kc, size_t ks,
                                        const float *const *a, const float *w, float *c,
                                        size_t cm_stride) {
  gcam__igemm_6x8_scalar(mr, nc, kc, ks, a, w, c, cm_stride, 0);
}
