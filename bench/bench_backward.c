/* bench_backward.c: the conv's input gradient (kernels/conv3x3_backward.c) against the forward,
 * on VGG16's 13 conv shapes, one thread.
 *
 *   build/bench_backward [runs]      (default 3 timed runs per figure, after one warm-up)
 *   build/bench_backward cam         each CAM method (cam_methods.c) at the maps of
 *                                    block5_conv3, block4_conv3 and block3_conv3
 *   build/bench_backward pack [runs] the backward's packing of each VGG16 layer's flipped
 *                                    weights from the canonical f32 / f16 ones, as the
 *                                    backward driver does it as each layer runs
 *   build/bench_backward explain WEIGHTS [fast|compact] [runs]
 *                                    the whole library on a model, one thread: a forward, and
 *                                    gcam_state_explain_ex() per method (CAM ones at the last
 *                                    conv and at block3_conv3) on a GCAM_DEPTH_INPUT state
 *
 * wasm: NODE_PATH=/usr/share/nodejs emcc -O3 -msimd128 -DGCAM_WINOGRAD_M=4 -Isrc -Iinclude
 *       -I/usr/include/stb -Ibench bench/bench_backward.c $(ls src/*.c src/image/*.c
 *       src/kernels/*.c | grep -v xnn_backend) -o /tmp/bench_backward.js
 *       -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sNODERAWFS=1 -sTOTAL_STACK=8MB
 *       node --no-experimental-fetch /tmp/bench_backward.js [explain WEIGHTS ...]
 * Each figure is the median CPU time of the thread (the machine's cores are shared). The
 * backward of layer (C -> OC) is a (OC -> C) convolution with the flipped weights, no bias and
 * no ReLU, so it runs the path gcam__conv3x3_path(OC, C) picks: layer 1's backward (64 -> 3)
 * is Winograd where its forward (3 -> 64) is direct. GFLOP/s count 2*H*W*C*OC*9 for both. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_cpu_time.h"
#include "cam_methods.h"
#include "kernels/conv3x3.h"
#include "gcam.h"
#include "ops.h"


static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "bench_backward: out of memory (%zu bytes)\n", n);
    exit(1);
  }
  return p;
}

static const int32_t vgg16[13][4] = {
    {224, 224, 3, 64},  {224, 224, 64, 64},  {112, 112, 64, 128}, {112, 112, 128, 128},
    {56, 56, 128, 256}, {56, 56, 256, 256},  {56, 56, 256, 256},  {28, 28, 256, 512},
    {28, 28, 512, 512}, {28, 28, 512, 512},  {14, 14, 512, 512},  {14, 14, 512, 512},
    {14, 14, 512, 512}};

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct {
  const int32_t *s;
  float *in, *out, *packed, *scratch, *dy, *dx, *bpacked, *bscratch;
} bufs;

static void run_forward(const bufs *b) {
  gcam__conv3x3_relu_forward(b->out, b->in, b->packed, b->s[0], b->s[1], b->s[2], b->s[3],
                             b->scratch);
}

static void run_backward(const bufs *b) {
  gcam__conv3x3_backward_input(b->dx, b->dy, b->bpacked, b->s[0], b->s[1], b->s[2], b->s[3],
                               b->bscratch);
}

static double median_time(void (*fn)(const bufs *), const bufs *b, int runs) {
  double t[16];
  fn(b); /* warm-up */
  for (int r = 0; r < runs; r++) {
    const double t0 = cpu_s();
    fn(b);
    t[r] = cpu_s() - t0;
  }
  qsort(t, (size_t)runs, sizeof t[0], cmp_double);
  return t[runs / 2];
}

/* the CAM methods on random post-ReLU activations and gradients: one run each (the eigen
 * ones take seconds at block4/block3) */
