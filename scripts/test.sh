#!/usr/bin/env bash
# Every test: installs what is needed, builds, then runs the C tests (native Release, under
# AddressSanitizer+UBSan, and compiled to wasm in Node, all through ctest), the Python
# oracle/converter tests, the localization check of the small model, the wasm/JS tests in
# Node, the browser tests in Chromium, Firefox and WebKit, and the packed package built into
# fresh apps by the bundlers.
# Ends with one line "suites: N passed, N failed" and a non-zero exit if any suite failed.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh || exit 1
bash scripts/build.sh || exit 1

passed=0 failed=0 failed_names=()
suite() {
  local name=$1
  shift
  echo
  echo "=== $name: $*"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "=== $name: passed ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    echo "=== $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

asan() {
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGCAM_SANITIZE=ON >/dev/null &&
    cmake --build build-asan -j2 >/dev/null &&
    ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure
}
# An option given at configure time reaches the wasm build: F(2,3) instead of F(4,3), checked
# by test_build_options and against torch by test_pipeline.
wasm_option() {
  emcmake cmake -S . -B build-wasm-m2 -DCMAKE_BUILD_TYPE=Release -DGCAM_WINOGRAD_M=2 >/dev/null &&
    cmake --build build-wasm-m2 -j2 --target test_build_options test_pipeline >/dev/null &&
    ctest --test-dir build-wasm-m2 --output-on-failure -R 'test_build_options|test_pipeline'
}

# libFuzzer harnesses (tests/fuzz), each for GCAM_FUZZ_SECONDS on its seed corpus under ASan+UBSan
fuzz() {
  CC=clang-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGCAM_FUZZ=ON \
    -DGCAM_TESTS=OFF -DGCAM_FUZZ_SECONDS="${GCAM_FUZZ_SECONDS:-60}" >/dev/null &&
    cmake --build build-fuzz -j2 --target fuzz_image_decode fuzz_model_load fuzz_model_stream fuzz_overlay >/dev/null &&
    ctest --test-dir build-fuzz -j2 --output-on-failure -R '^fuzz_'
}

suite "C tests" ctest --test-dir build --output-on-failure
suite "C tests under ASan+UBSan" asan
suite "C tests as wasm in Node" ctest --test-dir build-wasm --output-on-failure
suite "C tests as wasm, Winograd F(2,3)" wasm_option
suite "Fuzzers, 60 s each (ASan+UBSan)" fuzz
suite "Python: converter and oracles" /usr/bin/python3 -m pytest -q tests/py
suite "Localization of the small model" /usr/bin/python3 tests/eval_localization.py --check
suite "wasm and JS in Node" env GCAM_CLI=build/gcam node --test tests/js/
suite "Browser tests in Chromium, Firefox and WebKit" node --test tests/browser/
suite "The packed package under Vite, webpack, esbuild, Rollup" node --test tests/bundlers/

echo
[ $failed -eq 0 ] || echo "failed suites: ${failed_names[*]}"
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
