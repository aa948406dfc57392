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

/** createExplainer's `memory`: how the conv weights sit in the heap (gcam_memory) */
export const MEMORY_MODES = { fast: 0, compact: 1 };
export function memoryMode(memory) {
  if (memory === undefined) return MEMORY_MODES.fast;
  if (!Object.hasOwn(MEMORY_MODES, memory))
    throw new GcamArgumentError(`memory must be 'compact' or 'fast', got ${memory}`);
  return MEMORY_MODES[memory];
}

const SCORES = { logit: 0, softmax: 1 };
const COLORMAPS = { jet: 0, gray: 1 };

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

/** explain()'s options checked against the model: { topK, score, classIndex: int[] | null }. */
export function explainOptions(given, nClasses) {
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
  return { topK, score, classIndex };
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
                        maxMemoryMB } = {}) {
    checkThreadsOption(threads); // argument checks before any download
    checkTimeoutOption(loadTimeoutMs);
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
      await engine._load(stream, onProgress, mode);
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

  async _load({ total, chunks }, onProgress, mode = MEMORY_MODES.fast) {
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
    this._check(M._gcam_state_create(this.model, this.slots), 'creating the state');
    this.state = M.HEAPU32[this.slots >> 2];
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

  /** Forward (unless cached) + top-k + one Grad-CAM per class. See index.d.ts. */
  explain(image, options) {
    return this._run('explain', () => {
      checkImage(image, 'explain');
      const { nClasses, camWidth, camHeight } = this.info;
      const { topK, score, classIndex } = explainOptions(options, nClasses);
      const M = this.M;
      const t0 = now();
      const reused = this._sameAsLast(image);
      if (!reused) {
        this.last = null; // from here until the forward succeeds the state holds no known image
        const ptr = this._buffer('image', image.data.length);
        M.HEAPU8.set(image.data, ptr);
        this._check(M._gcam_state_forward_rgba(this.state, ptr, image.width, image.height, image.width * 4), 'forward');
        this.last = { width: image.width, height: image.height };
      }
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
      const n = camWidth * camHeight;
      const map = this._buffer('map', 4 * n);
      const rawMaxPtr = this.slots + 8;
      const explanations = classes.map((c) => {
        this._check(M._gcam_state_explain(this.state, c, SCORES[score], 0, map, rawMaxPtr), 'explain');
        return {
          classIndex: c,
          heatmap: M.HEAPF32.slice(map >> 2, (map >> 2) + n),
          width: camWidth,
          height: camHeight,
          rawMax: M.HEAPF32[rawMaxPtr >> 2],
        };
      });
      const t2 = now();
      return { predictions, explanations, logits, forwardReused: reused,
               timings: { forwardMs: reused ? 0 : t1 - t0, explainMs: t2 - t1 },
               memoryBytes: M._gcam_wasm_heap_bytes() };
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
