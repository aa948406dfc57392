/* test_conv_op.c: the conv layer operator (src/conv_op.h), through its lifecycle as the
 * loader and a state use it: create -> (pack) -> bind -> setup -> forward / backward.
 *   - each form (PACKED from FAST, COMPACT f32 and f16, COMPACT asked on the direct path,
 *     which stays PACKED; XNNPACK's form holds its weights) chooses the path and the dtype it
 *     should, and lays its block out as conv_op.h says;
 *   - forward and backward on awkward sizes (C, OC not multiples of 8, C = 3, images of one
 *     tile block (the fused compact path) and of many) vs the naive twins
 *     (gcam__conv3x3_relu_forward_ref, gcam__conv3x3_backward_input_ref), in buffers exactly
 *     as large as setup said, with a guard after each that must stay untouched;
 *   - on pools of 2 and 3 threads, with setup's scratch for them: bit-identical to serial;
 *   - fits refuses what wasm32 cannot address. */
#include "threadpool.h" /* tools/threadpool.c, linked in by CMake */

#include <stdint.h>
#include <string.h>

#include "conv_op.h"
#include "kernels/simd.h"
#include "test.h"

/* floats after each buffer that the operator must not touch: as many as the buffer holds
 * (+64), since the kernels write strided planes that may jump over a short guard */
#define GUARD(n) ((n) + 64)

static float *guarded(size_t n) {
  float *p = malloc((n + GUARD(n)) * sizeof *p);
  memset(p, 0x7f, (n + GUARD(n)) * sizeof *p); /* also leaves garbage in the buffer itself */
  return p;
}
static int guard_ok(const float *p, size_t n) {
  for (size_t i = 0; i < GUARD(n); i++) {
    uint32_t b;
    memcpy(&b, p + n + i, 4);
    if (b != 0x7f7f7f7fu) return 0;
  }
  return 1;
}

static double rel_to_max(const float *a, const float *b, size_t n) {
  double mx = 0.0;
  for (size_t i = 0; i < n; i++) mx = fabs(b[i]) > mx ? fabs(b[i]) : mx;
  return test_max_abs_err(a, b, n) / (mx > 0.0 ? mx : 1.0);
}

/* a half with a value in about +-[2^-5, 2^-1), and its exact f32 */
static uint16_t random_half(unsigned *seed, float *value) {
  float r[2];
  test_fill_uniform(r, 2, seed, 0.0f, 1.0f);
  const uint16_t h = (uint16_t)((r[0] < 0.5f ? 0x8000u : 0u) | (10u + (uint32_t)(r[1] * 4)) << 10 |
                                ((uint32_t)(r[0] * 1e6f) & 0x3ffu));
  *value = gcam__f16_to_f32(h);
  return h;
}

typedef struct {
  const char *name;
  gcam_backend backend;
  gcam_memory memory;
  gcam__dtype dtype;
} form_case;

/* serial (p < 0): got (n) vs the naive twin's ref, then kept in serial; on pool p: got is
 * serial, bit for bit */
static void judge(const char *what, const form_case *fc, int32_t H, int32_t W, int32_t C,
                  int32_t OC, int p, const float *got, const float *ref, float *serial,
                  size_t n) {
  if (p < 0) {
    const double e = rel_to_max(got, ref, n);
    CHECK(e <= 2e-5, "%s %dx%dx%d->%d: %s vs ref %.3g", fc->name, H, W, C, OC, what, e);
    memcpy(serial, got, n * sizeof *got);
  } else {
    CHECK(memcmp(got, serial, n * sizeof *got) == 0, "%s %dx%dx%d->%d: %s on pool %d differs",
          fc->name, H, W, C, OC, what, p);
  }
}

