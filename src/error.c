/* error.c: status names and the per-thread last-error message. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char gcam__last_error[512];

const char *gcam_status_string(gcam_status status) {
  switch (status) {
    case GCAM_STATUS_OK: return "GCAM_STATUS_OK";
    case GCAM_STATUS_INVALID_ARGUMENT: return "GCAM_STATUS_INVALID_ARGUMENT";
    case GCAM_STATUS_OUT_OF_MEMORY: return "GCAM_STATUS_OUT_OF_MEMORY";
    case GCAM_STATUS_BAD_FILE: return "GCAM_STATUS_BAD_FILE";
    case GCAM_STATUS_UNSUPPORTED_VERSION: return "GCAM_STATUS_UNSUPPORTED_VERSION";
    case GCAM_STATUS_TRUNCATED: return "GCAM_STATUS_TRUNCATED";
    case GCAM_STATUS_CORRUPT: return "GCAM_STATUS_CORRUPT";
    case GCAM_STATUS_BAD_CONFIG: return "GCAM_STATUS_BAD_CONFIG";
    case GCAM_STATUS_IMAGE_DECODE: return "GCAM_STATUS_IMAGE_DECODE";
    case GCAM_STATUS_IMAGE_TOO_LARGE: return "GCAM_STATUS_IMAGE_TOO_LARGE";
    case GCAM_STATUS_UNSUPPORTED_FORMAT: return "GCAM_STATUS_UNSUPPORTED_FORMAT";
    case GCAM_STATUS_IO: return "GCAM_STATUS_IO";
    case GCAM_STATUS_BACKEND: return "GCAM_STATUS_BACKEND";
    case GCAM_STATUS_BAD_STATE: return "GCAM_STATUS_BAD_STATE";
  }
  return "GCAM_STATUS_UNKNOWN";
}

const char *gcam_last_error(void) { return gcam__last_error; }

gcam_status gcam__error(gcam_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(gcam__last_error, sizeof gcam__last_error, fmt, ap);
  va_end(ap);
  /* Messages may quote the caller's words (a layer or method name): printable ASCII only, so
   * no raw byte reaches a terminal or a JS string (SECURITY.md's CLI row) */
  for (char *c = gcam__last_error; *c; c++)
    if (*c < 0x20 || *c > 0x7e) *c = '?';
  return status;
}
