/* model.h: what a loaded model holds (private). The weights live in one allocation,
 * `weights`; the layer tables point into it. */
#ifndef GCAM_MODEL_H
#define GCAM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gcam.h"

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
  float *packed;      /* portable backend: gcam_conv3x3_pack() output */
  float *w_hwio;      /* XNNPACK backend: (3,3,C,OC) canonical */
  float *bias;        /* XNNPACK backend: (OC) */
  size_t scratch_floats;
} gcam_conv_layer;

typedef struct gcam_dense_layer {
  int32_t IN, OUT;
  float *w;           /* (IN, OUT), rows in HWC flatten order */
  float *bias;        /* (OUT) */
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

  float *weights;                 /* the one allocation of weights */
  size_t weight_floats;
  char *labels;                   /* n_classes NUL-terminated strings, or NULL */
  const char **label_ptr;         /* n_classes pointers into labels */
  uint8_t sha256[32];
};

#endif
