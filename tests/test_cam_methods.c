/* test_cam_methods.c: the CAM family (src/cam_methods.c) and the softmax score's gradient
 * against an independent float64 oracle, and Grad-CAM against the library's own.
 *   - tests/fixtures/cam_methods/ (tests/oracle/make_cam_fixtures.py, torch float64 written
 *     from the papers' formulas): every method's normalised map within 1e-5 of the oracle's,
 *     on 7 shapes (H*W above and below K, 1x1, 1-row, a dead channel, all-negative gradients
 *     whose Grad-CAM is all zero);
 *   - d softmax(z)_c / dz from logits with one huge logit (p_c = 0.99999994 and 1.0 in
 *     float): each element within 1e-6 relative of float64 autograd, where the float
 *     formula p_c (1 - p_c) is shown to be off by more than 10%;
 *   - "gradcam" on the activation and gradient of gcam_state_explain() (the vgg_small
 *     fixture model, 3 classes x 2 score modes): the same raw map, normalised map and max,
 *     bit for bit;
 *   - bad input: unknown method or name, shapes <= 0, work too small, NULLs, sizes that do
 *     not fit in 32 bits. */
#include <string.h>

#include "cam_methods.h"
#include "gcam.h"
#include "ops.h"
#include "test.h"

#define DIR "tests/fixtures/cam_methods/"

static void *read_exact(const char *name, size_t bytes) {
  return test_read_exact(DIR, name, bytes);
}

static void fixture_name(char *out, size_t n, const char *method) {
  size_t j = 0;
  for (size_t i = 0; method[i] && j + 1 < n; i++) out[j++] = method[i] == '+' ? 'p' : method[i];
  out[j] = 0;
}

static void check_cam_case(const char *name, int32_t H, int32_t W, int32_t K) {
  const size_t HW = (size_t)H * W, n = HW * K;
  char fn[128];
  snprintf(fn, sizeof fn, "%s_A.f32", name);
  float *A = read_exact(fn, n * sizeof(float));
  snprintf(fn, sizeof fn, "%s_dA.f32", name);
  float *dA = read_exact(fn, n * sizeof(float));
  float *raw = malloc(HW * sizeof *raw), *norm = malloc(HW * sizeof *norm);
  for (int m = 0; A && dA && m < GCAM__CAM_COUNT; m++) {
    const char *mname = gcam__cam_method_name(m);
    char mf[32];
    fixture_name(mf, sizeof mf, mname);
    snprintf(fn, sizeof fn, "%s_%s.f64", name, mf);
    double *want = read_exact(fn, HW * sizeof(double));
    size_t nw = 0;
    CHECK(gcam__cam_work_doubles(m, H, W, K, &nw) == GCAM_STATUS_OK, "%s work", mname);
    double *work = malloc((nw ? nw : 1) * sizeof *work);
    float mx = -1.0f;
    const gcam_status st = gcam__cam_map(raw, norm, &mx, m, A, dA, H, W, K, work, nw);
    CHECK(st == GCAM_STATUS_OK, "%s on %s: %s", mname, name, gcam_last_error());
    if (want && st == GCAM_STATUS_OK) {
      double worst = 0.0, wmax = 0.0;
      int consistent = 1;
      for (size_t p = 0; p < HW; p++) {
        const double e = fabs((double)norm[p] - want[p]);
        worst = e > worst || e != e ? e : worst;
        wmax = want[p] > wmax ? want[p] : wmax;
        if (raw[p] < 0.0f || raw[p] > mx || norm[p] != (mx > 0.0f ? raw[p] / mx : 0.0f))
          consistent = 0;
      }
      CHECK(worst <= 1e-5, "%s on %s (%dx%dx%d): max|norm - oracle| = %.3g", mname, name, H, W,
            K, worst);
      CHECK(consistent, "%s on %s: raw, norm and max disagree", mname, name);
      printf("%-20s %s %2dx%-2dx%-3d max|err| %.2e%s\n", mname, name, H, W, K, worst,
             wmax == 0.0 ? " (all-zero map)" : "");
    }
    free(want), free(work);
  }
  free(A), free(dA), free(raw), free(norm);
}

