/* test_conv_backward.c: the input gradient of the 3x3 conv (kernels/conv3x3_backward.c).
 *   - fast vs its naive twin on awkward sizes (C, OC not multiples of 8, C = 3, 1-row and
 *     1-column images, both the direct and the Winograd paths whatever GCAM_WINOGRAD_M is);
 *   - the twin vs central finite differences in double, on tiny sizes, through
 *     conv + bias + ReLU + 2x2 max-pool (so relu_backward and maxpool2x2_backward too): the
 *     loss is L(x) = sum g . pool(ReLU(conv(x) + b)) in double;
 *   - fast and twin vs torch's float64 autograd of conv2d (tests/fixtures/cam_methods/, made by
 *     tests/oracle/make_cam_fixtures.py), 5 shapes;
 *   - the packing from canonical f32 / f16 weights (gcam__conv3x3_backward_pack_canon_pool,
 *     what the backward driver runs) vs the twin, serial and on every pool;
 *   - on pools of 1, 2, 3 and 7 threads (tools/threadpool.c) and a pool that runs its tasks
 *     in a scrambled order: bit-identical to serial (memcmp). */
#include "threadpool.h" /* tools/threadpool.c, linked in by CMake */

#include <string.h>

#include "kernels/conv3x3.h"
#include "ops.h"
#include "parallel.h"
#include "kernels/simd.h"
#include "test.h"

static float *random_floats(size_t n, unsigned *seed, float lo, float hi) {
  float *x = malloc((n ? n : 1) * sizeof *x);
  test_fill_uniform(x, n, seed, lo, hi);
  return x;
}

/* max |a - b| / max |b| (1 when b is all zeros) */
static double rel_to_max(const float *a, const float *b, size_t n) {
  double mx = 0.0;
  for (size_t i = 0; i < n; i++) mx = fabs(b[i]) > mx ? fabs(b[i]) : mx;
  return test_max_abs_err(a, b, n) / (mx > 0.0 ? mx : 1.0);
}

/* ---- pools ---------------------------------------------------------------------------- */

static void shuffled_run(void *pool, gcam_task_fn fn, void *context, int32_t n_tasks) {
  (void)pool;
  int coprime = n_tasks % 5 != 0;
  for (int32_t i = 0; i < n_tasks; i++)
    fn(context, coprime ? (int32_t)(((int64_t)i * 5 + 3) % n_tasks) : n_tasks - 1 - i);
}

#define N_POOLS 5
static gcam_pthreadpool *tps[N_POOLS];
static gcam_threadpool hooks[N_POOLS];
static int n_hooks;

static void make_pools(void) {
  const int32_t threads[] = {1, 2, 3, 7};
  for (int i = 0; i < 4; i++) {
    tps[n_hooks] = gcam_pthreadpool_create(threads[i]);
    CHECK(tps[n_hooks] != NULL, "cannot create a pool of %d threads", threads[i]);
    if (tps[n_hooks]) hooks[n_hooks] = gcam_pthreadpool_hook(tps[n_hooks]), n_hooks++;
  }
  tps[n_hooks] = NULL;
  hooks[n_hooks++] = (gcam_threadpool){shuffled_run, NULL, 5};
}

/* ---- fast vs reference, serial vs pools -------------------------------------------------- */

/* path: -1 the ops.h entry point (its own choice of path), else 0 direct / 2, 4 Winograd
 * run through the building blocks the backward uses */
