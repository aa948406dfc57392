/* dense.c: fully connected layers at batch 1. Both directions are memory bound (VGG16's fc1
 * is 25088 x 4096 floats, 411 MB): the loops read w once, row after row, as a stream.
 * On a pool, the forward splits the outputs and the backward the rows of w into contiguous
 * ranges, cut on the kernels' vector boundaries so each value's arithmetic is unchanged. */
#include "ops.h"
#include "parallel.h"
#include "simd.h"

/* below this many weights a layer is not worth a trip through the pool */
#define GCAM_DENSE_MIN_PARALLEL ((size_t)1 << 16)

/* out[o0, o1) = bias + in . w, for a row stride n; o0 is a multiple of 4 and o1 is too unless
 * o1 == n, so every column takes the same (vector or scalar) path as in a whole-row pass.
 * Eight rows of w per pass over `out`, which stays in L1 (fewer passes, fewer loads and
 * stores of `out` per weight read). */
static void gcam__dense_forward_cols(float *out, const float *in, const float *w,
                                     const float *bias, int32_t IN, size_t n, size_t o0,
                                     size_t o1, int relu) {
  memcpy(out + o0, bias + o0, (o1 - o0) * sizeof *out);
  int32_t i = 0;
  for (; i + 8 <= IN; i += 8) {
    const float *w0 = w + (size_t)i * n;
    gcam_f32x4 v[8];
    for (int r = 0; r < 8; r++) v[r] = gcam__f32x4_splat(in[i + r]);
    size_t o = o0;
    for (; o + 4 <= o1; o += 4) {
      const float *p = w0 + o;
      gcam_f32x4 a = gcam__f32x4_load(out + o) + v[0] * gcam__f32x4_load(p);
      gcam_f32x4 b = v[1] * gcam__f32x4_load(p + n);
      a += v[2] * gcam__f32x4_load(p + 2 * n);
      b += v[3] * gcam__f32x4_load(p + 3 * n);
      a += v[4] * gcam__f32x4_load(p + 4 * n);
      b += v[5] * gcam__f32x4_load(p + 5 * n);
      a += v[6] * gcam__f32x4_load(p + 6 * n);
      b += v[7] * gcam__f32x4_load(p + 7 * n);
      gcam__f32x4_store(out + o, a + b);
    }
    for (; o < o1; o++) {
      float acc = out[o];
      for (int r = 0; r < 8; r++) acc += in[i + r] * w0[(size_t)r * n + o];
      out[o] = acc;
    }
  }
  for (; i < IN; i++) {
    const float *wi = w + (size_t)i * n;
    const float x = in[i];
    const gcam_f32x4 v = gcam__f32x4_splat(x);
    size_t o = o0;
    for (; o + 4 <= o1; o += 4)
      gcam__f32x4_store(out + o, gcam__f32x4_load(out + o) + v * gcam__f32x4_load(wi + o));
    for (; o < o1; o++) out[o] += x * wi[o];
  }
  if (relu)
    for (size_t o = o0; o < o1; o++) out[o] = out[o] > 0.0f ? out[o] : 0.0f;
}

static inline float gcam__hsum(gcam_f32x4 v) { return (v[0] + v[2]) + (v[1] + v[3]); }

/* d_in[i] = dot(w row i, d_out) for rows [i0, i1); i0 is a multiple of 8 and i1 is too
 * unless i1 == IN. Eight rows per pass share each load of d_out. */
