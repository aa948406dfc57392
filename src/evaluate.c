/* evaluate.c: is an explanation faithful to the model, and does it depend on the model at all?
 *
 *   deletion / insertion (Petsiuk et al., "RISE", BMVC 2018): the input's pixels in the map's
 *     order, most salient first, are removed (set to a baseline) or revealed (from the
 *     baseline) in `steps` equal steps; the class probability after each step is the curve,
 *     and its area (trapezoid rule over x in [0, 1]) the score.
 *   randomization (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018, the
 *     cascading variant): the layers of a copy of the model are re-initialised from the top
 *     (dense layers from the last, then convs from the last); after each one the explanation
 *     is recomputed and compared with the original by Spearman's rank correlation.
 *
 * Both work on the preprocessed input tensor the state's last forward ran on (s->input), and
 * leave the state holding that image's forward again. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "evaluate.h"
#include "image/image.h"
#include "state.h"

#define GCAM__EVAL_MAX_STEPS 1024
#define GCAM__BLUR_RADIUS 5
#define GCAM__BLUR_SIGMA 5.0

gcam_evaluate_params gcam_evaluate_default_params(void) {
  gcam_evaluate_params p;
  memset(&p, 0, sizeof p);
  p.metric = GCAM_METRIC_DELETION;
  p.steps = 32;
  p.baseline = GCAM_BASELINE_BLUR;
  p.seed = 0;
  return p;
}

/* ---- ranks and Spearman's correlation ------------------------------------------------------ */

typedef struct gcam__keyed {
  float v;
  int32_t i;
} gcam__keyed;

/* ascending by value, ties by index: a total order, so qsort's instability cannot show */
static int gcam__cmp_up(const void *pa, const void *pb) {
  const gcam__keyed *a = pa, *b = pb;
  if (a->v != b->v) return a->v < b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}
/* descending by value, ties by index (the deletion order) */
static int gcam__cmp_down(const void *pa, const void *pb) {
  const gcam__keyed *a = pa, *b = pb;
  if (a->v != b->v) return a->v > b->v ? -1 : 1;
  return (a->i > b->i) - (a->i < b->i);
}

/* `keyed` holds n entries; on return it is x sorted by cmp */
static void gcam__sort_keyed(gcam__keyed *keyed, const float *x, size_t n,
                             int (*cmp)(const void *, const void *)) {
  for (size_t k = 0; k < n; k++) keyed[k].v = x[k], keyed[k].i = (int32_t)k;
  qsort(keyed, n, sizeof *keyed, cmp);
}

/* `order` is reused as the sort's keyed array: it must hold n gcam__keyed, i.e. 2 n int32 */
static void gcam__ranks_keyed(double *rank, const float *x, size_t n, gcam__keyed *keyed) {
  gcam__sort_keyed(keyed, x, n, gcam__cmp_up);
  for (size_t a = 0; a < n;) {
    size_t b = a + 1;
    while (b < n && keyed[b].v == keyed[a].v) b++;
    const double avg = 0.5 * (double)(a + b - 1) + 1.0; /* ranks a+1..b, averaged */
    for (size_t k = a; k < b; k++) rank[keyed[k].i] = avg;
    a = b;
  }
}

void gcam__ranks(double *rank, const float *x, size_t n, int32_t *order) {
  gcam__ranks_keyed(rank, x, n, (gcam__keyed *)(void *)order);
}

/* Pearson's correlation of two rank vectors; 0 when either is constant */
static double gcam__pearson(const double *ra, const double *rb, size_t n) {
  const double mean = 0.5 * ((double)n + 1.0); /* the mean of any ranking of n values */
  double sab = 0.0, saa = 0.0, sbb = 0.0;
  for (size_t k = 0; k < n; k++) {
    const double a = ra[k] - mean, b = rb[k] - mean;
    sab += a * b, saa += a * a, sbb += b * b;
  }
  if (saa == 0.0 || sbb == 0.0) return 0.0;
  return sab / sqrt(saa * sbb);
}

double gcam__spearman(const float *a, const float *b, size_t n, double *work) {
  double *ra = work, *rb = work + n;
  gcam__keyed *keyed = (gcam__keyed *)(void *)(work + 2 * n); /* 8 bytes each, as a double */
  gcam__ranks_keyed(ra, a, n, keyed);
  gcam__ranks_keyed(rb, b, n, keyed);
  return gcam__pearson(ra, rb, n);
}

