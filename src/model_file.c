/* model_file.c: loading a weights file from a path, streamed through a loader in 4 MiB
 * chunks so that the file is never held in memory whole. */
#define _POSIX_C_SOURCE 200809L /* open(O_CLOEXEC), fstat: also under -std=c11 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "gcam.h"

gcam_status gcam_model_load_from_file(const char *path, const gcam_model_params *params,
                                      gcam_model **out) {
  if (!path || !out) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "path or out is NULL");
  *out = NULL;
  /* Opened without blocking and checked to be a regular file before a byte is read: a FIFO
   * with no writer would block open() forever, /dev/zero would never end. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return gcam__error(GCAM_STATUS_IO, "cannot open %s: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return gcam__error(GCAM_STATUS_IO, "%s is not a regular file", path);
  }
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    close(fd);
    return gcam__error(GCAM_STATUS_IO, "cannot open %s: %s", path, strerror(errno));
  }
  const uint64_t size = sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
  if (size == 0) {
    fclose(f);
    return gcam__error(GCAM_STATUS_TRUNCATED, "%s is empty", path);
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