static int bench_cam(void) {
  static const int32_t maps[3][3] = {{14, 14, 512}, {28, 28, 512}, {56, 56, 256}};
  printf("method               14x14x512 ms  28x28x512 ms  56x56x256 ms\n");
  for (int m = 0; m < GCAM__CAM_COUNT; m++) {
    printf("%-20s", gcam__cam_method_name(m));
    for (int i = 0; i < 3; i++) {
      const int32_t H = maps[i][0], W = maps[i][1], K = maps[i][2];
      const size_t n = (size_t)H * W * K;
      float *A = xmalloc(n * 4), *g = xmalloc(n * 4), *raw = xmalloc((size_t)H * W * 4);
      unsigned seed = 99u + (unsigned)i;
      for (size_t j = 0; j < n; j++) {
        seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
        const float u = (float)((seed >> 8) * (1.0 / 16777216.0)) - 0.5f;
        A[j] = u > 0.0f ? u : 0.0f;
        g[j] = 0.01f * u;
      }
      size_t nw = 0;
      if (gcam__cam_work_doubles(m, H, W, K, &nw) != GCAM_STATUS_OK) return 1;
      double *work = xmalloc(nw * sizeof *work);
      const double t0 = cpu_s();
      const gcam_status st = gcam__cam_map(raw, NULL, NULL, m, A, g, H, W, K, work, nw);
      const double t = cpu_s() - t0;
      if (st != GCAM_STATUS_OK) return 1;
      printf("  %12.1f", t * 1e3);
      fflush(stdout);
      free(A), free(g), free(raw), free(work);
    }
    printf("\n");
  }
  return 0;
}

/* ---- pack: the backward's weights packed as the layer runs ------------------------------- */

static int bench_pack(int runs) {
  printf("layer  C -> OC     f32 ms   f16 ms\n");
  double all[2] = {0, 0};
  unsigned seed = 777u;
  for (int l = 0; l < 13; l++) {
    const int32_t C = vgg16[l][2], OC = vgg16[l][3];
    const size_t n_w = (size_t)9 * C * OC;
    float *w = xmalloc(n_w * 4), *packed = xmalloc(gcam__conv3x3_backward_packed_floats(C, OC) * 4);
    uint16_t *w16 = xmalloc(n_w * 2);
    for (size_t i = 0; i < n_w; i++) {
      seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
      w[i] = (float)((seed >> 8) * (1.0 / 16777216.0)) - 0.5f;
      w16[i] = (uint16_t)(0x3000u + (seed & 0x3ffu)); /* some half in [0.125, 0.25) */
    }
    double t[2];
    for (int dt = 0; dt < 2; dt++) {
      double ts[16];
      for (int r = 0; r <= runs; r++) {
        const double t0 = cpu_s();
        gcam__conv3x3_backward_pack_canon_pool(packed, dt ? (const void *)w16 : w,
                                               dt ? GCAM__DTYPE_F16 : GCAM__DTYPE_F32, C, OC,
                                               NULL);
        if (r) ts[r - 1] = cpu_s() - t0; /* run 0 warms up */
      }
      qsort(ts, (size_t)runs, sizeof ts[0], cmp_double);
      t[dt] = ts[runs / 2], all[dt] += t[dt];
    }
    printf("%5d  %4d -> %-4d %7.2f  %7.2f\n", l + 1, C, OC, t[0] * 1e3, t[1] * 1e3);
    free(w), free(w16), free(packed);
  }
  printf("all 13 layers: f32 %.1f ms, f16 %.1f ms\n", all[0] * 1e3, all[1] * 1e3);
  return 0;
}

/* ---- explain: the library on a real model ------------------------------------------------- */

static double time_explain(gcam_state *s, const gcam_explain_params *p, float *raw, int runs) {
  double ts[16];
  for (int r = 0; r <= runs; r++) {
    const double t0 = cpu_s();
    if (gcam_state_explain_ex(s, 1, p, raw, NULL, NULL) != GCAM_STATUS_OK) {
      fprintf(stderr, "bench_backward: %s\n", gcam_last_error());
      exit(1);
    }
    if (r) ts[r - 1] = cpu_s() - t0;
  }
  qsort(ts, (size_t)runs, sizeof ts[0], cmp_double);
  return ts[runs / 2];
}