static void check_fast(int path, int32_t H, int32_t W, int32_t C, int32_t OC) {
  unsigned seed = 777u + (unsigned)(H * 131 + W * 17 + C * 5 + OC + path);
  const size_t n_dy = (size_t)H * W * OC, n_dx = (size_t)H * W * C;
  float *dy = random_floats(n_dy, &seed, -1.0f, 1.0f);
  float *w = random_floats((size_t)9 * C * OC, &seed, -0.5f, 0.5f);
  float *ref = malloc(n_dx * sizeof *ref), *serial = malloc(n_dx * sizeof *serial);
  float *got = malloc(n_dx * sizeof *got);
  gcam__conv3x3_backward_input_ref(ref, dy, w, H, W, C, OC);

  float *packed;
  if (path < 0) {
    packed = malloc(gcam__conv3x3_backward_packed_floats(C, OC) * sizeof *packed);
    gcam__conv3x3_backward_pack(packed, w, C, OC);
  } else if (path == 0) {
    /* direct: flip + transpose by hand into w' (3,3,OC,C), then the forward's packing */
    float *wt = malloc((size_t)9 * C * OC * sizeof *wt);
    for (int32_t s = 0; s < 9; s++)
      for (int32_t c = 0; c < C; c++)
        for (int32_t o = 0; o < OC; o++)
          wt[((size_t)s * OC + o) * C + c] = w[((size_t)(8 - s) * C + c) * OC + o];
    float *zero = calloc((size_t)C, sizeof *zero);
    packed = malloc(gcam__conv3x3_direct_packed_floats(OC, C) * sizeof *packed);
    gcam__conv3x3_direct_pack(packed, wt, zero, OC, C);
    free(wt), free(zero);
  } else {
    packed = malloc(gcam__conv3x3_wino_packed_floats(path, OC, C) * sizeof *packed);
    gcam__conv3x3_wino_pack_strided(path, packed, w + (ptrdiff_t)8 * C * OC,
                                    -(ptrdiff_t)C * OC, 1, OC, NULL, OC, C);
  }
  for (int p = -1; p < n_hooks; p++) {
    const gcam_threadpool *pool = p < 0 ? NULL : &hooks[p];
    const int32_t nt = gcam__pool_threads(pool);
    size_t sn = path < 0   ? gcam__conv3x3_backward_scratch_floats_pool(H, W, C, OC, nt)
                : path == 0 ? gcam__conv3x3_direct_scratch_floats(H, W, OC, C)
                            : gcam__conv3x3_wino_scratch_floats_pool(path, H, W, OC, C, 0, nt);
    float *scratch = malloc((sn ? sn : 1) * sizeof *scratch);
    float *out = p < 0 ? serial : got;
    memset(out, 0xff, n_dx * sizeof *out); /* NaN: a value no task wrote shows */
    if (path < 0)
      gcam__conv3x3_backward_input_pool(out, dy, packed, H, W, C, OC, scratch, pool);
    else if (path == 0)
      gcam__conv3x3_direct_run_pool(out, dy, packed, H, W, OC, C, scratch, 0, 0, pool);
    else
      gcam__conv3x3_wino_run_pool(path, out, dy, packed, H, W, OC, C, scratch, 0, 0, 0, pool);
    free(scratch);
    if (p < 0) {
      const double e = rel_to_max(serial, ref, n_dx);
      /* F(4,3)'s transforms cost a few bits (see winograd.c); direct/F(2,3) are near exact */
      CHECK(e <= (path == 4 || (path < 0 && gcam__conv3x3_path(OC, C) == 4) ? 2e-5 : 2e-6),
            "backward path %d %dx%dx%d<-%d: fast vs ref %.3g", path, H, W, C, OC, e);
    } else {
      CHECK(memcmp(got, serial, n_dx * sizeof *got) == 0,
            "backward path %d %dx%dx%d<-%d: pool %d differs from serial", path, H, W, C, OC, p);
    }
  }
  free(dy), free(w), free(ref), free(serial), free(got), free(packed);
}

/* ---- reference vs finite differences ------------------------------------------------------ */

/* y = ReLU(conv(x) + b) in double; returns sum g . pool(y) (pool = 2x2 max when pool != 0,
 * else identity) */
