/* gcam_wasm.c: the few entry points the JS wrapper needs on top of gcam.h, so that JS never
 * depends on the C ABI of structs passed by value or on 64-bit integers (which JS would
 * have to pass as BigInt or as two halves). Compiled into the WebAssembly build only. */
#include <malloc.h>
#include <stdlib.h>
#include <stdint.h>

#include "gcam.h"

/* Start a streaming load with the default backend and memory mode `memory` (gcam_memory:
 * 0 fast, 1 compact; anything else is refused by the loader). `expected_size` is a double
 * because a JS number holds any file size below 2^53 exactly. */
gcam_status gcam_wasm_loader_create(double expected_size, int32_t memory,
                                    gcam_model_loader **out) {
  gcam_model_params params = gcam_model_default_params();
  params.memory = (gcam_memory)memory;
  if (!(expected_size >= 0.0) || expected_size > 9007199254740992.0)
    return gcam_model_loader_create(&params, 0, out);
  return gcam_model_loader_create(&params, (uint64_t)expected_size, out);
}

/* The model's description as integers, in this order (GCAM_WASM_INFO_* in web/core.js):
 * input_width, input_height, n_conv, n_dense, n_classes, cam_width, cam_height,
 * cam_channels, has_labels, preprocess, backend, weight_bytes (saturated to INT32_MAX);
 * and the file's SHA-256 (of its bytes 64..end) as 64 hex characters plus a NUL in `sha256`. */
gcam_status gcam_wasm_model_info(const gcam_model *model, int32_t *ints, char *sha256) {
  gcam_model_info info;
  gcam_status st = gcam_model_get_info(model, &info);
  if (st != GCAM_STATUS_OK) return st;
  ints[0] = info.input_width;
  ints[1] = info.input_height;
  ints[2] = info.n_conv;
  ints[3] = info.n_dense;
  ints[4] = info.n_classes;
  ints[5] = info.cam_width;
  ints[6] = info.cam_height;
  ints[7] = info.cam_channels;
  ints[8] = info.has_labels;
  ints[9] = (int32_t)info.preprocess;
  ints[10] = (int32_t)info.backend;
  ints[11] = info.weight_bytes > (size_t)INT32_MAX ? INT32_MAX : (int32_t)info.weight_bytes;
  for (int i = 0; i < 65; i++) sha256[i] = info.sha256[i];
  return GCAM_STATUS_OK;
}

/* Bytes of the heap in use by malloc (what an app shows as "memory"; the wasm memory itself
 * only grows), as a double: may exceed 2^31. */
double gcam_wasm_heap_bytes(void) {
  struct mallinfo mi = mallinfo();
  return (double)(size_t)mi.uordblks;
}

/* gcam_overlay_rgba with the parameters as scalars. */
gcam_status gcam_wasm_overlay(uint8_t *out, const uint8_t *rgba, int32_t width, int32_t height,
                              const float *map, int32_t map_width, int32_t map_height,
                              float heat_weight, float image_weight, int32_t colormap) {
  gcam_overlay_params params = gcam_overlay_default_params();
  params.heat_weight = heat_weight;
  params.image_weight = image_weight;
  params.colormap = (gcam_colormap)colormap;
  return gcam_overlay_rgba(out, rgba, width, height, width * 4, map, map_width, map_height,
                           &params);
}

/* gcam_image_decode with the library's pixel cap (no 64-bit argument). */
gcam_status gcam_wasm_image_decode(const void *data, size_t size, uint8_t **rgba, int32_t *width,
                                   int32_t *height) {
  return gcam_image_decode(data, size, GCAM_MAX_IMAGE_PIXELS, rgba, width, height);
}

/* ---- issue 11: methods, target layers, deeper states, evaluation ---- */

/* gcam_state_create_ex with the depth as a scalar (GCAM_DEPTH_LAST_CONV, GCAM_DEPTH_INPUT or
 * a conv index). */
gcam_status gcam_wasm_state_create_ex(const gcam_model *model, int32_t depth, gcam_state **out) {
  gcam_state_params params = gcam_state_default_params();
  params.depth = depth;
  return gcam_state_create_ex(model, &params, out);
}

