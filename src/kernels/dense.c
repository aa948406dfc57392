/* dense.c: fully connected layers at batch 1. Both directions are memory bound (VGG16's fc1
 * is 25088 x 4096 weights, 411 MB as f32): the loops read w once, row after row, as a stream.
 * So the weights may stay in memory in a narrower storage type (gcam__dense_weights: f32,
 * IEEE half, or int8 with one scale per output feature). f32 and f16 are widened to f32 in
 * registers: fewer bytes read, the same f32 arithmetic. One loop body per direction serves
 * them (always inlined with the type a constant, so each type gets its own specialised loop).
 * int8 multiplies in integers instead: x (forward) or scale * d_out (backward) quantized once
 * per call to int16 with one scale, i32x4.dot_i16x8_s / _mm_madd_epi16 on the int8 weights
 * widened to i16, exact i32 sums turned into f32 on boundaries fixed by the row or column
 * index (widening int8 all the way to f32 made it compute bound: no faster than f32 in wasm;
 * now 0.3x f32's time). Where x or d_out holds a NaN or an Inf, int8 takes the widening body.
 * On a pool, the forward splits the outputs and the backward the rows of w into contiguous
 * ranges, cut on the kernels' vector boundaries so each value's arithmetic is unchanged. */
#include <math.h>

#include "ops.h"
#include "parallel.h"
#include "simd.h"

#define GCAM__INLINE static inline __attribute__((always_inline))

/* below this many weights a layer is not worth a trip through the pool */
#define GCAM_DENSE_MIN_PARALLEL ((size_t)1 << 16)

/* The loop bodies' variants: the three storage types, and f16 read as 2^-112 times its value
 * (gcam__f16x4_load_lo) with 2^112 moved to the other operand: as_f32(bits) * (x * 2^112) is
 * the same product as w * x, rounded once alike, while x * 2^112 is finite and exact, i.e.
 * |x| < 2^16 (checked once per call: else the plain f16 body). One multiply less per 4
 * weights. The loader keeps a layer's halves times 2^k (ops.h: f16_exp, so that none is
 * subnormal: a multiply with a subnormal operand is slow on x86), so the factor on the other
 * operand is 2^(112-k), and x must stay below 2^(16+k); the plain body multiplies the
 * weights by that factor, and the scalar tails the widened half by 2^-k (both exact). */
#define GCAM__F16_LO 3

/* the GCAM__F16_LO bodies' constants (the mask of gcam__f16x4_load_lo, 2^112), made from the
 * job's fields at run time so that V8 keeps them in registers: it rebuilds a literal vector
 * from immediates at each use */
typedef struct {
  gcam_i32x4 mask;
  gcam_f32x4 up;    /* 2^(112-k) */
  float up1, down1; /* 2^(112-k), 2^-k */
} gcam__dense_k;

/* weights k..k+3 of w (int8: unscaled; GCAM__F16_LO: 2^-112 times the weights) */
GCAM__INLINE gcam_f32x4 gcam__w4(const void *w, size_t k, const gcam__dense_k *c, int dt) {
  if (dt == GCAM__DTYPE_F16) return gcam__f16x4_load_lo((const uint16_t *)w + k, c->mask) * c->up;
  if (dt == GCAM__F16_LO) return gcam__f16x4_load_lo((const uint16_t *)w + k, c->mask);
  if (dt == GCAM__DTYPE_I8) return gcam__i8x4_load((const int8_t *)w + k);
  return gcam__f32x4_load((const float *)w + k);
}
/* weights k..k+7 as two vectors, as gcam__w4: one wide load for the narrow types, widened
 * with the target's unpack / extend instructions (simd.h) */
GCAM__INLINE void gcam__w8(gcam_f32x4 *r, const void *w, size_t k, const gcam__dense_k *c,
                          int dt) {
  if (dt == GCAM__DTYPE_F16) {
    gcam__f16x8_load_lo(r, (const uint16_t *)w + k, c->mask);
    r[0] *= c->up, r[1] *= c->up;
  } else if (dt == GCAM__F16_LO)
    gcam__f16x8_load_lo(r, (const uint16_t *)w + k, c->mask);
  else if (dt == GCAM__DTYPE_I8) /* not taken: GCAM__WIDE */
    r[0] = gcam__i8x4_load((const int8_t *)w + k), r[1] = gcam__i8x4_load((const int8_t *)w + k + 4);
  else
    r[0] = gcam__f32x4_load((const float *)w + k), r[1] = gcam__f32x4_load((const float *)w + k + 4);
}

