/* forward.c: image -> tensor -> VGG forward -> logits and probabilities.
 * Keeps what the backward needs: the last conv's output, the last pool's argmax and every
 * dense layer's (post-ReLU) output. */
#include <string.h>

#include "error.h"
#include "image/image.h"
#include "ops.h"
#include "parallel.h"
#include "state.h"
#ifdef GCAM_HAVE_XNNPACK
#include "xnn_backend.h"
#endif

static gcam_status gcam__conv(gcam_state *s, int32_t i, float *out, const float *in) {
  const gcam_conv_layer *l = &s->model->conv[i];
#ifdef GCAM_HAVE_XNNPACK
  if (s->model->backend == GCAM_BACKEND_XNNPACK)
    return gcam__xnn_conv3x3_relu_run(s->xnn_conv[i], out, in, l->H, l->W);
#endif
  if (l->w_compact)
    gcam__conv3x3_relu_forward_compact_pool(out, in, l->w_compact, l->w_dtype, l->bias, l->H,
                                            l->W, l->C, l->OC, s->scratch, s->pack, &s->pool);
  else
    gcam__conv3x3_relu_forward_pool(out, in, l->packed, l->H, l->W, l->C, l->OC, s->scratch,
                                    &s->pool);
  return GCAM_STATUS_OK;
}

gcam_status gcam_state_forward_tensor(gcam_state *s, const float *input) {
  if (!s || !input) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state or input is NULL");
  const gcam_model *m = s->model;
  s->has_forward = s->has_gradient = 0;
  if (input != s->input)
    memcpy(s->input, input, (size_t)m->in_h * (size_t)m->in_w * 3 * sizeof(float));

  /* conv blocks: in (H,W,C) -> (H,W,OC) [-> pool (H/2,W/2,OC)] */
  const float *x = s->input;
  int which = 0;
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *l = &m->conv[i];
    int last = i == m->n_conv - 1;
    float *y = s->act[which];
    gcam_status st = gcam__conv(s, i, y, x);
    if (st) return st;
    x = y, which ^= 1;
    if (last) s->cam_act = y;
    if (l->pool) {
      float *p = s->act[which];
      gcam__maxpool2x2_forward(p, last ? s->argmax : NULL, x, l->H, l->W, l->OC);
      x = p, which ^= 1;
    }
  }

  /* dense head: (IN) -> (OUT), ReLU on all but the last */
  for (int32_t j = 0; j < m->n_dense; j++) {
    const gcam_dense_layer *l = &m->dense[j];
    float *y = gcam__dense_output(s, j);
    gcam__dense_forward_dt_pool(y, x, &l->w, l->IN, l->OUT, j < m->n_dense - 1, &s->pool);
    x = y;
  }
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
  s->has_forward = s->has_gradient = 0;
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
