/* test_xnnpack.c: the XNNPACK backend (src/xnn_backend.c) against our naive reference ops
 * and against our fast ops, so the two native backends cross-check each other.
 *
 * Data: inputs uniform in [-1, 1), weights uniform in +-1/sqrt(fan_in) and biases in
 * [-0.2, 0.2), so outputs are O(1) and about half of them are clamped by the ReLU.
 * Tolerance for conv and dense: max |a-b| / max(|b|, 1) <= 1e-4. The legitimate differences
 * are the order of the fp32 sums (at most 9*512 = 4608 terms of size <= 0.015 here; XNNPACK
 * vs ref observed <= 4e-6) and the rounding of a fast conv's Winograd-style transforms
 * (observed <= 2e-5); a wrong layout, offset or padding gives errors of order 0.1.
 * Max-pool picks one of its inputs, so the backends must agree exactly.
 * Every output buffer has a guard zone after it that must stay untouched. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcam.h"
#include "test.h"

#ifndef GCAM_HAVE_XNNPACK

int main(void) {
  TEST_SKIP("test_xnnpack: this build has no XNNPACK backend (libxnnpack-dev not found, "
            "GCAM_XNNPACK=OFF, or WebAssembly)");
}

#else

#include "ops.h"
#include "xnn_peer.h"

#define TOL 1e-4
#define GUARD 16 /* floats after every output that nobody may write */
static const float SENTINEL = -12345.0f;

static unsigned seed = 0x9e3779b9u;

/* n floats plus XNNPACK's read slack and our guard zone, the guard filled with SENTINEL */
static float *alloc_floats(size_t n) {
  float *p = malloc(sizeof(float) * (n + GUARD) + GCAM_XNN_EXTRA_BYTES);
  if (!p) {
    fprintf(stderr, "test_xnnpack: out of memory\n");
    exit(2);
  }
  for (size_t i = 0; i < n + GUARD; i++) p[i] = SENTINEL;
  return p;
}

static int guard_intact(const float *p, size_t n) {
  for (size_t i = n; i < n + GUARD; i++)
    if (p[i] != SENTINEL) return 0;
  return 1;
}

static size_t count_zeros(const float *p, size_t n) {
  size_t z = 0;
  for (size_t i = 0; i < n; i++) z += p[i] == 0.0f;
  return z;
}

/* ---- conv -------------------------------------------------------------------------------- */

