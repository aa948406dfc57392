/* dense.c: fully connected layers at batch 1. Both directions are memory bound (VGG16's fc1
 * is 25088 x 4096 floats, 411 MB): the loops read w once, row after row, as a stream. */
#include "ops.h"
#include "simd.h"

/* out (OUT) = bias + in . w: four rows of w per pass over `out`, which stays in L1 */
void gcam_dense_forward(float *out, const float *in, const float *w, const float *bias,
                        int32_t IN, int32_t OUT, int relu) {
  const size_t n = (size_t)OUT;
  memcpy(out, bias, n * sizeof *out);
  int32_t i = 0;
  for (; i + 4 <= IN; i += 4) {
    const float *w0 = w + (size_t)i * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
    const float x0 = in[i], x1 = in[i + 1], x2 = in[i + 2], x3 = in[i + 3];
    const gcam_f32x4 v0 = gcam__f32x4_splat(x0), v1 = gcam__f32x4_splat(x1);
    const gcam_f32x4 v2 = gcam__f32x4_splat(x2), v3 = gcam__f32x4_splat(x3);
    size_t o = 0;
    for (; o + 4 <= n; o += 4) {
      gcam_f32x4 acc = gcam__f32x4_load(out + o);
      acc += v0 * gcam__f32x4_load(w0 + o) + v1 * gcam__f32x4_load(w1 + o);
      acc += v2 * gcam__f32x4_load(w2 + o) + v3 * gcam__f32x4_load(w3 + o);
      gcam__f32x4_store(out + o, acc);
    }
    for (; o < n; o++) out[o] += x0 * w0[o] + x1 * w1[o] + x2 * w2[o] + x3 * w3[o];
  }
  for (; i < IN; i++) {
    const float *wi = w + (size_t)i * n;
    const float x = in[i];
    const gcam_f32x4 v = gcam__f32x4_splat(x);
    size_t o = 0;
    for (; o + 4 <= n; o += 4)
      gcam__f32x4_store(out + o, gcam__f32x4_load(out + o) + v * gcam__f32x4_load(wi + o));
    for (; o < n; o++) out[o] += x * wi[o];
  }
  if (relu)
    for (size_t o = 0; o < n; o++) out[o] = out[o] > 0.0f ? out[o] : 0.0f;
}

static inline float gcam__hsum(gcam_f32x4 v) { return (v[0] + v[2]) + (v[1] + v[3]); }

/* d_in[i] = dot(w row i, d_out): four rows per pass share each load of d_out */
void gcam_dense_backward_input(float *d_in, const float *d_out, const float *w, int32_t IN,
                               int32_t OUT) {
  const size_t n = (size_t)OUT;
  int32_t i = 0;
  for (; i + 4 <= IN; i += 4) {
    const float *w0 = w + (size_t)i * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
    gcam_f32x4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    size_t o = 0;
    for (; o + 4 <= n; o += 4) {
      const gcam_f32x4 g = gcam__f32x4_load(d_out + o);
      a0 += g * gcam__f32x4_load(w0 + o);
      a1 += g * gcam__f32x4_load(w1 + o);
      a2 += g * gcam__f32x4_load(w2 + o);
      a3 += g * gcam__f32x4_load(w3 + o);
    }
    float s0 = gcam__hsum(a0), s1 = gcam__hsum(a1), s2 = gcam__hsum(a2), s3 = gcam__hsum(a3);
    for (; o < n; o++) {
      s0 += w0[o] * d_out[o];
      s1 += w1[o] * d_out[o];
      s2 += w2[o] * d_out[o];
      s3 += w3[o] * d_out[o];
    }
    d_in[i] = s0;
    d_in[i + 1] = s1;
    d_in[i + 2] = s2;
    d_in[i + 3] = s3;
  }
  for (; i < IN; i++) {
    const float *wi = w + (size_t)i * n;
    gcam_f32x4 a = {0};
    size_t o = 0;
    for (; o + 4 <= n; o += 4) a += gcam__f32x4_load(d_out + o) * gcam__f32x4_load(wi + o);
    float s = gcam__hsum(a);
    for (; o < n; o++) s += wi[o] * d_out[o];
    d_in[i] = s;
  }
}
