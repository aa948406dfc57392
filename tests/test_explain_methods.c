/* test_explain_methods.c: the backward driver through every layer, and gcam_state_explain_ex.
 *   - a tiny random VGG with odd sizes (13x11 input, 3 blocks, channels 3 -> 5 -> 7 -> 7 -> 9,
 *     pools that drop a row or column, dense 9 -> 12 -> 12 -> 6), weights written to a model
 *     file here and kept for an independent double-precision forward: central finite
 *     differences of that forward (the score w.r.t. the input, and w.r.t. a middle conv's
 *     output) against saliency's input gradient and the CAM gradient at block2_conv2, logit
 *     and softmax scores, FAST and COMPACT memory, conv weights stored as f32 and as f16;
 *   - guided backprop against the same double network with guided ReLUs (hand backward);
 *   - every method at every layer runs and is finite, with the map size map_size() says;
 *     gradcam at the last conv is bit-identical to gcam_state_explain(), whatever the depth;
 *     smoothgrad / IG restore the forward; integrated gradients' completeness;
 *   - a larger random VGG on pools of 2 and 3 threads: every method bit-identical to serial;
 *   - the XNNPACK backend's forward (where built) with our backward: every method within
 *     1e-3 of the map's max of the portable backend's; its operators belong to the model
 *     (a state allocates no packed weights; two states on two threads match serial);
 *   - every bad input the issue names: its status and message. */
#include "threadpool.h" /* tools/threadpool.c, linked in by CMake */

#include <stdint.h>
#include <string.h>

#include "gcam.h"
#include "sha256.h"
#include "test.h"

/* ---- a random VGG as a weights file, and its weights for the double reference ------------ */

#define MAXC 16
#define MAXD 4

typedef struct {
  int32_t in_h, in_w, n_conv, n_dense;
  int32_t oc[MAXC], pool[MAXC], dout[MAXD];
  float *cw[MAXC], *cb[MAXC], *dw[MAXD], *db[MAXD];
  int32_t cin[MAXC], ch[MAXC], cwid[MAXC], din[MAXD];
  int f16; /* conv weights stored as IEEE halves (the reference uses the same values) */
} net;

/* f32 -> nearest f16 bits (normal range only: the weights here are neither tiny nor huge) */
static uint16_t to_f16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  const uint32_t sign = (u >> 16) & 0x8000u, mant = u & 0x7fffffu;
  const int32_t e = (int32_t)((u >> 23) & 0xff) - 127 + 15;
  if (e <= 0) return (uint16_t)sign;
  uint32_t h = ((uint32_t)e << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) h++;
  return (uint16_t)(sign | h);
}
static float from_f16(uint16_t h) {
  const int32_t e = (h >> 10) & 0x1f;
  const float v = e ? ldexpf((float)(1024 + (h & 0x3ff)), e - 25) : 0.0f;
  return h & 0x8000u ? -v : v;
}

