// core.js: the explainer engine, running the WebAssembly build in the current thread.
// Used directly in Node (and wherever workers are turned off) and inside web/worker.js.
// Every argument is checked here, in JS, before any C call; every C status other than OK
// becomes a GcamError carrying the status name and gcam_last_error().
import { GcamArgumentError, GcamDisposedError, GcamError } from './errors.js';
import { weightsStream, CHUNK_BYTES } from './weights.js';

const isNode = typeof process === 'object' && !!(process.versions && process.versions.node);

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
  if (typeof SharedArrayBuffer === 'undefined' || typeof Atomics === 'undefined') return false;
  if (isNode) return true;
  return globalThis.crossOriginIsolated === true && typeof Worker !== 'undefined';
}

const MAX_THREADS = 16;

/** How many threads to run: `threads` is undefined or 'auto' (the cores, at most 8), or 1..16. */
export async function resolveThreads(threads, simd) {
  if (threads !== undefined && threads !== 'auto' && !(isInt(threads) && threads >= 1 && threads <= MAX_THREADS))
    throw new GcamArgumentError(`threads must be 'auto' or an integer in [1, ${MAX_THREADS}], got ${threads}`);
  // the threaded build is a SIMD build; without shared memory there is only one thread
  if (!simd || !threadsSupported()) return 1;
  if (isInt(threads)) return threads;
  let cores = 1;
  if (isNode) {
    const os = await import('node:os');
    cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  } else if (globalThis.navigator && navigator.hardwareConcurrency) {
    cores = navigator.hardwareConcurrency;
  }
  return Math.max(1, Math.min(8, cores));
}

const DIST = new URL('./dist/', import.meta.url);
const BUILDS = {
  simd: { wasm: 'gcam-simd.wasm', load: () => import('./dist/gcam-simd.mjs') },
  scalar: { wasm: 'gcam-scalar.wasm', load: () => import('./dist/gcam-scalar.mjs') },
  threads: { wasm: 'gcam-simd-threads.wasm', load: () => import('./dist/gcam-simd-threads.mjs') },
};

/** The URL of a build's .wasm: `wasmUrl` is the folder holding the builds, or one per build
 * ({ simd, scalar, threads }). `build` is 'simd', 'scalar' or 'threads'. */
function wasmLocation(wasmUrl, build) {
  const name = BUILDS[build].wasm;
  if (wasmUrl == null) return new URL(name, DIST);
  if (typeof wasmUrl === 'object' && !(wasmUrl instanceof URL)) {
    const one = wasmUrl[build];
    if (one == null) return new URL(name, DIST);
    return new URL(String(one), globalThis.location ? globalThis.location.href : DIST);
  }
  let folder = String(wasmUrl);
  if (folder.endsWith('.wasm')) return new URL(folder, globalThis.location ? globalThis.location.href : DIST);
  if (!folder.endsWith('/')) folder += '/';
  return new URL(name, new URL(folder, globalThis.location ? globalThis.location.href : DIST));
}

