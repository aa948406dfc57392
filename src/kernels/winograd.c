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
static inline __attribute__((always_inline)) void gcam__wino2_input(
    float *v, size_t xs, const float *const *d, size_t c, size_t n, const gcam_f32x4 *ds) {
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
    const gcam_f32x4 r[4] = {t[i][0] - t[i][2], t[i][1] + t[i][2], t[i][2] - t[i][1],
                             t[i][1] - t[i][3]};
    for (int j = 0; j < 4; j++)
      gcam__store_n(vi + (size_t)j * xs, ds ? r[j] * ds[i * 4 + j] : r[j], n);
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

static inline __attribute__((always_inline)) void gcam__wino4_input(
    float *v, size_t xs, const float *const *d, size_t c, size_t n, const gcam_f32x4 *ds) {
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
    for (int j = 0; j < 6; j++)
      gcam__store_n(v + (size_t)(i * 6 + j) * xs + c, ds ? r[j] * ds[i * 6 + j] : r[j], n);
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
  size_t ostride;      /* floats between output pixels (OC, or more for a slice of columns) */
  int relu;            /* 0 for the backward (conv3x3_backward.c) */
} gcam__wino_geom;

/* V[xi][t] = B^T d B for tiles t0 .. t0+tb-1, each V[xi] times ds[xi] (splatted) when ds is
 * not NULL (a constant after inlining) */
static inline __attribute__((always_inline)) void gcam__wino_input_tiles(
    const gcam__wino_geom *g, float *V, const float *in, const float *zero, size_t t0,
    size_t tb, const gcam_f32x4 *ds) {
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
        gcam__wino4_input(V + t * g->C, g->v_xi, d, c, (size_t)g->C - c, ds);
      else
        gcam__wino2_input(V + t * g->C, g->v_xi, d, c, (size_t)g->C - c, ds);
    }
  }
}

static void gcam__wino_input_block(const gcam__wino_geom *g, float *V, const float *in,
                                   const float *zero, size_t t0, size_t tb) {
  gcam__wino_input_tiles(g, V, in, zero, t0, tb, NULL);
}

/* the scale of V[xi] the fused compact path's integer weight transform needs (gcam__wino_gi) */
static void gcam__wino_input_block_scaled(const gcam__wino_geom *g, float *V, const float *in,
                                          const float *zero, size_t t0, size_t tb) {
  static const double d4[6] = {1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 1};
  static const double d2[4] = {1, 0.5, 0.5, 1};
  const double *dd = g->m == 4 ? d4 : d2;
  gcam_f32x4 ds[36];
  for (int i = 0; i < g->a; i++)
    for (int j = 0; j < g->a; j++) ds[i * g->a + j] = gcam__f32x4_splat((float)(dd[i] * dd[j]));
  gcam__wino_input_tiles(g, V, in, zero, t0, tb, ds);
}

/* M[xi] (tb x OC) = V[xi] (tb x C) . U[xi] (C x OC) for the units [u0, u1) of
 * (xi, oc_block columns), xi-major: each unit writes its own columns of one M[xi]. `packed`
 * holds columns [col0, col0 + cols) of U (all of them: 0, OC), laid out as a cols-wide layer. */