/* A layer's description: ints = { width, height, channels }, name (32 bytes). */
gcam_status gcam_wasm_layer_info(const gcam_model *model, int32_t index, int32_t *ints,
                                 char *name) {
  gcam_layer_info info;
  gcam_status st = gcam_model_layer_info(model, index, &info);
  if (st != GCAM_STATUS_OK) return st;
  ints[0] = info.width;
  ints[1] = info.height;
  ints[2] = info.channels;
  for (int i = 0; i < 32; i++) name[i] = info.name[i];
  name[31] = 0;
  return GCAM_STATUS_OK;
}

/* The explain params from scalars. The seed comes as a double (a JS number: any integer
 * below 2^53 exactly); JS refuses anything else before the call. */
static gcam_explain_params gcam__wasm_explain_params(int32_t method, int32_t layer, int32_t score,
                                                     int32_t samples, float noise, int32_t steps,
                                                     double seed) {
  gcam_explain_params p = gcam_explain_default_params();
  p.method = (gcam_method)method;
  p.layer = layer;
  p.score = (gcam_score)score;
  p.samples = samples;
  p.noise = noise;
  p.steps = steps;
  p.seed = seed >= 0.0 && seed <= 9007199254740992.0 ? (uint64_t)seed : 0;
  return p;
}

/* gcam_state_map_size with the params as scalars: size = { width, height }. */
gcam_status gcam_wasm_map_size(const gcam_state *s, int32_t method, int32_t layer, int32_t score,
                               int32_t samples, float noise, int32_t steps, double seed,
                               int32_t *size) {
  gcam_explain_params p = gcam__wasm_explain_params(method, layer, score, samples, noise, steps, seed);
  return gcam_state_map_size(s, &p, &size[0], &size[1]);
}

/* gcam_state_explain_ex with the params as scalars. */
gcam_status gcam_wasm_explain_ex(gcam_state *s, int32_t class_index, int32_t method,
                                 int32_t layer, int32_t score, int32_t samples, float noise,
                                 int32_t steps, double seed, float *raw_map, float *norm_map,
                                 float *raw_max) {
  gcam_explain_params p = gcam__wasm_explain_params(method, layer, score, samples, noise, steps, seed);
  return gcam_state_explain_ex(s, class_index, &p, raw_map, norm_map, raw_max);
}

/* gcam_state_memory_bytes as a double (may exceed 2^32 on paper; JS numbers hold it). */
double gcam_wasm_state_memory_bytes(const gcam_state *s) {
  uint64_t bytes = 0;
  if (gcam_state_memory_bytes(s, &bytes) != GCAM_STATUS_OK) return -1.0;
  return (double)bytes;
}

/* gcam_state_evaluate with every param as a scalar. `explain` = { method, layer, score,
 * samples, steps } (noise and seed apart: a float and a double); `eval` = { metric, steps,
 * baseline }, with its seed as a double. Writes the AUC to *auc, the point count to
 * *n_points and the points to curve (room for 1025 doubles). The result struct (8 KB) is
 * this function's, so JS never depends on its layout. */
gcam_status gcam_wasm_evaluate(gcam_state *s, int32_t class_index, const float *map,
                               int32_t map_width, int32_t map_height, const int32_t *explain,
                               float noise, double explain_seed, const int32_t *eval,
                               double eval_seed, double *auc, int32_t *n_points, double *curve) {
  gcam_evaluate_result *result = malloc(sizeof *result);
  if (!result) return GCAM_STATUS_OUT_OF_MEMORY;
  gcam_explain_params ep = gcam__wasm_explain_params(explain[0], explain[1], explain[2], explain[3],
                                                     noise, explain[4], explain_seed);
  gcam_evaluate_params vp = gcam_evaluate_default_params();
  vp.metric = (gcam_metric)eval[0];
  vp.steps = eval[1];
  vp.baseline = (gcam_baseline)eval[2];
  vp.seed = eval_seed >= 0.0 && eval_seed <= 9007199254740992.0 ? (uint64_t)eval_seed : 0;
  gcam_status st = gcam_state_evaluate(s, class_index, map, map_width, map_height, &ep, &vp, result);
  if (st == GCAM_STATUS_OK) {
    *auc = result->auc;
    *n_points = result->n_points < 0 ? 0 : result->n_points > 1025 ? 1025 : result->n_points;
    for (int32_t i = 0; i < *n_points; i++) curve[i] = result->curve[i];
  }
  free(result);
  return st;
}