static int bench_explain(const char *path, int compact, int runs) {
  gcam_model_params mp = gcam_model_default_params();
  mp.backend = GCAM_BACKEND_PORTABLE;
  mp.memory = compact ? GCAM_MEMORY_COMPACT : GCAM_MEMORY_FAST;
  gcam_model *m;
  if (gcam_model_load_from_file(path, &mp, &m) != GCAM_STATUS_OK) {
    fprintf(stderr, "bench_backward: %s\n", gcam_last_error());
    return 1;
  }
  gcam_model_info info;
  gcam_model_get_info(m, &info);
  gcam_state_params sp = gcam_state_default_params();
  gcam_state *d, *s;
  sp.depth = GCAM_DEPTH_INPUT;
  if (gcam_state_create(m, &d) || gcam_state_create_ex(m, &sp, &s)) {
    fprintf(stderr, "bench_backward: %s\n", gcam_last_error());
    return 1;
  }
  uint64_t bd, bs;
  gcam_state_memory_bytes(d, &bd), gcam_state_memory_bytes(s, &bs);
  printf("%s, %s memory, weights %.1f MB; state: default depth %.1f MB, GCAM_DEPTH_INPUT %.1f MB\n",
         path, compact ? "COMPACT" : "FAST", info.weight_bytes / 1048576.0, bd / 1048576.0,
         bs / 1048576.0);
  const size_t n = (size_t)info.input_width * info.input_height * 3;
  float *x = xmalloc(n * 4), *raw = xmalloc((size_t)info.input_width * info.input_height * 4);
  unsigned seed = 4321u;
  for (size_t i = 0; i < n; i++) {
    seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
    x[i] = (float)((seed >> 8) * (255.0 / 16777216.0)) - 120.0f;
  }
  double ts[16], tf = 0.0;
  for (int k = 0; k < 2; k++) { /* the default state, then the deep one (keeps every argmax) */
    for (int r = 0; r <= runs; r++) {
      const double t0 = cpu_s();
      gcam_state_forward_tensor(k ? s : d, x);
      if (r) ts[r - 1] = cpu_s() - t0;
    }
    qsort(ts, (size_t)runs, sizeof ts[0], cmp_double);
    tf = ts[runs / 2];
    printf("forward, %-27s %8.1f ms\n", k ? "GCAM_DEPTH_INPUT state" : "default state", tf * 1e3);
  }
  int32_t b3 = info.n_conv - 1;
  gcam_model_layer_index(m, "block3_conv3", &b3);
  gcam_layer_info li3, lil;
  gcam_model_layer_info(m, b3, &li3), gcam_model_layer_info(m, info.n_conv - 1, &lil);
  for (int meth = 0; meth < GCAM_METHOD_COUNT; meth++) {
    gcam_explain_params p = gcam_explain_default_params();
    p.method = (gcam_method)meth;
    if (meth == GCAM_METHOD_SMOOTHGRAD) p.samples = 4;
    if (meth == GCAM_METHOD_INTEGRATED_GRADIENTS) p.steps = 4;
    const int r = meth == GCAM_METHOD_SMOOTHGRAD || meth == GCAM_METHOD_INTEGRATED_GRADIENTS ||
                          meth == GCAM_METHOD_EIGENCAM || meth == GCAM_METHOD_EIGENGRADCAM
                      ? 1
                      : runs;
    const double t = time_explain(s, &p, raw, r);
    char what[64];
    if (meth == GCAM_METHOD_SMOOTHGRAD || meth == GCAM_METHOD_INTEGRATED_GRADIENTS)
      snprintf(what, sizeof what, "%s (4 %s)", gcam_method_name(p.method),
               meth == GCAM_METHOD_SMOOTHGRAD ? "samples" : "steps");
    else if (gcam_method_is_pixel(p.method))
      snprintf(what, sizeof what, "%s", gcam_method_name(p.method));
    else
      snprintf(what, sizeof what, "%s at %s", gcam_method_name(p.method), lil.name);
    printf("%-36s %8.1f ms  (%.2f x forward)\n", what, t * 1e3, t / tf);
    if (!gcam_method_is_pixel(p.method) && b3 != info.n_conv - 1) {
      p.layer = b3;
      const double t3 = time_explain(s, &p, raw, r);
      snprintf(what, sizeof what, "%s at %s", gcam_method_name(p.method), li3.name);
      printf("%-36s %8.1f ms  (%.2f x forward)\n", what, t3 * 1e3, t3 / tf);
    }
  }
  free(x), free(raw);
  gcam_state_free(s), gcam_state_free(d);
  gcam_model_free(m);
  return 0;
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "pack")) return bench_pack(argc > 2 ? atoi(argv[2]) : 3);
  if (argc > 2 && !strcmp(argv[1], "explain"))
    return bench_explain(argv[2], argc > 3 && !strcmp(argv[3], "compact"),
                         argc > 4 ? atoi(argv[4]) : 3);
  if (argc > 1 && !strcmp(argv[1], "cam")) return bench_cam();
  int runs = argc > 1 ? atoi(argv[1]) : 3;
  if (runs < 1 || runs > 16) {
    fprintf(stderr, "bench_backward: runs must be 1..16\n");
    return 2;
  }
  printf("layer  H x W     C -> OC   fwd path  fwd ms  GFLOP/s | bwd path  bwd ms  GFLOP/s | "
         "bwd/fwd\n");
  double tf_all = 0.0, tb_all = 0.0;
  unsigned seed = 12345u;
  for (int l = 0; l < 13; l++) {
    const int32_t *s = vgg16[l], H = s[0], W = s[1], C = s[2], OC = s[3];
    bufs b;
    memset(&b, 0, sizeof b);
    b.s = s;
    const size_t n_in = (size_t)H * W * C, n_out = (size_t)H * W * OC, n_w = (size_t)9 * C * OC;
    float *w = xmalloc(n_w * 4), *bias = xmalloc((size_t)OC * 4);
    b.in = xmalloc(n_in * 4), b.dx = xmalloc(n_in * 4);
    b.out = xmalloc(n_out * 4), b.dy = xmalloc(n_out * 4);
    float *all[] = {w, bias, b.in, b.dy};
    const size_t ns[] = {n_w, (size_t)OC, n_in, n_out};
    for (int k = 0; k < 4; k++)
      for (size_t i = 0; i < ns[k]; i++) {
        seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
        all[k][i] = (float)((seed >> 8) * (1.0 / 16777216.0)) - 0.5f;
      }
    b.packed = xmalloc(gcam__conv3x3_packed_floats(C, OC) * 4);
    b.scratch = xmalloc(gcam__conv3x3_scratch_floats(H, W, C, OC) * 4 + 4);
    b.bpacked = xmalloc(gcam__conv3x3_backward_packed_floats(C, OC) * 4);
    b.bscratch = xmalloc(gcam__conv3x3_backward_scratch_floats(H, W, C, OC) * 4 + 4);
    gcam__conv3x3_pack(b.packed, w, bias, C, OC);
    gcam__conv3x3_backward_pack(b.bpacked, w, C, OC);
    const double tf = median_time(run_forward, &b, runs), tb = median_time(run_backward, &b, runs);
    const double gflop = 2.0 * H * W * C * OC * 9 * 1e-9;
    static const char *names[] = {"direct", "?", "F(2,3)", "?", "F(4,3)"};
    printf("%5d  %3d x %-3d %4d -> %-4d  %-8s %7.1f %7.1f  | %-8s %7.1f %7.1f  | %5.2f\n", l + 1,
           H, W, C, OC, names[gcam__conv3x3_path(C, OC)], tf * 1e3, gflop / tf,
           names[gcam__conv3x3_path(OC, C)], tb * 1e3, gflop / tb, tb / tf);
    tf_all += tf, tb_all += tb;
    free(w), free(bias), free(b.in), free(b.dx), free(b.out), free(b.dy), free(b.packed);
    free(b.scratch), free(b.bpacked), free(b.bscratch);
  }
  printf("all 13 conv layers: forward %.1f ms, backward (input gradient) %.1f ms, ratio %.2f\n",
         tf_all * 1e3, tb_all * 1e3, tb_all / tf_all);
  return 0;
}