static void check_softmax_case(const char *name, int32_t N, int32_t c) {
  char fn[128];
  snprintf(fn, sizeof fn, "%s_z.f32", name);
  float *z = read_exact(fn, (size_t)N * sizeof(float));
  snprintf(fn, sizeof fn, "%s_dz.f64", name);
  double *want = read_exact(fn, (size_t)N * sizeof(double));
  if (z && want) {
    float dz[64], p[64];
    gcam__softmax_backward_onehot_logits(dz, z, N, c);
    gcam__softmax_forward(p, z, N);
    double worst = 0.0, worst_float = 0.0;
    for (int32_t i = 0; i < N; i++) {
      const double s = fabs(want[i]) > 1e-38 ? fabs(want[i]) : 1e-38;
      const double e = fabs(dz[i] - want[i]) / s;
      worst = e > worst || e != e ? e : worst;
      /* what the float probabilities give: p_c (onehot - p) */
      const double f = (double)p[c] * ((i == c ? 1.0 : 0.0) - (double)p[i]);
      const double ef = fabs(f - want[i]) / s;
      worst_float = ef > worst_float ? ef : worst_float;
    }
    CHECK(worst <= 1e-6, "softmax %s (c=%d, p_c=%.9g): max rel err %.3g", name, (int)c,
          (double)p[c], worst);
    printf("softmax %s c=%d p_c=%.9g: rel err %.2e (from float probabilities: %.2e)\n", name,
           (int)c, (double)p[c], worst, worst_float);
    if (p[c] > 0.9999999f)
      CHECK(worst_float > 1e-2, "softmax %s: the saturated case no longer shows the "
            "cancellation (%.3g): the fixture tests nothing", name, worst_float);
  }
  free(z), free(want);
}

static void check_oracle(void) {
  FILE *f = fopen(DIR "manifest.txt", "r");
  CHECK(f != NULL, "%smanifest.txt is missing: run tests/oracle/make_cam_fixtures.py", DIR);
  if (!f) return;
  char buf[256];
  int n_cam = 0, n_sm = 0;
  while (fgets(buf, sizeof buf, f)) {
    char kind[16], name[32];
    int a, b, c;
    if (buf[0] == '#') continue;
    if (sscanf(buf, "%15s %31s %d %d %d", kind, name, &a, &b, &c) >= 4) {
      if (!strcmp(kind, "cam")) check_cam_case(name, a, b, c), n_cam++;
      if (!strcmp(kind, "softmax") && a > 0 && a <= 64) check_softmax_case(name, a, b), n_sm++;
    }
  }
  fclose(f);
  CHECK(n_cam >= 7 && n_sm >= 4, "manifest: %d cam cases, %d softmax cases", n_cam, n_sm);
}

/* ---- gradcam == gcam_state_explain ------------------------------------------------------- */

