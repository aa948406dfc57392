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

/* floats of conv scratch the model's layers need on n_threads task slots, or 0 when that
 * does not fit one allocation. The kernels size it in size_t; a 64-bit bound of their
 * formula (at most 36 taps x 96 tiles x (C + OC) per slot) is checked first. */
static size_t gcam__state_scratch_floats(const gcam_model *m, int32_t n_threads) {
  size_t scratch = 1;
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *l = &m->conv[i];
    size_t f = l->scratch_floats;
    if (m->backend != GCAM_BACKEND_XNNPACK) {
      const uint64_t bound = (uint64_t)l->C + (uint64_t)n_threads * 36 * 96 *
                                                  ((uint64_t)l->C + (uint64_t)l->OC);
      if (bound > GCAM__MAX_ALLOC_BYTES / sizeof(float)) return 0;
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
  if (need == 0)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "the scratch of %d threads does not fit this build's address space",
                       (int)pool->n_threads);
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

  /* Byte counts in 64 bits: in wasm32 a 4096x4096x64 activation (4 GiB) would wrap size_t
   * to a few bytes and the forward would write far past them. */
  uint64_t act = 0, dense = 0, d = (uint64_t)m->dense[0].IN;
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *l = &m->conv[i];
    uint64_t o = (uint64_t)l->H * (uint64_t)l->W * (uint64_t)l->OC;
    if (o > act) act = o;
  }
  for (int32_t j = 0; j < m->n_dense; j++) {
    dense += (uint64_t)m->dense[j].OUT;
    if ((uint64_t)m->dense[j].OUT > d) d = (uint64_t)m->dense[j].OUT;
  }
  const uint64_t in = (uint64_t)m->in_h * (uint64_t)m->in_w;
  const uint64_t cam = (uint64_t)m->cam_h * (uint64_t)m->cam_w * (uint64_t)m->cam_c;
  const uint64_t head = (uint64_t)m->head_h * (uint64_t)m->head_w * (uint64_t)m->cam_c;
  /* XNNPACK may read up to 16 bytes past a conv's input */
  const uint64_t bytes[] = {in * 4, in * 3 * sizeof(float) + 16, act * sizeof(float) + 16,
                            head * sizeof(int32_t), dense * sizeof(float), d * sizeof(float),
                            cam * sizeof(float)};
  for (size_t i = 0; i < sizeof bytes / sizeof bytes[0]; i++)
    if (bytes[i] > GCAM__MAX_ALLOC_BYTES) {
      gcam_state_free(s);
      return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                         "the activations need a %llu MiB buffer, more than this build can "
                         "address (%llu MiB)",
                         (unsigned long long)(bytes[i] >> 20),
                         (unsigned long long)(GCAM__MAX_ALLOC_BYTES >> 20));
    }
  s->scratch_floats = gcam__state_scratch_floats(m, 1);
  if (s->scratch_floats == 0) {
    gcam_state_free(s);
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "the conv scratch does not fit this build's address space");
  }
  s->resized = malloc((size_t)bytes[0]);
  s->input = malloc((size_t)bytes[1]);
  s->act[0] = malloc((size_t)bytes[2]);
  s->act[1] = malloc((size_t)bytes[2]);
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
  s->argmax = malloc((size_t)bytes[3]);
  s->dense_out = malloc((size_t)bytes[4]);
  s->probs = malloc((size_t)m->n_classes * sizeof(float));
  s->d[0] = malloc((size_t)bytes[5]);
  s->d[1] = malloc((size_t)bytes[5]);
  s->grad = malloc((size_t)bytes[6]);
  s->alpha = malloc((size_t)m->cam_c * sizeof(float));
  s->cam = malloc((size_t)m->cam_h * (size_t)m->cam_w * sizeof(float));
  if (!s->resized || !s->input || !s->act[0] || !s->act[1] || !s->scratch || !s->argmax ||
      !s->dense_out || !s->probs || !s->d[0] || !s->d[1] || !s->grad || !s->alpha ||
      !s->cam) {
    /* what this state asked for, in 64 bits (the sizes are checked at load) */
    const uint64_t asked = (uint64_t)in * 4 + ((uint64_t)in * 3 + 2 * (uint64_t)act) * 4 + 48 +
                           (uint64_t)s->scratch_floats * 4 + (uint64_t)head * 4 +
                           ((uint64_t)dense + (uint64_t)m->n_classes + 2 * (uint64_t)d +
                            (uint64_t)cam + (uint64_t)m->cam_c + (uint64_t)m->cam_h * m->cam_w) * 4;
    gcam_state_free(s);
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "out of memory: the activations need %llu MB",
                       (unsigned long long)((asked + (1u << 20) - 1) >> 20));
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
