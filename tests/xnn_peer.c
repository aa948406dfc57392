/* xnn_peer.c: XNNPACK's max-pool and dense operators with our canonical layouts, for the
 * tests and benchmarks (see xnn_peer.h). */
#include "xnn_peer.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <xnnpack.h>

#include "error.h"

struct gcam_xnn_maxpool {
  xnn_operator_t op;
  int32_t C;
};

struct gcam_xnn_dense {
  xnn_operator_t op;
  int32_t IN, OUT;
};

/* ---- max-pool --------------------------------------------------------------------------- */

gcam_status gcam__xnn_maxpool2x2_create(gcam_xnn_maxpool **op, int32_t C) {
  if (!op) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "xnn maxpool create: NULL argument");
  *op = NULL;
  if (C <= 0)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "xnn maxpool create: bad channels C=%d",
                       (int)C);
  gcam_status st = gcam__xnn_init();
  if (st != GCAM_STATUS_OK) return st;
  gcam_xnn_maxpool *p = calloc(1, sizeof *p);
  if (!p) return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "xnn maxpool create: out of memory");
  enum xnn_status s = xnn_create_max_pooling2d_nhwc_f32(
      0, 0, 0, 0, /* padding */
      2, 2,       /* pooling window */
      2, 2,       /* stride */
      1, 1,       /* dilation */
      (size_t)C, (size_t)C, (size_t)C, -INFINITY, INFINITY, 0, &p->op);
  if (s != xnn_status_success) {
    free(p);
    return gcam__xnn_fail(s, "max-pooling create");
  }
  p->C = C;
  *op = p;
  return GCAM_STATUS_OK;
}

gcam_status gcam__xnn_maxpool2x2_run(gcam_xnn_maxpool *op, float *out, const float *in, int32_t H,
                                    int32_t W) {
  if (!op || !out || !in)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "xnn maxpool run: NULL argument");
  if (H <= 0 || W <= 0)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "xnn maxpool run: bad size %dx%d", (int)H,
                       (int)W);
  /* XNNPACK would still produce one row/column from a 1-pixel input (its output size is
   * (H - 2) / 2 + 1 in unsigned "difference or zero" arithmetic); ours is empty. */
  if (H < 2 || W < 2) return GCAM_STATUS_OK;
  enum xnn_status s =
      xnn_setup_max_pooling2d_nhwc_f32(op->op, 1, (size_t)H, (size_t)W, in, out, NULL);
  if (s != xnn_status_success) return gcam__xnn_fail(s, "max-pooling setup");
  s = xnn_run_operator(op->op, NULL);
  if (s != xnn_status_success) return gcam__xnn_fail(s, "max-pooling run");
  return GCAM_STATUS_OK;
}

void gcam__xnn_maxpool_delete(gcam_xnn_maxpool *op) {
  if (!op) return;
  xnn_delete_operator(op->op);
  free(op);
}

/* ---- dense ------------------------------------------------------------------------------ */

gcam_status gcam__xnn_dense_create(gcam_xnn_dense **op, const float *w, const float *bias,
                                  int32_t IN, int32_t OUT, int relu) {
  if (!op || !w)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "xnn dense create: NULL argument");
  *op = NULL;
  if (IN <= 0 || OUT <= 0)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "xnn dense create: bad sizes IN=%d OUT=%d",
                       (int)IN, (int)OUT);
  gcam_status st = gcam__xnn_init();
  if (st != GCAM_STATUS_OK) return st;
  gcam_xnn_dense *d = calloc(1, sizeof *d);
  if (!d) return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "xnn dense create: out of memory");
  /* Our w is (IN, OUT); XNNPACK's default is (OUT, IN), and XNN_FLAG_TRANSPOSE_WEIGHTS
   * makes it read (IN, OUT), so no transposed copy of VGG16's 400 MB dense0 is needed. */
  enum xnn_status s = xnn_create_fully_connected_nc_f32(
      (size_t)IN, (size_t)OUT, (size_t)IN, (size_t)OUT, w, bias, relu ? 0.0f : -INFINITY,
      INFINITY, XNN_FLAG_TRANSPOSE_WEIGHTS, &d->op);
  if (s != xnn_status_success) {
    free(d);
    return gcam__xnn_fail(s, "fully-connected create");
  }
  d->IN = IN;
  d->OUT = OUT;
  *op = d;
  return GCAM_STATUS_OK;
}

gcam_status gcam__xnn_dense_run(gcam_xnn_dense *op, float *out, const float *in) {
  if (!op || !out || !in)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "xnn dense run: NULL argument");
  enum xnn_status s = xnn_setup_fully_connected_nc_f32(op->op, 1, in, out, NULL);
  if (s != xnn_status_success) return gcam__xnn_fail(s, "fully-connected setup");
  s = xnn_run_operator(op->op, NULL);
  if (s != xnn_status_success) return gcam__xnn_fail(s, "fully-connected run");
  return GCAM_STATUS_OK;
}

void gcam__xnn_dense_delete(gcam_xnn_dense *op) {
  if (!op) return;
  xnn_delete_operator(op->op);
  free(op);
}
