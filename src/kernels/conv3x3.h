/* conv3x3.h: the two implementations behind gcam_conv3x3_* (ops.h), exposed for the tests
 * (each path is checked against the reference, and against the other) and the benchmark.
 *
 *   direct: IGEMM over an implicit im2col. K = 9*C; per output pixel, 9 row pointers into
 *           the input (a row of zeros for the padding). Packed: per block of NR output
 *           channels, NR biases then 9*C times NR weights.
 *   wino:   Winograd F(m x m, 3x3), m = 2 or 4 (winograd.c). The image is cut in (m+2)^2
 *           input tiles at stride m; each becomes (m+2)^2 values per channel, as many GEMMs
 *           (tiles x C).(C x OC) multiply them by the transformed weights (computed in double
 *           at pack time), and the output transform gives m x m outputs, + bias, ReLU.
 *           2.25x (m=2) or 4x (m=4) fewer multiplications than direct. Packed: (m+2)^2
 *           GEMM-packed (C x OC) matrices with zero bias, then the OC biases.
 * ops.h's functions pick one path per layer from (C, OC) alone, since the packed blob is made
 * before the spatial size is known: gcam__conv3x3_path(). */
#ifndef GCAM_KERNELS_CONV3X3_H
#define GCAM_KERNELS_CONV3X3_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h" /* gcam__dtype */

/* 0: direct, 2: Winograd F(2x2,3x3), 4: Winograd F(4x4,3x3) */
int gcam__conv3x3_path(int32_t C, int32_t OC);

size_t gcam__conv3x3_direct_packed_floats(int32_t C, int32_t OC);
void gcam__conv3x3_direct_pack(float *packed, const float *w_hwio, const float *bias, int32_t C,
                               int32_t OC);
size_t gcam__conv3x3_direct_scratch_floats(int32_t H, int32_t W, int32_t C, int32_t OC);
/* oc_block: output channels per pass over the image (a multiple of GCAM_GEMM_NR), or 0 for the
 * default (as many as keep their packed weights within about 256 KB) */
void gcam__conv3x3_direct_forward(float *out, const float *in, const float *packed, int32_t H,
                                  int32_t W, int32_t C, int32_t OC, float *scratch,
                                  int32_t oc_block);

/* Winograd F(m x m, 3x3), m = 2 or 4 */
size_t gcam__conv3x3_wino_packed_floats(int m, int32_t C, int32_t OC);
void gcam__conv3x3_wino_pack(int m, float *packed, const float *w_hwio, const float *bias,
                             int32_t C, int32_t OC);
/* tiles: m x m output tiles transformed per block (0: default); scratch depends on it */
int32_t gcam__conv3x3_wino_tiles(int m, int32_t H, int32_t W, int32_t C, int32_t OC,
                                 int32_t tiles);
size_t gcam__conv3x3_wino_scratch_floats(int m, int32_t H, int32_t W, int32_t C, int32_t OC,
                                         int32_t tiles);
void gcam__conv3x3_wino_forward(int m, float *out, const float *in, const float *packed,
                                int32_t H, int32_t W, int32_t C, int32_t OC, float *scratch,
                                int32_t tiles, int32_t oc_block);

/* The same two paths as building blocks of the backward (conv3x3_backward.c), which runs a
 * convolution with flipped, transposed weights and no activation:
 *   - wino_pack_strided: pack weight (tap i, in-channel c, out-channel o) read at
 *     w[i*s_tap + c*s_in + o*s_out] (negative strides allowed); bias NULL means zeros.
 *     wino_pack(w_hwio) is s_tap = C*OC, s_in = OC, s_out = 1.
 *   - *_run_pool: the forward with relu = 1, or without the ReLU (relu = 0); the arithmetic
 *     is otherwise the forward's. */
void gcam__conv3x3_wino_pack_strided(int m, float *packed, const float *w, ptrdiff_t s_tap,
                                     ptrdiff_t s_in, ptrdiff_t s_out, const float *bias,
                                     int32_t C, int32_t OC);
struct gcam_threadpool;
void gcam__conv3x3_wino_run_pool(int m, float *out, const float *in, const float *packed,
                                 int32_t H, int32_t W, int32_t C, int32_t OC, float *scratch,
                                 int32_t tiles, int32_t oc_block, int relu,
                                 const struct gcam_threadpool *pool);
void gcam__conv3x3_direct_run_pool(float *out, const float *in, const float *packed, int32_t H,
                                   int32_t W, int32_t C, int32_t OC, float *scratch,
                                   int32_t oc_block, int relu,
                                   const struct gcam_threadpool *pool);

/* The compact (GCAM_MEMORY_COMPACT) path of a layer whose tiles make one block, with its
 * column group cw and channel chunk kc given (0: the defaults; see winograd.c), for the tests
 * and the benchmark; gcam__conv3x3_wino_forward_compact_pool takes it with the defaults.
 * Returns -1 (and does nothing) when the layer is more than one block. */
int gcam__conv3x3_wino_forward_compact_fused(int m, float *out, const float *in, const void *w,
                                             gcam__dtype dt, const float *bias, int32_t H,
                                             int32_t W, int32_t C, int32_t OC, float *scratch,
                                             float *pack, int32_t cw, int32_t kc,
                                             const struct gcam_threadpool *pool);

/* default output-channel block for a GEMM of depth K (floats of packed weights per pass) */
int32_t gcam__conv3x3_oc_block(int32_t K, int32_t OC);

#endif
