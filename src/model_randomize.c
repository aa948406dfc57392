/* model_randomize.c: a private copy of a model whose layers can be re-initialised, for the
 * model-parameter randomization check (Adebayo et al., "Sanity Checks for Saliency Maps",
 * NeurIPS 2018). The copy shares nothing with the original: the weights allocation is
 * copied whole and every layer pointer rebased into it, so the original model (which other
 * states may be using) is never written.
 *
 * The initialisation is Keras's he_normal (VarianceScaling(2, fan_in, truncated normal)):
 * VGG16's Keras layers use glorot_uniform, torchvision's kaiming_normal(fan_out); Adebayo et
 * al. re-initialise "with a truncated normal", so we take the He scale that keeps the
 * activations' size through the ReLUs (a Glorot scale shrinks them layer after layer, and a
 * map computed from vanishing activations tells little). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "evaluate.h"
#include "ops.h"
#include "parallel.h"
#include "state.h"
#ifdef GCAM_HAVE_XNNPACK
#include "xnn_backend.h"
#endif

/* ---- the copy ---------------------------------------------------------------------------- */

/* p (a pointer into m's weights, or NULL) at the same offset in the copy's weights */
static int gcam__rebase(const gcam_model *m, gcam_model *c, const void **p) {
  if (!*p) return 1;
  const uint8_t *base = m->weights, *q = *p;
  if (q < base || q >= base + m->weight_bytes) return 0;
  *p = (const uint8_t *)c->weights + (q - base);
  return 1;
}

gcam_status gcam__model_clone(const gcam_model *m, gcam_model **out) {
  *out = NULL;
  gcam_model *c = malloc(sizeof *c);
  if (!c) return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory");
  *c = *m;
  c->labels = NULL, c->label_ptr = NULL, c->xnn = NULL;
  /* weight_bytes is a sum of 64-byte pieces, as aligned_alloc wants */
  c->weights = aligned_alloc(64, m->weight_bytes);
  if (!c->weights) {
    free(c);
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "out of memory: the randomization check copies the model's %llu MB of "
                       "weights",
                       (unsigned long long)((m->weight_bytes + (1u << 20) - 1) >> 20));
  }
  memcpy(c->weights, m->weights, m->weight_bytes);
  int ok = 1;
  for (int32_t i = 0; i < m->n_conv; i++) {
    gcam_conv_layer *l = &c->conv[i];
    const void *p[3] = {l->op.packed, l->op.w, l->op.bias};
    for (int k = 0; k < 3; k++) ok &= gcam__rebase(m, c, &p[k]);
    l->op.packed = (float *)p[0], l->op.w = (void *)p[1], l->op.bias = (float *)p[2];
  }
  for (int32_t j = 0; j < m->n_dense; j++) {
    gcam__dense_weights *w = &c->dense[j].w;
    const void *p[3] = {w->w, w->scale, w->bias};
    for (int k = 0; k < 3; k++) ok &= gcam__rebase(m, c, &p[k]);
    w->w = p[0], w->scale = p[1], w->bias = p[2];
  }
  if (!ok) { /* a layer pointer outside the one allocation: the layout changed under us */
    gcam_model_free(c);
    return gcam__error(GCAM_STATUS_BAD_STATE,
                       "the model's layers do not all live in its weights allocation");
  }
#ifdef GCAM_HAVE_XNNPACK
  gcam_status st;
  if (c->backend == GCAM_BACKEND_XNNPACK && (st = gcam__xnn_model_create(c))) {
    gcam_model_free(c);
    return st;
  }
#endif
  *out = c;
  return GCAM_STATUS_OK;
}

/* ---- the draws --------------------------------------------------------------------------- */

typedef struct gcam__rng {
  uint64_t s;
  int has_spare;
  double spare;
} gcam__rng;

static uint64_t gcam__splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* one stream per (seed, layer): convs are layers 0..n_conv-1, dense layer j is 1000 + j */
static gcam__rng gcam__rng_for(uint64_t seed, uint64_t layer) {
  gcam__rng r = {seed, 0, 0.0};
  uint64_t mix = gcam__splitmix64(&r.s) ^ (layer * 0xD1B54A32D192ED03ull);
  r.s = mix;
  return r;
}

