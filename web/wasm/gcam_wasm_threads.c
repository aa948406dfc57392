/* gcam_wasm_threads.c: the threaded WebAssembly build's pool (compiled into
 * gcam-simd-threads only, with -pthread and tools/threadpool.c). Emscripten runs pthreads
 * on Web Workers (worker_threads in Node) that share the wasm memory; web/core.js has
 * Emscripten preload n_threads - 1 of them (PTHREAD_POOL_SIZE = Module.gcamWorkers), since
 * a thread cannot start while the calling thread blocks. The pool is the same pthread pool
 * the native CLI uses, owned by the JS engine: it makes one after the state and frees it
 * (which joins its threads) before anything else goes, because Emscripten's
 * terminateAllThreads frees the thread data of threads that are still running: a pool
 * worker still waiting in pthread_cond_wait then runs on freed memory
 * (emscripten-core/emscripten#18675, not fixed in Debian's 3.1.6).
 *
 * Only the public API (gcam.h, threadpool.h): a failure here has no C message, so JS
 * words it (web/core.js). */
#include <stdint.h>

#include "gcam.h"
#include "threadpool.h"

/* A pool of n_threads (the caller and n_threads - 1 workers), or NULL when the threads
 * could not be started. */
gcam_pthreadpool *gcam_wasm_pool_create(int32_t n_threads) {
  return gcam_pthreadpool_create(n_threads);
}

/* Lend `pool` to `state` (NULL: serial again). The state copies the hook; the pool must
 * outlive the state's use of it. */
gcam_status gcam_wasm_state_set_pool(gcam_state *state, gcam_pthreadpool *pool) {
  if (!pool) return gcam_state_set_threadpool(state, NULL);
  gcam_threadpool hook = gcam_pthreadpool_hook(pool);
  return gcam_state_set_threadpool(state, &hook);
}

/* Stop and join the pool's threads, then free it. Not during a run. NULL is a no-op. */
void gcam_wasm_pool_free(gcam_pthreadpool *pool) { gcam_pthreadpool_destroy(pool); }
