/* bench_vgg16.c: VGG16 at full size, layer by layer, our ops next to XNNPACK's in the same
 * run; then, with --weights FILE, the whole public-API pipeline with both backends.
 *
 *   bench_vgg16 [--reps N (7)] [--skip-layers] [--weights FILE] [--pipeline-reps N (9)]
 *
 * Part 1 uses seeded random weights and inputs (uniform; post-ReLU-like inputs in [0,1), so
 * no denormals). Each layer runs once to warm up, then N times with ours and XNNPACK
 * interleaved, so both see the same machine load; we report the median. GFLOP/s counts
 * 2*MACs per second (a conv is 2*H*W*9*C*OC flops, a dense 2*IN*OUT; pools have none): the
 * direct algorithm's count, so a kernel that does fewer multiplications (Winograd) shows an
 * effective rate.
 * "diff" is max |ours - xnn| / max(|xnn|, 1) on the layer's output: the two backends
 * cross-check each other here too. Both backends run single-threaded.
 *
 * Part 2 (--weights: a VGG16 gcam file, e.g. `weights/make_random.py --arch vgg16 F`)
 * times gcam_model_load_from_file (one run), gcam_state_forward_tensor, gcam_state_explain
 * of the top class alone, and forward + top_k + explain together, with
 * GCAM_BACKEND_PORTABLE and GCAM_BACKEND_XNNPACK (both models loaded, runs alternating),
 * and checks that the two backends agree on the logits and the heatmap.
 *
 * Not a test: it prints figures and exits 0 unless something failed to run. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gcam.h"
#include "ops.h"
#ifdef GCAM_HAVE_XNNPACK
#include "xnn_peer.h"
#endif

enum { MAX_REPS = 101, EXTRA_FLOATS = 16 };

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static unsigned rng_state = 20240601u;

static void fill_uniform(float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) {
    unsigned s = rng_state;
    s ^= s << 13, s ^= s >> 17, s ^= s << 5;
    rng_state = s;
    x[i] = lo + (hi - lo) * (float)((s >> 8) * (1.0 / 16777216.0));
  }
}

/* with slack after the end: XNNPACK may read up to 16 bytes past an input */
static float *alloc_floats(size_t n) {
  float *p = malloc(sizeof(float) * (n + EXTRA_FLOATS));
  if (!p) {
    fprintf(stderr, "bench_vgg16: out of memory (%zu floats)\n", n);
    exit(1);
  }
  return p;
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]), s = fabs((double)b[i]);
    double e = d / (s > 1.0 ? s : 1.0);
    if (!(e <= worst)) worst = e; /* NaN sticks */
  }
  return worst;
}

/* ---- part 1: layer by layer ---------------------------------------------------------------- */

typedef enum { CONV, POOL, DENSE } layer_kind;

typedef struct {
  const char *name;
  layer_kind kind;
  int32_t H, W, C, OC; /* conv/pool: input (H,W,C), conv output OC; dense: IN = C, OUT = OC */
  int relu;
} layer;

static const layer VGG16[] = {
    {"conv1_1", CONV, 224, 224, 3, 64, 1},    {"conv1_2", CONV, 224, 224, 64, 64, 1},
    {"pool1", POOL, 224, 224, 64, 64, 0},     {"conv2_1", CONV, 112, 112, 64, 128, 1},
    {"conv2_2", CONV, 112, 112, 128, 128, 1}, {"pool2", POOL, 112, 112, 128, 128, 0},
    {"conv3_1", CONV, 56, 56, 128, 256, 1},   {"conv3_2", CONV, 56, 56, 256, 256, 1},
    {"conv3_3", CONV, 56, 56, 256, 256, 1},   {"pool3", POOL, 56, 56, 256, 256, 0},
    {"conv4_1", CONV, 28, 28, 256, 512, 1},   {"conv4_2", CONV, 28, 28, 512, 512, 1},
    {"conv4_3", CONV, 28, 28, 512, 512, 1},   {"pool4", POOL, 28, 28, 512, 512, 0},
    {"conv5_1", CONV, 14, 14, 512, 512, 1},   {"conv5_2", CONV, 14, 14, 512, 512, 1},
    {"conv5_3", CONV, 14, 14, 512, 512, 1},   {"pool5", POOL, 14, 14, 512, 512, 0},
    {"fc6", DENSE, 1, 1, 25088, 4096, 1},     {"fc7", DENSE, 1, 1, 4096, 4096, 1},
    {"fc8", DENSE, 1, 1, 4096, 1000, 0},
};
enum { N_LAYERS = sizeof VGG16 / sizeof VGG16[0] };

