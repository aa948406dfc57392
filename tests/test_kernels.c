/* test_kernels.c: every fast kernel against its naive twin (src/kernels/ref.c) on awkward
 * sizes, the vector microkernels against their scalar twins, the conv paths against each
 * other and inside a whole small VGG16, and the backward ops against central finite
 * differences of their forwards.
 *
 * Tolerances, and what this machine measured (the program prints the measured values):
 *   - microkernel vector vs scalar: same summation order, rel err <= 1e-6 (floor 1).
 *   - conv, per output: |fast - ref| / (|bias| + sum |x*w|), i.e. the error relative to the
 *     magnitude of the terms summed (a float sum of K terms is off by up to ~K*eps of that,
 *     typically sqrt(K)*eps); the plain relative error means little for outputs that are
 *     sums cancelling to near 0.
 *       direct  <= 1e-5  (measured 2.3e-7 worst over the sweep)
 *       F(2,3)  <= 5e-5  (measured 1.3e-6: its transforms add and subtract up to 4 inputs and 4
 *                         products, and U is rounded to float once)
 *       F(4,3)  <= 5e-5  (measured 1.1e-5: transforms with factors up to 5 and 8, 1/24 in U)
 *   - a whole VGG16 (32x32 input, He-scaled random weights, 512-64-64-10 head): logits within
 *     1e-4 of max|logit| of the all-reference network, for each conv path (measured: direct
 *     1.7e-6, F(2,3) 1.2e-6, F(4,3) 3.2e-6). The library must stay within 1e-4 of torch.
 *   - dense: |fast - ref| <= 1e-5 * (|bias| + sum |x*w|) (measured 2e-7).
 *   - maxpool forward: exact (values and argmax, NaN included).
 *   - backward ops vs finite differences: see each case. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/conv3x3.h"
#include "kernels/gemm.h"
#include "ops.h"
#include "kernels/simd.h"
#include "parallel.h"
#include "test.h"

static unsigned seed = 12345;

#define WINO4_TOL 5e-5 /* F(4,3), error / sum|terms|: see the header comment */

static float *falloc(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  return p;
}

/* per output, |bias| + sum |x*w|: the magnitude of the terms a conv output sums */
static double *conv_magnitude(const float *in, const float *w, const float *bias, int H, int W,
                              int C, int OC) {
  double *mag = malloc((size_t)H * W * OC * sizeof *mag);
  if (!mag) exit(2);
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      for (int o = 0; o < OC; o++) {
        double m = fabs(bias[o]);
        for (int s = 0; s < 9; s++) {
          int iy = y + s / 3 - 1, ix = x + s % 3 - 1;
          if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
          for (int c = 0; c < C; c++)
            m += fabs((double)in[((size_t)iy * W + ix) * C + c] *
                      w[((size_t)s * C + c) * OC + o]);
        }
        mag[((size_t)y * W + x) * OC + o] = m;
      }
  return mag;
}

/* max over outputs of |a-b| / magnitude: the error relative to the terms summed */
static double conv_err(const float *fast, const float *ref, const double *mag, size_t n) {
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    double e = fabs((double)fast[i] - ref[i]) / (mag[i] > 1e-30 ? mag[i] : 1e-30);
    if (e > worst || e != e) worst = e != e ? INFINITY : e;
  }
  return worst;
}

/* ---- microkernels ------------------------------------------------------------------------ */

static void test_igemm_ukernels(void) {
  const size_t ncs[] = {1, 3, 4, 7, 8, 9, 16, 17};
  const size_t kcs[] = {1, 2, 3, 4, 5, 8, 11};
  const size_t kss[] = {1, 2, 9};
  const size_t ldc = 24, maxk = 11 * 9;
  float rows[GCAM_GEMM_MR * 9][11], zero[11] = {0};
  float *packed = falloc(3 * gcam__gemm_block_floats(maxk));
  float *b = falloc(maxk * 17), bias[17];
  float cv[GCAM_GEMM_MR * 24], cs[GCAM_GEMM_MR * 24];
  int bad = 0, cases = 0;
  for (int relu = 0; relu < 2; relu++)
    for (size_t mr = 1; mr <= GCAM_GEMM_MR; mr++)
      for (size_t ni = 0; ni < sizeof ncs / sizeof *ncs; ni++)
        for (size_t ki = 0; ki < sizeof kcs / sizeof *kcs; ki++)
          for (size_t si = 0; si < sizeof kss / sizeof *kss; si++) {
            const size_t nc = ncs[ni], kc = kcs[ki], ks = kss[si];
            test_fill_uniform(&rows[0][0], sizeof rows / sizeof(float), &seed, -1.0f, 1.0f);
            test_fill_uniform(b, kc * ks * nc, &seed, -1.0f, 1.0f);
            test_fill_uniform(bias, nc, &seed, -1.0f, 1.0f);
            gcam__gemm_pack(packed, b, nc, bias, kc * ks, nc);
            const float *a[GCAM_GEMM_MR * 9];
            for (size_t s = 0; s < ks; s++)
              for (size_t m = 0; m < GCAM_GEMM_MR; m++) /* every third tap is padding */
                a[s * GCAM_GEMM_MR + m] =
                    (s % 3 == 2 && m == 1) ? zero : rows[(s * GCAM_GEMM_MR + m) % (GCAM_GEMM_MR * 9)];
            for (size_t i = 0; i < GCAM_GEMM_MR * 24; i++) cv[i] = cs[i] = 1234.5f;
            if (relu) {
              gcam__f32_igemm_relu_ukernel_4x8__vec(mr, nc, kc, ks, a, packed, cv, ldc);
              gcam__f32_igemm_relu_ukernel_4x8__scalar(mr, nc, kc, ks, a, packed, cs, ldc);
            } else {
              gcam__f32_igemm_ukernel_4x8__vec(mr, nc, kc, ks, a, packed, cv, ldc);
              gcam__f32_igemm_ukernel_4x8__scalar(mr, nc, kc, ks, a, packed, cs, ldc);
            }
            /* the scalar twin against a plain triple loop (its own oracle) */
            double worst_s = 0.0;
            for (size_t m = 0; m < mr; m++)
              for (size_t n = 0; n < nc; n++) {
                double acc = bias[n];
                for (size_t s = 0; s < ks; s++)
                  for (size_t k = 0; k < kc; k++)
                    acc += (double)a[s * GCAM_GEMM_MR + m][k] * b[(s * kc + k) * nc + n];
                if (relu && acc < 0.0) acc = 0.0;
                double e = fabs(cs[m * ldc + n] - acc) / (fabs(acc) > 1.0 ? fabs(acc) : 1.0);
                if (e > worst_s) worst_s = e;
              }
            double worst = 0.0;
            int clobbered = 0;
            for (size_t m = 0; m < GCAM_GEMM_MR; m++)
              for (size_t n = 0; n < ldc; n++) {
                size_t i = m * ldc + n;
                if (m < mr && n < nc) {
                  double e = fabs(cv[i] - cs[i]) / (fabs(cs[i]) > 1.0 ? fabs(cs[i]) : 1.0);
                  if (e > worst || e != e) worst = e != e ? INFINITY : e;
                } else if (cv[i] != 1234.5f) {
                  clobbered = 1;
                }
              }
            cases++;
            if (!(worst <= 1e-6 && worst_s <= 1e-5 && !clobbered)) {
              bad++;
              CHECK(0, "igemm relu=%d mr=%zu nc=%zu kc=%zu ks=%zu: vec/scalar %.3g, scalar/ref "
                    "%.3g, wrote outside the tile %d", relu, mr, nc, kc, ks, worst, worst_s,
                    clobbered);
            }
          }
  CHECK(bad == 0, "%d of %d microkernel cases failed", bad, cases);
  free(packed);
  free(b);
}

/* ---- conv3x3 ------------------------------------------------------------------------------- */

typedef struct {
  double direct, wino[5], dispatch, cross; /* error / magnitude of the terms; wino[m] */
  double rel_direct, rel_wino[5];          /* plain max rel err, floor = rms(ref) */
} conv_errs;

/* Runs direct (default and smallest oc block), Winograd (default and 4-tile blocks) and the
 * ops.h dispatch on one shape; returns the errors relative to the reference. */
static conv_errs conv_case(int H, int W, int C, int OC, float in_lo, float w_scale) {
  const size_t n_in = (size_t)H * W * C, n_out = (size_t)H * W * OC, n_w = (size_t)9 * C * OC;
  float *in = falloc(n_in), *w = falloc(n_w), *bias = falloc(OC);
  float *ref = falloc(n_out), *out = falloc(n_out), *out2 = falloc(n_out);
  test_fill_uniform(in, n_in, &seed, in_lo, 1.0f);
  test_fill_uniform(w, n_w, &seed, -w_scale, w_scale);
  test_fill_uniform(bias, OC, &seed, -0.1f, 0.1f);
  gcam__conv3x3_relu_forward_ref(ref, in, w, bias, H, W, C, OC);
  double *mag = conv_magnitude(in, w, bias, H, W, C, OC), ref_ss = 0.0;
  for (size_t i = 0; i < n_out; i++) ref_ss += (double)ref[i] * ref[i];
  const double floor_ = ref_ss > 0.0 ? sqrt(ref_ss / (double)n_out) : 1e-30;
  conv_errs r;

  float *pd = falloc(gcam__conv3x3_direct_packed_floats(C, OC));
  float *sd = falloc(gcam__conv3x3_direct_scratch_floats(H, W, C, OC));
  gcam__conv3x3_direct_pack(pd, w, bias, C, OC);
  gcam__conv3x3_direct_forward(out, in, pd, H, W, C, OC, sd, 0);
  r.direct = conv_err(out, ref, mag, n_out);
  r.rel_direct = test_max_rel_err(out, ref, n_out, floor_);
  gcam__conv3x3_direct_forward(out2, in, pd, H, W, C, OC, sd, GCAM_GEMM_NR);
  double e2 = conv_err(out2, ref, mag, n_out);
  if (e2 > r.direct) r.direct = e2;

  /* Winograd F(2,3) and F(4,3), each with the default blocking and with one-tile blocks and
   * the smallest output-channel block (remainders everywhere) */
  for (int m = 2; m <= 4; m += 2) {
    float *pw = falloc(gcam__conv3x3_wino_packed_floats(m, C, OC));
    gcam__conv3x3_wino_pack(m, pw, w, bias, C, OC);
    float *sw = falloc(gcam__conv3x3_wino_scratch_floats(m, H, W, C, OC, 0));
    gcam__conv3x3_wino_forward(m, out2, in, pw, H, W, C, OC, sw, 0, 0);
    r.wino[m] = conv_err(out2, ref, mag, n_out);
    r.rel_wino[m] = test_max_rel_err(out2, ref, n_out, floor_);
    if (m == 2) r.cross = conv_err(out2, out, mag, n_out);
    free(sw);
    sw = falloc(gcam__conv3x3_wino_scratch_floats(m, H, W, C, OC, 1));
    gcam__conv3x3_wino_forward(m, out2, in, pw, H, W, C, OC, sw, 1, GCAM_GEMM_NR);
    e2 = conv_err(out2, ref, mag, n_out);
    if (e2 > r.wino[m] || e2 != e2) r.wino[m] = e2;
    free(sw), free(pw);
  }

  float *pp = falloc(gcam__conv3x3_packed_floats(C, OC));
  float *sp = falloc(gcam__conv3x3_scratch_floats(H, W, C, OC));
  gcam__conv3x3_pack(pp, w, bias, C, OC);
  gcam__conv3x3_relu_forward(out2, in, pp, H, W, C, OC, sp);
  r.dispatch = conv_err(out2, ref, mag, n_out);

  free(in), free(w), free(bias), free(ref), free(out), free(out2);
  free(pd), free(sd), free(pp), free(sp), free(mag);
  return r;
}