static void test_conv(const char *name, int32_t H, int32_t W, int32_t C, int32_t OC) {
  size_t nin = (size_t)H * W * C, nout = (size_t)H * W * OC, nw = (size_t)9 * C * OC;
  float *in = alloc_floats(nin), *w = alloc_floats(nw), *b = alloc_floats((size_t)OC);
  float *ref = alloc_floats(nout), *fast = alloc_floats(nout), *xnn = alloc_floats(nout);
  float wscale = 1.0f / sqrtf(9.0f * (float)C);
  test_fill_uniform(in, nin, &seed, -1.0f, 1.0f);
  test_fill_uniform(w, nw, &seed, -wscale, wscale);
  test_fill_uniform(b, (size_t)OC, &seed, -0.2f, 0.2f);

  gcam__conv3x3_relu_forward_ref(ref, in, w, b, H, W, C, OC);

  float *packed = alloc_floats(gcam__conv3x3_packed_floats(C, OC));
  float *scratch = alloc_floats(gcam__conv3x3_scratch_floats(H, W, C, OC));
  gcam__conv3x3_pack(packed, w, b, C, OC);
  gcam__conv3x3_relu_forward(fast, in, packed, H, W, C, OC, scratch);

  gcam_xnn_conv *op = NULL;
  gcam_status st = gcam__xnn_conv3x3_relu_create(&op, w, b, C, OC);
  CHECK(st == GCAM_STATUS_OK, "%s: create: %s %s", name, gcam_status_string(st), gcam_last_error());
  if (st == GCAM_STATUS_OK) {
    st = gcam__xnn_conv3x3_relu_run(op, xnn, in, H, W);
    CHECK(st == GCAM_STATUS_OK, "%s: run: %s %s", name, gcam_status_string(st), gcam_last_error());
    double e_ref = test_max_rel_err(xnn, ref, nout, 1.0);
    double e_fast = test_max_rel_err(xnn, fast, nout, 1.0);
    CHECK(e_ref <= TOL, "%s (H=%d W=%d C=%d OC=%d): xnn vs ref err %.3g > %g", name, (int)H,
          (int)W, (int)C, (int)OC, e_ref, TOL);
    CHECK(e_fast <= TOL, "%s (H=%d W=%d C=%d OC=%d): xnn vs fast err %.3g > %g", name, (int)H,
          (int)W, (int)C, (int)OC, e_fast, TOL);
    CHECK(guard_intact(xnn, nout), "%s: xnn wrote past its output", name);
    printf("  conv %-10s H=%3d W=%3d C=%3d OC=%3d  xnn-ref %.2e  xnn-fast %.2e  zeros %zu/%zu\n",
           name, (int)H, (int)W, (int)C, (int)OC, e_ref, e_fast, count_zeros(ref, nout), nout);

    /* the same op again on a smaller image, then on the first size with a moved input:
     * setup must rebind shapes and pointers, not reuse stale ones */
    if (H > 1 && W > 1) {
      int32_t h2 = H - 1, w2 = W / 2 + 1;
      size_t nin2 = (size_t)h2 * w2 * C, nout2 = (size_t)h2 * w2 * OC;
      float *in2 = alloc_floats(nin2), *ref2 = alloc_floats(nout2), *xnn2 = alloc_floats(nout2);
      test_fill_uniform(in2, nin2, &seed, -1.0f, 1.0f);
      gcam__conv3x3_relu_forward_ref(ref2, in2, w, b, h2, w2, C, OC);
      st = gcam__xnn_conv3x3_relu_run(op, xnn2, in2, h2, w2);
      double e2 = test_max_rel_err(xnn2, ref2, nout2, 1.0);
      CHECK(st == GCAM_STATUS_OK && e2 <= TOL, "%s: rerun at %dx%d: err %.3g", name, (int)h2,
            (int)w2, e2);
      CHECK(guard_intact(xnn2, nout2), "%s: rerun wrote past its output", name);

      float *in3 = alloc_floats(nin), *xnn3 = alloc_floats(nout);
      memcpy(in3, in, sizeof(float) * nin);
      st = gcam__xnn_conv3x3_relu_run(op, xnn3, in3, H, W);
      double e3 = test_max_rel_err(xnn3, ref, nout, 1.0);
      CHECK(st == GCAM_STATUS_OK && e3 <= TOL, "%s: rerun with moved buffers: err %.3g", name, e3);
      free(in2), free(ref2), free(xnn2), free(in3), free(xnn3);
    }
  }
  gcam__xnn_conv_delete(op);
  free(in), free(w), free(b), free(ref), free(fast), free(xnn), free(packed), free(scratch);
}

/* bias NULL means zero bias */
static void test_conv_null_bias(void) {
  const int32_t H = 5, W = 6, C = 7, OC = 9;
  size_t nin = (size_t)H * W * C, nout = (size_t)H * W * OC, nw = (size_t)9 * C * OC;
  float *in = alloc_floats(nin), *w = alloc_floats(nw), *zero = alloc_floats((size_t)OC);
  float *ref = alloc_floats(nout), *xnn = alloc_floats(nout);
  test_fill_uniform(in, nin, &seed, -1.0f, 1.0f);
  test_fill_uniform(w, nw, &seed, -0.2f, 0.2f);
  memset(zero, 0, sizeof(float) * OC);
  gcam__conv3x3_relu_forward_ref(ref, in, w, zero, H, W, C, OC);
  gcam_xnn_conv *op = NULL;
  gcam_status st = gcam__xnn_conv3x3_relu_create(&op, w, NULL, C, OC);
  CHECK(st == GCAM_STATUS_OK, "null bias create: %s", gcam_last_error());
  if (st == GCAM_STATUS_OK) {
    st = gcam__xnn_conv3x3_relu_run(op, xnn, in, H, W);
    double e = test_max_rel_err(xnn, ref, nout, 1.0);
    CHECK(st == GCAM_STATUS_OK && e <= TOL, "null bias: err %.3g", e);
  }
  gcam__xnn_conv_delete(op);
  free(in), free(w), free(zero), free(ref), free(xnn);
}