typedef struct {
  double ours_ms, xnn_ms, flops, diff; /* xnn_ms < 0: not measured */
} layer_result;

static size_t out_floats(const layer *l) {
  switch (l->kind) {
    case CONV: return (size_t)l->H * l->W * l->OC;
    case POOL: return (size_t)(l->H / 2) * (l->W / 2) * l->C;
    case DENSE: return (size_t)l->OC;
  }
  return 0;
}

static double layer_flops(const layer *l) {
  switch (l->kind) {
    case CONV: return 2.0 * l->H * l->W * 9.0 * l->C * l->OC;
    case POOL: return 0.0;
    case DENSE: return 2.0 * l->C * l->OC;
  }
  return 0.0;
}

/* one layer: ours and XNNPACK's, warm-up then `reps` interleaved runs */
static int bench_layer(const layer *l, int reps, layer_result *r) {
  size_t nin = l->kind == DENSE ? (size_t)l->C : (size_t)l->H * l->W * l->C;
  size_t nout = out_floats(l), nw = 0;
  if (l->kind == CONV) nw = (size_t)9 * l->C * l->OC;
  if (l->kind == DENSE) nw = (size_t)l->C * l->OC;
  float *in = alloc_floats(nin), *out_ours = alloc_floats(nout), *out_xnn = alloc_floats(nout);
  float *w = nw ? alloc_floats(nw) : NULL, *b = alloc_floats((size_t)l->OC);
  float *packed = NULL, *scratch = NULL;
  fill_uniform(in, nin, 0.0f, 1.0f);
  if (w) {
    float scale = sqrtf(6.0f / (float)(nw / (size_t)l->OC)); /* He-uniform */
    fill_uniform(w, nw, -scale, scale);
  }
  fill_uniform(b, (size_t)l->OC, -0.1f, 0.1f);
  if (l->kind == CONV) {
    packed = alloc_floats(gcam__conv3x3_packed_floats(l->C, l->OC));
    scratch = alloc_floats(gcam__conv3x3_scratch_floats(l->H, l->W, l->C, l->OC));
    gcam__conv3x3_pack(packed, w, b, l->C, l->OC);
  }

  int ok = 1;
  int have_xnn = 0;
#ifdef GCAM_HAVE_XNNPACK
  gcam_xnn_conv *xconv = NULL;
  gcam_xnn_maxpool *xpool = NULL;
  gcam_xnn_dense *xdense = NULL;
  gcam_status st = GCAM_STATUS_OK;
  if (l->kind == CONV) st = gcam__xnn_conv3x3_relu_create(&xconv, w, b, l->C, l->OC);
  if (l->kind == POOL) st = gcam__xnn_maxpool2x2_create(&xpool, l->C);
  if (l->kind == DENSE) st = gcam__xnn_dense_create(&xdense, w, b, l->C, l->OC, l->relu);
  if (st != GCAM_STATUS_OK)
    fprintf(stderr, "bench_vgg16: %s: XNNPACK create: %s\n", l->name, gcam_last_error());
  have_xnn = st == GCAM_STATUS_OK;
#endif

  double t_ours[MAX_REPS], t_xnn[MAX_REPS];
  for (int rep = -1; rep < reps; rep++) { /* rep -1 warms up */
    double t0 = now_ms();
    switch (l->kind) {
      case CONV:
        gcam__conv3x3_relu_forward(out_ours, in, packed, l->H, l->W, l->C, l->OC, scratch);
        break;
      case POOL: gcam__maxpool2x2_forward(out_ours, NULL, in, l->H, l->W, l->C); break;
      case DENSE: gcam__dense_forward(out_ours, in, w, b, l->C, l->OC, l->relu); break;
    }
    double t1 = now_ms();
    if (rep >= 0) t_ours[rep] = t1 - t0;
#ifdef GCAM_HAVE_XNNPACK
    if (have_xnn) {
      t0 = now_ms();
      if (l->kind == CONV) st = gcam__xnn_conv3x3_relu_run(xconv, out_xnn, in, l->H, l->W);
      if (l->kind == POOL) st = gcam__xnn_maxpool2x2_run(xpool, out_xnn, in, l->H, l->W);
      if (l->kind == DENSE) st = gcam__xnn_dense_run(xdense, out_xnn, in);
      t1 = now_ms();
      if (st != GCAM_STATUS_OK) {
        fprintf(stderr, "bench_vgg16: %s: XNNPACK run: %s\n", l->name, gcam_last_error());
        have_xnn = 0, ok = 0;
      }
      if (rep >= 0) t_xnn[rep] = t1 - t0;
    }
#endif
  }
  r->ours_ms = median(t_ours, reps);
  r->xnn_ms = have_xnn ? median(t_xnn, reps) : -1.0;
  r->flops = layer_flops(l);
  r->diff = have_xnn ? max_rel_diff(out_ours, out_xnn, nout) : -1.0;

#ifdef GCAM_HAVE_XNNPACK
  gcam__xnn_conv_delete(xconv);
  gcam__xnn_maxpool_delete(xpool);
  gcam__xnn_dense_delete(xdense);
#endif
  free(in), free(out_ours), free(out_xnn), free(w), free(b), free(packed), free(scratch);
  return ok;
}

