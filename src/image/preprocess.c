/* preprocess.c: the model's input tensor from resized pixels, as Keras and torchvision do it
 * in float32 (numpy / torch arithmetic, one rounding per operation). */
#include <stdint.h>

#include "image/image.h"

void gcam__preprocess(float *out, const uint8_t *img, int32_t H, int32_t W, int32_t ch,
                      gcam_preprocess mode, const float mean[3], const float std_[3]) {
  const size_t n = (size_t)H * (size_t)W;
  if (mode == GCAM_PREPROCESS_CAFFE) {
    /* keras.applications caffe mode: x[..., ::-1] then x[..., c] -= mean[c] */
    for (size_t i = 0; i < n; i++) {
      const uint8_t *p = img + i * (size_t)ch;
      out[3 * i + 0] = (float)p[2] - mean[0];
      out[3 * i + 1] = (float)p[1] - mean[1];
      out[3 * i + 2] = (float)p[0] - mean[2];
    }
  } else {
    /* torchvision: ToTensor divides by 255, Normalize subtracts the mean, divides by std */
    for (size_t i = 0; i < n; i++) {
      const uint8_t *p = img + i * (size_t)ch;
      for (int c = 0; c < 3; c++) {
        const float x = (float)p[c] / 255.f;
        out[3 * i + c] = (x - mean[c]) / std_[c];
      }
    }
  }
}
