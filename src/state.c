/* state.c: creating and freeing the per-image scratch. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "parallel.h"
#include "state.h"
#ifdef GCAM_HAVE_XNNPACK
#include "xnn_backend.h"
#endif

float *gcam__dense_output(const gcam_state *s, int32_t j) {
  size_t off = 0;
  for (int32_t i = 0; i < j; i++) off += (size_t)s->model->dense[i].OUT;
  return s->dense_out + off;
}

void gcam_state_free(gcam_state *s) {
  if (!s) return;
#ifdef GCAM_HAVE_XNNPACK
  for (int32_t i = 0; i < GCAM_MAX_CONV; i++) gcam__xnn_conv_delete(s->xnn_conv[i]);
#endif
  free(s->resized);
  free(s->input);
  free(s->act[0]);
  free(s->act[1]);
  free(s->scratch);
  free(s->pack);
  free(s->argmax);
  free(s->dense_out);
  free(s->probs);
  free(s->d[0]);
  free(s->d[1]);
  free(s->grad);
  free(s->alpha);
  free(s->cam);
  free(s);
}

/* floats of conv scratch the model's layers need on n_threads task slots */
static size_t gcam__state_scratch_floats(const gcam_model *m, int32_t n_threads) {
  size_t scratch = 1;
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *l = &m->conv[i];
    size_t f = l->scratch_floats;
    if (m->backend != GCAM_BACKEND_XNNPACK) {
      const size_t p = gcam__conv3x3_scratch_floats_pool(l->H, l->W, l->C, l->OC, n_threads);
      if (p > f) f = p;
    }
    if (f > scratch) scratch = f;
  }
  return scratch;
}

gcam_status gcam_state_set_threadpool(gcam_state *s, const gcam_threadpool *pool) {
  if (!s) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state is NULL");
  if (!pool || !pool->run) {
    memset(&s->pool, 0, sizeof s->pool);
    return GCAM_STATUS_OK;
  }
  if (pool->n_threads < 1 || pool->n_threads > 1024)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "pool n_threads is %d, not 1..1024",
                       (int)pool->n_threads);
  const size_t need = gcam__state_scratch_floats(s->model, pool->n_threads);
  if (need > s->scratch_floats) {
    float *scratch = malloc(need * sizeof(float));
    if (!scratch)
      return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory for %d threads' scratch",
                         (int)pool->n_threads);
    free(s->scratch);
    s->scratch = scratch, s->scratch_floats = need;
  }
  s->pool = *pool;
  return GCAM_STATUS_OK;
}

static gcam_status gcam__state_create_xnn(gcam_state *s) {
#ifdef GCAM_HAVE_XNNPACK
  const gcam_model *m = s->model;
  gcam_status st = gcam__xnn_init();
  if (st) return st;
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *l = &m->conv[i];
    st = gcam__xnn_conv3x3_relu_create(&s->xnn_conv[i], l->w_hwio, l->bias, l->C, l->OC);
    if (st) return st;
  }
  return GCAM_STATUS_OK;
#else
  return gcam__error(GCAM_STATUS_BACKEND, "this build has no XNNPACK backend");
#endif
}

gcam_status gcam_state_create(const gcam_model *m, gcam_state **out) {
  if (!m || !out) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "model or out is NULL");
  *out = NULL;
  gcam_state *s = calloc(1, sizeof *s);
  if (!s) return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory");
  s->model = m;

  size_t act = 0, dense = 0, d = (size_t)m->dense[0].IN;
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *l = &m->conv[i];
    size_t o = (size_t)l->H * (size_t)l->W * (size_t)l->OC;
    if (o > act) act = o;
  }
  for (int32_t j = 0; j < m->n_dense; j++) {
    dense += (size_t)m->dense[j].OUT;
    if ((size_t)m->dense[j].OUT > d) d = (size_t)m->dense[j].OUT;
  }
  size_t in = (size_t)m->in_h * (size_t)m->in_w;
  size_t cam = (size_t)m->cam_h * (size_t)m->cam_w * (size_t)m->cam_c;
  size_t head = (size_t)m->head_h * (size_t)m->head_w * (size_t)m->cam_c;
  s->resized = malloc(in * 4);
  /* XNNPACK may read up to 16 bytes past a conv's input */
  s->input = malloc(in * 3 * sizeof(float) + 16);
  s->act[0] = malloc(act * sizeof(float) + 16);
  s->act[1] = malloc(act * sizeof(float) + 16);
  s->scratch_floats = gcam__state_scratch_floats(m, 1);
  s->scratch = malloc(s->scratch_floats * sizeof(float));
  size_t pack = 0; /* one scratch for the compact convs' packed weights, sized for the largest */
  for (int32_t i = 0; i < m->n_conv; i++)
    if (m->conv[i].w_compact) {
      const size_t f = gcam__conv3x3_compact_pack_floats(m->conv[i].C, m->conv[i].OC);
      if (f > pack) pack = f;
    }
  if (pack && !(s->pack = malloc(pack * sizeof(float)))) {
    gcam_state_free(s);
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory for %zu MB of conv scratch",
                       (pack * sizeof(float) + (1u << 20) - 1) >> 20);
  }
  s->argmax = malloc(head * sizeof(int32_t));
  s->dense_out = malloc(dense * sizeof(float));
  s->probs = malloc((size_t)m->n_classes * sizeof(float));
  s->d[0] = malloc(d * sizeof(float));
  s->d[1] = malloc(d * sizeof(float));
  s->grad = malloc(cam * sizeof(float));
  s->alpha = malloc((size_t)m->cam_c * sizeof(float));
  s->cam = malloc((size_t)m->cam_h * (size_t)m->cam_w * sizeof(float));
  if (!s->resized || !s->input || !s->act[0] || !s->act[1] || !s->scratch || !s->argmax ||
      !s->dense_out || !s->probs || !s->d[0] || !s->d[1] || !s->grad || !s->alpha ||
      !s->cam) {
    /* what this state asked for, in 64 bits (the sizes are checked at load) */
    const uint64_t bytes = (uint64_t)in * 4 + ((uint64_t)in * 3 + 2 * (uint64_t)act) * 4 + 48 +
                           (uint64_t)s->scratch_floats * 4 + (uint64_t)head * 4 +
                           ((uint64_t)dense + (uint64_t)m->n_classes + 2 * (uint64_t)d +
                            (uint64_t)cam + (uint64_t)m->cam_c + (uint64_t)m->cam_h * m->cam_w) * 4;
    gcam_state_free(s);
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "out of memory: the activations need %llu MB",
                       (unsigned long long)((bytes + (1u << 20) - 1) >> 20));
  }
  if (m->backend == GCAM_BACKEND_XNNPACK) {
    gcam_status st = gcam__state_create_xnn(s);
    if (st) {
      gcam_state_free(s);
      return st;
    }
  }
  *out = s;
  return GCAM_STATUS_OK;
}
