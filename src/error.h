/* error.h: how the library reports a failure: a status plus a one-line reason kept per thread. */
#ifndef GCAM_ERROR_H
#define GCAM_ERROR_H

#include "gcam.h"

/* Record a formatted reason for `status` and return `status`, so that a failure reads
 *   return gcam__error(GCAM_STATUS_TRUNCATED, "file ends at %zu bytes, header says %zu", a, b); */
gcam_status gcam__error(gcam_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