static void test_conv_sweep(void) {
  const int hw[][2] = {{1, 1}, {1, 7}, {2, 2}, {3, 5}, {5, 3}, {7, 7},
                       {14, 14}, {15, 15}, {2, 15}, {15, 1}};
  const int Cs[] = {1, 3, 4, 5, 17, 64};
  const int OCs[] = {1, 3, 7, 8, 9, 16, 33, 64};
  double worst_d = 0, worst_w = 0, worst_w4 = 0, worst_x = 0;
  int bad = 0, cases = 0;
  for (size_t i = 0; i < sizeof hw / sizeof *hw; i++)
    for (size_t ci = 0; ci < sizeof Cs / sizeof *Cs; ci++)
      for (size_t oi = 0; oi < sizeof OCs / sizeof *OCs; oi++) {
        const int H = hw[i][0], W = hw[i][1], C = Cs[ci], OC = OCs[oi];
        conv_errs r = conv_case(H, W, C, OC, -1.0f, 1.0f);
        int ok = r.direct <= 1e-5 && r.wino[2] <= 5e-5 && r.wino[4] <= WINO4_TOL &&
                 r.cross <= 5e-5 && r.dispatch <= WINO4_TOL;
        cases++;
        if (!ok) {
          bad++;
          CHECK(0, "conv %dx%dx%d->%d: direct %.3g wino2 %.3g wino4 %.3g cross %.3g dispatch "
                "%.3g", H, W, C, OC, r.direct, r.wino[2], r.wino[4], r.cross, r.dispatch);
        }
        if (r.direct > worst_d) worst_d = r.direct;
        if (r.wino[2] > worst_w) worst_w = r.wino[2];
        if (r.wino[4] > worst_w4) worst_w4 = r.wino[4];
        if (r.cross > worst_x) worst_x = r.cross;
      }
  CHECK(bad == 0, "%d of %d conv shapes failed", bad, cases);
  printf("conv sweep: %d shapes, worst error / sum|terms|: direct %.2e, F(2,3) %.2e, F(4,3) "
         "%.2e, F(2,3) vs direct %.2e\n", cases, worst_d, worst_w, worst_w4, worst_x);
}

/* VGG16's layer shapes at reduced spatial size, He-scaled weights, non-negative inputs (as
 * after a ReLU) except for the first layer: the errors the network will see, per layer. */
static void test_conv_vgg16_shapes(void) {
  const int shapes[][4] = {{18, 18, 3, 64},   {18, 18, 64, 64},   {11, 11, 64, 128},
                           {11, 11, 128, 128}, {8, 8, 128, 256},  {8, 8, 256, 256},
                           {6, 6, 256, 512},  {6, 6, 512, 512},   {14, 14, 512, 512}};
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
    const int H = shapes[i][0], W = shapes[i][1], C = shapes[i][2], OC = shapes[i][3];
    conv_errs r = conv_case(H, W, C, OC, C == 3 ? -120.0f : 0.0f, sqrtf(6.0f / (9.0f * C)));
    printf("vgg16 %2dx%2dx%3d->%3d: err/sum|terms| direct %.1e F2 %.1e F4 %.1e; max rel err "
           "(floor rms) direct %.1e F2 %.1e F4 %.1e; uses %d\n", H, W, C, OC, r.direct,
           r.wino[2], r.wino[4], r.rel_direct, r.rel_wino[2], r.rel_wino[4],
           gcam__conv3x3_path(C, OC));
    CHECK(r.direct <= 1e-5, "vgg16 %dx%dx%d->%d direct %.3g", H, W, C, OC, r.direct);
    CHECK(r.wino[2] <= 5e-5, "vgg16 %dx%dx%d->%d F(2,3) %.3g", H, W, C, OC, r.wino[2]);
    CHECK(r.wino[4] <= WINO4_TOL, "vgg16 %dx%dx%d->%d F(4,3) %.3g", H, W, C, OC, r.wino[4]);
    CHECK(r.dispatch <= WINO4_TOL, "vgg16 %dx%dx%d->%d dispatch %.3g", H, W, C, OC,
          r.dispatch);
  }
}

/* A whole VGG16 (13 convs, 5 pools, a 512-64-64-10 dense head) on a 32x32 input with He-scaled
 * random weights, run with each conv path; the logits are compared with the all-reference
 * network. This is the accuracy budget that matters: the library must stay within 1e-4
 * (relative) of torch on the logits. */
static void vgg16_chain(float *logits, int path, const float *input, float *const *w,
                        float *const *b, float *const *dw, float *const *db) {
  static const int oc[13] = {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512};
  static const int pool[13] = {0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1};
  int H = 32, W = 32, C = 3;
  float *x = falloc((size_t)H * W * 512), *y = falloc((size_t)H * W * 512);
  memcpy(x, input, sizeof(float) * H * W * C);
  for (int l = 0; l < 13; l++) {
    if (path < 0) {
      gcam__conv3x3_relu_forward_ref(y, x, w[l], b[l], H, W, C, oc[l]);
    } else {
      const int m = path == 9 ? gcam__conv3x3_path(C, oc[l]) : path;
      float *pk, *sc;
      if (m) {
        pk = falloc(gcam__conv3x3_wino_packed_floats(m, C, oc[l]));
        sc = falloc(gcam__conv3x3_wino_scratch_floats(m, H, W, C, oc[l], 0));
        gcam__conv3x3_wino_pack(m, pk, w[l], b[l], C, oc[l]);
        gcam__conv3x3_wino_forward(m, y, x, pk, H, W, C, oc[l], sc, 0, 0);
      } else {
        pk = falloc(gcam__conv3x3_direct_packed_floats(C, oc[l]));
        sc = falloc(gcam__conv3x3_direct_scratch_floats(H, W, C, oc[l]));
        gcam__conv3x3_direct_pack(pk, w[l], b[l], C, oc[l]);
        gcam__conv3x3_direct_forward(y, x, pk, H, W, C, oc[l], sc, 0);
      }
      free(pk), free(sc);
    }
    C = oc[l];
    if (pool[l]) {
      gcam__maxpool2x2_forward_ref(x, NULL, y, H, W, C);
      H /= 2, W /= 2;
    } else {
      float *t = x;
      x = y, y = t;
    }
  }
  float h1[64], h2[64];
  gcam__dense_forward_ref(h1, x, dw[0], db[0], 512, 64, 1);
  gcam__dense_forward_ref(h2, h1, dw[1], db[1], 64, 64, 1);
  gcam__dense_forward_ref(logits, h2, dw[2], db[2], 64, 10, 0);
  free(x), free(y);
}

static void test_vgg16_chain(void) {
  static const int oc[13] = {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512};
  float *w[13], *b[13], *dw[3], *db[3], input[32 * 32 * 3];
  const int dn[3][2] = {{512, 64}, {64, 64}, {64, 10}};
  int C = 3;
  for (int l = 0; l < 13; l++) {
    float s = sqrtf(6.0f / (9.0f * C));
    w[l] = falloc((size_t)9 * C * oc[l]), b[l] = falloc(oc[l]);
    test_fill_uniform(w[l], (size_t)9 * C * oc[l], &seed, -s, s);
    test_fill_uniform(b[l], oc[l], &seed, -0.05f, 0.1f);
    C = oc[l];
  }
  for (int l = 0; l < 3; l++) {
    float s = sqrtf(6.0f / dn[l][0]);
    dw[l] = falloc((size_t)dn[l][0] * dn[l][1]), db[l] = falloc(dn[l][1]);
    test_fill_uniform(dw[l], (size_t)dn[l][0] * dn[l][1], &seed, -s, s);
    test_fill_uniform(db[l], dn[l][1], &seed, -0.05f, 0.05f);
  }
  test_fill_uniform(input, 32 * 32 * 3, &seed, -120.0f, 130.0f); /* caffe-preprocessed range */
  float ref[10], got[10];
  vgg16_chain(ref, -1, input, w, b, dw, db);
  double ref_max = 0.0;
  for (int i = 0; i < 10; i++) ref_max = fabs(ref[i]) > ref_max ? fabs(ref[i]) : ref_max;
  const int paths[4] = {0, 2, 4, 9};
  const char *names[4] = {"direct", "F(2,3)", "F(4,3)", "library choice"};
  for (int p = 0; p < 4; p++) {
    vgg16_chain(got, paths[p], input, w, b, dw, db);
    double worst = 0.0;
    for (int i = 0; i < 10; i++) {
      double e = fabs((double)got[i] - ref[i]) / ref_max;
      if (e > worst || e != e) worst = e != e ? INFINITY : e;
    }
    printf("vgg16 32x32 network, %s convs: logits max|err| / max|logit| = %.2e (max|logit| "
           "%.3g)\n", names[p], worst, ref_max);
    CHECK(worst <= 1e-4, "vgg16 network with %s convs: logits error %.3g > 1e-4", names[p],
          worst);
  }
  for (int l = 0; l < 13; l++) free(w[l]), free(b[l]);
  for (int l = 0; l < 3; l++) free(dw[l]), free(db[l]);
}

/* ---- maxpool ----------------------------------------------------------------------------- */

static int same_float(float a, float b) { return (a == b) || (a != a && b != b); }

