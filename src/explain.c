/* explain.c: the hand-written backward through the dense head, and Grad-CAM.
 *
 *   score (logit z_c, or probability p_c)
 *   -> d logits -> [dense_{n-1}] -> ReLU' -> ... -> [dense_0] -> d flat
 *   -> unflatten (HWC) -> last pool backward (via its argmax) -> d A,
 * A being the last conv's post-ReLU output, as Keras returns a conv layer's output.
 * Then alpha_k = mean_hw dA[h,w,k], cam = ReLU(sum_k alpha_k A[.,.,k]). */
#include <string.h>

#include "error.h"
#include "ops.h"
#include "parallel.h"
#include "state.h"

/* d score / d A into s->grad */
static void gcam__head_backward(gcam_state *s, int32_t c, gcam_score score) {
  const gcam_model *m = s->model;
  int32_t n = m->n_classes;
  float *d = s->d[0], *d_in = s->d[1];
  if (score == GCAM_SCORE_SOFTMAX) {
    gcam__softmax_backward_onehot_logits(d, gcam__dense_output(s, m->n_dense - 1), n, c);
  } else {
    memset(d, 0, sizeof(float) * (size_t)n);
    d[c] = 1.0f;
  }
  for (int32_t j = m->n_dense - 1; j >= 0; j--) {
    const gcam_dense_layer *l = &m->dense[j];
    gcam__dense_backward_input_dt_pool(d_in, d, &l->w, l->IN, l->OUT, &s->pool);
    if (j > 0) gcam__relu_backward(d_in, gcam__dense_output(s, j - 1), (size_t)l->IN);
    float *t = d;
    d = d_in, d_in = t;
  }
  const gcam_conv_layer *last = &m->conv[m->n_conv - 1];
  if (last->pool)
    gcam__maxpool2x2_backward(s->grad, d, s->argmax, m->cam_h, m->cam_w, m->cam_c);
  else
    memcpy(s->grad, d, sizeof(float) * (size_t)m->cam_h * m->cam_w * m->cam_c);
}

/* raw (HW) = ReLU(sum_k alpha_k A[hw,k]), alpha_k = mean_hw grad[hw,k]; returns max(raw) */
static float gcam__cam(gcam_state *s, float *raw) {
  const gcam_model *m = s->model;
  int32_t HW = m->cam_h * m->cam_w, C = m->cam_c;
  for (int32_t k = 0; k < C; k++) {
    double sum = 0.0;
    for (int32_t p = 0; p < HW; p++) sum += s->grad[(size_t)p * C + k];
    s->alpha[k] = (float)(sum / HW);
  }
  float max = 0.0f;
  for (int32_t p = 0; p < HW; p++) {
    const float *a = s->cam_act + (size_t)p * C;
    double v = 0.0;
    for (int32_t k = 0; k < C; k++) v += (double)s->alpha[k] * a[k];
    raw[p] = v > 0.0 ? (float)v : 0.0f;
    if (raw[p] > max) max = raw[p];
  }
  return max;
}

gcam_status gcam_state_explain(gcam_state *s, int32_t class_index, gcam_score score,
                               float *raw_map, float *norm_map, float *raw_max) {
  if (!s) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state is NULL");
  const gcam_model *m = s->model;
  if (class_index < 0 || class_index >= m->n_classes)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "class %d is outside the model's %d classes",
                       class_index, m->n_classes);
  if (score != GCAM_SCORE_LOGIT && score != GCAM_SCORE_SOFTMAX)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "unknown score %d", (int)score);
  if (!s->has_forward) return gcam__error(GCAM_STATUS_BAD_STATE, "explain needs a forward first");

  gcam__head_backward(s, class_index, score);
  s->has_gradient = 1;
  int32_t HW = m->cam_h * m->cam_w;
  float *raw = raw_map ? raw_map : s->cam;
  float max = gcam__cam(s, raw);
  if (norm_map)
    for (int32_t p = 0; p < HW; p++) norm_map[p] = max > 0.0f ? raw[p] / max : 0.0f;
  if (raw_max) *raw_max = max;
  return GCAM_STATUS_OK;
}

gcam_status gcam_state_last_gradient(const gcam_state *s, const float **grad,
                                     const float **activation) {
  if (!s || !grad || !activation)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state, grad or activation is NULL");
  if (!s->has_gradient) return gcam__error(GCAM_STATUS_BAD_STATE, "no explain has run yet");
  *grad = s->grad;
  *activation = s->cam_act;
  return GCAM_STATUS_OK;
}