/* 8 when the kernels take 8 columns a step for this variant, 0 when 4 (measured with
 * bench_kernels dtypes on fc1-3: natively the 8-wide loads make f16 1.9x -> 1.2x f32's
 * time; under V8 f16 is slower with them than with its 4-wide i32x4.load16x4 path
 * (re-measured with GCAM__F16_LO: fc1 forward 1.16x the 4-wide time, backward 1.04x), and
 * f32 gains nothing: it is bound by memory). int8 comes here only when x or d_out holds a
 * NaN or an Inf (else the integer kernels below): 4-wide, the smaller code, same values. */
#if defined(__wasm_simd128__)
#define GCAM__WIDE(dt) 0
#else
#define GCAM__WIDE(dt) ((dt) == GCAM__DTYPE_F16 || (dt) == GCAM__F16_LO ? 8 : 0)
#endif
/* weight k, exact (the scalar tails take x unscaled in every variant) */
GCAM__INLINE float gcam__w1(const void *w, size_t k, const gcam__dense_k *c, int dt) {
  if (dt == GCAM__DTYPE_F16 || dt == GCAM__F16_LO)
    return gcam__f16_to_f32(((const uint16_t *)w)[k]) * c->down1;
  if (dt == GCAM__DTYPE_I8) return (float)((const int8_t *)w)[k];
  return ((const float *)w)[k];
}

/* the address of element k of w, whatever the storage type: the loops keep one per row of w
 * they stream, so that under V8 a load's address is one add (from w + 2 * (o + r * n) it
 * took five instructions, most of them reloading spilled offsets) */
GCAM__INLINE const void *gcam__wrow(const void *w, size_t k, int dt) {
  const size_t es = dt == GCAM__DTYPE_F32 ? 4 : dt == GCAM__DTYPE_I8 ? 1 : 2;
  return (const char *)w + k * es;
}

/* what the vector steps multiply the weights by: x, or x * 2^(112-k) for GCAM__F16_LO */
GCAM__INLINE float gcam__x1(float x, const gcam__dense_k *c, int dt) {
  return dt == GCAM__F16_LO ? x * c->up1 : x;
}

/* 1 when every |x[k]| < lim (NaN: 0): with lim = 2^(16+k), x * 2^(112-k) is finite and exact */
static int gcam__below(const float *x, size_t n, float lim) {
  int ok = 1;
  for (size_t k = 0; k < n; k++) ok &= x[k] < lim && x[k] > -lim;
  return ok;
}

/* out[o0, o1) = bias + in . w, for a row stride n; o0 is a multiple of 4 and o1 is too unless
 * o1 == n, so every column takes the same (vector or scalar) path as in a whole-row pass.
 * Eight rows of w per pass over `out`, which stays in L1 (fewer passes, fewer loads and
 * stores of `out` per weight read). int8 sums in . q from zero and scales once at the end:
 * bias + scale[o] * sum_i in[i] q[i,o]. */
