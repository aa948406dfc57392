// core.js: the explainer engine, running the WebAssembly build in the current thread.
// Used directly in Node (and wherever workers are turned off) and inside web/worker.js.
// Every argument is checked here, in JS, before any C call; every C status other than OK
// becomes a GcamError carrying the status name and gcam_last_error(). An allocation that
// fails leaves the engine as it was; a WebAssembly trap breaks it for good (BROKEN_MESSAGE).
import {
  BROKEN_MESSAGE, GcamArgumentError, GcamDisposedError, GcamError, GcamLoadError, GcamWeightsError, toGcamError,
} from './errors.js';
import { weightsStream, nodeBuiltin, CHUNK_BYTES, isNode } from './weights.js';

// The smallest module using a SIMD instruction: (func (result v128) i32.const 0 i32x4.splat)
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 8, 1, 6, 0, 65, 0, 253, 17, 11,
]);

/** true when this engine runs WebAssembly SIMD (feature detection, as onnxruntime-web does). */
export function simdSupported() {
  try {
    return WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

/**
 * true when this engine can run the threaded build: shared memory and workers, i.e. Node, or
 * a browser page (or worker) that is cross-origin isolated (served with COOP: same-origin and
 * COEP: require-corp, see web/serve.mjs), which is what makes SharedArrayBuffer available.
 */
export function threadsSupported() {
  return threadsUnavailable() === null;
}

/** null when the threaded build can run here, else why not, in a sentence for the warning. */
export function threadsUnavailable() {
  if (typeof SharedArrayBuffer === 'undefined' || typeof Atomics === 'undefined') {
    if (isNode) return 'this Node has no SharedArrayBuffer';
    return 'this page is not cross-origin isolated, so it has no SharedArrayBuffer (serve it with the headers ' +
           '"Cross-Origin-Opener-Policy: same-origin" and "Cross-Origin-Embedder-Policy: require-corp")';
  }
  if (isNode) return null;
  if (globalThis.crossOriginIsolated !== true)
    return 'this page is not cross-origin isolated (serve it with the headers ' +
           '"Cross-Origin-Opener-Policy: same-origin" and "Cross-Origin-Embedder-Policy: require-corp")';
  if (typeof Worker === 'undefined') return 'this context cannot start Web Workers';
  return null;
}

let warnedThreads = false;

/** The one console.warn (per page or process) when more threads are asked for than can run. */
export function warnOneThread(threads, why) {
  if (warnedThreads) return;
  warnedThreads = true;
  console.warn(`gradcam-wasm: threads: ${threads} was asked for, but ${why}: running on one thread.`);
}

const MAX_THREADS = 16;

/** Throws unless `threads` is undefined, 'auto' or an integer in 1..16. */
export function checkThreadsOption(threads) {
  if (threads !== undefined && threads !== 'auto' && !(isInt(threads) && threads >= 1 && threads <= MAX_THREADS))
    throw new GcamArgumentError(`threads must be 'auto' or an integer in [1, ${MAX_THREADS}], got ${threads}`);
}

/** How many threads to run: `threads` is undefined or 'auto' (the cores, at most 8), or 1..16.
 * `warn`: say so, once, when an explicit count above 1 cannot be had. */
export async function resolveThreads(threads, simd, warn = true) {
  checkThreadsOption(threads);
  const asked = isInt(threads) && threads > 1;
  // the threaded build is a SIMD build; without shared memory there is only one thread
  if (!simd) {
    if (asked && warn) warnOneThread(threads, 'the threaded build needs WebAssembly SIMD, which is off');
    return 1;
  }
  const why = threadsUnavailable();
  if (why) {
    if (asked && warn) warnOneThread(threads, why);
    return 1;
  }
  if (isInt(threads)) return threads;
  let cores = 1;
  if (isNode) {
    const os = nodeBuiltin('node:os');
    cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  } else if (globalThis.navigator && navigator.hardwareConcurrency) {
    cores = navigator.hardwareConcurrency;
  }
  return Math.max(1, Math.min(8, cores));
}

// Each file is named by its own literal new URL() of its path under ./dist/ (with
// import.meta.url) and each loader by a literal import(): the patterns Vite, webpack and
// Rollup follow, so a bundled app carries its own copies of these files with no configuration
// (see web/BUNDLERS.md). The demo's service worker follows the same patterns: keep paths out
// of comments.
const BUILDS = {
  simd: {
    file: 'dist/gcam-simd.mjs',
    name: 'gcam-simd.wasm',
    wasm: () => new URL('./dist/gcam-simd.wasm', import.meta.url),
    load: () => import('./dist/gcam-simd.mjs'),
  },
  scalar: {
    file: 'dist/gcam-scalar.mjs',
    name: 'gcam-scalar.wasm',
    wasm: () => new URL('./dist/gcam-scalar.wasm', import.meta.url),
    load: () => import('./dist/gcam-scalar.mjs'),
  },
  threads: {
    file: 'dist/gcam-simd-threads.mjs',
    name: 'gcam-simd-threads.wasm',
    wasm: () => new URL('./dist/gcam-simd-threads.wasm', import.meta.url),
    load: () => import('./dist/gcam-simd-threads.mjs'),
  },
};

function own(table, key) {
  return typeof key === 'string' && Object.prototype.hasOwnProperty.call(table, key);
}

/** The URL of a build's .wasm: `wasmUrl` is the folder holding the builds, a .wasm URL, or
 * one per build ({ simd, scalar, threads }). `build` is 'simd', 'scalar' or 'threads';
 * relative URLs are resolved against `base` (the page's URL). Without `wasmUrl`, the file the
 * package (or the bundler's copy of it) holds. */
export function wasmLocation(wasmUrl, build, base) {
  const packaged = BUILDS[build].wasm();
  if (wasmUrl == null) return packaged;
  const from = base || (globalThis.location && globalThis.location.href) || packaged;
  try {
    if (typeof wasmUrl === 'object' && !(wasmUrl instanceof URL)) {
      const one = own(wasmUrl, build) ? wasmUrl[build] : undefined;
      return one == null ? packaged : new URL(String(one), from);
    }
    let folder = String(wasmUrl);
    if (folder.endsWith('.wasm')) return new URL(folder, from);
    if (!folder.endsWith('/')) folder += '/';
    return new URL(BUILDS[build].name, new URL(folder, from)); // the file's own name, not a bundler's
  } catch (e) {
    throw new GcamArgumentError(`createExplainer: wasmUrl ${String(wasmUrl)} is not a URL`, { cause: e });
  }
}

/** `wasmUrl` as absolute URLs, one per build (what the page hands its worker), or undefined. */
export function wasmUrls(wasmUrl, base) {
  if (wasmUrl == null) return undefined;
  const out = {};
  for (const build of Object.keys(BUILDS)) out[build] = wasmLocation(wasmUrl, build, base).href;
  return out;
}

// Set by web/worker.js: there the pthread workers are started by the page (see there), since
// in Firefox a Worker constructed inside a worker may block that worker for good.
let pthreadStarter = null;
/** `start()` returns a worker-like object for each pthread worker (null: start them here). */
export function setPthreadStarter(start) {
  pthreadStarter = start;
}

/** Module.gcamStartWorker of the threaded loader (web/wasm/postprocess.mjs): one pthread
 * worker, an ES module, as a literal `new Worker(new URL(...), { type: 'module' })` so that
 * bundlers bundle it. */
function startPthreadWorker() {
  if (pthreadStarter) return pthreadStarter();
  if (isNode) {
    // worker_threads; the URL is built from a string so that bundlers do not take the Node
    // branch's file for an asset. A worker inherits the parent's flags, and --input-type
    // (node -e) would stop it from loading a file.
    const { Worker: NodeWorker } = nodeBuiltin('node:worker_threads');
    const url = new URL(String(import.meta.url).replace(/[^/]*$/, 'dist/gcam-simd-threads.worker.js'));
    return new NodeWorker(url, { execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')) });
  }
  return new Worker(new URL('./dist/gcam-simd-threads.worker.js', import.meta.url), { type: 'module' });
}

/** How long a file of the package may take to answer (each chunk of it, for a download). */
export const LOAD_TIMEOUT_MS = 20e3;

/** The loadTimeoutMs option, checked: undefined gives LOAD_TIMEOUT_MS. */
export function checkTimeoutOption(ms) {
  if (ms === undefined) return LOAD_TIMEOUT_MS;
  if (!(typeof ms === 'number' && ms > 0 && ms <= 2 ** 31 - 1))
    throw new GcamArgumentError(`createExplainer: loadTimeoutMs must be a positive number of milliseconds, got ${ms}`);
  return ms;
}

function timeoutError(what, ms) {
  const e = new GcamLoadError(`${what}: no answer within ${ms / 1000} s`);
  e.timedOut = true;
  return e;
}

/** `promise`, or a GcamLoadError after `ms`. */
function withTimeout(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(timeoutError(what, ms)), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** A short description of what came instead of WebAssembly, for the error message. */
function describeBytes(bytes, type) {
  const head = Array.from(bytes.subarray(0, 24), (b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
  return `${bytes.length} bytes${type ? ` of ${type}` : ''} starting "${head}"`;
}

/** The bytes at `url`, with a time limit on the answer and on each chunk after it. */
async function fetchBytes(url, ms) {
  const ctl = new AbortController();
  let timer;
  let timedOut = false;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => { timedOut = true; ctl.abort(); }, ms);
  };
  const failed = (e) => (timedOut ? timeoutError(url.href, ms) : new GcamLoadError(`${url.href}: ${e.message}`));
  try {
    arm();
    let response;
    try {
      response = await fetch(url, { signal: ctl.signal });
    } catch (e) {
      throw failed(e);
    }
    if (!response.ok) throw new GcamLoadError(`${url.href}: HTTP ${response.status}`);
    const type = response.headers.get('content-type');
    const parts = [];
    let n = 0;
    const reader = response.body.getReader();
    for (;;) {
      arm();
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        throw failed(e);
      }
      if (r.done) break;
      parts.push(r.value);
      n += r.value.byteLength;
    }
    const bytes = new Uint8Array(n);
    for (let i = 0, off = 0; i < parts.length; off += parts[i].byteLength, i++) bytes.set(parts[i], off);
    return { bytes, type };
  } finally {
    clearTimeout(timer);
  }
}

/** A build's .wasm bytes, checked to be WebAssembly (a server's HTML fallback page is not). */
async function wasmBytes(url, ms) {
  let bytes, type;
  if (url.protocol === 'file:' && isNode) {
    try {
      bytes = new Uint8Array(await nodeBuiltin('node:fs').promises.readFile(url));
    } catch (e) {
      throw new GcamLoadError(`${url.href}: ${e.code === 'ENOENT' ? 'not found' : e.message}`);
    }
  } else {
    ({ bytes, type } = await fetchBytes(url, ms));
  }
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d)
    throw new GcamLoadError(`${url.href} is not WebAssembly (${describeBytes(bytes, type)}): ` +
                            'a server that answers unknown paths with a page? see wasmUrl');
  return bytes;
}

/** Load one build's loader and .wasm and instantiate it with `nThreads` threads. Every way
 * this can fail (a loader or .wasm missing or wrong, a pthread worker that cannot start, no
 * answer in time) is a GcamLoadError naming the file; nothing waits forever. */
async function instantiate(build, wasmUrl, base, nThreads, ms, maxPages) {
  const { file } = BUILDS[build];
  let factory;
  try {
    factory = (await withTimeout(BUILDS[build].load(), ms, `gradcam-wasm's ${file}`)).default;
  } catch (e) {
    throw e instanceof GcamError ? e : new GcamLoadError(`cannot load gradcam-wasm's ${file}: ${e.message}`);
  }
  const url = wasmLocation(wasmUrl, build, base);
  // Hand the bytes in ourselves: the generated loader's own fetch breaks on Node 20.
  const wasmBinary = await wasmBytes(url, ms);
  const workers = [];
  let workerFailed;
  const failed = new Promise((_, reject) => { workerFailed = reject; });
  const gcamStartWorker = () => {
    const w = startPthreadWorker();
    workers.push(w);
    const onError = (e) => workerFailed(new GcamLoadError(
      `a pthread worker (gradcam-wasm's dist/gcam-simd-threads.worker.js) failed: ${(e && e.message) || 'it did not load'}`));
    if (typeof w.on === 'function') {
      w.on('error', onError);
    } else {
      w.addEventListener('error', (e) => { e.preventDefault(); onError(e); });
    }
    // The loader's own handler logs and rethrows, which would be an uncaught exception (in
    // Node, a crash; in a worker, an error of the explainer's worker): keep it from throwing.
    let loaderOnError = null;
    Object.defineProperty(w, 'onerror', {
      configurable: true,
      get: () => (e) => { try { if (loaderOnError) loaderOnError(e); } catch { /* reported by onError */ } },
      set: (f) => { loaderOnError = f; },
    });
    return w;
  };
  try {
    // The heap starts at 16 MB and grows up to maxMemoryMB (a phone's budget); past it malloc
    // fails and the C call returns GCAM_STATUS_OUT_OF_MEMORY (no abort).
    const wasmMemory = new WebAssembly.Memory({ initial: 256, maximum: maxPages, shared: nThreads > 1 });
    const ready = factory({ wasmBinary, wasmMemory, gcamWorkers: nThreads - 1, gcamStartWorker,
                            print: () => {}, printErr: () => {} });
    return await withTimeout(Promise.race([ready, failed]), ms, `instantiating ${url.href}`);
  } catch (e) {
    for (const w of workers) w.terminate();
    throw e instanceof GcamError ? e : new GcamLoadError(`${url.href}: cannot instantiate: ${e.message}`);
  }
}

/** The workers of a threaded module (none for the others). */
function moduleWorkers(M) {
  return M.PThread ? [...M.PThread.unusedWorkers, ...M.PThread.runningWorkers] : [];
}

/**
 * Instantiate one build. `simd`: true, false, or undefined to detect. `threads`: see
 * resolveThreads(); more than one picks the threaded SIMD build, whose module resolves once
 * its threads - 1 workers are loaded (M.gcamThreads says how many threads it runs). When the
 * threaded build cannot start (but answered), one thread is used and console.warn says why.
 * `timeoutMs` bounds each file's answer (LOAD_TIMEOUT_MS by default).
 */
export async function loadWasm({ wasmUrl, simd, threads, base, warnThreads = true, timeoutMs, maxMemoryMB } = {}) {
  timeoutMs = checkTimeoutOption(timeoutMs);
  const maxPages = memoryPages(maxMemoryMB);
  const useSimd = simd === undefined ? simdSupported() : !!simd;
  let nThreads = await resolveThreads(threads, useSimd, warnThreads);
  let M;
  if (nThreads > 1) {
    try {
      M = await instantiate('threads', wasmUrl, base, nThreads, timeoutMs, maxPages);
    } catch (e) {
      if (e.timedOut) throw e; // the time is spent: no second try
      console.warn(`gradcam-wasm: the threaded build could not start (${e.message}): running on one thread.`);
      nThreads = 1;
    }
  }
  if (!M) M = await instantiate(useSimd ? 'simd' : 'scalar', wasmUrl, base, 1, timeoutMs, maxPages);
  // Emscripten 3.1.6 keeps its worker_threads referenced: they would keep Node alive
  if (isNode) for (const w of moduleWorkers(M)) if (w.unref) w.unref();
  M.gcamSimd = useSimd;
  M.gcamThreads = nThreads;
  return M;
}

/** wasm pages (64 KiB) of the heap's maximum: maxMemoryMB in [32, 4096], default 4096 */
function memoryPages(maxMemoryMB) {
  if (maxMemoryMB === undefined) return 65536;
  if (typeof maxMemoryMB !== 'number' || !(maxMemoryMB >= 32 && maxMemoryMB <= 4096))
    throw new GcamArgumentError(`maxMemoryMB must be a number from 32 to 4096, got ${maxMemoryMB}`);
  return Math.floor(maxMemoryMB * 16);
}

/** createExplainer's `memory`: how the conv weights sit in the heap (gcam_memory). The default
 * is 'compact' in browsers (VGG16 in 308 MB of heap from an f16 file, not 550: what a phone's
 * tab can hold; its forward + Grad-CAM measured 0.95-1.06x 'fast''s time on 1 and 2 threads,
 * README "Memory") and 'fast' in Node, like the C library and the CLI. */
export const MEMORY_MODES = { fast: 0, compact: 1 };
export function memoryMode(memory) {
  if (memory === undefined) return isNode ? MEMORY_MODES.fast : MEMORY_MODES.compact;
  if (!Object.hasOwn(MEMORY_MODES, memory))
    throw new GcamArgumentError(`memory must be 'compact' or 'fast', got ${memory}`);
  return MEMORY_MODES[memory];
}

const SCORES = { logit: 0, softmax: 1 };
const COLORMAPS = { jet: 0, gray: 1 };

/** The explanation methods, in gcam_method's order (include/gcam.h), named as
 * pytorch-grad-cam spells them. From 'saliency' on, the map has the input's size. */
export const METHODS = [
  'gradcam', 'hirescam', 'gradcam-elementwise', 'gradcam++', 'xgradcam', 'layercam', 'eigencam', 'eigengradcam',
  'saliency', 'guided-backprop', 'guided-gradcam', 'smoothgrad', 'integrated-gradients',
];
const METHOD_INDEX = Object.fromEntries(METHODS.map((m, i) => [m, i]));
const FIRST_PIXEL_METHOD = METHOD_INDEX.saliency;
const METRICS = { deletion: 0, insertion: 1, randomization: 2 };
const BASELINES = { blur: 0, mean: 1 };
// gcam_state_params.depth's special values
const DEPTH_LAST_CONV = -1;
const DEPTH_INPUT = -2;
const MAX_SAMPLES = 1024; // samples, steps and metric steps: 1..1024, as the C library checks
// explain()'s defaults for the pixel methods (gcam_explain_default_params)
const DEFAULTS = { samples: 25, noise: 0.15, steps: 32, seed: 0 };

export function isPixelMethod(method) {
  return METHOD_INDEX[method] >= FIRST_PIXEL_METHOD;
}

/** createExplainer's `depth`, checked for its form before any download: 'last' (default),
 * 'input', a layer name (resolved once the model is known) or a layer index. */
export function checkDepthOption(depth) {
  if (depth === undefined || depth === 'last' || depth === 'input') return;
  if ((typeof depth === 'string' && depth !== '') || (isInt(depth) && depth >= 0)) return;
  throw new GcamArgumentError(`createExplainer: depth must be 'last', 'input', a conv layer's name or index, got ${String(depth)}`);
}

/** A conv layer given by name or index, as its index; `what` names the option. */
function layerIndex(layer, layers, what) {
  if (isInt(layer) && layer >= 0 && layer < layers.length) return layer;
  if (typeof layer === 'string') {
    const i = layers.findIndex((l) => l.name === layer);
    if (i >= 0) return i;
  }
  const names = layers.length ? ` (this model has ${layers[0].name}..${layers[layers.length - 1].name}, ` +
    `indices 0..${layers.length - 1})` : '';
  throw new GcamArgumentError(`${what} must be a conv layer's name or index${names}, got ${String(layer)}`);
}

/** The state's depth as gcam_state_params.depth, resolved against the model's layers. */
export function depthValue(depth, layers) {
  if (depth === undefined || depth === 'last') return DEPTH_LAST_CONV;
  if (depth === 'input') return DEPTH_INPUT;
  return layerIndex(depth, layers, 'createExplainer: depth');
}

/** What a state of depth `depth` ('last' | 'input' | a layer name) serves; throws a
 * GcamArgumentError naming createExplainer's `depth` when it does not serve the request. */
function checkDepthServes(depth, layers, method, layer, what) {
  if (depth === 'input') return;
  const deepest = depth === 'last' || depth === undefined ? layers.length - 1 : layers.findIndex((l) => l.name === depth);
  if (isPixelMethod(method))
    throw new GcamArgumentError(`${what}: method '${method}' needs a backward to the input: create the explainer ` +
                                `with createExplainer({ depth: 'input' }) (this one has depth '${depth}')`);
  if (layer < deepest)
    throw new GcamArgumentError(`${what}: layer ${layers[layer].name} is below the deepest layer this explainer keeps ` +
                                `(${layers[deepest].name}): create it with createExplainer({ depth: '${layers[layer].name}' }) ` +
                                `or { depth: 'input' }`);
}

function isInt(v) {
  return typeof v === 'number' && Number.isInteger(v);
}

/** Check an ImageData-like object: { data: Uint8ClampedArray|Uint8Array, width, height }. */
export function checkImage(image, what) {
  if (image == null || typeof image !== 'object')
    throw new GcamArgumentError(`${what}: expected an ImageData (or { data, width, height })`);
  const { data, width, height } = image;
  if (!isInt(width) || !isInt(height) || width < 1 || height < 1)
    throw new GcamArgumentError(`${what}: width and height must be positive integers, got ${width}x${height}`);
  if (!(data instanceof Uint8ClampedArray || data instanceof Uint8Array))
    throw new GcamArgumentError(`${what}: image.data must be a Uint8ClampedArray or Uint8Array`);
  if (data.length !== width * height * 4)
    throw new GcamArgumentError(
      `${what}: image.data has ${data.length} bytes, an RGBA ${width}x${height} image has ${width * height * 4}`);
}

function optionsObject(options, what) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw new GcamArgumentError(`${what}: options must be an object, got ${typeof options}`);
  return options;
}

/** explain()'s options checked against the model (`info`: nClasses, layers, depth):
 * { topK, score, classIndex: int[] | null, method, layer (index), samples, noise, steps, seed }. */
export function explainOptions(given, info) {
  const nClasses = info.nClasses;
  const options = optionsObject(given, 'explain');
  const topK = options.topK === undefined ? Math.min(5, nClasses) : options.topK;
  if (!isInt(topK) || topK < 1 || topK > nClasses)
    throw new GcamArgumentError(`explain: topK must be an integer in [1, ${nClasses}], got ${topK}`);
  const score = options.score === undefined ? 'logit' : options.score;
  if (!own(SCORES, score)) throw new GcamArgumentError(`explain: score must be 'logit' or 'softmax', got ${String(score)}`);
  let classIndex = null;
  if (options.classIndex !== undefined && options.classIndex !== null) {
    classIndex = Array.isArray(options.classIndex) ? [...options.classIndex] : [options.classIndex];
    for (const c of classIndex)
      if (!isInt(c) || c < 0 || c >= nClasses)
        throw new GcamArgumentError(`explain: class index ${c} is out of range [0, ${nClasses})`);
  }
  return { topK, score, classIndex, ...methodOptions(options, info, 'explain') };
}

/** The method's options of explain() (and of an explanation handed to evaluate()), checked:
 * { method, layer (index), samples, noise, steps, seed }. */
function methodOptions(options, info, what, needsDepth = true) {
  const method = options.method === undefined ? 'gradcam' : options.method;
  if (!own(METHOD_INDEX, method))
    throw new GcamArgumentError(`${what}: method must be one of ${METHODS.join(', ')}; got ${String(method)}`);
  const layers = info.layers;
  const layer = options.layer === undefined || options.layer === null ? layers.length - 1
    : layerIndex(options.layer, layers, `${what}: layer`);
  const count = (name, v) => {
    if (v === undefined) return DEFAULTS[name];
    if (!isInt(v) || v < 1 || v > MAX_SAMPLES)
      throw new GcamArgumentError(`${what}: ${name} must be an integer in [1, ${MAX_SAMPLES}], got ${v}`);
    return v;
  };
  const samples = count('samples', options.samples);
  const steps = count('steps', options.steps);
  const noise = options.noise === undefined ? DEFAULTS.noise : options.noise;
  if (typeof noise !== 'number' || !(noise > 0 && noise <= 1))
    throw new GcamArgumentError(`${what}: noise must be a number in (0, 1] (a fraction of the input's range), got ${noise}`);
  const seed = options.seed === undefined ? DEFAULTS.seed : options.seed;
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new GcamArgumentError(`${what}: seed must be an integer in [0, 2^53), got ${seed}`);
  if (needsDepth) checkDepthServes(info.depth, layers, method, layer, what);
  return { method, layer, samples, noise, steps, seed };
}

/** evaluate()'s arguments checked: the explanation (a map of explain() or the same shape)
 * and { metric, steps, baseline, seed }. */
export function evaluateArguments(explanation, given, info) {
  const e = explanation && typeof explanation === 'object' ? explanation : {};
  const { heatmap, width, height, classIndex } = e;
  if (!(heatmap instanceof Float32Array) || !isInt(width) || !isInt(height) || width < 1 || height < 1 ||
      heatmap.length !== width * height)
    throw new GcamArgumentError('evaluate: explanation must have heatmap (Float32Array of width*height), width, height');
  if (!isInt(classIndex) || classIndex < 0 || classIndex >= info.nClasses)
    throw new GcamArgumentError(`evaluate: explanation.classIndex must be a class index in [0, ${info.nClasses}), got ${classIndex}`);
  const score = e.score === undefined ? 'logit' : e.score;
  if (!own(SCORES, score)) throw new GcamArgumentError(`evaluate: explanation.score must be 'logit' or 'softmax', got ${String(score)}`);
  // the layer of a pixel map ('input') says nothing: the default layer is as good
  const recipe = { ...e, layer: e.layer === 'input' ? undefined : e.layer };
  const options = optionsObject(given, 'evaluate');
  const metric = options.metric === undefined ? 'deletion' : options.metric;
  if (!own(METRICS, metric))
    throw new GcamArgumentError(`evaluate: metric must be 'deletion', 'insertion' or 'randomization', got ${String(metric)}`);
  // only the randomization check recomputes the map, and so needs the state's depth
  const how = methodOptions(recipe, info, 'evaluate: explanation', metric === 'randomization');
  const steps = options.steps === undefined ? 32 : options.steps;
  if (!isInt(steps) || steps < 1 || steps > MAX_SAMPLES)
    throw new GcamArgumentError(`evaluate: steps must be an integer in [1, ${MAX_SAMPLES}], got ${steps}`);
  const baseline = options.baseline === undefined ? 'blur' : options.baseline;
  if (!own(BASELINES, baseline))
    throw new GcamArgumentError(`evaluate: baseline must be 'blur' or 'mean', got ${String(baseline)}`);
  const seed = options.seed === undefined ? 0 : options.seed;
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new GcamArgumentError(`evaluate: seed must be an integer in [0, 2^53), got ${seed}`);
  return { map: { heatmap, width, height, classIndex, score, ...how }, options: { metric, steps, baseline, seed } };
}

/** overlay()'s arguments checked: { heatmap, width, height } and { alpha, imageWeight, colormap }. */
export function overlayArguments(explanation, given) {
  const { heatmap, width, height } = explanation && typeof explanation === 'object' ? explanation : {};
  if (!(heatmap instanceof Float32Array) || !isInt(width) || !isInt(height) || width < 1 || height < 1 ||
      heatmap.length !== width * height)
    throw new GcamArgumentError('overlay: explanation must have heatmap (Float32Array of width*height), width, height');
  const options = optionsObject(given, 'overlay');
  const alpha = options.alpha === undefined ? 0.4 : options.alpha;
  const imageWeight = options.imageWeight === undefined ? 0.9 : options.imageWeight;
  for (const [k, v] of [['alpha', alpha], ['imageWeight', imageWeight]])
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new GcamArgumentError(`overlay: ${k} must be a finite number >= 0, got ${v}`);
  const colormap = options.colormap === undefined ? 'jet' : options.colormap;
  if (!own(COLORMAPS, colormap))
    throw new GcamArgumentError(`overlay: colormap must be 'jet' or 'gray', got ${String(colormap)}`);
  return { map: { heatmap, width, height }, options: { alpha, imageWeight, colormap } };
}

/** Make an ImageData where the platform has one, else an object of the same shape (Node). */
export function makeImageData(data, width, height) {
  if (typeof ImageData !== 'undefined') return new ImageData(data, width, height);
  return { data, width, height, colorSpace: 'srgb' };
}

// Heap blocks the engine keeps between calls up to this size; a larger one (an 8192x8192
// image is 268 MB) is given back to the wasm heap as soon as a smaller request comes.
const KEEP_BYTES = 16 << 20;

export class Engine {
  /** Load the wasm and stream the weights into it. */
  static async create({ weights, wasmUrl, simd, threads, onProgress, base, warnThreads, loadTimeoutMs, memory,
                        maxMemoryMB, depth } = {}) {
    checkThreadsOption(threads); // argument checks before any download
    checkTimeoutOption(loadTimeoutMs);
    checkDepthOption(depth);
    const mode = memoryMode(memory);
    memoryPages(maxMemoryMB);
    // the worker passes an already open { total, chunks } stream of Uint8Arrays
    const internal = weights && typeof weights === 'object' && typeof weights.chunks === 'object' &&
      weights.chunks !== null && Symbol.asyncIterator in weights.chunks &&
      Number.isSafeInteger(weights.total) && weights.total >= 0;
    const stream = internal ? weights : await weightsStream(weights, base);
    const M = await loadWasm({ wasmUrl, simd, threads, base, warnThreads, timeoutMs: loadTimeoutMs, maxMemoryMB });
    let engine;
    try {
      engine = new Engine(M);
      await engine._load(stream, onProgress, mode, depth);
    } catch (e) {
      if (engine) {
        // after a trap (or a bug of ours) the heap cannot be trusted to free anything
        if (!(e instanceof GcamError) && !(e instanceof RangeError)) engine.broken = true;
        engine.dispose();
      }
      throw toGcamError(e, 'loading weights');
    }
    return engine;
  }

  constructor(M) {
    this.M = M;
    this.disposed = false;
    this.broken = false; // a trap happened: nothing this instance computes is trusted again
    this.model = 0;
    this.state = 0;
    this.pool = 0; // the threaded build's pthread pool
    this.buffers = {}; // name -> { ptr, bytes }: grown on demand, shrunk after a huge request
    this.last = null; // { width, height } of the image the state holds the forward of
    // A pool worker that fails would throw from Emscripten's handler, uncaught, and take
    // Node down: mark this engine broken instead.
    for (const w of moduleWorkers(M)) w.onerror = () => { this.broken = true; };
    this.slots = M._malloc(64); // out-parameters of C calls; checked by _load
  }

  _check(status, what) {
    if (status === 0) return;
    const M = this.M;
    const code = M.UTF8ToString(M._gcam_status_string(status));
    const reason = M.UTF8ToString(M._gcam_last_error());
    throw new GcamError(code, reason ? `${what}: ${reason}` : `${what}: ${code}`);
  }

  /** A heap block of at least `bytes` under `name`. The old block is freed only once the new
   * one is had, so a failed malloc leaves the record (and what it holds) as it was. */
  _buffer(name, bytes) {
    const b = this.buffers[name];
    if (b && b.bytes >= bytes && (b.bytes <= KEEP_BYTES || b.bytes <= 2 * bytes)) return b.ptr;
    const ptr = this.M._malloc(bytes);
    if (!ptr) {
      if (b && b.bytes >= bytes) return b.ptr; // it was only to give memory back
      throw new GcamError('GCAM_STATUS_OUT_OF_MEMORY', `cannot allocate ${bytes} bytes in the wasm heap`);
    }
    if (b) this.M._free(b.ptr);
    this.buffers[name] = { ptr, bytes };
    return ptr;
  }

  _release(name) {
    const b = this.buffers[name];
    delete this.buffers[name];
    if (b) this.M._free(b.ptr);
  }

  /** Run one public call: refused once disposed or broken; any failure as a GcamError; a
   * trap (or any error that is not ours) breaks the engine. */
  _run(what, fn) {
    if (this.disposed) throw new GcamDisposedError(what);
    if (this.broken) throw new GcamError('GCAM_STATUS_BAD_STATE', BROKEN_MESSAGE);
    try {
      return fn();
    } catch (e) {
      const err = toGcamError(e, what);
      // our own errors and failed JS allocations leave the engine consistent; the rest may not
      if (err !== e && err.code !== 'GCAM_STATUS_OUT_OF_MEMORY') this.broken = true;
      throw err;
    }
  }

  async _load({ total, chunks }, onProgress, mode = MEMORY_MODES.fast, depth = 'last') {
    const M = this.M;
    if (!this.slots) throw new GcamError('GCAM_STATUS_OUT_OF_MEMORY', 'cannot allocate 64 bytes in the wasm heap');
    this._check(M._gcam_wasm_loader_create(total, mode, this.slots), 'loading weights');
    let loader = M.HEAPU32[this.slots >> 2];
    let loaded = 0;
    let reported = -1;
    let peak = 0; // heap in use, sampled after each chunk
    const report = (force) => {
      if (!onProgress || (!force && loaded - reported < (1 << 20))) return;
      reported = loaded;
      onProgress({ loaded, total });
    };
    try {
      // the staging block is the only heap memory JS adds to a load: one chunk, whatever the
      // file's (claimed or unknown) size
      const staging = this._buffer('staging', CHUNK_BYTES);
      report(true);
      for await (const u8 of chunks) {
        if (!(u8 instanceof Uint8Array)) throw new GcamWeightsError('weights: the stream gave something other than bytes');
        for (let off = 0; off < u8.byteLength; off += CHUNK_BYTES) {
          const piece = u8.subarray(off, Math.min(off + CHUNK_BYTES, u8.byteLength));
          M.HEAPU8.set(piece, staging); // HEAPU8 is re-read: memory may have grown
          this._check(M._gcam_model_loader_write(loader, staging, piece.byteLength), 'loading weights');
          loaded += piece.byteLength;
          peak = Math.max(peak, M._gcam_wasm_heap_bytes());
        }
        report(false);
      }
      if (total === 0) total = loaded;
      report(true);
      const st = M._gcam_model_loader_finish(loader, this.slots);
      loader = 0; // finish frees it, whatever the outcome
      this._check(st, 'loading weights');
    } catch (e) {
      if (e instanceof WebAssembly.RuntimeError) loader = 0; // the heap cannot be trusted to free it
      throw e;
    } finally {
      if (loader) M._gcam_model_loader_free(loader);
      if (this.buffers.staging) this._release('staging');
    }
    this.model = M.HEAPU32[this.slots >> 2];
    this._readInfo();
    const depthIndex = depthValue(depth, this.info.layers);
    this._check(M._gcam_wasm_state_create_ex(this.model, depthIndex, this.slots), 'creating the state');
    this.state = M.HEAPU32[this.slots >> 2];
    // the depth by name, as explain() checks a request against it
    this.info.depth = depthIndex === DEPTH_INPUT ? 'input' : depthIndex === DEPTH_LAST_CONV ? 'last'
      : this.info.layers[depthIndex].name;
    this.info.stateBytes = M._gcam_wasm_state_memory_bytes(this.state);
    if (M.gcamThreads > 1) {
      this.pool = M._gcam_wasm_pool_create(M.gcamThreads);
      if (!this.pool) throw new GcamError('GCAM_STATUS_BACKEND', `starting threads: cannot start ${M.gcamThreads} threads`);
      this._check(M._gcam_wasm_state_set_pool(this.state, this.pool), 'starting threads');
    }
    this.info.memory = mode === MEMORY_MODES.compact ? 'compact' : 'fast';
    this.info.memoryBytes = M._gcam_wasm_heap_bytes(); // model + state + what JS allocated
    this.info.loadPeakBytes = peak;                    // the most in use while loading
    this.info.wasmMemoryBytes = M.HEAPU8.length;       // the wasm memory (it never shrinks)
  }

  _readInfo() {
    const M = this.M;
    const ints = this._buffer('info', 12 * 4 + 68);
    this._check(M._gcam_wasm_model_info(this.model, ints, ints + 48), 'reading the model info');
    const v = Array.from(M.HEAP32.subarray(ints >> 2, (ints >> 2) + 12));
    const labels = [];
    for (let c = 0; v[8] && c < v[4]; c++) {
      const p = M._gcam_model_label(this.model, c);
      labels.push(p ? M.UTF8ToString(p) : null);
    }
    this.info = {
      inputWidth: v[0], inputHeight: v[1], nConv: v[2], nDense: v[3], nClasses: v[4],
      camWidth: v[5], camHeight: v[6], camChannels: v[7], hasLabels: !!v[8],
      preprocess: v[9] === 1 ? 'torch' : 'caffe', backend: v[10], weightBytes: v[11],
      sha256: M.UTF8ToString(ints + 48), simd: !!M.gcamSimd, threads: M.gcamThreads || 1,
    };
    this.labels = labels;
    this._release('info');
    // the conv layers (names, map sizes), for `layer` and `depth` by name
    const layer = this._buffer('layer', 3 * 4 + 32);
    const layers = [];
    for (let i = 0; i < this.info.nConv; i++) {
      this._check(M._gcam_wasm_layer_info(this.model, i, layer, layer + 12), 'reading the layers');
      const [width, height, channels] = M.HEAP32.subarray(layer >> 2, (layer >> 2) + 3);
      layers.push({ name: M.UTF8ToString(layer + 12), width, height, channels });
    }
    this._release('layer');
    this.info.layers = layers;
  }

  /** true when `image` has the size and pixels of the image the state holds the forward of. */
  _sameAsLast(image) {
    if (!this.last || this.last.width !== image.width || this.last.height !== image.height) return false;
    const n = image.data.length;
    const heap = this.M.HEAPU8;
    const ptr = this.buffers.image.ptr;
    const d = image.data;
    if ((d.byteOffset & 3) === 0 && (ptr & 3) === 0 && (n & 3) === 0) {
      const a = new Uint32Array(d.buffer, d.byteOffset, n >> 2);
      const b = new Uint32Array(heap.buffer, ptr, n >> 2);
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
      return true;
    }
    for (let i = 0; i < n; i++) if (d[i] !== heap[ptr + i]) return false;
    return true;
  }

  /** The forward of `image`, unless the state holds it already; true when it did. */
  _forward(image) {
    const M = this.M;
    if (this._sameAsLast(image)) return true;
    this.last = null; // from here until the forward succeeds the state holds no known image
    const ptr = this._buffer('image', image.data.length);
    M.HEAPU8.set(image.data, ptr);
    this._check(M._gcam_state_forward_rgba(this.state, ptr, image.width, image.height, image.width * 4), 'forward');
    this.last = { width: image.width, height: image.height };
    return false;
  }

  /** The explain params of a checked request, in gcam_wasm_explain_ex's argument order
   * after the class: method, layer, score, samples, noise, steps, seed. */
  _params(o, score) {
    return [METHOD_INDEX[o.method], o.layer, SCORES[score], o.samples, o.noise, o.steps, o.seed];
  }

  /** Forward (unless cached) + top-k + one map per class. See index.d.ts. */
  explain(image, options) {
    return this._run('explain', () => {
      checkImage(image, 'explain');
      const { nClasses, layers } = this.info;
      const checked = explainOptions(options, this.info);
      const { topK, score, classIndex } = checked;
      const M = this.M;
      const t0 = now();
      const reused = this._forward(image);
      const t1 = now();

      const top = this._buffer('top', 4 * nClasses);
      this._check(M._gcam_state_top_k(this.state, topK, top), 'top_k');
      const indices = Array.from(M.HEAP32.subarray(top >> 2, (top >> 2) + topK));
      this._check(M._gcam_state_logits(this.state, this.slots), 'logits');
      this._check(M._gcam_state_probabilities(this.state, this.slots + 4), 'probabilities');
      const logitsPtr = M.HEAPU32[this.slots >> 2];
      const probsPtr = M.HEAPU32[(this.slots >> 2) + 1];
      const logits = M.HEAPF32.slice(logitsPtr >> 2, (logitsPtr >> 2) + nClasses);
      const probs = M.HEAPF32.slice(probsPtr >> 2, (probsPtr >> 2) + nClasses);
      const predictions = indices.map((index) => ({
        index,
        label: this.labels[index] ?? null,
        probability: probs[index],
        logit: logits[index],
      }));

      const classes = classIndex || [indices[0]];
      const params = this._params(checked, score);
      this._check(M._gcam_wasm_map_size(this.state, ...params, this.slots + 8), 'explain');
      const [width, height] = [M.HEAP32[(this.slots >> 2) + 2], M.HEAP32[(this.slots >> 2) + 3]];
      const n = width * height;
      const map = this._buffer('map', 4 * n);
      const rawMaxPtr = this.slots + 16;
      const { method, samples, noise, steps, seed } = checked;
      // a pixel map's layer is the input's, except guided Grad-CAM's, whose CAM factor is a layer's
      const layer = isPixelMethod(method) && method !== 'guided-gradcam' ? 'input' : layers[checked.layer].name;
      const explanations = classes.map((c) => {
        this._check(M._gcam_wasm_explain_ex(this.state, c, ...params, 0, map, rawMaxPtr), 'explain');
        return {
          classIndex: c,
          heatmap: M.HEAPF32.slice(map >> 2, (map >> 2) + n),
          width,
          height,
          rawMax: M.HEAPF32[rawMaxPtr >> 2],
          method, layer, score, samples, noise, steps, seed,
        };
      });
      const t2 = now();
      return { predictions, explanations, logits, forwardReused: reused,
               timings: { forwardMs: reused ? 0 : t1 - t0, explainMs: t2 - t1 },
               memoryBytes: M._gcam_wasm_heap_bytes() };
    });
  }

  /** A faithfulness or sanity measure of `explanation` for `image`. See index.d.ts. */
  evaluate(image, explanation, options) {
    return this._run('evaluate', () => {
      checkImage(image, 'evaluate');
      const { map: e, options: o } = evaluateArguments(explanation, options, this.info);
      const M = this.M;
      this._forward(image);
      const s = this.slots;
      try {
        const mapPtr = this._buffer('evalMap', 4 * e.heatmap.length);
        const curve = this._buffer('evalCurve', 8 * (MAX_SAMPLES + 1));
        M.HEAPF32.set(e.heatmap, mapPtr >> 2);
        // slots: explain ints (5) at 0, eval ints (3) at 20, n_points at 32, auc (a double) at 40
        const p = this._params(e, e.score);
        M.HEAP32.set([p[0], p[1], p[2], p[3], p[5]], s >> 2);
        M.HEAP32.set([METRICS[o.metric], o.steps, BASELINES[o.baseline]], (s + 20) >> 2);
        this._check(M._gcam_wasm_evaluate(this.state, e.classIndex, mapPtr, e.width, e.height, s, e.noise, e.seed,
                                          s + 20, o.seed, s + 40, s + 32, curve), 'evaluate');
        const n = M.HEAP32[(s + 32) >> 2];
        return { metric: o.metric, auc: M.HEAPF64[(s + 40) >> 3], curve: M.HEAPF64.slice(curve >> 3, (curve >> 3) + n) };
      } finally {
        for (const name of ['evalMap', 'evalCurve'])
          if (this.buffers[name] && this.buffers[name].bytes > KEEP_BYTES) this._release(name);
      }
    });
  }

  /** The heatmap blended over the image by the C core, at the image's size. */
  overlay(image, explanation, options) {
    return this._run('overlay', () => {
      checkImage(image, 'overlay');
      const { map: { heatmap, width: mw, height: mh }, options: o } = overlayArguments(explanation, options);
      const M = this.M;
      const bytes = image.data.length;
      try {
        const src = this._buffer('overlayIn', bytes);
        const dst = this._buffer('overlayOut', bytes);
        const map = this._buffer('overlayMap', 4 * heatmap.length);
        M.HEAPU8.set(image.data, src);
        M.HEAPF32.set(heatmap, map >> 2);
        this._check(M._gcam_wasm_overlay(dst, src, image.width, image.height, map, mw, mh, o.alpha, o.imageWeight,
                                         COLORMAPS[o.colormap]), 'overlay');
        const out = new Uint8ClampedArray(bytes);
        out.set(M.HEAPU8.subarray(dst, dst + bytes));
        return makeImageData(out, image.width, image.height);
      } finally {
        // the overlay's blocks are not needed between calls: keep only small ones
        for (const name of ['overlayIn', 'overlayOut', 'overlayMap'])
          if (this.buffers[name] && this.buffers[name].bytes > KEEP_BYTES) this._release(name);
      }
    });
  }

  /** Decode a PNG or JPEG with the library's decoder (the CLI's): { data, width, height }. */
  decodeImage(bytes) {
    return this._run('decodeImage', () => {
      if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
      if (!(bytes instanceof Uint8Array)) throw new GcamArgumentError('decodeImage: expected an ArrayBuffer or Uint8Array');
      const M = this.M;
      const s = this.slots >> 2;
      let ptr = 0;
      try {
        const src = this._buffer('encoded', Math.max(1, bytes.byteLength));
        M.HEAPU8.set(bytes, src);
        this._check(M._gcam_wasm_image_decode(src, bytes.byteLength, this.slots, this.slots + 4, this.slots + 8),
                    'decodeImage');
        ptr = M.HEAPU32[s];
        const [width, height] = [M.HEAP32[s + 1], M.HEAP32[s + 2]];
        const data = new Uint8ClampedArray(M.HEAPU8.subarray(ptr, ptr + width * height * 4));
        return makeImageData(data, width, height);
      } finally {
        if (ptr) M._gcam_image_free(ptr);
        if (this.buffers.encoded) this._release('encoded');
      }
    });
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    const M = this.M;
    this.M = null; // the instance and its memory go with the last reference
    if (!this.broken) {
      try {
        if (this.state) M._gcam_state_free(this.state);
        // joins the pool's threads: none may still run C code when its worker goes
        if (this.pool) M._gcam_wasm_pool_free(this.pool);
        if (this.model) M._gcam_model_free(this.model);
        for (const b of Object.values(this.buffers)) M._free(b.ptr);
        if (this.slots) M._free(this.slots);
      } catch {
        this.broken = true; // a trap while freeing: the module is dropped all the same
      }
    }
    // Terminate the workers directly: Emscripten's terminateAllThreads would first free the
    // data of threads still running (a broken engine's), which they may then touch.
    for (const w of moduleWorkers(M)) w.terminate();
    if (M.PThread) M.PThread.unusedWorkers = M.PThread.runningWorkers = [];
    this.state = this.model = this.pool = 0;
    this.buffers = {};
  }
}

function now() {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
