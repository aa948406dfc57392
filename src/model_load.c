/* model_load.c: reads a gcam weights file (weights/FORMAT.md), whole or streamed in chunks.
 *
 * The loader is a small state machine: fixed header -> rest of the header (validated in full
 * before any weight is read) -> payload. Every payload element is checked (finite; int8
 * scales finite and non-zero) and written straight to its final place: dense weights keep
 * the file's storage type (f32, f16 or int8), biases and scales are widened to f32, and a
 * conv's weights go, widened, to a staging buffer that is packed for the kernels once the
 * conv's bias has arrived. The file is never held twice in memory, and the SHA-256 of
 * everything after the first 64 bytes is checked at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernels/simd.h"
#include "model.h"
#include "ops.h"
#include "parallel.h"
#include "sha256.h"
#ifdef GCAM_HAVE_XNNPACK
#include "xnn_backend.h"
#endif

#define GCAM__FIXED_BYTES 128
#define GCAM__MAX_HEADER_BYTES (16u << 20)
#define GCAM__TENSOR_ENTRY_BYTES 80
#define GCAM__MAX_INPUT 4096
#define GCAM__MAX_CHANNELS 65536
#define GCAM__MAX_FEATURES (1 << 20)
#define GCAM__MAX_TENSOR_ELEMS ((uint64_t)1 << 31)

static const uint8_t gcam__magic[8] = {'G', 'C', 'A', 'M', 'V', 'G', 'G', '\n'};

typedef enum { GCAM__CONV_W, GCAM__CONV_B, GCAM__DENSE_W, GCAM__DENSE_S, GCAM__DENSE_B } gcam__kind;

/* the dtypes each kind of tensor may have (bit d: dtype d): int8 only for dense weights,
 * whose scales are f32 */
static const uint32_t gcam__kind_dtypes[] = {3, 3, 7, 1, 3};

typedef struct gcam__tensor {
  gcam__kind kind;
  int32_t layer;
  uint32_t dtype;           /* gcam__dtype */
  int32_t keep;             /* stored in memory in the file's type (dense and compact conv
                             * weights), else widened to f32 */
  uint32_t elem_size;       /* 4 (f32), 2 (f16) or 1 (int8) */
  uint64_t offset, nbytes;  /* in the payload */
  uint64_t n_elems;
  uint64_t at;              /* its place in the weights allocation, in bytes (a portable
                             * FAST conv's weight and bias go to the staging buffer instead) */
} gcam__tensor;

typedef enum { GCAM__PHASE_FIXED, GCAM__PHASE_HEADER, GCAM__PHASE_PAYLOAD } gcam__phase;

struct gcam_model_loader {
  gcam_model_params params;
  uint64_t expected_size;
  gcam__phase phase;
  gcam_status failed;               /* sticky: once a write fails, everything fails */
  char failed_reason[512];          /* ... with the first failure's reason */
  uint64_t received;                /* bytes of the file consumed so far */

  uint8_t fixed[GCAM__FIXED_BYTES];
  uint8_t *header;                  /* header_bytes, while reading the header */
  uint32_t header_bytes;
  uint64_t payload_offset, payload_bytes;
  uint8_t want_sha256[32];
  gcam_sha256 sha;

  gcam_model *model;
  int32_t n_tensors;
  gcam__tensor tensor[2 * (GCAM_MAX_CONV + GCAM_MAX_DENSE) + GCAM_MAX_DENSE];
  int32_t cur;                      /* tensor being received */
  uint64_t elem;                    /* elements of `cur` received */
  uint8_t carry[4];                 /* a partial element split across two chunks */
  uint32_t n_carry;
  int32_t flatten_chw;
  float *staging;                   /* one conv's (3,3,C,OC) weights then its OC biases */
  uint64_t conv_at[GCAM_MAX_CONV];  /* each conv operator's block in the weights */
  /* Without a known file length (expected_size 0) the header's sizes are claims that no byte
   * backs yet: the weights and the staging buffer then grow with the payload received
   * (gcam__reserve), and the layer pointers are set once the weights stop moving. */
  int grow;
  uint64_t weights_cap, staging_cap; /* bytes allocated so far */
  uint64_t weights_limit, staging_limit; /* bytes they take once complete */
};

/* ---- little helpers ------------------------------------------------------------------- */

static uint32_t gcam__u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t gcam__u64(const uint8_t *p) {
  return (uint64_t)gcam__u32(p) | (uint64_t)gcam__u32(p + 4) << 32;
}
static float gcam__f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static int gcam__finite(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return (u & 0x7f800000u) != 0x7f800000u;
}
/* a*b, or 0 with *overflow set when it does not fit in 63 bits */
static uint64_t gcam__mul(uint64_t a, uint64_t b, int *overflow) {
  if (a && b > (UINT64_MAX >> 1) / a) {
    *overflow = 1;
    return 0;
  }
  return a * b;
}

/* ---- the header -------------------------------------------------------------------------- */