static double loss(const double *x, const float *w, const float *b, const float *g, int32_t H,
                   int32_t W, int32_t C, int32_t OC, int pool, double *y, double *min_abs_pre) {
  for (int32_t yy = 0; yy < H; yy++)
    for (int32_t xx = 0; xx < W; xx++)
      for (int32_t o = 0; o < OC; o++) {
        double acc = b[o];
        for (int32_t s = 0; s < 9; s++) {
          const int32_t iy = yy + s / 3 - 1, ix = xx + s % 3 - 1;
          if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
          for (int32_t c = 0; c < C; c++)
            acc += x[((size_t)iy * W + ix) * C + c] * w[((size_t)s * C + c) * OC + o];
        }
        if (min_abs_pre && fabs(acc) < *min_abs_pre) *min_abs_pre = fabs(acc);
        y[((size_t)yy * W + xx) * OC + o] = acc > 0.0 ? acc : 0.0;
      }
  double L = 0.0;
  if (!pool) {
    for (size_t i = 0; i < (size_t)H * W * OC; i++) L += g[i] * y[i];
    return L;
  }
  for (int32_t yy = 0; yy < H / 2; yy++)
    for (int32_t xx = 0; xx < W / 2; xx++)
      for (int32_t o = 0; o < OC; o++) {
        double m = -INFINITY;
        for (int d = 0; d < 4; d++) {
          const double v = y[((size_t)(2 * yy + d / 2) * W + 2 * xx + d % 2) * OC + o];
          m = v > m ? v : m;
        }
        L += g[((size_t)yy * (W / 2) + xx) * OC + o] * m;
      }
  return L;
}

static void check_finite_differences(int32_t H, int32_t W, int32_t C, int32_t OC, int pool) {
  unsigned seed = 4242u + (unsigned)(H * 7 + W * 3 + C + OC * 11 + pool);
  const size_t n_x = (size_t)H * W * C, n_y = (size_t)H * W * OC;
  const size_t n_g = pool ? (size_t)(H / 2) * (W / 2) * OC : n_y;
  float *xf = random_floats(n_x, &seed, -1.0f, 1.0f);
  float *w = random_floats((size_t)9 * C * OC, &seed, -0.5f, 0.5f);
  float *b = random_floats((size_t)OC, &seed, -0.2f, 0.2f);
  float *g = random_floats(n_g, &seed, -1.0f, 1.0f);
  double *x = malloc(n_x * sizeof *x), *yd = malloc(n_y * sizeof *yd);
  for (size_t i = 0; i < n_x; i++) x[i] = xf[i];

  /* the backward as a driver would run it: pool backward (argmax from the forward), ReLU
   * backward on the post-ReLU output, conv backward */
  float *y = malloc(n_y * sizeof *y), *d = malloc(n_y * sizeof *d), *dx = malloc(n_x * 4);
  gcam__conv3x3_relu_forward_ref(y, xf, w, b, H, W, C, OC);
  if (pool) {
    float *py = malloc(n_g * sizeof *py);
    int32_t *argmax = malloc(n_g * sizeof *argmax);
    gcam__maxpool2x2_forward(py, argmax, y, H, W, OC);
    gcam__maxpool2x2_backward(d, g, argmax, H, W, OC);
    free(py), free(argmax);
  } else {
    memcpy(d, g, n_y * sizeof *d);
  }
  gcam__relu_backward(d, y, n_y);
  gcam__conv3x3_backward_input_ref(dx, d, w, H, W, C, OC);

  double min_pre = INFINITY;
  loss(x, w, b, g, H, W, C, OC, pool, yd, &min_pre);
  const double h = 1e-6;
  CHECK(min_pre > 1e3 * h, "finite differences %dx%dx%d->%d: a pre-activation %.3g is at the "
        "ReLU's kink: pick another seed", H, W, C, OC, min_pre);
  double worst = 0.0, gmax = 0.0;
  for (size_t i = 0; i < n_x; i++) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double lp = loss(x, w, b, g, H, W, C, OC, pool, yd, NULL);
    x[i] = x0 - h;
    const double lm = loss(x, w, b, g, H, W, C, OC, pool, yd, NULL);
    x[i] = x0;
    const double fd = (lp - lm) / (2 * h);
    worst = fabs(fd - dx[i]) > worst ? fabs(fd - dx[i]) : worst;
    gmax = fabs(fd) > gmax ? fabs(fd) : gmax;
  }
  /* dx is float (rel. 6e-8); the differences' own error is ~1e-10 / h */
  CHECK(gmax > 0.0 && worst <= 1e-5 * gmax, "finite differences %dx%dx%d->%d pool %d: "
        "max|err| %.3g, max|grad| %.3g", H, W, C, OC, pool, worst, gmax);
  free(xf), free(w), free(b), free(g), free(x), free(yd), free(y), free(d), free(dx);
}

