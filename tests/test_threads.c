/* test_threads.c: a state on a thread pool gives bit-identical results to a serial one.
 *
 * The core splits a layer into tasks on boundaries where each output value keeps the serial
 * arithmetic, so every check here is exact (memcmp), for pools of 1, 2, 3 and 7 threads
 * (tools/threadpool.c) and for a "shuffled" pool: one thread running the tasks in a scrambled
 * order, which catches a task that depends on another without relying on thread timing.
 *   - kernels: Winograd F(2,3) and F(4,3) in both of their threaded modes (whole blocks per
 *     thread, and each block's steps split), the direct conv, dense forward and backward (f32
 *     weights, and f16 and int8 ones), at awkward sizes; each also against its naive *_ref twin (relative 1e-4: an independent
 *     reference, so a wrong serial path cannot pass by agreeing with itself);
 *   - whole networks: tests/fixtures/vgg_small/model.gcam and model_int8.gcam (logits also against torch's, 1e-4
 *     relative to the largest) and a reduced VGG16 written here (odd input 100x76, widths /4,
 *     dense 301, 301, 37) with seeded random weights: logits, probabilities, and for several
 *     classes in both score modes the raw and normalized maps, their max and the gradient.
 * Also the hook's argument checks. */
#include "threadpool.h" /* tools/threadpool.c, linked in by CMake */

#include <string.h>

#include "gcam.h"
#include "kernels/conv3x3.h"
#include "ops.h"
#include "parallel.h"
#include "sha256.h"
#include "test.h"

static const int32_t THREADS[] = {1, 2, 3, 7};
#define N_THREADS_CASES 4

/* ---- a pool that runs tasks in a scrambled order on the calling thread ------------------- */

static int32_t shuffled_runs;

static void shuffled_run(void *pool, gcam_task_fn fn, void *context, int32_t n_tasks) {
  (void)pool;
  shuffled_runs++;
  /* t -> (t * 5 + 3) mod n visits every task once when gcd(5, n) = 1; else reverse order */
  int coprime = n_tasks % 5 != 0;
  for (int32_t i = 0; i < n_tasks; i++)
    fn(context, coprime ? (int32_t)(((int64_t)i * 5 + 3) % n_tasks) : n_tasks - 1 - i);
}

/* the pools under test: NULL-terminated names, hooks[i] */
typedef struct {
  const char *name;
  gcam_pthreadpool *tp;
  gcam_threadpool hook;
} pool_case;

static pool_case pools[N_THREADS_CASES + 1];
static int n_pools;

static void make_pools(void) {
  static char names[N_THREADS_CASES][32];
  for (int i = 0; i < N_THREADS_CASES; i++) {
    gcam_pthreadpool *tp = gcam_pthreadpool_create(THREADS[i]);
    CHECK(tp != NULL, "cannot create a pool of %d threads", THREADS[i]);
    if (!tp) continue;
    snprintf(names[i], sizeof names[i], "%d threads", THREADS[i]);
    pools[n_pools++] = (pool_case){names[i], tp, gcam_pthreadpool_hook(tp)};
  }
  pools[n_pools++] = (pool_case){"shuffled", NULL, {shuffled_run, NULL, 5}};
}

static void free_pools(void) {
  for (int i = 0; i < n_pools; i++) gcam_pthreadpool_destroy(pools[i].tp);
}

static float *random_floats(size_t n, unsigned *seed, float lo, float hi) {
  float *x = malloc((n ? n : 1) * sizeof *x);
  test_fill_uniform(x, n, seed, lo, hi);
  return x;
}

/* ---- kernels ------------------------------------------------------------------------------ */

