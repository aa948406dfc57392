/* dense.c: fully connected layers at batch 1. Both directions are memory bound (VGG16's fc1
 * is 25088 x 4096 floats, 411 MB): the loops read w once, row after row, as a stream. */
#include "ops.h"
#include "simd.h"

/* out (OUT) = bias + in . w: eight rows of w per pass over `out`, which stays in L1 (fewer
 * passes, fewer loads and stores of `out` per weight read) */
void gcam_dense_forward(float *out, const float *in, const float *w, const float *bias,
                        int32_t IN, int32_t OUT, int relu) {
  const size_t n = (size_t)OUT;
  memcpy(out, bias, n * sizeof *out);
  int32_t i = 0;
  for (; i + 8 <= IN; i += 8) {
    const float *w0 = w + (size_t)i * n;
    gcam_f32x4 v[8];
    for (int r = 0; r < 8; r++) v[r] = gcam__f32x4_splat(in[i + r]);
    size_t o = 0;
    for (; o + 4 <= n; o += 4) {
      const float *p = w0 + o;
      gcam_f32x4 a = gcam__f32x4_load(out + o) + v[0] * gcam__f32x4_load(p);
      gcam_f32x4 b = v[1] * gcam__f32x4_load(p + n);
      a += v[2] * gcam__f32x4_load(p + 2 * n);
      b += v[3] * gcam__f32x4_load(p + 3 * n);
      a += v[4] * gcam__f32x4_load(p + 4 * n);
      b += v[5] * gcam__f32x4_load(p + 5 * n);
      a += v[6] * gcam__f32x4_load(p + 6 * n);
      b += v[7] * gcam__f32x4_load(p + 7 * n);
      gcam__f32x4_store(out + o, a + b);
    }
    for (; o < n; o++) {
      float acc = out[o];
      for (int r = 0; r < 8; r++) acc += in[i + r] * w0[(size_t)r * n + o];
      out[o] = acc;
    }
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

/* d_in[i] = dot(w row i, d_out): eight rows per pass share each load of d_out */
void gcam_dense_backward_input(float *d_in, const float *d_out, const float *w, int32_t IN,
                               int32_t OUT) {
  const size_t n = (size_t)OUT;
  int32_t i = 0;
  for (; i + 8 <= IN; i += 8) {
    const float *w0 = w + (size_t)i * n;
    gcam_f32x4 a[8];
    for (int r = 0; r < 8; r++) a[r] = (gcam_f32x4){0.0f, 0.0f, 0.0f, 0.0f};
    size_t o = 0;
    for (; o + 4 <= n; o += 4) {
      const gcam_f32x4 g = gcam__f32x4_load(d_out + o);
      for (int r = 0; r < 8; r++) a[r] += g * gcam__f32x4_load(w0 + (size_t)r * n + o);
    }
    for (int r = 0; r < 8; r++) {
      float s = gcam__hsum(a[r]);
      for (size_t k = o; k < n; k++) s += w0[(size_t)r * n + k] * d_out[k];
      d_in[i + r] = s;
    }
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
