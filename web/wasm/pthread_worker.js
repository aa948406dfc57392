// pthread_worker.js: the threaded build's pthread worker, an ES module, copied by
// scripts/build_wasm.sh to web/dist/gcam-simd-threads.worker.js in place of Emscripten's
// classic worker script.
//
// Why our own: Emscripten 3.1.6's worker is a classic script that fetches the loader by the
// URL the main thread sends (`import(urlOrBlob)`). Under a bundler that URL is a bundle
// chunk, not the loader, and a classic worker cannot `import` statically, so the threads
// never start. This worker imports the loader statically, which every bundler follows, and
// is started by web/core.js as `new Worker(new URL(...), { type: 'module' })` (by web/index.js,
// in the page, when the explainer runs in a worker: its first message is then
// { cmd: 'gcamPort', port }, and the protocol below goes through that port).
//
// It speaks the protocol of the loader it sits beside (web/dist/gcam-simd-threads.mjs,
// Emscripten 3.1.6): 'load' (the wasm module and the shared memory) -> the loader runs in
// pthread mode and answers 'loaded'; 'run' starts a thread's entry point; 'cancel',
// 'processThreadQueue' and 'processProxyingQueue' serve the runtime's cross-thread calls.
import createGcamModule from './gcam-simd-threads.mjs';

const isNode = typeof process === 'object' && !!(process.versions && process.versions.node);

// In Node (worker_threads) the loader calls the Web Worker globals postMessage and self.
let onMessage = null;
if (isNode) {
  const { parentPort } = process.getBuiltinModule('node:worker_threads');
  globalThis.self = globalThis;
  globalThis.postMessage = (msg, transfer) => parentPort.postMessage(msg, transfer);
  parentPort.on('message', (data) => onMessage({ data }));
} else {
  self.onmessage = (ev) => {
    if (ev.data && ev.data.cmd === 'gcamPort') {
      // started by the page for an explainer that runs in a worker (web/worker.js): the
      // loader there speaks to this thread through the port
      const { port } = ev.data;
      globalThis.postMessage = (msg, transfer) => port.postMessage(msg, transfer || []);
      port.onmessage = (e) => onMessage(e);
      return;
    }
    onMessage(ev);
  };
}

let Module = {};

function fail(what, e) {
  // the main thread's loader reports a worker's error event; say what failed first
  console.error(`gradcam-wasm pthread worker: ${what}: ${e && e.stack ? e.stack : e}`);
  if (Module.__emscripten_thread_crashed) Module.__emscripten_thread_crashed();
  throw e;
}

onMessage = (ev) => {
  const d = ev.data;
  try {
    if (d.cmd === 'load') {
      Module.wasmModule = d.wasmModule;
      Module.wasmMemory = d.wasmMemory;
      Module.buffer = d.wasmMemory.buffer;
      Module.ENVIRONMENT_IS_PTHREAD = true;
      // every thread instantiates the module the main thread compiled, on the shared memory
      Module.instantiateWasm = (imports, receive) => {
        const instance = new WebAssembly.Instance(Module.wasmModule, imports);
        receive(instance);
        Module.wasmModule = null;
        return instance.exports;
      };
      createGcamModule(Module).then((instance) => { Module = instance; },
                                    (e) => fail('the loader failed in the thread', e));
    } else if (d.cmd === 'run') {
      Module.__performance_now_clock_drift = performance.now() - d.time;
      Module.__emscripten_thread_init(d.threadInfoStruct, 0, 0, 1);
      Module.establishStackSpace();
      Module.PThread.receiveObjectTransfer(d);
      Module.PThread.threadInit();
      try {
        const result = Module.invokeEntryPoint(d.start_routine, d.arg);
        if (Module.keepRuntimeAlive()) Module.PThread.setExitStatus(result);
        else Module.__emscripten_thread_exit(result);
      } catch (e) {
        if (e === 'unwind') return; // the thread stays alive for the event loop
        if (e instanceof Module.ExitStatus) {
          if (!Module.keepRuntimeAlive()) Module.__emscripten_thread_exit(e.status);
          return;
        }
        throw e;
      }
    } else if (d.cmd === 'cancel') {
      if (Module._pthread_self()) Module.__emscripten_thread_exit(-1);
    } else if (d.target === 'setimmediate') {
      // the main thread's setImmediate polyfill: nothing to do here
    } else if (d.cmd === 'processThreadQueue') {
      if (Module._pthread_self()) Module._emscripten_current_thread_process_queued_calls();
    } else if (d.cmd === 'processProxyingQueue') {
      if (Module._pthread_self()) Module._emscripten_proxy_execute_queue(d.queue);
    } else {
      console.error(`gradcam-wasm pthread worker: unknown command ${d.cmd}`);
    }
  } catch (e) {
    fail(`command ${d.cmd}`, e);
  }
};