GCAM__INLINE void gcam__dense_forward_cols(float *out, const float *in,
                                           const gcam__dense_weights *dw, int32_t IN, size_t n,
                                           size_t o0, size_t o1, int relu,
                                           const gcam__dense_k *c, int dt) {
  const void *w = dw->w;
  if (dt == GCAM__DTYPE_I8)
    memset(out + o0, 0, (o1 - o0) * sizeof *out);
  else
    memcpy(out + o0, dw->bias + o0, (o1 - o0) * sizeof *out);
  int32_t i = 0;
  for (; i + 8 <= IN; i += 8) {
    const size_t w0 = (size_t)i * n;
    gcam_f32x4 v[8];
    const void *wr[8]; /* the 8 rows (gcam__wrow) */
    for (int r = 0; r < 8; r++) {
      v[r] = gcam__f32x4_splat(gcam__x1(in[i + r], c, dt));
      wr[r] = gcam__wrow(w, w0 + (size_t)r * n, dt);
    }
    size_t o = o0;
    /* 8 columns a step, each lane with exactly the arithmetic of the 4-column loop below
     * (a and b alternate rows), so where a task's range starts does not change a value */
    for (; GCAM__WIDE(dt) && o + 8 <= o1; o += 8) {
      gcam_f32x4 a[2], b[2], x[2];
      gcam__w8(x, wr[0], o, c, dt);
      for (int q = 0; q < 2; q++) a[q] = gcam__f32x4_load(out + o + 4 * q) + v[0] * x[q];
      gcam__w8(x, wr[1], o, c, dt);
      for (int q = 0; q < 2; q++) b[q] = v[1] * x[q];
      for (int r = 2; r < 8; r += 2) {
        gcam__w8(x, wr[r], o, c, dt);
        for (int q = 0; q < 2; q++) a[q] += v[r] * x[q];
        gcam__w8(x, wr[r + 1], o, c, dt);
        for (int q = 0; q < 2; q++) b[q] += v[r + 1] * x[q];
      }
      for (int q = 0; q < 2; q++) gcam__f32x4_store(out + o + 4 * q, a[q] + b[q]);
    }
    for (; o + 4 <= o1; o += 4) {
      gcam_f32x4 a = gcam__f32x4_load(out + o) + v[0] * gcam__w4(wr[0], o, c, dt);
      gcam_f32x4 b = v[1] * gcam__w4(wr[1], o, c, dt);
      a += v[2] * gcam__w4(wr[2], o, c, dt);
      b += v[3] * gcam__w4(wr[3], o, c, dt);
      a += v[4] * gcam__w4(wr[4], o, c, dt);
      b += v[5] * gcam__w4(wr[5], o, c, dt);
      a += v[6] * gcam__w4(wr[6], o, c, dt);
      b += v[7] * gcam__w4(wr[7], o, c, dt);
      gcam__f32x4_store(out + o, a + b);
    }
    for (; o < o1; o++) {
      float acc = out[o];
      for (int r = 0; r < 8; r++) acc += in[i + r] * gcam__w1(w, w0 + (size_t)r * n + o, c, dt);
      out[o] = acc;
    }
  }
  for (; i < IN; i++) {
    const size_t wi = (size_t)i * n;
    const float x = in[i];
    const gcam_f32x4 v = gcam__f32x4_splat(gcam__x1(x, c, dt));
    size_t o = o0;
    for (; GCAM__WIDE(dt) && o + 8 <= o1; o += 8) {
      gcam_f32x4 y[2];
      gcam__w8(y, w, wi + o, c, dt);
      for (int q = 0; q < 2; q++)
        gcam__f32x4_store(out + o + 4 * q, gcam__f32x4_load(out + o + 4 * q) + v * y[q]);
    }
    for (; o + 4 <= o1; o += 4)
      gcam__f32x4_store(out + o, gcam__f32x4_load(out + o) + v * gcam__w4(w, wi + o, c, dt));
    for (; o < o1; o++) out[o] += x * gcam__w1(w, wi + o, c, dt);
  }
  if (dt == GCAM__DTYPE_I8)
    for (size_t o = o0; o < o1; o++) out[o] = dw->bias[o] + dw->scale[o] * out[o];
  if (relu)
    for (size_t o = o0; o < o1; o++) out[o] = out[o] > 0.0f ? out[o] : 0.0f;
}

static inline float gcam__hsum(gcam_f32x4 v) { return (v[0] + v[2]) + (v[1] + v[3]); }

/* d_out[o] (int8: times scale[o], as w[i,o] = q[i,o] * scale[o]; GCAM__F16_LO: times
 * 2^(112-k)) */
GCAM__INLINE gcam_f32x4 gcam__g4(const float *d_out, const float *scale, size_t o,
                                 const gcam__dense_k *c, int dt) {
  gcam_f32x4 g = gcam__f32x4_load(d_out + o);
  if (dt == GCAM__F16_LO) return g * c->up; /* 2^(112-k) */
  return dt == GCAM__DTYPE_I8 ? g * gcam__f32x4_load(scale + o) : g;
}
/* the scalar tails' d_out[o], with the exact weight of gcam__w1 */
GCAM__INLINE float gcam__g1(const float *d_out, const float *scale, size_t o, int dt) {
  return dt == GCAM__DTYPE_I8 ? d_out[o] * scale[o] : d_out[o];
}

/* d_in[i] = dot(w row i, d_out) for rows [i0, i1); i0 is a multiple of 8 and i1 is too
 * unless i1 == IN. Eight rows per pass share each load of d_out. */