static void check_op(const form_case *fc, int32_t H, int32_t W, int32_t C, int32_t OC,
                     const gcam_threadpool *pools, int n_pools) {
  unsigned seed = 4242u + (unsigned)(H * 7 + W * 131 + C * 3 + OC);
  const size_t nw = (size_t)9 * C * OC, nx = (size_t)H * W * C, ny = (size_t)H * W * OC;
  float *w = malloc(nw * sizeof *w), *bias = malloc((size_t)OC * sizeof *bias);
  uint16_t *wh = malloc(nw * sizeof *wh);
  for (size_t k = 0; k < nw; k++) {
    if (fc->dtype == GCAM__DTYPE_F16)
      wh[k] = random_half(&seed, &w[k]);
    else
      test_fill_uniform(&w[k], 1, &seed, -0.3f, 0.3f);
  }
  test_fill_uniform(bias, (size_t)OC, &seed, -0.2f, 0.2f);
  float *x = malloc(nx * sizeof *x), *dy = malloc(ny * sizeof *dy);
  test_fill_uniform(x, nx, &seed, -1.0f, 1.0f);
  test_fill_uniform(dy, ny, &seed, -1.0f, 1.0f);

  /* create: the path and form */
  gcam__conv_op op;
  CHECK(gcam__conv_op_fits(C, OC), "%s %d->%d: does not fit", fc->name, C, OC);
  gcam__conv_op_create(&op, C, OC, fc->backend, fc->memory, fc->dtype);
  const int want_path = C >= 3 ? GCAM_EXPECT_WINOGRAD_M : 0;
  CHECK(op.path == want_path, "%s %d->%d: path %d, want %d", fc->name, C, OC, op.path, want_path);
  const gcam__conv_form want_form =
      fc->backend == GCAM_BACKEND_XNNPACK ? GCAM__CONV_XNNPACK
      : fc->memory == GCAM_MEMORY_COMPACT && op.path != 0 ? GCAM__CONV_COMPACT
                                                           : GCAM__CONV_PACKED;
  CHECK(op.form == want_form, "%s %d->%d: form %d, want %d", fc->name, C, OC, (int)op.form,
        (int)want_form);
  const int keeps = op.form == GCAM__CONV_COMPACT;
  CHECK(gcam__conv_op_keeps_dtype(&op) == keeps, "%s: keeps_dtype", fc->name);
  CHECK(op.w_dtype == (keeps ? fc->dtype : GCAM__DTYPE_F32), "%s: w_dtype %d", fc->name,
        (int)op.w_dtype);
  const size_t es = op.w_dtype == GCAM__DTYPE_F16 ? 2 : 4;
  const uint64_t block_bytes = gcam__conv_op_block_bytes(&op);
  const uint64_t boff = gcam__conv_op_bias_offset(&op);
  CHECK(block_bytes % 64 == 0 && boff % 64 == 0, "%s: block %llu, bias at %llu not aligned",
        fc->name, (unsigned long long)block_bytes, (unsigned long long)boff);
  if (op.form == GCAM__CONV_PACKED) {
    CHECK(gcam__conv_op_staging_floats(&op) == nw + (size_t)OC, "%s: staging", fc->name);
    CHECK(block_bytes >= 4 * (uint64_t)(gcam__conv3x3_packed_floats(C, OC) + nw),
          "%s: block of %llu bytes holds no packed + canonical weights", fc->name,
          (unsigned long long)block_bytes);
  } else {
    CHECK(gcam__conv_op_staging_floats(&op) == 0, "%s: staging", fc->name);
    CHECK(boff >= nw * es && block_bytes >= boff + 4 * (uint64_t)OC, "%s: block layout",
          fc->name);
  }

  /* the block, filled as the loader does, then bound */
  uint8_t *block = aligned_alloc(64, (size_t)block_bytes + 64);
  memset(block, 0x7f, (size_t)block_bytes + 64);
  if (op.form == GCAM__CONV_PACKED) {
    gcam__conv_op_pack(&op, block, w, bias);
  } else {
    memcpy(block, keeps && fc->dtype == GCAM__DTYPE_F16 ? (const void *)wh : (const void *)w,
           nw * es);
    memcpy(block + boff, bias, (size_t)OC * sizeof *bias);
  }
  gcam__conv_op_bind(&op, block);
  CHECK((op.packed != NULL) == (op.form == GCAM__CONV_PACKED) &&
            (op.bias != NULL) == (op.form != GCAM__CONV_PACKED) && op.w != NULL,
        "%s: bound pointers", fc->name);
  CHECK(memcmp(op.w, keeps && fc->dtype == GCAM__DTYPE_F16 ? (const void *)wh : (const void *)w,
               nw * es) == 0,
        "%s: the canonical weights the backward packs from differ from the file's", fc->name);
  uint32_t tail;
  memcpy(&tail, block + block_bytes, 4);
  CHECK(tail == 0x7f7f7f7fu, "%s: the pack wrote past its block", fc->name);

  float *ref = malloc(ny * sizeof *ref), *dref = malloc(nx * sizeof *dref);
  gcam__conv3x3_relu_forward_ref(ref, x, w, bias, H, W, C, OC);
  gcam__conv3x3_backward_input_ref(dref, dy, w, H, W, C, OC);
  float *y1 = malloc(ny * sizeof *y1), *dx1 = malloc(nx * sizeof *dx1);
  for (int p = -1; p < n_pools; p++) {
    const gcam_threadpool *pool = p < 0 ? NULL : &pools[p];
    gcam__conv_needs need;
    CHECK(gcam__conv_op_setup(&op, H, W, gcam__pool_threads(pool), 1, &need) == GCAM_STATUS_OK,
          "%s: setup", fc->name);
    CHECK(need.scratch >= 1 && (need.pack > 0) == (op.form == GCAM__CONV_COMPACT) &&
              need.bwd_pack == gcam__conv3x3_backward_packed_floats(C, OC) &&
              need.bwd_keep == (op.form != GCAM__CONV_COMPACT),
          "%s: needs %zu %zu %zu %d", fc->name, need.scratch, need.pack, need.bwd_pack,
          need.bwd_keep);
    gcam__conv_needs fwd_only;
    gcam__conv_op_setup(&op, H, W, gcam__pool_threads(pool), 0, &fwd_only);
    CHECK(fwd_only.bwd_pack == 0 && fwd_only.scratch <= need.scratch,
          "%s: a forward-only setup asks for backward room", fc->name);
    float *scratch = guarded(need.scratch), *pack = guarded(need.pack);
    float *bpacked = guarded(need.bwd_pack);
    float *y = guarded(ny), *dx = guarded(nx);
    if (op.form != GCAM__CONV_XNNPACK) {
      gcam__conv_op_forward(&op, y, x, H, W, scratch, pack, pool);
      judge("forward", fc, H, W, C, OC, p, y, ref, y1, ny);
    }
    gcam__conv_op_backward_pack(&op, bpacked, pool);
    gcam__conv_op_backward_input(&op, dx, dy, H, W, bpacked, scratch, pool);
    judge("backward", fc, H, W, C, OC, p, dx, dref, dx1, nx);
    CHECK(guard_ok(scratch, need.scratch) && guard_ok(pack, need.pack) &&
              guard_ok(bpacked, need.bwd_pack) && guard_ok(y, ny) && guard_ok(dx, nx),
          "%s %dx%dx%d->%d: a buffer of setup's size was overrun (pool %d)", fc->name, H, W, C,
          OC, p);
    free(scratch), free(pack), free(bpacked), free(y), free(dx);
  }
  free(w), free(wh), free(bias), free(x), free(dy), free(ref), free(dref), free(y1), free(dx1);
  free(block);
}

