/* threadpool.c: see threadpool.h. Workers sleep on a condition variable between runs; in a
 * run, every participant (the caller included) takes the next task index from one atomic
 * counter until none is left, so uneven tasks balance themselves. run() returns only when
 * every task is done and every worker has let go of the job, so a slow worker can never
 * pick up an index of the next run with this run's function, and a worker that wakes after
 * every task was taken stays out. */
#define _POSIX_C_SOURCE 200809L
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct gcam_pthreadpool {
  int32_t n_threads;      /* workers + the caller */
  pthread_t *workers;     /* n_threads - 1 */
  pthread_mutex_t lock;
  pthread_cond_t wake;    /* a new run, or stop */
  pthread_cond_t done;    /* the run's last task ended, or its last worker left */
  uint64_t generation;    /* run count; a worker joins each generation once */
  int stop;
  gcam_task_fn fn;        /* the current run */
  void *context;
  int32_t n_tasks;
  atomic_int next;        /* the next task index to take */
  int32_t finished;       /* tasks ended */
  int32_t active;         /* workers inside the current run */
};

/* take and run tasks until none is left; returns how many this thread ran */
static int32_t gcam__tp_work(gcam_pthreadpool *tp, gcam_task_fn fn, void *context,
                             int32_t n_tasks) {
  int32_t ran = 0;
  for (int t; (t = atomic_fetch_add_explicit(&tp->next, 1, memory_order_relaxed)) < n_tasks;) {
    fn(context, t);
    ran++;
  }
  return ran;
}

static void *gcam__tp_worker(void *arg) {
  gcam_pthreadpool *tp = arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&tp->lock);
  for (;;) {
    while (!tp->stop && tp->generation == seen) pthread_cond_wait(&tp->wake, &tp->lock);
    if (tp->stop) break;
    seen = tp->generation;
    /* every task already taken: the run may be over and its context gone, so keep out (a
     * task not yet taken means run() cannot return before this worker leaves) */
    if (atomic_load_explicit(&tp->next, memory_order_relaxed) >= tp->n_tasks) continue;
    gcam_task_fn fn = tp->fn;
    void *context = tp->context;
    int32_t n_tasks = tp->n_tasks;
    tp->active++;
    pthread_mutex_unlock(&tp->lock);
    int32_t ran = gcam__tp_work(tp, fn, context, n_tasks);
    pthread_mutex_lock(&tp->lock);
    tp->finished += ran;
    tp->active--;
    if (tp->active == 0 && tp->finished == tp->n_tasks) pthread_cond_signal(&tp->done);
  }
  pthread_mutex_unlock(&tp->lock);
  return NULL;
}

static void gcam__tp_run(void *pool, gcam_task_fn fn, void *context, int32_t n_tasks) {
  gcam_pthreadpool *tp = pool;
  if (n_tasks <= 0) return;
  if (tp->n_threads == 1 || n_tasks == 1) {
    for (int32_t t = 0; t < n_tasks; t++) fn(context, t);
    return;
  }
  pthread_mutex_lock(&tp->lock);
  tp->fn = fn, tp->context = context, tp->n_tasks = n_tasks;
  tp->finished = 0;
  atomic_store_explicit(&tp->next, 0, memory_order_relaxed);
  tp->generation++;
  pthread_cond_broadcast(&tp->wake);
  pthread_mutex_unlock(&tp->lock);

  int32_t ran = gcam__tp_work(tp, fn, context, n_tasks);

  pthread_mutex_lock(&tp->lock);
  tp->finished += ran;
  while (tp->finished < n_tasks || tp->active > 0) pthread_cond_wait(&tp->done, &tp->lock);
  pthread_mutex_unlock(&tp->lock);
}

static void gcam__tp_stop(gcam_pthreadpool *tp, int32_t started) {
  pthread_mutex_lock(&tp->lock);
  tp->stop = 1;
  pthread_cond_broadcast(&tp->wake);
  pthread_mutex_unlock(&tp->lock);
  for (int32_t i = 0; i < started; i++) pthread_join(tp->workers[i], NULL);
  pthread_cond_destroy(&tp->done);
  pthread_cond_destroy(&tp->wake);
  pthread_mutex_destroy(&tp->lock);
  free(tp->workers);
  free(tp);
}

gcam_pthreadpool *gcam_pthreadpool_create(int32_t n_threads) {
  if (n_threads < 1 || n_threads > 1024) return NULL;
  gcam_pthreadpool *tp = calloc(1, sizeof *tp);
  if (!tp) return NULL;
  tp->workers = calloc((size_t)n_threads, sizeof *tp->workers);
  if (!tp->workers) {
    free(tp);
    return NULL;
  }
  tp->n_threads = n_threads;
  atomic_init(&tp->next, 0);
  pthread_mutex_init(&tp->lock, NULL);
  pthread_cond_init(&tp->wake, NULL);
  pthread_cond_init(&tp->done, NULL);
  for (int32_t i = 0; i < n_threads - 1; i++) {
    if (pthread_create(&tp->workers[i], NULL, gcam__tp_worker, tp) != 0) {
      gcam__tp_stop(tp, i);
      return NULL;
    }
  }
  return tp;
}

void gcam_pthreadpool_destroy(gcam_pthreadpool *tp) {
  if (tp) gcam__tp_stop(tp, tp->n_threads - 1);
}

gcam_threadpool gcam_pthreadpool_hook(gcam_pthreadpool *tp) {
  gcam_threadpool hook = {gcam__tp_run, tp, tp ? tp->n_threads : 1};
  if (!tp) hook.run = NULL;
  return hook;
}

int32_t gcam_pthreadpool_online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n > 1024 ? 1024 : (int32_t)n;
}
