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

#endif
