/* default_model.c: embeds the default weights file with the assembler's .incbin, so the
 * bytes are not turned into a multi-megabyte C array. CMake defines GCAM_DEFAULT_MODEL_PATH
 * when weights/small/fashion_vgg.gcam exists. */
#include "default_model.h"

#ifdef GCAM_DEFAULT_MODEL_PATH
__asm__(".section .rodata\n"
        ".balign 64\n"
        ".globl gcam__default_model_begin\n"
        ".hidden gcam__default_model_begin\n"
        "gcam__default_model_begin:\n"
        ".incbin \"" GCAM_DEFAULT_MODEL_PATH "\"\n"
        ".globl gcam__default_model_end\n"
        ".hidden gcam__default_model_end\n"
        "gcam__default_model_end:\n"
        ".previous\n");
extern const unsigned char gcam__default_model_begin[], gcam__default_model_end[];

const unsigned char *gcam_default_model(size_t *size) {
  *size = (size_t)(gcam__default_model_end - gcam__default_model_begin);
  return gcam__default_model_begin;
}
#else
const unsigned char *gcam_default_model(size_t *size) {
  *size = 0;
  return NULL;
}
#endif
