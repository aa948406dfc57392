/* bench_cpu_time.h: the benchmarks' clock (one header, each bench is one executable).
 * Define _POSIX_C_SOURCE 199309L before any include, for clock_gettime. */
#ifndef GCAM_BENCH_CPU_TIME_H
#define GCAM_BENCH_CPU_TIME_H

#include <time.h>

/* CPU seconds of this thread: the machine's other core (and often this one) is shared with
 * other jobs, and wall time then mostly measures the scheduler. Node: process.cpuUsage(). */
#ifdef __EMSCRIPTEN__
#include <emscripten.h>
EM_JS(double, gcam__node_cpu_us, (void), {
  if (typeof process !== 'undefined' && process.cpuUsage) {
    var u = process.cpuUsage();
    return u.user + u.system;
  }
  return performance.now() * 1000;
});
static double cpu_s(void) { return 1e-6 * gcam__node_cpu_us(); }
#else
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

#endif