static void gcam__dense_backward_rows(float *d_in, const float *d_out, const float *w,
                                      size_t n, size_t i0, size_t i1) {
  size_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const float *w0 = w + i * n;
    gcam_f32x4 a[8];
    for (int r = 0; r < 8; r++) a[r] = (gcam_f32x4){0.0f, 0.0f, 0.0f, 0.0f};
    size_t o = 0;
    for (; o + 4 <= n; o += 4) {
      const gcam_f32x4 g = gcam__f32x4_load(d_out + o);
      for (int r = 0; r < 8; r++) a[r] += g * gcam__f32x4_load(w0 + (size_t)r * n + o);
    }
    for (int r = 0; r < 8; r++) {
      float s = gcam__hsum(a[r]);
      for (size_t k = o; k < n; k++) s += w0[(size_t)r * n + k] * d_out[k];
      d_in[i + r] = s;
    }
  }
  for (; i < i1; i++) {
    const float *wi = w + i * n;
    gcam_f32x4 a = {0};
    size_t o = 0;
    for (; o + 4 <= n; o += 4) a += gcam__f32x4_load(d_out + o) * gcam__f32x4_load(wi + o);
    float s = gcam__hsum(a);
    for (; o < n; o++) s += wi[o] * d_out[o];
    d_in[i] = s;
  }
}

/* How many tasks for `groups` whole groups (of 4 columns or 8 rows) of a layer with
 * `weights` weights: 1 when small, never more than the groups */
static int32_t gcam__dense_tasks(const gcam_threadpool *pool, size_t weights, size_t groups) {
  int32_t n = gcam__pool_threads(pool);
  if (weights < GCAM_DENSE_MIN_PARALLEL) return 1;
  if ((size_t)n > groups) n = groups > 0 ? (int32_t)groups : 1;
  return n;
}

/* [begin, end) of task t: whole groups of `g`, the leftover units in the last task */
static void gcam__dense_range(size_t units, size_t g, int32_t n_tasks, int32_t t, size_t *begin,
                              size_t *end) {
  size_t b, e;
  gcam__split(units / g, n_tasks, t, &b, &e);
  *begin = b * g;
  *end = t == n_tasks - 1 ? units : e * g;
}

typedef struct {
  float *y;
  const float *x, *w, *bias;
  int32_t IN, OUT, relu, n_tasks;
} gcam__dense_job;

static void gcam__dense_forward_task(void *context, int32_t t) {
  const gcam__dense_job *j = context;
  size_t o0, o1;
  gcam__dense_range((size_t)j->OUT, 4, j->n_tasks, t, &o0, &o1);
  gcam__dense_forward_cols(j->y, j->x, j->w, j->bias, j->IN, (size_t)j->OUT, o0, o1, j->relu);
}

static void gcam__dense_backward_task(void *context, int32_t t) {
  const gcam__dense_job *j = context;
  size_t i0, i1;
  gcam__dense_range((size_t)j->IN, 8, j->n_tasks, t, &i0, &i1);
  gcam__dense_backward_rows(j->y, j->x, j->w, (size_t)j->OUT, i0, i1);
}

void gcam__dense_forward_pool(float *out, const float *in, const float *w, const float *bias,
                              int32_t IN, int32_t OUT, int relu, const gcam_threadpool *pool) {
  const size_t n = (size_t)OUT;
  gcam__dense_job j = {out, in, w, bias, IN, OUT, relu, 1};
  j.n_tasks = gcam__dense_tasks(pool, (size_t)IN * n, n / 4);
  gcam__parallel_for(pool, gcam__dense_forward_task, &j, j.n_tasks);
}

void gcam__dense_backward_input_pool(float *d_in, const float *d_out, const float *w,
                                     int32_t IN, int32_t OUT, const gcam_threadpool *pool) {
  gcam__dense_job j = {d_in, d_out, w, NULL, IN, OUT, 0, 1};
  j.n_tasks = gcam__dense_tasks(pool, (size_t)IN * (size_t)OUT, (size_t)IN / 8);
  gcam__parallel_for(pool, gcam__dense_backward_task, &j, j.n_tasks);
}

void gcam__dense_forward(float *out, const float *in, const float *w, const float *bias,
                        int32_t IN, int32_t OUT, int relu) {
  gcam__dense_forward_pool(out, in, w, bias, IN, OUT, relu, NULL);
}

void gcam__dense_backward_input(float *d_in, const float *d_out, const float *w, int32_t IN,
                               int32_t OUT) {
  gcam__dense_backward_input_pool(d_in, d_out, w, IN, OUT, NULL);
}