static void print_ms_gflops(double ms, double flops) {
  if (ms < 0)
    printf(" %9s %8s", "n/a", "");
  else if (flops > 0)
    printf(" %9.3f %8.1f", ms, flops / (ms * 1e6));
  else
    printf(" %9.3f %8s", ms, "-");
}

/* a summary row; xnn_ms < 0 when XNNPACK did not run every layer */
static void print_total(const char *name, const char *what, double flops, double ours_ms,
                        double xnn_ms) {
  printf("%-8s %-18s %7.3f |", name, what, flops * 1e-9);
  print_ms_gflops(ours_ms, flops);
  printf(" |");
  print_ms_gflops(xnn_ms, flops);
  if (xnn_ms >= 0) printf(" | %7.2fx\n", ours_ms / xnn_ms);
  else printf(" |\n");
}

static int bench_layers(int reps) {
  layer_result res[N_LAYERS];
  double sum_ours = 0, sum_xnn = 0, sum_flops = 0, conv_ours = 0, conv_xnn = 0, conv_flops = 0;
  int ok = 1, xnn_all = 1;
  printf("VGG16 forward, 224x224x3, batch 1, single thread: median of %d runs (after 1 warm-up)\n",
         reps);
  printf("%-8s %-18s %7s | %9s %8s | %9s %8s | %8s %9s\n", "layer", "in -> out", "GFLOP",
         "ours ms", "GFLOP/s", "xnn ms", "GFLOP/s", "ours/xnn", "diff");
  for (int i = 0; i < N_LAYERS; i++) {
    const layer *l = &VGG16[i];
    layer_result *r = &res[i];
    ok &= bench_layer(l, reps, r);
    char shape[40];
    if (l->kind == DENSE)
      snprintf(shape, sizeof shape, "%d -> %d", (int)l->C, (int)l->OC);
    else
      snprintf(shape, sizeof shape, "%dx%dx%d -> %d", (int)l->H, (int)l->W, (int)l->C,
               (int)(l->kind == CONV ? l->OC : l->C));
    printf("%-8s %-18s %7.3f |", l->name, shape, r->flops * 1e-9);
    print_ms_gflops(r->ours_ms, r->flops);
    printf(" |");
    print_ms_gflops(r->xnn_ms, r->flops);
    if (r->xnn_ms > 0)
      printf(" | %7.2fx %9.2e\n", r->ours_ms / r->xnn_ms, r->diff);
    else
      printf(" | %8s %9s\n", "n/a", "n/a");
    fflush(stdout);
    sum_ours += r->ours_ms, sum_flops += r->flops;
    if (r->xnn_ms >= 0) sum_xnn += r->xnn_ms;
    else xnn_all = 0;
    if (l->kind == CONV) {
      conv_ours += r->ours_ms, conv_flops += r->flops;
      if (r->xnn_ms >= 0) conv_xnn += r->xnn_ms;
    }
  }
  print_total("convs", "13 layers", conv_flops, conv_ours, xnn_all ? conv_xnn : -1.0);
  print_total("total", "21 layers", sum_flops, sum_ours, xnn_all ? sum_xnn : -1.0);
  printf("(ours/xnn = our time / XNNPACK's time: > 1 means XNNPACK is faster; diff = max "
         "|ours-xnn|/max(|xnn|,1);\n GFLOP/s = direct-conv flops / time, an effective rate "
         "for a Winograd kernel)\n");
  return ok;
}

