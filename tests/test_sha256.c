/* test_sha256.c: SHA-256 against the FIPS 180-4 example vectors, fed whole and in odd chunks. */
#include <string.h>

#include "sha256.h"
#include "test.h"

static void hex(const uint8_t d[32], char out[65]) {
  for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

static void check(const char *msg, size_t repeat, size_t chunk, const char *want) {
  gcam_sha256 s;
  gcam__sha256_init(&s);
  size_t n = strlen(msg), total = n * repeat;
  for (size_t off = 0; off < total;) {
    size_t pos = off % (n ? n : 1), take = chunk;
    if (take > n - pos) take = n - pos;
    if (take > total - off) take = total - off;
    gcam__sha256_update(&s, msg + pos, take);
    off += take;
    if (n == 0) break;
  }
  uint8_t d[32];
  char got[65];
  gcam__sha256_final(&s, d);
  hex(d, got);
  CHECK(strcmp(got, want) == 0, "sha256('%.20s'x%zu, chunk %zu) = %s, want %s", msg, repeat,
        chunk, got, want);
}

int main(void) {
  const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  const char *empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  const char *two = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
  const char *million_a = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
  const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  check("", 1, 1, empty);
  for (size_t chunk = 1; chunk <= 3; chunk++) check("abc", 1, chunk, abc);
  for (size_t chunk = 1; chunk <= 65; chunk += 7) check(m448, 1, chunk, two);
  check("a", 1000000, 1, million_a);
  char a64[65];
  memset(a64, 'a', 64);
  a64[64] = 0;
  check(a64, 1000000 / 64, 64, million_a);
  check(a64, 1000000 / 64, 13, million_a);
  TEST_MAIN_END();
}