/* round the conv weights to halves, in place: the file then stores them as f16 exactly */
static void net_to_f16(net *t) {
  t->f16 = 1;
  for (int i = 0; i < t->n_conv; i++)
    for (size_t k = 0; k < (size_t)9 * t->cin[i] * t->oc[i]; k++) t->cw[i][k] = from_f16(to_f16(t->cw[i][k]));
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

static void net_init(net *t, int32_t in_h, int32_t in_w, int n_conv, const int32_t *oc,
                     const int32_t *pool, int n_dense, const int32_t *dout, unsigned seed) {
  memset(t, 0, sizeof *t);
  t->in_h = in_h, t->in_w = in_w, t->n_conv = n_conv, t->n_dense = n_dense;
  int32_t h = in_h, w = in_w, c = 3;
  for (int i = 0; i < n_conv; i++) {
    t->oc[i] = oc[i], t->pool[i] = pool[i], t->cin[i] = c, t->ch[i] = h, t->cwid[i] = w;
    const size_t n = (size_t)9 * c * oc[i];
    t->cw[i] = malloc(n * 4), t->cb[i] = malloc((size_t)oc[i] * 4);
    const float b = (float)sqrt(6.0 / (9.0 * c));
    test_fill_uniform(t->cw[i], n, &seed, -b, b);
    test_fill_uniform(t->cb[i], (size_t)oc[i], &seed, -0.05f, 0.05f);
    c = oc[i];
    if (pool[i]) h /= 2, w /= 2;
  }
  int32_t in = h * w * c;
  for (int j = 0; j < n_dense; j++) {
    t->dout[j] = dout[j], t->din[j] = in;
    const size_t n = (size_t)in * dout[j];
    t->dw[j] = malloc(n * 4), t->db[j] = malloc((size_t)dout[j] * 4);
    float b = (float)sqrt(6.0 / in);
    if (j == n_dense - 1) b /= 8.0f;
    test_fill_uniform(t->dw[j], n, &seed, -b, b);
    test_fill_uniform(t->db[j], (size_t)dout[j], &seed, -0.05f, 0.05f);
    in = dout[j];
  }
}

static void net_free(net *t) {
  for (int i = 0; i < t->n_conv; i++) free(t->cw[i]), free(t->cb[i]);
  for (int j = 0; j < t->n_dense; j++) free(t->dw[j]), free(t->db[j]);
}

/* the weights file (weights/FORMAT.md, version 1: caffe, f32, no labels) */
static uint8_t *net_file(const net *t, size_t *out_size) {
  const int nc = t->n_conv, nd = t->n_dense, n_t = 2 * (nc + nd);
  size_t count[2 * (MAXC + MAXD)], off[2 * (MAXC + MAXD)], payload = 0;
  for (int i = 0; i < nc; i++) count[2 * i] = (size_t)9 * t->cin[i] * t->oc[i], count[2 * i + 1] = (size_t)t->oc[i];
  for (int j = 0; j < nd; j++)
    count[2 * (nc + j)] = (size_t)t->din[j] * t->dout[j], count[2 * (nc + j) + 1] = (size_t)t->dout[j];
  size_t esz[2 * (MAXC + MAXD)];
  for (int k = 0; k < n_t; k++) esz[k] = t->f16 && k < 2 * nc && k % 2 == 0 ? 2 : 4;
  for (int k = 0; k < n_t; k++) off[k] = payload, payload = align64(payload + count[k] * esz[k]);
  const size_t header = 128 + 8 * (size_t)(nc + nd) + 80 * (size_t)n_t, start = align64(header);
  const size_t size = start + payload;
  uint8_t *f = calloc(1, size);
  memcpy(f, "GCAMVGG\n", 8);
  put32(f + 8, 1), put32(f + 12, (uint32_t)header), put64(f + 16, start), put64(f + 24, payload);
  put32(f + 64, (uint32_t)t->in_h), put32(f + 68, (uint32_t)t->in_w), put32(f + 72, 3);
  put32(f + 76, (uint32_t)nc), put32(f + 80, (uint32_t)nd), put32(f + 84, (uint32_t)t->dout[nd - 1]);
  const float mean[3] = {103.939f, 116.779f, 123.68f}, one = 1.0f;
  for (int i = 0; i < 3; i++) memcpy(f + 96 + 4 * i, &mean[i], 4), memcpy(f + 108 + 4 * i, &one, 4);
  put32(f + 120, (uint32_t)n_t);
  uint8_t *p = f + 128;
  for (int i = 0; i < nc; i++, p += 8) put32(p, (uint32_t)t->oc[i]), put32(p + 4, (uint32_t)t->pool[i]);
  for (int j = 0; j < nd; j++, p += 8) put32(p, (uint32_t)t->dout[j]), put32(p + 4, 0);
  for (int k = 0; k < n_t; k++, p += 80) {
    const int layer = k / 2, conv = layer < nc, idx = conv ? layer : layer - nc;
    snprintf((char *)p, 40, "%s%d.%s", conv ? "conv" : "dense", idx, k % 2 ? "bias" : "weight");
    uint32_t dims[4] = {0, 0, 0, 0}, ndim;
    if (k % 2) ndim = 1, dims[0] = (uint32_t)count[k];
    else if (conv) ndim = 4, dims[0] = 3, dims[1] = 3, dims[2] = (uint32_t)t->cin[idx], dims[3] = (uint32_t)t->oc[idx];
    else ndim = 2, dims[0] = (uint32_t)t->din[idx], dims[1] = (uint32_t)t->dout[idx];
    put32(p + 40, esz[k] == 2 ? 1 : 0), put32(p + 44, ndim);
    for (int d = 0; d < 4; d++) put32(p + 48 + 4 * d, dims[d]);
    put64(p + 64, off[k]), put64(p + 72, count[k] * esz[k]);
    const float *src = conv ? (k % 2 ? t->cb[idx] : t->cw[idx]) : (k % 2 ? t->db[idx] : t->dw[idx]);
    if (esz[k] == 2)
      for (size_t e = 0; e < count[k]; e++) {
        const uint16_t h = to_f16(src[e]);
        memcpy(f + start + off[k] + 2 * e, &h, 2);
      }
    else
      memcpy(f + start + off[k], src, count[k] * 4);
  }
  gcam_sha256 sh;
  gcam__sha256_init(&sh);
  gcam__sha256_update(&sh, f + 64, size - 64);
  gcam__sha256_final(&sh, f + 32);
  *out_size = size;
  return f;
}

static gcam_model *net_load(const net *t, gcam_memory memory) {
  size_t size;
  uint8_t *file = net_file(t, &size);
  gcam_model_params mp = gcam_model_default_params();
  mp.backend = GCAM_BACKEND_PORTABLE, mp.memory = memory;
  gcam_model *m = NULL;
  gcam_status st = gcam_model_load_from_memory(file, size, &mp, &m);
  free(file);
  CHECK(st == GCAM_STATUS_OK, "load the random VGG: %s", gcam_last_error());
  return st ? NULL : m;
}

/* ---- the double reference: forward from conv `from`'s output (-1: from the input) -------- */

/* score of class c (logit, or probability) from x: the input (from = -1) or conv from's
 * post-ReLU output. guided_* unused here: finite differences need the plain network. */
static double ref_score(const net *t, int from, const double *x, int c, int softmax) {
  int32_t h = from < 0 ? t->in_h : t->ch[from], w = from < 0 ? t->in_w : t->cwid[from];
  int32_t C = from < 0 ? 3 : t->oc[from];
  size_t cap = (size_t)h * w * (C > MAXC * 64 ? C : MAXC * 64) * 4 + 4096;
  double *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
  memcpy(a, x, (size_t)h * w * C * sizeof *a);
  for (int i = (from < 0 ? 0 : from); i < t->n_conv; i++) {
    if (!(from >= 0 && i == from)) { /* conv i + ReLU */
      const int32_t OC = t->oc[i];
      for (int32_t y = 0; y < h; y++)
        for (int32_t xx = 0; xx < w; xx++)
          for (int32_t o = 0; o < OC; o++) {
            double s = t->cb[i][o];
            for (int ky = 0; ky < 3; ky++)
              for (int kx = 0; kx < 3; kx++) {
                const int32_t iy = y + ky - 1, ix = xx + kx - 1;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                for (int32_t cc = 0; cc < C; cc++)
                  s += a[((size_t)iy * w + ix) * C + cc] *
                       t->cw[i][((size_t)(ky * 3 + kx) * C + cc) * OC + o];
              }
            b[((size_t)y * w + xx) * OC + o] = s > 0 ? s : 0;
          }
      C = OC;
      double *tmp = a; a = b, b = tmp;
    }
    if (t->pool[i]) {
      const int32_t oh = h / 2, ow = w / 2;
      for (int32_t y = 0; y < oh; y++)
        for (int32_t xx = 0; xx < ow; xx++)
          for (int32_t cc = 0; cc < C; cc++) {
            double m = -INFINITY;
            for (int d = 0; d < 4; d++) {
              const double v = a[((size_t)(2 * y + d / 2) * w + 2 * xx + d % 2) * C + cc];
              if (v > m) m = v;
            }
            b[((size_t)y * ow + xx) * C + cc] = m;
          }
      h = oh, w = ow;
      double *tmp = a; a = b, b = tmp;
    }
  }
  int32_t in = h * w * C;
  for (int j = 0; j < t->n_dense; j++) {
    for (int32_t o = 0; o < t->dout[j]; o++) {
      double s = t->db[j][o];
      for (int32_t i = 0; i < in; i++) s += a[i] * t->dw[j][(size_t)i * t->dout[j] + o];
      b[o] = j < t->n_dense - 1 && s < 0 ? 0 : s;
    }
    in = t->dout[j];
    double *tmp = a; a = b, b = tmp;
  }
  double r = a[c];
  if (softmax) {
    double mx = a[0], sum = 0;
    for (int32_t i = 1; i < in; i++) mx = a[i] > mx ? a[i] : mx;
    for (int32_t i = 0; i < in; i++) sum += exp(a[i] - mx);
    r = exp(a[c] - mx) / sum;
  }
  free(a), free(b);
  return r;
}

/* max |a - ref| / max |ref| */
static double rel_to_max_d(const float *a, const double *ref, size_t n) {
  double mx = 0, e = 0;
  for (size_t i = 0; i < n; i++) mx = fabs(ref[i]) > mx ? fabs(ref[i]) : mx;
  for (size_t i = 0; i < n; i++) {
    const double d = fabs((double)a[i] - ref[i]);
    e = d > e || d != d ? (d != d ? INFINITY : d) : e;
  }
  return e / (mx > 0 ? mx : 1);
}

static const int32_t TINY_OC[] = {5, 7, 7, 9}, TINY_POOL[] = {1, 0, 1, 1}, TINY_D[] = {12, 12, 6};

static float *random_input(const net *t, unsigned seed) {
  const size_t n = (size_t)t->in_h * t->in_w * 3;
  float *x = malloc(n * sizeof *x);
  test_fill_uniform(x, n, &seed, -110.0f, 140.0f);
  return x;
}

/* finite differences of the double network vs the library's gradients */
static void check_gradients(gcam_memory memory, int f16) {
  net t;
  net_init(&t, 13, 11, 4, TINY_OC, TINY_POOL, 3, TINY_D, 1234u);
  if (f16) net_to_f16(&t);
  gcam_model *m = net_load(&t, memory);
  if (!m) return;
  gcam_state_params sp = gcam_state_default_params();
  sp.depth = GCAM_DEPTH_INPUT;
  gcam_state *s = NULL;
  CHECK(gcam_state_create_ex(m, &sp, &s) == GCAM_STATUS_OK, "create_ex: %s", gcam_last_error());
  float *x = random_input(&t, 99u);
  const size_t nx = (size_t)13 * 11 * 3;
  CHECK(gcam_state_forward_tensor(s, x) == GCAM_STATUS_OK, "forward: %s", gcam_last_error());
  double *xd = malloc(nx * sizeof *xd), *fd = malloc(nx * sizeof *fd);
  float *raw = malloc(nx * sizeof *raw);
  for (int score = 0; score < 2; score++)
    for (int c = 0; c < 6; c += 5) {
      /* d score / d input */
      gcam_explain_params p = gcam_explain_default_params();
      p.method = GCAM_METHOD_SALIENCY, p.score = (gcam_score)score;
      CHECK(gcam_state_explain_ex(s, c, &p, raw, NULL, NULL) == GCAM_STATUS_OK, "saliency: %s",
            gcam_last_error());
      const float *g = NULL;
      CHECK(gcam_state_input_gradient(s, &g) == GCAM_STATUS_OK, "input_gradient: %s",
            gcam_last_error());
      for (size_t i = 0; i < nx; i++) xd[i] = x[i];
      const double eps = 1e-3;
      for (size_t i = 0; i < nx; i++) {
        xd[i] = (double)x[i] + eps;
        const double up = ref_score(&t, -1, xd, c, score);
        xd[i] = (double)x[i] - eps;
        const double dn = ref_score(&t, -1, xd, c, score);
        xd[i] = x[i];
        fd[i] = (up - dn) / (2 * eps);
      }
      double e = g ? rel_to_max_d(g, fd, nx) : INFINITY;
      CHECK(e <= 2e-3, "memory %d f16 %d score %d class %d: d/d input vs finite differences %.3g",
            (int)memory, f16, score, c, e);
      printf("memory %d f16 %d score %d class %d: input gradient vs FD %.2e\n", (int)memory, f16, score, c, e);

      /* d score / d (block2_conv2's output), layer 2: 6x5x7 */
      int32_t L = -1;
      CHECK(gcam_model_layer_index(m, "block2_conv2", &L) == GCAM_STATUS_OK && L == 2,
            "block2_conv2 is layer %d", L);
      p.method = GCAM_METHOD_GRADCAM, p.layer = 2;
      CHECK(gcam_state_explain_ex(s, c, &p, raw, NULL, NULL) == GCAM_STATUS_OK, "gradcam L2: %s",
            gcam_last_error());
      const float *dA = NULL, *A = NULL;
      CHECK(gcam_state_last_gradient(s, &dA, &A) == GCAM_STATUS_OK, "last_gradient: %s",
            gcam_last_error());
      const size_t na = (size_t)6 * 5 * 7;
      double *ad = malloc(na * sizeof *ad), *fda = malloc(na * sizeof *fda);
      for (size_t i = 0; i < na; i++) ad[i] = A[i];
      for (size_t i = 0; i < na; i++) {
        ad[i] = (double)A[i] + eps;
        const double up = ref_score(&t, 2, ad, c, score);
        ad[i] = (double)A[i] - eps;
        const double dn = ref_score(&t, 2, ad, c, score);
        ad[i] = A[i];
        fda[i] = (up - dn) / (2 * eps);
      }
      /* where A = 0 the 2x2 max-pool above it has a tie (several ReLU'd zeros in a window):
       * the score is not differentiable there (a step of +eps makes the entry the max, -eps
       * does not), so compare where A > 0 only */
      size_t kept = 0;
      float *dAk = malloc(na * sizeof *dAk);
      double *fdk = malloc(na * sizeof *fdk);
      for (size_t i = 0; i < na; i++)
        if (A[i] > 0) dAk[kept] = dA[i], fdk[kept++] = fda[i];
      CHECK(kept >= na / 4, "only %zu of %zu block2_conv2 outputs are positive", kept, na);
      e = rel_to_max_d(dAk, fdk, kept);
      free(dAk), free(fdk);
      CHECK(e <= 2e-3, "memory %d score %d class %d: d/d block2_conv2 vs FD %.3g", (int)memory,
            score, c, e);
      printf("memory %d score %d class %d: block2_conv2 gradient vs FD %.2e\n", (int)memory,
             score, c, e);
      free(ad), free(fda);
    }
  free(xd), free(fd), free(raw), free(x);
  gcam_state_free(s);
  gcam_model_free(m);
  net_free(&t);
}

/* ---- every method at every layer ----------------------------------------------------------- */

typedef struct {
  float *raw[GCAM_METHOD_COUNT][MAXC];
  float max[GCAM_METHOD_COUNT][MAXC];
  size_t n[GCAM_METHOD_COUNT][MAXC];
} all_maps;

/* every (method, layer) on state s; returns the number of failures to run */
static void run_all(gcam_model *m, gcam_state *s, const float *x, int32_t c, gcam_score score,
                    all_maps *out, const char *what) {
  gcam_model_info info;
  gcam_model_get_info(m, &info);
  CHECK(gcam_state_forward_tensor(s, x) == GCAM_STATUS_OK, "%s forward: %s", what, gcam_last_error());
  const float *logits;
  gcam_state_logits(s, &logits);
  float *before = malloc((size_t)info.n_classes * sizeof *before);
  memcpy(before, logits, (size_t)info.n_classes * sizeof *before);
  for (int meth = 0; meth < GCAM_METHOD_COUNT; meth++)
    for (int32_t L = 0; L < info.n_conv; L++) {
      gcam_explain_params p = gcam_explain_default_params();
      p.method = (gcam_method)meth, p.layer = L, p.score = score;
      p.samples = 3, p.steps = 4, p.seed = 7;
      int32_t w = 0, h = 0;
      gcam_status st = gcam_state_map_size(s, &p, &w, &h);
      CHECK(st == GCAM_STATUS_OK, "%s %s L%d map_size: %s", what, gcam_method_name(p.method), L,
            gcam_last_error());
      gcam_layer_info li;
      gcam_model_layer_info(m, L, &li);
      if (gcam_method_is_pixel(p.method))
        CHECK(w == info.input_width && h == info.input_height, "%s pixel map %dx%d", what, w, h);
      else
        CHECK(w == li.width && h == li.height, "%s %s map %dx%d, layer %dx%d", what,
              gcam_method_name(p.method), w, h, li.width, li.height);
      const size_t n = (size_t)w * h;
      float *raw = malloc(n * sizeof *raw), *norm = malloc(n * sizeof *norm), mx = -1;
      st = gcam_state_explain_ex(s, c, &p, raw, norm, &mx);
      CHECK(st == GCAM_STATUS_OK, "%s %s at %s: %s", what, gcam_method_name(p.method), li.name,
            gcam_last_error());
      int finite = mx >= 0 && isfinite(mx);
      for (size_t q = 0; q < n; q++)
        finite &= isfinite(raw[q]) && raw[q] >= 0 && norm[q] >= 0 && norm[q] <= 1;
      CHECK(finite, "%s %s at %s: map not finite / not in range", what,
            gcam_method_name(p.method), li.name);
      if (out) out->raw[meth][L] = raw, out->max[meth][L] = mx, out->n[meth][L] = n;
      else free(raw);
      free(norm);
      gcam_state_logits(s, &logits);
      CHECK(!memcmp(before, logits, (size_t)info.n_classes * sizeof *before),
            "%s %s: the image's forward is not restored", what, gcam_method_name(p.method));
    }
  free(before);
}

static void free_all(all_maps *a) {
  for (int i = 0; i < GCAM_METHOD_COUNT; i++)
    for (int j = 0; j < MAXC; j++) free(a->raw[i][j]);
}

static void check_methods(void) {
  net t;
  net_init(&t, 13, 11, 4, TINY_OC, TINY_POOL, 3, TINY_D, 555u);
  gcam_model *m = net_load(&t, GCAM_MEMORY_FAST);
  if (!m) return;
  float *x = random_input(&t, 5u);
  gcam_state_params sp = gcam_state_default_params();
  sp.depth = GCAM_DEPTH_INPUT;
  gcam_state *s = NULL, *d = NULL;
  CHECK(gcam_state_create_ex(m, &sp, &s) == GCAM_STATUS_OK, "create_ex: %s", gcam_last_error());
  CHECK(gcam_state_create(m, &d) == GCAM_STATUS_OK, "create: %s", gcam_last_error());
  uint64_t bytes_in = 0, bytes_d = 0;
  gcam_state_memory_bytes(s, &bytes_in), gcam_state_memory_bytes(d, &bytes_d);
  CHECK(bytes_in > bytes_d && bytes_d > 0, "memory: input %llu, default %llu",
        (unsigned long long)bytes_in, (unsigned long long)bytes_d);
  for (int score = 0; score < 2; score++) {
    all_maps a;
    memset(&a, 0, sizeof a);
    run_all(m, s, x, 3, (gcam_score)score, &a, "tiny");
    /* gradcam at the last conv == gcam_state_explain, on the default and the deep state */
    float raw[6], norm[6], mx; /* the last conv: 3x2 */
    gcam_state_forward_tensor(d, x);
    CHECK(gcam_state_explain(d, 3, (gcam_score)score, raw, norm, &mx) == GCAM_STATUS_OK,
          "explain: %s", gcam_last_error());
    CHECK(a.n[0][3] == 6 && !memcmp(raw, a.raw[0][3], sizeof raw) && mx == a.max[0][3],
          "gradcam at the last conv differs from gcam_state_explain");
    /* the pixel methods ignore the layer, but guided-gradcam */
    for (int meth = GCAM_METHOD_SALIENCY; meth < GCAM_METHOD_COUNT; meth++) {
      if (meth == GCAM_METHOD_GUIDED_GRADCAM) continue;
      CHECK(!memcmp(a.raw[meth][0], a.raw[meth][3], a.n[meth][0] * 4), "%s depends on layer",
            gcam_method_name((gcam_method)meth));
    }
    free_all(&a);
  }
  /* smoothgrad: a seed gives the same map; another seed another */
  gcam_state_forward_tensor(s, x);
  gcam_explain_params p = gcam_explain_default_params();
  p.method = GCAM_METHOD_SMOOTHGRAD, p.samples = 4;
  const size_t n = (size_t)13 * 11;
  float *r1 = malloc(n * 4), *r2 = malloc(n * 4), *r3 = malloc(n * 4);
  gcam_state_explain_ex(s, 1, &p, r1, NULL, NULL);
  gcam_state_explain_ex(s, 1, &p, r2, NULL, NULL);
  p.seed = 1;
  gcam_state_explain_ex(s, 1, &p, r3, NULL, NULL);
  CHECK(!memcmp(r1, r2, n * 4) && memcmp(r1, r3, n * 4), "smoothgrad is not a function of its seed");
  /* integrated gradients' completeness: sum of attributions = logit(x) - logit(baseline) */
  p = gcam_explain_default_params();
  p.method = GCAM_METHOD_INTEGRATED_GRADIENTS, p.steps = 512;
  CHECK(gcam_state_explain_ex(s, 1, &p, r1, NULL, NULL) == GCAM_STATUS_OK, "IG: %s", gcam_last_error());
  const float *attr;
  gcam_state_input_gradient(s, &attr);
  double sum = 0, xd[13 * 11 * 3], bd[13 * 11 * 3];
  for (size_t i = 0; i < n * 3; i++) sum += attr[i];
  const float mean[3] = {103.939f, 116.779f, 123.68f};
  for (size_t i = 0; i < n * 3; i++) xd[i] = x[i], bd[i] = 0.0f - mean[i % 3];
  const double want = ref_score(&t, -1, xd, 1, 0) - ref_score(&t, -1, bd, 1, 0);
  CHECK(fabs(sum - want) <= 0.02 * fabs(want) + 1e-4, "IG completeness: sum %.6g, want %.6g", sum, want);
  printf("integrated gradients, 512 steps: sum of attributions %.6g, score difference %.6g\n", sum, want);
  free(r1), free(r2), free(r3), free(x);
  gcam_state_free(s), gcam_state_free(d);
  gcam_model_free(m);
  net_free(&t);
}

/* guided backprop: the double network's backward with guided ReLUs, written here by hand */
static void check_guided(void) {
  net t;
  const int32_t oc[] = {4, 6}, pool[] = {1, 0}, dd[] = {7, 5};
  net_init(&t, 7, 9, 2, oc, pool, 2, dd, 31u);
  gcam_model *m = net_load(&t, GCAM_MEMORY_FAST);
  if (!m) return;
  gcam_state_params sp = gcam_state_default_params();
  sp.depth = GCAM_DEPTH_INPUT;
  gcam_state *s = NULL;
  gcam_state_create_ex(m, &sp, &s);
  float *x = random_input(&t, 8u);
  gcam_state_forward_tensor(s, x);
  gcam_explain_params p = gcam_explain_default_params();
  p.method = GCAM_METHOD_GUIDED_BACKPROP;
  float raw[63];
  CHECK(gcam_state_explain_ex(s, 2, &p, raw, NULL, NULL) == GCAM_STATUS_OK, "guided: %s", gcam_last_error());
  const float *g;
  gcam_state_input_gradient(s, &g);
  /* forward in double, keeping every post-ReLU output */
  const int H = 7, W = 9;
  double a0[7 * 9 * 4], p0[3 * 4 * 4], a1[3 * 4 * 6], d1[7], o[5];
  int am[3 * 4 * 4];
  for (int y = 0; y < H; y++)
    for (int xx = 0; xx < W; xx++)
      for (int q = 0; q < 4; q++) {
        double v = t.cb[0][q];
        for (int k = 0; k < 9; k++) {
          const int iy = y + k / 3 - 1, ix = xx + k % 3 - 1;
          if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
          for (int c = 0; c < 3; c++) v += (double)x[(iy * W + ix) * 3 + c] * t.cw[0][(k * 3 + c) * 4 + q];
        }
        a0[(y * W + xx) * 4 + q] = v > 0 ? v : 0;
      }
  for (int y = 0; y < 3; y++)
    for (int xx = 0; xx < 4; xx++)
      for (int q = 0; q < 4; q++) {
        int best = ((2 * y) * W + 2 * xx) * 4 + q;
        for (int d = 1; d < 4; d++) {
          const int i = ((2 * y + d / 2) * W + 2 * xx + d % 2) * 4 + q;
          if (a0[i] > a0[best]) best = i;
        }
        p0[(y * 4 + xx) * 4 + q] = a0[best], am[(y * 4 + xx) * 4 + q] = best;
      }
  for (int y = 0; y < 3; y++)
    for (int xx = 0; xx < 4; xx++)
      for (int q = 0; q < 6; q++) {
        double v = t.cb[1][q];
        for (int k = 0; k < 9; k++) {
          const int iy = y + k / 3 - 1, ix = xx + k % 3 - 1;
          if (iy < 0 || iy >= 3 || ix < 0 || ix >= 4) continue;
          for (int c = 0; c < 4; c++) v += p0[(iy * 4 + ix) * 4 + c] * t.cw[1][(k * 4 + c) * 6 + q];
        }
        a1[(y * 4 + xx) * 6 + q] = v > 0 ? v : 0;
      }
  for (int j = 0; j < 7; j++) {
    double v = t.db[0][j];
    for (int i = 0; i < 72; i++) v += a1[i] * t.dw[0][i * 7 + j];
    d1[j] = v > 0 ? v : 0;
  }
  (void)o;
  /* guided backward: logit 2 */
  double gd1[7], ga1[72], gp0[48], ga0[7 * 9 * 4], gx[7 * 9 * 3];
  for (int j = 0; j < 7; j++) {
    const double v = t.dw[1][j * 5 + 2];
    gd1[j] = d1[j] > 0 && v > 0 ? v : 0;
  }
  for (int i = 0; i < 72; i++) {
    double v = 0;
    for (int j = 0; j < 7; j++) v += t.dw[0][i * 7 + j] * gd1[j];
    ga1[i] = a1[i] > 0 && v > 0 ? v : 0;
  }
  for (int y = 0; y < 3; y++)
    for (int xx = 0; xx < 4; xx++)
      for (int c = 0; c < 4; c++) {
        double v = 0;
        for (int k = 0; k < 9; k++) { /* output (y - ky + 1, x - kx + 1) uses input (y, x) at tap k */
          const int oy = y - k / 3 + 1, ox = xx - k % 3 + 1;
          if (oy < 0 || oy >= 3 || ox < 0 || ox >= 4) continue;
          for (int q = 0; q < 6; q++) v += ga1[(oy * 4 + ox) * 6 + q] * t.cw[1][(k * 4 + c) * 6 + q];
        }
        gp0[(y * 4 + xx) * 4 + c] = v;
      }
  memset(ga0, 0, sizeof ga0);
  for (int i = 0; i < 48; i++) ga0[am[i]] += gp0[i];
  for (int i = 0; i < 7 * 9 * 4; i++) ga0[i] = a0[i] > 0 && ga0[i] > 0 ? ga0[i] : 0;
  for (int y = 0; y < H; y++)
    for (int xx = 0; xx < W; xx++)
      for (int c = 0; c < 3; c++) {
        double v = 0;
        for (int k = 0; k < 9; k++) {
          const int oy = y - k / 3 + 1, ox = xx - k % 3 + 1;
          if (oy < 0 || oy >= H || ox < 0 || ox >= W) continue;
          for (int q = 0; q < 4; q++) v += ga0[(oy * W + ox) * 4 + q] * t.cw[0][(k * 3 + c) * 4 + q];
        }
        gx[(y * W + xx) * 3 + c] = v;
      }
  const double e = rel_to_max_d(g, gx, 7 * 9 * 3);
  CHECK(e <= 1e-5, "guided backprop vs the double hand backward: %.3g", e);
  printf("guided backprop vs double: %.2e\n", e);
  free(x);
  gcam_state_free(s);
  gcam_model_free(m);
  net_free(&t);
}

/* ---- threads ------------------------------------------------------------------------------- */

static void check_threads(void) {
  net t;
  const int32_t oc[] = {16, 24, 32, 32, 40}, pool[] = {1, 0, 1, 0, 1}, dd[] = {33, 20};
  net_init(&t, 41, 37, 5, oc, pool, 2, dd, 77u);
  gcam_model *m = net_load(&t, GCAM_MEMORY_FAST);
  if (!m) return;
  float *x = random_input(&t, 3u);
  gcam_state_params sp = gcam_state_default_params();
  sp.depth = GCAM_DEPTH_INPUT;
  gcam_state *s = NULL;
  gcam_state_create_ex(m, &sp, &s);
  all_maps serial;
  memset(&serial, 0, sizeof serial);
  run_all(m, s, x, 4, GCAM_SCORE_SOFTMAX, &serial, "serial");
  for (int32_t nt = 2; nt <= 3; nt++) {
    gcam_pthreadpool *tp = gcam_pthreadpool_create(nt);
    CHECK(tp != NULL, "pool of %d", nt);
    if (!tp) continue;
    gcam_threadpool hook = gcam_pthreadpool_hook(tp);
    CHECK(gcam_state_set_threadpool(s, &hook) == GCAM_STATUS_OK, "set pool: %s", gcam_last_error());
    all_maps par;
    memset(&par, 0, sizeof par);
    run_all(m, s, x, 4, GCAM_SCORE_SOFTMAX, &par, "threads");
    int same = 1;
    for (int i = 0; i < GCAM_METHOD_COUNT; i++)
      for (int L = 0; L < 5; L++) {
        const int ok = par.raw[i][L] && serial.raw[i][L] &&
                       !memcmp(par.raw[i][L], serial.raw[i][L], serial.n[i][L] * 4);
        if (!ok) fprintf(stderr, "%d threads: %s at layer %d differs\n", nt, gcam_method_name((gcam_method)i), L);
        same &= ok;
      }
    CHECK(same, "%d threads: maps differ from serial", nt);
    gcam_state_set_threadpool(s, NULL);
    free_all(&par);
    gcam_pthreadpool_destroy(tp);
  }
  free_all(&serial);
  free(x);
  gcam_state_free(s);
  gcam_model_free(m);
  net_free(&t);
}

/* ---- bad input ----------------------------------------------------------------------------- */

#define EXPECT(call, status, text)                                                         \
  do {                                                                                     \
    gcam_status st_ = (call);                                                              \
    CHECK(st_ == (status) && strstr(gcam_last_error(), (text)) != NULL,                    \
          "%s: got %s '%s', want %s with '%s'", #call, gcam_status_string(st_),            \
          gcam_last_error(), gcam_status_string(status), (text));                          \
  } while (0)

static void check_bad_input(void) {
  net t;
  net_init(&t, 13, 11, 4, TINY_OC, TINY_POOL, 3, TINY_D, 9u);
  gcam_model *m = net_load(&t, GCAM_MEMORY_FAST);
  if (!m) return;
  gcam_method meth;
  int32_t idx;
  gcam_layer_info li;
  EXPECT(gcam_method_from_name("gradcampp", &meth), GCAM_STATUS_INVALID_ARGUMENT, "unknown method 'gradcampp'");
  EXPECT(gcam_method_from_name("GradCAM", &meth), GCAM_STATUS_INVALID_ARGUMENT, "gradcam++");
  CHECK(gcam_method_from_name("gradcam++", &meth) == GCAM_STATUS_OK && meth == GCAM_METHOD_GRADCAM_PLUSPLUS, "gradcam++");
  CHECK(gcam_method_from_name("integrated-gradients", &meth) == GCAM_STATUS_OK && meth == GCAM_METHOD_INTEGRATED_GRADIENTS, "ig");
  CHECK(gcam_method_name(GCAM_METHOD_COUNT) == NULL && gcam_method_name((gcam_method)-1) == NULL, "name out of range");
  CHECK(gcam_method_is_pixel(GCAM_METHOD_SALIENCY) && !gcam_method_is_pixel(GCAM_METHOD_EIGENGRADCAM), "is_pixel");
  EXPECT(gcam_model_layer_index(m, "block4_conv3", &idx), GCAM_STATUS_INVALID_ARGUMENT,
         "no conv layer named 'block4_conv3' (this model has block1_conv1..block3_conv1)");
  EXPECT(gcam_model_layer_index(m, NULL, &idx), GCAM_STATUS_INVALID_ARGUMENT, "NULL");
  EXPECT(gcam_model_layer_index(m, "block\xff\x1b[2J", &idx), GCAM_STATUS_INVALID_ARGUMENT,
         "no conv layer named 'block??[2J'");
  EXPECT(gcam_method_from_name("grad\xc3\xa9" "cam", &meth), GCAM_STATUS_INVALID_ARGUMENT,
         "unknown method 'grad??cam'");
  CHECK(gcam_model_layer_index(m, "block3_conv1", &idx) == GCAM_STATUS_OK && idx == 3, "block3_conv1");
  EXPECT(gcam_model_layer_info(m, 4, &li), GCAM_STATUS_INVALID_ARGUMENT, "layer 4 is outside");
  EXPECT(gcam_model_layer_info(m, -1, &li), GCAM_STATUS_INVALID_ARGUMENT, "0..3");
  CHECK(gcam_model_layer_info(m, 1, &li) == GCAM_STATUS_OK && !strcmp(li.name, "block2_conv1") &&
            li.width == 5 && li.height == 6 && li.channels == 7, "layer 1: %s %dx%dx%d", li.name, li.width, li.height, li.channels);

  gcam_state *s = NULL, *d = NULL, *mid = NULL;
  gcam_state_params sp = gcam_state_default_params();
  sp.depth = 4;
  EXPECT(gcam_state_create_ex(m, &sp, &s), GCAM_STATUS_INVALID_ARGUMENT, "state depth 4");
  sp.depth = -3;
  EXPECT(gcam_state_create_ex(m, &sp, &s), GCAM_STATUS_INVALID_ARGUMENT, "GCAM_DEPTH_INPUT");
  CHECK(s == NULL, "no state on failure");
  sp.depth = 2;
  CHECK(gcam_state_create_ex(m, &sp, &mid) == GCAM_STATUS_OK, "depth 2: %s", gcam_last_error());
  CHECK(gcam_state_create_ex(m, NULL, &d) == GCAM_STATUS_OK, "defaults: %s", gcam_last_error());
  sp.depth = GCAM_DEPTH_INPUT;
  CHECK(gcam_state_create_ex(m, &sp, &s) == GCAM_STATUS_OK, "input: %s", gcam_last_error());
  float *x = random_input(&t, 1u), raw[13 * 11];
  gcam_explain_params p = gcam_explain_default_params();
  EXPECT(gcam_state_explain_ex(s, 0, &p, raw, NULL, NULL), GCAM_STATUS_BAD_STATE, "forward first");
  const float *g;
  EXPECT(gcam_state_input_gradient(s, &g), GCAM_STATUS_BAD_STATE, "pixel method first");
  gcam_state_forward_tensor(s, x), gcam_state_forward_tensor(d, x), gcam_state_forward_tensor(mid, x);
  p.layer = 4;
  EXPECT(gcam_state_explain_ex(s, 0, &p, raw, NULL, NULL), GCAM_STATUS_INVALID_ARGUMENT, "layer 4 is outside");
  p.layer = -2;
  EXPECT(gcam_state_explain_ex(s, 0, &p, raw, NULL, NULL), GCAM_STATUS_INVALID_ARGUMENT, "(-1: the last)");
  p = gcam_explain_default_params(), p.method = (gcam_method)13;
  EXPECT(gcam_state_explain_ex(s, 0, &p, raw, NULL, NULL), GCAM_STATUS_INVALID_ARGUMENT, "unknown method 13");
  p = gcam_explain_default_params(), p.score = (gcam_score)2;
  EXPECT(gcam_state_explain_ex(s, 0, &p, raw, NULL, NULL), GCAM_STATUS_INVALID_ARGUMENT, "unknown score");
  EXPECT(gcam_state_explain_ex(s, 6, NULL, raw, NULL, NULL), GCAM_STATUS_INVALID_ARGUMENT, "class 6");
  p = gcam_explain_default_params(), p.method = GCAM_METHOD_SMOOTHGRAD;
  const int32_t bad_counts[] = {0, -5, 1025, 1 << 30};
  for (int i = 0; i < 4; i++) {
    p.samples = bad_counts[i];
    EXPECT(gcam_state_explain_ex(s, 0, &p, raw, NULL, NULL), GCAM_STATUS_INVALID_ARGUMENT, "smoothgrad samples");
  }
  p.samples = 2;
  const float bad_noise[] = {0.0f, -0.1f, 1.5f, NAN, INFINITY};
  for (int i = 0; i < 5; i++) {
    p.noise = bad_noise[i];
    EXPECT(gcam_state_explain_ex(s, 0, &p, raw, NULL, NULL), GCAM_STATUS_INVALID_ARGUMENT, "noise");
  }
  p = gcam_explain_default_params(), p.method = GCAM_METHOD_INTEGRATED_GRADIENTS;
  for (int i = 0; i < 4; i++) {
    p.steps = bad_counts[i];
    EXPECT(gcam_state_explain_ex(s, 0, &p, raw, NULL, NULL), GCAM_STATUS_INVALID_ARGUMENT, "integrated-gradients steps");
  }
  /* depth: pixel methods need GCAM_DEPTH_INPUT, a CAM layer needs depth <= it */
  int32_t w, h;
  for (int mi = GCAM_METHOD_SALIENCY; mi < GCAM_METHOD_COUNT; mi++) {
    p = gcam_explain_default_params(), p.method = (gcam_method)mi;
    EXPECT(gcam_state_explain_ex(d, 0, &p, raw, NULL, NULL), GCAM_STATUS_BAD_STATE, "GCAM_DEPTH_INPUT");
    EXPECT(gcam_state_map_size(mid, &p, &w, &h), GCAM_STATUS_BAD_STATE, "gcam_state_params.depth");
  }
  p = gcam_explain_default_params(), p.layer = 0;
  EXPECT(gcam_state_explain_ex(d, 0, &p, raw, NULL, NULL), GCAM_STATUS_BAD_STATE, "gcam_state_params.depth <= 0");
  EXPECT(gcam_state_map_size(mid, &p, &w, &h), GCAM_STATUS_BAD_STATE, "reaches conv 2");
  p.layer = 2;
  CHECK(gcam_state_explain_ex(mid, 0, &p, raw, NULL, NULL) == GCAM_STATUS_OK, "depth 2, layer 2: %s", gcam_last_error());
  CHECK(gcam_state_map_size(mid, &p, &w, &h) == GCAM_STATUS_OK && w == 5 && h == 6, "map size %dx%d", w, h);
  p.layer = 3, p.method = GCAM_METHOD_EIGENCAM;
  CHECK(gcam_state_explain_ex(mid, 0, &p, raw, NULL, NULL) == GCAM_STATUS_OK, "depth 2, layer 3: %s", gcam_last_error());
  EXPECT(gcam_state_input_gradient(mid, &g), GCAM_STATUS_BAD_STATE, "pixel method first");
  uint64_t b_d, b_mid, b_in;
  gcam_state_memory_bytes(d, &b_d), gcam_state_memory_bytes(mid, &b_mid), gcam_state_memory_bytes(s, &b_in);
  CHECK(b_d < b_mid && b_mid < b_in, "memory %llu < %llu < %llu", (unsigned long long)b_d,
        (unsigned long long)b_mid, (unsigned long long)b_in);
  EXPECT(gcam_state_memory_bytes(NULL, &b_d), GCAM_STATUS_INVALID_ARGUMENT, "NULL");
  free(x);
  gcam_state_free(s), gcam_state_free(d), gcam_state_free(mid);
  gcam_model_free(m);
  net_free(&t);
}

/* ---- the XNNPACK backend's forward, our backward: the same gradients as the portable one -- */

static void check_xnnpack(void) {
  net t;
  net_init(&t, 13, 11, 4, TINY_OC, TINY_POOL, 3, TINY_D, 1234u);
  size_t size;
  uint8_t *file = net_file(&t, &size);
  gcam_model_params mp = gcam_model_default_params();
  mp.backend = GCAM_BACKEND_XNNPACK;
  gcam_model *mx = NULL, *mp_ = NULL;
  gcam_status st = gcam_model_load_from_memory(file, size, &mp, &mx);
  mp.backend = GCAM_BACKEND_PORTABLE;
  gcam_model_load_from_memory(file, size, &mp, &mp_);
  free(file);
  if (st != GCAM_STATUS_OK) {
    printf("XNNPACK backend unavailable (%s): its backward check not run\n", gcam_last_error());
    gcam_model_free(mp_);
    net_free(&t);
    return;
  }
  gcam_state_params sp = gcam_state_default_params();
  sp.depth = GCAM_DEPTH_INPUT;
  gcam_state *a = NULL, *b = NULL;
  CHECK(gcam_state_create_ex(mx, &sp, &a) == GCAM_STATUS_OK, "xnn state: %s", gcam_last_error());
  CHECK(gcam_state_create_ex(mp_, &sp, &b) == GCAM_STATUS_OK, "portable state: %s", gcam_last_error());
  float *x = random_input(&t, 99u), ra[143], rb[143];
  gcam_state_forward_tensor(a, x), gcam_state_forward_tensor(b, x);
  for (int meth = 0; a && b && meth < GCAM_METHOD_COUNT; meth++) {
    gcam_explain_params p = gcam_explain_default_params();
    p.method = (gcam_method)meth, p.layer = 1, p.samples = 2, p.steps = 3;
    int32_t w, h;
    gcam_state_map_size(a, &p, &w, &h);
    CHECK(gcam_state_explain_ex(a, 2, &p, ra, NULL, NULL) == GCAM_STATUS_OK, "xnn %s: %s",
          gcam_method_name(p.method), gcam_last_error());
    gcam_state_explain_ex(b, 2, &p, rb, NULL, NULL);
    double mxv = 0;
    for (int32_t i = 0; i < w * h; i++) mxv = rb[i] > mxv ? rb[i] : mxv;
    CHECK(test_max_abs_err(ra, rb, (size_t)w * h) <= 1e-3 * mxv + 1e-12,
          "xnn vs portable %s: %.3g of max %.3g", gcam_method_name(p.method),
          test_max_abs_err(ra, rb, (size_t)w * h), mxv);
  }
  free(x);
  gcam_state_free(a), gcam_state_free(b);
  gcam_model_free(mx), gcam_model_free(mp_);
  net_free(&t);
}

/* ---- the XNNPACK operators belong to the model ---------------------------------------------
 * Made once at load (each packs its layer's weights): a state on an XNNPACK model allocates
 * what gcam_state_memory_bytes() says and no packed weights of its own (here 2 MB of conv
 * weights, which a per-state operator set would copy); states of one model on two threads
 * take turns in the operators and compute what they compute serially. */
#ifdef GCAM_HAVE_XNNPACK
#include <malloc.h>
#include <pthread.h>

static size_t heap_in_use(void) {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

typedef struct {
  gcam_state *s;
  const float *x[2];
  float *logits; /* 2 x n_classes: the last forward of each input */
  int32_t n_classes, rounds, failed;
} xnn_worker;

static void *xnn_worker_run(void *arg) {
  xnn_worker *w = arg;
  for (int32_t r = 0; r < w->rounds; r++) {
    const float *z;
    if (gcam_state_forward_tensor(w->s, w->x[r & 1]) || gcam_state_logits(w->s, &z)) {
      w->failed = 1;
      break;
    }
    memcpy(w->logits + (size_t)(r & 1) * w->n_classes, z, (size_t)w->n_classes * sizeof *z);
  }
  return NULL;
}
#endif

static void check_xnnpack_shared(void) {
#ifdef GCAM_HAVE_XNNPACK
  static const int32_t oc[] = {64, 128, 128, 256}, pool[] = {1, 0, 1, 1}, d[] = {16, 10};
  net t;
  net_init(&t, 13, 11, 4, oc, pool, 2, d, 77u);
  size_t size;
  uint8_t *file = net_file(&t, &size);
  gcam_model_params mp = gcam_model_default_params();
  mp.backend = GCAM_BACKEND_XNNPACK;
  gcam_model *m = NULL;
  gcam_status st = gcam_model_load_from_memory(file, size, &mp, &m);
  free(file);
  if (st != GCAM_STATUS_OK) {
    printf("XNNPACK backend unavailable (%s): the shared-operator check not run\n", gcam_last_error());
    net_free(&t);
    return;
  }
  enum { NS = 3 };
  gcam_state *s[NS] = {NULL};
  size_t worst = 0;
  uint64_t said = 0;
  for (int k = 0; k < NS; k++) {
    const size_t before = heap_in_use();
    CHECK(gcam_state_create(m, &s[k]) == GCAM_STATUS_OK, "xnn state %d: %s", k, gcam_last_error());
    const size_t grew = heap_in_use() - before;
    if (s[k]) gcam_state_memory_bytes(s[k], &said);
    if (grew > worst) worst = grew;
    CHECK(s[k] && grew <= said + (256u << 10),
          "xnn state %d allocated %zu bytes, it says it holds %llu: per-state operators?", k, grew,
          (unsigned long long)said);
  }
  printf("xnn: a state allocates at most %zu bytes (it reports %llu; the conv weights: %zu)\n",
         worst, (unsigned long long)said, (size_t)(9 * (3 * 64 + 64 * 128 + 128 * 128 + 128 * 256)) * 4);
  float *x0 = random_input(&t, 5u), *x1 = random_input(&t, 6u);
  const int32_t nc = d[1];
  float serial[2][16];
  for (int i = 0; i < 2; i++) {
    const float *z;
    CHECK(gcam_state_forward_tensor(s[0], i ? x1 : x0) == GCAM_STATUS_OK && gcam_state_logits(s[0], &z) == GCAM_STATUS_OK,
          "xnn forward: %s", gcam_last_error());
    memcpy(serial[i], z, (size_t)nc * sizeof *z);
  }
  xnn_worker w[2];
  pthread_t th[2];
  for (int k = 0; k < 2; k++) {
    w[k] = (xnn_worker){s[k + 1], {x0, x1}, calloc(2 * (size_t)nc, sizeof(float)), nc, 41 + k, 0};
    CHECK(pthread_create(&th[k], NULL, xnn_worker_run, &w[k]) == 0, "pthread_create");
  }
  for (int k = 0; k < 2; k++) {
    pthread_join(th[k], NULL);
    CHECK(!w[k].failed, "xnn thread %d: a forward failed", k);
    for (int i = 0; i < 2; i++)
      CHECK(!memcmp(w[k].logits + (size_t)i * nc, serial[i], (size_t)nc * sizeof(float)),
            "xnn thread %d, input %d: logits differ from the serial run's", k, i);
    free(w[k].logits);
  }
  free(x0), free(x1);
  for (int k = 0; k < NS; k++) gcam_state_free(s[k]);
  gcam_model_free(m);
  net_free(&t);
#endif
}

int main(void) {
  check_bad_input();
  check_gradients(GCAM_MEMORY_FAST, 0);
  check_gradients(GCAM_MEMORY_COMPACT, 0);
  check_gradients(GCAM_MEMORY_FAST, 1);
  check_gradients(GCAM_MEMORY_COMPACT, 1); /* the backward packs from the f16 weights */
  check_guided();
  check_methods();
  check_threads();
  check_xnnpack();
  check_xnnpack_shared();
  TEST_MAIN_END();
}
