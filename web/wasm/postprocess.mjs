#!/usr/bin/env node
// postprocess.mjs: makes Emscripten 3.1.6's threaded loader start its pthread workers the way
// bundlers can follow. Run by scripts/build_wasm.sh after emcc:
//
//   node web/wasm/postprocess.mjs OUT_DIR
//
// 1. OUT_DIR/gcam-simd-threads.mjs: the loader creates each pthread worker with
//    `new Worker(new URL("gcam-simd-threads.worker.js", import.meta.url))`, a classic worker,
//    which bundlers emit as a separate bundle whose `import(urlOrBlob)` cannot find the loader.
//    We replace that with a call to Module.gcamStartWorker(), which web/core.js supplies: it
//    starts web/dist/gcam-simd-threads.worker.js as a module worker with a literal
//    `new Worker(new URL(...), { type: 'module' })` that bundlers recognize, and watches each
//    worker for a failure to start (the loader itself would wait forever).
// 2. OUT_DIR/gcam-simd-threads.worker.js: Emscripten's classic worker script is replaced by
//    web/wasm/pthread_worker.js, an ES module that imports the loader statically.
// 3. OUT_DIR/package.json: { "type": "module" }, so Node loads that worker as an ES module.
//
// Every patch must match exactly once: a different Emscripten fails the build here, loudly,
// rather than shipping a loader whose threads never start.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: postprocess.mjs OUT_DIR');
  process.exit(2);
}

function patch(file, from, to) {
  const text = fs.readFileSync(file, 'utf8');
  const n = text.split(from).length - 1;
  if (n !== 1) {
    console.error(`postprocess: ${file}: expected the pattern once, found it ${n} times:\n  ${from}\n` +
                  '(a different Emscripten than 3.1.6? see web/wasm/postprocess.mjs)');
    process.exit(1);
  }
  fs.writeFileSync(file, text.replace(from, to));
}

const loader = path.join(out, 'gcam-simd-threads.mjs');
patch(loader,
  'allocateUnusedWorker:function(){if(!Module["locateFile"]){PThread.unusedWorkers.push(new Worker(new URL("gcam-simd-threads.worker.js",import.meta.url)));return}var pthreadMainJs=locateFile("gcam-simd-threads.worker.js");PThread.unusedWorkers.push(new Worker(pthreadMainJs))}',
  'allocateUnusedWorker:function(){PThread.unusedWorkers.push(Module["gcamStartWorker"]())}');
if (/new Worker\(/.test(fs.readFileSync(loader, 'utf8'))) {
  console.error(`postprocess: ${loader} still creates a Worker itself`);
  process.exit(1);
}
fs.copyFileSync(path.join(HERE, 'pthread_worker.js'), path.join(out, 'gcam-simd-threads.worker.js'));
fs.writeFileSync(path.join(out, 'package.json'), '{ "type": "module" }\n');
console.log(`postprocess: patched ${loader}; wrote ${path.join(out, 'gcam-simd-threads.worker.js')} and package.json`);
