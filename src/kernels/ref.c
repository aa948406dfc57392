/* ref.c: the naive twins of the fast ops: plain loops over the canonical weight layouts,
 * accumulating in double. They are the tests' oracle and the ops' documentation. */
#include <math.h>

#include "ops.h"
#include "simd.h"

void gcam__conv3x3_relu_forward_ref(float *out, const float *in, const float *w_hwio,
                                   const float *bias, int32_t H, int32_t W, int32_t C,
                                   int32_t OC) {
  for (int32_t y = 0; y < H; y++)
    for (int32_t x = 0; x < W; x++)
      for (int32_t o = 0; o < OC; o++) {
        double acc = bias[o];
        for (int32_t ky = 0; ky < 3; ky++)
          for (int32_t kx = 0; kx < 3; kx++) {
            int32_t iy = y + ky - 1, ix = x + kx - 1;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue; /* zero padding */
            const float *px = in + ((size_t)iy * W + ix) * C;
            const float *wk = w_hwio + (size_t)(ky * 3 + kx) * C * OC + o;
            for (int32_t c = 0; c < C; c++) acc += (double)px[c] * wk[(size_t)c * OC];
          }
        out[((size_t)y * W + x) * OC + o] = acc > 0.0 ? (float)acc : 0.0f;
      }
}

void gcam__maxpool2x2_forward_ref(float *out, int32_t *argmax, const float *in, int32_t H,
                                 int32_t W, int32_t C) {
  int32_t OH = H / 2, OW = W / 2;
  for (int32_t y = 0; y < OH; y++)
    for (int32_t x = 0; x < OW; x++)
      for (int32_t c = 0; c < C; c++) {
        float best = 0.0f;
        int32_t best_i = -1;
        for (int32_t d = 0; d < 4; d++) { /* window order (0,0),(0,1),(1,0),(1,1) */
          int32_t i = ((2 * y + d / 2) * W + 2 * x + d % 2) * C + c;
          float v = in[i];
          /* strict >: the first max wins ties; a NaN always takes over (as torch's CPU
           * kernel: `val > maxval || isnan(val)`, so the last NaN of the window wins) */
          if (best_i < 0 || v > best || v != v) {
            best = v;
            best_i = i;
          }
        }
        size_t o = ((size_t)y * OW + x) * C + c;
        out[o] = best;
        if (argmax) argmax[o] = best_i;
      }
}

void gcam__dense_forward_ref(float *out, const float *in, const float *w, const float *bias,
                            int32_t IN, int32_t OUT, int relu) {
  for (int32_t o = 0; o < OUT; o++) {
    double acc = bias[o];
    for (int32_t i = 0; i < IN; i++) acc += (double)in[i] * w[(size_t)i * OUT + o];
    out[o] = (relu && !(acc > 0.0)) ? 0.0f : (float)acc;
  }
}

void gcam__dense_backward_input_ref(float *d_in, const float *d_out, const float *w, int32_t IN,
                                   int32_t OUT) {
  for (int32_t i = 0; i < IN; i++) {
    double acc = 0.0;
    for (int32_t o = 0; o < OUT; o++) acc += (double)w[(size_t)i * OUT + o] * d_out[o];
    d_in[i] = (float)acc;
  }
}

/* weight k of w, widened exactly (int8: unscaled) */
static double gcam__dense_w_ref(const gcam__dense_weights *w, size_t k) {
  switch (w->dtype) {
  case GCAM__DTYPE_F16: return ldexp(gcam__f16_to_f32(((const uint16_t *)w->w)[k]), -w->f16_exp);
  case GCAM__DTYPE_I8: return ((const int8_t *)w->w)[k];
  default: return ((const float *)w->w)[k];
  }
}

/* int8 with the input quantized (ops.h): exact integer sums */
static void gcam__dense_forward_q_ref(float *out, const float *in, const gcam__dense_weights *w,
                                      int32_t IN, int32_t OUT, int relu, float sx) {
  const int8_t *q = w->w;
  for (int32_t o = 0; o < OUT; o++) {
    int64_t acc = 0;
    for (int32_t i = 0; i < IN; i++) {
      int16_t xq;
      gcam__quantize_i16(&xq, in + i, NULL, 1, sx);
      acc += (int64_t)xq * q[(size_t)i * OUT + o];
    }
    const double y = w->bias[o] + (double)w->scale[o] * ((double)sx * (double)acc);
    out[o] = (relu && !(y > 0.0)) ? 0.0f : (float)y;
  }
}

void gcam__dense_forward_dt_ref(float *out, const float *in, const gcam__dense_weights *w,
                                int32_t IN, int32_t OUT, int relu) {
  float sx;
  if (w->dtype == GCAM__DTYPE_I8 && gcam__quantize_i16_scale(&sx, in, NULL, (size_t)IN)) {
    gcam__dense_forward_q_ref(out, in, w, IN, OUT, relu, sx);
    return;
  }
  for (int32_t o = 0; o < OUT; o++) {
    double acc = 0.0;
    for (int32_t i = 0; i < IN; i++) acc += (double)in[i] * gcam__dense_w_ref(w, (size_t)i * OUT + o);
    if (w->dtype == GCAM__DTYPE_I8) acc *= w->scale[o];
    acc += w->bias[o];
    out[o] = (relu && !(acc > 0.0)) ? 0.0f : (float)acc;
  }
}

void gcam__dense_backward_input_dt_ref(float *d_in, const float *d_out,
                                       const gcam__dense_weights *w, int32_t IN, int32_t OUT) {
  float sg;
  if (w->dtype == GCAM__DTYPE_I8 && gcam__quantize_i16_scale(&sg, d_out, w->scale, (size_t)OUT)) {
    const int8_t *q = w->w;
    for (int32_t i = 0; i < IN; i++) {
      int64_t acc = 0;
      for (int32_t o = 0; o < OUT; o++) {
        int16_t gq;
        gcam__quantize_i16(&gq, d_out + o, w->scale + o, 1, sg);
        acc += (int64_t)q[(size_t)i * OUT + o] * gq;
      }
      d_in[i] = (float)((double)sg * (double)acc);
    }
    return;
  }
  for (int32_t i = 0; i < IN; i++) {
    double acc = 0.0;
    for (int32_t o = 0; o < OUT; o++) {
      double s = w->dtype == GCAM__DTYPE_I8 ? w->scale[o] : 1.0;
      acc += gcam__dense_w_ref(w, (size_t)i * OUT + o) * s * d_out[o];
    }
    d_in[i] = (float)acc;
  }
}