/* ---- the baseline -------------------------------------------------------------------------- */

/* one 1-D pass along an axis of `len` positions `step` floats apart, for `count` lines
 * `line` floats apart, 3 channels interleaved */
static void gcam__blur_pass(float *out, const float *x, int32_t len, size_t step, int32_t count,
                            size_t line, const double *w) {
  const int32_t R = GCAM__BLUR_RADIUS;
  for (int32_t c = 0; c < count; c++) {
    const float *xs = x + (size_t)c * line;
    float *os = out + (size_t)c * line;
    for (int32_t p = 0; p < len; p++) {
      const int32_t lo = p - R < 0 ? 0 : p - R, hi = p + R >= len ? len - 1 : p + R;
      double acc[3] = {0, 0, 0}, wsum = 0.0;
      for (int32_t q = lo; q <= hi; q++) {
        const double wq = w[q - p + R];
        const float *v = xs + (size_t)q * step;
        acc[0] += wq * v[0], acc[1] += wq * v[1], acc[2] += wq * v[2];
        wsum += wq;
      }
      float *o = os + (size_t)p * step;
      for (int ch = 0; ch < 3; ch++) o[ch] = (float)(acc[ch] / wsum);
    }
  }
}

void gcam__blur_baseline(float *out, const float *x, int32_t H, int32_t W, float *tmp) {
  double w[2 * GCAM__BLUR_RADIUS + 1];
  for (int32_t t = -GCAM__BLUR_RADIUS; t <= GCAM__BLUR_RADIUS; t++)
    w[t + GCAM__BLUR_RADIUS] = exp(-(double)(t * t) / (2.0 * GCAM__BLUR_SIGMA * GCAM__BLUR_SIGMA));
  /* rows (along x), then columns (along y); the 2-D kernel is the product, and so is its
   * renormalisation at a border (the taps inside the image form a rectangle) */
  gcam__blur_pass(tmp, x, W, 3, H, (size_t)W * 3, w);
  gcam__blur_pass(out, tmp, H, (size_t)W * 3, W, 3, w);
}

/* ---- checks shared by the metrics ------------------------------------------------------------ */

static gcam_status gcam__check_map(const float *map, int32_t map_width, int32_t map_height) {
  if (!map) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "map is NULL");
  if (map_width < 1 || map_height < 1)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "map size %dx%d is empty", (int)map_width,
                       (int)map_height);
  const uint64_t n = (uint64_t)map_width * (uint64_t)map_height;
  if (n > (uint64_t)GCAM_MAX_IMAGE_PIXELS)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "map of %dx%d values is over the cap of %lld",
                       (int)map_width, (int)map_height, (long long)GCAM_MAX_IMAGE_PIXELS);
  for (uint64_t k = 0; k < n; k++)
    if (!isfinite(map[k]))
      return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "map value %llu (x %d, y %d) is %s",
                         (unsigned long long)k, (int)(k % (uint64_t)map_width),
                         (int)(k / (uint64_t)map_width), isnan(map[k]) ? "NaN" : "infinite");
  return GCAM_STATUS_OK;
}

/* bytes = count * size, refused (with a message) past what one allocation may be */
static gcam_status gcam__bytes(uint64_t count, uint64_t size, const char *what, size_t *bytes) {
  if (count > GCAM__MAX_ALLOC_BYTES / size)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "%s needs more memory than this build can address in one buffer", what);
  *bytes = (size_t)(count * size);
  return GCAM_STATUS_OK;
}

/* ---- deletion and insertion ---------------------------------------------------------------- */

static double gcam__trapezoid(const double *y, int32_t steps) {
  double area = 0.0;
  for (int32_t i = 0; i < steps; i++) area += 0.5 * (y[i] + y[i + 1]);
  return area / steps;
}