/* a uniform double in (0, 1): 53 bits, never 0 */
static double gcam__uniform(gcam__rng *r) {
  return ((double)(gcam__splitmix64(&r->s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* a standard normal (Box-Muller, both values used) */
static double gcam__normal(gcam__rng *r) {
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  const double u = gcam__uniform(r), v = gcam__uniform(r);
  const double rad = sqrt(-2.0 * log(u)), a = 6.283185307179586 * v;
  r->spare = rad * sin(a), r->has_spare = 1;
  return rad * cos(a);
}

/* Keras's he_normal: the std of the normal before truncation, so that the values kept in
 * [-2 std, 2 std] have std sqrt(2 / fan_in) (0.8796... is the std of a standard normal
 * truncated at +-2) */
static double gcam__he_std(uint64_t fan_in) {
  return sqrt(2.0 / (double)fan_in) / 0.87962566103423978;
}

static float gcam__truncated(gcam__rng *r, double std) {
  double z;
  do z = gcam__normal(r);
  while (z < -2.0 || z > 2.0);
  return (float)(z * std);
}

uint16_t gcam__f32_to_f16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a >= 0x477ff000u) return sign | 0x7c00u; /* rounds to >= 65536: inf (never here) */
  if (a < 0x38800000u) {                        /* below 2^-14: a subnormal half, or 0 */
    if (a < 0x33000000u) return sign;          /* below half the smallest subnormal */
    const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    const int shift = 126 - (int)(a >> 23);    /* 14..24: 2^-24 units */
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return sign | (uint16_t)h;
  }
  uint32_t h = ((a >> 13) - (112u << 10));     /* rebias 127 -> 15 */
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
  return sign | (uint16_t)h;
}

/* ---- re-initialising a layer --------------------------------------------------------------- */

size_t gcam__model_reinit_staging_floats(const gcam_model *m) {
  size_t most = 0;
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *l = &m->conv[i];
    if (l->op.form != GCAM__CONV_PACKED) continue;
    const size_t f = (size_t)l->OC; /* the zero bias the packing takes */
    if (f > most) most = f;
  }
  return most;
}

void gcam__model_reinit_conv(gcam_model *m, int32_t i, uint64_t seed, float *staging) {
  gcam_conv_layer *l = &m->conv[i];
  const size_t n = (size_t)9 * (size_t)l->C * (size_t)l->OC;
  gcam__rng r = gcam__rng_for(seed, (uint64_t)i);
  const double std = gcam__he_std((uint64_t)9 * (uint64_t)l->C);
  gcam__conv_op *op = &l->op;
  if (op->form == GCAM__CONV_COMPACT && op->w_dtype == GCAM__DTYPE_F16) { /* as stored */
    uint16_t *w = op->w;
    for (size_t k = 0; k < n; k++) w[k] = gcam__f32_to_f16(gcam__truncated(&r, std));
  } else { /* f32 canonical: compact f32, XNNPACK's (its operator is remade), packed's */
    float *w = op->w;
    for (size_t k = 0; k < n; k++) w[k] = gcam__truncated(&r, std);
  }
  if (op->form == GCAM__CONV_PACKED) { /* packed again as at load, with a zero bias */
    memset(staging, 0, sizeof(float) * (size_t)l->OC);
    gcam__conv3x3_pack(op->packed, op->w, staging, l->C, l->OC);
  } else {
    memset(op->bias, 0, sizeof(float) * (size_t)l->OC);
  }
}

void gcam__model_reinit_dense(gcam_model *m, int32_t j, uint64_t seed) {
  gcam_dense_layer *l = &m->dense[j];
  gcam__dense_weights *dw = &l->w;
  const size_t n = (size_t)l->IN * (size_t)l->OUT;
  gcam__rng r = gcam__rng_for(seed, 1000u + (uint64_t)j);
  const double std = gcam__he_std((uint64_t)l->IN);
  if (dw->dtype == GCAM__DTYPE_I8) {
    /* one scale for every output: 127 steps cover the truncated range [-2 std, 2 std] */
    const float scale = (float)(2.0 * std / 127.0);
    int8_t *w = (int8_t *)dw->w;
    for (size_t k = 0; k < n; k++) {
      const long q = lroundf(gcam__truncated(&r, std) / scale);
      w[k] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
    }
    float *s = (float *)dw->scale;
    for (int32_t o = 0; o < l->OUT; o++) s[o] = scale;
  } else if (dw->dtype == GCAM__DTYPE_F16) {
    uint16_t *w = (uint16_t *)dw->w;
    /* scaled as the loader left the layer (ops.h: f16_exp; 2 std 2^10 stays far inside
     * the half range) */
    for (size_t k = 0; k < n; k++)
      w[k] = gcam__f32_to_f16(ldexpf(gcam__truncated(&r, std), dw->f16_exp));
  } else {
    float *w = (float *)dw->w;
    for (size_t k = 0; k < n; k++) w[k] = gcam__truncated(&r, std);
  }
  memset((float *)dw->bias, 0, sizeof(float) * (size_t)l->OUT);
}

gcam_status gcam__state_refresh_conv(gcam_state *s, gcam_model *m, int32_t i) {
  s->bwd_ready[i] = 0; /* its backward weights are packed again from the new ones */
#ifdef GCAM_HAVE_XNNPACK
  if (m->backend == GCAM_BACKEND_XNNPACK) return gcam__xnn_model_conv_refresh(m, i);
#endif
  (void)m;
  return GCAM_STATUS_OK;
}
