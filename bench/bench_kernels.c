/* bench_kernels.c: speed of the compute kernels on VGG16's shapes, natively and in wasm.
 *
 *   build/bench_kernels              all 13 conv layers (fast path and direct path), fc1-3
 *   build/bench_kernels conv         the convolutions only
 *   build/bench_kernels tune L       layer L (0..12): sweep the blocking parameters
 *
 * wasm: NODE_PATH=/usr/share/nodejs emcc -O3 -msimd128 -Isrc -Iinclude bench/bench_kernels.c
 *       (every .c of src/kernels) -o /tmp/bench_kernels.js -sALLOW_MEMORY_GROWTH=1
 *       -sMAXIMUM_MEMORY=4GB
 *       node --no-experimental-fetch /tmp/bench_kernels.js
 *
 * Each figure is the median of several timed runs after a warm-up run (V8 tiers a function up
 * only after it has been entered repeatedly). GFLOP/s count 2*H*W*C*OC*9 per conv, the
 * direct convolution's work, for Winograd too ("effective" GFLOP/s). */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/conv3x3.h"
#include "ops.h"

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
  int path; /* 0 direct, 1 winograd */
  int32_t H, W, C, OC, oc_block, tiles;
  const float *in, *packed;
  float *out, *scratch;
} conv_job;

static void run_conv(const conv_job *j) {
  if (j->path)
    gcam__conv3x3_wino2_forward(j->out, j->in, j->packed, j->H, j->W, j->C, j->OC, j->scratch,
                                j->tiles, j->oc_block);
  else
    gcam__conv3x3_direct_forward(j->out, j->in, j->packed, j->H, j->W, j->C, j->OC, j->scratch,
                                 j->oc_block);
}

/* median seconds of `runs` timed runs after one warm-up */
static double time_conv(const conv_job *j, int runs) {
  double t[32];
  run_conv(j);
  for (int r = 0; r < runs; r++) {
    double t0 = now_s();
    run_conv(j);
    t[r] = now_s() - t0;
  }
  qsort(t, (size_t)runs, sizeof *t, cmp_double);
  return t[runs / 2];
}

static const int32_t vgg16[13][4] = {
    {224, 224, 3, 64},  {224, 224, 64, 64},  {112, 112, 64, 128}, {112, 112, 128, 128},
    {56, 56, 128, 256}, {56, 56, 256, 256},  {56, 56, 256, 256},  {28, 28, 256, 512},
    {28, 28, 512, 512}, {28, 28, 512, 512},  {14, 14, 512, 512},  {14, 14, 512, 512},
    {14, 14, 512, 512}};

typedef struct {
  float *in, *out, *wd, *ww, *sd, *sw, *w, *bias;
} layer_bufs;

static layer_bufs layer_alloc(const int32_t *s, int32_t tiles) {
  const int32_t H = s[0], W = s[1], C = s[2], OC = s[3];
  layer_bufs b;
  b.in = xmalloc(sizeof(float) * H * W * C);
  b.out = xmalloc(sizeof(float) * H * W * OC);
  b.w = xmalloc(sizeof(float) * 9 * C * OC);
  b.bias = xmalloc(sizeof(float) * OC);
  fill(b.in, (size_t)H * W * C, 1, 0.0f, 1.0f);
  fill(b.w, (size_t)9 * C * OC, 2, -0.05f, 0.05f);
  fill(b.bias, (size_t)OC, 3, -0.1f, 0.1f);
  b.wd = xmalloc(sizeof(float) * gcam__conv3x3_direct_packed_floats(C, OC));
  b.ww = xmalloc(sizeof(float) * gcam__conv3x3_wino2_packed_floats(C, OC));
  b.sd = xmalloc(sizeof(float) * gcam__conv3x3_direct_scratch_floats(H, W, C, OC));
  b.sw = xmalloc(sizeof(float) * gcam__conv3x3_wino2_scratch_floats(H, W, C, OC, tiles));
  gcam__conv3x3_direct_pack(b.wd, b.w, b.bias, C, OC);
  gcam__conv3x3_wino2_pack(b.ww, b.w, b.bias, C, OC);
  return b;
}

static void layer_free(layer_bufs *b) {
  free(b->in), free(b->out), free(b->w), free(b->bias);
  free(b->wd), free(b->ww), free(b->sd), free(b->sw);
}

static int runs_for(double gflop) { return gflop > 2.0 ? 3 : gflop > 0.5 ? 5 : 9; }