/* ---- part 2: the public API ------------------------------------------------------------------ */

#ifndef GCAM_BENCH_NO_PIPELINE

enum { N_BACKENDS = 3 };
/* [0] and [1] are compared below; [2] is our kernels with compact conv weights
 * (GCAM_MEMORY_COMPACT: transformed as each layer runs), timed in the same alternation */
static const struct {
  gcam_backend backend;
  gcam_memory memory;
  const char *name;
} BACKENDS[N_BACKENDS] = {{GCAM_BACKEND_PORTABLE, GCAM_MEMORY_FAST, "PORTABLE"},
                          {GCAM_BACKEND_XNNPACK, GCAM_MEMORY_FAST, "XNNPACK"},
                          {GCAM_BACKEND_PORTABLE, GCAM_MEMORY_COMPACT, "COMPACT"}};

typedef struct {
  gcam_model *model;
  gcam_state *state;
  int32_t top, n_classes, n_cam;
  float *cam;
  double load_ms, t_fwd[MAX_REPS], t_exp[MAX_REPS], t_both[MAX_REPS];
} pipeline;

static int fail_api(const char *backend, const char *what, gcam_status st) {
  fprintf(stderr, "bench_vgg16: %s: %s: %s: %s\n", backend, what, gcam_status_string(st),
          gcam_last_error());
  return 0;
}

static int pipeline_open(pipeline *p, const char *path, int b) {
  gcam_model_params mp = gcam_model_default_params();
  mp.backend = BACKENDS[b].backend;
  mp.memory = BACKENDS[b].memory;
  double t0 = now_ms();
  gcam_status st = gcam_model_load_from_file(path, &mp, &p->model);
  p->load_ms = now_ms() - t0;
  if (st != GCAM_STATUS_OK) return fail_api(BACKENDS[b].name, "gcam_model_load_from_file", st);
  gcam_model_info info;
  if ((st = gcam_model_get_info(p->model, &info)) != GCAM_STATUS_OK)
    return fail_api(BACKENDS[b].name, "gcam_model_get_info", st);
  if ((st = gcam_state_create(p->model, &p->state)) != GCAM_STATUS_OK)
    return fail_api(BACKENDS[b].name, "gcam_state_create", st);
  p->n_classes = info.n_classes;
  p->n_cam = info.cam_height * info.cam_width;
  p->cam = alloc_floats((size_t)p->n_cam);
  return 1;
}

/* One timed step of one backend: 0 forward, 1 explain of the top class alone (one forward
 * serves any number of explains), 2 forward + top_k + explain. */
static int pipeline_step(pipeline *p, int b, int step, const float *input, double *ms) {
  float raw_max;
  gcam_status st = GCAM_STATUS_OK;
  double t0 = now_ms();
  if (step != 1) st = gcam_state_forward_tensor(p->state, input);
  if (st == GCAM_STATUS_OK && step != 1) st = gcam_state_top_k(p->state, 1, &p->top);
  if (st == GCAM_STATUS_OK && step != 0)
    st = gcam_state_explain(p->state, p->top, GCAM_SCORE_LOGIT, NULL, p->cam, &raw_max);
  *ms = now_ms() - t0;
  return st == GCAM_STATUS_OK ? 1 : fail_api(BACKENDS[b].name, "forward/top_k/explain", st);
}

/* Both models are loaded side by side and every step alternates between the backends, so
 * both see the same machine load. */