/* ---- max-pool ---------------------------------------------------------------------------- */

static void test_pool(int32_t H, int32_t W, int32_t C) {
  size_t nin = (size_t)H * W * C, nout = (size_t)(H / 2) * (W / 2) * C;
  float *in = alloc_floats(nin), *ref = alloc_floats(nout), *fast = alloc_floats(nout);
  float *xnn = alloc_floats(nout);
  test_fill_uniform(in, nin, &seed, -1.0f, 1.0f);
  gcam__maxpool2x2_forward_ref(ref, NULL, in, H, W, C);
  gcam__maxpool2x2_forward(fast, NULL, in, H, W, C);

  gcam_xnn_maxpool *op = NULL;
  gcam_status st = gcam__xnn_maxpool2x2_create(&op, C);
  CHECK(st == GCAM_STATUS_OK, "pool create C=%d: %s", (int)C, gcam_last_error());
  if (st == GCAM_STATUS_OK) {
    st = gcam__xnn_maxpool2x2_run(op, xnn, in, H, W);
    CHECK(st == GCAM_STATUS_OK, "pool run %dx%dx%d: %s", (int)H, (int)W, (int)C,
          gcam_last_error());
    double e_ref = test_max_abs_err(xnn, ref, nout), e_fast = test_max_abs_err(xnn, fast, nout);
    CHECK(e_ref == 0.0, "pool %dx%dx%d: xnn vs ref differ by %.3g", (int)H, (int)W, (int)C, e_ref);
    CHECK(e_fast == 0.0, "pool %dx%dx%d: xnn vs fast differ by %.3g", (int)H, (int)W, (int)C,
          e_fast);
    CHECK(guard_intact(xnn, nout), "pool %dx%dx%d: xnn wrote past its output", (int)H, (int)W,
          (int)C);
    printf("  pool H=%3d W=%3d C=%3d  out %zu floats, xnn == ref == fast: %s\n", (int)H, (int)W,
           (int)C, nout, e_ref == 0.0 && e_fast == 0.0 ? "yes" : "NO");
  }
  gcam__xnn_maxpool_delete(op);
  free(in), free(ref), free(fast), free(xnn);
}

/* ---- dense ------------------------------------------------------------------------------- */

