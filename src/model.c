/* model.c: what a loaded model is and tells: default parameters, freeing, its description
 * and its labels. Reading a file into a model is model_load.c's job. */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "kernels/conv3x3.h"
#include "model.h"

gcam_model_params gcam_model_default_params(void) {
  gcam_model_params p;
  memset(&p, 0, sizeof p);
  p.backend = GCAM_BACKEND_AUTO;
  return p;
}

void gcam_model_free(gcam_model *model) {
  if (!model) return;
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
      const int tile = gcam__conv3x3_path(m->conv[i].C, m->conv[i].OC);
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
