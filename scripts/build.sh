#!/usr/bin/env bash
# Builds everything with the one CMake project: the native library, CLI, tests and benchmarks
# into build/, the WebAssembly modules and their tests into build-wasm/, then installs the
# modules into web/dist/ (the npm package's files).
#   scripts/build.sh [native|wasm|all]   (default all); extra CMake options in GCAM_CMAKE_ARGS
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
# shellcheck disable=SC2086
if [ "$what" = all ] || [ "$what" = native ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${GCAM_CMAKE_ARGS:-} >/dev/null
  cmake --build build -j2
fi
if [ "$what" = all ] || [ "$what" = wasm ]; then
  emcmake cmake -S . -B build-wasm -DCMAKE_BUILD_TYPE=Release ${GCAM_CMAKE_ARGS:-} >/dev/null
  cmake --build build-wasm -j2
  cmake --install build-wasm >/dev/null
fi