static void test_dense(const char *name, int32_t IN, int32_t OUT, int relu) {
  size_t nw = (size_t)IN * OUT;
  float *in = alloc_floats((size_t)IN), *w = alloc_floats(nw), *b = alloc_floats((size_t)OUT);
  float *ref = alloc_floats((size_t)OUT), *fast = alloc_floats((size_t)OUT);
  float *xnn = alloc_floats((size_t)OUT);
  float wscale = 1.0f / sqrtf((float)IN);
  test_fill_uniform(in, (size_t)IN, &seed, -1.0f, 1.0f);
  test_fill_uniform(w, nw, &seed, -wscale, wscale);
  test_fill_uniform(b, (size_t)OUT, &seed, -0.2f, 0.2f);
  gcam__dense_forward_ref(ref, in, w, b, IN, OUT, relu);
  gcam__dense_forward(fast, in, w, b, IN, OUT, relu);

  gcam_xnn_dense *op = NULL;
  gcam_status st = gcam__xnn_dense_create(&op, w, b, IN, OUT, relu);
  CHECK(st == GCAM_STATUS_OK, "%s: dense create: %s", name, gcam_last_error());
  if (st == GCAM_STATUS_OK) {
    st = gcam__xnn_dense_run(op, xnn, in);
    CHECK(st == GCAM_STATUS_OK, "%s: dense run: %s", name, gcam_last_error());
    double e_ref = test_max_rel_err(xnn, ref, (size_t)OUT, 1.0);
    double e_fast = test_max_rel_err(xnn, fast, (size_t)OUT, 1.0);
    CHECK(e_ref <= TOL, "%s (IN=%d OUT=%d relu=%d): xnn vs ref err %.3g", name, (int)IN,
          (int)OUT, relu, e_ref);
    CHECK(e_fast <= TOL, "%s (IN=%d OUT=%d relu=%d): xnn vs fast err %.3g", name, (int)IN,
          (int)OUT, relu, e_fast);
    CHECK(guard_intact(xnn, (size_t)OUT), "%s: xnn wrote past its output", name);
    size_t neg = 0;
    for (int32_t o = 0; o < OUT; o++) neg += xnn[o] < 0.0f;
    if (relu) CHECK(neg == 0, "%s: %zu negative outputs after ReLU", name, neg);
    printf("  dense %-8s IN=%5d OUT=%4d relu=%d  xnn-ref %.2e  xnn-fast %.2e  negatives %zu\n",
           name, (int)IN, (int)OUT, relu, e_ref, e_fast, neg);
  }
  gcam__xnn_dense_delete(op);
  free(in), free(w), free(b), free(ref), free(fast), free(xnn);
}

/* ---- bad arguments ----------------------------------------------------------------------- */

static void test_bad_arguments(void) {
  float w[9 * 2 * 3] = {0}, b[3] = {0}, buf[64] = {0};
  gcam_xnn_conv *conv = (gcam_xnn_conv *)buf;
  gcam_status st = gcam__xnn_conv3x3_relu_create(&conv, w, b, 0, 3);
  CHECK(st == GCAM_STATUS_INVALID_ARGUMENT && conv == NULL && gcam_last_error()[0],
        "conv C=0: %s", gcam_status_string(st));
  st = gcam__xnn_conv3x3_relu_create(&conv, w, b, 2, -1);
  CHECK(st == GCAM_STATUS_INVALID_ARGUMENT, "conv OC=-1: %s", gcam_status_string(st));
  st = gcam__xnn_conv3x3_relu_create(NULL, w, b, 2, 3);
  CHECK(st == GCAM_STATUS_INVALID_ARGUMENT, "conv NULL op: %s", gcam_status_string(st));
  st = gcam__xnn_conv3x3_relu_create(&conv, NULL, b, 2, 3);
  CHECK(st == GCAM_STATUS_INVALID_ARGUMENT, "conv NULL weights: %s", gcam_status_string(st));
  st = gcam__xnn_conv3x3_relu_create(&conv, w, b, 2, 3);
  CHECK(st == GCAM_STATUS_OK, "conv 2->3: %s", gcam_last_error());
  if (st == GCAM_STATUS_OK) {
    st = gcam__xnn_conv3x3_relu_run(conv, buf, buf + 32, 0, 4);
    CHECK(st == GCAM_STATUS_INVALID_ARGUMENT, "conv run H=0: %s", gcam_status_string(st));
    st = gcam__xnn_conv3x3_relu_run(conv, NULL, buf, 1, 1);
    CHECK(st == GCAM_STATUS_INVALID_ARGUMENT, "conv run NULL out: %s", gcam_status_string(st));
    gcam__xnn_conv_delete(conv);
  }
  gcam__xnn_conv_delete(NULL);

  gcam_xnn_maxpool *pool = NULL;
  st = gcam__xnn_maxpool2x2_create(&pool, 0);
  CHECK(st == GCAM_STATUS_INVALID_ARGUMENT, "pool C=0: %s", gcam_status_string(st));
  st = gcam__xnn_maxpool2x2_create(&pool, 4);
  CHECK(st == GCAM_STATUS_OK, "pool C=4: %s", gcam_last_error());
  if (st == GCAM_STATUS_OK) {
    st = gcam__xnn_maxpool2x2_run(pool, buf, buf + 32, -3, 4);
    CHECK(st == GCAM_STATUS_INVALID_ARGUMENT, "pool run H=-3: %s", gcam_status_string(st));
    /* a 1-pixel-high image pools to nothing: OK, and nothing written */
    for (int i = 0; i < 32; i++) buf[i] = SENTINEL;
    st = gcam__xnn_maxpool2x2_run(pool, buf, buf + 32, 1, 5);
    int untouched = 1;
    for (int i = 0; i < 32; i++) untouched &= buf[i] == SENTINEL;
    CHECK(st == GCAM_STATUS_OK && untouched, "pool 1x5: %s, untouched=%d",
          gcam_status_string(st), untouched);
    gcam__xnn_maxpool_delete(pool);
  }
  gcam__xnn_maxpool_delete(NULL);

  gcam_xnn_dense *dense = NULL;
  st = gcam__xnn_dense_create(&dense, w, b, 0, 3, 0);
  CHECK(st == GCAM_STATUS_INVALID_ARGUMENT && dense == NULL, "dense IN=0: %s",
        gcam_status_string(st));
  st = gcam__xnn_dense_create(&dense, NULL, b, 2, 3, 0);
  CHECK(st == GCAM_STATUS_INVALID_ARGUMENT, "dense NULL weights: %s", gcam_status_string(st));
  st = gcam__xnn_dense_run(NULL, buf, buf);
  CHECK(st == GCAM_STATUS_INVALID_ARGUMENT, "dense run NULL op: %s", gcam_status_string(st));
  gcam__xnn_dense_delete(NULL);
}

