/* conv_op.h: a conv layer (3x3, stride 1, zero padding 1, + bias + ReLU) as an operator that
 * the model owns (private), with XNNPACK's lifecycle:
 *
 *   create  at load, from the header: chooses the kernels' path (direct, or Winograd F(2,3)
 *           or F(4,3): gcam__conv3x3_path) and the form its weights keep in memory (below),
 *           from the backend, the memory mode and the file's dtype; and says how many bytes
 *           of the model's one weights allocation it takes (gcam__conv_op_block_bytes);
 *   pack    (PACKED only) once the layer's weights and bias have arrived: into the kernels'
 *           layout, beside the canonical f32 weights the backward packs from;
 *   bind    once the weights stop moving (the end of the load): its pointers into its block;
 *   setup   once per state, for the layer's input size, the state's threads and whether a
 *           backward may cross the layer: what the state must hold for it
 *           (gcam__conv_needs). The one place a conv's scratch is sized;
 *   run     the forward (portable forms), the backward's weights packed into a buffer the
 *           state gives, and the backward (input gradient).
 *
 * The forms, each one block [first part | second part] of the weights, 64-byte aligned:
 *   PACKED   portable, GCAM_MEMORY_FAST (and the direct path whatever the mode: its packed
 *            weights are no larger than the canonical ones): [packed for the path, bias
 *            inside | canonical (3,3,C,OC) f32]. The file's tensors are staged, then packed
 *            when the bias is in (gcam__conv_op_pack).
 *   COMPACT  portable, GCAM_MEMORY_COMPACT, Winograd paths: [(3,3,C,OC) as the file stores
 *            them, f32 or f16 | bias f32], transformed into the state's pack scratch as the
 *            layer runs.
 *   XNNPACK  [(3,3,C,OC) f32 | bias f32]: the model's XNNPACK operator (xnn_backend.h) packs
 *            and runs them; this operator holds them and runs the backward. */
#ifndef GCAM_CONV_OP_H
#define GCAM_CONV_OP_H

#include <stddef.h>
#include <stdint.h>

#include "gcam.h"
#include "ops.h"
#include "parallel.h"

typedef enum gcam__conv_form {
  GCAM__CONV_PACKED = 0,
  GCAM__CONV_COMPACT = 1,
  GCAM__CONV_XNNPACK = 2
} gcam__conv_form;

typedef struct gcam__conv_op {
  int32_t C, OC;
  int path;              /* the forward's: 0 direct, 2 / 4 Winograd F(m,3) */
  gcam__conv_form form;
  gcam__dtype w_dtype;   /* of w: the file's in COMPACT, else f32 */
  /* bound to the model's weights (gcam__conv_op_bind) */
  float *packed;         /* PACKED: the path's layout, the bias inside; else NULL */
  void *w;               /* the canonical (3,3,C,OC) weights, in w_dtype */
  float *bias;           /* COMPACT, XNNPACK: (OC); PACKED: NULL (inside `packed`) */
} gcam__conv_op;

/* 64-bit bounds of what the kernels' size functions (size_t) may return for (C, OC): call
 * create only once gcam__conv_op_fits() said they fit one buffer of this build */
int gcam__conv_op_fits(int32_t C, int32_t OC);

/* C, OC >= 1 and fitting (gcam__conv_op_fits); file_dtype: the weight tensor's */
void gcam__conv_op_create(gcam__conv_op *op, int32_t C, int32_t OC, gcam_backend backend,
                          gcam_memory memory, gcam__dtype file_dtype);

/* bytes of its block; where the file's bias tensor goes in it (COMPACT, XNNPACK: the weight
 * tensor goes at 0, in the element size gcam__conv_op_keeps_dtype says) */
uint64_t gcam__conv_op_block_bytes(const gcam__conv_op *op);
uint64_t gcam__conv_op_bias_offset(const gcam__conv_op *op);
/* 1 when the weights stay in the file's dtype (COMPACT), 0 when widened to f32 */
int gcam__conv_op_keeps_dtype(const gcam__conv_op *op);
/* floats of staging the load needs for it: (3,3,C,OC) weights then OC biases (PACKED), or 0 */
uint64_t gcam__conv_op_staging_floats(const gcam__conv_op *op);

/* PACKED: block <- [packed(w_hwio, bias) | w_hwio] */
void gcam__conv_op_pack(const gcam__conv_op *op, void *block, const float *w_hwio,
                        const float *bias);
/* the pointers into its block */
void gcam__conv_op_bind(gcam__conv_op *op, void *block);

/* What a state holds for the operator on an (H, W) input with n_threads task slots, in
 * floats; each buffer is shared by the layers, sized for the largest need. */
typedef struct gcam__conv_needs {
  size_t scratch;  /* kernel scratch: the forward's (portable forms), and the backward's */
  size_t pack;     /* COMPACT: the forward's transformed weights, made as the layer runs */
  size_t bwd_pack; /* the backward's packed weights (0: no backward crosses the layer) */
  int bwd_keep;    /* 1: packed once into a slot of their own and kept (PACKED, XNNPACK: the
                    * weights never change); 0: packed each time the backward reaches the
                    * layer, into one buffer for all (COMPACT: memory first) */
} gcam__conv_needs;

/* GCAM_STATUS_OUT_OF_MEMORY (with a message) when a need does not fit this build */
gcam_status gcam__conv_op_setup(const gcam__conv_op *op, int32_t H, int32_t W,
                                int32_t n_threads, int backward, gcam__conv_needs *need);

/* y (H,W,OC) = ReLU(conv(x (H,W,C)) + bias); PACKED and COMPACT (XNNPACK runs the model's
 * operator). scratch and pack as gcam__conv_op_setup sized them. */
void gcam__conv_op_forward(const gcam__conv_op *op, float *y, const float *x, int32_t H,
                           int32_t W, float *scratch, float *pack, const gcam_threadpool *pool);

/* the backward's weights (bwd_pack floats): w rotated 180 degrees, channels swapped */
void gcam__conv_op_backward_pack(const gcam__conv_op *op, float *bpacked,
                                 const gcam_threadpool *pool);
/* dx (H,W,C) = d score / d x from dy (H,W,OC) = d score / d (pre-ReLU output), through
 * the weights gcam__conv_op_backward_pack made */
void gcam__conv_op_backward_input(const gcam__conv_op *op, float *dx, const float *dy,
                                  int32_t H, int32_t W, const float *bpacked, float *scratch,
                                  const gcam_threadpool *pool);

#endif
