/* model_file.c: loading a weights file from a path, streamed through a loader in 4 MiB
 * chunks so that the file is never held in memory whole. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "gcam.h"

gcam_status gcam_model_load_from_file(const char *path, const gcam_model_params *params,
                                      gcam_model **out) {
  if (!path || !out) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "path or out is NULL");
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return gcam__error(GCAM_STATUS_IO, "cannot open %s: %s", path, strerror(errno));
  uint64_t size = 0;
  if (fseek(f, 0, SEEK_END) == 0) {
    long end = ftell(f);
    if (end > 0) size = (uint64_t)end;
    rewind(f);
  }
  if (size == 0) {
    fclose(f);
    return gcam__error(GCAM_STATUS_TRUNCATED, "%s is empty (or not a regular file)", path);
  }
  gcam_model_loader *L;
  gcam_status st = gcam_model_loader_create(params, size, &L);
  if (st) {
    fclose(f);
    return st;
  }
  enum { CHUNK = 4 << 20 };
  unsigned char *buf = malloc(CHUNK);
  if (!buf) {
    fclose(f);
    gcam_model_loader_free(L);
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "out of memory");
  }
  size_t n;
  while ((n = fread(buf, 1, CHUNK, f)) > 0)
    if ((st = gcam_model_loader_write(L, buf, n))) break;
  int read_error = ferror(f);
  free(buf);
  fclose(f);
  if (!st && read_error) st = gcam__error(GCAM_STATUS_IO, "error reading %s", path);
  if (st) {
    gcam_model_loader_free(L);
    return st;
  }
  return gcam_model_loader_finish(L, out);
}
