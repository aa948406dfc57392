#!/usr/bin/env bash
# Every test: installs what is needed, builds, then runs the C tests (Release and under
# AddressSanitizer+UBSan), the Python oracle/converter tests, the localization check of the
# small model, the wasm/JS tests in Node and the browser test in headless Chromium.
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
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGCAM_SANITIZE=ON -DGCAM_WASM=OFF >/dev/null &&
    cmake --build build-asan -j2 >/dev/null &&
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure)
}

suite "C tests" bash -c "cd build && ctest --output-on-failure"
suite "C tests under ASan+UBSan" asan
suite "C tests as wasm in Node" bash scripts/test_wasm_c.sh
suite "Python: converter and oracles" /usr/bin/python3 -m pytest -q tests/py
suite "Localization of the small model" /usr/bin/python3 tests/eval_localization.py --check
suite "wasm and JS in Node" env GCAM_CLI=build/gcam node --test tests/js/
suite "Demo in headless Chromium" node --test tests/browser/

echo
[ $failed -eq 0 ] || echo "failed suites: ${failed_names[*]}"
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