static gcam_status gcam__evaluate_curve(gcam_state *s, int32_t c, const float *map,
                                        int32_t map_width, int32_t map_height,
                                        const gcam_evaluate_params *p, gcam_evaluate_result *out) {
  const gcam_model *m = s->model;
  const uint64_t n = (uint64_t)m->in_h * (uint64_t)m->in_w;
  size_t b_map = 0, b_keyed = 0, b_tensor = 0;
  gcam_status st;
  if ((st = gcam__bytes(n, sizeof(float), "the resized map", &b_map)) ||
      (st = gcam__bytes(n, sizeof(gcam__keyed), "the pixel order", &b_keyed)) ||
      (st = gcam__bytes(n, 3 * sizeof(float), "a copy of the input", &b_tensor)))
    return st;
  float *sal = malloc(b_map), *orig = malloc(b_tensor), *base = malloc(b_tensor);
  gcam__keyed *order = malloc(b_keyed);
  float *tmp = p->baseline == GCAM_BASELINE_BLUR ? malloc(b_tensor) : NULL;
  if (!sal || !orig || !base || !order || (p->baseline == GCAM_BASELINE_BLUR && !tmp)) {
    free(sal), free(orig), free(base), free(order), free(tmp);
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory for a %s curve (%llu MB)",
                       p->metric == GCAM_METRIC_DELETION ? "deletion" : "insertion",
                       (unsigned long long)((b_map + b_keyed + 3 * b_tensor) >> 20));
  }

  gcam__resize_bilinear_f32(sal, m->in_w, m->in_h, map, map_width, map_height);
  gcam__sort_keyed(order, sal, (size_t)n, gcam__cmp_down);
  memcpy(orig, s->input, b_tensor);
  if (p->baseline == GCAM_BASELINE_BLUR)
    gcam__blur_baseline(base, orig, m->in_h, m->in_w, tmp);
  else
    memset(base, 0, b_tensor); /* 0 after either preprocessing is the dataset's mean colour */

  /* the curve: forwards on s->input changed in place, pixel run by pixel run */
  const int deletion = p->metric == GCAM_METRIC_DELETION;
  const float *to = deletion ? base : orig; /* what a pixel in the order becomes */
  float *x = s->input;
  if (!deletion) memcpy(x, base, b_tensor);
  const int32_t steps = p->steps;
  uint64_t done = 0;
  for (int32_t i = 0; i <= steps && st == GCAM_STATUS_OK; i++) {
    const uint64_t upto = n * (uint64_t)i / (uint64_t)steps;
    for (; done < upto; done++) {
      const size_t px = (size_t)order[done].i * 3;
      x[px] = to[px], x[px + 1] = to[px + 1], x[px + 2] = to[px + 2];
    }
    /* deletion's first point is the image itself: the state's forward already holds it */
    if (i > 0 || !deletion) st = gcam_state_forward_tensor(s, x);
    if (!st) out->curve[i] = s->probs[c];
  }

  /* the image's forward again: rerun (one forward, against steps of them for the curve;
   * saving and restoring every activation a deep state keeps would cost as much memory) */
  memcpy(s->input, orig, b_tensor);
  const gcam_status st2 = gcam_state_forward_tensor(s, s->input);
  free(sal), free(orig), free(base), free(order), free(tmp);
  if (st) return st;
  if (st2) return st2;
  out->n_points = steps + 1;
  out->auc = gcam__trapezoid(out->curve, steps);
  return GCAM_STATUS_OK;
}

/* ---- randomization -------------------------------------------------------------------------- */

/* the depth a state needs for an explain with these params */
static int32_t gcam__depth_for(const gcam_explain_params *e) {
  if (gcam_method_is_pixel(e->method)) return GCAM_DEPTH_INPUT;
  return e->layer < 0 ? GCAM_DEPTH_LAST_CONV : e->layer;
}

