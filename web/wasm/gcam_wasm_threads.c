/* gcam_wasm_threads.c: the threaded WebAssembly build's pool (compiled into
 * gcam-simd-threads only, with -pthread and tools/threadpool.c). Emscripten runs pthreads
 * on Web Workers (worker_threads in Node) that share the wasm memory; web/core.js has
 * Emscripten preload n_threads - 1 of them (PTHREAD_POOL_SIZE = Module.gcamWorkers), since
 * a thread cannot start while the calling thread blocks. The pool is the same pthread pool
 * the native CLI uses; one per module instance, made on first use. */
#include <stdint.h>

#include "error.h"
#include "gcam.h"
#include "threadpool.h"

static gcam_pthreadpool *gcam__wasm_pool;

/* Lend `state` a pool of n_threads (the calling thread and n_threads - 1 workers); 1 goes
 * back to serial. The first call fixes the pool's size. */
gcam_status gcam_wasm_state_set_threads(gcam_state *state, int32_t n_threads) {
  if (!state) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "state is NULL");
  if (n_threads <= 1) return gcam_state_set_threadpool(state, NULL);
  if (!gcam__wasm_pool) gcam__wasm_pool = gcam_pthreadpool_create(n_threads);
  if (!gcam__wasm_pool)
    return gcam__error(GCAM_STATUS_BACKEND, "cannot start %d threads (too few preloaded workers?)",
                       (int)n_threads);
  gcam_threadpool hook = gcam_pthreadpool_hook(gcam__wasm_pool);
  return gcam_state_set_threadpool(state, &hook);
}
