/* fuzz_image_decode.c: libFuzzer harness of gcam_image_decode (the validating pass, then
 * stb_image). Any input must give OK with a sane image, or a status with a message: never a
 * crash, a sanitizer report or a leak. Seeds: tests/fuzz/corpus/image_decode. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *rgba = NULL;
  int32_t w = 0, h = 0;
  /* 1 Mpixel keeps one input within the timeout: a 2 KB progressive JPEG may declare the
   * whole cap (64 x 64053 at 4 Mpixel took 13-20 s instrumented on a busy machine; the
   * cost of a declared size is by design, SECURITY.md), and the validator's limits are the
   * same code at any cap */
  gcam_status st = gcam_image_decode(data, size, (int64_t)1 << 20, &rgba, &w, &h);
  if (st == GCAM_STATUS_OK) {
    if (!rgba || w < 1 || h < 1 || (int64_t)w * h > ((int64_t)1 << 20)) abort();
    /* read every byte: an uninitialized or short buffer shows under MSan/ASan */
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)w * (size_t)h * 4; i++) sum += rgba[i];
    if (sum == 0xFFFFFFFFu) fprintf(stderr, "-");
  } else {
    if (rgba || w || h || strlen(gcam_last_error()) == 0) abort();
  }
  gcam_image_free(rgba);
  return 0;
}