static void test_maxpool_forward(void) {
  const int sizes[] = {1, 2, 3, 5, 7, 14, 15};
  const int Cs[] = {1, 3, 4, 5, 17, 64};
  int bad = 0, cases = 0;
  for (int mode = 0; mode < 3; mode++) /* 0: random, 1: many ties, 2: ties and NaNs */
    for (size_t hi = 0; hi < 7; hi++)
      for (size_t wi = 0; wi < 7; wi++)
        for (size_t ci = 0; ci < 6; ci++) {
          const int H = sizes[hi], W = sizes[wi], C = Cs[ci];
          const size_t n = (size_t)H * W * C, m = (size_t)(H / 2) * (W / 2) * C;
          float *in = falloc(n), *o1 = falloc(m), *o2 = falloc(m), *o3 = falloc(m);
          int32_t *a1 = malloc((m ? m : 1) * sizeof *a1), *a2 = malloc((m ? m : 1) * sizeof *a2);
          test_fill_uniform(in, n, &seed, -1.0f, 1.0f);
          if (mode >= 1)
            for (size_t i = 0; i < n; i++) in[i] = floorf(in[i] * 2.0f); /* {-2,-1,0,1} */
          if (mode == 2)
            for (size_t i = 0; i < n; i++)
              if ((i * 7919) % 11 == 0) in[i] = NAN;
          gcam__maxpool2x2_forward_ref(o1, a1, in, H, W, C);
          gcam__maxpool2x2_forward(o2, a2, in, H, W, C);
          gcam__maxpool2x2_forward(o3, NULL, in, H, W, C);
          int ok = 1;
          for (size_t i = 0; i < m; i++)
            if (!same_float(o1[i], o2[i]) || a1[i] != a2[i] || !same_float(o1[i], o3[i]) ||
                !same_float(in[a1[i]], o1[i]))
              ok = 0;
          cases++;
          if (!ok) {
            bad++;
            CHECK(0, "maxpool mode %d %dx%dx%d differs from the reference", mode, H, W, C);
          }
          free(in), free(o1), free(o2), free(o3), free(a1), free(a2);
        }
  CHECK(bad == 0, "%d of %d maxpool cases failed", bad, cases);

  /* the tie and NaN rules themselves (as torch.nn.functional.max_pool2d, checked by hand:
   * [3,3,1,3] -> index 0; [nan,1,nan,2] -> index 2; [1,nan,2,nan] -> index 3) */
  const float cases4[3][4] = {{3, 3, 1, 3}, {NAN, 1, NAN, 2}, {1, NAN, 2, NAN}};
  const int32_t expect[3] = {0, 2, 3};
  for (int k = 0; k < 3; k++)
    for (int fast = 0; fast < 2; fast++) {
      float o;
      int32_t a = -1;
      if (fast)
        gcam__maxpool2x2_forward(&o, &a, cases4[k], 2, 2, 1);
      else
        gcam__maxpool2x2_forward_ref(&o, &a, cases4[k], 2, 2, 1);
      CHECK(a == expect[k], "maxpool rule case %d (%s): argmax %d, expected %d", k,
            fast ? "fast" : "ref", (int)a, (int)expect[k]);
    }
  /* 4 channels at once: same rules lane by lane */
  float in4[16];
  for (int d = 0; d < 4; d++)
    for (int k = 0; k < 4; k++) in4[d * 4 + k] = k < 3 ? cases4[k][d] : (float)d;
  float o4[4];
  int32_t a4[4];
  gcam__maxpool2x2_forward(o4, a4, in4, 2, 2, 4);
  CHECK(a4[0] == 0 && a4[1] == 9 && a4[2] == 14 && a4[3] == 15 && o4[3] == 3.0f,
        "maxpool vector rules: %d %d %d %d", (int)a4[0], (int)a4[1], (int)a4[2], (int)a4[3]);
}

/* d_in against central differences of sum(g * maxpool(x)): values distinct and 1/8 apart, so
 * a step of 1/32 never changes which input wins; exact up to float rounding of x +- h. */
static void test_maxpool_backward(void) {
  const int dims[][3] = {{2, 2, 1}, {5, 7, 3}, {7, 5, 4}, {6, 6, 17}, {3, 3, 5}};
  for (size_t t = 0; t < sizeof dims / sizeof *dims; t++) {
    const int H = dims[t][0], W = dims[t][1], C = dims[t][2];
    const size_t n = (size_t)H * W * C, m = (size_t)(H / 2) * (W / 2) * C;
    float *x = falloc(n), *g = falloc(m), *y = falloc(m), *d = falloc(n);
    int32_t *am = malloc(m * sizeof *am);
    for (size_t i = 0; i < n; i++) x[i] = (float)i * 0.125f;
    for (size_t i = n - 1; i > 0; i--) { /* shuffle */
      seed ^= seed << 13, seed ^= seed >> 17, seed ^= seed << 5;
      size_t j = seed % (i + 1);
      float tmp = x[i];
      x[i] = x[j], x[j] = tmp;
    }
    test_fill_uniform(g, m, &seed, -1.0f, 1.0f);
    gcam__maxpool2x2_forward(y, am, x, H, W, C);
    for (size_t i = 0; i < n; i++) d[i] = 999.0f; /* must be overwritten */
    gcam__maxpool2x2_backward(d, g, am, H, W, C);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
      const float x0 = x[i];
      double L[2];
      float hs[2];
      for (int s = 0; s < 2; s++) {
        x[i] = hs[s] = x0 + (s ? -1.0f : 1.0f) / 32.0f;
        gcam__maxpool2x2_forward_ref(y, NULL, x, H, W, C);
        L[s] = 0.0;
        for (size_t k = 0; k < m; k++) L[s] += (double)g[k] * y[k];
      }
      x[i] = x0;
      double fd = (L[0] - L[1]) / ((double)hs[0] - hs[1]);
      double e = fabs(fd - d[i]);
      if (e > worst || e != e) worst = e != e ? INFINITY : e;
    }
    CHECK(worst <= 1e-6, "maxpool backward %dx%dx%d vs finite differences: %.3g", H, W, C,
          worst);
    free(x), free(g), free(y), free(d), free(am);
  }
}

/* ---- dense ------------------------------------------------------------------------------- */

static double dense_err(const float *fast, const float *ref, const float *in, const float *w,
                        const float *bias, int IN, int OUT, int transposed) {
  double worst = 0.0;
  int n = transposed ? IN : OUT;
  for (int o = 0; o < n; o++) {
    double mag = transposed ? 0.0 : fabs(bias[o]);
    if (transposed)
      for (int k = 0; k < OUT; k++) mag += fabs((double)w[(size_t)o * OUT + k] * in[k]);
    else
      for (int k = 0; k < IN; k++) mag += fabs((double)in[k] * w[(size_t)k * OUT + o]);
    double e = fabs((double)fast[o] - ref[o]) / (mag > 1e-30 ? mag : 1e-30);
    if (e > worst || e != e) worst = e != e ? INFINITY : e;
  }
  return worst;
}

static void test_dense(void) {
  const int INs[] = {1, 3, 4, 5, 17, 100, 1031};
  const int OUTs[] = {1, 3, 4, 5, 7, 8, 9, 12, 13, 21, 33, 1000}; /* the 8-column step's edges */
  double worst_f = 0.0, worst_b = 0.0;
  int bad = 0, cases = 0;
  for (size_t ii = 0; ii < sizeof INs / sizeof *INs; ii++)
    for (size_t oi = 0; oi < sizeof OUTs / sizeof *OUTs; oi++) {
      const int IN = INs[ii], OUT = OUTs[oi];
      float *in = falloc(IN), *w = falloc((size_t)IN * OUT), *bias = falloc(OUT);
      float *o1 = falloc(OUT), *o2 = falloc(OUT), *g = falloc(OUT), *d1 = falloc(IN),
            *d2 = falloc(IN);
      test_fill_uniform(in, IN, &seed, -1.0f, 1.0f);
      test_fill_uniform(w, (size_t)IN * OUT, &seed, -1.0f, 1.0f);
      test_fill_uniform(bias, OUT, &seed, -1.0f, 1.0f);
      test_fill_uniform(g, OUT, &seed, -1.0f, 1.0f);
      for (int relu = 0; relu < 2; relu++) {
        gcam__dense_forward_ref(o1, in, w, bias, IN, OUT, relu);
        gcam__dense_forward(o2, in, w, bias, IN, OUT, relu);
        double e = dense_err(o2, o1, in, w, bias, IN, OUT, 0);
        int neg = 0;
        for (int o = 0; relu && o < OUT; o++) neg |= o2[o] < 0.0f;
        cases++;
        if (!(e <= 1e-5) || neg) {
          bad++;
          CHECK(0, "dense forward IN=%d OUT=%d relu=%d: %.3g (negative after relu: %d)", IN,
                OUT, relu, e, neg);
        }
        if (e > worst_f) worst_f = e;
      }
      gcam__dense_backward_input_ref(d1, g, w, IN, OUT);
      gcam__dense_backward_input(d2, g, w, IN, OUT);
      double e = dense_err(d2, d1, g, w, NULL, IN, OUT, 1);
      cases++;
      if (!(e <= 1e-5)) {
        bad++;
        CHECK(0, "dense backward_input IN=%d OUT=%d: %.3g", IN, OUT, e);
      }
      if (e > worst_b) worst_b = e;
      free(in), free(w), free(bias), free(o1), free(o2), free(g), free(d1), free(d2);
    }
  CHECK(bad == 0, "%d of %d dense cases failed", bad, cases);
  printf("dense: worst error / sum|terms|: forward %.2e, backward_input %.2e\n", worst_f,
         worst_b);
}

/* backward_input against central differences of L(x) = g . dense_forward(x) (no ReLU): L is
 * linear, so a large step h = 0.5 is exact but for the float rounding of the outputs. */
static void test_dense_backward_fd(void) {
  const int IN = 37, OUT = 23;
  float in[37], w[37 * 23], bias[23], g[23], y[23], d[37];
  test_fill_uniform(in, IN, &seed, -1.0f, 1.0f);
  test_fill_uniform(w, (size_t)IN * OUT, &seed, -1.0f, 1.0f);
  test_fill_uniform(bias, OUT, &seed, -1.0f, 1.0f);
  test_fill_uniform(g, OUT, &seed, -1.0f, 1.0f);
  gcam__dense_backward_input(d, g, w, IN, OUT);
  double worst = 0.0;
  for (int i = 0; i < IN; i++) {
    const float x0 = in[i];
    double L[2];
    for (int s = 0; s < 2; s++) {
      in[i] = x0 + (s ? -0.5f : 0.5f);
      gcam__dense_forward(y, in, w, bias, IN, OUT, 0);
      L[s] = 0.0;
      for (int o = 0; o < OUT; o++) L[s] += (double)g[o] * y[o];
    }
    in[i] = x0;
    double e = fabs((L[0] - L[1]) / 1.0 - d[i]);
    if (e > worst) worst = e;
  }
  CHECK(worst <= 1e-4, "dense backward_input vs finite differences: %.3g", worst);
}

static double half_value(uint16_t h);
static uint16_t test_half(float x);