int main(void) {
  gcam_pthreadpool *tp2 = gcam_pthreadpool_create(2), *tp3 = gcam_pthreadpool_create(3);
  CHECK(tp2 && tp3, "cannot create the pools");
  gcam_threadpool pools[2];
  int n_pools = 0;
  if (tp2) pools[n_pools++] = gcam_pthreadpool_hook(tp2);
  if (tp3) pools[n_pools++] = gcam_pthreadpool_hook(tp3);

  const form_case cases[] = {
      {"fast", GCAM_BACKEND_PORTABLE, GCAM_MEMORY_FAST, GCAM__DTYPE_F32},
      {"fast f16 file", GCAM_BACKEND_PORTABLE, GCAM_MEMORY_FAST, GCAM__DTYPE_F16},
      {"compact f32", GCAM_BACKEND_PORTABLE, GCAM_MEMORY_COMPACT, GCAM__DTYPE_F32},
      {"compact f16", GCAM_BACKEND_PORTABLE, GCAM_MEMORY_COMPACT, GCAM__DTYPE_F16},
      {"xnnpack's form", GCAM_BACKEND_XNNPACK, GCAM_MEMORY_FAST, GCAM__DTYPE_F32},
  };
  /* H, W, C, OC: C = 3 and C = 2 (direct); one tile block (8x8: 4 F(4,3) tiles) and many;
   * channel counts off the 8-column and 4-lane grids */
  const int32_t shapes[][4] = {{7, 5, 3, 10}, {8, 8, 13, 17}, {9, 11, 2, 9},
                               {20, 18, 24, 33}, {6, 6, 40, 36}, {1, 9, 5, 3},
                               {8, 8, 16, 100}}; /* the last: 4 column groups, 3 threads */
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
      check_op(&cases[c], shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3], pools,
               n_pools);

  /* a conv this build cannot address is refused before any size is computed */
  CHECK(gcam__conv_op_fits(65536, 65536) == (SIZE_MAX > 0xffffffffu),
        "fits(65536, 65536) on a %zu-byte size_t", sizeof(size_t));
  gcam_pthreadpool_destroy(tp2), gcam_pthreadpool_destroy(tp3);
  TEST_MAIN_END();
}
