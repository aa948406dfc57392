/* state.h: the scratch of one image (private). Everything is allocated once, at
 * gcam_state_create_ex(); forward and explain allocate nothing (but the eigen methods' work,
 * grown at their first use: see gcam__state_cam_work). */
#ifndef GCAM_STATE_H
#define GCAM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "gcam.h"
#include "layers.h"
#include "model.h"


struct gcam_state {
  const gcam_model *model;
  int has_forward;        /* a forward ran: logits and activations are valid */
  int has_gradient;       /* an explain ran: grad_at / act_at are valid */
  int has_input_grad;     /* the last explain was a pixel method: in_grad is valid */

  /* what a backward may reach (gcam_state_params.depth): convs >= depth_conv keep their
   * output; depth_input also keeps every ReLU mask down to the first conv */
  int32_t depth, depth_conv, depth_input;

  int32_t n_layers;
  gcam__layer layer[GCAM__MAX_LAYERS];
  int32_t conv_layer[GCAM_MAX_CONV]; /* conv i is layer conv_layer[i] */
  float *y[GCAM__MAX_LAYERS];        /* each layer's output (inside act[], own[] or dense_out) */
  int32_t *argmax[GCAM__MAX_LAYERS]; /* a pool's argmax, when a backward may pass it */

  uint8_t *resized;       /* (in_h, in_w, 4) the image at the model's input size */
  float *input;           /* (in_h, in_w, 3) preprocessed */
  float *act[2];          /* ping-pong outputs nobody needs after the next layer */
  float *own;             /* the kept conv outputs, back to back */
  int32_t *argmax_all;    /* the kept pools' argmax, back to back */
  float *scratch;         /* conv kernel scratch, for pool.n_threads task slots */
  size_t scratch_floats;  /* its size */
  float *pack;            /* compact convs' weights, packed as each layer runs (or NULL) */
  float *bpack;           /* a compact conv's backward weights, packed as the backward reaches it */
  /* a pre-packed (fast / XNNPACK) conv's backward weights: packed once, the first time a
   * backward reaches the layer, into bwd + bwd_off[i] (bwd_ready[i] then 1); the weights
   * never change, so later backwards run them as the forward runs its packed weights.
   * bwd (bwd_floats) is allocated by the first explain whose backward crosses a conv
   * (gcam__state_backward_weights): a deep state used for the last conv's maps only never
   * holds it. */
  float *bwd;
  uint64_t bwd_floats;
  uint64_t bwd_off[GCAM_MAX_CONV];
  uint8_t bwd_ready[GCAM_MAX_CONV];
  uint8_t bwd_keep[GCAM_MAX_CONV]; /* conv i's backward weights are kept (else packed in bpack) */
  gcam_threadpool pool;   /* the host's threads (run == NULL: serial) */
  const float *cam_act;   /* (cam_h, cam_w, cam_c): the last conv's output */
  float *dense_out;       /* every dense layer's output, back to back */
  float *probs;           /* (n_classes) */
  float *g[2];            /* gradients, ping-pong: layer i's input gradient goes to g[(n-i)&1] */
  const float *grad_at;   /* after an explain: d score / d (target layer's output) */
  const float *act_at;    /*   and that output */
  float *cam;             /* the raw map when the caller wants none (largest map) */
  double *work;           /* gcam__cam_map's work */
  size_t work_doubles;
  /* pixel methods (depth_input only) */
  float *in_grad;         /* (in_h, in_w, 3) gcam_state_input_gradient() */
  double *gsum;           /* (in_h, in_w, 3) smoothgrad / IG gradient sums */
  float *x0, *xs;         /* the image's input, and a noisy / scaled copy */
  float *cam_up;          /* (in_h, in_w) guided-gradcam's upsampled Grad-CAM */
  uint64_t bytes;         /* what all this takes */
};

/* the output of dense layer j inside dense_out */
float *gcam__dense_output(const gcam_state *s, int32_t j);

/* s->bwd allocated if this state's plan has pre-packed backward weights and it is not yet
 * (GCAM_STATUS_OUT_OF_MEMORY, with the MB, when that fails); call before a backward that
 * crosses a conv layer */
gcam_status gcam__state_backward_weights(gcam_state *s);

/* work of at least `doubles` (grown: the eigen methods need up to H*W*K + 2n^2 at a layer) */
gcam_status gcam__state_cam_work(gcam_state *s, size_t doubles);

#endif