/* ---- compact conv weights (GCAM_MEMORY_COMPACT) ------------------------------------------------
 * Winograd F(2,3) and F(4,3) from HWIO weights transformed as the layer runs, f32 and f16
 * weights, against the reference on the same (widened) weights and against the fast
 * pre-packed path; shapes whose transformed weights exceed the 12 MB budget run in slices of
 * output columns (C=512 -> OC=512 at 7x7, and OC=1003: a ragged last slice and column block). */
static void test_conv_compact(void) {
  static const int shapes[][4] = {{5, 7, 3, 19}, {9, 11, 13, 37}, {6, 5, 8, 4},
                                  {7, 7, 512, 512}, {3, 5, 300, 1003}};
  int bad = 0, cases = 0;
  double worst = 0.0, worst_fast = 0.0;
  for (int si = 0; si < 5; si++) {
    const int H = shapes[si][0], W = shapes[si][1], C = shapes[si][2], OC = shapes[si][3];
    const size_t n_in = (size_t)H * W * C, n_out = (size_t)H * W * OC, n_w = (size_t)9 * C * OC;
    float *in = falloc(n_in), *w = falloc(n_w), *bias = falloc(OC);
    float *ref = falloc(n_out), *out = falloc(n_out), *fast = falloc(n_out);
    uint16_t *wh = malloc(n_w * 2);
    test_fill_uniform(in, n_in, &seed, 0.0f, 1.0f);
    test_fill_uniform(w, n_w, &seed, -0.1f, 0.1f);
    test_fill_uniform(bias, OC, &seed, -0.1f, 0.1f);
    for (int dt = 0; dt <= 1; dt++) {
      if (dt == GCAM__DTYPE_F16) /* halves of about the same range, and w = their value */
        for (size_t k = 0; k < n_w; k++) {
          wh[k] = test_half(w[k] * 10.0f) - (3u << 10); /* exponent -3: |w| < 0.25 */
          if ((wh[k] & 0x7c00) == 0x7c00 || (wh[k] & 0x7c00) > (15u << 10)) wh[k] &= 0x83ff;
          w[k] = (float)half_value(wh[k]);
        }
      gcam__conv3x3_relu_forward_ref(ref, in, w, bias, H, W, C, OC);
      double *mag = conv_magnitude(in, w, bias, H, W, C, OC);
      for (int m = 2; m <= 4; m += 2) {
        float *pk = falloc(gcam__conv3x3_wino_compact_scratch_floats(m, C, OC));
        float *sw = falloc(gcam__conv3x3_wino_scratch_floats(m, H, W, C, OC, 0));
        memset(out, 0xff, n_out * sizeof *out); /* NaN where nothing is written */
        gcam__conv3x3_wino_forward_compact_pool(m, out, in, dt ? (const void *)wh : w,
                                                (gcam__dtype)dt, bias, H, W, C, OC, sw, pk,
                                                NULL);
        float *pw = falloc(gcam__conv3x3_wino_packed_floats(m, C, OC));
        gcam__conv3x3_wino_pack(m, pw, w, bias, C, OC);
        gcam__conv3x3_wino_forward(m, fast, in, pw, H, W, C, OC, sw, 0, 0);
        const double e = conv_err(out, ref, mag, n_out), ef = conv_err(out, fast, mag, n_out);
        cases++;
        if (!(e <= (m == 4 ? 1e-4 : 1e-5)) || !(ef <= 1e-5)) {
          bad++;
          CHECK(0, "compact F(%d,3) dtype %d %dx%dx%d->%d: %.3g vs ref, %.3g vs fast", m, dt, H,
                W, C, OC, e, ef);
        }
        if (e > worst) worst = e;
        if (ef > worst_fast) worst_fast = ef;
        free(pk), free(sw), free(pw);
      }
      free(mag);
    }
    CHECK(gcam__conv3x3_wino_compact_scratch_floats(4, C, OC) * 4 <= ((size_t)12 << 20),
          "compact scratch of %d->%d over 12 MB", C, OC);
    free(in), free(w), free(bias), free(ref), free(out), free(fast), free(wh);
  }
  CHECK(gcam__conv3x3_wino_compact_cols(4, 512, 512) < 512, "512->512 is not sliced");
  { /* sliced and many tile blocks (40x40: 100 tiles of 4x4): against the fast path only */
    const int H = 40, W = 40, C = 512, OC = 512;
    const size_t n_in = (size_t)H * W * C, n_out = (size_t)H * W * OC, n_w = (size_t)9 * C * OC;
    float *in = falloc(n_in), *w = falloc(n_w), *bias = falloc(OC);
    float *out = falloc(n_out), *fast = falloc(n_out);
    test_fill_uniform(in, n_in, &seed, 0.0f, 1.0f);
    test_fill_uniform(w, n_w, &seed, -0.1f, 0.1f);
    test_fill_uniform(bias, OC, &seed, -0.1f, 0.1f);
    float *pk = falloc(gcam__conv3x3_wino_compact_scratch_floats(4, C, OC));
    float *sw = falloc(gcam__conv3x3_wino_scratch_floats(4, H, W, C, OC, 0));
    float *pw = falloc(gcam__conv3x3_wino_packed_floats(4, C, OC));
    gcam__conv3x3_wino_pack(4, pw, w, bias, C, OC);
    gcam__conv3x3_wino_forward(4, fast, in, pw, H, W, C, OC, sw, 0, 0);
    memset(out, 0xff, n_out * sizeof *out);
    gcam__conv3x3_wino_forward_compact_pool(4, out, in, w, GCAM__DTYPE_F32, bias, H, W, C, OC,
                                            sw, pk, NULL);
    double big = 0;
    for (size_t i = 0; i < n_out; i++) big = fabs(fast[i]) > big ? fabs(fast[i]) : big;
    const double e = test_max_abs_err(out, fast, n_out) / big;
    CHECK(e <= 1e-5, "compact 40x40x512->512 (sliced, many blocks) vs fast: %.3g", e);
    free(in), free(w), free(bias), free(out), free(fast), free(pk), free(sw), free(pw);
  }
  CHECK(bad == 0, "%d of %d compact conv cases failed", bad, cases);
  printf("conv compact: %d cases, worst error / sum|terms| %.2e vs ref, %.2e vs fast\n", cases,
         worst, worst_fast);
}

/* The accumulating microkernel (C += A.B, packed bias skipped): vec against scalar, and a k
 * split in two calls (plain, then acc) bit-identical to one plain call over the whole k with a
 * zero bias, which the fused compact path relies on. */
static void test_igemm_acc_ukernel(void) {
  const size_t ncs[] = {1, 3, 4, 7, 8, 9, 16, 17}, kcs[] = {1, 2, 5, 8, 11};
  const size_t ldc = 24;
  float rows[GCAM_GEMM_MR][22], b[22 * 17], zb[17] = {0};
  float *pk = falloc(3 * gcam__gemm_block_floats(22)), *p1 = falloc(3 * gcam__gemm_block_floats(22));
  float *p2 = falloc(3 * gcam__gemm_block_floats(22));
  float cv[GCAM_GEMM_MR * 24], cs[GCAM_GEMM_MR * 24], c0[GCAM_GEMM_MR * 24], c1[GCAM_GEMM_MR * 24];
  int bad = 0, cases = 0;
  for (size_t mr = 1; mr <= GCAM_GEMM_MR; mr++)
    for (size_t ni = 0; ni < sizeof ncs / sizeof *ncs; ni++)
      for (size_t ki = 0; ki < sizeof kcs / sizeof *kcs; ki++) {
        const size_t nc = ncs[ni], kc = kcs[ki];
        test_fill_uniform(&rows[0][0], sizeof rows / sizeof(float), &seed, -1.0f, 1.0f);
        test_fill_uniform(b, 2 * kc * nc, &seed, -1.0f, 1.0f);
        gcam__gemm_pack(pk, b, nc, NULL, kc, nc);
        const float *a[GCAM_GEMM_MR], *a2[GCAM_GEMM_MR];
        for (size_t m = 0; m < GCAM_GEMM_MR; m++)
          a[m] = rows[m < mr ? m : mr - 1], a2[m] = a[m] + kc;
        test_fill_uniform(cv, GCAM_GEMM_MR * 24, &seed, -1.0f, 1.0f);
        memcpy(cs, cv, sizeof cs);
        memcpy(c0, cv, sizeof c0);
        gcam__f32_igemm_acc_ukernel_4x8__vec(mr, nc, kc, 1, a, pk, cv, ldc);
        gcam__f32_igemm_acc_ukernel_4x8__scalar(mr, nc, kc, 1, a, pk, cs, ldc);
        double worst = 0.0, worst_s = 0.0;
        int clobbered = 0, split = 0;
        for (size_t m = 0; m < GCAM_GEMM_MR; m++)
          for (size_t n = 0; n < ldc; n++) {
            const size_t i = m * ldc + n;
            if (m < mr && n < nc) {
              double acc = c0[i]; /* the scalar twin against a plain loop */
              for (size_t k = 0; k < kc; k++) acc += (double)a[m][k] * b[k * nc + n];
              const double e = fabs(cv[i] - cs[i]) / (fabs(cs[i]) > 1.0 ? fabs(cs[i]) : 1.0);
              const double es = fabs(cs[i] - acc) / (fabs(acc) > 1.0 ? fabs(acc) : 1.0);
              if (e > worst || e != e) worst = e != e ? INFINITY : e;
              if (es > worst_s || es != es) worst_s = es != es ? INFINITY : es;
            } else if (cv[i] != c0[i]) {
              clobbered = 1;
            }
          }
        /* k = 2*kc in one call vs kc + kc */
        gcam__gemm_pack(p1, b, nc, zb, 2 * kc, nc);
        gcam__gemm_pack(p2, b, nc, zb, kc, nc);
        gcam__gemm_pack(pk, b + kc * nc, nc, NULL, kc, nc);
        memset(c0, 0, sizeof c0), memset(c1, 0, sizeof c1);
        gcam__f32_igemm_ukernel_4x8__vec(mr, nc, 2 * kc, 1, a, p1, c0, ldc);
        gcam__f32_igemm_ukernel_4x8__vec(mr, nc, kc, 1, a, p2, c1, ldc);
        gcam__f32_igemm_acc_ukernel_4x8__vec(mr, nc, kc, 1, a2, pk, c1, ldc);
        split = memcmp(c0, c1, sizeof c0) != 0;
        cases++;
        if (!(worst <= 1e-6 && worst_s <= 1e-5) || clobbered || split) {
          bad++;
          CHECK(0, "igemm acc mr=%zu nc=%zu kc=%zu: vec/scalar %.3g, scalar/ref %.3g, wrote "
                "outside %d, k split differs %d", mr, nc, kc, worst, worst_s, clobbered, split);
        }
      }
  CHECK(bad == 0, "%d of %d acc microkernel cases failed", bad, cases);
  free(pk), free(p1), free(p2);
}

