#!/usr/bin/env bash
# The C unit tests that need no XNNPACK, compiled with Emscripten (-O3 -msimd128) and run in
# Node: the kernels and image code ship as wasm, so they are tested as wasm too.
set -euo pipefail
cd "$(dirname "$0")/.."
export NODE_PATH=/usr/share/nodejs
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
core=$(ls src/*.c src/kernels/*.c src/image/*.c | grep -v '/xnn_')
rc=0
for t in test_sha256 test_kernels test_image test_image_hostile test_model_load test_pipeline; do
  echo "--- $t (wasm SIMD)"
  # shellcheck disable=SC2086
  emcc -std=c11 -O3 -msimd128 -Iinclude -Isrc -Itests -I/usr/include/stb \
    tests/$t.c $core -o "$out/$t.cjs" \
    -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sNODERAWFS=1 -sTOTAL_STACK=8MB -sEXIT_RUNTIME=1
  node --no-experimental-fetch "$out/$t.cjs" | tail -1 || rc=1
done
echo "--- test_threads (wasm SIMD, pthreads)"
# shellcheck disable=SC2086
emcc -std=c11 -O3 -msimd128 -pthread -sPTHREAD_POOL_SIZE=9 -Wno-pthreads-mem-growth \
  -Iinclude -Isrc -Itests -Itools -I/usr/include/stb tests/test_threads.c tools/threadpool.c $core \
  -o "$out/test_threads.cjs" \
  -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sNODERAWFS=1 -sTOTAL_STACK=8MB -sEXIT_RUNTIME=1
node --no-experimental-fetch "$out/test_threads.cjs" | tail -1 || rc=1
exit $rc