/* ---- against torch autograd ---------------------------------------------------------------- */

#define ORACLE "tests/fixtures/cam_methods/"

static void *read_exact(const char *name, size_t bytes) {
  return test_read_exact(ORACLE, name, bytes);
}

static void check_torch_case(const char *name, int32_t H, int32_t W, int32_t C, int32_t OC) {
  char fn[64];
  const size_t n_dx = (size_t)H * W * C;
  snprintf(fn, sizeof fn, "%s_w.f32", name);
  float *w = read_exact(fn, (size_t)9 * C * OC * sizeof(float));
  snprintf(fn, sizeof fn, "%s_dy.f32", name);
  float *dy = read_exact(fn, (size_t)H * W * OC * sizeof(float));
  snprintf(fn, sizeof fn, "%s_dx.f64", name);
  double *want64 = read_exact(fn, n_dx * sizeof(double));
  if (w && dy && want64) {
    float *want = malloc(n_dx * 4), *ref = malloc(n_dx * 4), *fast = malloc(n_dx * 4);
    for (size_t i = 0; i < n_dx; i++) want[i] = (float)want64[i];
    float *packed = malloc(gcam__conv3x3_backward_packed_floats(C, OC) * sizeof *packed);
    float *scratch = malloc((gcam__conv3x3_backward_scratch_floats(H, W, C, OC) + 1) * 4);
    gcam__conv3x3_backward_pack(packed, w, C, OC);
    gcam__conv3x3_backward_input(fast, dy, packed, H, W, C, OC, scratch);
    gcam__conv3x3_backward_input_ref(ref, dy, w, H, W, C, OC);
    const double er = rel_to_max(ref, want, n_dx), ef = rel_to_max(fast, want, n_dx);
    CHECK(er <= 1e-6 && ef <= 2e-5, "%s %dx%dx%d<-%d vs torch autograd: ref %.3g, fast %.3g",
          name, H, W, C, OC, er, ef);
    printf("torch autograd %s %dx%dx%d<-%d: ref %.2e, fast %.2e (relative to max|dx|)\n", name,
           H, W, C, OC, er, ef);
    free(want), free(ref), free(fast), free(packed), free(scratch);
  }
  free(w), free(dy), free(want64);
}

static void check_torch(void) {
  FILE *f = fopen(ORACLE "manifest.txt", "r");
  CHECK(f != NULL, "%smanifest.txt is missing", ORACLE);
  if (!f) return;
  char buf[256];
  int n = 0;
  while (fgets(buf, sizeof buf, f)) {
    char kind[16], name[32];
    int H, W, C, OC;
    if (sscanf(buf, "%15s %31s %d %d %d %d", kind, name, &H, &W, &C, &OC) == 6 &&
        !strcmp(kind, "convbwd"))
      check_torch_case(name, H, W, C, OC), n++;
  }
  fclose(f);
  CHECK(n >= 5, "manifest: %d convbwd cases", n);
}

/* ---- packing from the canonical weights (f32 and f16) as the layer runs ----------------- */

/* f32 -> nearest f16 bits (normal range; the weights here are small and not tiny) */
static uint16_t to_f16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  int32_t e = (int32_t)((u >> 23) & 0xff) - 127 + 15;
  uint32_t mant = u & 0x7fffffu;
  if (e <= 0) return (uint16_t)sign; /* flush: not produced by these tests */
  uint32_t h = ((uint32_t)e << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;
  return (uint16_t)(sign | h);
}

/* the backward packed by gcam__conv3x3_backward_pack_canon_pool, from f32 and from f16
 * weights, vs the twin on the same (f16-rounded) weights; and on every pool bit-identical to
 * serial, packing included */