static void reverse_run(void *pool, gcam_task_fn fn, void *context, int32_t n_tasks);

/* The fused one-block compact path (gcam__conv3x3_wino_forward_compact_fused): odd shapes
 * (H, W not multiples of 4, C and OC not of 8; one with the group-major weight copy over the
 * budget), f32 and f16 weights, F(2,3) and F(4,3), against the reference; and every column
 * group / channel chunk (ragged last ones, chunks not a multiple of 4), and 2..4 tasks in
 * reverse order, bit-identical to the defaults on one task. */
static void test_conv_compact_fused(void) {
  static const int shapes[][4] = {{5, 7, 37, 45}, {6, 5, 19, 27}, {5, 6, 300, 301},
                                  {3, 2, 700, 600}, {1, 1, 3, 5}};
  static const int32_t cwk[][2] = {{8, 8}, {24, 20}, {16, 5}, {40, 1}, {1000, 1000}};
  int bad = 0, cases = 0;
  double worst = 0.0;
  for (int si = 0; si < 5; si++) {
    const int H = shapes[si][0], W = shapes[si][1], C = shapes[si][2], OC = shapes[si][3];
    const size_t n_in = (size_t)H * W * C, n_out = (size_t)H * W * OC, n_w = (size_t)9 * C * OC;
    float *in = falloc(n_in), *w = falloc(n_w), *bias = falloc(OC);
    float *ref = falloc(n_out), *out = falloc(n_out), *got = falloc(n_out);
    uint16_t *wh = malloc(n_w * 2);
    test_fill_uniform(in, n_in, &seed, 0.0f, 1.0f);
    test_fill_uniform(w, n_w, &seed, -0.1f, 0.1f);
    test_fill_uniform(bias, OC, &seed, -0.1f, 0.1f);
    for (size_t k = 0; k < n_w; k++) { /* halves, and w = their value */
      wh[k] = test_half(w[k]);
      w[k] = (float)half_value(wh[k]);
    }
    gcam__conv3x3_relu_forward_ref(ref, in, w, bias, H, W, C, OC);
    double *mag = conv_magnitude(in, w, bias, H, W, C, OC);
    for (int m = 2; m <= 4; m += 2) {
      float *pk = falloc(gcam__conv3x3_wino_compact_scratch_floats(m, C, OC));
      float *sw = falloc(gcam__conv3x3_wino_scratch_floats_pool(m, H, W, C, OC, 0, 4));
      for (int dt = 0; dt <= 1; dt++) {
        const void *wp = dt ? (const void *)wh : w;
        memset(out, 0xff, n_out * sizeof *out);
        int rc = gcam__conv3x3_wino_forward_compact_fused(m, out, in, wp, (gcam__dtype)dt, bias,
                                                          H, W, C, OC, sw, pk, 0, 0, NULL);
        const double e = conv_err(out, ref, mag, n_out);
        cases++;
        if (rc != 0 || !(e <= (m == 4 ? 1e-4 : 1e-5))) {
          bad++;
          CHECK(0, "compact fused F(%d,3) dtype %d %dx%dx%d->%d: rc %d, %.3g vs ref", m, dt, H,
                W, C, OC, rc, e);
        }
        if (e > worst) worst = e;
        /* the default entry takes this path */
        gcam__conv3x3_wino_forward_compact_pool(m, got, in, wp, (gcam__dtype)dt, bias, H, W, C,
                                                OC, sw, pk, NULL);
        CHECK(memcmp(got, out, n_out * sizeof *out) == 0,
              "compact F(%d,3) dtype %d %dx%dx%d->%d: not the fused path's bits", m, dt, H, W,
              C, OC);
        for (int v = 0; v < 5; v++) {
          memset(got, 0xff, n_out * sizeof *got);
          gcam__conv3x3_wino_forward_compact_fused(m, got, in, wp, (gcam__dtype)dt, bias, H, W,
                                                   C, OC, sw, pk, cwk[v][0], cwk[v][1], NULL);
          cases++;
          if (memcmp(got, out, n_out * sizeof *out) != 0) {
            bad++;
            CHECK(0, "compact fused F(%d,3) dtype %d %dx%dx%d->%d cw %d kc %d: differs", m, dt,
                  H, W, C, OC, (int)cwk[v][0], (int)cwk[v][1]);
          }
        }
        for (int32_t nt = 2; nt <= 4; nt++) {
          const gcam_threadpool pool = {reverse_run, NULL, nt};
          memset(got, 0xff, n_out * sizeof *got);
          gcam__conv3x3_wino_forward_compact_fused(m, got, in, wp, (gcam__dtype)dt, bias, H, W,
                                                   C, OC, sw, pk, si == 1 ? 8 : 0, 0, &pool);
          cases++;
          if (memcmp(got, out, n_out * sizeof *out) != 0) {
            bad++;
            CHECK(0, "compact fused F(%d,3) dtype %d %dx%dx%d->%d on %d tasks: differs", m, dt,
                  H, W, C, OC, (int)nt);
          }
        }
      }
      free(pk), free(sw);
    }
    free(mag), free(in), free(w), free(bias), free(ref), free(out), free(got), free(wh);
  }
  { /* more than one tile block: refused, output untouched */
    float x = 0.0f, y = 7.0f;
    CHECK(gcam__conv3x3_wino_forward_compact_fused(4, &y, &x, &x, GCAM__DTYPE_F32, &x, 100, 100,
                                                   1, 1, &x, &x, 0, 0, NULL) == -1 && y == 7.0f,
          "compact fused accepted a layer of many tile blocks");
  }
  CHECK(bad == 0, "%d of %d compact fused cases failed", bad, cases);
  printf("conv compact fused: %d cases, worst error / sum|terms| %.2e vs ref\n", cases, worst);
}

/* ---- dense weights in f16 / int8 ------------------------------------------------------------ */

/* the exact value of an IEEE half, from its definition (independent of the kernels') */
static double half_value(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  double v = e ? ldexp(1024 + m, e - 25) : ldexp(m, -24);
  return h & 0x8000 ? -v : v;
}

/* every finite half: the scalar and the vector widening are exact */
static void test_f16_widening(void) {
  int bad_s = 0, bad_v = 0;
  uint16_t h4[4];
  for (uint32_t h = 0; h < 65536; h++) {
    if ((h & 0x7c00) == 0x7c00) continue; /* Inf/NaN: refused by the loader */
    const double want = half_value((uint16_t)h);
    const float s = gcam__f16_to_f32((uint16_t)h);
    bad_s += (double)s != want || !!signbit(s) != ((h & 0x8000) != 0);
    for (int k = 0; k < 4; k++) h4[k] = (uint16_t)(h ^ (k << 13)); /* other lanes differ */
    const gcam_f32x4 v = gcam__f16x4_load(h4);
    bad_v += v[0] != s || !!signbit(v[0]) != !!signbit(s);
    for (int k = 1; k < 4; k++)
      if ((h4[k] & 0x7c00) != 0x7c00) bad_v += v[k] != gcam__f16_to_f32(h4[k]);
  }
  CHECK(bad_s == 0, "%d halves widened wrong by gcam__f16_to_f32", bad_s);
  CHECK(bad_v == 0, "%d halves widened wrong by gcam__f16x4_load", bad_v);
  /* the dense kernels' loads: 2^-112 times the value (gcam__f16x4_load_lo), exact, sign of
   * zero included, subnormal halves as f32 subnormals; eight at once as four and four */
  int bad_lo = 0, bad_8 = 0;
  uint16_t h8[8];
  for (uint32_t h = 0; h < 65536; h++) {
    if ((h & 0x7c00) == 0x7c00) continue;
    for (int k = 0; k < 8; k++) { /* the other lanes: other finite halves */
      h8[k] = (uint16_t)(h ^ (k << 12));
      if ((h8[k] & 0x7c00) == 0x7c00) h8[k] &= 0xbfff;
    }
    const gcam_f32x4 lo[2] = {gcam__f16x4_load_lo(h8, gcam__f16_mask()),
                              gcam__f16x4_load_lo(h8 + 4, gcam__f16_mask())};
    gcam_f32x4 lo8[2], v8[2];
    gcam__f16x8_load_lo(lo8, h8, gcam__f16_mask());
    gcam__f16x8_load(v8, h8);
    for (int k = 0; k < 8; k++) {
      const double want = half_value(h8[k]);
      const int neg = (h8[k] & 0x8000) != 0;
      const float l = lo[k / 4][k % 4], l8 = lo8[k / 4][k % 4], v = v8[k / 4][k % 4];
      bad_lo += (double)l != ldexp(want, -112) || !!signbit(l) != neg;
      bad_8 += memcmp(&l, &l8, sizeof l) != 0 || (double)v != want || !!signbit(v) != neg;
    }
  }
  CHECK(bad_lo == 0, "%d halves widened wrong by gcam__f16x4_load_lo / f16x8_load_lo", bad_lo);
  CHECK(bad_8 == 0, "%d halves widened wrong by gcam__f16x8_load(_lo)", bad_8);
  int8_t q[4] = {-128, -1, 0, 127};
  gcam_f32x4 v = gcam__i8x4_load(q);
  CHECK(v[0] == -128.0f && v[1] == -1.0f && v[2] == 0.0f && v[3] == 127.0f, "int8 widening");
}

/* a half in (-2, 2) from a uniform x in [-1, 1): exponent 0..15 (subnormals included) */
static uint16_t test_half(float x) {
  const uint32_t u = (uint32_t)((x + 1.0f) * 2147483648.0f);
  return (uint16_t)((u >> 31) << 15 | ((u >> 20) & 15) << 10 | (u & 1023));
}

/* the fast f16/int8 dense kernels against their _ref twins and (f16; int8 quantizes x and
 * d_out: test_dense_int8) against the f32 kernels on the widened weights, on awkward sizes:
 * IN below, at and above the 8-row unroll, OUT not a multiple of 4 */