GCAM__INLINE void gcam__dense_backward_rows(float *d_in, const float *d_out,
                                            const gcam__dense_weights *dw, size_t n, size_t i0,
                                            size_t i1, const gcam__dense_k *c, int dt) {
  const void *w = dw->w;
  const float *sc = dw->scale;
  size_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const size_t w0 = i * n;
    gcam_f32x4 a[8];
    const void *wr[8]; /* the 8 rows (gcam__wrow) */
    for (int r = 0; r < 8; r++) {
      a[r] = (gcam_f32x4){0.0f, 0.0f, 0.0f, 0.0f};
      wr[r] = gcam__wrow(w, w0 + (size_t)r * n, dt);
    }
    size_t o = 0;
    /* 8 columns a step: the same two vector steps per row as the loop below */
    for (; GCAM__WIDE(dt) && o + 8 <= n; o += 8) {
      gcam_f32x4 g[2], x[2];
      for (int q = 0; q < 2; q++) g[q] = gcam__g4(d_out, sc, o + 4 * q, c, dt);
      for (int r = 0; r < 8; r++) {
        gcam__w8(x, wr[r], o, c, dt);
        for (int q = 0; q < 2; q++) a[r] += g[q] * x[q];
      }
    }
    for (; o + 4 <= n; o += 4) {
      const gcam_f32x4 g = gcam__g4(d_out, sc, o, c, dt);
      for (int r = 0; r < 8; r++) a[r] += g * gcam__w4(wr[r], o, c, dt);
    }
    for (int r = 0; r < 8; r++) {
      float s = gcam__hsum(a[r]);
      for (size_t k = o; k < n; k++)
        s += gcam__w1(w, w0 + (size_t)r * n + k, c, dt) * gcam__g1(d_out, sc, k, dt);
      d_in[i + r] = s;
    }
  }
  for (; i < i1; i++) {
    const size_t wi = i * n;
    gcam_f32x4 a = {0};
    size_t o = 0;
    for (; GCAM__WIDE(dt) && o + 8 <= n; o += 8) {
      gcam_f32x4 x[2];
      gcam__w8(x, w, wi + o, c, dt);
      for (int q = 0; q < 2; q++) a += gcam__g4(d_out, sc, o + 4 * q, c, dt) * x[q];
    }
    for (; o + 4 <= n; o += 4) a += gcam__g4(d_out, sc, o, c, dt) * gcam__w4(w, wi + o, c, dt);
    float s = gcam__hsum(a);
    for (; o < n; o++) s += gcam__w1(w, wi + o, c, dt) * gcam__g1(d_out, sc, o, dt);
    d_in[i] = s;
  }
}

/* ---- int8 weights: integer dot products ------------------------------------------------
 * Widening int8 to f32 costs more than the multiply-add it feeds (9 wasm SIMD instructions
 * per 8 weights): the int8 kernels quantize the other operand (x forward, scale * d_out
 * backward) once to int16 with one scale (gcam__quantize_i16) and multiply in integers,
 * i32x4.dot_i16x8_s / _mm_madd_epi16: two products and their sum per lane. Integer sums are
 * exact, so where a column or a row is computed (vector step, tail, task) changes nothing;
 * they are turned into f32 on boundaries fixed by the row (forward) or column (backward)
 * index alone. The int16 copies live on the stack, a block at a time. */

/* see ops.h. Not inlined: it runs once per call, and the wasm modules stay smaller */
__attribute__((noinline)) int gcam__quantize_i16_scale(float *scale, const float *x,
                                                       const float *mul, size_t n) {
  float m = 0.0f;
  int finite = 1;
  for (size_t k = 0; k < n; k++) {
    const float a = fabsf(mul ? x[k] * mul[k] : x[k]);
    finite &= a <= 0x1.fffffep127f; /* NaN: 0 */
    m = a > m ? a : m;
  }
  *scale = m / 32767.0f;
  return finite && (m == 0.0f || *scale >= 0x1p-126f);
}

/* see ops.h. The largest |v| maps to 32767 exactly; 1.5 * 2^52 added and taken away rounds a
 * double to an integer, to nearest even, without a libm call (SSE2 has no roundsd) */
void gcam__quantize_i16(int16_t *q, const float *x, const float *mul, size_t n, float scale) {
  const double inv = scale > 0.0f ? 1.0 / scale : 0.0;
  for (size_t k = 0; k < n; k++) {
    double r = (double)(mul ? x[k] * mul[k] : x[k]) * inv;
    r = (r + 0x1.8p52) - 0x1.8p52;
    r = r > 32767.0 ? 32767.0 : r < -32767.0 ? -32767.0 : r;
    q[k] = (int16_t)r;
  }
}

/* Forward: rows of x quantized GCAM__Q_ROWS at a time into the stack (1 KB; each task
 * quantizes all of x, 25088 values for fc6: cheap next to its share of the weights); a
 * block's row pairs go over `out` GCAM__Q_PAIRS at a time, their i32 sums added to `out` in
 * f32 after each pass, so `out` stays in L1. 8 int8 columns of a pair make two i16x8 of
 * (q[i,o], q[i+1,o]), dotted with (xq[i], xq[i+1]) in every lane: 4 columns' sums each. A
 * pass's sum of P pairs is at most 2 P 128 * 32767 in magnitude, far below 2^31. Measured
 * (bench_kernels dtypes, fc6 in wasm): 4 pairs 9.2 ms, 2 pairs 9.9, 8 pairs 10.2; 16 columns
 * a step (GCAM__Q_W8 2) 9.8. */
#define GCAM__Q_ROWS 512
#ifndef GCAM__Q_PAIRS
#define GCAM__Q_PAIRS 4
#endif
/* columns per vector step of the forward: 8 * GCAM__Q_W8 */
#ifndef GCAM__Q_W8
#define GCAM__Q_W8 1
#endif

