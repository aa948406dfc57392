/* state.c: creating and freeing the per-image scratch, sized by what a backward from it may
 * reach (gcam_state_params.depth). */
#include <stdlib.h>
#include <string.h>

#include "cam_methods.h"
#include "error.h"
#include "parallel.h"
#include "state.h"

float *gcam__dense_output(const gcam_state *s, int32_t j) {
  size_t off = 0;
  for (int32_t i = 0; i < j; i++) off += (size_t)s->model->dense[i].OUT;
  return s->dense_out + off;
}

gcam_state_params gcam_state_default_params(void) {
  gcam_state_params p;
  memset(&p, 0, sizeof p);
  p.depth = GCAM_DEPTH_LAST_CONV;
  return p;
}

void gcam_state_free(gcam_state *s) {
  if (!s) return;
  void *bufs[] = {s->resized, s->input,     s->act[0], s->act[1], s->own,   s->argmax_all,
                  s->scratch, s->pack,      s->bpack,  s->bwd,    s->probs, s->dense_out,
                  s->g[0],    s->g[1],      s->cam,    s->work,   s->in_grad, s->gsum,
                  s->x0,      s->xs,        s->cam_up};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
  free(s);
}

/* the conv layers a backward from this state runs through (their input gradient): those
 * above the deepest kept output, all of them for the pixel methods */
static int gcam__conv_backward_needed(const gcam_state *s, int32_t i) {
  return s->depth_input || i > s->depth_conv;
}

/* What the convs need of a state on n_threads task slots (each operator's setup: conv_op.h),
 * the buffers shared by the layers sized for the largest: kernel scratch, compact forward
 * weights, compact backward weights; and each kept backward slot (bwd_off, 64-byte aligned,
 * their sum in *bwd; bwd_off and bwd_keep may be NULL). */
typedef struct {
  size_t scratch, pack;
  uint64_t bpack, bwd;
} gcam__conv_plan;

static gcam_status gcam__state_conv_plan(const gcam_state *s, int32_t n_threads,
                                         gcam__conv_plan *p, uint64_t *bwd_off,
                                         uint8_t *bwd_keep) {
  const gcam_model *m = s->model;
  memset(p, 0, sizeof *p);
  p->scratch = 1;
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *l = &m->conv[i];
    gcam__conv_needs need;
    const gcam_status st = gcam__conv_op_setup(&l->op, l->H, l->W, n_threads,
                                               gcam__conv_backward_needed(s, i), &need);
    if (st) return st;
    if (need.scratch > p->scratch) p->scratch = need.scratch;
    if (need.pack > p->pack) p->pack = need.pack;
    if (need.bwd_pack && !need.bwd_keep && need.bwd_pack > p->bpack) p->bpack = need.bwd_pack;
    if (need.bwd_pack && need.bwd_keep) {
      if (bwd_off) bwd_off[i] = p->bwd;
      p->bwd += ((uint64_t)need.bwd_pack + 15) / 16 * 16;
    }
    if (bwd_keep) bwd_keep[i] = (uint8_t)(need.bwd_pack && need.bwd_keep);
  }
  return GCAM_STATUS_OK;
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
  gcam__conv_plan cp;
  const gcam_status st = gcam__state_conv_plan(s, pool->n_threads, &cp, NULL, NULL);
  if (st) return st;
  const size_t need = cp.scratch;
  if (need > s->scratch_floats) {
    float *scratch = malloc(need * sizeof(float));
    if (!scratch)
      return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory for %d threads' scratch",
                         (int)pool->n_threads);
    free(s->scratch);
    s->bytes += (uint64_t)(need - s->scratch_floats) * sizeof(float);
    s->scratch = scratch, s->scratch_floats = need;
  }
  s->pool = *pool;
  return GCAM_STATUS_OK;
}

