/* fuzz_model_stream.c: libFuzzer harness of the streamed weights loader
 * (gcam_model_loader_create/write/finish). The first 4 bytes pick the chunk sizes (1 byte to
 * 64 KB, random) and whether the length is announced; the rest is the file. The stream must
 * agree with the one-shot load of the same bytes: same status, and when both load, the same
 * logits bit for bit. Built with GCAM_FUZZ_NO_SHA256. Seeds: tests/fuzz/corpus/model_stream
 * (each the 4-byte prefix + a file). */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "gcam.h"

static uint32_t fuzz_next(uint32_t *s) {
  *s ^= *s << 13, *s ^= *s >> 17, *s ^= *s << 5;
  return *s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  uint32_t seed = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                  (uint32_t)data[3] << 24;
  const uint8_t *file = data + 4;
  const size_t n = size - 4;
  const int announce = seed & 1;
  seed |= 1;
  gcam_model_loader *L;
  if (gcam_model_loader_create(&params, announce ? n : 0, &L)) abort();
  gcam_status st = GCAM_STATUS_OK;
  for (size_t off = 0; off < n && !st;) {
    const uint32_t r = fuzz_next(&seed);
    size_t c = r & 0x100 ? (r >> 12) % 16 + 1 : (r >> 12) % 65536 + 1; /* many tiny chunks */
    if (c > n - off) c = n - off;
    st = gcam_model_loader_write(L, file + off, c);
    off += c;
  }
  gcam_model *m = NULL;
  if (st) {
    gcam_model_loader_free(L);
  } else {
    st = gcam_model_loader_finish(L, &m);
  }
  gcam_model *one = NULL;
  gcam_status st1 = n ? gcam_model_load_from_memory(file, n, &params, &one) : GCAM_STATUS_TRUNCATED;
  /* announced length: the same checks in the same order, so the same status; unannounced,
   * a wrong length is only found at the end, but acceptance must still agree */
  if (announce ? st != st1 : (st == GCAM_STATUS_OK) != (st1 == GCAM_STATUS_OK)) abort();
  if (m && one) {
    float a[16], b[16];
    int na = fuzz_run_model(m, a, 16), nb = fuzz_run_model(one, b, 16);
    if (na != nb || (na > 0 && memcmp(a, b, sizeof(float) * (size_t)na) != 0)) abort();
  }
  gcam_model_free(m);
  gcam_model_free(one);
  return 0;
}
