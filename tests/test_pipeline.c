/* test_pipeline.c: the whole library against torch autograd and OpenCV.
 *
 * tests/fixtures/vgg_small/ (made by tests/oracle/make_fixtures.py, see its README) holds two
 * reduced-width VGG16s with seeded random weights, two odd-sized images, and what torch
 * (float64) and OpenCV compute for them: logits, probabilities, and per class and score mode
 * the gradient at the last conv, the raw and normalized Grad-CAM maps and the blended overlay.
 *
 * Tolerances (the issue's): logits 1e-4 relative to the largest logit; normalized maps 1e-3
 * absolute; raw maps 1e-3 relative to their max; gradients 1e-4 relative to their largest
 * element; overlay pixels within 1 grey level of OpenCV's. Each runs on every backend built,
 * and the portable one in both memory modes (GCAM_MEMORY_FAST and _COMPACT). */
#include <string.h>

#include "gcam.h"
#include "test.h"

#define DIR "tests/fixtures/vgg_small/"
#define MAX_LINES 256

typedef struct line {
  char w[14][80]; /* w[0] is the kind: model, image, input, logits, probs, top5, explain ... */
  int n;
} line;

static line lines[MAX_LINES];
static int n_lines;

static int read_manifest(void) {
  FILE *f = fopen(DIR "manifest.txt", "r");
  if (!f) return 0;
  char buf[1024];
  while (n_lines < MAX_LINES && fgets(buf, sizeof buf, f)) {
    line *l = &lines[n_lines];
    l->n = 0;
    for (char *tok = strtok(buf, " \t\n"); tok && l->n < 14; tok = strtok(NULL, " \t\n"))
      snprintf(l->w[l->n++], sizeof l->w[0], "%s", tok);
    if (l->n > 0) n_lines++;
  }
  fclose(f);
  return n_lines;
}

static float *read_f32(const char *name, size_t want) {
  char path[256];
  snprintf(path, sizeof path, DIR "%s", name);
  size_t size;
  float *x = test_read_file(path, &size);
  CHECK(x && size == want * sizeof(float), "%s: %zu bytes, want %zu", path, x ? size : 0,
        want * sizeof(float));
  if (x && size != want * sizeof(float)) {
    free(x);
    return NULL;
  }
  return x;
}

static uint8_t *decode(const char *name, int32_t *w, int32_t *h) {
  char path[256];
  snprintf(path, sizeof path, DIR "%s", name);
  size_t size;
  void *bytes = test_read_file(path, &size);
  uint8_t *rgba = NULL;
  gcam_status st = bytes ? gcam_image_decode(bytes, size, GCAM_MAX_IMAGE_PIXELS, &rgba, w, h)
                         : GCAM_STATUS_IO;
  CHECK(st == GCAM_STATUS_OK, "decode %s: %s", path, gcam_last_error());
  free(bytes);
  return st ? NULL : rgba;
}

static double max_abs(const float *x, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++)
    if (fabs(x[i]) > m) m = fabs(x[i]);
  return m;
}

static const line *find(const char *kind, const char *m, const char *img) {
  for (int i = 0; i < n_lines; i++)
    if (!strcmp(lines[i].w[0], kind) && !strcmp(lines[i].w[1], m) && !strcmp(lines[i].w[2], img))
      return &lines[i];
  return NULL;
}

/* overlay of `cam` against OpenCV's png: max difference in grey levels */
static int overlay_diff(const uint8_t *rgba, int32_t w, int32_t h, const float *cam,
                        const char *png) {
  int32_t ow, oh;
  uint8_t *want = decode(png, &ow, &oh);
  if (!want) return 255;
  uint8_t *got = malloc((size_t)w * h * 4);
  gcam_overlay_params op = gcam_overlay_default_params();
  gcam_status st = gcam_overlay_rgba(got, rgba, w, h, w * 4, cam, 14, 14, &op);
  CHECK(st == GCAM_STATUS_OK && ow == w && oh == h, "overlay %s: %s", png, gcam_last_error());
  int worst = 0;
  for (size_t i = 0; !st && i < (size_t)w * h * 4; i++) {
    if (i % 4 == 3) continue;
    int d = abs((int)got[i] - (int)want[i]);
    if (d > worst) worst = d;
  }
  free(got);
  gcam_image_free(want);
  return worst;
}

