/* xnn_peer.h: XNNPACK's max-pool and dense operators as peers of our kernels, for the tests
 * and benchmarks only (the library's XNNPACK backend runs just the convolutions, in
 * src/xnn_backend.c). Same lifecycle and conventions as xnn_backend.h. */
#ifndef GCAM_XNN_PEER_H
#define GCAM_XNN_PEER_H

#include "xnn_backend.h"

/* ---- 2x2 max-pool, stride 2, forward only (floor: an odd last row/column is dropped) ----- */

typedef struct gcam_xnn_maxpool gcam_xnn_maxpool;

gcam_status gcam__xnn_maxpool2x2_create(gcam_xnn_maxpool **op, int32_t C);
/* in (H,W,C) -> out (H/2,W/2,C). H or W of 1 is valid and writes nothing. No argmax: the
 * backward uses our own gcam__maxpool2x2_forward. */
gcam_status gcam__xnn_maxpool2x2_run(gcam_xnn_maxpool *op, float *out, const float *in, int32_t H,
                                    int32_t W);
void gcam__xnn_maxpool_delete(gcam_xnn_maxpool *op);

/* ---- dense (fully connected), batch 1 ---------------------------------------------------- */

typedef struct gcam_xnn_dense gcam_xnn_dense;

/* w (IN,OUT), bias (OUT) or NULL; relu != 0 clamps the output at 0. */
gcam_status gcam__xnn_dense_create(gcam_xnn_dense **op, const float *w, const float *bias,
                                  int32_t IN, int32_t OUT, int relu);
/* in (IN) -> out (OUT) = in . w + bias (then ReLU). `out` must not alias `in`. */
gcam_status gcam__xnn_dense_run(gcam_xnn_dense *op, float *out, const float *in);
void gcam__xnn_dense_delete(gcam_xnn_dense *op);

#endif
