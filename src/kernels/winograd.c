/* winograd.c: 3x3 convolution by Winograd F(m x m, 3x3) (Lavin & Gray 2016), m = 2 or 4,
 * see conv3x3.h. With a = m + 2, each a x a input tile (stride m) of each channel becomes
 * a*a values V = B^T d B; a*a GEMMs (tiles x C).(C x OC) multiply them by the transformed
 * weights U = G g G^T; Y = A^T M A gives the m x m outputs, + bias, ReLU.
 *
 * F(2,3):  B^T = | 1  0 -1  0 |   G = | 1    0    0   |   A^T = | 1  1  1  0 |
 *                | 0  1  1  0 |       | 1/2  1/2  1/2 |         | 0  1 -1 -1 |
 *                | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
 *                | 0  1  0 -1 |       | 0    0    1   |
 * F(4,3), points 0, +-1, +-2, inf:
 *   B^T = | 4  0 -5  0  1  0 |   G = | 1/4    0     0   |   A^T = | 1  1  1  1  1  0 |
 *         | 0 -4 -4  1  1  0 |       | -1/6 -1/6  -1/6  |         | 0  1 -1  2 -2  0 |
 *         | 0  4 -4 -1  1  0 |       | -1/6  1/6  -1/6  |         | 0  1  1  4  4  0 |
 *         | 0 -2 -1  2  1  0 |       | 1/24  1/12  1/6  |         | 0  1 -1  8 -8  1 |
 *         | 0  2 -1 -2  1  0 |       | 1/24 -1/12  1/6  |
 *         | 0  4  0 -5  0  1 |       | 0     0     1    |
 * F(4,3) does 4x fewer multiplications than direct (F(2,3): 2.25x) but its transforms
 * scale values by up to 8 and 1/24, which costs accuracy: see tests/test_kernels.c.
 *
 * Tiles are processed in blocks (input transform -> a*a GEMMs -> output transform) so the
 * transformed data of a block stays in cache. On a pool, either whole blocks go to the
 * threads, each with its own scratch (many blocks), or each step of a block is split
 * across them: tiles for the transforms, (xi, column block) pairs for the GEMMs. Either
 * way a value's arithmetic is that of the serial loop. */
#include <string.h>

#include "conv3x3.h"
#include "gemm.h"
#include "parallel.h"
#include "simd.h"

#define MR GCAM_GEMM_MR
#define NR GCAM_GEMM_NR

static size_t gcam__wino_xi_floats(int32_t C, int32_t OC) {
  return ((size_t)OC + NR - 1) / NR * gcam__gemm_block_floats((size_t)C);
}

size_t gcam__conv3x3_wino_packed_floats(int m, int32_t C, int32_t OC) {
  const size_t a = (size_t)m + 2;
  return a * a * gcam__wino_xi_floats(C, OC) + (size_t)OC;
}

