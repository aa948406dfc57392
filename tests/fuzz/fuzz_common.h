/* fuzz_common.h: what the weights-loader harnesses share: run a loaded model once on a
 * small deterministic input (forward, top-k, explain), so that every shape the loader
 * accepts is also one the state and the kernels handle. */
#ifndef GCAM_FUZZ_COMMON_H
#define GCAM_FUZZ_COMMON_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gcam.h"

/* The loaders' parameters: a file may ask for at most 256 MB of weights (the library refuses
 * more before allocating), so that libFuzzer's memory limit measures our bugs, not a header's
 * legitimate request for gigabytes. */
static const gcam_model_params params = {GCAM_BACKEND_PORTABLE, GCAM_MEMORY_FAST, 256u << 20};

/* logits into out (up to n_out), or -1 when the model was too large to run here */
static int fuzz_run_model(const gcam_model *m, float *out, int n_out) {
  gcam_model_info info;
  if (gcam_model_get_info(m, &info)) abort();
  /* keep one execution in milliseconds: small inputs and weights only */
  if ((int64_t)info.input_width * info.input_height > 32 * 32 || info.weight_bytes > (256u << 10))
    return -1;
  gcam_state *s;
  gcam_status st = gcam_state_create(m, &s);
  if (st == GCAM_STATUS_OUT_OF_MEMORY) return -1;
  if (st) abort();
  const size_t n = (size_t)info.input_width * info.input_height * 3;
  float *x = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) x[i] = (float)((i * 37) % 255) - 127.0f;
  if (gcam_state_forward_tensor(s, x)) abort();
  const float *z;
  if (gcam_state_logits(s, &z)) abort();
  for (int i = 0; i < info.n_classes && i < n_out; i++) out[i] = z[i];
  int32_t top[5];
  const int k = info.n_classes < 5 ? info.n_classes : 5;
  if (gcam_state_top_k(s, k, top)) abort();
  float *map = malloc((size_t)info.cam_width * info.cam_height * sizeof(float));
  if (gcam_state_explain(s, top[0], GCAM_SCORE_SOFTMAX, NULL, map, NULL)) abort();
  free(map);
  free(x);
  gcam_state_free(s);
  return info.n_classes < n_out ? info.n_classes : n_out;
}
#endif