static gcam_status gcam__parse_fixed(gcam_model_loader *L) {
  const uint8_t *f = L->fixed;
  if (memcmp(f, gcam__magic, 8) != 0)
    return gcam__error(GCAM_STATUS_BAD_FILE,
                       "not a gcam weights file (bad magic): convert it with weights/convert.py");
  uint32_t version = gcam__u32(f + 8);
  if (version != GCAM_FORMAT_VERSION)
    return gcam__error(GCAM_STATUS_UNSUPPORTED_VERSION,
                       "file is version %u, this build reads version %d: re-run weights/convert.py",
                       version, GCAM_FORMAT_VERSION);
  L->header_bytes = gcam__u32(f + 12);
  L->payload_offset = gcam__u64(f + 16);
  L->payload_bytes = gcam__u64(f + 24);
  memcpy(L->want_sha256, f + 32, 32);
  if (L->header_bytes < GCAM__FIXED_BYTES || L->header_bytes > GCAM__MAX_HEADER_BYTES)
    return gcam__error(GCAM_STATUS_BAD_FILE, "header length %u is out of range [128, 16 MiB]",
                       L->header_bytes);
  if (L->payload_offset != (((uint64_t)L->header_bytes + 63) & ~(uint64_t)63))
    return gcam__error(GCAM_STATUS_BAD_FILE,
                       "payload offset %llu is not the header length %u rounded up to 64",
                       (unsigned long long)L->payload_offset, L->header_bytes);
  if (L->payload_bytes > UINT64_MAX / 2)
    return gcam__error(GCAM_STATUS_BAD_FILE, "payload length is out of range");
  uint64_t total = L->payload_offset + L->payload_bytes;
  if (L->expected_size && L->expected_size < total)
    return gcam__error(GCAM_STATUS_TRUNCATED,
                       "file is %llu bytes but its header says %llu: truncated download?",
                       (unsigned long long)L->expected_size, (unsigned long long)total);
  if (L->expected_size && L->expected_size > total)
    return gcam__error(GCAM_STATUS_BAD_FILE, "file is %llu bytes but its header says %llu",
                       (unsigned long long)L->expected_size, (unsigned long long)total);
  return GCAM_STATUS_OK;
}

/* The network description: sizes in range, spatial sizes after each pool. */
static gcam_status gcam__parse_config(gcam_model_loader *L, gcam_model *m, uint32_t *n_tensors,
                                      uint32_t *labels_bytes) {
  const uint8_t *h = L->header;
  uint32_t in_h = gcam__u32(h + 64), in_w = gcam__u32(h + 68), in_c = gcam__u32(h + 72);
  uint32_t n_conv = gcam__u32(h + 76), n_dense = gcam__u32(h + 80);
  uint32_t n_classes = gcam__u32(h + 84), pre = gcam__u32(h + 88), flatten = gcam__u32(h + 92);
  *n_tensors = gcam__u32(h + 120);
  *labels_bytes = gcam__u32(h + 124);
  if (in_h < 1 || in_h > GCAM__MAX_INPUT || in_w < 1 || in_w > GCAM__MAX_INPUT)
    return gcam__error(GCAM_STATUS_BAD_CONFIG, "input size %ux%u is out of range [1, 4096]", in_w,
                       in_h);
  if (in_c != 3)
    return gcam__error(GCAM_STATUS_BAD_CONFIG, "input has %u channels, expected 3", in_c);
  if (n_conv < 1 || n_conv > GCAM_MAX_CONV || n_dense < 1 || n_dense > GCAM_MAX_DENSE)
    return gcam__error(GCAM_STATUS_BAD_CONFIG, "%u conv and %u dense layers: out of range", n_conv,
                       n_dense);
  if (pre > 1 || flatten > 1)
    return gcam__error(GCAM_STATUS_BAD_CONFIG, "unknown preprocess (%u) or flatten (%u) mode",
                       pre, flatten);
  /* two per layer, and one scale per int8 dense layer (counted exactly by parse_tensors) */
  if (*n_tensors < 2 * (n_conv + n_dense) || *n_tensors > 2 * (n_conv + n_dense) + n_dense)
    return gcam__error(GCAM_STATUS_BAD_CONFIG, "%u tensors for %u conv + %u dense layers",
                       *n_tensors, n_conv, n_dense);
  uint64_t need = (uint64_t)GCAM__FIXED_BYTES + 8ull * (n_conv + n_dense) +
                  (uint64_t)GCAM__TENSOR_ENTRY_BYTES * *n_tensors + *labels_bytes;
  if (need != L->header_bytes)
    return gcam__error(GCAM_STATUS_BAD_FILE, "header length %u, its tables and labels need %llu",
                       L->header_bytes, (unsigned long long)need);
  m->in_h = (int32_t)in_h;
  m->in_w = (int32_t)in_w;
  m->n_conv = (int32_t)n_conv;
  m->n_dense = (int32_t)n_dense;
  m->n_classes = (int32_t)n_classes;
  m->preprocess = (gcam_preprocess)pre;
  L->flatten_chw = (int32_t)flatten;
  for (int c = 0; c < 3; c++) {
    m->mean[c] = gcam__f32_from_bits(gcam__u32(h + 96 + 4 * c));
    m->std[c] = gcam__f32_from_bits(gcam__u32(h + 108 + 4 * c));
    if (!gcam__finite(m->mean[c]) || !gcam__finite(m->std[c]) || m->std[c] == 0.0f)
      return gcam__error(GCAM_STATUS_BAD_CONFIG, "mean/std of channel %d is not finite or std is 0",
                         c);
  }

  const uint8_t *t = h + GCAM__FIXED_BYTES;
  int32_t H = m->in_h, W = m->in_w, C = 3;
  for (int32_t i = 0; i < m->n_conv; i++, t += 8) {
    uint32_t oc = gcam__u32(t), flags = gcam__u32(t + 4);
    if (oc < 1 || oc > GCAM__MAX_CHANNELS || (flags & ~1u))
      return gcam__error(GCAM_STATUS_BAD_CONFIG, "conv %d: %u channels, flags 0x%x", i, oc, flags);
    /* the kernels index one feature map (and the pool's argmax) in int32: a map of 2^31
     * values or more is this format's limit, whatever the address space */
    if ((uint64_t)H * (uint64_t)W * oc > (uint64_t)INT32_MAX)
      return gcam__error(GCAM_STATUS_BAD_CONFIG,
                         "conv %d: a %dx%dx%u output map has 2^31 values or more (the limit)", i,
                         W, H, oc);
    gcam_conv_layer *l = &m->conv[i];
    l->H = H, l->W = W, l->C = C, l->OC = (int32_t)oc, l->pool = (int32_t)(flags & 1);
    C = (int32_t)oc;
    if (i == m->n_conv - 1) m->cam_h = H, m->cam_w = W, m->cam_c = C;
    if (l->pool) {
      if (H < 2 || W < 2)
        return gcam__error(GCAM_STATUS_BAD_CONFIG,
                           "conv %d: a 2x2 pool on a %dx%d map leaves nothing", i, W, H);
      H /= 2, W /= 2;
    }
  }
  m->head_h = H, m->head_w = W;
  int overflow = 0;
  uint64_t in = gcam__mul(gcam__mul((uint64_t)H, (uint64_t)W, &overflow), (uint64_t)C, &overflow);
  for (int32_t j = 0; j < m->n_dense; j++, t += 8) {
    uint32_t out = gcam__u32(t), flags = gcam__u32(t + 4);
    if (out < 1 || out > GCAM__MAX_FEATURES || flags)
      return gcam__error(GCAM_STATUS_BAD_CONFIG, "dense %d: %u features, flags 0x%x", j, out,
                         flags);
    if (overflow || in > GCAM__MAX_TENSOR_ELEMS)
      return gcam__error(GCAM_STATUS_BAD_CONFIG, "dense %d: input too large", j);
    m->dense[j].IN = (int32_t)in, m->dense[j].OUT = (int32_t)out;
    in = out;
  }
  if ((uint32_t)m->dense[m->n_dense - 1].OUT != n_classes)
    return gcam__error(GCAM_STATUS_BAD_CONFIG, "the last dense layer has %d outputs, n_classes is %u",
                       m->dense[m->n_dense - 1].OUT, n_classes);
  return GCAM_STATUS_OK;
}

