#!/usr/bin/env bash
# Builds everything into build/: the native library, CLI, tests and benchmarks, and (through
# scripts/build_wasm.sh) the two wasm builds, SIMD and scalar, into web/dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
