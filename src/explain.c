/* explain.c: the backward driver and every explanation method.
 *
 * The backward walks the state's layer list (layers.h) in reverse from the seed gradient:
 *   score (logit z_c, or probability p_c) -> d logits -> [dense] ... -> [pool] -> [conv+ReLU]
 *   ... -> d (output of the target layer), or on to d input for the pixel methods,
 * each layer's gradient at its input going to g[(n - i) & 1] (state.c sizes both).
 * The CAM family then runs gcam__cam_map() on the target conv's post-ReLU output A (as Keras
 * returns a conv layer's output) and dA; the pixel methods aggregate d input per pixel.
 * Formulas, PRNG and quadrature exactly as docs/methods.md states them. */
#include <math.h>
#include <string.h>

#include "cam_methods.h"
#include "error.h"
#include "image/image.h"
#include "ops.h"
#include "state.h"

/* ---- names and parameters ------------------------------------------------------------------ */

static const char *const gcam__pixel_names[] = {"saliency", "guided-backprop", "guided-gradcam",
                                                "smoothgrad", "integrated-gradients"};

const char *gcam_method_name(gcam_method method) {
  if ((int)method >= 0 && (int)method < GCAM__CAM_COUNT) return gcam__cam_method_name((int)method);
  if ((int)method >= GCAM_METHOD_SALIENCY && (int)method < GCAM_METHOD_COUNT)
    return gcam__pixel_names[method - GCAM_METHOD_SALIENCY];
  return NULL;
}

gcam_status gcam_method_from_name(const char *name, gcam_method *out) {
  if (!name || !out) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "name or out is NULL");
  for (int i = 0; i < GCAM_METHOD_COUNT; i++)
    if (strcmp(name, gcam_method_name((gcam_method)i)) == 0) {
      *out = (gcam_method)i;
      return GCAM_STATUS_OK;
    }
  return gcam__error(GCAM_STATUS_INVALID_ARGUMENT,
                     "unknown method '%.64s' (one of gradcam, hirescam, gradcam-elementwise, "
                     "gradcam++, xgradcam, layercam, eigencam, eigengradcam, saliency, "
                     "guided-backprop, guided-gradcam, smoothgrad, integrated-gradients)",
                     name);
}

int gcam_method_is_pixel(gcam_method method) {
  return (int)method >= GCAM_METHOD_SALIENCY && (int)method < GCAM_METHOD_COUNT;
}

gcam_explain_params gcam_explain_default_params(void) {
  gcam_explain_params p;
  memset(&p, 0, sizeof p);
  p.method = GCAM_METHOD_GRADCAM;
  p.layer = -1;
  p.score = GCAM_SCORE_LOGIT;
  p.samples = 25;
  p.noise = 0.15f;
  p.steps = 32;
  p.seed = 0;
  return p;
}

#define GCAM__MAX_SAMPLES 1024

/* The params' own checks, then what the state's depth allows. *layer = the resolved conv. */
static gcam_status gcam__check_params(const gcam_state *s, const gcam_explain_params *p,
                                      int32_t *layer) {
  const gcam_model *m = s->model;
  *layer = m->n_conv - 1;
  if ((int)p->method < 0 || (int)p->method >= GCAM_METHOD_COUNT)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "unknown method %d (0..%d)", (int)p->method,
                       GCAM_METHOD_COUNT - 1);
  if (p->layer != -1 && (p->layer < 0 || p->layer >= m->n_conv))
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT,
                       "layer %d is outside the model's conv layers 0..%d (-1: the last)",
                       (int)p->layer, (int)m->n_conv - 1);
  if (p->score != GCAM_SCORE_LOGIT && p->score != GCAM_SCORE_SOFTMAX)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "unknown score %d", (int)p->score);
  if (p->method == GCAM_METHOD_SMOOTHGRAD) {
    if (p->samples < 1 || p->samples > GCAM__MAX_SAMPLES)
      return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "smoothgrad samples %d is not 1..%d",
                         (int)p->samples, GCAM__MAX_SAMPLES);
    if (!(p->noise > 0.0f && p->noise <= 1.0f)) /* NaN fails too */
      return gcam__error(GCAM_STATUS_INVALID_ARGUMENT,
                         "smoothgrad noise %g is not in (0, 1] (a fraction of max - min)",
                         (double)p->noise);
  }
  if (p->method == GCAM_METHOD_INTEGRATED_GRADIENTS && (p->steps < 1 || p->steps > GCAM__MAX_SAMPLES))
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "integrated-gradients steps %d is not 1..%d",
                       (int)p->steps, GCAM__MAX_SAMPLES);
  *layer = p->layer == -1 ? m->n_conv - 1 : p->layer;
  const char *name = gcam_method_name(p->method);
  if (gcam_method_is_pixel(p->method) && !s->depth_input)
    return gcam__error(GCAM_STATUS_BAD_STATE,
                       "%s needs a state created with gcam_state_params.depth = "
                       "GCAM_DEPTH_INPUT (this state's depth is %d)",
                       name, (int)s->depth);
  if (!s->depth_input && *layer < s->depth_conv)
    return gcam__error(GCAM_STATUS_BAD_STATE,
                       "%s at conv layer %d needs a state created with gcam_state_params.depth "
                       "<= %d or GCAM_DEPTH_INPUT (this state's depth reaches conv %d)",
                       name, (int)*layer, (int)*layer, (int)s->depth_conv);
  return GCAM_STATUS_OK;
}

