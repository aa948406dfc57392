/* state.h: the scratch of one image (private). Everything is allocated once, at
 * gcam_state_create(); forward and explain allocate nothing. */
#ifndef GCAM_STATE_H
#define GCAM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "gcam.h"
#include "model.h"

struct gcam_xnn_conv;

struct gcam_state {
  const gcam_model *model;
  int has_forward;        /* a forward ran: logits and activations are valid */
  int has_gradient;       /* an explain ran: grad is valid */

  uint8_t *resized;       /* (in_h, in_w, 4) the image at the model's input size */
  float *input;           /* (in_h, in_w, 3) preprocessed */
  float *act[2];          /* ping-pong conv/pool activations */
  float *scratch;         /* conv kernel scratch, for pool.n_threads task slots */
  size_t scratch_floats;  /* its size */
  float *pack;            /* compact convs' weights, packed as each layer runs (or NULL) */
  gcam_threadpool pool;   /* the host's threads (run == NULL: serial) */
  const float *cam_act;   /* (cam_h, cam_w, cam_c): the last conv's output, inside act[] */
  int32_t *argmax;        /* (head_h, head_w, cam_c) of the last pool */
  float *dense_out;       /* every dense layer's output, back to back */
  float *probs;           /* (n_classes) */
  float *d[2];            /* head gradients, ping-pong */
  float *grad;            /* (cam_h, cam_w, cam_c) d score / d cam_act */
  float *alpha;           /* (cam_c) channel weights */
  float *cam;             /* (cam_h, cam_w) the raw map when the caller wants none */
  struct gcam_xnn_conv *xnn_conv[GCAM_MAX_CONV];
};

/* the output of dense layer j inside dense_out */
float *gcam__dense_output(const gcam_state *s, int32_t j);

#endif