/* One tensor table entry against what the network says it must be. */
static gcam_status gcam__check_tensor(gcam_model_loader *L, const uint8_t *e, int32_t idx,
                                      gcam__kind kind, const char *want_name,
                                      const uint32_t *want_dims, uint32_t want_ndim,
                                      uint64_t *prev_end) {
  char name[41];
  memcpy(name, e, 40);
  name[40] = 0;
  if (strcmp(name, want_name) != 0) {
    /* the file's bytes reach a message (a log, a terminal) as printable ASCII only */
    for (char *c = name; *c; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f) *c = '?';
    return gcam__error(GCAM_STATUS_BAD_CONFIG, "tensor %d is named '%s', expected '%s'", idx, name,
                       want_name);
  }
  uint32_t dtype = gcam__u32(e + 40), ndim = gcam__u32(e + 44);
  if (dtype > 2)
    return gcam__error(GCAM_STATUS_BAD_CONFIG, "%s: unknown dtype %u", want_name, dtype);
  if (!(gcam__kind_dtypes[kind] >> dtype & 1))
    return gcam__error(GCAM_STATUS_BAD_CONFIG, "%s: dtype %s is not allowed here (int8 is for "
                       "dense weights only; scales are f32)", want_name,
                       dtype == 2 ? "int8" : dtype == 1 ? "f16" : "f32");
  if (ndim != want_ndim)
    return gcam__error(GCAM_STATUS_BAD_CONFIG, "%s has %u dims, expected %u", want_name, ndim,
                       want_ndim);
  uint64_t n = 1;
  int overflow = 0;
  for (uint32_t d = 0; d < 4; d++) {
    uint32_t got = gcam__u32(e + 48 + 4 * d);
    uint32_t want = d < want_ndim ? want_dims[d] : 0;
    if (got != want)
      return gcam__error(GCAM_STATUS_BAD_CONFIG,
                         "%s: dim %u is %u but the network needs %u", want_name, d, got, want);
    if (d < want_ndim) n = gcam__mul(n, got, &overflow);
  }
  uint32_t es = dtype == 0 ? 4 : dtype == 1 ? 2 : 1;
  uint64_t offset = gcam__u64(e + 64), nbytes = gcam__u64(e + 72);
  uint64_t want_bytes = gcam__mul(n, es, &overflow);
  if (overflow || n > GCAM__MAX_TENSOR_ELEMS)
    return gcam__error(GCAM_STATUS_BAD_CONFIG, "%s is too large", want_name);
  if (nbytes != want_bytes)
    return gcam__error(GCAM_STATUS_CORRUPT, "%s: %llu bytes, its shape needs %llu", want_name,
                       (unsigned long long)nbytes, (unsigned long long)want_bytes);
  if (offset % 64 || offset < *prev_end || offset > L->payload_bytes ||
      nbytes > L->payload_bytes - offset)
    return gcam__error(GCAM_STATUS_CORRUPT,
                       "%s: offset %llu (+%llu bytes) is unaligned, overlapping or outside the "
                       "%llu-byte payload",
                       want_name, (unsigned long long)offset, (unsigned long long)nbytes,
                       (unsigned long long)L->payload_bytes);
  *prev_end = offset + nbytes;
  gcam__tensor *t = &L->tensor[idx];
  t->kind = kind, t->dtype = dtype;
  t->elem_size = es, t->offset = offset, t->nbytes = nbytes, t->n_elems = n;
  return GCAM_STATUS_OK;
}

