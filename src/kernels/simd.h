/* simd.h: the portable 4-lane float vector the kernels are written in.
 *
 * GCC/clang vector extensions: natively this compiles to SSE (we build without -mavx so the
 * native speed mirrors WebAssembly), under `emcc -msimd128` to wasm SIMD. Baseline wasm SIMD
 * has no FMA, so kernels write mul + add. Loads and stores go through memcpy: unaligned and
 * free of aliasing questions, and both compilers turn them into one instruction. */
#ifndef GCAM_KERNELS_SIMD_H
#define GCAM_KERNELS_SIMD_H

#include <stdint.h>
#include <string.h>
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef float gcam_f32x4 __attribute__((vector_size(16)));
typedef int32_t gcam_i32x4 __attribute__((vector_size(16)));

static inline gcam_f32x4 gcam__f32x4_load(const float *p) {
  gcam_f32x4 v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void gcam__f32x4_store(float *p, gcam_f32x4 v) { memcpy(p, &v, sizeof v); }

static inline gcam_f32x4 gcam__f32x4_splat(float x) { return (gcam_f32x4){x, x, x, x}; }

/* max(v, 0) with NaN -> 0, as the scalar `v > 0 ? v : 0` of the reference */
static inline gcam_f32x4 gcam__f32x4_relu(gcam_f32x4 v) {
  gcam_i32x4 keep = v > (gcam_f32x4){0.0f, 0.0f, 0.0f, 0.0f};
  return (gcam_f32x4)((gcam_i32x4)v & keep);
}

/* ---- narrow storage types, widened to f32 in registers ------------------------------------
 * Dense weights may stay in memory as IEEE half (f16) or as int8; the kernels widen them as
 * they stream through. Both widenings are exact. */

/* an IEEE half to f32, every finite value and zero exact (the loader refuses Inf/NaN): the
 * half's exponent and mantissa moved to f32's places read as a value 2^-112 too small, for
 * normal and subnormal halves alike, and one multiply by 2^112 (exact) puts it right. The
 * scalar twin of gcam__f16x4_load. */
static inline float gcam__f16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)(h & 0x7fffu) << 13 | (uint32_t)(h & 0x8000u) << 16;
  float f;
  memcpy(&f, &u, 4);
  return f * 0x1p112f;
}

typedef int16_t gcam_i16x4 __attribute__((vector_size(8)));
typedef int8_t gcam_i8x4 __attribute__((vector_size(4)));

/* four halves -> f32x4 of their values times 2^-112, exactly (subnormal halves become f32
 * subnormals): each half sign-extended to 32 bits and shifted left by 13 has its exponent and
 * mantissa in f32's places and its sign in bit 31; the sign's other copies (bits 28-30) are
 * cleared. A kernel that can multiply its other operand by 2^112 once (exact while that
 * operand is below 2^16) uses this and skips gcam__f16x4_load's multiply. `mask` is
 * GCAM__F16_MASK in every lane: a caller's loop can keep it in a register (under V8 a
 * literal vector is rebuilt from immediates at each use). */
#define GCAM__F16_MASK ((int32_t)0x8fffe000)
static inline gcam_i32x4 gcam__f16_mask(void) {
  return (gcam_i32x4){GCAM__F16_MASK, GCAM__F16_MASK, GCAM__F16_MASK, GCAM__F16_MASK};
}
static inline gcam_f32x4 gcam__f16x4_load_lo(const uint16_t *p, gcam_i32x4 mask) {
#if defined(__SSE2__) && !defined(__wasm_simd128__)
  /* each half into the top of a lane (under zeros): an arithmetic shift by 3 does both */
  const __m128i v = _mm_loadl_epi64((const __m128i *)p);
  return (gcam_f32x4)((gcam_i32x4)_mm_srai_epi32(_mm_unpacklo_epi16(_mm_setzero_si128(), v), 3) &
                      mask);
#else
  /* wasm: one sign-extending load (i32x4.load16x4_s), a shift and an and */
  gcam_i16x4 h;
  memcpy(&h, p, sizeof h);
  return (gcam_f32x4)((__builtin_convertvector(h, gcam_i32x4) << 13) & mask);
#endif
}

/* four halves -> f32x4, exact: gcam__f16x4_load_lo times 2^112 */
static inline gcam_f32x4 gcam__f16x4_load(const uint16_t *p) {
  return gcam__f16x4_load_lo(p, gcam__f16_mask()) * gcam__f32x4_splat(0x1p112f);
}

/* four int8 -> f32x4. The generic form is scalarised by clang 14 for wasm (four lane
 * extracts and converts) and by GCC for SSE2, so each target gets its three widening
 * instructions spelled out. */
