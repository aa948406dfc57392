/* layers.h: the network as a list of layer operators (private).
 *
 * VGG is conv3x3+ReLU, ..., maxpool2x2, ..., dense(+ReLU), ..., dense. Each operator knows
 * its forward and its backward-input (never a weight gradient), so the forward and the
 * backward drivers (forward.c, explain.c) walk this list without knowing the kinds: a new
 * layer kind is a new gcam__layer_kind here, not a branch in a driver.
 *
 * What a backward needs is kept by the forward: a conv's post-ReLU output (its ReLU mask),
 * a pool's argmax, a dense layer's output. Where each output lives is decided once, when the
 * state is created, by the state's depth (state.c: gcam__state_plan). */
#ifndef GCAM_LAYERS_H
#define GCAM_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "gcam.h"

#define GCAM__MAX_LAYERS (2 * 64 + 16)

struct gcam_state;

typedef struct gcam__layer_kind {
  const char *name;
  /* x (in shape) -> y (out shape); may record what the backward needs in the state */
  gcam_status (*forward)(struct gcam_state *s, int32_t layer, float *y, const float *x);
  /* dy (out shape) = d score / d y -> dx (in shape) = d score / d x. dy may be overwritten
   * (a ReLU masks it in place); dx must not alias dy. guided: guided backprop's ReLU. */
  void (*backward)(struct gcam_state *s, int32_t layer, float *dx, float *dy, int guided);
} gcam__layer_kind;

typedef struct gcam__layer {
  const gcam__layer_kind *kind;
  int32_t index;                /* which conv / dense of the model */
  int32_t in_h, in_w, in_c;     /* (1, 1, IN) for a dense layer */
  int32_t out_h, out_w, out_c;
} gcam__layer;

extern const gcam__layer_kind gcam__layer_conv3x3_relu, gcam__layer_maxpool2x2,
    gcam__layer_dense;

/* the model's layers in forward order; returns how many */
int32_t gcam__layers_build(const gcam_model *m, gcam__layer *layers);

static inline size_t gcam__layer_in_floats(const gcam__layer *l) {
  return (size_t)l->in_h * (size_t)l->in_w * (size_t)l->in_c;
}
static inline size_t gcam__layer_out_floats(const gcam__layer *l) {
  return (size_t)l->out_h * (size_t)l->out_w * (size_t)l->out_c;
}

#endif
