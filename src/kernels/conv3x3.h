/* conv3x3.h: the two implementations behind gcam_conv3x3_* (ops.h), exposed for the tests
 * (each path is checked against the reference, and against the other) and the benchmark.
 *
 *   direct: IGEMM over an implicit im2col. K = 9*C; per output pixel, 9 row pointers into
 *           the input (a row of zeros for the padding). Packed: per block of NR output
 *           channels, NR biases then 9*C times NR weights.
 *   wino2:  Winograd F(2x2, 3x3). The image is cut in 4x4 input tiles at stride 2; each tile
 *           becomes 16 values per channel (V = B^T d B), 16 GEMMs (tiles x C) . (C x OC)
 *           multiply them by the transformed weights (U = G g G^T, computed in double at
 *           pack time), and A^T M A gives 2x2 outputs, + bias, ReLU. 2.25x fewer
 *           multiplications than direct. Packed: 16 GEMM-packed (C x OC) matrices with zero
 *           bias, then the OC biases.
 * ops.h's functions pick one path per layer from (C, OC) alone, since the packed blob is made
 * before the spatial size is known: gcam__conv3x3_use_wino2(). */
#ifndef GCAM_KERNELS_CONV3X3_H
#define GCAM_KERNELS_CONV3X3_H

#include <stddef.h>
#include <stdint.h>

int gcam__conv3x3_use_wino2(int32_t C, int32_t OC);

size_t gcam__conv3x3_direct_packed_floats(int32_t C, int32_t OC);
void gcam__conv3x3_direct_pack(float *packed, const float *w_hwio, const float *bias, int32_t C,
                               int32_t OC);
size_t gcam__conv3x3_direct_scratch_floats(int32_t H, int32_t W, int32_t C, int32_t OC);
/* oc_block: output channels per pass over the image (a multiple of GCAM_GEMM_NR), or 0 for the
 * default (as many as keep their packed weights within about 128 KB) */
void gcam__conv3x3_direct_forward(float *out, const float *in, const float *packed, int32_t H,
                                  int32_t W, int32_t C, int32_t OC, float *scratch,
                                  int32_t oc_block);

size_t gcam__conv3x3_wino2_packed_floats(int32_t C, int32_t OC);
void gcam__conv3x3_wino2_pack(float *packed, const float *w_hwio, const float *bias, int32_t C,
                              int32_t OC);
/* tiles: 2x2-output tiles transformed per block (0: default); scratch depends on it */
int32_t gcam__conv3x3_wino2_tiles(int32_t H, int32_t W, int32_t C, int32_t OC, int32_t tiles);
size_t gcam__conv3x3_wino2_scratch_floats(int32_t H, int32_t W, int32_t C, int32_t OC,
                                          int32_t tiles);
void gcam__conv3x3_wino2_forward(float *out, const float *in, const float *packed, int32_t H,
                                 int32_t W, int32_t C, int32_t OC, float *scratch,
                                 int32_t tiles, int32_t oc_block);

/* default output-channel block for a GEMM of depth K (floats of packed weights per pass) */
int32_t gcam__conv3x3_oc_block(int32_t K, int32_t OC);

#endif
