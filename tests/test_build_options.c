/* test_build_options.c: the options given to CMake at configure time reach the library this
 * test links, natively and in the WebAssembly build alike (CMakeLists.txt passes the configured
 * values as GCAM_EXPECT_*): the Winograd tile the convolutions run on, and which backend
 * GCAM_BACKEND_AUTO picks. That the tile still computes the right network is test_pipeline's
 * part (it compares against torch in the same build).
 *
 * scripts/test.sh configures a second wasm build with -DGCAM_WINOGRAD_M=2 and runs this test
 * and test_pipeline there too, so an option that stops at the native build fails here. */
#include <string.h>

#include "gcam.h"
#include "test.h"

#ifndef GCAM_EXPECT_WINOGRAD_M
#error "CMakeLists.txt passes GCAM_EXPECT_WINOGRAD_M"
#endif

#define MODEL "tests/fixtures/vgg_small/model.gcam"

static void check_backend(gcam_backend asked, gcam_backend want, int want_tile) {
  gcam_model_params mp = gcam_model_default_params();
  mp.backend = asked;
  gcam_model *m = NULL;
  gcam_status st = gcam_model_load_from_file(MODEL, &mp, &m);
  CHECK(st == GCAM_STATUS_OK, "load %s with backend %d: %s", MODEL, (int)asked, gcam_last_error());
  if (st) return;
  gcam_model_info info;
  CHECK(gcam_model_get_info(m, &info) == GCAM_STATUS_OK, "get_info");
  CHECK(info.backend == want, "backend %d asked: %d in use, want %d", (int)asked,
        (int)info.backend, (int)want);
  CHECK(info.winograd_tile == want_tile, "backend %d: Winograd tile %d, configured %d",
        (int)asked, (int)info.winograd_tile, want_tile);
  gcam_state *s = NULL;
  CHECK(gcam_state_create(m, &s) == GCAM_STATUS_OK, "state: %s", gcam_last_error());
  gcam_state_free(s);
  gcam_model_free(m);
}

int main(void) {
  printf("configured: GCAM_WINOGRAD_M=%d, %s\n", GCAM_EXPECT_WINOGRAD_M,
         GCAM_EXPECT_WASM ? "WebAssembly" : "native");
#ifdef __EMSCRIPTEN__
  CHECK(GCAM_EXPECT_WASM, "compiled by emcc, but CMake configured a native build");
#else
  CHECK(!GCAM_EXPECT_WASM, "a native compiler, but CMake configured a wasm build");
#endif
  check_backend(GCAM_BACKEND_PORTABLE, GCAM_BACKEND_PORTABLE, GCAM_EXPECT_WINOGRAD_M);
#ifdef GCAM_HAVE_XNNPACK
  check_backend(GCAM_BACKEND_AUTO, GCAM_BACKEND_XNNPACK, 0);
  check_backend(GCAM_BACKEND_XNNPACK, GCAM_BACKEND_XNNPACK, 0);
#else
  check_backend(GCAM_BACKEND_AUTO, GCAM_BACKEND_PORTABLE, GCAM_EXPECT_WINOGRAD_M);
  {
    gcam_model_params mp = gcam_model_default_params();
    mp.backend = GCAM_BACKEND_XNNPACK;
    gcam_model *m = NULL;
    CHECK(gcam_model_load_from_file(MODEL, &mp, &m) == GCAM_STATUS_BACKEND,
          "XNNPACK asked of a build without it");
    CHECK(strstr(gcam_last_error(), "XNNPACK") != NULL, "message: %s", gcam_last_error());
    gcam_model_free(m);
  }
#endif
  TEST_MAIN_END();
}
