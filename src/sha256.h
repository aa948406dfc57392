/* sha256.h: SHA-256 (FIPS 180-4), incremental, to check a weights file's payload as it streams in. */
#ifndef GCAM_SHA256_H
#define GCAM_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct gcam_sha256 {
  uint32_t h[8];
  uint64_t n_bytes;
  uint8_t block[64];
  size_t n_block;
} gcam_sha256;

void gcam__sha256_init(gcam_sha256 *s);
void gcam__sha256_update(gcam_sha256 *s, const void *data, size_t size);
void gcam__sha256_final(gcam_sha256 *s, uint8_t digest[32]);

#endif