/* path: 0 direct, 2 or 4 Winograd; tiles/oc_block 0 = the defaults */
static void check_conv(int path, int32_t H, int32_t W, int32_t C, int32_t OC, int32_t tiles,
                       int32_t oc_block) {
  unsigned seed = 1234u + (unsigned)(H * 31 + W * 7 + C * 3 + OC + path);
  float *in = random_floats((size_t)H * W * C, &seed, -1.0f, 1.0f);
  float *w = random_floats((size_t)9 * C * OC, &seed, -0.5f, 0.5f);
  float *bias = random_floats((size_t)OC, &seed, -0.1f, 0.1f);
  size_t packed_n = path ? gcam__conv3x3_wino_packed_floats(path, C, OC)
                         : gcam__conv3x3_direct_packed_floats(C, OC);
  float *packed = malloc(packed_n * sizeof *packed);
  if (path)
    gcam__conv3x3_wino_pack(path, packed, w, bias, C, OC);
  else
    gcam__conv3x3_direct_pack(packed, w, bias, C, OC);
  const size_t n_out = (size_t)H * W * OC;
  float *ref = malloc(n_out * sizeof *ref), *serial = malloc(n_out * sizeof *serial);
  float *got = malloc(n_out * sizeof *got);
  gcam__conv3x3_relu_forward_ref(ref, in, w, bias, H, W, C, OC);

  for (int p = -1; p < n_pools; p++) {
    const gcam_threadpool *pool = p < 0 ? NULL : &pools[p].hook;
    const int32_t nt = gcam__pool_threads(pool);
    size_t sn = path ? gcam__conv3x3_wino_scratch_floats_pool(path, H, W, C, OC, tiles, nt)
                     : gcam__conv3x3_direct_scratch_floats(H, W, C, OC);
    float *scratch = malloc(sn * sizeof *scratch);
    float *out = p < 0 ? serial : got;
    memset(out, 0xff, n_out * sizeof *out); /* NaN: a value no task wrote shows */
    if (path)
      gcam__conv3x3_wino_forward_pool(path, out, in, packed, H, W, C, OC, scratch, tiles,
                                      oc_block, pool);
    else
      gcam__conv3x3_direct_forward_pool(out, in, packed, H, W, C, OC, scratch, oc_block, pool);
    free(scratch);
    if (p < 0) {
      double e = test_max_rel_err(serial, ref, n_out, 1.0);
      CHECK(e <= 1e-4, "conv path %d %dx%dx%d->%d: serial vs ref err %.3g", path, H, W, C, OC,
            e);
    } else {
      CHECK(memcmp(got, serial, n_out * sizeof *got) == 0,
            "conv path %d %dx%dx%d->%d tiles %d ocb %d: %s differs from serial", path, H, W, C,
            OC, tiles, oc_block, pools[p].name);
    }
  }
  free(in), free(w), free(bias), free(packed), free(ref), free(serial), free(got);
}

static void check_dense(int32_t IN, int32_t OUT) {
  unsigned seed = 99u + (unsigned)(IN * 13 + OUT);
  float *x = random_floats((size_t)IN, &seed, -1.0f, 1.0f);
  float *w = random_floats((size_t)IN * OUT, &seed, -0.1f, 0.1f);
  float *bias = random_floats((size_t)OUT, &seed, -0.1f, 0.1f);
  float *d_out = random_floats((size_t)OUT, &seed, -1.0f, 1.0f);
  float *ref_y = malloc((size_t)OUT * 4), *y = malloc((size_t)OUT * 4), *y1 = malloc((size_t)OUT * 4);
  float *ref_d = malloc((size_t)IN * 4), *d = malloc((size_t)IN * 4), *d1 = malloc((size_t)IN * 4);
  gcam__dense_forward_ref(ref_y, x, w, bias, IN, OUT, 1);
  gcam__dense_backward_input_ref(ref_d, d_out, w, IN, OUT);
  gcam__dense_forward_pool(y, x, w, bias, IN, OUT, 1, NULL);
  gcam__dense_backward_input_pool(d, d_out, w, IN, OUT, NULL);
  CHECK(test_max_rel_err(y, ref_y, (size_t)OUT, 1.0) <= 1e-4, "dense %dx%d forward vs ref", IN,
        OUT);
  CHECK(test_max_rel_err(d, ref_d, (size_t)IN, 1.0) <= 1e-4, "dense %dx%d backward vs ref", IN,
        OUT);
  for (int p = 0; p < n_pools; p++) {
    memset(y1, 0xff, (size_t)OUT * 4);
    memset(d1, 0xff, (size_t)IN * 4);
    gcam__dense_forward_pool(y1, x, w, bias, IN, OUT, 1, &pools[p].hook);
    gcam__dense_backward_input_pool(d1, d_out, w, IN, OUT, &pools[p].hook);
    CHECK(memcmp(y, y1, (size_t)OUT * 4) == 0, "dense %dx%d forward: %s differs", IN, OUT,
          pools[p].name);
    CHECK(memcmp(d, d1, (size_t)IN * 4) == 0, "dense %dx%d backward: %s differs", IN, OUT,
          pools[p].name);
  }
  free(x), free(w), free(bias), free(d_out), free(ref_y), free(y), free(y1), free(ref_d),
      free(d), free(d1);
}

