/* bench_kernels.c: speed of the compute kernels on VGG16's shapes, natively and in wasm.
 *
 *   build/bench_kernels              all 13 conv layers (direct, Winograd F(2,3) and F(4,3),
 *                                    and which one the library picks), fc1-3
 *                                    forward and backward_input
 *   build/bench_kernels conv         the convolutions only
 *   build/bench_kernels dense        the dense layers only
 *   build/bench_kernels tune L [m]   layer L (0..12): sweep the blocking parameters (of
 *                                    Winograd F(m,3) only if m is given)
 *   build/bench_kernels compact [N] [T]  the 13 convs with fast (pre-packed) and compact
 *                                    weights (f32 and f16, transformed as the layer runs),
 *                                    interleaved; on a pool of T threads (tools/threadpool.c,
 *                                    wall time) when T > 1
 *   build/bench_kernels compact-tune L [N]  layer L (0..12; one tile block: 7..12): the
 *                                    compact path's column group and channel chunk swept,
 *                                    interleaved with fast
 *   build/bench_kernels dtypes [N]   fc1-3 forward and backward_input with f32, f16 and int8
 *                                    weights, interleaved; f16 both as the file stores the
 *                                    halves and as the loader keeps them (times 2^k, none
 *                                    subnormal); and the cost of multiplies by f32 subnormals
 * The last two are A/B comparisons for a shared machine: the variants run one after the other
 * in each of N rounds (default 7), and the minimum of each is printed with its ratio.
 *
 * wasm: NODE_PATH=/usr/share/nodejs emcc -O3 -msimd128 -Isrc -Iinclude -Itools
 *       bench/bench_kernels.c tools/threadpool.c (every .c of src/kernels)
 *       -o /tmp/bench_kernels.js -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB
 *       (for `compact N T`: also -pthread -sPTHREAD_POOL_SIZE=T)
 *       node --no-experimental-fetch /tmp/bench_kernels.js
 *
 * Each figure is the median of several timed runs after a warm-up run (V8 tiers a function up
 * only after it has been entered repeatedly), in CPU time of the thread (the machine's cores
 * are shared; wall time is printed next to the chosen path). GFLOP/s count 2*H*W*C*OC*9 per
 * conv, the direct convolution's work, for Winograd too ("effective" GFLOP/s). Peers: the
 * native CMake build also times Debian's XNNPACK (src/xnn_backend.c) on the same shapes; the
 * dense layers are set against a plain read of their weights (the memory-bound ceiling). */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_cpu_time.h"
#include "kernels/conv3x3.h"
#include "ops.h"
#include "parallel.h"
#include "threadpool.h" /* tools/threadpool.c: the pool of `compact N T` */
#ifdef GCAM_HAVE_XNNPACK
#include "xnn_peer.h" /* the native peer (CMake builds only) */
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "bench_kernels: out of memory (%zu bytes)\n", n);
    exit(2);
  }
  return p;
}