static inline gcam_f32x4 gcam__i8x4_load(const int8_t *p) {
#if defined(__wasm_simd128__)
  /* byte i to the top of lane i, then an arithmetic shift (clang folds the extend_low
   * intrinsics back into the scalarised form) */
  v128_t v = wasm_v128_load32_splat(p);
  v = wasm_i8x16_shuffle(v, v, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  return (gcam_f32x4)wasm_f32x4_convert_i32x4(wasm_i32x4_shr(v, 24));
#elif defined(__SSE2__)
  int32_t w;
  memcpy(&w, p, 4);
  __m128i v = _mm_cvtsi32_si128(w);
  v = _mm_unpacklo_epi8(v, v);                     /* each byte twice */
  v = _mm_srai_epi32(_mm_unpacklo_epi16(v, v), 24); /* four times, sign-extended */
  return (gcam_f32x4)_mm_cvtepi32_ps(v);
#else
  gcam_i8x4 q;
  memcpy(&q, p, sizeof q);
  return __builtin_convertvector(q, gcam_f32x4);
#endif
}

/* ---- eight narrow weights at once ---------------------------------------------------------
 * The dense kernels' wide loads: 8 consecutive halves as two f32x4 (lanes 0-3, 4-7), from
 * one load, so that each load feeds two vectors and the widening uses the targets' unpack /
 * extend instructions. Same values as two gcam__f16x4_load. */

/* eight halves -> two f32x4, as gcam__f16x4_load_lo */
static inline void gcam__f16x8_load_lo(gcam_f32x4 *r, const uint16_t *p, gcam_i32x4 mask) {
#if defined(__SSE2__) && !defined(__wasm_simd128__)
  const __m128i v = _mm_loadu_si128((const __m128i *)p), z = _mm_setzero_si128();
  r[0] = (gcam_f32x4)((gcam_i32x4)_mm_srai_epi32(_mm_unpacklo_epi16(z, v), 3) & mask);
  r[1] = (gcam_f32x4)((gcam_i32x4)_mm_srai_epi32(_mm_unpackhi_epi16(z, v), 3) & mask);
#else
  /* wasm: two extending loads, fewer operations under V8 than one load and extend_low/high */
  r[0] = gcam__f16x4_load_lo(p, mask), r[1] = gcam__f16x4_load_lo(p + 4, mask);
#endif
}

/* eight halves -> two f32x4, as gcam__f16x4_load */
static inline void gcam__f16x8_load(gcam_f32x4 *r, const uint16_t *p) {
  gcam__f16x8_load_lo(r, p, gcam__f16_mask());
  r[0] *= gcam__f32x4_splat(0x1p112f), r[1] *= gcam__f32x4_splat(0x1p112f);
}

/* ---- int8 times int16: integer dot products ------------------------------------------------
 * The int8 dense kernels multiply the weights by an int16 copy of the other operand (x or
 * d_out quantized, gcam__quantize_i16) in integers: i32x4.dot_i16x8_s in wasm, its SSE2 twin
 * _mm_madd_epi16 natively, each lane the sum of two adjacent i16 products. Vectors of i16
 * lanes travel as gcam_i32x4 (the same 16 bytes). The generic forms serve the scalar wasm
 * flavour. */
typedef int16_t gcam_i16x8 __attribute__((vector_size(16)));

/* lanes j of the result: a[2j] b[2j] + a[2j+1] b[2j+1], i16 lanes, exact in i32 */
static inline gcam_i32x4 gcam__i16x8_dot(gcam_i32x4 a, gcam_i32x4 b) {
#if defined(__wasm_simd128__)
  return (gcam_i32x4)wasm_i32x4_dot_i16x8((v128_t)a, (v128_t)b);
#elif defined(__SSE2__)
  return (gcam_i32x4)_mm_madd_epi16((__m128i)a, (__m128i)b);
#else
  const gcam_i16x8 x = (gcam_i16x8)a, y = (gcam_i16x8)b;
  gcam_i32x4 r;
  for (int j = 0; j < 4; j++) r[j] = x[2 * j] * y[2 * j] + x[2 * j + 1] * y[2 * j + 1];
  return r;
#endif
}

/* the pair (a, b) in every i32 lane: a in the low i16 lane, b in the high one */
static inline gcam_i32x4 gcam__i16x2_splat(int16_t a, int16_t b) {
  const int32_t v = (int32_t)((uint32_t)(uint16_t)a | (uint32_t)(uint16_t)b << 16);
  return (gcam_i32x4){v, v, v, v};
}

/* eight int16 / four int16 (the upper four lanes zero) */
static inline gcam_i32x4 gcam__i16x8_load(const int16_t *p) {
  gcam_i32x4 v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline gcam_i32x4 gcam__i16x4_load(const int16_t *p) {
#if defined(__wasm_simd128__)
  return (gcam_i32x4)wasm_v128_load64_zero(p);
#else
  gcam_i32x4 v = {0, 0, 0, 0};
  memcpy(&v, p, 8);
  return v;
#endif
}

/* eight int8 -> i16x8, sign-extended / four (the upper four lanes zero) */
static inline gcam_i32x4 gcam__i8x8_load_i16(const int8_t *p) {
#if defined(__wasm_simd128__)
  return (gcam_i32x4)wasm_i16x8_load8x8(p);
#elif defined(__SSE2__)
  const __m128i v = _mm_loadl_epi64((const __m128i *)p);
  return (gcam_i32x4)_mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8);
#else
  gcam_i16x8 r;
  for (int j = 0; j < 8; j++) r[j] = p[j];
  return (gcam_i32x4)r;
#endif
}
static inline gcam_i32x4 gcam__i8x4_load_i16(const int8_t *p) {
#if defined(__wasm_simd128__)
  return (gcam_i32x4)wasm_i16x8_extend_low_i8x16(wasm_v128_load32_zero(p));
#elif defined(__SSE2__)
  int32_t w;
  memcpy(&w, p, 4);
  const __m128i v = _mm_cvtsi32_si128(w);
  return (gcam_i32x4)_mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8);
#else
  gcam_i16x8 r = {0};
  for (int j = 0; j < 4; j++) r[j] = p[j];
  return (gcam_i32x4)r;
#endif
}