/* out[o0, o1) += the i32 sums of GCAM__Q_PAIRS row pairs (ra[r], rb[r]) times the pairs of
 * xq. One instance for whole and partial passes (a missing pair: zeros in xq), to keep the
 * wasm modules small (a second, one-pair instance cost 1.4 KB) */
static inline void gcam__dense_q_pass(float *out, const int8_t *const *ra,
                                      const int8_t *const *rb, const int16_t *xq, size_t o0,
                                      size_t o1) {
  enum { P = GCAM__Q_PAIRS };
  gcam_i32x4 s[P];
  for (int r = 0; r < P; r++) s[r] = gcam__i16x2_splat(xq[2 * r], xq[2 * r + 1]);
  size_t o = o0;
  for (; o + 8 * GCAM__Q_W8 <= o1; o += 8 * GCAM__Q_W8) {
    gcam_i32x4 acc[2 * GCAM__Q_W8], v[2];
    for (int q = 0; q < GCAM__Q_W8; q++) {
      gcam__i8x8_pairs(v, ra[0] + o + 8 * q, rb[0] + o + 8 * q);
      acc[2 * q] = gcam__i16x8_dot(v[0], s[0]), acc[2 * q + 1] = gcam__i16x8_dot(v[1], s[0]);
    }
    for (int r = 1; r < P; r++)
      for (int q = 0; q < GCAM__Q_W8; q++) {
        gcam__i8x8_pairs(v, ra[r] + o + 8 * q, rb[r] + o + 8 * q);
        acc[2 * q] += gcam__i16x8_dot(v[0], s[r]), acc[2 * q + 1] += gcam__i16x8_dot(v[1], s[r]);
      }
    for (int q = 0; q < 2 * GCAM__Q_W8; q++)
      gcam__f32x4_store(out + o + 4 * q,
                        gcam__f32x4_load(out + o + 4 * q) + gcam__i32x4_to_f32(acc[q]));
  }
  for (; o + 4 <= o1; o += 4) {
    gcam_i32x4 acc = gcam__i16x8_dot(gcam__i8x4_pairs(ra[0] + o, rb[0] + o), s[0]);
    for (int r = 1; r < P; r++) acc += gcam__i16x8_dot(gcam__i8x4_pairs(ra[r] + o, rb[r] + o), s[r]);
    gcam__f32x4_store(out + o, gcam__f32x4_load(out + o) + gcam__i32x4_to_f32(acc));
  }
  /* the last 0-3 columns, a loop of fixed length that the compiler leaves as it is (a
   * vectorised tail cost the wasm module 2 KB) */
  for (int t = 0; t < 3; t++)
    if (o + t < o1) {
      int32_t acc = 0;
      for (int r = 0; r < P; r++)
        acc += ra[r][o + t] * xq[2 * r] + rb[r][o + t] * xq[2 * r + 1];
      out[o + t] += (float)acc;
    }
}

/* out[o0, o1) = bias + scale[o] * sx * sum_i xq[i] q[i,o], xq = x quantized with sx (> 0:
 * gcam__quantize_i16_scale), then ReLU if asked; o0 and o1 as gcam__dense_forward_cols */
static void gcam__dense_forward_cols_q(float *out, const float *in, const gcam__dense_weights *dw,
                                       int32_t IN, size_t n, size_t o0, size_t o1, int relu,
                                       float sx) {
  enum { P = GCAM__Q_PAIRS };
  const int8_t *w = dw->w;
  int16_t xq[GCAM__Q_ROWS + 2 * P];
  memset(out + o0, 0, (o1 - o0) * sizeof *out);
  for (size_t b = 0; b < (size_t)IN; b += GCAM__Q_ROWS) {
    const size_t nb = (size_t)IN - b < GCAM__Q_ROWS ? (size_t)IN - b : GCAM__Q_ROWS;
    gcam__quantize_i16(xq, in + b, NULL, nb, sx);
    /* the last pass's missing rows: zeros in xq, times any row (the block's first) */
    memset(xq + nb, 0, 2 * P * sizeof *xq);
    for (size_t i = 0; i < nb; i += 2 * P) {
      const int8_t *ra[P], *rb[P];
      for (int r = 0; r < P; r++) {
        const size_t k = i + 2 * (size_t)r;
        ra[r] = w + (b + (k < nb ? k : 0)) * n;
        rb[r] = k + 1 < nb ? ra[r] + n : ra[r];
      }
      gcam__dense_q_pass(out, ra, rb, xq + i, o0, o1);
    }
  }
  for (size_t o = o0; o < o1; o++) {
    const float y = dw->bias[o] + dw->scale[o] * (sx * out[o]);
    out[o] = relu && !(y > 0.0f) ? 0.0f : y;
  }
}