static void fill(float *x, size_t n, unsigned seed, float lo, float hi) {
  for (size_t i = 0; i < n; i++) {
    seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
    x[i] = lo + (hi - lo) * (float)((seed >> 8) * (1.0 / 16777216.0));
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct {
  int path; /* 0 direct, 2 Winograd F(2,3), 4 Winograd F(4,3) */
  int32_t H, W, C, OC, oc_block, tiles;
  const float *in, *packed;
  float *out, *scratch;
} conv_job;

static void run_conv(const conv_job *j) {
  if (j->path)
    gcam__conv3x3_wino_forward(j->path, j->out, j->in, j->packed, j->H, j->W, j->C, j->OC,
                               j->scratch, j->tiles, j->oc_block);
  else
    gcam__conv3x3_direct_forward(j->out, j->in, j->packed, j->H, j->W, j->C, j->OC, j->scratch,
                                 j->oc_block);
}

/* median CPU seconds of `runs` timed runs after one warm-up; *wall: median wall seconds */
static double time_conv(const conv_job *j, int runs, double *wall) {
  double t[32], tw[32];
  run_conv(j);
  for (int r = 0; r < runs; r++) {
    double w0 = now_s(), t0 = cpu_s();
    run_conv(j);
    t[r] = cpu_s() - t0;
    tw[r] = now_s() - w0;
  }
  qsort(t, (size_t)runs, sizeof *t, cmp_double);
  qsort(tw, (size_t)runs, sizeof *tw, cmp_double);
  if (wall) *wall = tw[runs / 2];
  return t[runs / 2];
}

static const int32_t vgg16[13][4] = {
    {224, 224, 3, 64},  {224, 224, 64, 64},  {112, 112, 64, 128}, {112, 112, 128, 128},
    {56, 56, 128, 256}, {56, 56, 256, 256},  {56, 56, 256, 256},  {28, 28, 256, 512},
    {28, 28, 512, 512}, {28, 28, 512, 512},  {14, 14, 512, 512},  {14, 14, 512, 512},
    {14, 14, 512, 512}};

typedef struct {
  float *in, *out, *wd, *ww[5], *sd, *sw[5], *w, *bias;
} layer_bufs;

static layer_bufs layer_alloc(const int32_t *s, int32_t tiles) {
  const int32_t H = s[0], W = s[1], C = s[2], OC = s[3];
  layer_bufs b;
  b.in = xmalloc(sizeof(float) * H * W * C + 64); /* + slack: XNNPACK reads past the end */
  b.out = xmalloc(sizeof(float) * H * W * OC);
  b.w = xmalloc(sizeof(float) * 9 * C * OC);
  b.bias = xmalloc(sizeof(float) * OC);
  fill(b.in, (size_t)H * W * C, 1, 0.0f, 1.0f);
  fill(b.w, (size_t)9 * C * OC, 2, -0.05f, 0.05f);
  fill(b.bias, (size_t)OC, 3, -0.1f, 0.1f);
  b.wd = xmalloc(sizeof(float) * gcam__conv3x3_direct_packed_floats(C, OC));
  b.sd = xmalloc(sizeof(float) * gcam__conv3x3_direct_scratch_floats(H, W, C, OC));
  gcam__conv3x3_direct_pack(b.wd, b.w, b.bias, C, OC);
  for (int m = 2; m <= 4; m += 2) {
    b.ww[m] = xmalloc(sizeof(float) * gcam__conv3x3_wino_packed_floats(m, C, OC));
    b.sw[m] = xmalloc(sizeof(float) * gcam__conv3x3_wino_scratch_floats(m, H, W, C, OC, tiles));
    gcam__conv3x3_wino_pack(m, b.ww[m], b.w, b.bias, C, OC);
  }
  return b;
}

static void layer_free(layer_bufs *b) {
  free(b->in), free(b->out), free(b->w), free(b->bias);
  free(b->wd), free(b->sd);
  for (int m = 2; m <= 4; m += 2) free(b->ww[m]), free(b->sw[m]);
}

static int runs_for(double gflop) { return gflop > 2.0 ? 3 : gflop > 0.5 ? 5 : 7; }

static void bench_convs(void) {
  printf("conv3x3+bias+ReLU, VGG16 layers; GFLOP/s = 2*H*W*C*OC*9/s (direct-conv FLOPs, also "
         "for Winograd: effective)\n");
  printf("times: median CPU ms of the thread; 'fast' = the path the library picks, with its "
         "wall ms\n");
  double sum[5] = {0}, sum_fast = 0, wall_fast = 0, flops_all = 0, sum_xnn = 0;
#ifdef GCAM_HAVE_XNNPACK
  printf("peer: Debian's XNNPACK (native only; it picks AVX2/AVX-512 kernels at run time, so it "
         "is not limited to SSE as our build is)\n");
#endif
  printf("%-2s %-17s %7s %6s | %7s %6s | %7s %6s | %-6s %7s %7s\n", "#", "HxWxC->OC",
         "direct", "GF/s", "F(2,3)", "GF/s", "F(4,3)", "GF/s", "fast", "ms", "wall");

  for (int l = 0; l < 13; l++) {
    const int32_t *s = vgg16[l];
    layer_bufs b = layer_alloc(s, 0);
    const double gflop = 2e-9 * s[0] * s[1] * s[2] * s[3] * 9;
    const int runs = runs_for(gflop);
    const int fast = gcam__conv3x3_path(s[2], s[3]);
    double t[5] = {0}, wall[5] = {0};
    for (int m = 0; m <= 4; m += 2) {
      conv_job j = {m, s[0], s[1], s[2], s[3], 0, 0, b.in, m ? b.ww[m] : b.wd, b.out,
                    m ? b.sw[m] : b.sd};
      t[m] = time_conv(&j, runs, &wall[m]);
      sum[m] += t[m];
    }
    char name[32], peer[48] = "";
    snprintf(name, sizeof name, "%dx%dx%d->%d", (int)s[0], (int)s[1], (int)s[2], (int)s[3]);
#ifdef GCAM_HAVE_XNNPACK
    gcam_xnn_conv *xc = NULL;
    if (gcam__xnn_conv3x3_relu_create(&xc, b.w, b.bias, s[2], s[3]) == GCAM_STATUS_OK) {
      double tx[32];
      gcam__xnn_conv3x3_relu_run(xc, b.out, b.in, s[0], s[1]);
      for (int r = 0; r < runs; r++) {
        double t0 = cpu_s();
        gcam__xnn_conv3x3_relu_run(xc, b.out, b.in, s[0], s[1]);
        tx[r] = cpu_s() - t0;
      }
      qsort(tx, (size_t)runs, sizeof *tx, cmp_double);
      snprintf(peer, sizeof peer, " | XNNPACK %7.2f %6.1f", 1e3 * tx[runs / 2],
               gflop / tx[runs / 2]);
      sum_xnn += tx[runs / 2];
      gcam__xnn_conv_delete(xc);
    }
#endif
    printf("%-2d %-17s %7.2f %6.1f | %7.2f %6.1f | %7.2f %6.1f | %-6s %7.2f %7.2f%s\n", l + 1,
           name, 1e3 * t[0], gflop / t[0], 1e3 * t[2], gflop / t[2], 1e3 * t[4], gflop / t[4],
           fast == 4 ? "F(4,3)" : fast == 2 ? "F(2,3)" : "direct", 1e3 * t[fast],
           1e3 * wall[fast], peer);
    fflush(stdout);
    sum_fast += t[fast], wall_fast += wall[fast], flops_all += gflop;
    layer_free(&b);
  }
  printf("sum of 13 layers (%.2f GFLOP): fast %.1f ms CPU (%.1f wall), %.1f GFLOP/s effective; "
         "all direct %.1f ms (%.1f GFLOP/s); all F(2,3) %.1f ms; all F(4,3) %.1f ms\n",
         flops_all, 1e3 * sum_fast, 1e3 * wall_fast, flops_all / sum_fast, 1e3 * sum[0],
         flops_all / sum[0], 1e3 * sum[2], 1e3 * sum[4]);
  if (sum_xnn > 0)
    printf("peer XNNPACK: %.1f ms (%.1f GFLOP/s)\n", 1e3 * sum_xnn, flops_all / sum_xnn);
}

/* the peer for the memory-bound dense layers: just read w once (four vector sums) */
static volatile float bench_sink;
typedef float bench_f32x4 __attribute__((vector_size(16)));
static float read_all(const float *w, size_t n) {
  bench_f32x4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, v[4];
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    memcpy(v, w + i, sizeof v);
    a0 += v[0], a1 += v[1], a2 += v[2], a3 += v[3];
  }
  bench_f32x4 a = (a0 + a1) + (a2 + a3);
  float s = a[0] + a[1] + a[2] + a[3];
  for (; i < n; i++) s += w[i];
  return s;
}

static void bench_dense(void) {
  const int32_t fc[3][2] = {{25088, 4096}, {4096, 4096}, {4096, 1000}};
  printf("dense, batch 1 (median CPU ms; GB/s = bytes of w / s)\n");
  for (int l = 0; l < 3; l++) {
    const int32_t IN = fc[l][0], OUT = fc[l][1];
    const size_t nw = (size_t)IN * OUT;
    float *w = xmalloc(nw * sizeof *w), *in = xmalloc(IN * sizeof *in + 64); /* XNNPACK slack */
    float *out = xmalloc(OUT * sizeof *out), *bias = xmalloc(OUT * sizeof *bias);
    fill(w, nw, 4, -0.01f, 0.01f);
    fill(in, (size_t)IN, 5, 0.0f, 1.0f);
    fill(bias, (size_t)OUT, 6, -0.1f, 0.1f);
    double tf[9], tb[9], tr[9];
    const int runs = l == 0 ? 5 : 9;
    gcam__dense_forward(out, in, w, bias, IN, OUT, 1);
    gcam__dense_backward_input(in, out, w, IN, OUT);
    for (int r = 0; r < runs; r++) {
      double t0 = cpu_s();
      gcam__dense_forward(out, in, w, bias, IN, OUT, 1);
      tf[r] = cpu_s() - t0;
      t0 = cpu_s();
      gcam__dense_backward_input(in, out, w, IN, OUT);
      tb[r] = cpu_s() - t0;
      t0 = cpu_s();
      bench_sink += read_all(w, nw);
      tr[r] = cpu_s() - t0;
      fill(in, (size_t)IN, 5, 0.0f, 1.0f); /* keep values sane between runs */
    }
    qsort(tf, (size_t)runs, sizeof *tf, cmp_double);
    qsort(tb, (size_t)runs, sizeof *tb, cmp_double);
    qsort(tr, (size_t)runs, sizeof *tr, cmp_double);
    const double gb = 1e-9 * (double)nw * sizeof(float);
    char peer[64] = "";
#ifdef GCAM_HAVE_XNNPACK
    gcam_xnn_dense *xd = NULL;
    if (gcam__xnn_dense_create(&xd, w, bias, IN, OUT, 1) == GCAM_STATUS_OK) {
      double tx[9];
      gcam__xnn_dense_run(xd, out, in);
      for (int r = 0; r < runs; r++) {
        double t0 = cpu_s();
        gcam__xnn_dense_run(xd, out, in);
        tx[r] = cpu_s() - t0;
      }
      qsort(tx, (size_t)runs, sizeof *tx, cmp_double);
      snprintf(peer, sizeof peer, " | XNNPACK forward %6.2f ms %5.1f GB/s", 1e3 * tx[runs / 2],
               gb / tx[runs / 2]);
      gcam__xnn_dense_delete(xd);
    }
#endif
    printf("fc%d %5dx%-5d forward %7.2f ms %5.1f GB/s | backward_input %7.2f ms %5.1f GB/s | "
           "peer: read w once %6.2f ms %5.1f GB/s%s\n", l + 1, (int)IN, (int)OUT,
           1e3 * tf[runs / 2], gb / tf[runs / 2], 1e3 * tb[runs / 2], gb / tb[runs / 2],
           1e3 * tr[runs / 2], gb / tr[runs / 2], peer);
    fflush(stdout);
    free(w), free(in), free(out), free(bias);
  }
}

/* ---- A/B: fast vs compact conv weights, f32 vs f16 vs int8 dense weights ------------------ */

/* f32 -> IEEE half, round to nearest even (bench inputs: finite, well inside half's range) */
static uint16_t to_half(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  const uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
  if (a < 0x38800000u) { /* subnormal half (or zero): value / 2^-24, rounded */
    float f;
    memcpy(&f, &a, 4);
    return (uint16_t)(sign | (uint32_t)(f * 16777216.0f + 0.5f));
  }
  const uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u; /* rebias, round */
  return (uint16_t)(sign | (r >> 13));
}

static double min_of(const double *t, int n) {
  double m = t[0];
  for (int i = 1; i < n; i++) m = t[i] < m ? t[i] : m;
  return m;
}

static void bench_compact(int runs, int32_t threads) {
  gcam_pthreadpool *tp = threads > 1 ? gcam_pthreadpool_create(threads) : NULL;
  if (threads > 1 && !tp) {
    fprintf(stderr, "bench_kernels: no pool of %d threads\n", (int)threads);
    exit(2);
  }
  const gcam_threadpool hook = tp ? gcam_pthreadpool_hook(tp) : (gcam_threadpool){0};
  const gcam_threadpool *pool = tp ? &hook : NULL;
  double (*clock_s)(void) = tp ? now_s : cpu_s; /* a pool's work is not this thread's CPU */
  printf("conv3x3+bias+ReLU, VGG16 layers, %d thread(s): fast (packed at load) vs compact "
         "(HWIO f32 / f16, transformed as the layer runs); minimum %s ms of %d interleaved "
         "rounds\n", (int)threads, tp ? "wall" : "CPU", runs);
  printf("%-2s %-17s %8s %8s %6s %8s %6s %9s\n", "#", "HxWxC->OC", "fast", "cmp f32", "ratio",
         "cmp f16", "ratio", "max diff");
  double sf = 0, s32 = 0, s16 = 0;
  for (int l = 0; l < 13; l++) {
    const int32_t H = vgg16[l][0], W = vgg16[l][1], C = vgg16[l][2], OC = vgg16[l][3];
    const size_t nw = (size_t)9 * C * OC, nout = (size_t)H * W * OC;
    float *in = xmalloc(sizeof(float) * H * W * C), *w = xmalloc(nw * sizeof(float));
    float *bias = xmalloc(sizeof(float) * OC), *out = xmalloc(nout * sizeof(float));
    float *out2 = xmalloc(nout * sizeof(float));
    uint16_t *wh = xmalloc(nw * 2);
    fill(in, (size_t)H * W * C, 1, 0.0f, 1.0f);
    fill(w, nw, 2, -0.05f, 0.05f);
    fill(bias, (size_t)OC, 3, -0.1f, 0.1f);
    for (size_t k = 0; k < nw; k++) wh[k] = to_half(w[k]);
    float *packed = xmalloc(sizeof(float) * gcam__conv3x3_packed_floats(C, OC));
    gcam__conv3x3_pack(packed, w, bias, C, OC);
    float *scratch = xmalloc(
        sizeof(float) * (gcam__conv3x3_scratch_floats_pool(H, W, C, OC, threads) + 1));
    const size_t npk = gcam__conv3x3_compact_pack_floats(C, OC);
    float *pack = xmalloc(sizeof(float) * (npk + 1));
    double t[3][32];
    for (int r = 0; r <= runs; r++) {
      double t0 = clock_s();
      gcam__conv3x3_relu_forward_pool(out, in, packed, H, W, C, OC, scratch, pool);
      const double a = clock_s() - t0;
      double b = a, c = a;
      if (npk) {
        t0 = clock_s();
        gcam__conv3x3_relu_forward_compact_pool(out2, in, w, GCAM__DTYPE_F32, bias, H, W, C, OC,
                                                scratch, pack, pool);
        b = clock_s() - t0;
        t0 = clock_s();
        gcam__conv3x3_relu_forward_compact_pool(out2, in, wh, GCAM__DTYPE_F16, bias, H, W, C,
                                                OC, scratch, pack, pool);
        c = clock_s() - t0;
      }
      if (r > 0) t[0][r - 1] = a, t[1][r - 1] = b, t[2][r - 1] = c; /* round 0: warm-up */
    }
    double diff = 0;
    if (npk) {
      gcam__conv3x3_relu_forward_compact_pool(out2, in, w, GCAM__DTYPE_F32, bias, H, W, C, OC,
                                              scratch, pack, pool);
      double big = 0;
      for (size_t k = 0; k < nout; k++) {
        const double d = out2[k] > out[k] ? out2[k] - out[k] : out[k] - out2[k];
        diff = d > diff ? d : diff, big = out[k] > big ? out[k] : big;
      }
      diff /= big > 0 ? big : 1;
    }
    const double f = min_of(t[0], runs), c32 = min_of(t[1], runs), c16 = min_of(t[2], runs);
    sf += f, s32 += c32, s16 += c16;
    char name[32];
    snprintf(name, sizeof name, "%dx%dx%d->%d", (int)H, (int)W, (int)C, (int)OC);
    printf("%-2d %-17s %8.2f %8.2f %6.3f %8.2f %6.3f %9.1e\n", l + 1, name, 1e3 * f, 1e3 * c32,
           c32 / f, 1e3 * c16, c16 / f, diff);
    fflush(stdout);
    free(in), free(w), free(bias), free(out), free(out2), free(wh), free(packed), free(scratch);
    free(pack);
  }
  printf("13 convs: fast %.1f ms, compact f32 %.1f ms (%.3f), compact f16 %.1f ms (%.3f)\n",
         1e3 * sf, 1e3 * s32, s32 / sf, 1e3 * s16, s16 / sf);
  gcam_pthreadpool_destroy(tp);
}

/* acc += x * b over b[0, n) 4 at a time, `reps` times: CPU seconds (the dtypes diagnosis) */
static double mul_stream(const float *b, size_t n, int reps, float *sink) {
  typedef float f4 __attribute__((vector_size(16)));
  const f4 x = {0x1p100f, 0x1p100f, 0x1p100f, 0x1p100f};
  f4 a0 = {0}, a1 = {0}, v0, v1;
  const double t0 = cpu_s();
  for (int r = 0; r < reps; r++)
    for (size_t k = 0; k + 8 <= n; k += 8) {
      memcpy(&v0, b + k, sizeof v0), memcpy(&v1, b + k + 4, sizeof v1);
      a0 += x * v0, a1 += x * v1;
    }
  const double t = cpu_s() - t0;
  *sink += a0[0] + a1[3];
  return t;
}

/* Why f16 weights can be slower than their bytes say: the widened subnormal halves are f32
 * subnormals, and a multiply by one that comes now and then is slow on some processors.
 * The same multiply-add stream over tiny normal floats, with none, every 167th (the share of
 * subnormal halves in the dtypes weights) and all of them subnormal. */
static void bench_subnormal_mul(int runs) {
  enum { N = 1 << 16 };
  static float b[3][N];
  for (int v = 0; v < 3; v++)
    for (size_t k = 0; k < N; k++) {
      uint32_t u = 0x0c000000u | ((uint32_t)(k * 2654435761u) >> 9 & 0x7fe000u); /* ~2^-103 */
      if (v == 2 || (v == 1 && k % 167 == 0)) u &= 0x807fe000u; /* exponent 0: subnormal */
      memcpy(&b[v][k], &u, 4);
    }
  double best[3] = {1e9, 1e9, 1e9};
  float sink = 0;
  for (int r = 0; r <= runs; r++)
    for (int v = 0; v < 3; v++) {
      const double t = mul_stream(b[v], N, 200, &sink);
      if (r > 0 && t < best[v]) best[v] = t;
    }
  printf("multiply-add of 13.1M floats: none subnormal %.2f ms | every 167th %.2f ms (%.2f) | "
         "all %.2f ms (%.2f)%s\n", 1e3 * best[0], 1e3 * best[1], best[1] / best[0],
         1e3 * best[2], best[2] / best[0], sink == 12345.0f ? " " : "");
}

/* compact-tune L [N]: layer L's compact path (f32; one tile block: fused) for column groups
 * cw and channel chunks kc, interleaved with the fast path, each from cold caches: minimum
 * CPU ms of N rounds, ratio */
static void tune_compact(int l, int runs) {
  const int32_t H = vgg16[l][0], W = vgg16[l][1], C = vgg16[l][2], OC = vgg16[l][3];
  static const int32_t cws[] = {16, 32, 64, 128}, kcs[] = {32, 64, 128, 256, 512};
  enum { NCW = 4, NKC = 5 };
  const size_t nw = (size_t)9 * C * OC, nout = (size_t)H * W * OC;
  float *in = xmalloc(sizeof(float) * H * W * C), *w = xmalloc(nw * sizeof(float));
  float *bias = xmalloc(sizeof(float) * OC), *out = xmalloc(nout * sizeof(float));
  fill(in, (size_t)H * W * C, 1, 0.0f, 1.0f);
  fill(w, nw, 2, -0.05f, 0.05f);
  fill(bias, (size_t)OC, 3, -0.1f, 0.1f);
  float *packed = xmalloc(sizeof(float) * gcam__conv3x3_packed_floats(C, OC));
  gcam__conv3x3_pack(packed, w, bias, C, OC);
  float *scratch = xmalloc(sizeof(float) * (gcam__conv3x3_scratch_floats(H, W, C, OC) + 1));
  float *pack = xmalloc(sizeof(float) * (gcam__conv3x3_compact_pack_floats(C, OC) + 1));
  static double t[1 + NCW * NKC][32];
  /* each variant starts with its weights out of the caches, as in a forward (and after the
   * fast path, which streams 4x as much): else the next reads the previous one's from L3 */
  const size_t n_flush = (size_t)64 << 18;
  float *flush = xmalloc(n_flush * sizeof *flush);
  for (int r = 0; r <= runs; r++) {
    memset(flush, r, n_flush * sizeof *flush);
    double t0 = cpu_s();
    gcam__conv3x3_relu_forward_pool(out, in, packed, H, W, C, OC, scratch, NULL);
    if (r > 0) t[0][r - 1] = cpu_s() - t0;
    for (int i = 0; i < NCW * NKC; i++) {
      if (kcs[i % NKC] > C) continue;
      memset(flush, r + i, n_flush * sizeof *flush);
      t0 = cpu_s();
      if (gcam__conv3x3_wino_forward_compact_fused(4, out, in, w, GCAM__DTYPE_F32, bias, H, W, C,
                                                   OC, scratch, pack, cws[i / NKC],
                                                   kcs[i % NKC], NULL) != 0) {
        printf("layer %d is more than one tile block\n", l + 1);
        return;
      }
      if (r > 0) t[1 + i][r - 1] = cpu_s() - t0;
    }
  }
  const double f = min_of(t[0], runs);
  printf("layer %d %dx%dx%d->%d: fast %.2f ms; compact, ratio to fast (rows cw, columns kc)\n",
         l + 1, (int)H, (int)W, (int)C, (int)OC, 1e3 * f);
  printf("%6s", "cw\\kc");
  for (int k = 0; k < NKC; k++) printf(" %6d", (int)kcs[k]);
  printf("\n");
  for (int c = 0; c < NCW; c++) {
    printf("%6d", (int)cws[c]);
    for (int k = 0; k < NKC; k++)
      if (kcs[k] > C)
        printf(" %6s", "-");
      else
        printf(" %6.3f", min_of(t[1 + c * NKC + k], runs) / f);
    printf("\n");
  }
  free(in), free(w), free(bias), free(out), free(packed), free(scratch), free(pack), free(flush);
}

static void bench_dtypes(int runs) {
  const int32_t fc[3][2] = {{25088, 4096}, {4096, 4096}, {4096, 1000}};
  printf("dense, batch 1, one thread, f32 vs f16 vs int8 weights: minimum CPU ms of %d "
         "interleaved rounds (ratio to f32)\n", runs);
  for (int l = 0; l < 3; l++) {
    const int32_t IN = fc[l][0], OUT = fc[l][1];
    const size_t nw = (size_t)IN * OUT;
    float *w = xmalloc(nw * sizeof *w), *in = xmalloc(IN * sizeof *in);
    float *out = xmalloc(OUT * sizeof *out), *bias = xmalloc(OUT * sizeof *bias);
    float *scale = xmalloc(OUT * sizeof *scale), *din = xmalloc(IN * sizeof *din);
    uint16_t *wh = xmalloc(nw * 2), *wh10 = xmalloc(nw * 2);
    int8_t *wq = xmalloc(nw);
    fill(w, nw, 4, -0.01f, 0.01f);
    fill(in, (size_t)IN, 5, 0.0f, 1.0f);
    fill(bias, (size_t)OUT, 6, -0.1f, 0.1f);
    for (int32_t o = 0; o < OUT; o++) scale[o] = 0.01f / 127;
    size_t subnormal = 0;
    for (size_t k = 0; k < nw; k++) {
      wh[k] = to_half(w[k]), wq[k] = (int8_t)(w[k] * 12700.0f);
      wh10[k] = wh[k];
      subnormal += (wh[k] & 0x7c00) == 0 && (wh[k] & 0x3ff) != 0;
    }
    /* the fourth column is f16 as the loader keeps it: the same halves times 2^k, none of
     * them subnormal (gcam__f16_scale_up); the same products, so the same outputs bit for
     * bit (checked below) */
    const int32_t k10 = gcam__f16_scale_up(wh10, nw);
    const gcam__dense_weights dw[4] = {{GCAM__DTYPE_F32, w, NULL, bias, 0},
                                       {GCAM__DTYPE_F16, wh, NULL, bias, 0},
                                       {GCAM__DTYPE_I8, wq, scale, bias, 0},
                                       {GCAM__DTYPE_F16, wh10, NULL, bias, k10}};
    float *o16 = xmalloc(OUT * sizeof *o16), *d16 = xmalloc(IN * sizeof *d16);
    gcam__dense_forward_dt(out, in, &dw[1], IN, OUT, 1);
    gcam__dense_backward_input_dt(din, out, &dw[1], IN, OUT);
    gcam__dense_forward_dt(o16, in, &dw[3], IN, OUT, 1);
    gcam__dense_backward_input_dt(d16, out, &dw[3], IN, OUT);
    const int same = !memcmp(out, o16, OUT * sizeof *out) && !memcmp(din, d16, IN * sizeof *din);
    free(o16), free(d16);
    double tf[4][32], tb[4][32];
    for (int r = 0; r <= runs; r++)
      for (int d = 0; d < 4; d++) {
        double t0 = cpu_s();
        gcam__dense_forward_dt(out, in, &dw[d], IN, OUT, 1);
        const double a = cpu_s() - t0;
        t0 = cpu_s();
        gcam__dense_backward_input_dt(din, out, &dw[d], IN, OUT);
        const double b = cpu_s() - t0;
        if (r > 0) tf[d][r - 1] = a, tb[d][r - 1] = b;
      }
    double f[4], b[4];
    for (int d = 0; d < 4; d++) f[d] = min_of(tf[d], runs), b[d] = min_of(tb[d], runs);
    printf("fc%d %5dx%-5d forward  f32 %7.2f | f16 %7.2f (%.2f) | int8 %7.2f (%.2f) | "
           "f16 loaded %7.2f (%.2f)\n", l + 1, (int)IN, (int)OUT, 1e3 * f[0], 1e3 * f[1],
           f[1] / f[0], 1e3 * f[2], f[2] / f[0], 1e3 * f[3], f[3] / f[0]);
    printf("fc%d %5dx%-5d backward f32 %7.2f | f16 %7.2f (%.2f) | int8 %7.2f (%.2f) | "
           "f16 loaded %7.2f (%.2f)\n", l + 1, (int)IN, (int)OUT, 1e3 * b[0], 1e3 * b[1],
           b[1] / b[0], 1e3 * b[2], b[2] / b[0], 1e3 * b[3], b[3] / b[0]);
    if (l == 0)
      printf("    (%.2f%% of the file's halves are subnormal; 'f16': as the file stores them, "
             "'f16 loaded': as the loader keeps them, times 2^%d, none subnormal)\n",
             100.0 * (double)subnormal / (double)nw, (int)k10);
    printf("    f16 loaded = f16, forward and backward, bit for bit: %s\n", same ? "yes" : "NO");
    fflush(stdout);
    free(w), free(in), free(out), free(bias), free(scale), free(din), free(wh), free(wh10);
    free(wq);
  }
  bench_subnormal_mul(runs);
}

static void tune(int l, int only_m) {
  const int32_t *s = vgg16[l];
  const double gflop = 2e-9 * s[0] * s[1] * s[2] * s[3] * 9;
  const int runs = runs_for(gflop);
  const int32_t ocbs[] = {32, 64, 128, 256, 512};
  const int32_t tiles[] = {12, 24, 48, 96, 192};
  layer_bufs b = layer_alloc(s, 192);
  printf("layer %d %dx%dx%d->%d\n", l + 1, (int)s[0], (int)s[1], (int)s[2], (int)s[3]);
  for (size_t i = 0; !only_m && i < sizeof ocbs / sizeof *ocbs; i++) {
    if (ocbs[i] > s[3]) break;
    conv_job jd = {0, s[0], s[1], s[2], s[3], ocbs[i], 0, b.in, b.wd, b.out, b.sd};
    double t = time_conv(&jd, runs, NULL);
    printf("direct oc_block %3d: %8.2f ms %6.1f GFLOP/s\n", (int)ocbs[i], 1e3 * t, gflop / t);
  }
  for (size_t i = 0; i < sizeof tiles / sizeof *tiles; i++)
    for (size_t k = 0; k < sizeof ocbs / sizeof *ocbs; k++) {
      if (ocbs[k] > s[3]) break;
      for (int m = 2; m <= 4; m += 2) {
        if (only_m && m != only_m) continue;
        conv_job jw = {m, s[0], s[1], s[2], s[3], ocbs[k], tiles[i], b.in, b.ww[m], b.out,
                       b.sw[m]};
        double t = time_conv(&jw, runs, NULL);
        printf("F(%d,3) tiles %3d oc_block %3d: %8.2f ms %6.1f GFLOP/s eff\n", m,
               (int)tiles[i], (int)ocbs[k], 1e3 * t, gflop / t);
      }
    }
  printf("defaults: direct oc_block %d, F(2,3) tiles %d, F(4,3) tiles %d, oc_block %d\n",
         (int)gcam__conv3x3_oc_block(9 * s[2], s[3]),
         (int)gcam__conv3x3_wino_tiles(2, s[0], s[1], s[2], s[3], 0),
         (int)gcam__conv3x3_wino_tiles(4, s[0], s[1], s[2], s[3], 0),
         (int)gcam__conv3x3_oc_block(s[2], s[3]));
  layer_free(&b);
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "tune") == 0) {
    int l = atoi(argv[2]);
    if (l < 0 || l > 12) {
      fprintf(stderr, "bench_kernels: layer must be 0..12\n");
      return 2;
    }
    tune(l, argc >= 4 ? atoi(argv[3]) : 0);
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "compact-tune") == 0) {
    const int l = atoi(argv[2]), n = argc >= 4 ? atoi(argv[3]) : 5;
    if (l < 0 || l > 12 || n < 1 || n > 32) {
      fprintf(stderr, "bench_kernels: compact-tune L [N]: L 0..12, N 1..32\n");
      return 2;
    }
    tune_compact(l, n);
    return 0;
  }
  const int ab_runs = argc >= 3 ? atoi(argv[2]) : 7;
  if (argc >= 2 && (strcmp(argv[1], "compact") == 0 || strcmp(argv[1], "dtypes") == 0)) {
    if (ab_runs < 1 || ab_runs > 32) {
      fprintf(stderr, "bench_kernels: N must be 1..32\n");
      return 2;
    }
    const int threads = argc >= 4 ? atoi(argv[3]) : 1;
    if (threads < 1 || threads > 64) {
      fprintf(stderr, "bench_kernels: T must be 1..64\n");
      return 2;
    }
    if (argv[1][0] == 'c')
      bench_compact(ab_runs, threads);
    else
      bench_dtypes(ab_runs);
    return 0;
  }
  if (argc < 2 || strcmp(argv[1], "dense") != 0) bench_convs();
  if (argc < 2 || strcmp(argv[1], "conv") != 0) bench_dense();
  return 0;
}