gcam_status gcam__state_backward_weights(gcam_state *s) {
  if (s->bwd || s->bwd_floats == 0) return GCAM_STATUS_OK;
  const uint64_t bytes = s->bwd_floats * sizeof(float);
  const unsigned long long mb = (unsigned long long)((bytes + (1u << 20) - 1) >> 20);
  if (bytes > GCAM__MAX_ALLOC_BYTES)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "the backward's packed conv weights need %llu MB, more than this build "
                       "can address (GCAM_MEMORY_COMPACT packs them as each layer runs)", mb);
  s->bwd = malloc((size_t)bytes);
  if (!s->bwd)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "out of memory: the backward's packed conv weights need %llu MB "
                       "(GCAM_MEMORY_COMPACT packs them as each layer runs, in one layer's room)",
                       mb);
  s->bytes += bytes;
  memset(s->bwd_ready, 0, sizeof s->bwd_ready);
  return GCAM_STATUS_OK;
}

gcam_status gcam__state_cam_work(gcam_state *s, size_t doubles) {
  if (doubles <= s->work_doubles) return GCAM_STATUS_OK;
  if ((uint64_t)doubles > GCAM__MAX_ALLOC_BYTES / sizeof(double))
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "the method's work does not fit this build");
  double *w = malloc(doubles * sizeof(double));
  if (!w)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory for %zu MB of the method's work",
                       (doubles * sizeof(double) + (1u << 20) - 1) >> 20);
  free(s->work);
  s->bytes += (uint64_t)(doubles - s->work_doubles) * sizeof(double);
  s->work = w, s->work_doubles = doubles;
  return GCAM_STATUS_OK;
}

/* Where every layer's output lives, in floats (64 bits: a 4096x4096x64 activation is 4 GiB
 * and would wrap wasm32's size_t). A conv whose output a backward needs (>= depth_conv) gets
 * its own buffer, except the last conv: only its pool and the dense head follow it, so it may
 * stay in a ping-pong buffer, which keeps the default state at its old size. Everything else
 * takes the ping-pong buffer its input is not in. */
typedef struct {
  uint64_t act[2], own, argmax, g[2], cam, work;
  int32_t where[GCAM__MAX_LAYERS]; /* 0/1: act[]; 2: own; 3: dense_out */
  uint64_t own_off[GCAM__MAX_LAYERS], argmax_off[GCAM__MAX_LAYERS];
} gcam__plan;

static void gcam__state_plan(const gcam_state *s, gcam__plan *p) {
  const gcam_model *m = s->model;
  memset(p, 0, sizeof *p);
  int32_t cur = -1; /* the input tensor */
  const int32_t n = s->n_layers;
  for (int32_t i = 0; i < n; i++) {
    const gcam__layer *l = &s->layer[i];
    const uint64_t out = (uint64_t)l->out_h * (uint64_t)l->out_w * (uint64_t)l->out_c;
    int32_t where;
    if (l->kind == &gcam__layer_dense) {
      where = 3;
    } else if (l->kind == &gcam__layer_conv3x3_relu && l->index >= s->depth_conv &&
               l->index < m->n_conv - 1) {
      where = 2, p->own_off[i] = p->own, p->own += out;
    } else {
      where = cur == 0 ? 1 : 0;
      if (out > p->act[where]) p->act[where] = out;
    }
    if (l->kind == &gcam__layer_maxpool2x2 && m->conv[s->layer[i - 1].index].pool &&
        s->layer[i - 1].index >= s->depth_conv)
      p->argmax_off[i] = p->argmax + 1, p->argmax += out; /* +1: 0 means none */
    p->where[i] = where, cur = where;
  }
  /* gradients: the seed in g[0], layer i's input gradient in g[(n-i)&1], for every layer a
   * backward from this state may run */
  p->g[0] = (uint64_t)m->n_classes;
  const int32_t first = s->depth_input ? 0 : s->conv_layer[s->depth_conv] + 1;
  for (int32_t i = first; i < n; i++) {
    const gcam__layer *l = &s->layer[i];
    const uint64_t in = (uint64_t)l->in_h * (uint64_t)l->in_w * (uint64_t)l->in_c;
    if (in > p->g[(n - i) & 1]) p->g[(n - i) & 1] = in;
  }
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *l = &m->conv[i];
    if (i >= s->depth_conv) {
      const uint64_t hw = (uint64_t)l->H * (uint64_t)l->W;
      if (hw > p->cam) p->cam = hw;
      for (int meth = 0; meth < GCAM__CAM_COUNT; meth++) {
        size_t d = 0;
        if (meth == GCAM__CAM_EIGENCAM || meth == GCAM__CAM_EIGENGRADCAM) continue; /* grown */
        if (gcam__cam_work_doubles(meth, l->H, l->W, l->OC, &d) == GCAM_STATUS_OK &&
            d > p->work)
          p->work = d;
      }
    }
  }
  if (s->depth_input && (uint64_t)m->in_h * (uint64_t)m->in_w > p->cam)
    p->cam = (uint64_t)m->in_h * (uint64_t)m->in_w;
}

