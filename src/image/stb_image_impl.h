/* stb_image_impl.h: Debian's stb_image (/usr/include/stb, never copied here) compiled into the
 * including file: JPEG and PNG only, from memory, its functions static, its warnings off.
 * Include it once per file; define STBI_MALLOC / STBI_REALLOC_SIZED / STBI_FREE before it to
 * give stb an allocator (src/image/decode.c does: zeroed buffers), or leave them for the libc's
 * (tests/test_image_hostile.c: plain stb, the reference). */
#ifndef GCAM_STB_IMAGE_IMPL_H
#define GCAM_STB_IMAGE_IMPL_H
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#if defined(__GNUC__)
/* stb declares static functions that STBI_ONLY_* leaves undefined; gcc reports those at the
 * end of the file, after a pop, so this one stays off for the (short) rest of this file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wsign-compare"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#endif
#include "stb_image.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif
