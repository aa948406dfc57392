/* tests/test.h: the smallest test harness that can fail.
 *
 *   CHECK(cond, fmt, ...)   counts a failure and prints where, never aborts
 *   TEST_MAIN_END()         prints "N passed, N failed" and returns non-zero on any failure
 *   TEST_SKIP(fmt, ...)     prints why and returns TEST_SKIP_CODE: ctest reports "skipped"
 *
 * Each tests/test_*.c is one executable; ctest runs them all. */
#ifndef GCAM_TEST_H
#define GCAM_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int test__passed, test__failed;

#define CHECK(cond, ...)                                                    \
  do {                                                                      \
    if (cond) {                                                             \
      test__passed++;                                                       \
    } else {                                                                \
      test__failed++;                                                       \
      fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                         \
      fputc('\n', stderr);                                                  \
    }                                                                       \
  } while (0)

/* max |a-b| / max(|b|, floor): relative error with a floor for values near 0 */
static inline double test_max_rel_err(const float *a, const float *b, size_t n, double floor_) {
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    double s = fabs((double)b[i]);
    double e = d / (s > floor_ ? s : floor_);
    if (e > worst || e != e) worst = (e != e) ? INFINITY : e;
  }
  return worst;
}

static inline double test_max_abs_err(const float *a, const float *b, size_t n) {
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (d > worst || d != d) worst = (d != d) ? INFINITY : d;
  }
  return worst;
}

/* deterministic uniform floats in [lo, hi) (xorshift32, seed != 0) */
static inline void test_fill_uniform(float *x, size_t n, unsigned *seed, float lo, float hi) {
  for (size_t i = 0; i < n; i++) {
    unsigned s = *seed;
    s ^= s << 13; s ^= s >> 17; s ^= s << 5;
    *seed = s;
    x[i] = lo + (hi - lo) * (float)((s >> 8) * (1.0 / 16777216.0));
  }
}

/* the whole file, malloc'ed (NULL if it cannot be read); *size gets its length */
static inline void *test_read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  void *buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (size) *size = (size_t)n;
  return buf;
}

/* the file dir/name, malloc'ed, when it holds exactly `bytes` bytes; else a failed CHECK and
 * NULL (the fixtures the oracle scripts write have sizes fixed by their shapes) */
static inline void *test_read_exact(const char *dir, const char *name, size_t bytes) {
  char path[256];
  snprintf(path, sizeof path, "%s%s", dir, name);
  size_t size = 0;
  void *x = test_read_file(path, &size);
  CHECK(x && size == bytes, "%s: %zu bytes, want %zu", path, x ? size : 0, bytes);
  if (x && size != bytes) free(x), x = NULL;
  return x;
}

/* The exit status that CMakeLists.txt gives ctest as SKIP_RETURN_CODE (as automake's 77). */
#define TEST_SKIP_CODE 77
#define TEST_SKIP(...)                                                      \
  do {                                                                      \
    printf("skipped: ");                                                    \
    printf(__VA_ARGS__);                                                    \
    putchar('\n');                                                          \
    return TEST_SKIP_CODE;                                                  \
  } while (0)

#define TEST_MAIN_END()                                                    \
  do {                                                                     \
    printf("%d passed, %d failed\n", test__passed, test__failed);          \
    return test__failed ? 1 : 0;                                           \
  } while (0)

#endif
