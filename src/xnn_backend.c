/* xnn_backend.c: thin wrappers that drive Debian's XNNPACK operators (2022 snapshot) with
 * our canonical weight layouts. See xnn_backend.h. */
#include "xnn_backend.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <xnnpack.h>

#include "error.h"
#include "model.h"

_Static_assert(GCAM_XNN_EXTRA_BYTES >= XNN_EXTRA_BYTES, "GCAM_XNN_EXTRA_BYTES is too small");

struct gcam_xnn_conv {
  xnn_operator_t op;
  int32_t C, OC;
};

static const char *gcam__xnn_status_name(enum xnn_status s) {
  switch (s) {
    case xnn_status_success: return "success";
    case xnn_status_uninitialized: return "uninitialized";
    case xnn_status_invalid_parameter: return "invalid parameter";
    case xnn_status_invalid_state: return "invalid state";
    case xnn_status_unsupported_parameter: return "unsupported parameter";
    case xnn_status_unsupported_hardware: return "unsupported hardware";
    case xnn_status_out_of_memory: return "out of memory";
  }
  return "unknown status";
}

gcam_status gcam__xnn_fail(int xnn_status, const char *what) {
  const enum xnn_status s = (enum xnn_status)xnn_status;
  gcam_status st =
      s == xnn_status_out_of_memory ? GCAM_STATUS_OUT_OF_MEMORY : GCAM_STATUS_BACKEND;
  return gcam__error(st, "XNNPACK %s failed: %s (xnn_status %d)", what, gcam__xnn_status_name(s),
                     (int)s);
}

static pthread_once_t gcam__xnn_once = PTHREAD_ONCE_INIT;
static enum xnn_status gcam__xnn_init_status = xnn_status_uninitialized;

static void gcam__xnn_init_once(void) { gcam__xnn_init_status = xnn_initialize(NULL); }

gcam_status gcam__xnn_init(void) {
  pthread_once(&gcam__xnn_once, gcam__xnn_init_once);
  if (gcam__xnn_init_status != xnn_status_success)
    return gcam__error(GCAM_STATUS_BACKEND, "XNNPACK initialisation failed: %s (xnn_status %d)",
                       gcam__xnn_status_name(gcam__xnn_init_status), (int)gcam__xnn_init_status);
  return GCAM_STATUS_OK;
}

/* ---- conv ------------------------------------------------------------------------------- */

gcam_status gcam__xnn_conv3x3_relu_create(gcam_xnn_conv **op, const float *w_hwio,
                                         const float *bias, int32_t C, int32_t OC) {
  if (!op || !w_hwio)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "xnn conv create: NULL argument");
  *op = NULL;
  if (C <= 0 || OC <= 0 || (size_t)C * (size_t)OC > SIZE_MAX / (9 * sizeof(float)))
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT,
                       "xnn conv create: bad channel counts C=%d OC=%d", (int)C, (int)OC);
  gcam_status st = gcam__xnn_init();
  if (st != GCAM_STATUS_OK) return st;

  /* XNNPACK wants the kernel as OHWI (OC,3,3,C); it packs it during create, so the
   * transposed copy lives only for the duration of this call. */
  float *w_ohwi = malloc(sizeof(float) * 9 * (size_t)C * (size_t)OC);
  gcam_xnn_conv *c = calloc(1, sizeof *c);
  if (!w_ohwi || !c) {
    free(w_ohwi);
    free(c);
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "xnn conv create: out of memory (C=%d OC=%d)",
                       (int)C, (int)OC);
  }
  for (size_t k = 0; k < 9; k++)
    for (size_t i = 0; i < (size_t)C; i++) {
      const float *src = w_hwio + (k * (size_t)C + i) * (size_t)OC;
      for (size_t o = 0; o < (size_t)OC; o++) w_ohwi[(o * 9 + k) * (size_t)C + i] = src[o];
    }

  enum xnn_status s = xnn_create_convolution2d_nhwc_f32(
      1, 1, 1, 1,       /* padding top, right, bottom, left */
      3, 3,             /* kernel */
      1, 1,             /* subsampling (stride) */
      1, 1,             /* dilation */
      1,                /* groups */
      (size_t)C, (size_t)OC,
      (size_t)C, (size_t)OC, /* channel strides of input and output pixels */
      w_ohwi, bias, 0.0f, INFINITY, 0, &c->op);
  free(w_ohwi);
  if (s != xnn_status_success) {
    free(c);
    return gcam__xnn_fail(s, "convolution create");
  }
  c->C = C;
  c->OC = OC;
  *op = c;
  return GCAM_STATUS_OK;
}

