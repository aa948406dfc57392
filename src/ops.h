/* ops.h: the network's operators, one forward (and where Grad-CAM needs it, one backward)
 * function per op, shapes in comments. Tensors are NHWC with batch 1: (H, W, C) floats,
 * row-major, C fastest. Every fast op has a naive twin `*_ref` that the tests compare
 * against; the twins take the weights in the file's canonical layout.
 *
 * Canonical weight layouts (as in weights/FORMAT.md):
 *   conv:  w_hwio (3, 3, C, OC), bias (OC)
 *   dense: w (IN, OUT) row-major, bias (OUT)
 *
 * The fast conv takes weights packed once at load time by gcam__conv3x3_pack(); the packed
 * blob's layout is private to src/kernels/ and may change with the kernel.
 * None of these functions allocates. */
#ifndef GCAM_OPS_H
#define GCAM_OPS_H

#include <stddef.h>
#include <stdint.h>

/* ---- 3x3 convolution, stride 1, zero padding 1 ("same"), + bias + ReLU ---------------- */

/* floats needed by the packed weights of a (C -> OC) conv */
size_t gcam__conv3x3_packed_floats(int32_t C, int32_t OC);
/* pack w_hwio (3,3,C,OC) + bias (OC) into `packed` (gcam__conv3x3_packed_floats floats) */
void gcam__conv3x3_pack(float *packed, const float *w_hwio, const float *bias, int32_t C,
                       int32_t OC);
/* floats of scratch gcam__conv3x3_relu_forward needs for this shape (may be 0) */
size_t gcam__conv3x3_scratch_floats(int32_t H, int32_t W, int32_t C, int32_t OC);
/* in (H,W,C) -> out (H,W,OC) = ReLU(conv3x3(in) + bias). `out` must not alias `in`. */
void gcam__conv3x3_relu_forward(float *out, const float *in, const float *packed, int32_t H,
                               int32_t W, int32_t C, int32_t OC, float *scratch);
void gcam__conv3x3_relu_forward_ref(float *out, const float *in, const float *w_hwio,
                                   const float *bias, int32_t H, int32_t W, int32_t C,
                                   int32_t OC);

/* ---- 3x3 convolution backward: the input gradient (kernels/conv3x3_backward.c) ---------- */

/* The fast path packs the forward's w_hwio (3,3,C,OC) rotated 180 degrees and transposed
 * (OC -> C) once, like a forward's weights; no bias. */
size_t gcam__conv3x3_backward_packed_floats(int32_t C, int32_t OC);
void gcam__conv3x3_backward_pack(float *packed, const float *w_hwio, int32_t C, int32_t OC);
size_t gcam__conv3x3_backward_scratch_floats(int32_t H, int32_t W, int32_t C, int32_t OC);
/* dy (H,W,OC) = d/d(conv3x3(in) + bias) -> dx (H,W,C) = d/d in. dy is the gradient before the
 * ReLU: apply gcam__relu_backward with the layer's output first. `dx` must not alias `dy`. */
void gcam__conv3x3_backward_input(float *dx, const float *dy, const float *packed, int32_t H,
                                  int32_t W, int32_t C, int32_t OC, float *scratch);
void gcam__conv3x3_backward_input_ref(float *dx, const float *dy, const float *w_hwio,
                                      int32_t H, int32_t W, int32_t C, int32_t OC);

/* ---- 2x2 max-pool, stride 2 (floor: an odd last row/column is dropped) ----------------- */

/* in (H,W,C) -> out (H/2,W/2,C); argmax (H/2,W/2,C) = flat index into `in` of the max
 * (first max in window order (0,0),(0,1),(1,0),(1,1) on ties, as torch; a NaN wins).
 * argmax may be NULL when no backward will follow. */
void gcam__maxpool2x2_forward(float *out, int32_t *argmax, const float *in, int32_t H,
                             int32_t W, int32_t C);
void gcam__maxpool2x2_forward_ref(float *out, int32_t *argmax, const float *in, int32_t H,
                                 int32_t W, int32_t C);
/* d_in (H,W,C) = 0 everywhere, then d_in[argmax[i]] += d_out[i] */
void gcam__maxpool2x2_backward(float *d_in, const float *d_out, const int32_t *argmax, int32_t H,
                              int32_t W, int32_t C);

/* ---- dense (fully connected), batch 1 ---------------------------------------------------- */

/* in (IN) -> out (OUT) = in . w + bias, then ReLU if relu != 0. w (IN, OUT). */
void gcam__dense_forward(float *out, const float *in, const float *w, const float *bias,
                        int32_t IN, int32_t OUT, int relu);
void gcam__dense_forward_ref(float *out, const float *in, const float *w, const float *bias,
                            int32_t IN, int32_t OUT, int relu);
/* d_in (IN) = w . d_out, i.e. d_in[i] = sum_o w[i,o] * d_out[o]. w (IN, OUT). */
void gcam__dense_backward_input(float *d_in, const float *d_out, const float *w, int32_t IN,
                               int32_t OUT);
void gcam__dense_backward_input_ref(float *d_in, const float *d_out, const float *w, int32_t IN,
                                   int32_t OUT);