gcam_status gcam_state_map_size(const gcam_state *s, const gcam_explain_params *params,
                                int32_t *width, int32_t *height) {
  if (!s || !width || !height)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state, width or height is NULL");
  const gcam_explain_params p = params ? *params : gcam_explain_default_params();
  int32_t layer;
  gcam_status st = gcam__check_params(s, &p, &layer);
  if (st) return st;
  if (gcam_method_is_pixel(p.method)) {
    *width = s->model->in_w, *height = s->model->in_h;
  } else {
    *width = s->model->conv[layer].W, *height = s->model->conv[layer].H;
  }
  return GCAM_STATUS_OK;
}

/* ---- the backward driver ------------------------------------------------------------------- */

/* d score / d (input of layer `first`) of class c: the seed, then layers n-1 .. first in
 * reverse, one call each. guided: guided backprop's ReLU at every ReLU. */
static float *gcam__backward(gcam_state *s, int32_t c, gcam_score score, int32_t first,
                             int guided) {
  const gcam_model *m = s->model;
  const int32_t n = s->n_layers;
  float *d = s->g[0];
  if (score == GCAM_SCORE_SOFTMAX) {
    gcam__softmax_backward_onehot_logits(d, gcam__dense_output(s, m->n_dense - 1),
                                         m->n_classes, c);
  } else {
    memset(d, 0, sizeof(float) * (size_t)m->n_classes);
    d[c] = 1.0f;
  }
  for (int32_t i = n - 1; i >= first; i--) {
    float *dx = s->g[(n - i) & 1];
    s->layer[i].kind->backward(s, i, dx, d, guided);
    d = dx;
  }
  return d;
}

/* ---- the CAM family at a conv layer -------------------------------------------------------- */

static gcam_status gcam__explain_cam(gcam_state *s, int32_t c, gcam_score score, int method,
                                     int32_t conv, float *raw, float *norm, float *raw_max) {
  const gcam_conv_layer *l = &s->model->conv[conv];
  const int32_t k = s->conv_layer[conv];
  size_t need = 0;
  gcam_status st = gcam__cam_work_doubles(method, l->H, l->W, l->OC, &need);
  if (!st) st = gcam__state_cam_work(s, need);
  if (st) return st;
  const float *dA = gcam__backward(s, c, score, k + 1, 0);
  s->grad_at = dA, s->act_at = s->y[k];
  s->has_gradient = 1;
  return gcam__cam_map(raw, norm, raw_max, method, s->y[k], dA, l->H, l->W, l->OC, s->work,
                       s->work_doubles);
}

/* ---- pixel methods ------------------------------------------------------------------------- */