/* one buffer of the plan: its bytes checked against the address space, counted, allocated.
 * *failed: 1 when malloc failed; *too_big: the largest buffer over what this build can
 * address (e.g. a 4096x4096x64 activation, 4 GiB, in wasm32), never passed to malloc. */
static void *gcam__state_alloc(gcam_state *s, uint64_t bytes, int *failed, uint64_t *too_big) {
  if (bytes == 0) return NULL;
  s->bytes += bytes;
  if (bytes > GCAM__MAX_ALLOC_BYTES) {
    *failed = 1;
    if (bytes > *too_big) *too_big = bytes;
    return NULL;
  }
  void *p = malloc((size_t)bytes);
  if (!p) *failed = 1;
  return p;
}

gcam_status gcam_state_create(const gcam_model *m, gcam_state **out) {
  return gcam_state_create_ex(m, NULL, out);
}

gcam_status gcam_state_create_ex(const gcam_model *m, const gcam_state_params *params,
                                 gcam_state **out) {
  if (!m || !out) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "model or out is NULL");
  *out = NULL;
  const gcam_state_params p = params ? *params : gcam_state_default_params();
  if (p.depth != GCAM_DEPTH_LAST_CONV && p.depth != GCAM_DEPTH_INPUT &&
      (p.depth < 0 || p.depth >= m->n_conv))
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT,
                       "state depth %d is none of GCAM_DEPTH_LAST_CONV (-1), GCAM_DEPTH_INPUT "
                       "(-2) or a conv index 0..%d",
                       (int)p.depth, (int)m->n_conv - 1);
  gcam_state *s = calloc(1, sizeof *s);
  if (!s) return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory");
  s->model = m;
  s->depth = p.depth;
  s->depth_input = p.depth == GCAM_DEPTH_INPUT;
  s->depth_conv = p.depth == GCAM_DEPTH_LAST_CONV ? m->n_conv - 1 : s->depth_input ? 0 : p.depth;
  s->n_layers = gcam__layers_build(m, s->layer);
  for (int32_t i = 0; i < s->n_layers; i++)
    if (s->layer[i].kind == &gcam__layer_conv3x3_relu) s->conv_layer[s->layer[i].index] = i;

  gcam__plan plan;
  gcam__state_plan(s, &plan);
  uint64_t dense = 0;
  for (int32_t j = 0; j < m->n_dense; j++) dense += (uint64_t)m->dense[j].OUT;
  const uint64_t in = (uint64_t)m->in_h * (uint64_t)m->in_w;
  /* the convs' needs, set up for one thread (gcam_state_set_threadpool grows the scratch) */
  gcam__conv_plan cp;
  const gcam_status cst = gcam__state_conv_plan(s, 1, &cp, s->bwd_off, s->bwd_keep);
  if (cst) {
    gcam_state_free(s);
    return cst;
  }
  s->scratch_floats = cp.scratch;
  const uint64_t pack = cp.pack;
  int failed = 0;
  uint64_t too_big = 0;
  /* XNNPACK may read up to 16 bytes past a conv's input */
  s->resized = gcam__state_alloc(s, in * 4, &failed, &too_big);
  s->input = gcam__state_alloc(s, in * 3 * sizeof(float) + 16, &failed, &too_big);
  s->act[0] = gcam__state_alloc(s, plan.act[0] * sizeof(float) + 16, &failed, &too_big);
  s->act[1] = gcam__state_alloc(s, plan.act[1] * sizeof(float) + 16, &failed, &too_big);
  s->own = gcam__state_alloc(s, plan.own * sizeof(float) + (plan.own ? 16 : 0), &failed,
                            &too_big);
  s->argmax_all = gcam__state_alloc(s, plan.argmax * sizeof(int32_t), &failed, &too_big);
  s->scratch = gcam__state_alloc(s, (uint64_t)s->scratch_floats * sizeof(float), &failed, &too_big);
  s->pack = gcam__state_alloc(s, pack * sizeof(float), &failed, &too_big);
  s->bpack = gcam__state_alloc(s, cp.bpack * sizeof(float), &failed, &too_big);
  s->bwd_floats = cp.bwd; /* allocated at the first backward that needs it */
  s->dense_out = gcam__state_alloc(s, dense * sizeof(float), &failed, &too_big);
  s->probs = gcam__state_alloc(s, (uint64_t)m->n_classes * sizeof(float), &failed, &too_big);
  s->g[0] = gcam__state_alloc(s, plan.g[0] * sizeof(float), &failed, &too_big);
  s->g[1] = gcam__state_alloc(s, (plan.g[1] ? plan.g[1] : 1) * sizeof(float), &failed, &too_big);
  s->cam = gcam__state_alloc(s, plan.cam * sizeof(float), &failed, &too_big);
  s->work = gcam__state_alloc(s, plan.work * sizeof(double), &failed, &too_big);
  s->work_doubles = (size_t)plan.work;
  if (s->depth_input) {
    s->in_grad = gcam__state_alloc(s, in * 3 * sizeof(float), &failed, &too_big);
    s->gsum = gcam__state_alloc(s, in * 3 * sizeof(double), &failed, &too_big);
    s->x0 = gcam__state_alloc(s, in * 3 * sizeof(float), &failed, &too_big);
    s->xs = gcam__state_alloc(s, in * 3 * sizeof(float), &failed, &too_big);
    s->cam_up = gcam__state_alloc(s, in * sizeof(float), &failed, &too_big);
  }
  if (failed) {
    const uint64_t asked = s->bytes;
    gcam_state_free(s);
    if (too_big)
      return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                         "the activations need a %llu MiB buffer, more than this build can "
                         "address (%llu MiB)",
                         (unsigned long long)(too_big >> 20),
                         (unsigned long long)(GCAM__MAX_ALLOC_BYTES >> 20));
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "out of memory: the state needs %llu MB (depth %d; "
                       "gcam_state_params.depth says how deep a backward may go)",
                       (unsigned long long)((asked + (1u << 20) - 1) >> 20), (int)p.depth);
  }
  for (int32_t i = 0; i < s->n_layers; i++) {
    const int32_t w = plan.where[i];
    s->y[i] = w == 3   ? gcam__dense_output(s, s->layer[i].index)
              : w == 2 ? s->own + plan.own_off[i]
                       : s->act[w];
    s->argmax[i] = plan.argmax_off[i] ? s->argmax_all + (plan.argmax_off[i] - 1) : NULL;
  }
  *out = s;
  return GCAM_STATUS_OK;
}

gcam_status gcam_state_memory_bytes(const gcam_state *s, uint64_t *bytes) {
  if (!s || !bytes) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state or bytes is NULL");
  *bytes = s->bytes + sizeof *s;
  return GCAM_STATUS_OK;
}