/* Dense weights in their storage type: the file's dtype codes (weights/FORMAT.md). f16 is
 * IEEE binary16; int8 is symmetric with one f32 scale per output feature,
 * w[i,o] = q[i,o] * scale[o]. The kernels widen to f32 in registers; the arithmetic is f32. */
typedef enum gcam__dtype { GCAM__DTYPE_F32 = 0, GCAM__DTYPE_F16 = 1, GCAM__DTYPE_I8 = 2 } gcam__dtype;

typedef struct gcam__dense_weights {
  gcam__dtype dtype;
  const void *w;      /* (IN, OUT): float, uint16_t (half bits) or int8_t */
  const float *scale; /* (OUT), int8 only */
  const float *bias;  /* (OUT) */
  /* f16 only: the halves hold w * 2^f16_exp, exactly (0..10). The loader scales a layer's
   * halves up so that its subnormal halves become normal ones (model_load.c): a subnormal
   * half widens to a subnormal float in the kernels, and a multiply with a subnormal
   * operand is slow on x86. */
  int32_t f16_exp;
} gcam__dense_weights;

/* A dense layer's halves h (n) times 2^k in place, with k the largest of 0..10 that leaves
 * every half finite, so that its subnormal halves become normal ones; returns k (the
 * layer's f16_exp). Exact: a power of two times a half that stays in range is a half. */
int32_t gcam__f16_scale_up(uint16_t *h, uint64_t n);

/* The int8 kernels' other operand in int16 (kernels/dense.c), shared by the kernels and
 * their _ref twins so that both see the same integers. v[k] = x[k] * mul[k] in f32 (mul NULL:
 * x[k]). gcam__quantize_i16_scale sets *scale = max|v| / 32767 (f32) and returns 1 when every
 * v is finite and *scale is 0 (all v zero) or a normal float; else 0, and the caller keeps v
 * in float (NaN and Inf then propagate as in f32). gcam__quantize_i16 sets q[k] to v[k] / scale
 * rounded to the nearest integer (ties to even), |q| <= 32767, for that scale (0: all q 0):
 * |v[k] - scale * q[k]| <= scale / 2 (up to a rounding of 2^-53 relative). */
int gcam__quantize_i16_scale(float *scale, const float *x, const float *mul, size_t n);
void gcam__quantize_i16(int16_t *q, const float *x, const float *mul, size_t n, float scale);

/* the same two functions for any storage type; the _ref twins widen each weight exactly and
 * sum in double. int8 multiplies in integers: forward out[o] = bias[o] + scale[o] * sx *
 * sum_i xq[i] q[i,o], xq = x quantized to int16 with scale sx (gcam__quantize_i16),
 * backward d_in[i] = sg * sum_o q[i,o] gq[o], gq = scale * d_out quantized with sg; the
 * _ref twins use the same integers and sum them exactly. Where x (d_out) cannot be quantized
 * (a NaN or Inf, or all of it below ~4e-34), int8 falls back to f32 arithmetic on the
 * widened weights (forward bias + scale[o] * sum_i in[i] q[i,o]), as f16 and f32. */
void gcam__dense_forward_dt(float *out, const float *in, const gcam__dense_weights *w,
                            int32_t IN, int32_t OUT, int relu);
void gcam__dense_forward_dt_ref(float *out, const float *in, const gcam__dense_weights *w,
                                int32_t IN, int32_t OUT, int relu);
void gcam__dense_backward_input_dt(float *d_in, const float *d_out, const gcam__dense_weights *w,
                                   int32_t IN, int32_t OUT);
void gcam__dense_backward_input_dt_ref(float *d_in, const float *d_out,
                                       const gcam__dense_weights *w, int32_t IN, int32_t OUT);

/* ---- 3x3 convolution backward, continued: packing from the storage dtype ------------------ */

/* The same packing (the fast path's layout, gcam__conv3x3_backward_packed_floats floats)
 * from the canonical weights in their storage dtype (f32 or f16 bits), the Winograd
 * transform in f32 instead of double, split over the pool's threads; done as the backward
 * reaches the layer, into one scratch sized for the largest layer. */
struct gcam_threadpool;
void gcam__conv3x3_backward_pack_canon_pool(float *packed, const void *w_hwio, gcam__dtype dt,
                                            int32_t C, int32_t OC,
                                            const struct gcam_threadpool *pool);

/* ---- elementwise --------------------------------------------------------------------------- */

/* d (N) *= (y > 0), where y is the ReLU's output */
void gcam__relu_backward(float *d, const float *y, size_t N);
/* guided backprop's ReLU (Springenberg et al. 2015): d (N) = d * (y > 0) * (d > 0) */
void gcam__relu_backward_guided(float *d, const float *y, size_t N);
/* p (N) = softmax(z), computed stably in double */
void gcam__softmax_forward(float *p, const float *z, int32_t N);
/* d(p_c)/dz (N) = p_c * (onehot_c - p), p = softmax(z), computed from the logits z in double
 * (1 - p_c as the sum of the other probabilities: no cancellation when p_c saturates) */
void gcam__softmax_backward_onehot_logits(float *dz, const float *z, int32_t N, int32_t c);

#endif