static void check_against_explain(void) {
  gcam_model_params mp = gcam_model_default_params();
  gcam_model *m = NULL;
  gcam_state *s = NULL;
  if (gcam_model_load_from_file("tests/fixtures/vgg_small/model.gcam", &mp, &m) != GCAM_STATUS_OK) {
    CHECK(0, "vgg_small model: %s", gcam_last_error());
    return;
  }
  gcam_model_info info;
  gcam_model_get_info(m, &info);
  size_t bytes = 0;
  float *x = test_read_file("tests/fixtures/vgg_small/m0_img0_input.f32", &bytes);
  const size_t n_in = (size_t)info.input_width * info.input_height * 3;
  CHECK(x && bytes == n_in * sizeof(float), "m0_img0_input.f32: %zu bytes", bytes);
  if (x && bytes == n_in * sizeof(float) && gcam_state_create(m, &s) == GCAM_STATUS_OK &&
      gcam_state_forward_tensor(s, x) == GCAM_STATUS_OK) {
    const int32_t H = info.cam_height, W = info.cam_width, K = info.cam_channels;
    const size_t HW = (size_t)H * W;
    float *raw = malloc(HW * 4), *norm = malloc(HW * 4), *raw2 = malloc(HW * 4);
    float *norm2 = malloc(HW * 4);
    size_t nw = 0;
    gcam__cam_work_doubles(GCAM__CAM_GRADCAM, H, W, K, &nw);
    double *work = malloc(nw * sizeof *work);
    const int32_t classes[] = {3, 7, 9};
    for (int sc = 0; sc < 2; sc++)
      for (int i = 0; i < 3; i++) {
        const gcam_score score = sc ? GCAM_SCORE_SOFTMAX : GCAM_SCORE_LOGIT;
        float mx = 0.0f, mx2 = 0.0f;
        const float *grad, *act;
        CHECK(gcam_state_explain(s, classes[i], score, raw, norm, &mx) == GCAM_STATUS_OK &&
                  gcam_state_last_gradient(s, &grad, &act) == GCAM_STATUS_OK,
              "explain: %s", gcam_last_error());
        CHECK(gcam__cam_map(raw2, norm2, &mx2, GCAM__CAM_GRADCAM, act, grad, H, W, K, work,
                            nw) == GCAM_STATUS_OK, "gradcam: %s", gcam_last_error());
        CHECK(mx > 0.0f && mx == mx2 && !memcmp(raw, raw2, HW * 4) && !memcmp(norm, norm2, HW * 4),
              "class %d score %d: gradcam differs from gcam_state_explain (max %.9g vs %.9g)",
              (int)classes[i], sc, (double)mx, (double)mx2);
      }
    free(raw), free(norm), free(raw2), free(norm2), free(work);
  } else {
    CHECK(0, "vgg_small forward: %s", gcam_last_error());
  }
  free(x);
  gcam_state_free(s);
  gcam_model_free(m);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void check_bad_input(void) {
  CHECK(gcam__cam_method_from_name("gradcam++") == GCAM__CAM_GRADCAM_PLUSPLUS, "name");
  CHECK(gcam__cam_method_from_name("eigengradcam") == GCAM__CAM_EIGENGRADCAM, "name");
  CHECK(gcam__cam_method_from_name("GradCAM") == -1 && gcam__cam_method_from_name(NULL) == -1 &&
            gcam__cam_method_from_name("scorecam") == -1, "unknown names");
  for (int i = 0; i < GCAM__CAM_COUNT; i++)
    CHECK(gcam__cam_method_from_name(gcam__cam_method_name(i)) == i, "name round trip %d", i);
  CHECK(gcam__cam_method_name(-1) == NULL && gcam__cam_method_name(GCAM__CAM_COUNT) == NULL,
        "names out of range");
  size_t nw = 0;
  CHECK(gcam__cam_work_doubles(GCAM__CAM_COUNT, 2, 2, 2, &nw) == GCAM_STATUS_INVALID_ARGUMENT,
        "unknown method");
  CHECK(gcam__cam_work_doubles(0, 0, 2, 2, &nw) == GCAM_STATUS_INVALID_ARGUMENT &&
            gcam__cam_work_doubles(0, 2, -1, 2, &nw) == GCAM_STATUS_INVALID_ARGUMENT &&
            gcam__cam_work_doubles(0, 2, 2, 0, &nw) == GCAM_STATUS_INVALID_ARGUMENT,
        "shapes <= 0");
  CHECK(gcam__cam_work_doubles(GCAM__CAM_EIGENCAM, 65536, 65536, 512, &nw) ==
            GCAM_STATUS_OUT_OF_MEMORY, "eigen work that does not fit");
  CHECK(gcam__cam_work_doubles(GCAM__CAM_GRADCAM, 46341, 46341, 2, &nw) ==
            GCAM_STATUS_OUT_OF_MEMORY, "a map whose elements do not fit in 31 bits");
  float A[8] = {1, 2, 3, 4, 5, 6, 7, 8}, g[8] = {1, -1, 1, -1, 1, -1, 1, -1}, raw[4];
  double work[64];
  CHECK(gcam__cam_map(raw, NULL, NULL, GCAM__CAM_EIGENCAM, A, NULL, 2, 2, 2, work, 1) ==
            GCAM_STATUS_INVALID_ARGUMENT, "work too small");
  CHECK(gcam__cam_map(raw, NULL, NULL, GCAM__CAM_GRADCAM, A, NULL, 2, 2, 2, work, 64) ==
            GCAM_STATUS_INVALID_ARGUMENT, "gradcam without dA");
  CHECK(gcam__cam_map(NULL, NULL, NULL, GCAM__CAM_GRADCAM, A, g, 2, 2, 2, work, 64) ==
            GCAM_STATUS_INVALID_ARGUMENT, "raw NULL");
  CHECK(gcam__cam_map(raw, NULL, NULL, 99, A, g, 2, 2, 2, work, 64) ==
            GCAM_STATUS_INVALID_ARGUMENT, "method 99");
  CHECK(gcam__cam_map(raw, NULL, NULL, GCAM__CAM_EIGENCAM, A, NULL, 2, 2, 2, work, 64) ==
            GCAM_STATUS_OK, "eigencam needs no gradient: %s", gcam_last_error());
}

int main(void) {
  check_bad_input();
  check_oracle();
  check_against_explain();
  TEST_MAIN_END();
}