static gcam_status gcam__parse_tensors(gcam_model_loader *L, gcam_model *m, uint32_t n_tensors) {
  const uint8_t *e = L->header + GCAM__FIXED_BYTES + 8 * (m->n_conv + m->n_dense);
  uint64_t prev_end = 0;
  int32_t idx = 0;
  char name[48];
  gcam_status st;
  for (int32_t i = 0; i < m->n_conv; i++) {
    const gcam_conv_layer *l = &m->conv[i];
    uint32_t wd[4] = {3, 3, (uint32_t)l->C, (uint32_t)l->OC}, bd[1] = {(uint32_t)l->OC};
    snprintf(name, sizeof name, "conv%d.weight", i);
    if ((st = gcam__check_tensor(L, e, idx, GCAM__CONV_W, name, wd, 4, &prev_end))) return st;
    L->tensor[idx++].layer = i, e += GCAM__TENSOR_ENTRY_BYTES;
    snprintf(name, sizeof name, "conv%d.bias", i);
    if ((st = gcam__check_tensor(L, e, idx, GCAM__CONV_B, name, bd, 1, &prev_end))) return st;
    L->tensor[idx++].layer = i, e += GCAM__TENSOR_ENTRY_BYTES;
  }
  for (int32_t j = 0; j < m->n_dense; j++) {
    const gcam_dense_layer *l = &m->dense[j];
    uint32_t wd[2] = {(uint32_t)l->IN, (uint32_t)l->OUT}, bd[1] = {(uint32_t)l->OUT};
    snprintf(name, sizeof name, "dense%d.weight", j);
    if ((st = gcam__check_tensor(L, e, idx, GCAM__DENSE_W, name, wd, 2, &prev_end))) return st;
    L->tensor[idx++].layer = j, e += GCAM__TENSOR_ENTRY_BYTES;
    if (L->tensor[idx - 1].dtype == GCAM__DTYPE_I8) { /* its per-output scales come next */
      if ((uint32_t)idx + 2 > n_tensors)
        return gcam__error(GCAM_STATUS_BAD_CONFIG,
                           "dense%d.weight is int8 but the table has no room for its scales", j);
      snprintf(name, sizeof name, "dense%d.scale", j);
      if ((st = gcam__check_tensor(L, e, idx, GCAM__DENSE_S, name, bd, 1, &prev_end))) return st;
      L->tensor[idx++].layer = j, e += GCAM__TENSOR_ENTRY_BYTES;
    }
    if ((uint32_t)idx + 1 > n_tensors)
      return gcam__error(GCAM_STATUS_BAD_CONFIG, "the tensor table ends before dense%d.bias", j);
    snprintf(name, sizeof name, "dense%d.bias", j);
    if ((st = gcam__check_tensor(L, e, idx, GCAM__DENSE_B, name, bd, 1, &prev_end))) return st;
    L->tensor[idx++].layer = j, e += GCAM__TENSOR_ENTRY_BYTES;
  }
  if ((uint32_t)idx != n_tensors)
    return gcam__error(GCAM_STATUS_BAD_CONFIG,
                       "the header counts %u tensors, the network and its int8 layers need %d",
                       n_tensors, idx);
  L->n_tensors = idx;
  return GCAM_STATUS_OK;
}

static gcam_status gcam__parse_labels(gcam_model_loader *L, gcam_model *m, uint32_t labels_bytes) {
  if (labels_bytes == 0) return GCAM_STATUS_OK;
  const uint8_t *p = L->header + L->header_bytes - labels_bytes;
  int64_t n_nul = 0;
  for (uint32_t i = 0; i < labels_bytes; i++) n_nul += p[i] == 0;
  if (n_nul != m->n_classes || p[labels_bytes - 1] != 0)
    return gcam__error(GCAM_STATUS_BAD_FILE, "the labels hold %lld names for %d classes",
                       (long long)n_nul, m->n_classes);
  m->labels = malloc(labels_bytes);
  m->label_ptr = malloc(sizeof(char *) * (size_t)m->n_classes);
  if (!m->labels || !m->label_ptr)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory for %d labels", m->n_classes);
  memcpy(m->labels, p, labels_bytes);
  const char *s = m->labels;
  for (int32_t c = 0; c < m->n_classes; c++) {
    m->label_ptr[c] = s;
    s += strlen(s) + 1;
  }
  return GCAM_STATUS_OK;
}

/* The one weights allocation, laid out layer by layer in 64-byte aligned pieces; and the
 * conv staging buffer. Byte counts in 64 bits, checked against overflow and size_t. */
static uint64_t gcam__align64(uint64_t bytes) { return (bytes + 63) & ~(uint64_t)63; }