/* the f16 and int8 dense kernels: a pool bit-identical to serial, serial near the _ref twin */
static void check_dense_dt(int32_t IN, int32_t OUT, gcam__dtype dt) {
  unsigned seed = 7u + (unsigned)(IN * 31 + OUT) + (unsigned)dt;
  const size_t n = (size_t)IN * OUT;
  float *x = random_floats((size_t)IN, &seed, -1.0f, 1.0f);
  float *u = random_floats(n, &seed, -1.0f, 1.0f);
  float *bias = random_floats((size_t)OUT, &seed, -0.1f, 0.1f);
  float *scale = random_floats((size_t)OUT, &seed, 0.0005f, 0.001f);
  float *d_out = random_floats((size_t)OUT, &seed, -1.0f, 1.0f);
  void *w = malloc(n * 2);
  for (size_t k = 0; k < n; k++) {
    if (dt == GCAM__DTYPE_F16) /* halves in (-1/8, 1/8): exponents 0..11 */
      ((uint16_t *)w)[k] = (uint16_t)((u[k] < 0) << 15 | (k % 12) << 10 | (k * 37 % 1024));
    else
      ((int8_t *)w)[k] = (int8_t)(u[k] * 127.0f);
  }
  const gcam__dense_weights dw = {dt, w, scale, bias, 0};
  float *ref_y = malloc((size_t)OUT * 4), *y = malloc((size_t)OUT * 4), *y1 = malloc((size_t)OUT * 4);
  float *ref_d = malloc((size_t)IN * 4), *d = malloc((size_t)IN * 4), *d1 = malloc((size_t)IN * 4);
  gcam__dense_forward_dt_ref(ref_y, x, &dw, IN, OUT, 0);
  gcam__dense_backward_input_dt_ref(ref_d, d_out, &dw, IN, OUT);
  gcam__dense_forward_dt_pool(y, x, &dw, IN, OUT, 0, NULL);
  gcam__dense_backward_input_dt_pool(d, d_out, &dw, IN, OUT, NULL);
  CHECK(test_max_rel_err(y, ref_y, (size_t)OUT, 1.0) <= 1e-4, "dense dtype %d %dx%d forward vs ref",
        dt, IN, OUT);
  CHECK(test_max_rel_err(d, ref_d, (size_t)IN, 1.0) <= 1e-4, "dense dtype %d %dx%d backward vs ref",
        dt, IN, OUT);
  for (int p = 0; p < n_pools; p++) {
    memset(y1, 0xff, (size_t)OUT * 4);
    memset(d1, 0xff, (size_t)IN * 4);
    gcam__dense_forward_dt_pool(y1, x, &dw, IN, OUT, 0, &pools[p].hook);
    gcam__dense_backward_input_dt_pool(d1, d_out, &dw, IN, OUT, &pools[p].hook);
    CHECK(memcmp(y, y1, (size_t)OUT * 4) == 0, "dense dtype %d %dx%d forward: %s differs", dt, IN,
          OUT, pools[p].name);
    CHECK(memcmp(d, d1, (size_t)IN * 4) == 0, "dense dtype %d %dx%d backward: %s differs", dt, IN,
          OUT, pools[p].name);
  }
  free(x), free(u), free(bias), free(scale), free(d_out), free(w), free(ref_y), free(y);
  free(y1), free(ref_d), free(d), free(d1);
}