static void bench_convs(void) {
  printf("conv3x3+bias+ReLU, VGG16 layers; GFLOP/s = 2*H*W*C*OC*9/s (direct-conv FLOPs, also "
         "for Winograd: effective)\n");
  printf("%-2s %-20s %-8s %9s %8s | %9s %8s\n", "#", "shape HxWxC->OC", "fast", "fast ms",
         "GFLOP/s", "direct ms", "GFLOP/s");
  double sum_fast = 0, sum_direct = 0, flops_all = 0;
  for (int l = 0; l < 13; l++) {
    const int32_t *s = vgg16[l];
    layer_bufs b = layer_alloc(s, 0);
    const double gflop = 2e-9 * s[0] * s[1] * s[2] * s[3] * 9;
    const int runs = runs_for(gflop);
    conv_job jd = {0, s[0], s[1], s[2], s[3], 0, 0, b.in, b.wd, b.out, b.sd};
    conv_job jw = {1, s[0], s[1], s[2], s[3], 0, 0, b.in, b.ww, b.out, b.sw};
    const int wino = gcam__conv3x3_use_wino2(s[2], s[3]);
    double td = time_conv(&jd, runs);
    double tf = wino ? time_conv(&jw, runs) : td;
    char name[32];
    snprintf(name, sizeof name, "%dx%dx%d->%d", (int)s[0], (int)s[1], (int)s[2], (int)s[3]);
    printf("%-2d %-20s %-8s %9.2f %8.1f | %9.2f %8.1f\n", l + 1, name,
           wino ? "wino2" : "direct", 1e3 * tf, gflop / tf, 1e3 * td, gflop / td);
    fflush(stdout);
    sum_fast += tf, sum_direct += td, flops_all += gflop;
    layer_free(&b);
  }
  printf("sum of 13 layers: fast %.1f ms (%.1f GFLOP/s effective), direct %.1f ms (%.1f "
         "GFLOP/s); %.2f GFLOP\n", 1e3 * sum_fast, flops_all / sum_fast, 1e3 * sum_direct,
         flops_all / sum_direct, flops_all);
}

static void bench_dense(void) {
  const int32_t fc[3][2] = {{25088, 4096}, {4096, 4096}, {4096, 1000}};
  printf("dense (GB/s = bytes of w read / s)\n");
  for (int l = 0; l < 3; l++) {
    const int32_t IN = fc[l][0], OUT = fc[l][1];
    const size_t nw = (size_t)IN * OUT;
    float *w = xmalloc(nw * sizeof *w), *in = xmalloc(IN * sizeof *in);
    float *out = xmalloc(OUT * sizeof *out), *bias = xmalloc(OUT * sizeof *bias);
    fill(w, nw, 4, -0.01f, 0.01f);
    fill(in, (size_t)IN, 5, 0.0f, 1.0f);
    fill(bias, (size_t)OUT, 6, -0.1f, 0.1f);
    double tf[9], tb[9];
    const int runs = l == 0 ? 5 : 9;
    gcam_dense_forward(out, in, w, bias, IN, OUT, 1);
    gcam_dense_backward_input(in, out, w, IN, OUT);
    for (int r = 0; r < runs; r++) {
      double t0 = now_s();
      gcam_dense_forward(out, in, w, bias, IN, OUT, 1);
      tf[r] = now_s() - t0;
      t0 = now_s();
      gcam_dense_backward_input(in, out, w, IN, OUT);
      tb[r] = now_s() - t0;
      fill(in, (size_t)IN, 5, 0.0f, 1.0f); /* keep values sane between runs */
    }
    qsort(tf, (size_t)runs, sizeof *tf, cmp_double);
    qsort(tb, (size_t)runs, sizeof *tb, cmp_double);
    const double gb = 1e-9 * (double)nw * sizeof(float);
    printf("fc%d %5dx%-5d forward %7.2f ms %6.1f GB/s | backward_input %7.2f ms %6.1f GB/s\n",
           l + 1, (int)IN, (int)OUT, 1e3 * tf[runs / 2], gb / tf[runs / 2], 1e3 * tb[runs / 2],
           gb / tb[runs / 2]);
    fflush(stdout);
    free(w), free(in), free(out), free(bias);
  }
}

static void tune(int l) {
  const int32_t *s = vgg16[l];
  const double gflop = 2e-9 * s[0] * s[1] * s[2] * s[3] * 9;
  const int runs = runs_for(gflop);
  const int32_t ocbs[] = {16, 32, 64, 128, 256, 512};
  const int32_t tiles[] = {8, 16, 32, 64, 128};
  layer_bufs b = layer_alloc(s, 128);
  printf("layer %d %dx%dx%d->%d\n", l + 1, (int)s[0], (int)s[1], (int)s[2], (int)s[3]);
  for (size_t i = 0; i < sizeof ocbs / sizeof *ocbs; i++) {
    if (ocbs[i] > s[3]) break;
    conv_job jd = {0, s[0], s[1], s[2], s[3], ocbs[i], 0, b.in, b.wd, b.out, b.sd};
    double t = time_conv(&jd, runs);
    printf("direct oc_block %3d: %8.2f ms %6.1f GFLOP/s\n", (int)ocbs[i], 1e3 * t, gflop / t);
  }
  for (size_t i = 0; i < sizeof tiles / sizeof *tiles; i++)
    for (size_t k = 0; k < sizeof ocbs / sizeof *ocbs; k++) {
      if (ocbs[k] > s[3]) break;
      conv_job jw = {1, s[0], s[1], s[2], s[3], ocbs[k], tiles[i], b.in, b.ww, b.out, b.sw};
      double t = time_conv(&jw, runs);
      printf("wino2 tiles %3d oc_block %3d: %8.2f ms %6.1f GFLOP/s eff\n", (int)tiles[i],
             (int)ocbs[k], 1e3 * t, gflop / t);
    }
  printf("defaults: direct oc_block %d, wino2 tiles %d oc_block %d\n",
         (int)gcam__conv3x3_oc_block(9 * s[2], s[3]),
         (int)gcam__conv3x3_wino2_tiles(s[0], s[1], s[2], s[3], 0),
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
    tune(l);
    return 0;
  }
  bench_convs();
  if (argc < 2 || strcmp(argv[1], "conv") != 0) bench_dense();
  return 0;
}