static gcam_status gcam__allocate_weights(gcam_model_loader *L, gcam_model *m) {
  uint64_t total = 0, staging = 0;
  /* the conv operators (conv_op.h), once the kernels' size functions are known to fit */
  for (int32_t i = 0; i < m->n_conv; i++) {
    gcam_conv_layer *l = &m->conv[i];
    if (!gcam__conv_op_fits(l->C, l->OC))
      return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                         "conv %d (%d -> %d channels) needs more memory than this build can "
                         "address (%llu MiB per buffer)",
                         i, l->C, l->OC, (unsigned long long)(GCAM__MAX_ALLOC_BYTES >> 20));
    /* the tensor table is conv0.weight, conv0.bias, conv1.weight, ... (gcam__parse_tensors) */
    gcam__conv_op_create(&l->op, l->C, l->OC, m->backend, m->memory,
                         (gcam__dtype)L->tensor[2 * i].dtype);
    const uint64_t f = gcam__conv_op_staging_floats(&l->op);
    if (f > staging) staging = f;
  }
  for (int32_t t = 0; t < L->n_tensors; t++) {
    gcam__tensor *tt = &L->tensor[t];
    tt->keep = tt->kind == GCAM__DENSE_W ||
               (tt->kind == GCAM__CONV_W && gcam__conv_op_keeps_dtype(&m->conv[tt->layer].op));
    if (tt->kind == GCAM__DENSE_W) m->dense[tt->layer].w.dtype = (gcam__dtype)tt->dtype;
  }
  /* the layout, in the file's order (so a stream fills the allocation from its start): each
   * conv's block (conv_op.h: the file's tensors go into it, or are staged and packed into it
   * when the bias is in); dense tensors as stored (scales and biases as f32) */
  for (int32_t t = 0; t < L->n_tensors; t++) {
    gcam__tensor *tt = &L->tensor[t];
    if (tt->kind == GCAM__CONV_W || tt->kind == GCAM__CONV_B) {
      const gcam__conv_op *op = &m->conv[tt->layer].op;
      if (tt->kind == GCAM__CONV_W) {
        L->conv_at[tt->layer] = tt->at = total;
        total += gcam__conv_op_block_bytes(op);
      } else {
        tt->at = L->conv_at[tt->layer] + gcam__conv_op_bias_offset(op);
      }
      continue;
    }
    tt->at = total;
    total += gcam__align64(tt->kind == GCAM__DENSE_W ? tt->nbytes : 4 * tt->n_elems);
  }
  if (total > GCAM__MAX_ALLOC_BYTES || 4 * staging > GCAM__MAX_ALLOC_BYTES)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "the weights need %llu MB, more than this build can address (%llu MiB)",
                       (unsigned long long)(total >> 20),
                       (unsigned long long)(GCAM__MAX_ALLOC_BYTES >> 20));
  const uint64_t cap = L->params.max_weight_bytes;
  if (cap && total + 4 * staging > cap)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "the weights need %llu MB, more than the %llu MB allowed (max_weight_bytes)",
                       (unsigned long long)((total + 4 * staging + (1u << 20) - 1) >> 20),
                       (unsigned long long)(cap >> 20));
  m->weight_bytes = (size_t)total;
  L->weights_limit = total, L->staging_limit = gcam__align64(4 * staging);
  L->grow = L->expected_size == 0;
  if (L->grow) return GCAM_STATUS_OK; /* reserved as the payload arrives (gcam__reserve) */
  m->weights = aligned_alloc(64, (size_t)total);
  if (!m->weights)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory: the weights need %llu MB",
                       (unsigned long long)((total + (1u << 20) - 1) >> 20));
  if (staging && !(L->staging = malloc((size_t)staging * sizeof(float))))
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "out of memory: loading needs %llu MB for the weights and %llu MB more",
                       (unsigned long long)((total + (1u << 20) - 1) >> 20),
                       (unsigned long long)((4 * staging + (1u << 20) - 1) >> 20));
  L->weights_cap = total, L->staging_cap = L->staging ? 4 * staging : 0;
  return GCAM_STATUS_OK;
}

/* Without a known length, *buf (holding *cap of its final `limit` bytes) is grown to hold at
 * least `need`: what the payload received so far needs in memory, and never much more. It
 * doubles, so it holds at most twice that need (a copy of the old contents each time: O(final
 * size) in all), while the need is at most an eighth of the limit; past that it takes the
 * whole limit at once, so a real file streamed without a length pays one copy of at most an
 * eighth and peaks at 9/8 of it. An 832-byte header announcing 1.45 GB reserves nothing
 * until payload bytes arrive. With a known length both buffers were allocated whole. */
static gcam_status gcam__reserve(const gcam_model_loader *L, void **buf, uint64_t *cap,
                                 uint64_t need, uint64_t limit) {
  if (need <= *cap) return GCAM_STATUS_OK;
  if (!L->grow || need > limit) /* the layout is computed from the validated header */
    return gcam__error(GCAM_STATUS_BAD_STATE, "loader: %llu bytes asked of a %llu-byte buffer",
                       (unsigned long long)need, (unsigned long long)limit);
  uint64_t want = *cap ? 2 * *cap : (uint64_t)64 << 10;
  if (want < need) want = need;
  if (want > limit / 8) want = need > limit / 8 ? limit : limit / 8;
  want = gcam__align64(want); /* aligned_alloc's size is a multiple of the alignment */
  void *p = aligned_alloc(64, (size_t)want);
  if (!p)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY,
                       "out of memory: loading needs %llu MB (of %llu MB) at this point",
                       (unsigned long long)((want + (1u << 20) - 1) >> 20),
                       (unsigned long long)((limit + (1u << 20) - 1) >> 20));
  if (*cap) memcpy(p, *buf, (size_t)*cap);
  free(*buf);
  *buf = p, *cap = want;
  return GCAM_STATUS_OK;
}

static gcam_status gcam__reserve_weights(gcam_model_loader *L, uint64_t need) {
  return gcam__reserve(L, &L->model->weights, &L->weights_cap, need, L->weights_limit);
}
static gcam_status gcam__reserve_staging(gcam_model_loader *L, uint64_t need) {
  void *p = L->staging;
  gcam_status st = gcam__reserve(L, &p, &L->staging_cap, need, L->staging_limit);
  L->staging = p;
  return st;
}

/* The layer tables point into the weights once the weights stop moving (at finish). */
static void gcam__place_weights(gcam_model_loader *L, gcam_model *m) {
  uint8_t *base = m->weights;
  for (int32_t i = 0; i < m->n_conv; i++) gcam__conv_op_bind(&m->conv[i].op, base + L->conv_at[i]);
  for (int32_t t = 0; t < L->n_tensors; t++) {
    const gcam__tensor *tt = &L->tensor[t];
    if (tt->kind == GCAM__CONV_W || tt->kind == GCAM__CONV_B) continue;
    gcam__dense_weights *w = &m->dense[tt->layer].w;
    if (tt->kind == GCAM__DENSE_W) w->w = base + tt->at;
    if (tt->kind == GCAM__DENSE_S) w->scale = (float *)(base + tt->at);
    if (tt->kind == GCAM__DENSE_B) w->bias = (float *)(base + tt->at);
  }
}

/* AUTO: XNNPACK when it is built in and usable on this processor (measured 1.3x faster than
 * our 128-bit kernels on VGG16's convolutions on one AVX-512 core), else our kernels. */