/* compact conv weights, transformed as the layer runs (sliced when large): a pool gives the
 * serial bits */
static void check_conv_compact(int32_t H, int32_t W, int32_t C, int32_t OC, gcam__dtype dt) {
  unsigned seed = 5u + (unsigned)(C * 7 + OC) + (unsigned)dt;
  const size_t n_w = (size_t)9 * C * OC, n_out = (size_t)H * W * OC;
  float *in = random_floats((size_t)H * W * C, &seed, 0.0f, 1.0f);
  float *w = random_floats(n_w, &seed, -0.1f, 0.1f);
  float *bias = random_floats((size_t)OC, &seed, -0.1f, 0.1f);
  uint16_t *wh = malloc(n_w * 2);
  for (size_t k = 0; k < n_w; k++) wh[k] = (uint16_t)((w[k] < 0) << 15 | (k % 12) << 10 | (k % 1024));
  const void *wp = dt == GCAM__DTYPE_F16 ? (const void *)wh : w;
  float *pack = malloc(gcam__conv3x3_compact_pack_floats(C, OC) * sizeof(float));
  float *serial = malloc(n_out * 4), *got = malloc(n_out * 4);
  size_t sn = gcam__conv3x3_scratch_floats_pool(H, W, C, OC, 1);
  float *scratch = malloc(sn * 4);
  gcam__conv3x3_relu_forward_compact_pool(serial, in, wp, dt, bias, H, W, C, OC, scratch, pack,
                                          NULL);
  free(scratch);
  for (int p = 0; p < n_pools; p++) {
    sn = gcam__conv3x3_scratch_floats_pool(H, W, C, OC, pools[p].hook.n_threads);
    scratch = malloc(sn * 4);
    memset(got, 0xff, n_out * 4);
    gcam__conv3x3_relu_forward_compact_pool(got, in, wp, dt, bias, H, W, C, OC, scratch, pack,
                                            &pools[p].hook);
    CHECK(memcmp(got, serial, n_out * 4) == 0, "compact conv dtype %d %dx%dx%d->%d: %s differs",
          dt, H, W, C, OC, pools[p].name);
    free(scratch);
  }
  free(in), free(w), free(bias), free(wh), free(pack), free(serial), free(got);
}

static void test_kernels(void) {
  /* Winograd: default blocks; tiny blocks (many: whole blocks per thread); one big block
   * (its steps split); odd sizes, channels not a multiple of 4 or 8, small oc blocks */
  const int ms[] = {2, 4};
  for (int i = 0; i < 2; i++) {
    int m = ms[i];
    check_conv(m, 13, 17, 5, 19, 0, 0);
    check_conv(m, 13, 17, 5, 19, 4, 8);   /* many blocks of 4 tiles */
    check_conv(m, 13, 17, 5, 19, 1, 0);   /* one tile per block */
    check_conv(m, 13, 17, 5, 19, 200, 8); /* one block, 3 column blocks per xi */
    check_conv(m, 23, 9, 16, 40, 0, 16);
    check_conv(m, 1, 1, 3, 8, 0, 0);
    check_conv(m, 30, 30, 3, 12, 0, 0);
  }
  check_conv(0, 13, 17, 2, 19, 0, 0);
  check_conv(0, 13, 17, 1, 19, 0, 8);
  check_conv(0, 1, 3, 2, 5, 0, 0);
  check_conv(0, 40, 40, 2, 64, 0, 0);
  /* dense: above and below the size worth splitting, OUT % 4 and IN % 8 != 0 */
  check_dense(259, 1003);
  check_dense(1024, 64);
  check_dense(8, 4);
  check_dense(3, 3);
  check_dense(700, 101);
  check_conv_compact(7, 6, 512, 520, GCAM__DTYPE_F32); /* sliced */
  check_conv_compact(7, 6, 512, 520, GCAM__DTYPE_F16);
  check_conv_compact(13, 17, 5, 19, GCAM__DTYPE_F32);  /* whole, many blocks */
  for (int dt = GCAM__DTYPE_F16; dt <= GCAM__DTYPE_I8; dt++) {
    check_dense_dt(259, 1003, (gcam__dtype)dt);
    check_dense_dt(1024, 64, (gcam__dtype)dt);
    check_dense_dt(3, 3, (gcam__dtype)dt);
    check_dense_dt(700, 101, (gcam__dtype)dt);
  }
}

