/* conv_op.c: the conv layer operator (conv_op.h) over the kernels of src/kernels/. */
#include "conv_op.h"

#include <string.h>

#include "error.h"
#include "kernels/conv3x3.h"
#include "model.h" /* GCAM__MAX_ALLOC_BYTES */

static uint64_t gcam__align64(uint64_t bytes) { return (bytes + 63) & ~(uint64_t)63; }

/* Winograd F(4,3) packs 6x6 taps per (C+1) x NR block, direct 9C+1 per NR columns (and the
 * backward, a conv OC -> C, the same the other way); the scratch is at most 36 taps x 96 tiles x (C + OC) per task slot; loading stages the
 * (3,3,C,OC) weights and the biases */
int gcam__conv_op_fits(int32_t C, int32_t OC) {
  const uint64_t c = (uint64_t)C, oc = (uint64_t)OC;
  const uint64_t packed_bound = 36 * (oc + 8) * (9 * c + 1) + oc + 16;
  const uint64_t bwd_bound = 36 * (c + 8) * (9 * oc + 1) + c + 16; /* the backward: OC -> C */
  const uint64_t scratch_bound = c + 36 * 96 * (c + oc) + 16;
  return 4 * packed_bound <= GCAM__MAX_ALLOC_BYTES && 4 * bwd_bound <= GCAM__MAX_ALLOC_BYTES &&
         4 * scratch_bound <= GCAM__MAX_ALLOC_BYTES &&
         4 * (9 * c * oc + oc) <= GCAM__MAX_ALLOC_BYTES;
}

void gcam__conv_op_create(gcam__conv_op *op, int32_t C, int32_t OC, gcam_backend backend,
                          gcam_memory memory, gcam__dtype file_dtype) {
  memset(op, 0, sizeof *op);
  op->C = C, op->OC = OC;
  op->path = gcam__conv3x3_path(C, OC);
  if (backend == GCAM_BACKEND_XNNPACK)
    op->form = GCAM__CONV_XNNPACK;
  else if (memory == GCAM_MEMORY_COMPACT && gcam__conv3x3_compact_pack_floats(C, OC) > 0)
    op->form = GCAM__CONV_COMPACT;
  else
    op->form = GCAM__CONV_PACKED;
  op->w_dtype = op->form == GCAM__CONV_COMPACT ? file_dtype : GCAM__DTYPE_F32;
}

int gcam__conv_op_keeps_dtype(const gcam__conv_op *op) { return op->form == GCAM__CONV_COMPACT; }

static uint64_t gcam__conv_op_w_bytes(const gcam__conv_op *op) {
  const uint64_t es = op->w_dtype == GCAM__DTYPE_F16 ? 2 : 4;
  return gcam__align64(9 * (uint64_t)op->C * (uint64_t)op->OC * es);
}

static uint64_t gcam__conv_op_packed_bytes(const gcam__conv_op *op) {
  return gcam__align64(4 * (uint64_t)gcam__conv3x3_packed_floats(op->C, op->OC));
}

uint64_t gcam__conv_op_bias_offset(const gcam__conv_op *op) {
  return op->form == GCAM__CONV_PACKED ? 0 : gcam__conv_op_w_bytes(op);
}

uint64_t gcam__conv_op_block_bytes(const gcam__conv_op *op) {
  if (op->form == GCAM__CONV_PACKED)
    return gcam__conv_op_packed_bytes(op) + gcam__conv_op_w_bytes(op);
  return gcam__conv_op_w_bytes(op) + gcam__align64(4 * (uint64_t)op->OC);
}

uint64_t gcam__conv_op_staging_floats(const gcam__conv_op *op) {
  if (op->form != GCAM__CONV_PACKED) return 0;
  return 9 * (uint64_t)op->C * (uint64_t)op->OC + (uint64_t)op->OC;
}

void gcam__conv_op_pack(const gcam__conv_op *op, void *block, const float *w_hwio,
                        const float *bias) {
  uint8_t *b = block;
  memcpy(b + gcam__conv_op_packed_bytes(op), w_hwio,
         sizeof(float) * 9 * (size_t)op->C * (size_t)op->OC);
  gcam__conv3x3_pack((float *)b, w_hwio, bias, op->C, op->OC);
}

void gcam__conv_op_bind(gcam__conv_op *op, void *block) {
  uint8_t *b = block;
  if (op->form == GCAM__CONV_PACKED) {
    op->packed = (float *)b, op->w = b + gcam__conv_op_packed_bytes(op), op->bias = NULL;
  } else {
    op->packed = NULL, op->w = b, op->bias = (float *)(b + gcam__conv_op_w_bytes(op));
  }
}

gcam_status gcam__conv_op_setup(const gcam__conv_op *op, int32_t H, int32_t W,
                                int32_t n_threads, int backward, gcam__conv_needs *need) {
  memset(need, 0, sizeof *need);
  /* the kernels size their scratch in size_t: a 64-bit bound of their formula first */
  const uint64_t cc = (uint64_t)op->C + (uint64_t)op->OC;
  if (cc + (uint64_t)n_threads * 36 * 96 * cc > GCAM__MAX_ALLOC_BYTES / sizeof(float))
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "the scratch of a %d -> %d channel conv on %d threads does not fit this "
                       "build's address space",
                       (int)op->C, (int)op->OC, (int)n_threads);
  if (op->form != GCAM__CONV_XNNPACK)
    need->scratch = gcam__conv3x3_scratch_floats_pool(H, W, op->C, op->OC, n_threads);
  if (op->form == GCAM__CONV_COMPACT)
    need->pack = gcam__conv3x3_compact_pack_floats(op->C, op->OC);
  if (backward) {
    const size_t b =
        gcam__conv3x3_backward_scratch_floats_pool(H, W, op->C, op->OC, n_threads);
    if (b > need->scratch) need->scratch = b;
    need->bwd_pack = gcam__conv3x3_backward_packed_floats(op->C, op->OC);
    need->bwd_keep = op->form != GCAM__CONV_COMPACT;
  }
  if (need->scratch < 1) need->scratch = 1;
  return GCAM_STATUS_OK;
}

void gcam__conv_op_forward(const gcam__conv_op *op, float *y, const float *x, int32_t H,
                           int32_t W, float *scratch, float *pack, const gcam_threadpool *pool) {
  if (op->form == GCAM__CONV_COMPACT)
    gcam__conv3x3_relu_forward_compact_pool(y, x, op->w, op->w_dtype, op->bias, H, W, op->C,
                                            op->OC, scratch, pack, pool);
  else
    gcam__conv3x3_relu_forward_pool(y, x, op->packed, H, W, op->C, op->OC, scratch, pool);
}

void gcam__conv_op_backward_pack(const gcam__conv_op *op, float *bpacked,
                                 const gcam_threadpool *pool) {
  gcam__conv3x3_backward_pack_canon_pool(bpacked, op->w, op->w_dtype, op->C, op->OC, pool);
}

void gcam__conv_op_backward_input(const gcam__conv_op *op, float *dx, const float *dy,
                                  int32_t H, int32_t W, const float *bpacked, float *scratch,
                                  const gcam_threadpool *pool) {
  gcam__conv3x3_backward_input_pool(dx, dy, bpacked, H, W, op->C, op->OC, scratch, pool);
}