static void test_dense_dtypes(void) {
  const int INs[] = {1, 3, 7, 8, 9, 17, 100, 1031};
  const int OUTs[] = {1, 3, 4, 5, 7, 8, 9, 12, 13, 21, 33, 1000}; /* the 8-column step's edges */
  int bad = 0, cases = 0;
  double worst = 0.0;
  for (int dt = 1; dt <= 2; dt++)
    for (size_t ii = 0; ii < sizeof INs / sizeof *INs; ii++)
      for (size_t oi = 0; oi < sizeof OUTs / sizeof *OUTs; oi++) {
        const int IN = INs[ii], OUT = OUTs[oi];
        const size_t n = (size_t)IN * OUT;
        float *in = falloc(IN), *wf = falloc(n), *bias = falloc(OUT), *scale = falloc(OUT);
        float *o1 = falloc(OUT), *o2 = falloc(OUT), *o3 = falloc(OUT), *g = falloc(OUT);
        float *d1 = falloc(IN), *d2 = falloc(IN), *d3 = falloc(IN);
        void *wq = malloc(n * 2);
        test_fill_uniform(in, IN, &seed, -1.0f, 1.0f);
        test_fill_uniform(wf, n, &seed, -1.0f, 1.0f);
        test_fill_uniform(bias, OUT, &seed, -1.0f, 1.0f);
        test_fill_uniform(scale, OUT, &seed, 0.001f, 0.02f);
        test_fill_uniform(g, OUT, &seed, -1.0f, 1.0f);
        for (size_t k = 0; k < n; k++) { /* the stored weights, and wf = their exact value */
          if (dt == GCAM__DTYPE_F16) {
            ((uint16_t *)wq)[k] = test_half(wf[k]);
            wf[k] = (float)half_value(((uint16_t *)wq)[k]);
          } else {
            const int8_t q = (int8_t)((int)(wf[k] * 127.5f) - (k % 97 == 0));
            ((int8_t *)wq)[k] = q;
            wf[k] = (float)q * scale[k % OUT];
          }
        }
        const gcam__dense_weights dw = {(gcam__dtype)dt, wq, scale, bias, 0};
        for (int relu = 0; relu < 2; relu++) {
          gcam__dense_forward_dt_ref(o1, in, &dw, IN, OUT, relu);
          gcam__dense_forward_dt(o2, in, &dw, IN, OUT, relu);
          gcam__dense_forward_ref(o3, in, wf, bias, IN, OUT, relu);
          double e = dense_err(o2, o1, in, wf, bias, IN, OUT, 0);
          double e3 = dense_err(o1, o3, in, wf, bias, IN, OUT, 0);
          cases++;
          if (!(e <= 1e-5) || !(e3 <= 1e-6 || dt == GCAM__DTYPE_I8)) {
            bad++;
            CHECK(0, "dense forward dtype %d IN=%d OUT=%d relu=%d: %.3g vs ref, ref vs f32 %.3g",
                  dt, IN, OUT, relu, e, e3);
          }
          if (e > worst) worst = e;
        }
        gcam__dense_backward_input_dt_ref(d1, g, &dw, IN, OUT);
        gcam__dense_backward_input_dt(d2, g, &dw, IN, OUT);
        gcam__dense_backward_input_ref(d3, g, wf, IN, OUT);
        double e = dense_err(d2, d1, g, wf, NULL, IN, OUT, 1);
        double e3 = dense_err(d1, d3, g, wf, NULL, IN, OUT, 1);
        cases++;
        if (!(e <= 1e-5) || !(e3 <= 1e-6 || dt == GCAM__DTYPE_I8)) {
          bad++;
          CHECK(0, "dense backward dtype %d IN=%d OUT=%d: %.3g vs ref, ref vs f32 %.3g", dt, IN,
                OUT, e, e3);
        }
        if (e > worst) worst = e;
        free(in), free(wf), free(bias), free(scale), free(o1), free(o2), free(o3), free(g);
        free(d1), free(d2), free(d3), free(wq);
      }
  CHECK(bad == 0, "%d of %d f16/int8 dense cases failed", bad, cases);
  printf("dense f16/int8: %d cases, worst error / sum|terms| %.2e\n", cases, worst);
}

/* ---- int8 dense: integer dot products with x / d_out quantized to int16 ------------------- */

/* 1 when a and b are both NaN, the same infinity, or both finite */
static int same_class(double a, double b) {
  if (a != a || b != b) return a != a && b != b;
  if (isinf(a) || isinf(b)) return a == b;
  return 1;
}

/* gcam__quantize_i16 by its contract: the largest |v| to +-32767, ties to even, |v - s q| <=
 * s / 2; v = x * mul; and the scale's refusals (NaN, Inf, all below ~4e-34) */
static void test_quantize_i16(void) {
  enum { N = 9 };
  const float x[N] = {1.0f, -1.0f, 0.5f, 0.0f, -0.0f, 3.0f / 65534.0f, 1.0f / 65534.0f,
                      0.25f, -0.75f};
  float s;
  int16_t q[N];
  CHECK(gcam__quantize_i16_scale(&s, x, NULL, N) && s == 1.0f / 32767.0f, "quantize scale %g", s);
  gcam__quantize_i16(q, x, NULL, N, s);
  CHECK(q[0] == 32767 && q[1] == -32767 && q[2] == 16384 && q[3] == 0 && q[4] == 0,
        "quantize: %d %d %d %d %d", q[0], q[1], q[2], q[3], q[4]);
  /* 3/65534 / (1/32767) = 1.5 -> 2, 0.5 -> 0 (ties to even; the f32 inputs are within
   * 2^-24 of the ties, so allow either neighbour but nothing further) */
  CHECK(q[5] >= 1 && q[5] <= 2 && q[6] >= 0 && q[6] <= 1, "quantize ties: %d %d", q[5], q[6]);
  int bad = 0;
  for (int k = 0; k < N; k++) bad += !(fabs((double)x[k] - (double)s * q[k]) <= s * 0.5000001);
  CHECK(bad == 0, "quantize: %d values beyond scale / 2", bad);
  const float mul[N] = {2, 2, 2, 2, 2, 2, 2, 2, 2};
  float s2;
  CHECK(gcam__quantize_i16_scale(&s2, x, mul, N) && s2 == 2.0f / 32767.0f, "scale with mul %g", s2);
  gcam__quantize_i16(q, x, mul, N, s2);
  CHECK(q[0] == 32767 && q[8] == -24575, "quantize with mul: %d %d", q[0], q[8]);
  float y[3] = {1.0f, NAN, 2.0f};
  CHECK(!gcam__quantize_i16_scale(&s, y, NULL, 3), "a NaN is not quantized");
  y[1] = -INFINITY;
  CHECK(!gcam__quantize_i16_scale(&s, y, NULL, 3), "an Inf is not quantized");
  const float big[2] = {3e38f, 1.0f}, bm[2] = {10.0f, 1.0f};
  CHECK(!gcam__quantize_i16_scale(&s, big, bm, 2), "x * mul overflowing is not quantized");
  const float tiny[2] = {1e-35f, -1e-36f}, zero[2] = {0.0f, -0.0f};
  CHECK(!gcam__quantize_i16_scale(&s, tiny, NULL, 2), "a subnormal scale is refused: %g", s);
  CHECK(gcam__quantize_i16_scale(&s, zero, NULL, 2) && s == 0.0f, "all zero: scale 0");
  gcam__quantize_i16(q, zero, NULL, 2, 0.0f);
  CHECK(q[0] == 0 && q[1] == 0, "all zero: q 0");
}

/* x (n) of kind k: 0 uniform in [-1, 1] with every 5th zero, 1 all zero, 2 one NaN, 3 one
 * +Inf, 4 kind 0 times 1e30, 5 kind 0 times 1e-30, 6 in [0, 1], 7 all -1 (with every weight
 * -128 and one scale: the largest i32 sums the kernels allow) */
static void int8_fill(float *x, size_t n, int k) {
  test_fill_uniform(x, n, &seed, k == 6 ? 0.0f : -1.0f, 1.0f);
  for (size_t i = 0; i < n; i += 5) x[i] = 0.0f;
  if (k == 1) memset(x, 0, n * sizeof *x);
  if (k == 2) x[n / 2] = NAN;
  if (k == 3) x[n / 3] = INFINITY;
  for (size_t i = 0; k == 7 && i < n; i++) x[i] = -1.0f;
  for (size_t i = 0; k >= 4 && k <= 5 && i < n; i++) x[i] *= k == 4 ? 1e30f : 1e-30f;
}

/* one int8 output y: against the _ref twin's yr (1e-5 of the sum of |terms| mag), and against
 * the unquantized exact sum within the quantization bound qerr plus the f32 rounding; counts
 * the failures in *b, *bb and keeps the worst ratios */
static void int8_judge(int *b, int *bb, double *worst, double *worst_bound, float y, float yr,
                       double exact, double mag, double qerr) {
  const double e = fabs((double)y - yr) / (mag > 0.0 ? mag : 1e-300);
  const double bound = qerr * (1 + 1e-9) + 2e-6 * mag, eb = fabs((double)y - exact);
  *b += !(e <= 1e-5);
  *bb += !(eb <= bound);
  if (e > *worst) *worst = e;
  if (eb / bound > *worst_bound) *worst_bound = eb / bound;
}

/* The int8 kernels against their _ref twins (the same int16 integers, summed exactly), and
 * against the exact double sum of the unquantized x: |y - exact| <= scale[o] * sx / 2 *
 * sum_i |q[i,o]| (forward; backward sg / 2 * sum_o |q[i,o]|) plus the f32 rounding, 2e-6 of
 * the sum of |terms| (measured below 3e-7). Sizes: IN and OUT odd, 1, at the forward's pass
 * of 4 row pairs and its 512-row blocks (511, 512, 513, 1025), the backward's 2048-column
 * i32 runs and 8192-column blocks (2049, 4103, 8200); x and d_out of every kind of int8_fill
 * (NaN and Inf must come out as from f32 arithmetic: NaN, the same infinities). */
