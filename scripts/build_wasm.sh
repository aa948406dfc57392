#!/bin/sh
# build_wasm.sh: the WebAssembly builds of the C core, with Debian's Emscripten (3.1.6).
#
#   scripts/build_wasm.sh [--if-needed] [OUT_DIR]        (default: web/dist)
#
# --if-needed: do nothing when every output is newer than every C source, header, the glue
# and this script (npm's prepack uses it).
#
# Writes three ES-module builds of the same sources and the same exports:
#   OUT_DIR/gcam-simd.mjs   + gcam-simd.wasm     -O3 -msimd128 (our kernels' vector code)
#   OUT_DIR/gcam-scalar.mjs + gcam-scalar.wasm   -O3 (clang lowers the vector extensions
#                                                 to scalar code), for engines without SIMD
#   OUT_DIR/gcam-simd-threads.mjs + .wasm + .worker.js   SIMD + pthreads (shared memory,
#                                                 Web Workers / worker_threads), plus
#                                                 _gcam_wasm_state_set_threads
# web/core.js picks one at run time by feature detection (threads: SharedArrayBuffer and
# crossOriginIsolated in a browser, or Node). web/wasm/postprocess.mjs then makes the threaded
# loader start its pthread workers through web/core.js (as module workers, which bundlers
# follow), puts web/wasm/pthread_worker.js (an ES module) in place of Emscripten's classic
# .worker.js, and writes OUT_DIR/package.json ({ "type": "module" }, for Node). The loaders
# never fetch or read
# the .wasm themselves: web/core.js hands them the bytes (Debian's loader breaks on Node
# 20's global fetch). No Emscripten file system: weights are streamed into the heap.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
IF_NEEDED=0
if [ "${1:-}" = "--if-needed" ]; then IF_NEEDED=1; shift; fi
OUT=${1:-$ROOT/web/dist}
mkdir -p "$OUT"

if [ "$IF_NEEDED" = 1 ]; then
  stale=0
  for o in gcam-simd.mjs gcam-simd.wasm gcam-scalar.mjs gcam-scalar.wasm \
           gcam-simd-threads.mjs gcam-simd-threads.wasm gcam-simd-threads.worker.js package.json; do
    [ -e "$OUT/$o" ] || { stale=1; break; }
    if [ -n "$(find "$ROOT/src" "$ROOT/include" "$ROOT/web/wasm" "$ROOT/tools/threadpool.c" \
                 "$ROOT/tools/threadpool.h" "$0" -newer "$OUT/$o" \
                 \( -name '*.c' -o -name '*.h' -o -name '*.js' -o -name '*.mjs' -o -name '*.sh' \) 2>/dev/null | head -n 1)" ]; then
      stale=1; break
    fi
  done
  if [ "$stale" = 0 ]; then echo "build_wasm: $OUT is up to date"; exit 0; fi
fi

# Debian's emcc runs its JS optimizer with the system node and needs Debian's node modules.
export NODE_PATH=/usr/share/nodejs
EMCC=${EMCC:-emcc}

# The core's sources, as CMakeLists.txt globs them, minus the native-only XNNPACK backend;
# plus the wrapper's glue. GCAM_WASM_CORE_SOURCES (replacing the glob) and
# GCAM_WASM_EXTRA_SOURCES are for development builds only.
SOURCES=""
for f in "$ROOT"/src/*.c "$ROOT"/src/kernels/*.c "$ROOT"/src/image/*.c; do
  [ -e "$f" ] || continue
  case "$(basename "$f")" in xnn_*) continue ;; esac
  SOURCES="$SOURCES $f"
done
[ -n "${GCAM_WASM_CORE_SOURCES:-}" ] && SOURCES=$GCAM_WASM_CORE_SOURCES
SOURCES="$SOURCES $ROOT/web/wasm/gcam_wasm.c ${GCAM_WASM_EXTRA_SOURCES:-}"
# the threaded build's pool: tools/threadpool.c, the native CLI's, over Emscripten's pthreads
THREAD_SOURCES="$ROOT/web/wasm/gcam_wasm_threads.c $ROOT/tools/threadpool.c"

# The C functions web/core.js calls, and nothing else.
EXPORTS='_malloc,_free,_gcam_status_string,_gcam_last_error'
EXPORTS="$EXPORTS,_gcam_wasm_loader_create,_gcam_model_loader_write,_gcam_model_loader_finish"
EXPORTS="$EXPORTS,_gcam_model_loader_free,_gcam_model_free,_gcam_wasm_model_info,_gcam_model_label"
EXPORTS="$EXPORTS,_gcam_state_create,_gcam_state_free,_gcam_state_forward_rgba"
EXPORTS="$EXPORTS,_gcam_state_logits,_gcam_state_probabilities,_gcam_state_top_k"
EXPORTS="$EXPORTS,_gcam_state_explain,_gcam_wasm_overlay,_gcam_heatmap_rgba"
EXPORTS="$EXPORTS,_gcam_wasm_image_decode,_gcam_image_free"

COMMON="-std=c11 -O3 -Wall -Wextra -Wshadow -Wno-unused-parameter
  -I$ROOT/include -I$ROOT/src -I$ROOT/tools -I/usr/include/stb
  -sMODULARIZE=1 -sEXPORT_ES6=1 -sEXPORT_NAME=createGcamModule
  -sENVIRONMENT=web,worker,node
  -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sTOTAL_STACK=8MB
  -sFILESYSTEM=0 -sEXIT_RUNTIME=0 -sNODEJS_CATCH_EXIT=0 -sNODEJS_CATCH_REJECTION=0
  --extern-pre-js $ROOT/web/wasm/node_shim.js
  -sEXPORTED_RUNTIME_METHODS=[UTF8ToString]"

build() { # name extra-flags extra-exports extra-sources
  echo "build_wasm: $1"
  # shellcheck disable=SC2086
  $EMCC $COMMON $2 "-sEXPORTED_FUNCTIONS=[$EXPORTS$3]" $SOURCES $4 -o "$OUT/$1.mjs"
}

build gcam-simd "-msimd128" "" ""
build gcam-scalar "" "" ""
# Threads: the workers are preloaded before the module resolves (a pthread cannot start while
# its creator blocks); their number is the JS expression Module.gcamWorkers, set by
# web/core.js. Memory growth with threads makes JS re-check the heap's views (the warning);
# only JS outside the hot loops touches them.
build gcam-simd-threads "-msimd128 -pthread -sUSE_PTHREADS=1 -sPTHREAD_POOL_SIZE=Module.gcamWorkers
  -Wno-pthreads-mem-growth" ",_gcam_wasm_state_set_threads" "$THREAD_SOURCES"
node "$ROOT/web/wasm/postprocess.mjs" "$OUT"
echo "build_wasm: wrote $OUT/gcam-simd.{mjs,wasm}, $OUT/gcam-scalar.{mjs,wasm}," \
  "$OUT/gcam-simd-threads.{mjs,wasm,worker.js} and $OUT/package.json"