/* every `explain` line of (model, image) on a state that ran forward on that image */
static void check_explanations(gcam_state *s, const char *mtag, const char *img, const char *who,
                               const uint8_t *rgba, int32_t w, int32_t h, int cam_c) {
  const size_t hw = 14 * 14, n_grad = hw * (size_t)cam_c;
  float raw[14 * 14], norm[14 * 14], raw_max;
  for (int i = 0; i < n_lines; i++) {
    const line *l = &lines[i];
    if (strcmp(l->w[0], "explain") || strcmp(l->w[1], mtag) || strcmp(l->w[2], img)) continue;
    gcam_score score = !strcmp(l->w[3], "softmax") ? GCAM_SCORE_SOFTMAX : GCAM_SCORE_LOGIT;
    int32_t cls = atoi(l->w[4]);
    gcam_status st = gcam_state_explain(s, cls, score, raw, norm, &raw_max);
    CHECK(st == GCAM_STATUS_OK, "%s explain %d: %s", who, cls, gcam_last_error());
    if (st) continue;
    double want_max = atof(l->w[5]);
    CHECK(fabs(raw_max - want_max) <= 1e-3 * want_max, "%s %s %s class %d: raw max %.9g, torch %.9g",
          who, img, l->w[3], cls, raw_max, want_max);
    if (strcmp(l->w[6], "-")) {
      float *g = read_f32(l->w[6], n_grad);
      const float *grad, *act;
      CHECK(gcam_state_last_gradient(s, &grad, &act) == GCAM_STATUS_OK, "%s last gradient: %s",
            who, gcam_last_error());
      double e = g ? test_max_abs_err(grad, g, n_grad) / max_abs(g, n_grad) : 1;
      CHECK(e <= 1e-4, "%s %s %s class %d: gradient rel err %.3g", who, img, l->w[3], cls, e);
      free(g);
    }
    float *want_raw = read_f32(l->w[7], hw), *want_norm = read_f32(l->w[8], hw);
    if (want_raw && want_norm) {
      double e_raw = test_max_abs_err(raw, want_raw, hw) / (want_max > 0 ? want_max : 1);
      double e_norm = test_max_abs_err(norm, want_norm, hw);
      CHECK(e_raw <= 1e-3, "%s %s %s class %d: raw map rel err %.3g", who, img, l->w[3], cls, e_raw);
      CHECK(e_norm <= 1e-3, "%s %s %s class %d: map err %.3g", who, img, l->w[3], cls, e_norm);
      if (strcmp(l->w[9], "-") && rgba) {
        int d_ref = overlay_diff(rgba, w, h, want_norm, l->w[9]);
        CHECK(d_ref <= 1, "%s %s: overlay of torch's map differs from OpenCV by %d levels", who,
              l->w[9], d_ref);
        /* our map is within 1e-3 of torch's, so uint8(255 * heat) may differ by one level
         * where it rounds; one JET level is at most 4 levels of a channel (255 over 64
         * steps), blended at 0.4: at most 2 grey levels */
        int d_ours = overlay_diff(rgba, w, h, norm, l->w[9]);
        CHECK(d_ours <= 2, "%s %s: overlay of our map differs from OpenCV by %d levels", who,
              l->w[9], d_ours);
        printf("%s %s: overlay within %d (torch's map) / %d (our map) grey levels of OpenCV\n",
               who, l->w[9], d_ref, d_ours);
      }
    }
    free(want_raw);
    free(want_norm);
  }
}

static void check_logits(gcam_state *s, const char *mtag, const char *img, const char *who) {
  const line *ll = find("logits", mtag, img), *lp = find("probs", mtag, img),
             *lt = find("top5", mtag, img);
  CHECK(ll && lp && lt, "manifest lacks logits/probs/top5 for %s %s", mtag, img);
  if (!ll || !lp || !lt) return;
  float *z = read_f32(ll->w[3], 10), *p = read_f32(lp->w[3], 10);
  const float *gz, *gp;
  CHECK(gcam_state_logits(s, &gz) == GCAM_STATUS_OK, "%s logits: %s", who, gcam_last_error());
  CHECK(gcam_state_probabilities(s, &gp) == GCAM_STATUS_OK, "%s probabilities: %s", who,
        gcam_last_error());
  if (z && p) {
    double e = test_max_abs_err(gz, z, 10) / max_abs(z, 10);
    CHECK(e <= 1e-4, "%s %s %s: logits rel err %.3g", who, mtag, img, e);
    CHECK(test_max_abs_err(gp, p, 10) <= 1e-5, "%s %s: probabilities", who, img);
    printf("%s %s %s: logits within %.2g of torch (relative to the largest)\n", who, mtag, img, e);
  }
  int32_t top[5];
  CHECK(gcam_state_top_k(s, 5, top) == GCAM_STATUS_OK, "%s top-5: %s", who, gcam_last_error());
  int32_t want[5] = {atoi(lt->w[3]), atoi(lt->w[4]), atoi(lt->w[5]), atoi(lt->w[6]), atoi(lt->w[7])};
  CHECK(memcmp(top, want, sizeof top) == 0, "%s %s %s: top-5 %d %d %d %d %d", who, mtag, img,
        top[0], top[1], top[2], top[3], top[4]);
  free(z);
  free(p);
}