async function wasmBytes(url) {
  if (url.protocol === 'file:' && isNode) {
    const fs = await import('node:fs');
    return new Uint8Array(await fs.promises.readFile(url));
  }
  const response = await fetch(url);
  if (!response.ok) throw new GcamError('GCAM_STATUS_IO', `${url.href}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/**
 * Instantiate one build. `simd`: true, false, or undefined to detect. `threads`: see
 * resolveThreads(); more than one picks the threaded SIMD build, whose module resolves once
 * its threads - 1 workers are loaded (M.gcamThreads says how many threads it runs).
 */
export async function loadWasm({ wasmUrl, simd, threads, maxMemoryMB } = {}) {
  const maxPages = memoryPages(maxMemoryMB);
  const useSimd = simd === undefined ? simdSupported() : !!simd;
  let nThreads = await resolveThreads(threads, useSimd);
  let factory, wasmBinary;
  if (nThreads > 1) {
    try {
      factory = (await BUILDS.threads.load()).default;
      wasmBinary = await wasmBytes(wasmLocation(wasmUrl, 'threads'));
    } catch {
      factory = undefined; // a package or server without the threaded build: one thread
      nThreads = 1;
    }
  }
  if (!factory) {
    const build = useSimd ? 'simd' : 'scalar';
    factory = (await BUILDS[build].load()).default;
    // Hand the bytes in ourselves: the generated loader's own fetch breaks on Node 20.
    wasmBinary = await wasmBytes(wasmLocation(wasmUrl, build));
  }
  // The heap starts at 16 MB and grows up to maxMemoryMB (a phone's budget); past it malloc
  // fails and the C call returns GCAM_STATUS_OUT_OF_MEMORY (no abort).
  const wasmMemory = new WebAssembly.Memory({ initial: 256, maximum: maxPages, shared: nThreads > 1 });
  const M = await factory({ wasmBinary, wasmMemory, gcamWorkers: nThreads - 1, print: () => {}, printErr: () => {} });
  if (isNode && M.PThread) {
    // Emscripten 3.1.6 keeps its worker_threads referenced: they would keep Node alive
    for (const w of [...M.PThread.unusedWorkers, ...M.PThread.runningWorkers]) if (w.unref) w.unref();
  }
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

/** Make an ImageData where the platform has one, else an object of the same shape (Node). */
export function makeImageData(data, width, height) {
  if (typeof ImageData !== 'undefined') return new ImageData(data, width, height);
  return { data, width, height, colorSpace: 'srgb' };
}

export class Engine {
  /** Load the wasm and stream the weights into it. */
  static async create({ weights, wasmUrl, simd, threads, onProgress, base, memory, maxMemoryMB } = {}) {
    await resolveThreads(threads, false); // argument checks before any download
    const mode = memoryMode(memory);
    memoryPages(maxMemoryMB);
    // the worker passes an already open { total, chunks } stream
    const stream = weights && weights.chunks ? weights : await weightsStream(weights, base);
    const M = await loadWasm({ wasmUrl, simd, threads, maxMemoryMB });
    const engine = new Engine(M);
    try {
      await engine._load(stream, onProgress, mode);
    } catch (e) {
      engine.dispose();
      throw e;
    }
    return engine;
  }

  constructor(M) {
    this.M = M;
    this.disposed = false;
    this.model = 0;
    this.state = 0;
    this.slots = M._malloc(64); // out-parameters of C calls
    this.buffers = {}; // name -> { ptr, bytes }: grown on demand, never shrunk
    this.last = null; // { width, height } of the image the state holds the forward of
  }

  _check(status, what) {
    if (status === 0) return;
    const M = this.M;
    const code = M.UTF8ToString(M._gcam_status_string(status));
    const reason = M.UTF8ToString(M._gcam_last_error());
    throw new GcamError(code, reason ? `${what}: ${reason}` : `${what}: ${code}`);
  }

  _buffer(name, bytes) {
    const b = this.buffers[name];
    if (b && b.bytes >= bytes) return b.ptr;
    if (b) this.M._free(b.ptr);
    const ptr = this.M._malloc(bytes);
    if (!ptr) throw new GcamError('GCAM_STATUS_OUT_OF_MEMORY', `cannot allocate ${bytes} bytes in the wasm heap`);
    this.buffers[name] = { ptr, bytes };
    return ptr;
  }

  _release(name) {
    const b = this.buffers[name];
    if (b) this.M._free(b.ptr);
    delete this.buffers[name];
  }

  async _load({ total, chunks }, onProgress, mode = MEMORY_MODES.fast) {
    const M = this.M;
    this._check(M._gcam_wasm_loader_create(total, mode, this.slots), 'loading weights');
    let loader = M.HEAPU32[this.slots >> 2];
    const staging = this._buffer('staging', CHUNK_BYTES);
    let loaded = 0;
    let reported = -1;
    let peak = 0; // heap in use, sampled after each chunk
    const report = (force) => {
      if (!onProgress || (!force && loaded - reported < (1 << 20))) return;
      reported = loaded;
      onProgress({ loaded, total });
    };
    try {
      report(true);
      for await (const chunk of chunks) {
        const u8 = chunk instanceof Uint8Array ? chunk : new Uint8Array(chunk);
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
    } finally {
      if (loader) M._gcam_model_loader_free(loader);
    }
    this.model = M.HEAPU32[this.slots >> 2];
    this._release('staging');
    this._readInfo();
    this._check(M._gcam_state_create(this.model, this.slots), 'creating the state');
    this.state = M.HEAPU32[this.slots >> 2];
    if (M.gcamThreads > 1) this._check(M._gcam_wasm_state_set_threads(this.state, M.gcamThreads), 'starting threads');
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
  }

  _alive(what) {
    if (this.disposed) throw new GcamDisposedError(what);
  }

  _checkClass(c, what) {
    if (!isInt(c) || c < 0 || c >= this.info.nClasses)
      throw new GcamArgumentError(`${what}: class index ${c} is out of range [0, ${this.info.nClasses})`);
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
  explain(image, options = {}) {
    this._alive('explain');
    checkImage(image, 'explain');
    const { nClasses, camWidth, camHeight } = this.info;
    const topK = options.topK === undefined ? Math.min(5, nClasses) : options.topK;
    if (!isInt(topK) || topK < 1 || topK > nClasses)
      throw new GcamArgumentError(`explain: topK must be an integer in [1, ${nClasses}], got ${topK}`);
    const score = options.score === undefined ? 'logit' : options.score;
    if (!(score in SCORES)) throw new GcamArgumentError(`explain: score must be 'logit' or 'softmax', got ${score}`);
    let classes = options.classIndex;
    if (classes !== undefined && classes !== null) {
      classes = Array.isArray(classes) ? classes : [classes];
      for (const c of classes) this._checkClass(c, 'explain');
    }

    const M = this.M;
    const t0 = now();
    const reused = this._sameAsLast(image);
    if (!reused) {
      const bytes = image.data.length;
      this.last = null;
      const ptr = this._buffer('image', bytes);
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

    if (!classes) classes = [indices[0]];
    const n = camWidth * camHeight;
    const map = this._buffer('map', 4 * n);
    const rawMaxPtr = this.slots + 8;
    const explanations = classes.map((classIndex) => {
      this._check(M._gcam_state_explain(this.state, classIndex, SCORES[score], 0, map, rawMaxPtr), 'explain');
      return {
        classIndex,
        heatmap: M.HEAPF32.slice(map >> 2, (map >> 2) + n),
        width: camWidth,
        height: camHeight,
        rawMax: M.HEAPF32[rawMaxPtr >> 2],
      };
    });
    const t2 = now();
    return { predictions, explanations, logits, forwardReused: reused,
             timings: { forwardMs: reused ? 0 : t1 - t0, explainMs: t2 - t1 } };
  }

  /** The heatmap blended over the image by the C core, at the image's size. */
  overlay(image, explanation, options = {}) {
    this._alive('overlay');
    checkImage(image, 'overlay');
    const { heatmap, width: mw, height: mh } = explanation || {};
    if (!(heatmap instanceof Float32Array) || !isInt(mw) || !isInt(mh) || mw < 1 || mh < 1 || heatmap.length !== mw * mh)
      throw new GcamArgumentError('overlay: explanation must have heatmap (Float32Array of width*height), width, height');
    const alpha = options.alpha === undefined ? 0.4 : options.alpha;
    const imageWeight = options.imageWeight === undefined ? 0.9 : options.imageWeight;
    for (const [k, v] of [['alpha', alpha], ['imageWeight', imageWeight]])
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        throw new GcamArgumentError(`overlay: ${k} must be a finite number >= 0, got ${v}`);
    const colormap = options.colormap === undefined ? 'jet' : options.colormap;
    if (!(colormap in COLORMAPS)) throw new GcamArgumentError(`overlay: colormap must be 'jet' or 'gray', got ${colormap}`);

    const M = this.M;
    const bytes = image.data.length;
    const src = this._buffer('overlayIn', bytes);
    const dst = this._buffer('overlayOut', bytes);
    const map = this._buffer('overlayMap', 4 * heatmap.length);
    M.HEAPU8.set(image.data, src);
    M.HEAPF32.set(heatmap, map >> 2);
    this._check(M._gcam_wasm_overlay(dst, src, image.width, image.height, map, mw, mh, alpha, imageWeight,
                                     COLORMAPS[colormap]), 'overlay');
    const out = new Uint8ClampedArray(bytes);
    out.set(M.HEAPU8.subarray(dst, dst + bytes));
    return makeImageData(out, image.width, image.height);
  }

  /** Decode a PNG or JPEG with the library's decoder (the CLI's): { data, width, height }. */
  decodeImage(bytes) {
    this._alive('decodeImage');
    if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
    if (!(bytes instanceof Uint8Array)) throw new GcamArgumentError('decodeImage: expected an ArrayBuffer or Uint8Array');
    const M = this.M;
    const src = this._buffer('encoded', Math.max(1, bytes.byteLength));
    M.HEAPU8.set(bytes, src);
    const s = this.slots >> 2;
    this._check(M._gcam_wasm_image_decode(src, bytes.byteLength, this.slots, this.slots + 4, this.slots + 8),
                'decodeImage');
    const [ptr, width, height] = [M.HEAPU32[s], M.HEAP32[s + 1], M.HEAP32[s + 2]];
    const data = new Uint8ClampedArray(M.HEAPU8.subarray(ptr, ptr + width * height * 4));
    M._gcam_image_free(ptr);
    this._release('encoded');
    return makeImageData(data, width, height);
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    const M = this.M;
    if (this.state) M._gcam_state_free(this.state);
    if (this.model) M._gcam_model_free(this.model);
    for (const b of Object.values(this.buffers)) M._free(b.ptr);
    M._free(this.slots);
    if (M.PThread) M.PThread.terminateAllThreads(); // the threaded build's workers
    this.state = this.model = 0;
    this.buffers = {};
    this.M = null; // the instance and its memory go with the last reference
  }
}

function now() {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
