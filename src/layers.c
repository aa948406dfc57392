/* layers.c: VGG's layer operators (layers.h), each a forward and a backward-input over the
 * kernels of src/kernels/, and the list of them a model is made of. */
#include <string.h>

#include "layers.h"
#include "ops.h"
#include "parallel.h"
#include "state.h"
#ifdef GCAM_HAVE_XNNPACK
#include "xnn_backend.h"
#endif

/* ---- conv3x3 + ReLU: (H,W,C) -> (H,W,OC) ------------------------------------------------ */

static gcam_status gcam__conv_forward(gcam_state *s, int32_t layer, float *y, const float *x) {
  const int32_t i = s->layer[layer].index;
  const gcam_conv_layer *l = &s->model->conv[i];
#ifdef GCAM_HAVE_XNNPACK
  if (l->op.form == GCAM__CONV_XNNPACK)
    return gcam__xnn_model_conv_run(s->model, i, y, x, l->H, l->W);
#endif
  gcam__conv_op_forward(&l->op, y, x, l->H, l->W, s->scratch, s->pack, &s->pool);
  return GCAM_STATUS_OK;
}

/* dy (post-ReLU) -> ReLU' (the layer's output as mask) -> dx = conv(dy, w rotated 180 deg,
 * channels swapped), its weights packed by the operator: into the state's slot for the layer
 * the first time (kept: pre-packed forms), or into s->bpack each time (compact) */
static void gcam__conv_backward(gcam_state *s, int32_t layer, float *dx, float *dy, int guided) {
  const int32_t i = s->layer[layer].index;
  const gcam_conv_layer *l = &s->model->conv[i];
  const size_t n = (size_t)l->H * (size_t)l->W * (size_t)l->OC;
  if (guided)
    gcam__relu_backward_guided(dy, s->y[layer], n);
  else
    gcam__relu_backward(dy, s->y[layer], n);
  const int keep = s->bwd_keep[i];
  float *packed = keep ? s->bwd + s->bwd_off[i] : s->bpack;
  if (!keep || !s->bwd_ready[i]) {
    gcam__conv_op_backward_pack(&l->op, packed, &s->pool);
    s->bwd_ready[i] = (uint8_t)keep;
  }
  gcam__conv_op_backward_input(&l->op, dx, dy, l->H, l->W, packed, s->scratch, &s->pool);
}

const gcam__layer_kind gcam__layer_conv3x3_relu = {"conv3x3_relu", gcam__conv_forward,
                                                   gcam__conv_backward};

/* ---- maxpool 2x2 stride 2: (H,W,C) -> (H/2,W/2,C); argmax kept when a backward may pass -- */

static gcam_status gcam__pool_forward(gcam_state *s, int32_t layer, float *y, const float *x) {
  const gcam__layer *l = &s->layer[layer];
  gcam__maxpool2x2_forward(y, s->argmax[layer], x, l->in_h, l->in_w, l->in_c);
  return GCAM_STATUS_OK;
}

static void gcam__pool_backward(gcam_state *s, int32_t layer, float *dx, float *dy, int guided) {
  (void)guided;
  const gcam__layer *l = &s->layer[layer];
  gcam__maxpool2x2_backward(dx, dy, s->argmax[layer], l->in_h, l->in_w, l->in_c);
}

const gcam__layer_kind gcam__layer_maxpool2x2 = {"maxpool2x2", gcam__pool_forward,
                                                 gcam__pool_backward};

/* ---- dense (+ ReLU but the last): (IN) -> (OUT); the input is the HWC flatten ---------- */

static int gcam__dense_relu(const gcam_state *s, int32_t j) { return j < s->model->n_dense - 1; }

static gcam_status gcam__dense_fwd(gcam_state *s, int32_t layer, float *y, const float *x) {
  const int32_t j = s->layer[layer].index;
  const gcam_dense_layer *l = &s->model->dense[j];
  gcam__dense_forward_dt_pool(y, x, &l->w, l->IN, l->OUT, gcam__dense_relu(s, j), &s->pool);
  return GCAM_STATUS_OK;
}

static void gcam__dense_bwd(gcam_state *s, int32_t layer, float *dx, float *dy, int guided) {
  const int32_t j = s->layer[layer].index;
  const gcam_dense_layer *l = &s->model->dense[j];
  if (gcam__dense_relu(s, j)) {
    if (guided)
      gcam__relu_backward_guided(dy, s->y[layer], (size_t)l->OUT);
    else
      gcam__relu_backward(dy, s->y[layer], (size_t)l->OUT);
  }
  gcam__dense_backward_input_dt_pool(dx, dy, &l->w, l->IN, l->OUT, &s->pool);
}

const gcam__layer_kind gcam__layer_dense = {"dense", gcam__dense_fwd, gcam__dense_bwd};

/* ---- the list ------------------------------------------------------------------------------ */

int32_t gcam__layers_build(const gcam_model *m, gcam__layer *layers) {
  int32_t n = 0;
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *c = &m->conv[i];
    layers[n++] = (gcam__layer){&gcam__layer_conv3x3_relu, i, c->H, c->W, c->C, c->H, c->W, c->OC};
    if (c->pool)
      layers[n++] = (gcam__layer){&gcam__layer_maxpool2x2, i, c->H, c->W, c->OC,
                                  c->H / 2, c->W / 2, c->OC};
  }
  for (int32_t j = 0; j < m->n_dense; j++)
    layers[n++] = (gcam__layer){&gcam__layer_dense, j, 1, 1, m->dense[j].IN, 1, 1, m->dense[j].OUT};
  return n;
}