static gcam_backend gcam__auto_backend(void) {
#ifdef GCAM_HAVE_XNNPACK
  if (gcam__xnn_init() == GCAM_STATUS_OK) return GCAM_BACKEND_XNNPACK;
#endif
  return GCAM_BACKEND_PORTABLE;
}

static gcam_status gcam__parse_header(gcam_model_loader *L) {
  gcam_model *m = calloc(1, sizeof *m);
  if (!m) return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory");
  L->model = m;
  m->backend = L->params.backend == GCAM_BACKEND_AUTO ? gcam__auto_backend() : L->params.backend;
  m->memory = L->params.memory;
#ifndef GCAM_HAVE_XNNPACK
  if (m->backend == GCAM_BACKEND_XNNPACK)
    return gcam__error(GCAM_STATUS_BACKEND, "this build has no XNNPACK backend");
#endif
  memcpy(m->sha256, L->want_sha256, 32);
  uint32_t n_tensors, labels_bytes;
  gcam_status st;
  if ((st = gcam__parse_config(L, m, &n_tensors, &labels_bytes))) return st;
  if ((st = gcam__parse_tensors(L, m, n_tensors))) return st;
  if ((st = gcam__parse_labels(L, m, labels_bytes))) return st;
  return gcam__allocate_weights(L, m);
}

/* ---- the payload ------------------------------------------------------------------------- */

/* Where elements [e, e+k) of tensor t go, and how many of them are contiguous there (that
 * much is reserved first): f32 (widened) for everything but dense and compact conv weights,
 * which keep the file's element size. A CHW-flattened dense0 row goes straight to its HWC
 * place when the weights were allocated whole; while they grow, that place may lie past what
 * has been reserved, so the rows stay in file order until dense0 is complete. */
static gcam_status gcam__destination(gcam_model_loader *L, const gcam__tensor *t, uint64_t e,
                                     uint64_t *k, void **dst) {
  gcam_model *m = L->model;
  gcam_status st;
  if ((t->kind == GCAM__CONV_W || t->kind == GCAM__CONV_B) &&
      m->conv[t->layer].op.form == GCAM__CONV_PACKED) { /* staged, packed when the bias is in */
    const gcam_conv_layer *l = &m->conv[t->layer];
    const uint64_t at = (t->kind == GCAM__CONV_W ? 0 : 9 * (uint64_t)l->C * (uint64_t)l->OC) + e;
    if ((st = gcam__reserve_staging(L, 4 * (at + *k)))) return st;
    *dst = L->staging + at;
    return GCAM_STATUS_OK;
  }
  const uint64_t es = t->keep ? t->elem_size : 4;
  uint64_t at = t->at + e * es;
  if (t->kind == GCAM__DENSE_W && t->layer == 0 && L->flatten_chw && !L->grow) {
    const uint64_t out = (uint64_t)m->dense[0].OUT;
    uint64_t row = e / out, col = e % out;
    if (*k > out - col) *k = out - col; /* stop at the row's end */
    const uint64_t hw = (uint64_t)m->head_h * (uint64_t)m->head_w, C = (uint64_t)m->cam_c;
    row = (row % hw) * C + row / hw; /* CHW row -> HWC row */
    at = t->at + (row * out + col) * es;
  }
  if ((st = gcam__reserve_weights(L, at + *k * es))) return st;
  *dst = (uint8_t *)m->weights + at;
  return GCAM_STATUS_OK;
}

/* hw*C rows of `row_bytes` in CHW order -> HWC order, in place: each cycle of the permutation
 * is moved once, through one spare row; `done` marks the rows already in place. */
static gcam_status gcam__rows_chw_to_hwc(uint8_t *w, uint64_t hw, uint64_t C, size_t row_bytes) {
  const uint64_t n = hw * C;
  uint8_t *tmp = malloc(row_bytes), *done = calloc((size_t)(n / 8 + 1), 1);
  if (!tmp || !done) {
    free(tmp), free(done);
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory reordering dense0's rows");
  }
  for (uint64_t start = 0; start < n; start++) {
    if (done[start / 8] >> (start % 8) & 1) continue;
    memcpy(tmp, w + start * row_bytes, row_bytes);
    uint64_t d = start;
    for (;;) { /* HWC row d = s*C + c takes the file's row c*hw + s */
      const uint64_t from = (d % C) * hw + d / C;
      done[d / 8] |= (uint8_t)(1u << (d % 8));
      if (from == start) break;
      memcpy(w + d * row_bytes, w + from * row_bytes, row_bytes);
      d = from;
    }
    memcpy(w + d * row_bytes, tmp, row_bytes);
  }
  free(tmp), free(done);
  return GCAM_STATUS_OK;
}

static gcam_status gcam__bad_element(const gcam__tensor *t, uint64_t e, const char *what) {
  static const char *kinds[] = {"conv", "conv", "dense", "dense", "dense"};
  static const char *parts[] = {"weight", "bias", "weight", "scale", "bias"};
  return gcam__error(GCAM_STATUS_CORRUPT, "%s%d.%s: element %llu is %s", kinds[t->kind],
                     t->layer, parts[t->kind], (unsigned long long)e, what);
}