int main(void) {
  gcam_status st = gcam__xnn_init();
  CHECK(st == GCAM_STATUS_OK, "gcam__xnn_init: %s %s", gcam_status_string(st), gcam_last_error());
  if (st != GCAM_STATUS_OK) TEST_MAIN_END();

  printf("conv3x3+ReLU, awkward sizes:\n");
  test_conv("1px", 1, 1, 1, 1);
  test_conv("row", 1, 5, 3, 7);
  test_conv("column", 5, 1, 4, 9);
  test_conv("2x3", 2, 3, 1, 1);
  test_conv("odd", 7, 9, 5, 17);
  test_conv("c16", 6, 5, 16, 8);
  test_conv("c33", 3, 4, 33, 65);
  test_conv_null_bias();
  printf("conv3x3+ReLU, VGG16 layer shapes at reduced spatial size:\n");
  test_conv("conv1_1", 16, 16, 3, 64);
  test_conv("conv1_2", 16, 16, 64, 64);
  test_conv("conv2_1", 12, 12, 64, 128);
  test_conv("conv3_2", 8, 8, 256, 256);
  test_conv("conv4_1", 6, 6, 256, 512);
  test_conv("conv5_1", 7, 7, 512, 512);

  printf("maxpool 2x2:\n");
  test_pool(2, 2, 1);
  test_pool(3, 3, 1);
  test_pool(5, 7, 3);
  test_pool(4, 6, 13);
  test_pool(28, 28, 64);
  test_pool(15, 14, 512);

  printf("dense:\n");
  test_dense("1x1", 1, 1, 0);
  test_dense("3x5", 3, 5, 1);
  test_dense("17x33", 17, 33, 0);
  test_dense("100x7", 100, 7, 1);
  test_dense("dense0/", 25088, 64, 1);
  test_dense("dense1/", 4096, 256, 1);
  test_dense("dense2", 4096, 1000, 0);

  printf("bad arguments:\n");
  test_bad_arguments();
  TEST_MAIN_END();
}

#endif
