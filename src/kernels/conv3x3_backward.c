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
#include "simd.h"

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

/* ---- packing from the canonical weights as the layer runs ----------------------------------
 * The model keeps each conv's canonical (3,3,C,OC) weights (f32, or f16 in a COMPACT f16
 * model) and the backward packs w' into one state scratch just before the layer runs, so the
 * model holds no second packed copy (VGG16 F(4,3): 236 MB). The Winograd transform U = G g G^T
 * is done in f32 (11 operations per G application for F(4,3), as winograd.c's compact
 * path), vectorised over the backward's output columns; measured in docs/methods.md
 * (build/bench_backward pack). */

static inline float gcam__canon_w(const void *w, size_t k, gcam__dtype dt) {
  return dt == GCAM__DTYPE_F16 ? gcam__f16_to_f32(((const uint16_t *)w)[k]) : ((const float *)w)[k];
}

/* r = G x (the structure of G spelled out, f32), the same G as winograd.c's */
static inline void gcam__bwd_g(int m, gcam_f32x4 *r, gcam_f32x4 x0, gcam_f32x4 x1,
                               gcam_f32x4 x2) {
  if (m == 4) {
    const gcam_f32x4 p = (x0 + x2) * gcam__f32x4_splat(-1.0f / 6), q = x1 * gcam__f32x4_splat(1.0f / 6);
    const gcam_f32x4 s = x0 * gcam__f32x4_splat(1.0f / 24) + x2 * gcam__f32x4_splat(1.0f / 6);
    const gcam_f32x4 u = x1 * gcam__f32x4_splat(1.0f / 12);
    r[0] = x0 * gcam__f32x4_splat(0.25f);
    r[1] = p - q, r[2] = p + q, r[3] = s + u, r[4] = s - u;
    r[5] = x2;
  } else {
    const gcam_f32x4 s = (x0 + x2) * gcam__f32x4_splat(0.5f), h = x1 * gcam__f32x4_splat(0.5f);
    r[0] = x0, r[1] = s + h, r[2] = s - h, r[3] = x2;
  }
}

typedef struct {
  int m;
  float *packed;
  const void *w;
  gcam__dtype dt;
  int32_t C, OC, n_tasks;
} gcam__bwd_pack_job;

/* U = G g G^T of one backward input channel o for 4 output columns (the lanes of g[9]),
 * stored as 4 contiguous floats in each of the a*a planes at p */
static inline void gcam__bwd_transform_store(int m, float *p, size_t xi_floats,
                                             const gcam_f32x4 *g) {
  const int a = m + 2;
  gcam_f32x4 t[3][6], u[6];
  for (int l = 0; l < 3; l++) gcam__bwd_g(m, t[l], g[l], g[3 + l], g[6 + l]); /* G g */
  for (int i = 0; i < a; i++) { /* row i of (G g) G^T */
    gcam__bwd_g(m, u, t[0][i], t[1][i], t[2][i]);
    for (int l = 0; l < a; l++) gcam__f32x4_store(p + (size_t)(i * a + l) * xi_floats, u[l]);
  }
}

static inline gcam_f32x4 gcam__bwd_load4(const void *w, size_t k, gcam__dtype dt) {
  return dt == GCAM__DTYPE_F16 ? gcam__f16x4_load((const uint16_t *)w + k)
                               : gcam__f32x4_load((const float *)w + k);
}

/* The backward's NR-column blocks b (output columns c = forward input channels) in this
 * task's share. The lanes are 4 columns c, so each plane's store is contiguous and the planes
 * are written sequentially; the weights are read 4 o's at a time along w_hwio's rows (one
 * vector load per tap and column) and transposed in registers, 4 x 4. Columns past C are
 * zero lanes (the padding); a last group of fewer than 4 o's is gathered lane by lane. */
