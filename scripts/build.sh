#!/usr/bin/env bash
# Builds the native library, CLI, tests and benchmarks into build/, and the two wasm builds
# (SIMD and scalar) into web/dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
bash scripts/build_wasm.sh