static void gcam__wino_gemm_block(const gcam__wino_geom *g, float *M, const float *V,
                                  const float *packed, size_t tb, int32_t ocb, size_t u0,
                                  size_t u1, int32_t col0, int32_t cols) {
  const size_t xi_floats = gcam__wino_xi_floats(g->C, cols);
  const size_t blk = gcam__gemm_block_floats((size_t)g->C);
  const size_t n_ocb = ((size_t)cols + (size_t)ocb - 1) / (size_t)ocb;
  for (size_t u = u0; u < u1; u++) {
    const size_t xi = u / n_ocb;
    const int32_t oc0 = (int32_t)(u % n_ocb) * ocb;
    const float *vx = V + xi * g->v_xi;
    float *mx = M + xi * g->m_xi + col0;
    const size_t nc = (size_t)(cols - oc0 < ocb ? cols - oc0 : ocb);
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
      y[i] = (oy < g->H && ox < g->W) ? out + ((size_t)oy * g->W + ox) * g->ostride : NULL;
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
  int32_t col0, cols; /* the columns `packed` holds (0, OC; or a compact slice) */
  int scaled_v;       /* V for gcam__wino_gi's weights U' (the compact paths) */
  size_t t0, tb; /* the current block (step mode) */
} gcam__wino_job;

static void gcam__wino_run_block(const gcam__wino_job *j, float *V, size_t t0, size_t tb) {
  float *M = V + (size_t)j->g.a * j->g.a * j->g.v_xi;
  (j->scaled_v ? gcam__wino_input_block_scaled
               : gcam__wino_input_block)(&j->g, V, j->in, j->zero, t0, tb);
  gcam__wino_gemm_block(&j->g, M, V, j->packed, tb, j->ocb, 0, j->n_units, j->col0, j->cols);
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
  (j->scaled_v ? gcam__wino_input_block_scaled
               : gcam__wino_input_block)(&j->g, j->scratch + s * (size_t)j->g.C, j->in, j->zero,
                                         j->t0 + s, e - s);
}

static void gcam__wino_gemm_task(void *context, int32_t task) {
  const gcam__wino_job *j = context;
  size_t u0, u1;
  gcam__split(j->n_units, j->n_tasks, task, &u0, &u1);
  const float *V = j->scratch;
  float *M = j->scratch + (size_t)j->g.a * j->g.a * j->g.v_xi;
  gcam__wino_gemm_block(&j->g, M, V, j->packed, j->tb, j->ocb, u0, u1, j->col0, j->cols);
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

/* the layer (or, with ostride > OC, a slice of its output columns) */
static void gcam__wino_job_init(gcam__wino_job *jp, int m, float *out, size_t ostride,
                                const float *in, const float *packed, int32_t H, int32_t W,
                                int32_t C, int32_t OC, float *scratch, int32_t tiles,
                                int32_t oc_block, int relu) {
  gcam__wino_job j;
  memset(&j, 0, sizeof j);
  j.T = (size_t)gcam__conv3x3_wino_tiles(m, H, W, C, OC, tiles);
  j.g = (gcam__wino_geom){m, m + 2, H, W, C, OC, (W + m - 1) / m, j.T * (size_t)C,
                          j.T * (size_t)OC, ostride, relu};
  j.n_tiles = gcam__wino_n_tiles(m, H, W);
  j.out = out, j.in = in, j.packed = packed;
  j.bias = packed + (size_t)j.g.a * j.g.a * gcam__wino_xi_floats(C, OC);
  j.ocb = oc_block > 0 ? oc_block : gcam__conv3x3_oc_block(C, OC);
  j.n_units = (size_t)j.g.a * j.g.a * (((size_t)OC + (size_t)j.ocb - 1) / (size_t)j.ocb);
  j.slot_floats = (size_t)j.g.a * j.g.a * j.T * ((size_t)C + (size_t)OC);
  float *zero = scratch;
  memset(zero, 0, (size_t)C * sizeof *zero);
  j.zero = zero, j.scratch = scratch + C;
  j.col0 = 0, j.cols = OC;
  *jp = j;
}

static void gcam__wino_forward(int m, float *out, size_t ostride, const float *in,
                               const float *packed, int32_t H, int32_t W, int32_t C, int32_t OC,
                               float *scratch, int32_t tiles, int32_t oc_block, int relu,
                               int scaled_v, const gcam_threadpool *pool) {
  gcam__wino_job j;
  gcam__wino_job_init(&j, m, out, ostride, in, packed, H, W, C, OC, scratch, tiles, oc_block,
                      relu);
  j.scaled_v = scaled_v;
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
  gcam__wino_forward(m, out, (size_t)OC, in, packed, H, W, C, OC, scratch, tiles, oc_block, 1, 0,
                     pool);
}

void gcam__conv3x3_wino_run_pool(int m, float *out, const float *in, const float *packed,
                                 int32_t H, int32_t W, int32_t C, int32_t OC, float *scratch,
                                 int32_t tiles, int32_t oc_block, int relu,
                                 const gcam_threadpool *pool) {
  gcam__wino_forward(m, out, (size_t)OC, in, packed, H, W, C, OC, scratch, tiles, oc_block, relu,
                     0, pool);
}

/* ---- compact weights: transformed when the layer runs ---------------------------------------
 * GCAM_MEMORY_COMPACT keeps a layer's 3x3 weights as they came (HWIO, f32 or f16: 1/4 of the
 * F(4,3) packed size) and transforms them each time the layer runs, into a scratch of at most
 * GCAM__COMPACT_BUDGET bytes. A layer of many tile blocks: the whole layer when its U fits,
 * else slices of output columns, each slice a small layer of its own (the input transform is
 * redone per slice: 2/OC of the GEMM's work per slice). A layer of one block: the fused path
 * below. The transform is f32 SIMD over 4 output channels with the integer G' (the fast
 * layout's is done once in double with G), split over input channels on a pool. */
#define GCAM__COMPACT_BUDGET ((size_t)12 << 20)

/* The fused one-block path (below): its column group and channel chunk by default, measured
 * with bench_kernels compact-tune (natively and in wasm, see README), and the distance of its
 * transformed planes, a constant so that the transform's 36 stores a column group take
 * immediate offsets (natively [base + imm], in wasm v128.store offset=) and no address
 * arithmetic; any cw, kc the caller gives is narrowed to fit it. */
#define GCAM__FUSED_CW 32
#define GCAM__FUSED_KC 128
#define GCAM__FUSED_XS ((size_t)4160) /* cw x kc of 64 x 64, 32 x 128 or 16 x 256 (+ biases) */
#define GCAM__FUSED_TASKS 4 /* buffers the pack scratch has room for next to the copy */

static size_t gcam__wino_u_floats(int m, int32_t C, int32_t cols) {
  return gcam__conv3x3_wino_packed_floats(m, C, cols);
}

int32_t gcam__conv3x3_wino_compact_cols(int m, int32_t C, int32_t OC) {
  const size_t budget = GCAM__COMPACT_BUDGET / sizeof(float);
  if (gcam__wino_u_floats(m, C, OC) <= budget) return OC;
  size_t per_block = gcam__wino_u_floats(m, C, NR); /* one NR column block, its bias */
  size_t blocks = budget / per_block;
  if (blocks < 1) blocks = 1;
  const size_t nblk = ((size_t)OC + NR - 1) / NR;
  const size_t slices = (nblk + blocks - 1) / blocks; /* balanced */
  return (int32_t)((nblk + slices - 1) / slices * NR);
}

static size_t gcam__wino_fused_copy_floats(int m, int32_t C, int32_t OC);
static size_t gcam__wino_fused_ubuf_floats(int m);

/* the slice of the many-block path, or the fused path's needs (one-block layers): its copy
 * of the weights and buffers, or at least one buffer */
size_t gcam__conv3x3_wino_compact_scratch_floats(int m, int32_t C, int32_t OC) {
  size_t f = gcam__wino_u_floats(m, C, gcam__conv3x3_wino_compact_cols(m, C, OC));
  const size_t copy = gcam__wino_fused_copy_floats(m, C, OC), ubuf = gcam__wino_fused_ubuf_floats(m);
  f = copy > f ? copy : f;
  return ubuf > f ? ubuf : f;
}

/* `packed` is laid out as a (K -> o1-o0) layer holding input channels [cb, cb+K) of columns
 * [o0, o1): the whole slice (cb = 0, K = C, w the HWIO weights), or one chunk of channels
 * (the fused path, w a staged copy of the chunk) */
typedef struct {
  int m;
  float *packed;
  const void *w;
  gcam__dtype dt;
  int32_t C, OC, o0, o1, n_tasks;
  int32_t cb, K;
  size_t ld_c, ld_tap; /* elements of w between channels, between taps: w is (tap 0, cb, o0) */
} gcam__wino_pack_job;

/* weights p[0 .. n-1] (n <= 4) of storage type dt, lanes past n zero */
static inline __attribute__((always_inline)) gcam_f32x4 gcam__wino_w4(const char *p, size_t n,
                                                                      gcam__dtype dt) {
  if (n >= 4)
    return dt == GCAM__DTYPE_F16 ? gcam__f16x4_load((const uint16_t *)p)
                                 : gcam__f32x4_load((const float *)p);
  gcam_f32x4 v = {0.0f, 0.0f, 0.0f, 0.0f};
  for (size_t l = 0; l < n; l++)
    v[l] = dt == GCAM__DTYPE_F16 ? gcam__f16_to_f32(((const uint16_t *)p)[l])
                                 : ((const float *)p)[l];
  return v;
}

/* r = G' x, G = D G' with D = diag(1/4, -1/6, -1/6, 1/24, 1/24, 1) (F(4,3)) or diag(1, 1/2,
 * 1/2, 1) (F(2,3)): G' has small integer entries, so U' = G' g G'^T = U / (d_i d_j) takes 7
 * adds a 3-vector (G itself: 12 operations and 5 constants) and the scale moves to V
 * (gcam__wino_input_block_scaled), where it costs one multiply per value of a much smaller
 * array (in wasm, G with its constants spelled out took ~20% more time for the whole
 * transform). G'(4,3) rows: (1 0 0) (1 1 1) (1 -1 1) (1 2 4) (1 -2 4) (0 0 1). The weights
 * are rounded to f32 along the way, so U' V' differs from the fast layout's U V (U in
 * double, rounded once) by rounding. */
static inline void gcam__wino_gi(int m, gcam_f32x4 *r, gcam_f32x4 x0, gcam_f32x4 x1,
                                 gcam_f32x4 x2) {
  const gcam_f32x4 p = x0 + x2;
  r[0] = x0, r[1] = p + x1, r[2] = p - x1;
  if (m == 4) {
    const gcam_f32x4 x1_2 = x1 + x1, x2_2 = x2 + x2, s = x0 + (x2_2 + x2_2);
    r[3] = s + x1_2, r[4] = s - x1_2, r[5] = x2;
  } else {
    r[3] = x2;
  }
}

/* U' = G' g G'^T of 4 columns (n <= 4 of them real, the other lanes not stored) of one
 * channel: g[k] = (tap k) at r[k]; U'[xi] written at base + xi*xs. Row by row of G' g, each
 * row's three values then its a values of U' stored, the rows sharing terms together: at
 * most ~14 vectors live (the loop over l for G g, then G^T, kept 18 values and spilled with
 * gcc on SSE's 16 registers). */
static inline __attribute__((always_inline)) void gcam__wino_pack_col4(
    int m, float *base, size_t xs, const char *const *r, size_t n, gcam__dtype dt) {
  const int a = m + 2;
  gcam_f32x4 g[9], u[6], p[3], q[3];
  for (int k = 0; k < 9; k++) g[k] = gcam__wino_w4(r[k], n, dt);
  gcam__wino_gi(m, u, g[0], g[1], g[2]); /* row 0: g's first row */
  for (int l = 0; l < a; l++) gcam__store_n(base + (size_t)l * xs, u[l], n);
  gcam__wino_gi(m, u, g[6], g[7], g[8]); /* row a-1: its last */
  for (int l = 0; l < a; l++) gcam__store_n(base + (size_t)((a - 1) * a + l) * xs, u[l], n);
  for (int l = 0; l < 3; l++) {
    p[l] = g[l] + g[6 + l];
    q[l] = m == 4 ? g[l] + (g[6 + l] + g[6 + l]) + (g[6 + l] + g[6 + l]) : p[l];
  }
  for (int i = 1; i < a - 1; i++) {
    gcam_f32x4 x[3];
    for (int l = 0; l < 3; l++) {
      const gcam_f32x4 h = g[3 + l];
      x[l] = i == 1 ? p[l] + h : i == 2 ? p[l] - h : i == 3 ? q[l] + (h + h) : q[l] - (h + h);
    }
    gcam__wino_gi(m, u, x[0], x[1], x[2]);
    for (int l = 0; l < a; l++) gcam__store_n(base + (size_t)(i * a + l) * xs, u[l], n);
  }
}

/* U' for input channels [c0, c1) of columns [o0, o1), 4 columns at a time (the last
 * group padded with zeros, its extra lanes not stored). The weights are read along their
 * rows: per channel, the slice's columns of the 9 taps through 9 pointers that each step by
 * one row, so the loads form 9 steady streams the hardware prefetchers follow and each cache
 * line is fetched once (a rolled loop over the taps, one load jumping by C*OC, was measured
 * to spend most of the transform waiting on memory). `m`, `dt` and `fused` are constants
 * after inlining: with m known the loops over the a x a values unroll and their arrays live
 * in registers, which V8 needs (with m read from the job, the transform took 4.3 ms a 512 x
 * 512 layer in wasm, twice its native time), and whole groups of 4 run without the tail's
 * tests. `fused`: the planes GCAM__FUSED_XS apart (else those of a K x cols layer). */
static inline __attribute__((always_inline)) void gcam__wino_pack_rows(
    const gcam__wino_pack_job *j, size_t c0, size_t c1, int m, gcam__dtype dt, int fused) {
  const int32_t cols = j->o1 - j->o0;
  const size_t xi_floats = fused ? GCAM__FUSED_XS : gcam__wino_xi_floats(j->K, cols);
  const size_t blk = gcam__gemm_block_floats(j->K);
  const size_t es = dt == GCAM__DTYPE_F16 ? 2 : 4, step = j->ld_c * es;
  const char *r[9];
  for (int k = 0; k < 9; k++)
    r[k] = (const char *)j->w + ((size_t)k * j->ld_tap + (c0 - (size_t)j->cb) * j->ld_c) * es;
  const int32_t full = cols / 4 * 4;
  for (size_t c = c0; c < c1; c++) {
    float *row = j->packed + NR + (c - (size_t)j->cb) * NR;
    const char *rq[9];
    for (int32_t q = 0; q < full; q += 4) {
      for (int k = 0; k < 9; k++) rq[k] = r[k] + (size_t)q * es;
      gcam__wino_pack_col4(m, row + (size_t)(q / NR) * blk + (size_t)(q % NR), xi_floats, rq, 4,
                           dt);
    }
    if (full < cols) {
      for (int k = 0; k < 9; k++) rq[k] = r[k] + (size_t)full * es;
      gcam__wino_pack_col4(m, row + (size_t)(full / NR) * blk + (size_t)(full % NR), xi_floats,
                           rq, (size_t)(cols - full), dt);
    }
    for (int k = 0; k < 9; k++) r[k] += step;
  }
}

/* the instances: (m, dt) of the slice path, and of the fused path */
#define GCAM__WINO_PACK_ROWS(name, m, dt, ig)                                                    \
  static void name(const gcam__wino_pack_job *j, size_t c0, size_t c1) {                        \
    gcam__wino_pack_rows(j, c0, c1, m, dt, ig);                                                  \
  }
GCAM__WINO_PACK_ROWS(gcam__wino_pack_rows_4_f32, 4, GCAM__DTYPE_F32, 0)
GCAM__WINO_PACK_ROWS(gcam__wino_pack_rows_4_f16, 4, GCAM__DTYPE_F16, 0)
GCAM__WINO_PACK_ROWS(gcam__wino_pack_rows_2_f32, 2, GCAM__DTYPE_F32, 0)
GCAM__WINO_PACK_ROWS(gcam__wino_pack_rows_2_f16, 2, GCAM__DTYPE_F16, 0)
GCAM__WINO_PACK_ROWS(gcam__wino_pack_rows_4_f32_fused, 4, GCAM__DTYPE_F32, 1)
GCAM__WINO_PACK_ROWS(gcam__wino_pack_rows_4_f16_fused, 4, GCAM__DTYPE_F16, 1)
GCAM__WINO_PACK_ROWS(gcam__wino_pack_rows_2_f32_fused, 2, GCAM__DTYPE_F32, 1)
GCAM__WINO_PACK_ROWS(gcam__wino_pack_rows_2_f16_fused, 2, GCAM__DTYPE_F16, 1)

static void gcam__wino_pack_rows_any(const gcam__wino_pack_job *j, size_t c0, size_t c1,
                                     gcam__dtype dt, int fused) {
  void (*const fn[2][2][2])(const gcam__wino_pack_job *, size_t, size_t) = {
      {{gcam__wino_pack_rows_2_f32, gcam__wino_pack_rows_2_f16},
       {gcam__wino_pack_rows_2_f32_fused, gcam__wino_pack_rows_2_f16_fused}},
      {{gcam__wino_pack_rows_4_f32, gcam__wino_pack_rows_4_f16},
       {gcam__wino_pack_rows_4_f32_fused, gcam__wino_pack_rows_4_f16_fused}}};
  fn[j->m == 4][fused != 0][dt == GCAM__DTYPE_F16](j, c0, c1);
}

static void gcam__wino_pack_task(void *context, int32_t task) {
  const gcam__wino_pack_job *j = context;
  size_t c0, c1;
  gcam__split((size_t)j->C, j->n_tasks, task, &c0, &c1);
  gcam__wino_pack_rows_any(j, c0, c1, j->dt, 0);
}

/* zero biases and padding columns of a (K -> cols) packed layout, planes xi_floats apart */
static void gcam__wino_zero_pad(float *packed, int a, int32_t K, int32_t cols,
                                size_t xi_floats) {
  const size_t blk = gcam__gemm_block_floats(K);
  const size_t nblk = ((size_t)cols + NR - 1) / NR, pad = nblk * NR - (size_t)cols;
  for (int xi = 0; xi < a * a; xi++)
    for (size_t b = 0; b < nblk; b++) {
      float *p = packed + (size_t)xi * xi_floats + b * blk;
      memset(p, 0, NR * sizeof *p);
      if (pad && b == nblk - 1)
        for (size_t c = 0; c < (size_t)K; c++)
          memset(p + NR + c * NR + (NR - pad), 0, pad * sizeof *p);
    }
}

/* columns [o0, o1) of the layer packed as a (C -> o1-o0) layer: zero biases and padding,
 * the transform on the pool, then the slice's biases */
static void gcam__wino_pack_slice(int m, float *packed, const void *w, gcam__dtype dt,
                                  const float *bias, int32_t C, int32_t OC, int32_t o0,
                                  int32_t o1, const gcam_threadpool *pool) {
  const int a = m + 2;
  const int32_t cols = o1 - o0;
  const size_t xi_floats = gcam__wino_xi_floats(C, cols);
  gcam__wino_zero_pad(packed, a, C, cols, xi_floats);
  const size_t es = dt == GCAM__DTYPE_F16 ? 2 : 4;
  gcam__wino_pack_job j = {m,  packed, (const char *)w + (size_t)o0 * es, dt, C, OC, o0, o1,
                           gcam__pool_threads(pool), 0, C, (size_t)OC, (size_t)C * OC};
  if (j.n_tasks > C) j.n_tasks = C;
  gcam__parallel_for(pool, gcam__wino_pack_task, &j, j.n_tasks);
  memcpy(packed + (size_t)a * a * xi_floats, bias + o0, (size_t)cols * sizeof *bias);
}

/* A layer whose tiles make one block (VGG16's 28x28 and 14x14 layers), fused: the input
 * transform V once; then per group of `cw` output columns, per chunk of `kc` input channels,
 * that chunk of the group's weights transformed into a buffer of the task's own (36 x kc x cw
 * floats: L2-sized) and the 36 GEMMs V[xi] (tiles x kc) . U[xi] (kc x cw) accumulated into the
 * group's M; once the group's chunks are done, its output transform. The transformed weights
 * never leave the cache (the sliced path wrote and re-read 37.7 MB per 512x512 layer), and
 * the group's M stays there between chunks. A k-split GEMM sums in the order of the whole-k
 * one (gcam__f32_igemm_acc_ukernel_4x8__vec), so the result does not depend on kc.
 * The weights are first copied as they are stored into group-major order (each group's 9 x C x
 * cw weights contiguous) when that fits the budget: a group reading its cw columns straight
 * from the (3,3,C,OC) rows reads cw*es bytes every OC*es, which was measured (natively, 512 x
 * 512) at 2-4 ms a layer against about 1 ms for reading whole rows once and the copy back.
 * On a pool: V by tiles, the copy by rows, then the column groups, each in one task with one
 * buffer, so each value's arithmetic is the serial loop's. */
typedef struct {
  const gcam__wino_job *j; /* geometry, V (j->scratch), out */
  float *M;                /* the groups' M one after the other, each (a*a, tiles, its cols) */
  float *ubuf;             /* n_tasks buffers of ubuf_floats */
  size_t ubuf_floats;
  const void *w; /* the layer's (3,3,C,OC) weights, of type dt */
  char *wr; /* the group-major copy, of type dt (9 x C x cols per group, group g at 9*C*g*cw) */
  gcam__dtype dt;
  const float *bias;
  int32_t cw, kc, n_groups, n_tasks;
} gcam__wino_fused_job;

static size_t gcam__wino_fused_ubuf_floats(int m) {
  return (size_t)(m + 2) * (size_t)(m + 2) * GCAM__FUSED_XS;
}

/* the defaults for a layer: whole column blocks, no wider than the layer, kc <= C, and a
 * transformed chunk within a plane of GCAM__FUSED_XS floats */
static void gcam__wino_fused_shape(int32_t C, int32_t OC, int32_t *cw, int32_t *kc) {
  const int32_t ocr = (OC + NR - 1) / NR * NR, wmax = GCAM__FUSED_XS / (2 * NR) * NR;
  int32_t w = *cw > 0 ? *cw : GCAM__FUSED_CW, k = *kc > 0 ? *kc : GCAM__FUSED_KC;
  w = (w + NR - 1) / NR * NR;
  w = w < ocr ? w : ocr, w = w < wmax ? w : wmax;
  const int32_t kmax = (int32_t)(GCAM__FUSED_XS / (size_t)w) - 1; /* >= 1 */
  k = k < C ? k : C, k = k < kmax ? k : kmax;
  *cw = w, *kc = k;
}

/* floats of the group-major copy and its task buffers, or 0 when over the budget */
static size_t gcam__wino_fused_copy_floats(int m, int32_t C, int32_t OC) {
  const uint64_t f = (uint64_t)9 * (uint64_t)C * (uint64_t)OC +
                     (uint64_t)GCAM__FUSED_TASKS * gcam__wino_fused_ubuf_floats(m);
  return f * sizeof(float) <= GCAM__COMPACT_BUDGET ? (size_t)f : 0;
}

/* rows [r0, r1) of the (9*C, OC) weights into the group-major copy, as they are (f16 stays
 * f16: half the bytes to write and read back), 16 rows at a time (read once from memory, then
 * from L1 for each group: each group gets 16 rows in a run, rather than OC/cw write streams
 * at once) */
static void gcam__wino_fused_copy_task(void *context, int32_t task) {
  const gcam__wino_fused_job *f = context;
  size_t r0, r1;
  gcam__split((size_t)9 * (size_t)f->j->g.C, f->n_tasks, task, &r0, &r1);
  const int32_t OC = f->j->g.OC, C = f->j->g.C;
  const size_t es = f->dt == GCAM__DTYPE_F16 ? 2 : 4;
  for (size_t rb = r0; rb < r1; rb += 16) {
    const size_t re = r1 - rb < 16 ? r1 : rb + 16;
    for (int32_t o0 = 0; o0 < OC; o0 += f->cw) {
      const int32_t cols = OC - o0 < f->cw ? OC - o0 : f->cw;
      const size_t bytes = (size_t)cols * es, full = bytes / 16 * 16;
      for (size_t r = rb; r < re; r++) {
        const char *src = (const char *)f->w + (r * (size_t)OC + (size_t)o0) * es;
        char *dst = f->wr + ((size_t)9 * (size_t)C * (size_t)o0 + r * (size_t)cols) * es;
        for (size_t b = 0; b < full; b += 16) memcpy(dst + b, src + b, 16);
        if (full < bytes) memcpy(dst + full, src + full, bytes - full);
      }
    }
  }
}

static void gcam__wino_fused_group(const gcam__wino_fused_job *f, float *U, int32_t grp) {
  const gcam__wino_geom *g = &f->j->g;
  const int a = g->a;
  const size_t tb = f->j->tb;
  const int32_t o0 = grp * f->cw, cols = g->OC - o0 < f->cw ? g->OC - o0 : f->cw;
  float *Mg = f->M + (size_t)a * a * tb * (size_t)o0;
  gcam__wino_pack_job pj = {g->m, U, NULL, f->dt, g->C, g->OC, o0, o0 + cols, 1, 0, 0,
                            (size_t)g->OC, (size_t)g->C * (size_t)g->OC};
  if (f->wr) /* the group's copy: (9, C, cols) */
    pj.ld_c = (size_t)cols, pj.ld_tap = (size_t)g->C * (size_t)cols;
  const size_t es = pj.dt == GCAM__DTYPE_F16 ? 2 : 4;
  for (int32_t c0 = 0; c0 < g->C; c0 += f->kc) {
    const int32_t kn = g->C - c0 < f->kc ? g->C - c0 : f->kc;
    const size_t xi_floats = GCAM__FUSED_XS; /* the planes of U */
    if (c0 == 0 || kn != f->kc) gcam__wino_zero_pad(U, a, kn, cols, xi_floats);
    pj.cb = c0, pj.K = kn;
    if (f->wr)
      pj.w = f->wr + ((size_t)9 * (size_t)g->C * (size_t)o0 + (size_t)c0 * (size_t)cols) * es;
    else
      pj.w = (const char *)f->w + ((size_t)c0 * (size_t)g->OC + (size_t)o0) * es;
    gcam__wino_pack_rows_any(&pj, (size_t)c0, (size_t)(c0 + kn), pj.dt, 1);
    for (int xi = 0; xi < a * a; xi++) {
      const float *vx = f->j->scratch + (size_t)xi * g->v_xi + c0, *ux = U + xi * xi_floats;
      float *mx = Mg + (size_t)xi * tb * (size_t)cols;
      for (size_t r0 = 0; r0 < tb; r0 += MR) {
        const size_t mr = tb - r0 < MR ? tb - r0 : MR;
        const float *ap[MR];
        for (size_t k = 0; k < MR; k++) ap[k] = vx + (r0 + (k < mr ? k : mr - 1)) * g->C;
        if (c0 == 0) /* from the zero biases */
          gcam__f32_igemm_ukernel_4x8__vec(mr, (size_t)cols, (size_t)kn, 1, ap, ux,
                                          mx + r0 * (size_t)cols, (size_t)cols);
        else
          gcam__f32_igemm_acc_ukernel_4x8__vec(mr, (size_t)cols, (size_t)kn, 1, ap, ux,
                                              mx + r0 * (size_t)cols, (size_t)cols);
      }
    }
  }
  gcam__wino_geom go = *g; /* the group as a layer of `cols` channels, written at stride OC */
  go.OC = cols, go.m_xi = tb * (size_t)cols;
  gcam__wino_output_block(&go, f->j->out + o0, Mg, f->bias + o0, 0, tb);
}

static void gcam__wino_fused_task(void *context, int32_t task) {
  const gcam__wino_fused_job *f = context;
  size_t g0, g1;
  gcam__split((size_t)f->n_groups, f->n_tasks, task, &g0, &g1);
  for (size_t grp = g0; grp < g1; grp++)
    gcam__wino_fused_group(f, f->ubuf + (size_t)task * f->ubuf_floats, (int32_t)grp);
}

static void gcam__wino_compact_one_block(int m, float *out, const float *in, const void *w,
                                         gcam__dtype dt, const float *bias, int32_t H, int32_t W,
                                         int32_t C, int32_t OC, float *scratch, float *pack,
                                         int32_t tiles, int32_t cw, int32_t kc,
                                         const gcam_threadpool *pool) {
  gcam__wino_job j;
  gcam__wino_job_init(&j, m, out, (size_t)OC, in, pack, H, W, C, OC, scratch, tiles, 0, 1);
  j.bias = bias;
  j.t0 = 0, j.tb = j.n_tiles, j.scaled_v = 1;
  const int32_t n_threads = gcam__pool_threads(pool);
  j.n_tasks = gcam__min_tasks(n_threads, j.tb);
  gcam__parallel_for(pool, gcam__wino_input_task, &j, j.n_tasks);

  gcam__wino_fused_job f;
  memset(&f, 0, sizeof f);
  f.j = &j, f.w = w, f.dt = dt, f.bias = bias;
  f.M = j.scratch + (size_t)j.g.a * j.g.a * j.g.v_xi;
  gcam__wino_fused_shape(C, OC, &cw, &kc);
  f.cw = cw, f.kc = kc;
  /* The pack scratch holds the copy and GCAM__FUSED_TASKS buffers when that fits the budget,
   * else at least one buffer (gcam__conv3x3_wino_compact_scratch_floats). */
  const size_t pack_floats = gcam__conv3x3_wino_compact_scratch_floats(m, C, OC);
  const size_t copy = (size_t)9 * (size_t)C * (size_t)OC;
  f.ubuf_floats = gcam__wino_fused_ubuf_floats(m);
  size_t avail = pack_floats;
  if (gcam__wino_fused_copy_floats(m, C, OC) && copy + f.ubuf_floats <= pack_floats)
    f.wr = (char *)pack, f.ubuf = pack + copy, avail = pack_floats - copy;
  else
    f.ubuf = pack;
  f.n_groups = (OC + f.cw - 1) / f.cw;
  if (f.wr) {
    f.n_tasks = gcam__min_tasks(n_threads, (size_t)9 * (size_t)C);
    gcam__parallel_for(pool, gcam__wino_fused_copy_task, &f, f.n_tasks);
  }
  const size_t n_buf = avail / f.ubuf_floats;
  f.n_tasks = gcam__min_tasks(n_threads, (size_t)f.n_groups);
  if ((size_t)f.n_tasks > n_buf) f.n_tasks = (int32_t)n_buf;
  gcam__parallel_for(pool, gcam__wino_fused_task, &f, f.n_tasks);
}

void gcam__conv3x3_wino_forward_compact_pool(int m, float *out, const float *in, const void *w,
                                             gcam__dtype dt, const float *bias, int32_t H,
                                             int32_t W, int32_t C, int32_t OC, float *scratch,
                                             float *pack, const gcam_threadpool *pool) {
  const int32_t cols = gcam__conv3x3_wino_compact_cols(m, C, OC);
  const int32_t tiles = gcam__conv3x3_wino_tiles(m, H, W, C, OC, 0); /* the whole layer's */
  if (gcam__wino_n_tiles(m, H, W) <= (size_t)tiles) {
    gcam__wino_compact_one_block(m, out, in, w, dt, bias, H, W, C, OC, scratch, pack, tiles, 0,
                                 0, pool);
    return;
  }
  for (int32_t o0 = 0; o0 < OC; o0 += cols) {
    const int32_t o1 = OC - o0 < cols ? OC : o0 + cols;
    gcam__wino_pack_slice(m, pack, w, dt, bias, C, OC, o0, o1, pool);
    gcam__wino_forward(m, out + o0, (size_t)OC, in, pack, H, W, C, o1 - o0, scratch, tiles, 0, 1,
                       1, pool);
  }
}

int gcam__conv3x3_wino_forward_compact_fused(int m, float *out, const float *in, const void *w,
                                             gcam__dtype dt, const float *bias, int32_t H,
                                             int32_t W, int32_t C, int32_t OC, float *scratch,
                                             float *pack, int32_t cw, int32_t kc,
                                             const gcam_threadpool *pool) {
  const int32_t tiles = gcam__conv3x3_wino_tiles(m, H, W, C, OC, 0);
  if (gcam__wino_n_tiles(m, H, W) > (size_t)tiles) return -1;
  gcam__wino_compact_one_block(m, out, in, w, dt, bias, H, W, C, OC, scratch, pack, tiles, cw,
                               kc, pool);
  return 0;
}

void gcam__conv3x3_wino_forward(int m, float *out, const float *in, const float *packed,
                                int32_t H, int32_t W, int32_t C, int32_t OC, float *scratch,
                                int32_t tiles, int32_t oc_block) {
  gcam__conv3x3_wino_forward_pool(m, out, in, packed, H, W, C, OC, scratch, tiles, oc_block,
                                  NULL);
}