gcam_status gcam__evaluate_randomization(gcam_state *s, int32_t class_index, const float *map,
                                         int32_t map_width, int32_t map_height,
                                         const gcam_explain_params *explain, uint64_t seed,
                                         int32_t n_layers, int include_original, double *curve) {
  const gcam_model *m = s->model;
  if (n_layers < 0 || n_layers > m->n_dense + m->n_conv)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "%d layers to re-initialise, not 0..%d",
                       (int)n_layers, (int)(m->n_dense + m->n_conv));
  int32_t ew, eh;
  gcam_status st = gcam_state_map_size(s, explain, &ew, &eh);
  if (st) return st;
  const uint64_t n = (uint64_t)ew * (uint64_t)eh;
  size_t b_map = 0, b_work = 0, b_stage = 0;
  if ((st = gcam__bytes(n, sizeof(float), "the recomputed map", &b_map)) ||
      (st = gcam__bytes(n, 3 * sizeof(double), "the ranks", &b_work)) ||
      (st = gcam__bytes(gcam__model_reinit_staging_floats(m), sizeof(float), "a conv's weights",
                        &b_stage)))
    return st;
  /* the map under test at the recomputed map's size (normally it is that size already) */
  float *ref = malloc(b_map), *now = malloc(b_map), *stage = b_stage ? malloc(b_stage) : NULL;
  double *work = malloc(b_work);
  if (!ref || !now || !work || (b_stage && !stage)) {
    free(ref), free(now), free(work), free(stage);
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory for the randomization check");
  }
  if (map_width == ew && map_height == eh)
    memcpy(ref, map, b_map);
  else
    gcam__resize_bilinear_f32(ref, ew, eh, map, map_width, map_height);

  gcam_model *clone = NULL;
  gcam_state *cs = NULL;
  gcam_state_params sp = gcam_state_default_params();
  sp.depth = gcam__depth_for(explain);
  if ((st = gcam__model_clone(m, &clone)) || (st = gcam_state_create_ex(clone, &sp, &cs)))
    goto done;
  if (s->pool.run && (st = gcam_state_set_threadpool(cs, &s->pool))) goto done;

  int32_t k = 0;
  if (include_original) {
    if ((st = gcam_state_forward_tensor(cs, s->input)) ||
        (st = gcam_state_explain_ex(cs, class_index, explain, NULL, now, NULL)))
      goto done;
    curve[k++] = gcam__spearman(ref, now, (size_t)n, work);
  }
  for (int32_t step = 0; step < n_layers; step++) {
    if (step < m->n_dense) {
      gcam__model_reinit_dense(clone, m->n_dense - 1 - step, seed);
    } else {
      const int32_t i = m->n_conv - 1 - (step - m->n_dense);
      gcam__model_reinit_conv(clone, i, seed, stage);
      if ((st = gcam__state_refresh_conv(cs, clone, i))) goto done;
    }
    if ((st = gcam_state_forward_tensor(cs, s->input)) ||
        (st = gcam_state_explain_ex(cs, class_index, explain, NULL, now, NULL)))
      goto done;
    curve[k++] = gcam__spearman(ref, now, (size_t)n, work);
  }
done:
  gcam_state_free(cs);
  gcam_model_free(clone);
  free(ref), free(now), free(work), free(stage);
  return st;
}

/* ---- the public call ------------------------------------------------------------------------- */

gcam_status gcam_state_evaluate(gcam_state *s, int32_t class_index, const float *map,
                                int32_t map_width, int32_t map_height,
                                const gcam_explain_params *explain,
                                const gcam_evaluate_params *params, gcam_evaluate_result *out) {
  if (!s || !out) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state or out is NULL");
  const gcam_evaluate_params p = params ? *params : gcam_evaluate_default_params();
  const gcam_explain_params e = explain ? *explain : gcam_explain_default_params();
  const gcam_model *m = s->model;
  gcam_status st;
  if ((unsigned)p.metric > GCAM_METRIC_RANDOMIZATION)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT,
                       "unknown metric %d (deletion 0, insertion 1, randomization 2)",
                       (int)p.metric);
  if (p.metric != GCAM_METRIC_RANDOMIZATION) {
    if (p.steps < 1 || p.steps > GCAM__EVAL_MAX_STEPS)
      return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "steps is %d, not 1..%d", (int)p.steps,
                         GCAM__EVAL_MAX_STEPS);
    if ((unsigned)p.baseline > GCAM_BASELINE_MEAN)
      return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "unknown baseline %d (blur 0, mean 1)",
                         (int)p.baseline);
  }
  if ((st = gcam__check_map(map, map_width, map_height))) return st;
  if (class_index < 0 || class_index >= m->n_classes)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "class %d is outside the model's %d classes",
                       (int)class_index, (int)m->n_classes);
  if (!s->has_forward)
    return gcam__error(GCAM_STATUS_BAD_STATE, "evaluate needs a forward first");

  memset(out, 0, sizeof *out);
  if (p.metric != GCAM_METRIC_RANDOMIZATION)
    return gcam__evaluate_curve(s, class_index, map, map_width, map_height, &p, out);
  const int32_t n_layers = m->n_dense + m->n_conv;
  if ((st = gcam__evaluate_randomization(s, class_index, map, map_width, map_height, &e, p.seed,
                                         n_layers, 0, out->curve)))
    return st;
  out->n_points = n_layers;
  return GCAM_STATUS_OK;
}