/* ---- whole networks ----------------------------------------------------------------------- */

typedef struct {
  float *logits, *probs, *raw, *norm, *max, *grad;
} results;

static const int32_t CLASSES_OF_INTEREST = 3;

static void results_free(results *r) {
  free(r->logits), free(r->probs), free(r->raw), free(r->norm), free(r->max), free(r->grad);
}

/* forward on the image, then explain the top class, a middle one and the last, both scores */
static int run_model(const gcam_model *m, const gcam_threadpool *pool, const uint8_t *rgba,
                     int32_t w, int32_t h, results *r) {
  gcam_model_info info;
  gcam_model_get_info(m, &info);
  const size_t hw = (size_t)info.cam_width * info.cam_height, nc = (size_t)info.n_classes;
  const size_t ng = hw * (size_t)info.cam_channels, nx = 2 * (size_t)CLASSES_OF_INTEREST;
  memset(r, 0, sizeof *r);
  gcam_state *s;
  if (gcam_state_create(m, &s)) return 0;
  gcam_status st = gcam_state_set_threadpool(s, pool);
  CHECK(st == GCAM_STATUS_OK, "set_threadpool: %s", gcam_last_error());
  st = st ? st : gcam_state_forward_rgba(s, rgba, w, h, w * 4);
  CHECK(st == GCAM_STATUS_OK, "forward: %s", gcam_last_error());
  if (st) {
    gcam_state_free(s);
    return 0;
  }
  r->logits = malloc(nc * 4), r->probs = malloc(nc * 4), r->raw = malloc(nx * hw * 4);
  r->norm = malloc(nx * hw * 4), r->max = malloc(nx * 4), r->grad = malloc(nx * ng * 4);
  const float *z, *p, *g, *a;
  gcam_state_logits(s, &z);
  gcam_state_probabilities(s, &p);
  memcpy(r->logits, z, nc * 4);
  memcpy(r->probs, p, nc * 4);
  int32_t top;
  gcam_state_top_k(s, 1, &top);
  const int32_t classes[3] = {top, (int32_t)(nc / 2), (int32_t)nc - 1};
  for (size_t k = 0; k < nx; k++) {
    gcam_score score = k % 2 ? GCAM_SCORE_SOFTMAX : GCAM_SCORE_LOGIT;
    st = gcam_state_explain(s, classes[k / 2], score, r->raw + k * hw, r->norm + k * hw,
                            r->max + k);
    CHECK(st == GCAM_STATUS_OK, "explain: %s", gcam_last_error());
    gcam_state_last_gradient(s, &g, &a);
    memcpy(r->grad + k * ng, g, ng * 4);
  }
  gcam_state_free(s);
  return 1;
}