gcam_status gcam__xnn_conv3x3_relu_run(gcam_xnn_conv *op, float *out, const float *in, int32_t H,
                                      int32_t W) {
  if (!op || !out || !in)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "xnn conv run: NULL argument");
  if (H <= 0 || W <= 0)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "xnn conv run: bad size %dx%d", (int)H,
                       (int)W);
  enum xnn_status s =
      xnn_setup_convolution2d_nhwc_f32(op->op, 1, (size_t)H, (size_t)W, in, out, NULL);
  if (s != xnn_status_success) return gcam__xnn_fail(s, "convolution setup");
  s = xnn_run_operator(op->op, NULL);
  if (s != xnn_status_success) return gcam__xnn_fail(s, "convolution run");
  return GCAM_STATUS_OK;
}

void gcam__xnn_conv_delete(gcam_xnn_conv *op) {
  if (!op) return;
  xnn_delete_operator(op->op);
  free(op);
}

/* ---- the model's conv operators --------------------------------------------------------- */

struct gcam__xnn_model {
  pthread_mutex_t lock;
  gcam_xnn_conv *conv[GCAM_MAX_CONV];
};

gcam_status gcam__xnn_model_create(gcam_model *m) {
  struct gcam__xnn_model *x = calloc(1, sizeof *x);
  if (!x) return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory (XNNPACK operators)");
  if (pthread_mutex_init(&x->lock, NULL) != 0) {
    free(x);
    return gcam__error(GCAM_STATUS_BACKEND, "XNNPACK operators: no mutex");
  }
  m->xnn = x;
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *l = &m->conv[i];
    gcam_status st = gcam__xnn_conv3x3_relu_create(&x->conv[i], (const float *)l->op.w, l->op.bias, l->C,
                                         l->OC);
    if (st) return st; /* the caller frees the model, and with it what was made */
  }
  return GCAM_STATUS_OK;
}

void gcam__xnn_model_free(gcam_model *m) {
  struct gcam__xnn_model *x = m->xnn;
  if (!x) return;
  for (int32_t i = 0; i < GCAM_MAX_CONV; i++) gcam__xnn_conv_delete(x->conv[i]);
  pthread_mutex_destroy(&x->lock);
  free(x);
  m->xnn = NULL;
}

gcam_status gcam__xnn_model_conv_run(const gcam_model *m, int32_t i, float *out, const float *in,
                                     int32_t H, int32_t W) {
  struct gcam__xnn_model *x = m->xnn;
  if (!x || !x->conv[i])
    return gcam__error(GCAM_STATUS_BAD_STATE, "the XNNPACK model has no operator for conv %d",
                       (int)i);
  pthread_mutex_lock(&x->lock);
  const gcam_status st = gcam__xnn_conv3x3_relu_run(x->conv[i], out, in, H, W);
  pthread_mutex_unlock(&x->lock);
  return st;
}

gcam_status gcam__xnn_model_conv_refresh(gcam_model *m, int32_t i) {
  struct gcam__xnn_model *x = m->xnn;
  if (!x) return GCAM_STATUS_OK;
  const gcam_conv_layer *l = &m->conv[i];
  gcam__xnn_conv_delete(x->conv[i]);
  x->conv[i] = NULL;
  return gcam__xnn_conv3x3_relu_create(&x->conv[i], (const float *)l->op.w, l->op.bias, l->C,
                                         l->OC);
}