/* Backward: g = scale * d_out quantized GCAM__Q_COLS columns at a time into the stack (16 KB
 * at most; VGG16: a whole row, so w is read row after row: quantizing 2048 columns at a time,
 * rows read in halves of 2 KB, made fc6 1.26x slower in wasm); each row's dot is summed in
 * i32 over GCAM__Q_FLUSH columns, 256 steps of 8: 512 products of at most 128 * 32767 per
 * lane, below 2^31, then added to d_in in f32. Rows go GCAM__Q_RROWS at a time, sharing each
 * load of gq (fc6 in wasm, 2048-column blocks: 8 rows 11.5 ms, 4 rows 12.8, 2 rows 17.7). */
#define GCAM__Q_COLS 8192
#define GCAM__Q_FLUSH 2048
#ifndef GCAM__Q_RROWS
#define GCAM__Q_RROWS 8
#endif

/* d[r] += sum_o wr[r][o] gq[o] for o in [0, nb), GCAM__Q_RROWS rows (one instance for
 * whole and partial passes, as gcam__dense_q_pass) */
static inline void gcam__dense_q_dots(float *d, const int8_t *const *wr, const int16_t *gq,
                                      size_t nb) {
  enum { R = GCAM__Q_RROWS };
  for (size_t f = 0; f < nb; f += GCAM__Q_FLUSH) {
    const size_t e = nb - f < GCAM__Q_FLUSH ? nb : f + GCAM__Q_FLUSH;
    gcam_i32x4 acc[R];
    for (int r = 0; r < R; r++) acc[r] = (gcam_i32x4){0, 0, 0, 0};
    size_t o = f;
    for (; o + 8 <= e; o += 8) {
      const gcam_i32x4 g = gcam__i16x8_load(gq + o);
      for (int r = 0; r < R; r++) acc[r] += gcam__i16x8_dot(gcam__i8x8_load_i16(wr[r] + o), g);
    }
    if (o + 4 <= e) {
      const gcam_i32x4 g = gcam__i16x4_load(gq + o);
      for (int r = 0; r < R; r++) acc[r] += gcam__i16x8_dot(gcam__i8x4_load_i16(wr[r] + o), g);
      o += 4;
    }
    for (int r = 0; r < R; r++) {
      int64_t s = (int64_t)acc[r][0] + acc[r][1] + acc[r][2] + acc[r][3];
      for (int t = 0; t < 3; t++) /* the last 0-3 columns, as in gcam__dense_q_pass */
        if (o + t < e) s += wr[r][o + t] * gq[o + t];
      d[r] += (float)s;
    }
  }
}

/* d_in[i] = sg * sum_o q[i,o] gq[o] for rows [i0, i1), gq = scale * d_out quantized with sg
 * (> 0: gcam__quantize_i16_scale) */
static void gcam__dense_backward_rows_q(float *d_in, const float *d_out,
                                        const gcam__dense_weights *dw, size_t n, size_t i0,
                                        size_t i1, float sg) {
  enum { R = GCAM__Q_RROWS };
  const int8_t *w = dw->w;
  int16_t gq[GCAM__Q_COLS];
  memset(d_in + i0, 0, (i1 - i0) * sizeof *d_in);
  for (size_t c = 0; c < n; c += GCAM__Q_COLS) {
    const size_t nb = n - c < GCAM__Q_COLS ? n - c : GCAM__Q_COLS;
    gcam__quantize_i16(gq, d_out + c, dw->scale + c, nb, sg);
    for (size_t i = i0; i < i1; i += R) {
      const int8_t *wr[R];
      float t[R] = {0}; /* the last pass's missing rows: row i again, into t */
      float *d = i + R <= i1 ? d_in + i : t;
      for (int r = 0; r < R; r++) wr[r] = w + (i + (i + r < i1 ? (size_t)r : 0)) * n + c;
      if (d == t)
        for (size_t r = 0; i + r < i1; r++) t[r] = d_in[i + r];
      gcam__dense_q_dots(d, wr, gq, nb);
      if (d == t)
        for (size_t r = 0; i + r < i1; r++) d_in[i + r] = t[r];
    }
  }
  for (size_t i = i0; i < i1; i++) d_in[i] *= sg;
}

/* How many tasks for `groups` whole groups (of 4 columns or 8 rows) of a layer with
 * `weights` weights: 1 when small, never more than the groups */