static void compare_model(const char *what, const gcam_model *m, const uint8_t *rgba, int32_t w,
                          int32_t h, results *serial) {
  gcam_model_info info;
  gcam_model_get_info(m, &info);
  const size_t hw = (size_t)info.cam_width * info.cam_height, nc = (size_t)info.n_classes;
  const size_t ng = hw * (size_t)info.cam_channels, nx = 2 * (size_t)CLASSES_OF_INTEREST;
  for (int p = 0; p < n_pools; p++) {
    results r;
    if (!run_model(m, &pools[p].hook, rgba, w, h, &r)) continue;
    CHECK(!memcmp(r.logits, serial->logits, nc * 4), "%s %s: logits differ", what,
          pools[p].name);
    CHECK(!memcmp(r.probs, serial->probs, nc * 4), "%s %s: probabilities differ", what,
          pools[p].name);
    CHECK(!memcmp(r.raw, serial->raw, nx * hw * 4), "%s %s: raw maps differ", what,
          pools[p].name);
    CHECK(!memcmp(r.norm, serial->norm, nx * hw * 4), "%s %s: maps differ", what, pools[p].name);
    CHECK(!memcmp(r.max, serial->max, nx * 4), "%s %s: map maxima differ", what, pools[p].name);
    CHECK(!memcmp(r.grad, serial->grad, nx * ng * 4), "%s %s: gradients differ", what,
          pools[p].name);
    results_free(&r);
  }
}

static uint8_t *random_rgba(int32_t w, int32_t h, unsigned seed) {
  uint8_t *px = malloc((size_t)w * h * 4);
  for (size_t i = 0; i < (size_t)w * h * 4; i++) {
    seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
    px[i] = (uint8_t)(seed >> 24);
  }
  return px;
}

static void test_small_fixture(const char *tag, const char *file, gcam_memory memory) {
  char path[256];
  snprintf(path, sizeof path, "tests/fixtures/vgg_small/%s", file);
  gcam_model *m;
  gcam_model_params mp = gcam_model_default_params();
  mp.memory = memory;
  gcam_status st = gcam_model_load_from_file(path, &mp, &m);
  CHECK(st == GCAM_STATUS_OK, "load %s: %s", path, gcam_last_error());
  if (st) return;
  size_t size;
  void *png = test_read_file("tests/fixtures/vgg_small/img0.png", &size);
  uint8_t *rgba = NULL;
  int32_t w = 0, h = 0;
  st = png ? gcam_image_decode(png, size, 0, &rgba, &w, &h) : GCAM_STATUS_IO;
  CHECK(st == GCAM_STATUS_OK, "decode img0.png");
  free(png);
  results serial;
  if (!st && run_model(m, NULL, rgba, w, h, &serial)) {
    snprintf(path, sizeof path, "tests/fixtures/vgg_small/%s_img0_logits.f32", tag);
    float *want = test_read_file(path, &size);
    CHECK(want && size == 40, "%s", path);
    if (want && size == 40) {
      double big = 0;
      for (int i = 0; i < 10; i++) big = fabs(want[i]) > big ? fabs(want[i]) : big;
      double e = test_max_abs_err(serial.logits, want, 10) / big;
      CHECK(e <= 1e-4, "vgg_small %s serial logits vs torch: rel err %.3g", tag, e);
    }
    free(want);
    compare_model(file, m, rgba, w, h, &serial);
    results_free(&serial);
  }
  gcam_image_free(rgba);
  gcam_model_free(m);
}

/* ---- a reduced VGG16 written in the gcam format (weights/FORMAT.md) ------------------------- */

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

#define NCONV 13
#define NDENSE 3