/* splitmix64 (Steele, Lea & Flood 2014), as docs/methods.md gives it for the oracle */
static uint64_t gcam__splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* one standard normal: Box-Muller's cosine branch on two draws, in double */
static double gcam__normal(uint64_t *state) {
  const double u1 = (double)((gcam__splitmix64(state) >> 11) + 1) * 0x1p-53; /* (0, 1] */
  const double u2 = (double)(gcam__splitmix64(state) >> 11) * 0x1p-53;       /* [0, 1) */
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* the preprocessed black image's value in channel ch: preprocess(0) as gcam__preprocess */
static float gcam__baseline(const gcam_model *m, int ch) {
  return m->preprocess == GCAM_PREPROCESS_CAFFE ? 0.0f - m->mean[ch]
                                                : (0.0f / 255.f - m->mean[ch]) / m->std[ch];
}

/* raw[p] = max_ch |g[p,ch]| (sum_ch for integrated-gradients); returns max(raw) */
static float gcam__pixel_map(float *raw, const float *g, size_t HW, int sum) {
  float max = 0.0f;
  for (size_t p = 0; p < HW; p++) {
    const float a = fabsf(g[3 * p]), b = fabsf(g[3 * p + 1]), c = fabsf(g[3 * p + 2]);
    float v;
    if (sum)
      v = (float)((double)a + (double)b + (double)c);
    else
      v = a > b ? (a > c ? a : c) : (b > c ? b : c);
    raw[p] = v;
    if (v > max) max = v;
  }
  return max;
}

/* mean over n forwards of d score / d input, at inputs x_k = make(k), into s->in_grad; the
 * image's forward is restored afterwards */
static gcam_status gcam__mean_gradient(gcam_state *s, int32_t c, const gcam_explain_params *p) {
  const gcam_model *m = s->model;
  const size_t N = (size_t)m->in_h * (size_t)m->in_w * 3;
  memcpy(s->x0, s->input, N * sizeof(float));
  memset(s->gsum, 0, N * sizeof(double));
  const int smooth = p->method == GCAM_METHOD_SMOOTHGRAD;
  const int32_t n = smooth ? p->samples : p->steps;
  double sigma = 0.0, base[3];
  uint64_t rng = p->seed;
  if (smooth) {
    float lo = s->x0[0], hi = s->x0[0];
    for (size_t j = 1; j < N; j++) {
      if (s->x0[j] < lo) lo = s->x0[j];
      if (s->x0[j] > hi) hi = s->x0[j];
    }
    sigma = (double)p->noise * ((double)hi - (double)lo);
  }
  for (int ch = 0; ch < 3; ch++) base[ch] = gcam__baseline(m, ch);
  gcam_status st = GCAM_STATUS_OK;
  for (int32_t k = 0; k < n && !st; k++) {
    if (smooth) {
      for (size_t j = 0; j < N; j++) s->xs[j] = (float)((double)s->x0[j] + sigma * gcam__normal(&rng));
    } else {
      const double alpha = ((double)k + 0.5) / (double)n; /* midpoint rule */
      for (size_t j = 0; j < N; j++)
        s->xs[j] = (float)(base[j % 3] + alpha * ((double)s->x0[j] - base[j % 3]));
    }
    st = gcam_state_forward_tensor(s, s->xs);
    if (st) break;
    const float *g = gcam__backward(s, c, p->score, 0, 0);
    for (size_t j = 0; j < N; j++) s->gsum[j] += g[j];
  }
  gcam_status restored = gcam_state_forward_tensor(s, s->x0);
  if (st) return st;
  if (restored) return restored;
  for (size_t j = 0; j < N; j++) {
    const double mean = s->gsum[j] / (double)n;
    s->in_grad[j] = (float)(smooth ? mean : ((double)s->x0[j] - base[j % 3]) * mean);
  }
  return GCAM_STATUS_OK;
}

static gcam_status gcam__explain_pixel(gcam_state *s, int32_t c, const gcam_explain_params *p,
                                       int32_t conv, float *raw, float *raw_max_out) {
  const gcam_model *m = s->model;
  const size_t HW = (size_t)m->in_h * (size_t)m->in_w, N = HW * 3;
  gcam_status st = GCAM_STATUS_OK;
  switch (p->method) {
    case GCAM_METHOD_SALIENCY:
    case GCAM_METHOD_GUIDED_BACKPROP:
      memcpy(s->in_grad, gcam__backward(s, c, p->score, 0, p->method == GCAM_METHOD_GUIDED_BACKPROP),
             N * sizeof(float));
      break;
    case GCAM_METHOD_GUIDED_GRADCAM: {
      /* Grad-CAM at `conv`, normalised to [0, 1], resized to the input as cv2.resize does */
      const gcam_conv_layer *l = &m->conv[conv];
      float mx = 0.0f;
      st = gcam__explain_cam(s, c, p->score, GCAM__CAM_GRADCAM, conv, s->cam, NULL, &mx);
      if (st) return st;
      const size_t lhw = (size_t)l->H * (size_t)l->W;
      for (size_t q = 0; q < lhw; q++) s->cam[q] = mx > 0.0f ? s->cam[q] / mx : 0.0f;
      gcam__resize_bilinear_f32(s->cam_up, m->in_w, m->in_h, s->cam, l->W, l->H);
      const float *gb = gcam__backward(s, c, p->score, 0, 1);
      for (size_t q = 0; q < HW; q++)
        for (int ch = 0; ch < 3; ch++) s->in_grad[3 * q + ch] = gb[3 * q + ch] * s->cam_up[q];
      s->has_gradient = 0; /* the guided pass reused the gradient buffers */
      break;
    }
    default: /* smoothgrad, integrated-gradients */
      st = gcam__mean_gradient(s, c, p);
      if (st) return st;
      break;
  }
  const float mx = gcam__pixel_map(raw, s->in_grad, HW, p->method == GCAM_METHOD_INTEGRATED_GRADIENTS);
  *raw_max_out = mx;
  s->has_input_grad = 1;
  return GCAM_STATUS_OK;
}

/* ---- the public calls ---------------------------------------------------------------------- */

gcam_status gcam_state_explain_ex(gcam_state *s, int32_t class_index,
                                  const gcam_explain_params *params, float *raw_map,
                                  float *norm_map, float *raw_max) {
  if (!s) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state is NULL");
  const gcam_model *m = s->model;
  if (class_index < 0 || class_index >= m->n_classes)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "class %d is outside the model's %d classes",
                       class_index, m->n_classes);
  const gcam_explain_params p = params ? *params : gcam_explain_default_params();
  int32_t conv;
  gcam_status st = gcam__check_params(s, &p, &conv);
  if (st) return st;
  if (!s->has_forward) return gcam__error(GCAM_STATUS_BAD_STATE, "explain needs a forward first");
  if (gcam_method_is_pixel(p.method) || conv < m->n_conv - 1) { /* a backward through convs */
    st = gcam__state_backward_weights(s);
    if (st) return st;
  }
  s->has_gradient = s->has_input_grad = 0;

  float *raw = raw_map ? raw_map : s->cam, max = 0.0f;
  size_t HW;
  if (gcam_method_is_pixel(p.method)) {
    HW = (size_t)m->in_h * (size_t)m->in_w;
    st = gcam__explain_pixel(s, class_index, &p, conv, raw, &max);
  } else {
    HW = (size_t)m->conv[conv].H * (size_t)m->conv[conv].W;
    st = gcam__explain_cam(s, class_index, p.score, (int)p.method, conv, raw, NULL, &max);
  }
  if (st) return st;
  if (norm_map)
    for (size_t q = 0; q < HW; q++) norm_map[q] = max > 0.0f ? raw[q] / max : 0.0f;
  if (raw_max) *raw_max = max;
  return GCAM_STATUS_OK;
}

gcam_status gcam_state_explain(gcam_state *s, int32_t class_index, gcam_score score,
                               float *raw_map, float *norm_map, float *raw_max) {
  gcam_explain_params p = gcam_explain_default_params();
  p.score = score;
  return gcam_state_explain_ex(s, class_index, &p, raw_map, norm_map, raw_max);
}

gcam_status gcam_state_last_gradient(const gcam_state *s, const float **grad,
                                     const float **activation) {
  if (!s || !grad || !activation)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state, grad or activation is NULL");
  if (!s->has_gradient)
    return gcam__error(GCAM_STATUS_BAD_STATE, "no explain with a CAM method has run yet");
  *grad = s->grad_at;
  *activation = s->act_at;
  return GCAM_STATUS_OK;
}

gcam_status gcam_state_input_gradient(const gcam_state *s, const float **grad) {
  if (!s || !grad) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state or grad is NULL");
  if (!s->has_input_grad)
    return gcam__error(GCAM_STATUS_BAD_STATE,
                       "the input gradient needs an explain with a pixel method first");
  *grad = s->in_grad;
  return GCAM_STATUS_OK;
}
