/* xnn_backend.h: Debian's XNNPACK as a second native backend for the network's ops.
 *
 * Compiled only when CMake finds libxnnpack-dev (it then defines GCAM_HAVE_XNNPACK); the
 * WebAssembly build never sees it. Each op follows XNNPACK's own lifecycle: create (checks
 * the shape and packs the weights, so the caller's weights may be freed afterwards) ->
 * run (binds the shape and the buffers, then computes) -> delete. Tensors are NHWC with
 * batch 1, and the weights come in the file's canonical layouts, as in ops.h:
 *   conv:  w_hwio (3, 3, C, OC), bias (OC)
 *   dense: w (IN, OUT) row-major, bias (OUT)
 *
 * Everything runs on the calling thread (no thread pool), like our own kernels.
 * The run functions allocate nothing themselves; XNNPACK may grow a conv's indirection
 * buffer inside run when the spatial size differs from the previous run's.
 *
 * XNNPACK may read (never write) up to GCAM_XNN_EXTRA_BYTES past the end of an input
 * tensor: allocate inputs with that much slack.
 *
 * Every function returns GCAM_STATUS_OK or sets gcam_last_error() and returns
 * GCAM_STATUS_INVALID_ARGUMENT (bad shape, NULL pointer), GCAM_STATUS_OUT_OF_MEMORY or
 * GCAM_STATUS_BACKEND (XNNPACK refused or is unusable on this processor). */
#ifndef GCAM_XNN_BACKEND_H
#define GCAM_XNN_BACKEND_H

#include <stdint.h>

#include "gcam.h"

/* bytes XNNPACK may read past the end of an input tensor (its XNN_EXTRA_BYTES) */
#define GCAM_XNN_EXTRA_BYTES 16

/* Initialise XNNPACK (once per process; later calls return the first outcome). The create
 * functions call it themselves. */
gcam_status gcam__xnn_init(void);

/* Turn a failed XNNPACK call (an enum xnn_status) into our status and message. */
gcam_status gcam__xnn_fail(int xnn_status, const char *what);

/* ---- 3x3 convolution, stride 1, zero padding 1, + bias + ReLU ---------------------------- */

typedef struct gcam_xnn_conv gcam_xnn_conv;

/* w_hwio (3,3,C,OC), bias (OC) or NULL for zero bias. */
gcam_status gcam__xnn_conv3x3_relu_create(gcam_xnn_conv **op, const float *w_hwio,
                                         const float *bias, int32_t C, int32_t OC);
/* in (H,W,C) -> out (H,W,OC) = ReLU(conv3x3(in) + bias). `out` must not alias `in`. */
gcam_status gcam__xnn_conv3x3_relu_run(gcam_xnn_conv *op, float *out, const float *in, int32_t H,
                                      int32_t W);
void gcam__xnn_conv_delete(gcam_xnn_conv *op);

/* ---- the model's conv operators -----------------------------------------------------------
 * An XNNPACK model owns one operator per conv layer, created when the load finishes (each
 * packs its layer's weights once: VGG16 59 MB, not once per state). A model is shared by
 * states on several threads, and an XNNPACK operator binds its buffers at setup, so a run
 * (setup + run) holds the model's lock: two states of one XNNPACK model take turns in each
 * conv. This backend is the native cross-check; the portable one has no lock. */
struct gcam_model;
gcam_status gcam__xnn_model_create(struct gcam_model *m);
void gcam__xnn_model_free(struct gcam_model *m);
/* conv i of model m: in (H,W,C) -> out (H,W,OC), under the model's lock */
gcam_status gcam__xnn_model_conv_run(const struct gcam_model *m, int32_t i, float *out,
                                     const float *in, int32_t H, int32_t W);
/* conv i's weights changed (the randomization check's private copy): its operator again */
gcam_status gcam__xnn_model_conv_refresh(struct gcam_model *m, int32_t i);

#endif
