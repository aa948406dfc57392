/* model.h: what a loaded model holds (private). The weights live in one allocation,
 * `weights`; the layer tables point into it. */
#ifndef GCAM_MODEL_H
#define GCAM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gcam.h"
#include "conv_op.h"
#include "ops.h"

#define GCAM_MAX_CONV 64
#define GCAM_MAX_DENSE 16
#define GCAM_FORMAT_VERSION 1

/* The largest single allocation the library makes, in bytes: half the address space
 * (2 GiB in wasm32, where size_t is 32 bits). Every byte count is computed in 64 bits and
 * checked against this before malloc, so a crafted size is refused, never wrapped. */
#define GCAM__MAX_ALLOC_BYTES ((uint64_t)(SIZE_MAX / 2))

typedef struct gcam_conv_layer {
  int32_t H, W;       /* input spatial size */
  int32_t C, OC;      /* input, output channels */
  int32_t pool;       /* 1: a 2x2 max-pool follows */
  gcam__conv_op op;   /* its weights' form and kernels (conv_op.h), made at load */
} gcam_conv_layer;

typedef struct gcam_dense_layer {
  int32_t IN, OUT;
  /* w (IN, OUT) in the file's storage type (f32, f16, int8 + scale), rows in HWC flatten
   * order; bias (OUT) f32. Points into the model's weights. */
  gcam__dense_weights w;
} gcam_dense_layer;

struct gcam_model {
  int32_t in_h, in_w;
  int32_t n_conv, n_dense, n_classes;
  gcam_conv_layer conv[GCAM_MAX_CONV];
  gcam_dense_layer dense[GCAM_MAX_DENSE];
  int32_t cam_h, cam_w, cam_c;    /* the last conv's output */
  int32_t head_h, head_w;         /* after the last conv's pool (== cam if none) */
  gcam_preprocess preprocess;
  float mean[3], std[3];
  gcam_backend backend;
  gcam_memory memory;

  void *weights;                  /* the one allocation of weights (64-byte aligned pieces) */
  size_t weight_bytes;
  char *labels;                   /* n_classes NUL-terminated strings, or NULL */
  const char **label_ptr;         /* n_classes pointers into labels */
  uint8_t sha256[32];
  /* GCAM_BACKEND_XNNPACK: the conv operators, made at load (xnn_backend.h); else NULL */
  struct gcam__xnn_model *xnn;
};

#endif