/* one forward, several classes, must equal one fresh forward per class */
static void check_topk_equals_single(const gcam_model *m, const uint8_t *rgba, int32_t w,
                                     int32_t h, const char *who) {
  gcam_state *s;
  int32_t top[3];
  float maps[3][196], one[196];
  if (gcam_state_create(m, &s) || gcam_state_forward_rgba(s, rgba, w, h, w * 4) ||
      gcam_state_top_k(s, 3, top)) {
    CHECK(0, "%s: forward for top-k: %s", who, gcam_last_error());
    gcam_state_free(s);
    return;
  }
  for (int k = 0; k < 3; k++)
    CHECK(gcam_state_explain(s, top[k], GCAM_SCORE_SOFTMAX, NULL, maps[k], NULL) == GCAM_STATUS_OK,
          "%s: explain top-%d: %s", who, k + 1, gcam_last_error());
  gcam_state_free(s);
  for (int k = 0; k < 3; k++) {
    if (gcam_state_create(m, &s) || gcam_state_forward_rgba(s, rgba, w, h, w * 4) ||
        gcam_state_explain(s, top[k], GCAM_SCORE_SOFTMAX, NULL, one, NULL)) {
      CHECK(0, "%s: fresh explain of top-%d: %s", who, k + 1, gcam_last_error());
      gcam_state_free(s);
      continue;
    }
    CHECK(memcmp(one, maps[k], sizeof one) == 0, "%s: top-%d explained after others differs", who,
          k + 1);
    gcam_state_free(s);
  }
}

static void check_model(const line *ml, gcam_backend backend, gcam_memory memory,
                        const char *who) {
  char path[256];
  snprintf(path, sizeof path, DIR "%s", ml->w[2]);
  gcam_model_params mp = gcam_model_default_params();
  mp.backend = backend;
  mp.memory = memory;
  gcam_model *m;
  gcam_status st = gcam_model_load_from_file(path, &mp, &m);
  CHECK(st == GCAM_STATUS_OK, "%s load %s: %s", who, path, gcam_last_error());
  if (st) return;
  gcam_model_info info;
  CHECK(gcam_model_get_info(m, &info) == GCAM_STATUS_OK, "%s info", who);
  CHECK(!strcmp(info.sha256, ml->w[12]), "%s sha256 %s, manifest %s", path, info.sha256, ml->w[12]);
  CHECK(info.cam_width == 14 && info.cam_height == 14, "cam %dx%d", info.cam_width, info.cam_height);
  gcam_state *s;
  st = gcam_state_create(m, &s);
  CHECK(st == GCAM_STATUS_OK, "%s state: %s", who, gcam_last_error());
  if (st) {
    gcam_model_free(m);
    return;
  }
  const char *mtag = ml->w[1];
  for (int i = 0; i < n_lines; i++) {
    if (strcmp(lines[i].w[0], "image")) continue;
    const char *img = lines[i].w[1];
    int32_t w, h;
    uint8_t *rgba = decode(lines[i].w[2], &w, &h);
    CHECK(rgba && w == atoi(lines[i].w[3]) && h == atoi(lines[i].w[4]), "%s size", img);
    if (!rgba) continue;
    const line *in = find("input", mtag, img);
    if (in) { /* the network alone, on OpenCV's preprocessed tensor */
      float *x = read_f32(in->w[3], 224 * 224 * 3);
      st = x ? gcam_state_forward_tensor(s, x) : GCAM_STATUS_IO;
      CHECK(st == GCAM_STATUS_OK, "%s forward on %s's tensor: %s", who, img,
            x ? gcam_last_error() : "no tensor");
      if (!st) {
        char tag[64];
        snprintf(tag, sizeof tag, "%s/tensor", who);
        check_logits(s, mtag, img, tag);
        check_explanations(s, mtag, img, tag, rgba, w, h, info.cam_channels);
      }
      free(x);
    }
    /* the whole pipeline from pixels: our resize and preprocessing */
    st = gcam_state_forward_rgba(s, rgba, w, h, w * 4);
    CHECK(st == GCAM_STATUS_OK, "%s forward %s: %s", who, img, gcam_last_error());
    if (!st) {
      char tag[64];
      snprintf(tag, sizeof tag, "%s/pixels", who);
      check_logits(s, mtag, img, tag);
      check_explanations(s, mtag, img, tag, rgba, w, h, info.cam_channels);
    }
    check_topk_equals_single(m, rgba, w, h, who);
    gcam_image_free(rgba);
  }
  gcam_state_free(s);
  gcam_model_free(m);
}

