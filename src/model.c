/* model.c: what a loaded model is and tells: default parameters, freeing, its description
 * and its labels. Reading a file into a model is model_load.c's job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernels/conv3x3.h"
#include "model.h"
#ifdef GCAM_HAVE_XNNPACK
#include "xnn_backend.h"
#endif

gcam_model_params gcam_model_default_params(void) {
  gcam_model_params p;
  memset(&p, 0, sizeof p);
  p.backend = GCAM_BACKEND_AUTO;
  return p;
}

void gcam_model_free(gcam_model *model) {
  if (!model) return;
#ifdef GCAM_HAVE_XNNPACK
  gcam__xnn_model_free(model);
#endif
  free(model->weights);
  free(model->labels);
  free(model->label_ptr);
  free(model);
}

/* ---- what a model tells -------------------------------------------------------------------- */

gcam_status gcam_model_get_info(const gcam_model *m, gcam_model_info *info) {
  if (!m || !info) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "model or info is NULL");
  memset(info, 0, sizeof *info);
  info->input_width = m->in_w, info->input_height = m->in_h;
  info->n_conv = m->n_conv, info->n_dense = m->n_dense, info->n_classes = m->n_classes;
  info->cam_width = m->cam_w, info->cam_height = m->cam_h, info->cam_channels = m->cam_c;
  info->has_labels = m->labels != NULL;
  info->preprocess = m->preprocess;
  info->backend = m->backend;
  if (m->backend != GCAM_BACKEND_XNNPACK)
    for (int32_t i = 0; i < m->n_conv; i++) {
      const int tile = m->conv[i].op.path;
      if (tile > info->winograd_tile) info->winograd_tile = tile;
    }
  info->weight_bytes = m->weight_bytes;
  info->memory = m->memory;
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    info->sha256[2 * i] = hex[m->sha256[i] >> 4];
    info->sha256[2 * i + 1] = hex[m->sha256[i] & 15];
  }
  info->sha256[64] = 0;
  return GCAM_STATUS_OK;
}

const char *gcam_model_label(const gcam_model *m, int32_t class_index) {
  if (!m || !m->labels || class_index < 0 || class_index >= m->n_classes) return NULL;
  return m->label_ptr[class_index];
}

/* ---- conv layers by name ------------------------------------------------------------------- */

/* Keras's VGG16 names from the structure: block b (from 1) ends at a max-pool, conv i from 1
 * within its block */
static void gcam__layer_name(const gcam_model *m, int32_t index, char name[32]) {
  int32_t block = 1, in_block = 0;
  for (int32_t i = 0; i <= index; i++) {
    in_block++;
    if (i < index && m->conv[i].pool) block++, in_block = 0;
  }
  snprintf(name, 32, "block%d_conv%d", (int)block, (int)in_block);
}

gcam_status gcam_model_layer_info(const gcam_model *m, int32_t index, gcam_layer_info *info) {
  if (!m || !info) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "model or info is NULL");
  if (index < 0 || index >= m->n_conv)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT,
                       "layer %d is outside the model's conv layers 0..%d", (int)index,
                       (int)m->n_conv - 1);
  memset(info, 0, sizeof *info);
  gcam__layer_name(m, index, info->name);
  info->width = m->conv[index].W, info->height = m->conv[index].H;
  info->channels = m->conv[index].OC;
  return GCAM_STATUS_OK;
}

gcam_status gcam_model_layer_index(const gcam_model *m, const char *name, int32_t *index) {
  if (!m || !name || !index)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "model, name or index is NULL");
  char n[32];
  for (int32_t i = 0; i < m->n_conv; i++) {
    gcam__layer_name(m, i, n);
    if (strcmp(n, name) == 0) {
      *index = i;
      return GCAM_STATUS_OK;
    }
  }
  char last[32];
  gcam__layer_name(m, 0, n);
  gcam__layer_name(m, m->n_conv - 1, last);
  return gcam__error(GCAM_STATUS_INVALID_ARGUMENT,
                     "no conv layer named '%.64s' (this model has %s..%s)", name, n, last);
}