static gcam_status gcam__convert(void *dst, const uint8_t *src, uint64_t k, const gcam__tensor *t,
                                 uint64_t e) {
  if (t->kind == GCAM__DENSE_W && t->dtype == GCAM__DTYPE_I8) { /* every byte is a weight */
    memcpy(dst, src, (size_t)k);
    return GCAM_STATUS_OK;
  }
  if (t->keep && t->dtype == GCAM__DTYPE_F16) { /* kept as half bits */
    uint16_t *d = dst;
    for (uint64_t i = 0; i < k; i++) {
      uint16_t h = (uint16_t)(src[2 * i] | src[2 * i + 1] << 8);
      if ((h & 0x7c00) == 0x7c00) return gcam__bad_element(t, e + i, "NaN or infinite");
      d[i] = h;
    }
    return GCAM_STATUS_OK;
  }
  float *d = dst;
  for (uint64_t i = 0; i < k; i++) {
    float v;
    if (t->elem_size == 4) {
      v = gcam__f32_from_bits(gcam__u32(src + 4 * i));
      if (!gcam__finite(v)) return gcam__bad_element(t, e + i, "NaN or infinite");
    } else {
      uint16_t h = (uint16_t)(src[2 * i] | src[2 * i + 1] << 8);
      if ((h & 0x7c00) == 0x7c00) return gcam__bad_element(t, e + i, "NaN or infinite");
      v = gcam__f16_to_f32(h);
    }
    if (t->kind == GCAM__DENSE_S && v == 0.0f)
      return gcam__bad_element(t, e + i, "zero (an int8 scale must be finite and non-zero)");
    d[i] = v;
  }
  return GCAM_STATUS_OK;
}

/* A tensor is complete: a conv's bias completes the conv, which is then packed; a grown
 * CHW dense0 is put in HWC order; a dense layer's halves are scaled up (gcam__f16_scale_up). */
static gcam_status gcam__tensor_done(gcam_model_loader *L, const gcam__tensor *t) {
  gcam_model *m = L->model;
  if (t->kind == GCAM__DENSE_W) {
    gcam_status st = GCAM_STATUS_OK;
    if (t->layer == 0 && L->flatten_chw && L->grow)
      st = gcam__rows_chw_to_hwc((uint8_t *)m->weights + t->at,
                                 (uint64_t)m->head_h * (uint64_t)m->head_w, (uint64_t)m->cam_c,
                                 (size_t)m->dense[0].OUT * t->elem_size);
    if (!st && t->dtype == GCAM__DTYPE_F16)
      m->dense[t->layer].w.f16_exp =
          gcam__f16_scale_up((uint16_t *)((uint8_t *)m->weights + t->at), t->n_elems);
    return st;
  }
  if (t->kind != GCAM__CONV_B) return GCAM_STATUS_OK;
  const gcam_conv_layer *l = &m->conv[t->layer];
  if (l->op.form != GCAM__CONV_PACKED) return GCAM_STATUS_OK; /* in its block as it came */
  const uint64_t at = L->conv_at[t->layer];
  gcam_status st = gcam__reserve_weights(L, at + gcam__conv_op_block_bytes(&l->op));
  if (st) return st;
  gcam__conv_op_pack(&l->op, (uint8_t *)m->weights + at, L->staging,
                     L->staging + (size_t)9 * l->C * l->OC);
  return GCAM_STATUS_OK;
}

/* Consume payload bytes [pos, pos+n) (pos relative to the payload start). */
static gcam_status gcam__payload(gcam_model_loader *L, const uint8_t *p, size_t n, uint64_t pos) {
  gcam_status st;
  while (n > 0) {
    if (L->cur >= L->n_tensors) return GCAM_STATUS_OK; /* trailing padding */
    const gcam__tensor *t = &L->tensor[L->cur];
    if (pos < t->offset) { /* padding before the tensor */
      uint64_t skip = t->offset - pos < n ? t->offset - pos : n;
      p += skip, n -= (size_t)skip, pos += skip;
      continue;
    }
    uint32_t es = t->elem_size;
    if (L->n_carry) { /* finish an element split across chunks */
      while (L->n_carry < es && L->n_carry < sizeof L->carry && n) L->carry[L->n_carry++] = *p++, n--, pos++;
      if (L->n_carry < es) return GCAM_STATUS_OK;
      uint64_t k = 1;
      void *dst;
      if ((st = gcam__destination(L, t, L->elem, &k, &dst))) return st;
      if ((st = gcam__convert(dst, L->carry, 1, t, L->elem))) return st;
      L->elem++, L->n_carry = 0;
    }
    while (L->elem < t->n_elems && n >= es) {
      uint64_t k = t->n_elems - L->elem;
      if (k > n / es) k = n / es;
      void *dst;
      if ((st = gcam__destination(L, t, L->elem, &k, &dst))) return st;
      if ((st = gcam__convert(dst, p, k, t, L->elem))) return st;
      L->elem += k, p += k * es, n -= (size_t)(k * es), pos += k * es;
    }
    if (L->elem == t->n_elems) {
      if ((st = gcam__tensor_done(L, t))) return st;
      L->cur++, L->elem = 0;
    } else if (n) { /* less than one element left in this chunk */
      memcpy(L->carry, p, n);
      L->n_carry = (uint32_t)n;
      pos += n, n = 0;
    }
  }
  return GCAM_STATUS_OK;
}

/* ---- the loader's public face ------------------------------------------------------------- */

gcam_status gcam_model_loader_create(const gcam_model_params *params, uint64_t expected_size,
                                     gcam_model_loader **out) {
  if (!out) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  gcam_model_loader *L = calloc(1, sizeof *L);
  if (!L) return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory");
  L->params = params ? *params : gcam_model_default_params();
  if (L->params.backend < GCAM_BACKEND_AUTO || L->params.backend > GCAM_BACKEND_XNNPACK) {
    free(L);
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "unknown backend %d", (int)params->backend);
  }
  if (L->params.memory != GCAM_MEMORY_FAST && L->params.memory != GCAM_MEMORY_COMPACT) {
    free(L);
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "unknown memory mode %d",
                       (int)params->memory);
  }
  L->expected_size = expected_size;
  gcam__sha256_init(&L->sha);
  *out = L;
  return GCAM_STATUS_OK;
}