static void gcam__bwd_pack_task(void *context, int32_t task) {
  const gcam__bwd_pack_job *j = context;
  const int32_t C = j->C, OC = j->OC;
  /* the backward layer is (OC -> C): GEMM blocks of NR columns c, depth OC */
  const size_t blk = gcam__gemm_block_floats((size_t)OC);
  const size_t nblk = ((size_t)C + NR - 1) / NR, xi_floats = nblk * blk;
  const int32_t o4 = OC / 4 * 4;
  const gcam_f32x4 zero = gcam__f32x4_splat(0.0f);
  size_t b0, b1;
  gcam__split(nblk, j->n_tasks, task, &b0, &b1);
  for (size_t b = b0; b < b1; b++)
    for (int h = 0; h < NR / 4; h++) {
      const size_t c0 = b * NR + (size_t)(4 * h);
      float *col = j->packed + b * blk + NR + (size_t)(4 * h);
      for (int32_t o = 0; o < o4; o += 4) {
        gcam_f32x4 g[4][9]; /* [o - o0][tap] */
        for (int s = 0; s < 9; s++) { /* w' tap s = w tap 8-s */
          gcam_f32x4 r[4];
          for (int l = 0; l < 4; l++)
            r[l] = c0 + (size_t)l < (size_t)C
                       ? gcam__bwd_load4(j->w, ((size_t)(8 - s) * C + c0 + (size_t)l) * OC + (size_t)o, j->dt)
                       : zero;
          const gcam_f32x4 t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 1, 5);
          const gcam_f32x4 t1 = __builtin_shufflevector(r[0], r[1], 2, 6, 3, 7);
          const gcam_f32x4 t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 1, 5);
          const gcam_f32x4 t3 = __builtin_shufflevector(r[2], r[3], 2, 6, 3, 7);
          g[0][s] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
          g[1][s] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
          g[2][s] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
          g[3][s] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
        }
        for (int q = 0; q < 4; q++)
          gcam__bwd_transform_store(j->m, col + (size_t)(o + q) * NR, xi_floats, g[q]);
      }
      for (int32_t o = o4; o < OC; o++) {
        gcam_f32x4 g[9];
        for (int s = 0; s < 9; s++)
          for (int l = 0; l < 4; l++) {
            const size_t c = c0 + (size_t)l;
            g[s][l] = c < (size_t)C ? gcam__canon_w(j->w, ((size_t)(8 - s) * C + c) * OC + (size_t)o, j->dt)
                                    : 0.0f;
          }
        gcam__bwd_transform_store(j->m, col + (size_t)o * NR, xi_floats, g);
      }
    }
}

/* the direct path's layout, as gcam__conv3x3_backward_direct_pack, from either dtype */
static void gcam__bwd_direct_pack_canon(float *packed, const void *w, gcam__dtype dt, int32_t C,
                                        int32_t OC) {
  float *p = packed;
  for (int32_t c0 = 0; c0 < C; c0 += NR) {
    const int32_t nb = C - c0 < NR ? C - c0 : NR;
    for (int32_t j = 0; j < NR; j++) *p++ = 0.0f;
    for (int32_t s = 0; s < 9; s++)
      for (int32_t o = 0; o < OC; o++)
        for (int32_t j = 0; j < NR; j++)
          *p++ = j < nb ? gcam__canon_w(w, ((size_t)(8 - s) * C + (size_t)(c0 + j)) * OC + o, dt)
                        : 0.0f;
  }
}

void gcam__conv3x3_backward_pack_canon_pool(float *packed, const void *w, gcam__dtype dt,
                                            int32_t C, int32_t OC,
                                            const gcam_threadpool *pool) {
  const int m = gcam__conv3x3_path(OC, C);
  if (!m) {
    gcam__bwd_direct_pack_canon(packed, w, dt, C, OC);
    return;
  }
  const int a = m + 2;
  const size_t blk = gcam__gemm_block_floats((size_t)OC);
  const size_t nblk = ((size_t)C + NR - 1) / NR, xi_floats = nblk * blk;
  for (int xi = 0; xi < a * a; xi++) /* zero biases (the padding columns are zero lanes) */
    for (size_t b = 0; b < nblk; b++) memset(packed + (size_t)xi * xi_floats + b * blk, 0, NR * sizeof *packed);
  memset(packed + (size_t)a * a * xi_floats, 0, (size_t)C * sizeof *packed); /* bias: none */
  gcam__bwd_pack_job j = {m, packed, w, dt, C, OC, gcam__pool_threads(pool)};
  if ((size_t)j.n_tasks > nblk) j.n_tasks = (int32_t)nblk;
  gcam__parallel_for(pool, gcam__bwd_pack_task, &j, j.n_tasks);
}