/* VGG16 with widths / 4, input 100 (high) x 76, dense 301, 301, 37: caffe, HWC, no labels */
static uint8_t *make_reduced_vgg16(size_t *out_size) {
  static const uint32_t oc[NCONV] = {16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128};
  static const int pool_after[NCONV] = {0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1};
  const uint32_t in_h = 100, in_w = 76, dense_out[NDENSE] = {301, 301, 37};
  uint32_t hf = in_h, wf = in_w;
  for (int i = 0; i < NCONV; i++)
    if (pool_after[i]) hf /= 2, wf /= 2;
  const size_t n_t = 2 * (NCONV + NDENSE);
  size_t dims[2 * (NCONV + NDENSE)][4], count[2 * (NCONV + NDENSE)], off[2 * (NCONV + NDENSE)];
  int ndim[2 * (NCONV + NDENSE)];
  size_t payload = 0, k = 0;
  uint32_t c = 3;
  for (int i = 0; i < NCONV; i++, c = oc[i - 1]) {
    ndim[k] = 4, dims[k][0] = 3, dims[k][1] = 3, dims[k][2] = c, dims[k][3] = oc[i];
    count[k++] = (size_t)9 * c * oc[i];
    ndim[k] = 1, dims[k][0] = oc[i], dims[k][1] = dims[k][2] = dims[k][3] = 0;
    count[k++] = oc[i];
  }
  size_t nin = (size_t)hf * wf * oc[NCONV - 1];
  for (int j = 0; j < NDENSE; j++) {
    ndim[k] = 2, dims[k][0] = nin, dims[k][1] = dense_out[j], dims[k][2] = dims[k][3] = 0;
    count[k++] = nin * dense_out[j];
    ndim[k] = 1, dims[k][0] = dense_out[j], dims[k][1] = dims[k][2] = dims[k][3] = 0;
    count[k++] = dense_out[j];
    nin = dense_out[j];
  }
  for (size_t t = 0; t < n_t; t++) off[t] = payload, payload = align64(payload + count[t] * 4);
  const size_t header = 128 + 8 * (NCONV + NDENSE) + 80 * n_t, start = align64(header);
  const size_t size = start + payload;
  uint8_t *f = calloc(1, size);
  memcpy(f, "GCAMVGG\n", 8);
  put32(f + 8, 1), put32(f + 12, (uint32_t)header), put64(f + 16, start), put64(f + 24, payload);
  put32(f + 64, in_h), put32(f + 68, in_w), put32(f + 72, 3), put32(f + 76, NCONV);
  put32(f + 80, NDENSE), put32(f + 84, dense_out[NDENSE - 1]), put32(f + 88, 0);
  put32(f + 92, 0);
  const float mean[3] = {103.939f, 116.779f, 123.68f}, one = 1.0f;
  for (int i = 0; i < 3; i++) memcpy(f + 96 + 4 * i, &mean[i], 4), memcpy(f + 108 + 4 * i, &one, 4);
  put32(f + 120, (uint32_t)n_t), put32(f + 124, 0);
  uint8_t *p = f + 128;
  for (int i = 0; i < NCONV; i++, p += 8) put32(p, oc[i]), put32(p + 4, (uint32_t)pool_after[i]);
  for (int j = 0; j < NDENSE; j++, p += 8) put32(p, dense_out[j]), put32(p + 4, 0);
  unsigned seed = 20261126u;
  for (size_t t = 0; t < n_t; t++, p += 80) {
    int layer = (int)(t / 2);
    const char *kind = layer < NCONV ? "conv" : "dense";
    snprintf((char *)p, 40, "%s%d.%s", kind, layer < NCONV ? layer : layer - NCONV,
             t % 2 ? "bias" : "weight");
    put32(p + 40, 0), put32(p + 44, (uint32_t)ndim[t]);
    for (int d = 0; d < 4; d++) put32(p + 48 + 4 * d, (uint32_t)dims[t][d]);
    put64(p + 64, off[t]), put64(p + 72, count[t] * 4);
    /* uniform with the He variance 2/fan_in; the logits' layer scaled down to keep them O(1) */
    const size_t fan_in = layer < NCONV ? 9 * dims[t - t % 2][2] : dims[t - t % 2][0];
    float bound = (float)sqrt(6.0 / (double)fan_in);
    if (layer == NCONV + NDENSE - 1) bound /= 60.0f;
    float *x = random_floats(count[t], &seed, t % 2 ? -0.05f : -bound, t % 2 ? 0.05f : bound);
    memcpy(f + start + off[t], x, count[t] * 4);
    free(x);
  }
  gcam_sha256 sh;
  gcam__sha256_init(&sh);
  gcam__sha256_update(&sh, f + 64, size - 64);
  gcam__sha256_final(&sh, f + 32);
  *out_size = size;
  return f;
}