static void test_dense_int8(void) {
  const int shapes[][2] = {{1, 1},     {1, 7},     {7, 1},     {9, 15},    {17, 9},
                           {15, 17},   {511, 13},  {512, 9},   {513, 17},  {1025, 7},
                           {1031, 33}, {7, 513},   {33, 1031}, {17, 2049}, {9, 4103},
                           {3, 8200},  {513, 1031}};
  const int n_shapes = (int)(sizeof shapes / sizeof *shapes);
  int bad = 0, bad_bound = 0, bad_nf = 0, cases = 0;
  double worst = 0.0, worst_bound = 0.0; /* error / sum|terms|, error / the bound */
  for (int si = 0; si < n_shapes; si++)
    for (int kind = 0; kind <= 7; kind++) {
      const int IN = shapes[si][0], OUT = shapes[si][1];
      const size_t n = (size_t)IN * OUT;
      float *in = falloc(IN), *bias = falloc(OUT), *scale = falloc(OUT), *g = falloc(OUT);
      float *wf = falloc(n), *y = falloc(OUT), *yr = falloc(OUT), *yf = falloc(OUT);
      float *d = falloc(IN), *dr = falloc(IN), *df = falloc(IN);
      int8_t *q = malloc(n);
      int8_fill(in, IN, kind);
      int8_fill(g, OUT, kind);
      test_fill_uniform(bias, OUT, &seed, -1.0f, 1.0f);
      test_fill_uniform(scale, OUT, &seed, 0.001f, 0.02f);
      for (size_t k = 0; k < n; k++) {
        float u;
        test_fill_uniform(&u, 1, &seed, -1.0f, 1.0f);
        q[k] = kind == 7 ? -128 : (int8_t)((int)(u * 127.5f) - (k % 97 == 0)); /* -128..127 */
        if (kind == 7) scale[k % OUT] = 0.01f;
        wf[k] = (float)q[k] * scale[k % OUT];
      }
      const gcam__dense_weights dw = {GCAM__DTYPE_I8, q, scale, bias, 0};
      const int finite = kind != 2 && kind != 3;
      float mx = 0.0f, mg = 0.0f; /* the quantization scales, computed here */
      for (int i = 0; i < IN; i++) mx = fabsf(in[i]) > mx ? fabsf(in[i]) : mx;
      for (int o = 0; o < OUT; o++) mg = fabsf(g[o] * scale[o]) > mg ? fabsf(g[o] * scale[o]) : mg;
      const double sx = mx / 32767.0f, sg = mg / 32767.0f;
      for (int relu = 0; relu < 2; relu++) {
        gcam__dense_forward_dt(y, in, &dw, IN, OUT, relu);
        gcam__dense_forward_dt_ref(yr, in, &dw, IN, OUT, relu);
        gcam__dense_forward_ref(yf, in, wf, bias, IN, OUT, relu);
        cases++;
        int b = 0, bb = 0, nf = 0;
        for (int o = 0; o < OUT; o++) {
          double mag = fabs(bias[o]), sumq = 0.0, exact = 0.0;
          for (int i = 0; i < IN; i++) {
            const int8_t v = q[(size_t)i * OUT + o];
            mag += fabs((double)in[i] * v * scale[o]), sumq += abs(v);
            exact += (double)in[i] * v;
          }
          exact = bias[o] + scale[o] * exact;
          if (relu) exact = exact > 0.0 ? exact : 0.0;
          if (!finite) { /* the f32 arithmetic's NaN / Inf */
            nf += !same_class(y[o], yf[o]) || !same_class(y[o], yr[o]);
            continue;
          }
          if (kind == 1) { /* all zero: the bias, exactly */
            b += y[o] != (relu && !(bias[o] > 0.0f) ? 0.0f : bias[o]);
            continue;
          }
          int8_judge(&b, &bb, &worst, &worst_bound, y[o], yr[o], exact, mag,
                     scale[o] * sx / 2 * sumq);
        }
        if (b || bb || nf)
          CHECK(0, "int8 forward %dx%d relu=%d x kind %d: %d vs ref, %d beyond the quantization "
                "bound, %d NaN/Inf unlike f32", IN, OUT, relu, kind, b, bb, nf);
        bad += b != 0, bad_bound += bb != 0, bad_nf += nf != 0;
      }
      gcam__dense_backward_input_dt(d, g, &dw, IN, OUT);
      gcam__dense_backward_input_dt_ref(dr, g, &dw, IN, OUT);
      gcam__dense_backward_input_ref(df, g, wf, IN, OUT);
      cases++;
      int b = 0, bb = 0, nf = 0;
      for (int i = 0; i < IN; i++) {
        double mag = 0.0, sumq = 0.0, exact = 0.0;
        for (int o = 0; o < OUT; o++) {
          const int8_t v = q[(size_t)i * OUT + o];
          mag += fabs((double)v * scale[o] * g[o]), sumq += abs(v);
          exact += (double)v * scale[o] * g[o];
        }
        if (!finite) {
          nf += !same_class(d[i], df[i]) || !same_class(d[i], dr[i]);
          continue;
        }
        if (kind == 1) {
          b += d[i] != 0.0f;
          continue;
        }
        int8_judge(&b, &bb, &worst, &worst_bound, d[i], dr[i], exact, mag, sg / 2 * sumq);
      }
      if (b || bb || nf)
        CHECK(0, "int8 backward %dx%d d_out kind %d: %d vs ref, %d beyond the quantization "
              "bound, %d NaN/Inf unlike f32", IN, OUT, kind, b, bb, nf);
      bad += b != 0, bad_bound += bb != 0, bad_nf += nf != 0;
      free(in), free(bias), free(scale), free(g), free(wf), free(y), free(yr), free(yf);
      free(d), free(dr), free(df), free(q);
    }
  CHECK(bad == 0, "%d of %d int8 dense cases differ from the _ref twins", bad, cases);
  CHECK(bad_bound == 0, "%d of %d int8 dense cases beyond the quantization bound", bad_bound,
        cases);
  CHECK(bad_nf == 0, "%d of %d int8 dense cases with NaN/Inf unlike f32", bad_nf, cases);
  printf("dense int8: %d cases, worst error / sum|terms| %.2e vs ref, worst error / "
         "quantization bound %.3f vs the unquantized sum\n", cases, worst, worst_bound);
}

/* f16 weights have two bodies: with x (forward) or d_out (backward) below 2^16 in magnitude,
 * the weights are read as 2^-112 times their value and x, d_out are scaled by 2^112 instead;
 * otherwise the plain widening. Both give the f32 kernels' bits on the widened weights (the
 * same products, summed in the same order), which this checks, and stay within the _ref
 * twins' tolerance. Halves of every kind (subnormal, negative, +-0, the largest), odd IN and
 * OUT, OUT not a multiple of 8; inputs within [-1, 1], with one at the largest float below
 * 2^16 (the scaled body), at 2^16, beyond it and at 1e30 (the fallback: scaled, these would
 * overflow to Inf). */
/* gcam__f16_scale_up on every finite half, for every largest exponent a layer may have:
 * each half becomes exactly 2^k times itself (sign and zeros kept), with k = min(10, 30 -
 * the largest exponent field), and at k = 10 no half is subnormal */
static void test_f16_scale_up(void) {
  static uint16_t a[65536], b[65536];
  int bad = 0;
  for (int emax = 0; emax <= 30; emax++) {
    size_t n = 0;
    for (uint32_t v = 0; v < 65536; v++)
      if (((v >> 10) & 31) <= (uint32_t)emax) a[n] = b[n] = (uint16_t)v, n++;
    const int32_t k = gcam__f16_scale_up(b, n);
    bad += k != (30 - emax < 10 ? 30 - emax : 10);
    for (size_t i = 0; i < n; i++) {
      bad += ldexp(half_value(a[i]), k) != half_value(b[i]) || (a[i] >> 15) != (b[i] >> 15);
      bad += k == 10 && (b[i] & 0x7c00) == 0 && (b[i] & 0x03ff) != 0;
    }
  }
  CHECK(bad == 0, "f16_scale_up: %d halves or exponents wrong", bad);
}

static void test_dense_f16_paths(void) {
  const int INs[] = {1, 7, 9, 17, 33, 129};
  const int OUTs[] = {1, 3, 5, 7, 9, 13, 27, 101};
  const float bigs[] = {0.0f, 65535.996f, -65536.0f, 70000.0f, 1e30f};
  const uint16_t special[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x83ff,
                              0x0400, 0x7bff, 0xfbff};
  int bad = 0, bad_ref = 0, cases = 0;
  CHECK(65535.996f < 65536.0f && nextafterf(65535.996f, INFINITY) == 65536.0f,
        "65535.996f is the largest float below 2^16");
  for (size_t ii = 0; ii < sizeof INs / sizeof *INs; ii++)
    for (size_t oi = 0; oi < sizeof OUTs / sizeof *OUTs; oi++)
      for (size_t bi = 0; bi < sizeof bigs / sizeof *bigs; bi++) {
        const int IN = INs[ii], OUT = OUTs[oi];
        const size_t n = (size_t)IN * OUT;
        float *in = falloc(IN), *wf = falloc(n), *bias = falloc(OUT), *g = falloc(OUT);
        float *y16 = falloc(OUT), *y32 = falloc(OUT), *yr = falloc(OUT);
        float *d16 = falloc(IN), *d32 = falloc(IN), *dr = falloc(IN);
        uint16_t *wh = malloc(n * sizeof *wh);
        test_fill_uniform(in, IN, &seed, -1.0f, 1.0f);
        test_fill_uniform(bias, OUT, &seed, -1.0f, 1.0f);
        test_fill_uniform(g, OUT, &seed, -1.0f, 1.0f);
        test_fill_uniform(wf, n, &seed, -1.0f, 1.0f);
        if (bigs[bi] != 0.0f) in[IN / 2] = bigs[bi], g[OUT / 2] = -bigs[bi];
        for (size_t k = 0; k < n; k++) {
          wh[k] = k % 5 == 0 ? special[(k / 5) % 9] : test_half(wf[k]);
          wf[k] = (float)half_value(wh[k]);
        }
        const gcam__dense_weights dw = {GCAM__DTYPE_F16, wh, NULL, bias, 0};
        for (int relu = 0; relu < 2; relu++) {
          gcam__dense_forward_dt(y16, in, &dw, IN, OUT, relu);
          gcam__dense_forward(y32, in, wf, bias, IN, OUT, relu);
          gcam__dense_forward_dt_ref(yr, in, &dw, IN, OUT, relu);
          cases++;
          if (memcmp(y16, y32, OUT * sizeof *y16)) {
            bad++;
            CHECK(0, "dense f16 forward IN=%d OUT=%d relu=%d x=%g: not the f32 kernel's bits",
                  IN, OUT, relu, (double)bigs[bi]);
          }
          if (!(dense_err(y16, yr, in, wf, bias, IN, OUT, 0) <= 1e-5)) bad_ref++;
        }
        gcam__dense_backward_input_dt(d16, g, &dw, IN, OUT);
        gcam__dense_backward_input(d32, g, wf, IN, OUT);
        gcam__dense_backward_input_dt_ref(dr, g, &dw, IN, OUT);
        cases++;
        if (memcmp(d16, d32, IN * sizeof *d16)) {
          bad++;
          CHECK(0, "dense f16 backward IN=%d OUT=%d d_out=%g: not the f32 kernel's bits", IN,
                OUT, (double)-bigs[bi]);
        }
        if (!(dense_err(d16, dr, g, wf, NULL, IN, OUT, 1) <= 1e-5)) bad_ref++;
        /* the same layer as the loader keeps it (gcam__f16_scale_up: times 2^k; k = 10 while
         * its largest half is below 2^4, 7 once 0x5fff = 511.9 is in): the same bits out, on
         * the scaled body (x up to 2^(16+k)) and on the plain one (1e30) */
        for (int top = 0; top < 2; top++) {
          const uint16_t big = top ? 0x5fffu : 0x4bffu; /* 511.9 or 15.99 for the largest */
          for (size_t k = 0; k < n; k++) {
            if ((wh[k] & 0x7fff) == 0x7bff) wh[k] = (uint16_t)((wh[k] & 0x8000) | big);
            if ((wh[k] & 0x7c00) > (big & 0x7c00)) wh[k] = (uint16_t)((wh[k] & 0x8000) | big);
            wf[k] = (float)half_value(wh[k]);
          }
          uint16_t *up = malloc(n * sizeof *up);
          memcpy(up, wh, n * sizeof *up);
          int32_t emax = 0;
          for (size_t q = 0; q < n; q++) emax = ((wh[q] >> 10) & 31) > emax ? (wh[q] >> 10) & 31 : emax;
          const int32_t k = gcam__f16_scale_up(up, n);
          CHECK(k == (30 - emax < 10 ? 30 - emax : 10), "f16_scale_up: k %d, largest exponent %d",
                (int)k, (int)emax);
          const gcam__dense_weights dk = {GCAM__DTYPE_F16, up, NULL, bias, k};
          gcam__dense_forward_dt(y16, in, &dk, IN, OUT, 1);
          gcam__dense_forward(y32, in, wf, bias, IN, OUT, 1);
          gcam__dense_forward_dt_ref(yr, in, &dk, IN, OUT, 1);
          gcam__dense_backward_input_dt(d16, g, &dk, IN, OUT);
          gcam__dense_backward_input(d32, g, wf, IN, OUT);
          gcam__dense_backward_input_dt_ref(dr, g, &dk, IN, OUT);
          cases += 2;
          if (memcmp(y16, y32, OUT * sizeof *y16) || memcmp(d16, d32, IN * sizeof *d16)) {
            bad++;
            CHECK(0, "dense f16 x2^%d IN=%d OUT=%d x=%g: not the f32 kernel's bits", (int)k, IN,
                  OUT, (double)bigs[bi]);
          }
          if (!(dense_err(y16, yr, in, wf, bias, IN, OUT, 0) <= 1e-5) ||
              !(dense_err(d16, dr, g, wf, NULL, IN, OUT, 1) <= 1e-5))
            bad_ref++;
          free(up);
        }
        free(in), free(wf), free(bias), free(g), free(y16), free(y32), free(yr);
        free(d16), free(d32), free(dr), free(wh);
      }
  CHECK(bad == 0, "%d of %d f16 dense cases differ from the f32 kernels", bad, cases);
  CHECK(bad_ref == 0, "%d of %d f16 dense cases beyond the _ref tolerance", bad_ref, cases);
  printf("dense f16 scaled and plain bodies: %d cases, bit-identical to f32 on the widened "
         "weights\n", cases);
}