static const double gcam__G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double gcam__G4[6][3] = {{1.0 / 4, 0, 0},
                                      {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                      {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                      {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                      {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                      {0, 0, 1}};

void gcam__conv3x3_wino_pack_strided(int m, float *packed, const float *w, ptrdiff_t s_tap,
                                     ptrdiff_t s_in, ptrdiff_t s_out, const float *bias,
                                     int32_t C, int32_t OC) {
  const int a = m + 2;
  const double(*G)[3] = m == 4 ? gcam__G4 : gcam__G2;
  const size_t xi_floats = gcam__wino_xi_floats(C, OC), blk = gcam__gemm_block_floats(C);
  memset(packed, 0, (size_t)a * a * xi_floats * sizeof *packed); /* zero biases, padding */
  for (int32_t c = 0; c < C; c++)
    for (int32_t o = 0; o < OC; o++) {
      double g[3][3], t[6][3];
      for (int i = 0; i < 9; i++) g[i / 3][i % 3] = w[i * s_tap + c * s_in + o * s_out];
      for (int i = 0; i < a; i++) /* t = G g */
        for (int j = 0; j < 3; j++)
          t[i][j] = G[i][0] * g[0][j] + G[i][1] * g[1][j] + G[i][2] * g[2][j];
      for (int i = 0; i < a; i++) /* U = t G^T */
        for (int j = 0; j < a; j++) {
          const double u = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
          packed[(size_t)(i * a + j) * xi_floats + (size_t)(o / NR) * blk + NR +
                 (size_t)c * NR + o % NR] = (float)u;
        }
    }
  float *b = packed + (size_t)a * a * xi_floats;
  if (bias)
    memcpy(b, bias, (size_t)OC * sizeof *bias);
  else
    memset(b, 0, (size_t)OC * sizeof *b);
}

void gcam__conv3x3_wino_pack(int m, float *packed, const float *w_hwio, const float *bias,
                             int32_t C, int32_t OC) {
  gcam__conv3x3_wino_pack_strided(m, packed, w_hwio, (ptrdiff_t)C * OC, OC, 1, bias, C, OC);
}

int32_t gcam__conv3x3_wino_tiles(int m, int32_t H, int32_t W, int32_t C, int32_t OC,
                                 int32_t tiles) {
  const size_t a = (size_t)m + 2;
  const size_t all = (size_t)((H + m - 1) / m) * (size_t)((W + m - 1) / m);
  size_t t = (size_t)tiles;
  if (tiles <= 0) {
    /* Measured (wasm, VGG16 shapes): while the transformed weights U (a*a*C*OC floats) stay
     * cache-sized, small blocks win (V and M of a block stay in L2); once U is tens of MB it
     * is streamed from memory once per block, and large blocks amortize that. */
    const size_t u_bytes = a * a * (size_t)C * (size_t)OC * sizeof(float);
    t = u_bytes <= ((size_t)12 << 20) ? 12 : 96; /* multiples of MR */
  }
  return (int32_t)(t < all ? t : all);
}

/* Task slots of a layer on n_threads: 1 = one block at a time, each block's three steps
 * split across the pool (few large blocks: the deep layers); > 1 = each slot runs whole
 * blocks with scratch of its own (many blocks: the early layers, one trip through the pool). */
static int32_t gcam__wino_slots(size_t n_tiles, size_t T, int32_t n_threads) {
  const size_t n_blocks = (n_tiles + T - 1) / T;
  return n_threads > 1 && n_blocks >= (size_t)4 * (size_t)n_threads ? n_threads : 1;
}

static size_t gcam__wino_n_tiles(int m, int32_t H, int32_t W) {
  return (size_t)((H + m - 1) / m) * (size_t)((W + m - 1) / m);
}

size_t gcam__conv3x3_wino_scratch_floats_pool(int m, int32_t H, int32_t W, int32_t C,
                                              int32_t OC, int32_t tiles, int32_t n_threads) {
  const size_t a = (size_t)m + 2;
  const size_t T = (size_t)gcam__conv3x3_wino_tiles(m, H, W, C, OC, tiles);
  const size_t slots = (size_t)gcam__wino_slots(gcam__wino_n_tiles(m, H, W), T, n_threads);
  return (size_t)C + slots * a * a * T * ((size_t)C + (size_t)OC);
}

size_t gcam__conv3x3_wino_scratch_floats(int m, int32_t H, int32_t W, int32_t C, int32_t OC,
                                         int32_t tiles) {
  return gcam__conv3x3_wino_scratch_floats_pool(m, H, W, C, OC, tiles, 1);
}

static inline gcam_f32x4 gcam__load_n(const float *p, size_t n) {
  if (n >= 4) return gcam__f32x4_load(p);
  gcam_f32x4 v = {0.0f, 0.0f, 0.0f, 0.0f};
  memcpy(&v, p, n * sizeof(float));
  return v;
}

static inline void gcam__store_n(float *p, gcam_f32x4 v, size_t n) {
  if (n >= 4)
    gcam__f32x4_store(p, v);
  else
    memcpy(p, &v, n * sizeof(float));
}

/* F(2,3): V = B^T d B for channels [c, c+n) of one tile; d[r*4+q] points at input pixel
 * (r, q) of the tile; V[xi] is written at v + xi*xs */
static inline void gcam__wino2_input(float *v, size_t xs, const float *const *d, size_t c,
                                     size_t n) {
  gcam_f32x4 t[4][4];
  for (int q = 0; q < 4; q++) {
    const gcam_f32x4 d0 = gcam__load_n(d[q] + c, n), d1 = gcam__load_n(d[4 + q] + c, n);
    const gcam_f32x4 d2 = gcam__load_n(d[8 + q] + c, n), d3 = gcam__load_n(d[12 + q] + c, n);
    t[0][q] = d0 - d2;
    t[1][q] = d1 + d2;
    t[2][q] = d2 - d1;
    t[3][q] = d1 - d3;
  }
  for (int i = 0; i < 4; i++) {
    float *vi = v + (size_t)(i * 4) * xs + c;
    gcam__store_n(vi, t[i][0] - t[i][2], n);
    gcam__store_n(vi + xs, t[i][1] + t[i][2], n);
    gcam__store_n(vi + 2 * xs, t[i][2] - t[i][1], n);
    gcam__store_n(vi + 3 * xs, t[i][1] - t[i][3], n);
  }
}

/* F(2,3): Y = A^T M A + bias, ReLU, for channels [o, o+n) of one tile; M[xi] is read at
 * mm + xi*xs; y[i*2+j] is output pixel (i, j), or NULL outside the image */
static inline __attribute__((always_inline)) void gcam__wino2_output(
    float *const *y, const float *mm, size_t xs, const float *bias, size_t o, size_t n,
    int relu) {
  gcam_f32x4 s[2][4];
  for (int j = 0; j < 4; j++) {
    const float *mj = mm + (size_t)j * xs + o;
    const gcam_f32x4 m0 = gcam__load_n(mj, n), m1 = gcam__load_n(mj + 4 * xs, n);
    const gcam_f32x4 m2 = gcam__load_n(mj + 8 * xs, n), m3 = gcam__load_n(mj + 12 * xs, n);
    s[0][j] = m0 + m1 + m2;
    s[1][j] = m1 - m2 - m3;
  }
  const gcam_f32x4 b = gcam__load_n(bias + o, n);
  for (int i = 0; i < 2; i++) {
    const gcam_f32x4 r0 = s[i][0] + s[i][1] + s[i][2] + b, r1 = s[i][1] - s[i][2] - s[i][3] + b;
    if (y[i * 2]) gcam__store_n(y[i * 2] + o, relu ? gcam__f32x4_relu(r0) : r0, n);
    if (y[i * 2 + 1]) gcam__store_n(y[i * 2 + 1] + o, relu ? gcam__f32x4_relu(r1) : r1, n);
  }
}

/* r = B^T x for one 6-vector (F(4,3)) */
static inline void gcam__bt6(gcam_f32x4 *r, gcam_f32x4 x0, gcam_f32x4 x1, gcam_f32x4 x2,
                             gcam_f32x4 x3, gcam_f32x4 x4, gcam_f32x4 x5) {
  const gcam_f32x4 four = gcam__f32x4_splat(4.0f), five = gcam__f32x4_splat(5.0f);
  const gcam_f32x4 p = x4 - four * x2, q = x3 - four * x1;
  const gcam_f32x4 p2 = x4 - x2, q2 = gcam__f32x4_splat(2.0f) * (x3 - x1);
  r[0] = four * x0 - five * x2 + x4;
  r[1] = p + q;
  r[2] = p - q;
  r[3] = p2 + q2;
  r[4] = p2 - q2;
  r[5] = four * x1 - five * x3 + x5;
}

/* r = A^T x for one 6-vector (F(4,3)) */
static inline void gcam__at6(gcam_f32x4 *r, gcam_f32x4 x0, gcam_f32x4 x1, gcam_f32x4 x2,
                             gcam_f32x4 x3, gcam_f32x4 x4, gcam_f32x4 x5) {
  const gcam_f32x4 sp = x1 + x2, sm = x1 - x2, tp = x3 + x4, tm = x3 - x4;
  r[0] = x0 + sp + tp;
  r[1] = sm + gcam__f32x4_splat(2.0f) * tm;
  r[2] = sp + gcam__f32x4_splat(4.0f) * tp;
  r[3] = sm + gcam__f32x4_splat(8.0f) * tm + x5;
}

static inline void gcam__wino4_input(float *v, size_t xs, const float *const *d, size_t c,
                                     size_t n) {
  gcam_f32x4 t[6][6]; /* t[i][q] = (B^T d)[i][q] */
  for (int q = 0; q < 6; q++) {
    gcam_f32x4 r[6];
    gcam__bt6(r, gcam__load_n(d[q] + c, n), gcam__load_n(d[6 + q] + c, n),
              gcam__load_n(d[12 + q] + c, n), gcam__load_n(d[18 + q] + c, n),
              gcam__load_n(d[24 + q] + c, n), gcam__load_n(d[30 + q] + c, n));
    for (int i = 0; i < 6; i++) t[i][q] = r[i];
  }
  for (int i = 0; i < 6; i++) {
    gcam_f32x4 r[6];
    gcam__bt6(r, t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5]);
    for (int j = 0; j < 6; j++) gcam__store_n(v + (size_t)(i * 6 + j) * xs + c, r[j], n);
  }
}

static inline __attribute__((always_inline)) void gcam__wino4_output(
    float *const *y, const float *mm, size_t xs, const float *bias, size_t o, size_t n,
    int relu) {
  gcam_f32x4 s[4][6]; /* s[i][j] = (A^T M)[i][j] */
  for (int j = 0; j < 6; j++) {
    const float *mj = mm + (size_t)j * xs + o;
    gcam_f32x4 r[4];
    gcam__at6(r, gcam__load_n(mj, n), gcam__load_n(mj + 6 * xs, n),
              gcam__load_n(mj + 12 * xs, n), gcam__load_n(mj + 18 * xs, n),
              gcam__load_n(mj + 24 * xs, n), gcam__load_n(mj + 30 * xs, n));
    for (int i = 0; i < 4; i++) s[i][j] = r[i];
  }
  const gcam_f32x4 b = gcam__load_n(bias + o, n);
  for (int i = 0; i < 4; i++) {
    gcam_f32x4 r[4];
    gcam__at6(r, s[i][0], s[i][1], s[i][2], s[i][3], s[i][4], s[i][5]);
    for (int j = 0; j < 4; j++)
      if (y[i * 4 + j])
        gcam__store_n(y[i * 4 + j] + o, relu ? gcam__f32x4_relu(r[j] + b) : r[j] + b, n);
  }
}

/* The geometry of one convolution by F(m,3), shared by the three steps of a tile block. */
typedef struct {
  int m, a;            /* output tile m x m, input tile a x a, a = m + 2 */
  int32_t H, W, C, OC; /* the layer */
  int32_t TW;          /* tiles per row */
  size_t v_xi, m_xi;   /* floats of one xi's rows in V (T x C) and in M (T x OC) */
  int relu;            /* 0 for the backward (conv3x3_backward.c) */
} gcam__wino_geom;

/* V[xi][t] = B^T d B for tiles t0 .. t0+tb-1 */
static void gcam__wino_input_block(const gcam__wino_geom *g, float *V, const float *in,
                                   const float *zero, size_t t0, size_t tb) {
  for (size_t t = 0; t < tb; t++) {
    const int32_t ty = (int32_t)((t0 + t) / (size_t)g->TW);
    const int32_t tx = (int32_t)((t0 + t) % (size_t)g->TW);
    const float *d[36];
    for (int r = 0; r < g->a; r++)
      for (int q = 0; q < g->a; q++) {
        const int32_t iy = g->m * ty - 1 + r, ix = g->m * tx - 1 + q;
        d[r * g->a + q] = (iy < 0 || iy >= g->H || ix < 0 || ix >= g->W)
                              ? zero
                              : in + ((size_t)iy * g->W + ix) * g->C;
      }
    for (size_t c = 0; c < (size_t)g->C; c += 4) {
      if (g->m == 4)
        gcam__wino4_input(V + t * g->C, g->v_xi, d, c, (size_t)g->C - c);
      else
        gcam__wino2_input(V + t * g->C, g->v_xi, d, c, (size_t)g->C - c);
    }
  }
}

/* M[xi] (tb x OC) = V[xi] (tb x C) . U[xi] (C x OC) for the units [u0, u1) of
 * (xi, oc_block columns), xi-major: each unit writes its own columns of one M[xi] */
static void gcam__wino_gemm_block(const gcam__wino_geom *g, float *M, const float *V,
                                  const float *packed, size_t tb, int32_t ocb, size_t u0,
                                  size_t u1) {
  const size_t xi_floats = gcam__wino_xi_floats(g->C, g->OC);
  const size_t blk = gcam__gemm_block_floats((size_t)g->C);
  const size_t n_ocb = ((size_t)g->OC + (size_t)ocb - 1) / (size_t)ocb;
  for (size_t u = u0; u < u1; u++) {
    const size_t xi = u / n_ocb;
    const int32_t oc0 = (int32_t)(u % n_ocb) * ocb;
    const float *vx = V + xi * g->v_xi;
    float *mx = M + xi * g->m_xi;
    const size_t nc = (size_t)(g->OC - oc0 < ocb ? g->OC - oc0 : ocb);
    const float *w = packed + xi * xi_floats + (size_t)(oc0 / NR) * blk;
    for (size_t r0 = 0; r0 < tb; r0 += MR) {
      const size_t mr = tb - r0 < MR ? tb - r0 : MR;
      const float *ap[MR];
      for (size_t k = 0; k < MR; k++) ap[k] = vx + (r0 + (k < mr ? k : mr - 1)) * g->C;
      gcam__f32_igemm_ukernel_4x8__vec(mr, nc, (size_t)g->C, 1, ap, w, mx + r0 * g->OC + oc0,
                                      (size_t)g->OC);
    }
  }
}

/* out = ReLU(A^T M A + bias) (without the ReLU when relu = 0) for tiles t0 .. t0+tb-1,
 * cropped to the image; `relu` is a constant after inlining */
static inline __attribute__((always_inline)) void gcam__wino_output_tiles(
    const gcam__wino_geom *g, float *out, const float *M, const float *bias, size_t t0,
    size_t tb, int relu) {
  for (size_t t = 0; t < tb; t++) {
    const int32_t ty = (int32_t)((t0 + t) / (size_t)g->TW);
    const int32_t tx = (int32_t)((t0 + t) % (size_t)g->TW);
    float *y[16];
    for (int i = 0; i < g->m * g->m; i++) {
      const int32_t oy = g->m * ty + i / g->m, ox = g->m * tx + i % g->m;
      y[i] = (oy < g->H && ox < g->W) ? out + ((size_t)oy * g->W + ox) * g->OC : NULL;
    }
    for (size_t o = 0; o < (size_t)g->OC; o += 4) {
      if (g->m == 4)
        gcam__wino4_output(y, M + t * g->OC, g->m_xi, bias, o, (size_t)g->OC - o, relu);
      else
        gcam__wino2_output(y, M + t * g->OC, g->m_xi, bias, o, (size_t)g->OC - o, relu);
    }
  }
}

static void gcam__wino_output_block(const gcam__wino_geom *g, float *out, const float *M,
                                    const float *bias, size_t t0, size_t tb) {
  if (g->relu)
    gcam__wino_output_tiles(g, out, M, bias, t0, tb, 1);
  else
    gcam__wino_output_tiles(g, out, M, bias, t0, tb, 0);
}

/* One layer's work as pool tasks. In slot mode (n_slots > 1) task t runs whole blocks with
 * scratch slot t; otherwise the blocks go one by one and each step is split into n_tasks. */
typedef struct {
  gcam__wino_geom g;
  float *out, *scratch;
  const float *in, *packed, *bias, *zero;
  size_t T, n_tiles, n_units, slot_floats;
  int32_t ocb, n_tasks;
  size_t t0, tb; /* the current block (step mode) */
} gcam__wino_job;

static void gcam__wino_run_block(const gcam__wino_job *j, float *V, size_t t0, size_t tb) {
  float *M = V + (size_t)j->g.a * j->g.a * j->g.v_xi;
  gcam__wino_input_block(&j->g, V, j->in, j->zero, t0, tb);
  gcam__wino_gemm_block(&j->g, M, V, j->packed, tb, j->ocb, 0, j->n_units);
  gcam__wino_output_block(&j->g, j->out, M, j->bias, t0, tb);
}

static void gcam__wino_slot_task(void *context, int32_t task) {
  const gcam__wino_job *j = context;
  size_t b0, b1;
  gcam__split((j->n_tiles + j->T - 1) / j->T, j->n_tasks, task, &b0, &b1);
  float *V = j->scratch + (size_t)task * j->slot_floats;
  for (size_t b = b0; b < b1; b++) {
    const size_t t0 = b * j->T;
    gcam__wino_run_block(j, V, t0, j->n_tiles - t0 < j->T ? j->n_tiles - t0 : j->T);
  }
}

static void gcam__wino_input_task(void *context, int32_t task) {
  const gcam__wino_job *j = context;
  size_t s, e;
  gcam__split(j->tb, j->n_tasks, task, &s, &e);
  gcam__wino_input_block(&j->g, j->scratch + s * (size_t)j->g.C, j->in, j->zero, j->t0 + s,
                         e - s);
}

static void gcam__wino_gemm_task(void *context, int32_t task) {
  const gcam__wino_job *j = context;
  size_t u0, u1;
  gcam__split(j->n_units, j->n_tasks, task, &u0, &u1);
  const float *V = j->scratch;
  float *M = j->scratch + (size_t)j->g.a * j->g.a * j->g.v_xi;
  gcam__wino_gemm_block(&j->g, M, V, j->packed, j->tb, j->ocb, u0, u1);
}

static void gcam__wino_output_task(void *context, int32_t task) {
  const gcam__wino_job *j = context;
  size_t s, e;
  gcam__split(j->tb, j->n_tasks, task, &s, &e);
  const float *M = j->scratch + (size_t)j->g.a * j->g.a * j->g.v_xi;
  gcam__wino_output_block(&j->g, j->out, M + s * (size_t)j->g.OC, j->bias, j->t0 + s, e - s);
}

static int32_t gcam__min_tasks(int32_t n_threads, size_t units) {
  return units < (size_t)n_threads ? (int32_t)(units > 0 ? units : 1) : n_threads;
}

void gcam__conv3x3_wino_run_pool(int m, float *out, const float *in, const float *packed,
                                 int32_t H, int32_t W, int32_t C, int32_t OC, float *scratch,
                                 int32_t tiles, int32_t oc_block, int relu,
                                 const gcam_threadpool *pool) {
  gcam__wino_job j;
  memset(&j, 0, sizeof j);
  j.T = (size_t)gcam__conv3x3_wino_tiles(m, H, W, C, OC, tiles);
  j.g = (gcam__wino_geom){m, m + 2, H, W, C, OC, (W + m - 1) / m, j.T * (size_t)C,
                          j.T * (size_t)OC, relu};
  j.n_tiles = gcam__wino_n_tiles(m, H, W);
  j.out = out, j.in = in, j.packed = packed;
  j.bias = packed + (size_t)j.g.a * j.g.a * gcam__wino_xi_floats(C, OC);
  j.ocb = oc_block > 0 ? oc_block : gcam__conv3x3_oc_block(C, OC);
  j.n_units = (size_t)j.g.a * j.g.a * (((size_t)OC + (size_t)j.ocb - 1) / (size_t)j.ocb);
  j.slot_floats = (size_t)j.g.a * j.g.a * j.T * ((size_t)C + (size_t)OC);
  float *zero = scratch;
  memset(zero, 0, (size_t)C * sizeof *zero);
  j.zero = zero, j.scratch = scratch + C;

  const int32_t n_threads = gcam__pool_threads(pool);
  const int32_t slots = gcam__wino_slots(j.n_tiles, j.T, n_threads);
  if (slots > 1) {
    j.n_tasks = slots;
    gcam__parallel_for(pool, gcam__wino_slot_task, &j, j.n_tasks);
    return;
  }
  for (j.t0 = 0; j.t0 < j.n_tiles; j.t0 += j.T) {
    j.tb = j.n_tiles - j.t0 < j.T ? j.n_tiles - j.t0 : j.T;
    if (n_threads == 1) {
      gcam__wino_run_block(&j, j.scratch, j.t0, j.tb);
      continue;
    }
    j.n_tasks = gcam__min_tasks(n_threads, j.tb);
    gcam__parallel_for(pool, gcam__wino_input_task, &j, j.n_tasks);
    j.n_tasks = gcam__min_tasks(n_threads, j.n_units);
    gcam__parallel_for(pool, gcam__wino_gemm_task, &j, j.n_tasks);
    j.n_tasks = gcam__min_tasks(n_threads, j.tb);
    gcam__parallel_for(pool, gcam__wino_output_task, &j, j.n_tasks);
  }
}

void gcam__conv3x3_wino_forward_pool(int m, float *out, const float *in, const float *packed,
                                     int32_t H, int32_t W, int32_t C, int32_t OC,
                                     float *scratch, int32_t tiles, int32_t oc_block,
                                     const gcam_threadpool *pool) {
  gcam__conv3x3_wino_run_pool(m, out, in, packed, H, W, C, OC, scratch, tiles, oc_block, 1,
                              pool);
}

void gcam__conv3x3_wino_forward(int m, float *out, const float *in, const float *packed,
                                int32_t H, int32_t W, int32_t C, int32_t OC, float *scratch,
                                int32_t tiles, int32_t oc_block) {
  gcam__conv3x3_wino_forward_pool(m, out, in, packed, H, W, C, OC, scratch, tiles, oc_block,
                                  NULL);
}