static void check_canon(int32_t H, int32_t W, int32_t C, int32_t OC) {
  unsigned seed = 4242u + (unsigned)(H * 131 + W * 17 + C * 7 + OC);
  const size_t nw = (size_t)9 * C * OC, nx = (size_t)H * W * C, ny = (size_t)H * W * OC;
  float *w = random_floats(nw, &seed, -0.5f, 0.5f), *dy = random_floats(ny, &seed, -1.0f, 1.0f);
  uint16_t *w16 = malloc(nw * sizeof *w16);
  float *w16f = malloc(nw * sizeof *w16f);
  for (size_t i = 0; i < nw; i++) w16[i] = to_f16(w[i]), w16f[i] = gcam__f16_to_f32(w16[i]);
  const size_t np = gcam__conv3x3_backward_packed_floats(C, OC);
  size_t ns = gcam__conv3x3_backward_scratch_floats_pool(H, W, C, OC, 8);
  float *packed = malloc(np * sizeof *packed), *scratch = malloc((ns ? ns : 1) * sizeof(float));
  float *dx = malloc(nx * sizeof *dx), *ref = malloc(nx * sizeof *ref),
        *dx2 = malloc(nx * sizeof *dx2);
  for (int dt = 0; dt < 2; dt++) {
    memset(packed, 0xff, np * sizeof *packed); /* NaN: every float the kernels read is written */
    gcam__conv3x3_backward_pack_canon_pool(packed, dt ? (const void *)w16 : w,
                                           dt ? GCAM__DTYPE_F16 : GCAM__DTYPE_F32, C, OC, NULL);
    gcam__conv3x3_backward_input_pool(dx, dy, packed, H, W, C, OC, scratch, NULL);
    gcam__conv3x3_backward_input_ref(ref, dy, dt ? w16f : w, H, W, C, OC);
    const double e = rel_to_max(dx, ref, nx);
    CHECK(e <= 2e-5, "canon %s pack %dx%dx%d->%d: fast vs ref %.3g", dt ? "f16" : "f32", H, W,
          OC, C, e);
    for (int k = 0; k < n_hooks; k++) {
      memset(packed, 0xff, np * sizeof *packed);
      gcam__conv3x3_backward_pack_canon_pool(packed, dt ? (const void *)w16 : w,
                                             dt ? GCAM__DTYPE_F16 : GCAM__DTYPE_F32, C, OC,
                                             &hooks[k]);
      gcam__conv3x3_backward_input_pool(dx2, dy, packed, H, W, C, OC, scratch, &hooks[k]);
      CHECK(!memcmp(dx, dx2, nx * sizeof *dx), "canon %dx%dx%d->%d: pool %d differs from serial",
            H, W, OC, C, k);
    }
  }
  free(w), free(dy), free(w16), free(w16f), free(packed), free(scratch), free(dx), free(ref),
      free(dx2);
}

int main(void) {
  check_torch();
  make_pools();
  /* H, W, C, OC: the backward maps OC channels back to C */
  static const int32_t shapes[][4] = {
      {1, 1, 3, 5},  {1, 9, 3, 8},   {7, 1, 5, 3},   {5, 6, 3, 64}, {9, 7, 13, 11},
      {8, 8, 16, 16}, {6, 10, 17, 9}, {12, 12, 64, 3}, {5, 7, 5, 2}, {3, 3, 8, 1},
      {2, 5, 1, 4},  {11, 13, 9, 20}, {30, 26, 24, 40}};
  const int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
  for (int i = 0; i < n_shapes; i++) {
    const int32_t *s = shapes[i];
    check_fast(-1, s[0], s[1], s[2], s[3]);
    check_fast(0, s[0], s[1], s[2], s[3]);
    check_fast(2, s[0], s[1], s[2], s[3]);
    check_fast(4, s[0], s[1], s[2], s[3]);
  }
  for (int i = 0; i < n_shapes; i++) check_canon(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3]);
  check_finite_differences(1, 1, 3, 2, 0);
  check_finite_differences(1, 5, 2, 3, 0);
  check_finite_differences(4, 3, 3, 5, 0);
  check_finite_differences(4, 6, 3, 4, 1);
  check_finite_differences(6, 4, 5, 3, 1);
  for (int i = 0; i < N_POOLS; i++)
    if (tps[i]) gcam_pthreadpool_destroy(tps[i]);
  TEST_MAIN_END();
}