static int bench_pipeline(const char *path, int reps) {
  pipeline p[N_BACKENDS];
  int live[N_BACKENDS], ok = 1;
  float *input = NULL;
  memset(p, 0, sizeof p);
  printf("\nPublic API on %s: median of %d runs (after 1 warm-up), backends alternating;\n"
         "load is one run\n", path, reps);
  for (int b = 0; b < N_BACKENDS; b++) {
    live[b] = pipeline_open(&p[b], path, b);
    if (!live[b]) {
      gcam_state_free(p[b].state), p[b].state = NULL;
      gcam_model_free(p[b].model), p[b].model = NULL;
    }
  }
  if (live[0] && live[1] && p[0].n_cam != p[1].n_cam) live[1] = 0;
  for (int b = 0; b < N_BACKENDS; b++)
    if (live[b] && !input) {
      gcam_model_info info;
      gcam_model_get_info(p[b].model, &info);
      size_t nin = (size_t)info.input_height * info.input_width * 3;
      input = alloc_floats(nin);
      fill_uniform(input, nin, -120.0f, 130.0f); /* the range of caffe-preprocessed pixels */
    }
  for (int step = 0; step < 3 && input; step++)
    for (int rep = -1; rep < reps; rep++)
      for (int b = 0; b < N_BACKENDS; b++) {
        if (!live[b]) continue;
        double ms, *t = step == 0 ? p[b].t_fwd : step == 1 ? p[b].t_exp : p[b].t_both;
        live[b] = pipeline_step(&p[b], b, step, input, &ms);
        if (rep >= 0) t[rep] = ms;
      }

  printf("%-9s | %10s | %10s | %10s | %18s | %5s | %9s\n", "backend", "load ms", "forward ms",
         "explain ms", "forward+explain ms", "top", "weight MB");
  for (int b = 0; b < N_BACKENDS; b++) {
    if (!live[b]) {
      printf("%-9s | failed (see stderr)\n", BACKENDS[b].name);
      continue;
    }
    gcam_model_info info;
    gcam_model_get_info(p[b].model, &info);
    printf("%-9s | %10.1f | %10.1f | %10.1f | %18.1f | %5d | %9.0f\n", BACKENDS[b].name,
           p[b].load_ms, median(p[b].t_fwd, reps), median(p[b].t_exp, reps),
           median(p[b].t_both, reps), (int)p[b].top, (double)info.weight_bytes / 1048576.0);
  }
  if (live[0] && live[1]) {
    const float *l0, *l1;
    double dl = -1.0;
    if (gcam_state_logits(p[0].state, &l0) == GCAM_STATUS_OK &&
        gcam_state_logits(p[1].state, &l1) == GCAM_STATUS_OK)
      dl = max_rel_diff(l1, l0, (size_t)p[0].n_classes);
    double dc = max_rel_diff(p[1].cam, p[0].cam, (size_t)p[0].n_cam);
    printf("XNNPACK vs PORTABLE: logits max diff %.2e, normalised heatmap max diff %.2e, "
           "top class %s\n",
           dl, dc, p[0].top == p[1].top ? "same" : "DIFFERENT");
    printf("forward: PORTABLE time / XNNPACK time = %.2fx\n",
           median(p[0].t_fwd, reps) / median(p[1].t_fwd, reps));
  }
  if (live[0] && live[2])
    printf("forward+explain: COMPACT time / PORTABLE time = %.2fx\n",
           median(p[2].t_both, reps) / median(p[0].t_both, reps));
  ok = live[0] && live[2];
#ifdef GCAM_HAVE_XNNPACK
  ok &= live[1];
#endif
  for (int b = 0; b < N_BACKENDS; b++) {
    free(p[b].cam);
    gcam_state_free(p[b].state);
    gcam_model_free(p[b].model);
  }
  free(input);
  return ok;
}
#endif /* GCAM_BENCH_NO_PIPELINE */

static int parse_reps(const char *s, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 1 || v > MAX_REPS) return 0;
  *out = (int)v;
  return 1;
}

int main(int argc, char **argv) {
  int reps = 7, pipeline_reps = 9, skip_layers = 0;
  const char *weights = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--reps") && i + 1 < argc && parse_reps(argv[i + 1], &reps)) {
      i++;
    } else if (!strcmp(argv[i], "--pipeline-reps") && i + 1 < argc &&
               parse_reps(argv[i + 1], &pipeline_reps)) {
      i++;
    } else if (!strcmp(argv[i], "--weights") && i + 1 < argc) {
      weights = argv[++i];
    } else if (!strcmp(argv[i], "--skip-layers")) {
      skip_layers = 1;
    } else {
      fprintf(stderr,
              "usage: %s [--reps N] [--skip-layers] [--weights FILE.gcam] [--pipeline-reps N]"
              "   (1 <= N <= %d)\n",
              argv[0], MAX_REPS);
      return 2;
    }
  }
#ifndef GCAM_HAVE_XNNPACK
  printf("(built without XNNPACK: our kernels only)\n");
#endif
  int ok = 1;
  if (!skip_layers) ok &= bench_layers(reps);
  if (weights) {
#ifndef GCAM_BENCH_NO_PIPELINE
    ok &= bench_pipeline(weights, pipeline_reps);
#else
    fprintf(stderr, "bench_vgg16: built with GCAM_BENCH_NO_PIPELINE: --weights ignored\n");
#endif
  }
  return ok ? 0 : 1;
}