static gcam_status gcam__write(gcam_model_loader *L, const uint8_t *p, size_t n) {
  gcam_status st;
  if (L->phase == GCAM__PHASE_FIXED) {
    size_t take = GCAM__FIXED_BYTES - L->received < n ? GCAM__FIXED_BYTES - L->received : n;
    memcpy(L->fixed + L->received, p, take);
    L->received += take, p += take, n -= take;
    if (L->received < GCAM__FIXED_BYTES) return GCAM_STATUS_OK;
    if ((st = gcam__parse_fixed(L))) return st;
    L->header = malloc(L->header_bytes);
    if (!L->header) return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory");
    memcpy(L->header, L->fixed, GCAM__FIXED_BYTES);
    L->phase = GCAM__PHASE_HEADER;
  }
  if (L->phase == GCAM__PHASE_HEADER) {
    size_t take = L->header_bytes - L->received < n ? (size_t)(L->header_bytes - L->received) : n;
    memcpy(L->header + L->received, p, take);
    L->received += take, p += take, n -= take;
    if (L->received < L->header_bytes) return GCAM_STATUS_OK;
    if ((st = gcam__parse_header(L))) return st;
    free(L->header);
    L->header = NULL;
    L->phase = GCAM__PHASE_PAYLOAD;
  }
  if (L->received < L->payload_offset) { /* padding between header and payload */
    uint64_t skip = L->payload_offset - L->received < n ? L->payload_offset - L->received : n;
    L->received += skip, p += skip, n -= (size_t)skip;
  }
  if (n == 0) return GCAM_STATUS_OK;
  uint64_t pos = L->received - L->payload_offset;
  if (n > L->payload_bytes - pos)
    return gcam__error(GCAM_STATUS_BAD_FILE, "more data than the header announces (%llu bytes)",
                       (unsigned long long)(L->payload_offset + L->payload_bytes));
  L->received += n;
  return gcam__payload(L, p, n, pos);
}

gcam_status gcam_model_loader_write(gcam_model_loader *L, const void *chunk, size_t size) {
  if (!L || (!chunk && size))
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "loader or chunk is NULL");
  if (L->failed) return gcam__error(L->failed, "%s", L->failed_reason);
  /* the checksum covers every byte after the first 64 (magic, sizes and the checksum itself,
   * which are all checked exactly) */
  size_t skip = L->received < 64 ? (size_t)(64 - L->received) : 0;
  if (skip < size) gcam__sha256_update(&L->sha, (const uint8_t *)chunk + skip, size - skip);
  gcam_status st = gcam__write(L, (const uint8_t *)chunk, size);
  if (st) {
    L->failed = st;
    snprintf(L->failed_reason, sizeof L->failed_reason, "%s", gcam_last_error());
  }
  return st;
}

void gcam_model_loader_free(gcam_model_loader *L) {
  if (!L) return;
  gcam_model_free(L->model);
  free(L->header);
  free(L->staging);
  free(L);
}

gcam_status gcam_model_loader_finish(gcam_model_loader *L, gcam_model **out) {
  if (!L || !out) {
    gcam_model_loader_free(L);
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "loader or out is NULL");
  }
  *out = NULL;
  gcam_status st = L->failed;
  if (st) {
    gcam__error(st, "%s", L->failed_reason);
    gcam_model_loader_free(L);
    return st;
  }
  uint64_t total = L->payload_offset + L->payload_bytes;
  if (L->phase != GCAM__PHASE_PAYLOAD || L->received < total) {
    if (L->received == 0) st = gcam__error(GCAM_STATUS_TRUNCATED, "the weights file is empty");
    else if (L->phase != GCAM__PHASE_PAYLOAD)
      st = gcam__error(GCAM_STATUS_TRUNCATED, "the file ends inside its header, at byte %llu",
                       (unsigned long long)L->received);
    else
      st = gcam__error(GCAM_STATUS_TRUNCATED, "the file ends at byte %llu, its header says %llu",
                       (unsigned long long)L->received, (unsigned long long)total);
    gcam_model_loader_free(L);
    return st;
  }
  uint8_t digest[32];
  gcam__sha256_final(&L->sha, digest);
#ifdef GCAM_FUZZ_NO_SHA256
  /* fuzz builds only (tests/fuzz/CMakeLists.txt): a mutated file must reach the checks
   * behind the checksum. Never defined in a shipped build. */
  memcpy(digest, L->want_sha256, 32);
#endif
  if (memcmp(digest, L->want_sha256, 32) != 0) {
    gcam_model_loader_free(L);
    return gcam__error(GCAM_STATUS_CORRUPT,
                       "the file's SHA-256 does not match its header: the file is corrupt");
  }
  /* every tensor has arrived; a grown allocation may still lack its last alignment tail */
  if ((st = gcam__reserve_weights(L, L->weights_limit))) {
    gcam_model_loader_free(L);
    return st;
  }
  gcam__place_weights(L, L->model);
#ifdef GCAM_HAVE_XNNPACK
  /* the conv operators, once per model (each packs its layer's weights) */
  if (L->model->backend == GCAM_BACKEND_XNNPACK && (st = gcam__xnn_model_create(L->model))) {
    gcam_model_loader_free(L); /* frees the model and what was made of it */
    return st;
  }
#endif
  *out = L->model;
  L->model = NULL;
  gcam_model_loader_free(L);
  return GCAM_STATUS_OK;
}

gcam_status gcam_model_load_from_memory(const void *data, size_t size,
                                        const gcam_model_params *params, gcam_model **out) {
  if (!out) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  if (!data && size) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "data is NULL");
  if (size == 0) return gcam__error(GCAM_STATUS_TRUNCATED, "the weights file is empty");
  gcam_model_loader *L;
  gcam_status st = gcam_model_loader_create(params, size, &L);
  if (st) return st;
  if ((st = gcam_model_loader_write(L, data, size))) {
    gcam_model_loader_free(L);
    return st;
  }
  return gcam_model_loader_finish(L, out);
}