static int32_t gcam__dense_tasks(const gcam_threadpool *pool, size_t weights, size_t groups) {
  int32_t n = gcam__pool_threads(pool);
  if (weights < GCAM_DENSE_MIN_PARALLEL) return 1;
  if ((size_t)n > groups) n = groups > 0 ? (int32_t)groups : 1;
  return n;
}

/* [begin, end) of task t: whole groups of `g`, the leftover units in the last task */
static void gcam__dense_range(size_t units, size_t g, int32_t n_tasks, int32_t t, size_t *begin,
                              size_t *end) {
  size_t b, e;
  gcam__split(units / g, n_tasks, t, &b, &e);
  *begin = b * g;
  *end = t == n_tasks - 1 ? units : e * g;
}

typedef struct {
  float *y;
  const float *x;
  const gcam__dense_weights *w;
  int32_t IN, OUT, relu, n_tasks;
  int lo; /* f16 weights, x below 2^16: the GCAM__F16_LO bodies */
  int q;  /* int8 weights, x (d_out) quantized with scale sq: the integer bodies */
  float sq;
  int32_t mask; /* GCAM__F16_MASK */
  float up;     /* 2^(112-k), k = w->f16_exp */
} gcam__dense_job;

static gcam__dense_k gcam__dense_consts(const gcam__dense_job *j) {
  const float down = ldexpf(1.0f, j->w->dtype == GCAM__DTYPE_F16 ? -j->w->f16_exp : 0);
  return (gcam__dense_k){{j->mask, j->mask, j->mask, j->mask}, gcam__f32x4_splat(j->up), j->up,
                         down};
}

static void gcam__dense_forward_task(void *context, int32_t t) {
  const gcam__dense_job *j = context;
  const gcam__dense_k c = gcam__dense_consts(j);
  size_t o0, o1;
  const size_t n = (size_t)j->OUT;
  gcam__dense_range(n, 4, j->n_tasks, t, &o0, &o1);
  switch (j->w->dtype) {
  case GCAM__DTYPE_F16:
    if (j->lo)
      gcam__dense_forward_cols(j->y, j->x, j->w, j->IN, n, o0, o1, j->relu, &c, GCAM__F16_LO);
    else
      gcam__dense_forward_cols(j->y, j->x, j->w, j->IN, n, o0, o1, j->relu, &c, GCAM__DTYPE_F16);
    break;
  case GCAM__DTYPE_I8:
    if (j->q)
      gcam__dense_forward_cols_q(j->y, j->x, j->w, j->IN, n, o0, o1, j->relu, j->sq);
    else
      gcam__dense_forward_cols(j->y, j->x, j->w, j->IN, n, o0, o1, j->relu, &c, GCAM__DTYPE_I8);
    break;
  default:
    gcam__dense_forward_cols(j->y, j->x, j->w, j->IN, n, o0, o1, j->relu, &c, GCAM__DTYPE_F32);
  }
}

static void gcam__dense_backward_task(void *context, int32_t t) {
  const gcam__dense_job *j = context;
  const gcam__dense_k c = gcam__dense_consts(j);
  size_t i0, i1;
  const size_t n = (size_t)j->OUT;
  gcam__dense_range((size_t)j->IN, 8, j->n_tasks, t, &i0, &i1);
  switch (j->w->dtype) {
  case GCAM__DTYPE_F16:
    if (j->lo)
      gcam__dense_backward_rows(j->y, j->x, j->w, n, i0, i1, &c, GCAM__F16_LO);
    else
      gcam__dense_backward_rows(j->y, j->x, j->w, n, i0, i1, &c, GCAM__DTYPE_F16);
    break;
  case GCAM__DTYPE_I8:
    if (j->q)
      gcam__dense_backward_rows_q(j->y, j->x, j->w, n, i0, i1, j->sq);
    else
      gcam__dense_backward_rows(j->y, j->x, j->w, n, i0, i1, &c, GCAM__DTYPE_I8);
    break;
  default:
    gcam__dense_backward_rows(j->y, j->x, j->w, n, i0, i1, &c, GCAM__DTYPE_F32);
  }
}

void gcam__dense_forward_dt_pool(float *out, const float *in, const gcam__dense_weights *w,
                                 int32_t IN, int32_t OUT, int relu,
                                 const gcam_threadpool *pool) {
  const size_t n = (size_t)OUT;
  const int32_t k = w->dtype == GCAM__DTYPE_F16 ? w->f16_exp : 0;
  gcam__dense_job j = {out, in, w, IN, OUT, relu, 1, 0, 0, 0.0f, GCAM__F16_MASK,
                       ldexpf(1.0f, 112 - k)};
  j.lo = w->dtype == GCAM__DTYPE_F16 && gcam__below(in, (size_t)IN, ldexpf(1.0f, 16 + k));
  j.q = w->dtype == GCAM__DTYPE_I8 && gcam__quantize_i16_scale(&j.sq, in, NULL, (size_t)IN);
  j.n_tasks = gcam__dense_tasks(pool, (size_t)IN * n, n / 4);
  gcam__parallel_for(pool, gcam__dense_forward_task, &j, j.n_tasks);
}