/* columns 0..7 of two rows a, b of int8 as two i16x8 of pairs (a[j], b[j]): columns 0-3 in
 * r[0], 4-7 in r[1], for gcam__i16x8_dot with gcam__i16x2_splat(x_a, x_b) */
static inline void gcam__i8x8_pairs(gcam_i32x4 *r, const int8_t *a, const int8_t *b) {
#if defined(__wasm_simd128__)
  /* two sign-extending loads, interleaved (V8: punpcklwd / punpckhwd) */
  const v128_t va = wasm_i16x8_load8x8(a), vb = wasm_i16x8_load8x8(b);
  r[0] = (gcam_i32x4)wasm_i16x8_shuffle(va, vb, 0, 8, 1, 9, 2, 10, 3, 11);
  r[1] = (gcam_i32x4)wasm_i16x8_shuffle(va, vb, 4, 12, 5, 13, 6, 14, 7, 15);
#elif defined(__SSE2__)
  /* the bytes interleaved, then each byte to the top of an i16 and shifted down */
  const __m128i ab = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)a),
                                       _mm_loadl_epi64((const __m128i *)b));
  r[0] = (gcam_i32x4)_mm_srai_epi16(_mm_unpacklo_epi8(ab, ab), 8);
  r[1] = (gcam_i32x4)_mm_srai_epi16(_mm_unpackhi_epi8(ab, ab), 8);
#else
  gcam_i16x8 x, y;
  for (int j = 0; j < 4; j++) x[2 * j] = a[j], x[2 * j + 1] = b[j];
  for (int j = 0; j < 4; j++) y[2 * j] = a[4 + j], y[2 * j + 1] = b[4 + j];
  r[0] = (gcam_i32x4)x, r[1] = (gcam_i32x4)y;
#endif
}
/* columns 0..3 of two rows as gcam__i8x8_pairs's r[0], reading four bytes of each */
static inline gcam_i32x4 gcam__i8x4_pairs(const int8_t *a, const int8_t *b) {
#if defined(__wasm_simd128__)
  const v128_t va = (v128_t)gcam__i8x4_load_i16(a), vb = (v128_t)gcam__i8x4_load_i16(b);
  return (gcam_i32x4)wasm_i16x8_shuffle(va, vb, 0, 8, 1, 9, 2, 10, 3, 11);
#elif defined(__SSE2__)
  int32_t wa, wb;
  memcpy(&wa, a, 4), memcpy(&wb, b, 4);
  const __m128i ab = _mm_unpacklo_epi8(_mm_cvtsi32_si128(wa), _mm_cvtsi32_si128(wb));
  return (gcam_i32x4)_mm_srai_epi16(_mm_unpacklo_epi8(ab, ab), 8);
#else
  gcam_i16x8 x;
  for (int j = 0; j < 4; j++) x[2 * j] = a[j], x[2 * j + 1] = b[j];
  return (gcam_i32x4)x;
#endif
}

/* i32x4 -> f32x4 (exact below 2^24 in magnitude, else rounded to nearest) */
static inline gcam_f32x4 gcam__i32x4_to_f32(gcam_i32x4 v) {
  return __builtin_convertvector(v, gcam_f32x4);
}

#endif
