/* bench_evaluate.c: what gcam_state_evaluate() costs, next to the forward it is made of.
 *
 *   bench_evaluate [--weights FILE (weights/small/fashion_vgg.gcam)] [--steps N (32)]
 *                  [--reps N (3)] [--backend portable|xnnpack|auto] [--no-randomization]
 *
 * On a VGG16-size file (weights/make_random.py --arch vgg16, or the cached random VGG16 of
 * tests/js/helpers.mjs) it gives the figure docs/methods.md quotes: milliseconds per deletion
 * curve of 32 steps. A deletion curve is `steps` forwards plus one to restore the image's
 * forward (its first point is the forward already in the state); an insertion curve one more.
 * One thread; each figure is the median CPU time of the thread over --reps runs, after a
 * warm-up (the randomization check runs once: it copies the weights and redraws every layer).
 * Not a test: it prints figures and exits 0 unless something failed to run. */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cpu_time.h"
#include "gcam.h"
#include "state.h" /* s->input: forwards of the preprocessed tensor alone */

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int fail(const char *what) {
  fprintf(stderr, "bench_evaluate: %s: %s\n", what, gcam_last_error());
  return 1;
}

int main(int argc, char **argv) {
  const char *path = "weights/small/fashion_vgg.gcam";
  int steps = 32, reps = 3, randomization = 1;
  gcam_model_params mp = gcam_model_default_params();
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--weights") && i + 1 < argc) path = argv[++i];
    else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--no-randomization")) randomization = 0;
    else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
      const char *b = argv[++i];
      mp.backend = !strcmp(b, "portable") ? GCAM_BACKEND_PORTABLE
                   : !strcmp(b, "xnnpack") ? GCAM_BACKEND_XNNPACK
                                           : GCAM_BACKEND_AUTO;
    } else {
      fprintf(stderr, "usage: bench_evaluate [--weights FILE] [--steps N] [--reps N] "
                      "[--backend portable|xnnpack|auto] [--no-randomization]\n");
      return 2;
    }
  }
  if (reps < 1 || reps > 101) reps = 3;
  gcam_model *m;
  if (gcam_model_load_from_file(path, &mp, &m)) return fail(path);
  gcam_model_info info;
  gcam_model_get_info(m, &info);
  gcam_state *s;
  if (gcam_state_create(m, &s)) return fail("state");
  const int32_t W = info.input_width, H = info.input_height;
  uint8_t *rgba = malloc((size_t)W * H * 4);
  unsigned seed = 12345;
  for (size_t i = 0; i < (size_t)W * H * 4; i++) {
    seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
    rgba[i] = (uint8_t)(seed >> 24);
  }
  if (gcam_state_forward_rgba(s, rgba, W, H, W * 4)) return fail("forward");
  int32_t top;
  gcam_state_top_k(s, 1, &top);
  float *cam = malloc(sizeof(float) * (size_t)info.cam_width * info.cam_height);
  if (gcam_state_explain(s, top, GCAM_SCORE_LOGIT, NULL, cam, NULL)) return fail("explain");
  gcam_state *s2; /* forwards timed on their own state */
  if (gcam_state_create(m, &s2) || gcam_state_forward_rgba(s2, rgba, W, H, W * 4))
    return fail("second state");
  printf("%s: %dx%d input, %d conv + %d dense, backend %s, %d steps, median of %d runs (CPU "
         "time of this thread)\n",
         path, W, H, info.n_conv, info.n_dense,
         info.backend == GCAM_BACKEND_XNNPACK ? "xnnpack" : "portable", steps, reps);

  double t[101];
  /* one forward of the image (the unit every curve is made of) */
  for (int r = 0; r <= reps; r++) {
    const double t0 = cpu_s();
    if (gcam_state_forward_tensor(s2, s2->input)) return fail("forward");
    if (r) t[r - 1] = cpu_s() - t0;
  }
  qsort(t, (size_t)reps, sizeof t[0], cmp_double);
  const double forward_ms = 1e3 * t[reps / 2];
  printf("  forward of the preprocessed tensor          %9.1f ms\n", forward_ms);

  static const struct {
    const char *name;
    gcam_metric metric;
    gcam_baseline baseline;
  } curves[] = {{"deletion, blur baseline", GCAM_METRIC_DELETION, GCAM_BASELINE_BLUR},
                {"deletion, mean baseline", GCAM_METRIC_DELETION, GCAM_BASELINE_MEAN},
                {"insertion, blur baseline", GCAM_METRIC_INSERTION, GCAM_BASELINE_BLUR}};
  gcam_evaluate_result res;
  for (size_t c = 0; c < sizeof curves / sizeof curves[0]; c++) {
    gcam_evaluate_params p = gcam_evaluate_default_params();
    p.metric = curves[c].metric, p.baseline = curves[c].baseline, p.steps = steps;
    for (int r = 0; r <= reps; r++) {
      const double t0 = cpu_s();
      if (gcam_state_evaluate(s, top, cam, info.cam_width, info.cam_height, NULL, &p, &res))
        return fail(curves[c].name);
      if (r) t[r - 1] = cpu_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    const int forwards = steps + (curves[c].metric == GCAM_METRIC_INSERTION) + 1;
    printf("  %-26s %3d steps %9.1f ms  (%d forwards: %.2f x the forward's time; AUC %.4f)\n",
           curves[c].name, steps, 1e3 * t[reps / 2], forwards,
           1e3 * t[reps / 2] / forward_ms, res.auc);
  }
  if (randomization) {
    gcam_evaluate_params p = gcam_evaluate_default_params();
    p.metric = GCAM_METRIC_RANDOMIZATION;
    const double t0 = cpu_s();
    if (gcam_state_evaluate(s, top, cam, info.cam_width, info.cam_height, NULL, &p, &res))
      return fail("randomization");
    printf("  randomization (Grad-CAM, %d layers, once)  %9.1f ms  (head randomized: %.3f)\n",
           res.n_points, 1e3 * (cpu_s() - t0), res.curve[info.n_dense - 1]);
  }
  free(rgba), free(cam);
  gcam_state_free(s2);
  gcam_state_free(s);
  gcam_model_free(m);
  return 0;
}