static void test_reduced_vgg16(void) {
  size_t size;
  uint8_t *file = make_reduced_vgg16(&size);
  gcam_model *m;
  gcam_status st = gcam_model_load_from_memory(file, size, NULL, &m);
  free(file);
  CHECK(st == GCAM_STATUS_OK, "load the reduced VGG16: %s", gcam_last_error());
  if (st) return;
  const int32_t w = 131, h = 97;
  uint8_t *rgba = random_rgba(w, h, 777u);
  results serial;
  if (run_model(m, NULL, rgba, w, h, &serial)) {
    double spread = 0;
    for (int i = 1; i < 37; i++) spread += fabs(serial.logits[i] - serial.logits[0]);
    CHECK(spread > 1e-3 && serial.max[0] > 0, "reduced VGG16: degenerate logits or map");
    compare_model("reduced vgg16", m, rgba, w, h, &serial);
    results_free(&serial);
  }
  free(rgba);
  gcam_model_free(m);
}

/* ---- the hook's arguments ----------------------------------------------------------------- */

static void test_arguments(void) {
  gcam_model *m;
  if (gcam_model_load_from_file("tests/fixtures/vgg_small/model.gcam", NULL, &m)) return;
  gcam_state *s;
  gcam_state_create(m, &s);
  gcam_threadpool bad = {shuffled_run, NULL, 0};
  CHECK(gcam_state_set_threadpool(NULL, NULL) == GCAM_STATUS_INVALID_ARGUMENT, "NULL state");
  CHECK(gcam_state_set_threadpool(s, &bad) == GCAM_STATUS_INVALID_ARGUMENT, "0 threads");
  CHECK(*gcam_last_error() != 0, "a message for 0 threads");
  bad.n_threads = 100000;
  CHECK(gcam_state_set_threadpool(s, &bad) == GCAM_STATUS_INVALID_ARGUMENT, "100000 threads");
  gcam_threadpool serial = {NULL, NULL, 8};
  CHECK(gcam_state_set_threadpool(s, &serial) == GCAM_STATUS_OK, "NULL run means serial");
  CHECK(gcam_state_set_threadpool(s, NULL) == GCAM_STATUS_OK, "NULL pool means serial");
  /* the shuffled pool is really used by a state that has it */
  gcam_threadpool shuffled = {shuffled_run, NULL, 3};
  CHECK(gcam_state_set_threadpool(s, &shuffled) == GCAM_STATUS_OK, "shuffled pool");
  float *input = calloc((size_t)224 * 224 * 3, sizeof *input);
  int32_t before = shuffled_runs;
  CHECK(gcam_state_forward_tensor(s, input) == GCAM_STATUS_OK, "forward on the shuffled pool");
  CHECK(shuffled_runs > before, "the state did not use its pool");
  before = shuffled_runs;
  gcam_state_set_threadpool(s, NULL);
  gcam_state_forward_tensor(s, input);
  CHECK(shuffled_runs == before, "the state still used its pool after set_threadpool(NULL)");
  free(input);
  gcam_state_free(s);
  gcam_model_free(m);
}

int main(void) {
  make_pools();
  test_kernels();
  test_small_fixture("m0", "model.gcam", GCAM_MEMORY_FAST);         /* f32 */
  test_small_fixture("m0", "model.gcam", GCAM_MEMORY_COMPACT);
  test_small_fixture("m2", "model_int8.gcam", GCAM_MEMORY_FAST);    /* int8 dense, f16 convs */
  test_small_fixture("m2", "model_int8.gcam", GCAM_MEMORY_COMPACT);
  test_reduced_vgg16();
  test_arguments();
  free_pools();
  TEST_MAIN_END();
}
