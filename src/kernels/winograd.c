/* winograd.c: 3x3 convolution by Winograd F(2x2, 3x3) (Lavin & Gray 2016), see conv3x3.h.
 *
 *   B^T = | 1  0 -1  0 |    G = | 1    0    0  |    A^T = | 1  1  1  0 |
 *         | 0  1  1  0 |        | 1/2  1/2  1/2|          | 0  1 -1 -1 |
 *         | 0 -1  1  0 |        | 1/2 -1/2  1/2|
 *         | 0  1  0 -1 |        | 0    0    1  |
 *
 * Tiles are processed in blocks of T (input transform -> 16 GEMMs -> output transform) so
 * the transformed data of a block stays in cache. */
#include <string.h>

#include "conv3x3.h"
#include "gemm.h"
#include "simd.h"

#define MR GCAM_GEMM_MR
#define NR GCAM_GEMM_NR

static size_t gcam__wino2_xi_floats(int32_t C, int32_t OC) {
  return ((size_t)OC + NR - 1) / NR * gcam__gemm_block_floats((size_t)C);
}

size_t gcam__conv3x3_wino2_packed_floats(int32_t C, int32_t OC) {
  return 16 * gcam__wino2_xi_floats(C, OC) + (size_t)OC;
}

void gcam__conv3x3_wino2_pack(float *packed, const float *w_hwio, const float *bias, int32_t C,
                              int32_t OC) {
  const size_t xi_floats = gcam__wino2_xi_floats(C, OC), blk = gcam__gemm_block_floats(C);
  memset(packed, 0, 16 * xi_floats * sizeof *packed); /* zero biases and padded columns */
  for (int32_t c = 0; c < C; c++)
    for (int32_t o = 0; o < OC; o++) {
      double g[3][3], t[4][3];
      for (int i = 0; i < 9; i++) g[i / 3][i % 3] = w_hwio[((size_t)i * C + c) * OC + o];
      for (int j = 0; j < 3; j++) { /* t = G g */
        t[0][j] = g[0][j];
        t[1][j] = 0.5 * (g[0][j] + g[1][j] + g[2][j]);
        t[2][j] = 0.5 * (g[0][j] - g[1][j] + g[2][j]);
        t[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; i++) { /* U = t G^T */
        const double u[4] = {t[i][0], 0.5 * (t[i][0] + t[i][1] + t[i][2]),
                             0.5 * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
        for (int j = 0; j < 4; j++)
          packed[(size_t)(i * 4 + j) * xi_floats + (size_t)(o / NR) * blk + NR +
                 (size_t)c * NR + o % NR] = (float)u[j];
      }
    }
  memcpy(packed + 16 * xi_floats, bias, (size_t)OC * sizeof *bias);
}

int32_t gcam__conv3x3_wino2_tiles(int32_t H, int32_t W, int32_t C, int32_t OC, int32_t tiles) {
  const size_t all = (size_t)((H + 1) / 2) * (size_t)((W + 1) / 2);
  size_t t = (size_t)tiles;
  if (tiles <= 0) {
    const size_t budget = 256 * 1024; /* floats of V + M per block: 1 MB */
    t = budget / (16 * ((size_t)C + (size_t)OC)) / MR * MR;
    if (t < 4 * MR) t = 4 * MR;
  }
  return (int32_t)(t < all ? t : all);
}

size_t gcam__conv3x3_wino2_scratch_floats(int32_t H, int32_t W, int32_t C, int32_t OC,
                                          int32_t tiles) {
  const size_t T = (size_t)gcam__conv3x3_wino2_tiles(H, W, C, OC, tiles);
  return (size_t)C + 16 * T * ((size_t)C + (size_t)OC);
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

/* V = B^T d B for channels [c, c+n) of one tile; d[r*4+q] points at input pixel (r, q) */
static inline void gcam__wino2_input(float *v, size_t xi_stride, const float *const *d,
                                     size_t c, size_t n) {
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
    float *vi = v + (size_t)(i * 4) * xi_stride + c;
    gcam__store_n(vi, t[i][0] - t[i][2], n);
    gcam__store_n(vi + xi_stride, t[i][1] + t[i][2], n);
    gcam__store_n(vi + 2 * xi_stride, t[i][2] - t[i][1], n);
    gcam__store_n(vi + 3 * xi_stride, t[i][1] - t[i][3], n);
  }
}

/* Y = A^T M A + bias, ReLU, for channels [o, o+n) of one tile; y[i*2+j] is output pixel
 * (i, j) or NULL when it falls outside the image */
static inline void gcam__wino2_output(float *const *y, const float *m, size_t xi_stride,
                                      const float *bias, size_t o, size_t n) {
  gcam_f32x4 s[2][4];
  for (int j = 0; j < 4; j++) {
    const float *mj = m + (size_t)j * xi_stride + o;
    const gcam_f32x4 m0 = gcam__load_n(mj, n), m1 = gcam__load_n(mj + 4 * xi_stride, n);
    const gcam_f32x4 m2 = gcam__load_n(mj + 8 * xi_stride, n);
    const gcam_f32x4 m3 = gcam__load_n(mj + 12 * xi_stride, n);
    s[0][j] = m0 + m1 + m2;
    s[1][j] = m1 - m2 - m3;
  }
  const gcam_f32x4 b = gcam__load_n(bias + o, n);
  for (int i = 0; i < 2; i++) {
    if (y[i * 2]) gcam__store_n(y[i * 2] + o, gcam__f32x4_relu(s[i][0] + s[i][1] + s[i][2] + b), n);
    if (y[i * 2 + 1])
      gcam__store_n(y[i * 2 + 1] + o, gcam__f32x4_relu(s[i][1] - s[i][2] - s[i][3] + b), n);
  }
}

void gcam__conv3x3_wino2_forward(float *out, const float *in, const float *packed, int32_t H,
                                 int32_t W, int32_t C, int32_t OC, float *scratch,
                                 int32_t tiles, int32_t oc_block) {
  const size_t T = (size_t)gcam__conv3x3_wino2_tiles(H, W, C, OC, tiles);
  const int32_t TW = (W + 1) / 2;
  const size_t n_tiles = (size_t)((H + 1) / 2) * (size_t)TW;
  const size_t xi_floats = gcam__wino2_xi_floats(C, OC), blk = gcam__gemm_block_floats(C);
  const float *bias = packed + 16 * xi_floats;
  const int32_t ocb = oc_block > 0 ? oc_block : gcam__conv3x3_oc_block(C, OC);
  float *zero = scratch, *V = scratch + C, *M = V + 16 * T * (size_t)C;
  const size_t v_xi = T * (size_t)C, m_xi = T * (size_t)OC; /* one xi's block of rows */
  memset(zero, 0, (size_t)C * sizeof *zero);

  for (size_t t0 = 0; t0 < n_tiles; t0 += T) {
    const size_t tb = n_tiles - t0 < T ? n_tiles - t0 : T;
    for (size_t t = 0; t < tb; t++) {
      const int32_t ty = (int32_t)((t0 + t) / (size_t)TW), tx = (int32_t)((t0 + t) % (size_t)TW);
      const float *d[16];
      for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++) {
          const int32_t iy = 2 * ty - 1 + r, ix = 2 * tx - 1 + q;
          d[r * 4 + q] = (iy < 0 || iy >= H || ix < 0 || ix >= W)
                             ? zero
                             : in + ((size_t)iy * W + ix) * C;
        }
      for (size_t c = 0; c < (size_t)C; c += 4)
        gcam__wino2_input(V + t * C, v_xi, d, c, (size_t)C - c);
    }
    for (int xi = 0; xi < 16; xi++) {
      const float *u = packed + (size_t)xi * xi_floats;
      const float *vx = V + xi * v_xi;
      float *mx = M + xi * m_xi;
      for (int32_t oc0 = 0; oc0 < OC; oc0 += ocb) {
        const size_t nc = (size_t)(OC - oc0 < ocb ? OC - oc0 : ocb);
        const float *w = u + (size_t)(oc0 / NR) * blk;
        for (size_t r0 = 0; r0 < tb; r0 += MR) {
          const size_t mr = tb - r0 < MR ? tb - r0 : MR;
          const float *a[MR];
          for (size_t m = 0; m < MR; m++) a[m] = vx + (r0 + (m < mr ? m : mr - 1)) * C;
          gcam_f32_igemm_ukernel_4x8__vec(mr, nc, (size_t)C, 1, a, w, mx + r0 * OC + oc0,
                                          (size_t)OC);
        }
      }
    }
    for (size_t t = 0; t < tb; t++) {
      const int32_t ty = (int32_t)((t0 + t) / (size_t)TW), tx = (int32_t)((t0 + t) % (size_t)TW);
      float *y[4];
      for (int i = 0; i < 4; i++) {
        const int32_t oy = 2 * ty + i / 2, ox = 2 * tx + i % 2;
        y[i] = (oy < H && ox < W) ? out + ((size_t)oy * W + ox) * OC : NULL;
      }
      for (size_t o = 0; o < (size_t)OC; o += 4)
        gcam__wino2_output(y, M + t * OC, m_xi, bias, o, (size_t)OC - o);
    }
  }
}
