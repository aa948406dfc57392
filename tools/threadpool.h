/* threadpool.h: a small pthread pool behind the library's gcam_threadpool hook (gcam.h), for
 * the CLI, the tests and the threaded WebAssembly build. The library never creates threads;
 * its host makes one of these and lends it to each state:
 *
 *     gcam_pthreadpool *tp = gcam_pthreadpool_create(4);  // the caller + 3 workers
 *     gcam_threadpool hook = gcam_pthreadpool_hook(tp);
 *     gcam_state_set_threadpool(state, &hook);
 *     ...
 *     gcam_state_free(state);
 *     gcam_pthreadpool_destroy(tp);
 *
 * One run() at a time per pool: states that share a pool must not run concurrently. */
#ifndef GCAM_THREADPOOL_H
#define GCAM_THREADPOOL_H

#include <stdint.h>

#include "gcam.h"

typedef struct gcam_pthreadpool gcam_pthreadpool;

/* A pool running n_threads tasks at once (1..1024): the thread calling run() works too, so
 * n_threads - 1 threads are started. NULL if n_threads is out of range or a thread or the
 * memory could not be had. */
gcam_pthreadpool *gcam_pthreadpool_create(int32_t n_threads);

/* Stops and joins the workers (not during a run). NULL is a no-op. */
void gcam_pthreadpool_destroy(gcam_pthreadpool *tp);

/* The hook that hands tasks to `tp`: { run, tp, n_threads }. */
gcam_threadpool gcam_pthreadpool_hook(gcam_pthreadpool *tp);

/* The number of online CPUs (at least 1). */
int32_t gcam_pthreadpool_online_cpus(void);

#endif
