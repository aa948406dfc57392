/* fuzz_model_load.c: libFuzzer harness of the one-shot weights loader,
 * gcam_model_load_from_memory. Built with GCAM_FUZZ_NO_SHA256 (the fuzz build only) so that
 * mutated files get past the checksum into the checks behind it. A model that loads is run
 * once (fuzz_common.h). Seeds: tests/fuzz/corpus/model_load. */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "gcam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  gcam_model *m = NULL;
  gcam_status st = gcam_model_load_from_memory(data, size, &params, &m);
  if (st != GCAM_STATUS_OK) {
    if (m || strlen(gcam_last_error()) == 0) abort();
    return 0;
  }
  float z[16];
  fuzz_run_model(m, z, 16);
  gcam_model_free(m);
  return 0;
}