static void check_state_errors(void) {
  gcam_model *m;
  gcam_status st = gcam_model_load_from_file(DIR "model.gcam", NULL, &m);
  CHECK(st == GCAM_STATUS_OK, "load " DIR "model.gcam: %s", gcam_last_error());
  if (st) return;
  gcam_state *s;
  st = gcam_state_create(m, &s);
  CHECK(st == GCAM_STATUS_OK, "state: %s", gcam_last_error());
  if (st) {
    gcam_model_free(m);
    return;
  }
  float map[196];
  const float *z;
  CHECK(gcam_state_explain(s, 0, GCAM_SCORE_LOGIT, NULL, map, NULL) == GCAM_STATUS_BAD_STATE,
        "explain before forward");
  CHECK(gcam_state_logits(s, &z) == GCAM_STATUS_BAD_STATE, "logits before forward");
  uint8_t px[4 * 6] = {0};
  CHECK(gcam_state_forward_rgba(s, px, 0, 1, 4) == GCAM_STATUS_INVALID_ARGUMENT, "0 wide");
  CHECK(gcam_state_forward_rgba(s, px, 2, 1, 4) == GCAM_STATUS_INVALID_ARGUMENT, "short stride");
  CHECK(gcam_state_forward_rgba(s, px, 1 << 14, 1 << 14, 1 << 16) == GCAM_STATUS_IMAGE_TOO_LARGE,
        "over the cap (checked before reading a pixel)");
  CHECK(gcam_state_forward_rgba(s, px, 1, 1, 4) == GCAM_STATUS_OK, "1x1: %s", gcam_last_error());
  CHECK(gcam_state_forward_rgba(s, px, 6, 1, 24) == GCAM_STATUS_OK, "6x1: %s", gcam_last_error());
  CHECK(gcam_state_explain(s, 10, GCAM_SCORE_LOGIT, NULL, map, NULL) == GCAM_STATUS_INVALID_ARGUMENT,
        "class 10 of 10");
  CHECK(strstr(gcam_last_error(), "10") != NULL, "message: %s", gcam_last_error());
  CHECK(gcam_state_explain(s, -1, GCAM_SCORE_LOGIT, NULL, map, NULL) == GCAM_STATUS_INVALID_ARGUMENT,
        "class -1");
  CHECK(gcam_state_explain(s, 0, (gcam_score)7, NULL, map, NULL) == GCAM_STATUS_INVALID_ARGUMENT,
        "score 7");
  int32_t top[11];
  CHECK(gcam_state_top_k(s, 11, top) == GCAM_STATUS_INVALID_ARGUMENT, "top-11 of 10");
  CHECK(gcam_state_top_k(s, 0, top) == GCAM_STATUS_INVALID_ARGUMENT, "top-0");
  /* an all-zero map stays all-zero, never NaN: a black 1x1 image of a model whose maps vanish
   * cannot be forced here, so check the normalization on every class instead */
  for (int32_t c = 0; c < 10; c++) {
    float raw_max;
    CHECK(gcam_state_explain(s, c, GCAM_SCORE_LOGIT, NULL, map, &raw_max) == GCAM_STATUS_OK,
          "explain class %d: %s", c, gcam_last_error());
    for (int p = 0; p < 196; p++)
      CHECK(map[p] >= 0.f && map[p] <= 1.f && (raw_max > 0 || map[p] == 0.f), "class %d map", c);
  }
  gcam_state_free(s);
  gcam_model_free(m);
}

int main(void) {
  CHECK(read_manifest() > 0, "cannot read " DIR "manifest.txt (run from the repo root)");
  for (int i = 0; i < n_lines; i++) {
    if (strcmp(lines[i].w[0], "model") || lines[i].n < 13) continue;
    check_model(&lines[i], GCAM_BACKEND_PORTABLE, GCAM_MEMORY_FAST, "portable");
    check_model(&lines[i], GCAM_BACKEND_PORTABLE, GCAM_MEMORY_COMPACT, "portable/compact");
#ifdef GCAM_HAVE_XNNPACK
    check_model(&lines[i], GCAM_BACKEND_XNNPACK, GCAM_MEMORY_FAST, "xnnpack");
#endif
  }
  check_state_errors();
  TEST_MAIN_END();
}
