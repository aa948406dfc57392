/* forward.c: image -> tensor -> VGG forward -> logits and probabilities.
 * Keeps what a backward from the state may need (layers.h, state.c): by default the last
 * conv's output, the last pool's argmax and every dense layer's (post-ReLU) output; deeper
 * states every conv output and pool argmax down to their depth. */
#include <string.h>

#include "error.h"
#include "image/image.h"
#include "ops.h"
#include "state.h"

gcam_status gcam_state_forward_tensor(gcam_state *s, const float *input) {
  if (!s || !input) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state or input is NULL");
  const gcam_model *m = s->model;
  s->has_forward = s->has_gradient = s->has_input_grad = 0;
  if (input != s->input)
    memcpy(s->input, input, (size_t)m->in_h * (size_t)m->in_w * 3 * sizeof(float));

  /* the layers in order, each output where the state's plan put it (state.c) */
  const float *x = s->input;
  for (int32_t i = 0; i < s->n_layers; i++) {
    gcam_status st = s->layer[i].kind->forward(s, i, s->y[i], x);
    if (st) return st;
    x = s->y[i];
  }
  s->cam_act = s->y[s->conv_layer[m->n_conv - 1]];
  gcam__softmax_forward(s->probs, x, m->n_classes);
  s->has_forward = 1;
  return GCAM_STATUS_OK;
}

gcam_status gcam_state_forward_rgba(gcam_state *s, const uint8_t *rgba, int32_t width,
                                    int32_t height, int32_t stride) {
  if (!s || !rgba) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state or pixels are NULL");
  if (width < 1 || height < 1)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "image size %dx%d is empty", width, height);
  if ((int64_t)width * height > GCAM_MAX_IMAGE_PIXELS)
    return gcam__error(GCAM_STATUS_IMAGE_TOO_LARGE, "image of %dx%d pixels is over the cap of %lld",
                       width, height, (long long)GCAM_MAX_IMAGE_PIXELS);
  if (stride / 4 < width)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "stride %d is less than width*4 = %lld",
                       stride, (long long)width * 4);
  const gcam_model *m = s->model;
  s->has_forward = s->has_gradient = s->has_input_grad = 0;
  gcam__resize_bicubic_u8(s->resized, m->in_w, m->in_h, rgba, width, height, stride, 4);
  gcam__preprocess(s->input, s->resized, m->in_h, m->in_w, 4, m->preprocess, m->mean, m->std);
  return gcam_state_forward_tensor(s, s->input);
}

static gcam_status gcam__need_forward(const gcam_state *s) {
  if (!s) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state is NULL");
  if (!s->has_forward) return gcam__error(GCAM_STATUS_BAD_STATE, "no forward pass has run yet");
  return GCAM_STATUS_OK;
}

gcam_status gcam_state_logits(const gcam_state *s, const float **logits) {
  gcam_status st = gcam__need_forward(s);
  if (st) return st;
  if (!logits) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "logits is NULL");
  *logits = gcam__dense_output(s, s->model->n_dense - 1);
  return GCAM_STATUS_OK;
}

gcam_status gcam_state_probabilities(const gcam_state *s, const float **probabilities) {
  gcam_status st = gcam__need_forward(s);
  if (st) return st;
  if (!probabilities) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "probabilities is NULL");
  *probabilities = s->probs;
  return GCAM_STATUS_OK;
}

gcam_status gcam_state_top_k(const gcam_state *s, int32_t k, int32_t *indices) {
  gcam_status st = gcam__need_forward(s);
  if (st) return st;
  int32_t n = s->model->n_classes;
  if (!indices || k < 1 || k > n)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "top-k needs 1 <= k <= %d, got %d", n, k);
  const float *z = gcam__dense_output(s, s->model->n_dense - 1);
  /* insertion into a sorted list of k: k is small and n at most 1M */
  int32_t have = 0;
  for (int32_t c = 0; c < n; c++) {
    if (have == k && !(z[c] > z[indices[k - 1]])) continue;
    int32_t pos = have < k ? have++ : k - 1;
    while (pos > 0 && z[c] > z[indices[pos - 1]]) {
      indices[pos] = indices[pos - 1];
      pos--;
    }
    indices[pos] = c;
  }
  return GCAM_STATUS_OK;
}