/* a "pool" that runs its tasks one after the other, last first: splits a layer as n_threads
 * would, so a value computed differently in another task's range shows */
static void reverse_run(void *pool, gcam_task_fn fn, void *context, int32_t n_tasks) {
  (void)pool;
  for (int32_t t = n_tasks - 1; t >= 0; t--) fn(context, t);
}

/* f16 / int8 dense split over 2 to 5 tasks (ranges starting at multiples of 4 columns or
 * 8 rows, not of the 8-column step): bit-identical to one task */
static void test_dense_dtypes_split(void) {
  /* int8: IN across the forward's 512-row blocks, OUT across the backward's 2048-column runs
   * and 8192-column blocks */
  const int shapes[][2] = {{129, 1003}, {1031, 1000}, {300, 517}, {1025, 2051}, {67, 8203}};
  int bad = 0, cases = 0;
  for (int dt = 1; dt <= 3; dt++) /* 3: f16 with x and d_out beyond 2^16 (the plain body) */
    for (int si = 0; si < 5; si++) {
      const int IN = shapes[si][0], OUT = shapes[si][1];
      const size_t n = (size_t)IN * OUT;
      float *in = falloc(IN), *bias = falloc(OUT), *scale = falloc(OUT), *g = falloc(OUT);
      float *y1 = falloc(OUT), *y2 = falloc(OUT), *d1 = falloc(IN), *d2 = falloc(IN);
      uint8_t *wq = malloc(n * 2);
      test_fill_uniform(in, IN, &seed, -1.0f, 1.0f);
      test_fill_uniform(bias, OUT, &seed, -1.0f, 1.0f);
      test_fill_uniform(scale, OUT, &seed, 0.001f, 0.02f);
      test_fill_uniform(g, OUT, &seed, -1.0f, 1.0f);
      if (dt == 3) in[IN - 1] = 1e5f, g[0] = -1e5f;
      for (size_t k = 0; k < n; k++) {
        float x;
        test_fill_uniform(&x, 1, &seed, -1.0f, 1.0f);
        if (dt != GCAM__DTYPE_I8)
          ((uint16_t *)wq)[k] = test_half(x);
        else
          ((int8_t *)wq)[k] = (int8_t)(int)(x * 127.0f);
      }
      const gcam__dense_weights dw = {dt == 3 ? GCAM__DTYPE_F16 : (gcam__dtype)dt, wq, scale,
                                      bias, 0};
      gcam__dense_forward_dt_pool(y1, in, &dw, IN, OUT, 1, NULL);
      gcam__dense_backward_input_dt_pool(d1, g, &dw, IN, OUT, NULL);
      for (int32_t nt = 2; nt <= 5; nt++) {
        const gcam_threadpool pool = {reverse_run, NULL, nt};
        gcam__dense_forward_dt_pool(y2, in, &dw, IN, OUT, 1, &pool);
        gcam__dense_backward_input_dt_pool(d2, g, &dw, IN, OUT, &pool);
        cases++;
        if (memcmp(y1, y2, OUT * sizeof *y1) || memcmp(d1, d2, IN * sizeof *d1)) {
          bad++;
          CHECK(0, "dense dtype %d %dx%d on %d tasks differs from one task", dt, IN, OUT, nt);
        }
      }
      free(in), free(bias), free(scale), free(g), free(y1), free(y2), free(d1), free(d2);
      free(wq);
    }
  CHECK(bad == 0, "%d of %d f16/int8 dense split cases differ", bad, cases);
}

/* ---- elementwise --------------------------------------------------------------------------- */

static void test_elementwise(void) {
  const float y[7] = {1.0f, 0.0f, -1.0f, 2.5f, -0.0f, 1e-30f, NAN};
  float d[7] = {1, 2, 3, 4, 5, 6, 7};
  const float expect[7] = {1, 0, 0, 4, 0, 6, 0};
  gcam__relu_backward(d, y, 7);
  CHECK(memcmp(d, expect, sizeof d) == 0, "relu_backward: %g %g %g %g %g %g %g", d[0], d[1],
        d[2], d[3], d[4], d[5], d[6]);

  /* both masks on 4-wide vectors and a scalar tail (11 = 2 vectors + 3): every sign, zero,
   * tiny and NaN case of y and of d, against the definitions written out here */
  {
    enum { NG = 11 };
    const float yy[NG] = {1.0f, 2.0f, -1.0f, 0.0f, 3.0f, -0.0f, 1e-40f, NAN, 4.0f, 5.0f, -2.0f};
    const float dd[NG] = {0.5f, -0.5f, 2.0f, 1.0f, -0.0f, 7.0f, 3.0f, 1.0f, 1e-40f, NAN, 9.0f};
    float a[NG], g[NG];
    memcpy(a, dd, sizeof a), memcpy(g, dd, sizeof g);
    gcam__relu_backward(a, yy, NG);
    gcam__relu_backward_guided(g, yy, NG);
    int bad = 0;
    for (int i = 0; i < NG; i++) {
      const float pa = yy[i] > 0.0f ? dd[i] : 0.0f;
      const float pg = yy[i] > 0.0f && dd[i] > 0.0f ? dd[i] : 0.0f;
      if (memcmp(&a[i], &pa, 4) != 0 && !(pa != pa && a[i] != a[i])) bad++;
      if (memcmp(&g[i], &pg, 4) != 0) bad++;
    }
    CHECK(bad == 0, "relu_backward / relu_backward_guided: %d values differ from the definition", bad);
  }

  /* softmax: large logits must not overflow; sums to 1; matches a direct double formula */
  enum { N = 37 };
  float z[N], p[N], q[N], dz[N];
  test_fill_uniform(z, N, &seed, -5.0f, 5.0f);
  z[3] = 1000.0f;
  z[4] = 999.0f;
  gcam__softmax_forward(p, z, N);
  double sum = 0.0, worst = 0.0, denom = 0.0;
  for (int i = 0; i < N; i++) denom += exp((double)z[i] - 1000.0);
  for (int i = 0; i < N; i++) {
    sum += p[i];
    double e = fabs(p[i] - exp((double)z[i] - 1000.0) / denom);
    if (e > worst || e != e) worst = e != e ? INFINITY : e;
  }
  CHECK(fabs(sum - 1.0) <= 1e-6 && worst <= 1e-7, "softmax: sum %.9g, worst %.3g", sum, worst);

  /* softmax_backward_onehot_logits against central differences of softmax_forward, in float
   * (h = 1e-2: the O(h^2) term and the outputs' rounding stay below 1e-4) */
  test_fill_uniform(z, N, &seed, -2.0f, 2.0f);
  z[5] = 3.0f;
  gcam__softmax_forward(p, z, N);
  for (int c = 0; c < N; c += 5) {
    gcam__softmax_backward_onehot_logits(dz, z, N, c);
    double wfd = 0.0;
    for (int i = 0; i < N; i++) {
      const float z0 = z[i];
      float hp, hm;
      z[i] = hp = z0 + 1e-2f;
      gcam__softmax_forward(q, z, N);
      double pp = q[c];
      z[i] = hm = z0 - 1e-2f;
      gcam__softmax_forward(q, z, N);
      z[i] = z0;
      double e = fabs((pp - q[c]) / ((double)hp - hm) - dz[i]);
      if (e > wfd) wfd = e;
    }
    CHECK(wfd <= 1e-4, "softmax_backward_onehot_logits c=%d vs finite differences: %.3g", c, wfd);
  }
}

int main(void) {
  test_igemm_ukernels();
  test_conv_sweep();
  test_conv_vgg16_shapes();
  test_vgg16_chain();
  test_maxpool_forward();
  test_maxpool_backward();
  test_dense();
  test_dense_backward_fd();
  test_f16_widening();
  test_dense_dtypes();
  test_quantize_i16();
  test_dense_int8();
  test_f16_scale_up();
  test_f16_scale_up();
  test_dense_f16_paths();
  test_dense_dtypes_split();
  test_conv_compact();
  test_igemm_acc_ukernel();
  test_conv_compact_fused();
  test_elementwise();
  TEST_MAIN_END();
}