void gcam__dense_backward_input_dt_pool(float *d_in, const float *d_out,
                                        const gcam__dense_weights *w, int32_t IN, int32_t OUT,
                                        const gcam_threadpool *pool) {
  const size_t n = (size_t)OUT;
  const int32_t k = w->dtype == GCAM__DTYPE_F16 ? w->f16_exp : 0;
  gcam__dense_job j = {d_in, d_out, w, IN, OUT, 0, 1, 0, 0, 0.0f, GCAM__F16_MASK,
                       ldexpf(1.0f, 112 - k)};
  j.lo = w->dtype == GCAM__DTYPE_F16 && gcam__below(d_out, n, ldexpf(1.0f, 16 + k));
  j.q = w->dtype == GCAM__DTYPE_I8 && gcam__quantize_i16_scale(&j.sq, d_out, w->scale, n);
  j.n_tasks = gcam__dense_tasks(pool, (size_t)IN * (size_t)OUT, (size_t)IN / 8);
  gcam__parallel_for(pool, gcam__dense_backward_task, &j, j.n_tasks);
}

void gcam__dense_forward_dt(float *out, const float *in, const gcam__dense_weights *w,
                            int32_t IN, int32_t OUT, int relu) {
  gcam__dense_forward_dt_pool(out, in, w, IN, OUT, relu, NULL);
}

void gcam__dense_backward_input_dt(float *d_in, const float *d_out, const gcam__dense_weights *w,
                                   int32_t IN, int32_t OUT) {
  gcam__dense_backward_input_dt_pool(d_in, d_out, w, IN, OUT, NULL);
}

/* ---- f16 storage ---------------------------------------------------------------------------- */

/* see ops.h; 2^10 times the smallest subnormal half is the smallest normal one */
int32_t gcam__f16_scale_up(uint16_t *h, uint64_t n) {
  int32_t emax = 0; /* the largest exponent field (inf and NaN were refused) */
  for (uint64_t i = 0; i < n; i++) {
    const int32_t e = (h[i] >> 10) & 31;
    if (e > emax) emax = e;
  }
  const int32_t k = 30 - emax < 10 ? 30 - emax : 10;
  if (k == 0) return 0;
  for (uint64_t i = 0; i < n; i++) {
    const uint16_t v = h[i];
    if (v & 0x7c00) {
      h[i] = (uint16_t)(v + (k << 10)); /* a normal half: k more in its exponent */
    } else if (v & 0x03ff) { /* subnormal m 2^-24 -> (m 2^k) 2^-24 */
      uint32_t f = (uint32_t)(v & 0x03ffu) << k, e = 1;
      if (f >= 0x0400u) { /* normal: f 2^-24 = (f' / 2^10) 2^(e-15), f' in [2^10, 2^11) */
        while (f >= 0x0800u) f >>= 1, e++; /* only the k zero bits shifted in leave */
        f = e << 10 | (f & 0x03ffu);
      }
      h[i] = (uint16_t)((v & 0x8000u) | f);
    }
  }
  return k;
}

/* ---- f32 weights: the original entry points ------------------------------------------------ */

void gcam__dense_forward_pool(float *out, const float *in, const float *w, const float *bias,
                              int32_t IN, int32_t OUT, int relu, const gcam_threadpool *pool) {
  const gcam__dense_weights dw = {GCAM__DTYPE_F32, w, NULL, bias, 0};
  gcam__dense_forward_dt_pool(out, in, &dw, IN, OUT, relu, pool);
}

void gcam__dense_backward_input_pool(float *d_in, const float *d_out, const float *w,
                                     int32_t IN, int32_t OUT, const gcam_threadpool *pool) {
  const gcam__dense_weights dw = {GCAM__DTYPE_F32, w, NULL, NULL, 0};
  gcam__dense_backward_input_dt_pool(d_in, d_out, &dw, IN, OUT, pool);
}

void gcam__dense_forward(float *out, const float *in, const float *w, const float *bias,
                        int32_t IN, int32_t OUT, int relu) {
  gcam__dense_forward_pool(out, in, w, bias, IN, OUT, relu, NULL);
}

void gcam__dense_backward_input(float *d_in, const float *d_out, const float *w, int32_t IN,
                               int32_t OUT) {
  gcam__dense_backward_input_pool(d_in, d_out, w, IN, OUT, NULL);
}
