/* gcam_wasm.c: the few entry points the JS wrapper needs on top of gcam.h, so that JS never
 * depends on the C ABI of structs passed by value or on 64-bit integers (which JS would
 * have to pass as BigInt or as two halves). Compiled into the WebAssembly build only. */
#include <malloc.h>
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
