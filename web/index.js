// index.js: gradcam-wasm's JS API.
//
//   import { createExplainer } from 'gradcam-wasm';
//   const explainer = await createExplainer({ weights: '/weights/vgg16.gcam', onProgress });
//   const { predictions, explanations } = await explainer.explain(imageData);
//   const blended = await explainer.overlay(imageData, explanations[0], { alpha: 0.4 });
//   explainer.dispose();
//
// In a browser the work runs in a Web Worker (web/worker.js, a real file URL, so strict
// CSPs allow it) and the page stays responsive; in Node, or with { worker: false }, it runs
// in the calling thread. Both give the same numbers: the same .wasm runs either way.
import {
  Engine, METHODS, checkDepthOption, checkImage, checkThreadsOption, checkTimeoutOption, evaluateArguments,
  explainOptions, overlayArguments, simdSupported, threadsUnavailable, wasmUrls, warnOneThread,
} from './core.js';
import {
  GcamError, GcamArgumentError, GcamDisposedError, GcamImageError, GcamLoadError, GcamWeightsError, deserializeError,
  toGcamError,
} from './errors.js';
import { isNode, weightsStream } from './weights.js';

export {
  GcamError, GcamArgumentError, GcamDisposedError, GcamImageError, GcamLoadError, GcamWeightsError, simdSupported,
};

/** The names explain()'s `method` takes, in the C library's order (the CAM methods, then the
 * pixel-level ones from 'saliency' on). */
export const methods = Object.freeze([...METHODS]);

/** The page's URL, the base of relative URLs (none in Node). */
function pageUrl() {
  return globalThis.location && typeof globalThis.location.href === 'string' ? globalThis.location.href : undefined;
}

/** Web Workers as browsers have them. Node's worker_threads (which Emscripten's threaded
 * loader puts at globalThis.Worker) are not: no `self`, no module workers from a URL. */
function webWorkersAvailable() {
  return !isNode && typeof Worker !== 'undefined';
}

/**
 * Load the WebAssembly build (SIMD when the engine has it) and the weights.
 * See index.d.ts for the options.
 */
export async function createExplainer(options = {}) {
  if (options == null || typeof options !== 'object') throw new GcamArgumentError('createExplainer: expected an options object');
  if (options.weights == null) throw new GcamArgumentError('createExplainer: `weights` is required');
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function')
    throw new GcamArgumentError('createExplainer: onProgress must be a function');
  const useWorker = options.worker === undefined ? webWorkersAvailable() : !!options.worker;
  if (useWorker && !webWorkersAvailable())
    throw new GcamArgumentError(`createExplainer: { worker: true } needs Web Workers (not available ${isNode ? 'in Node' : 'here'})`);
  try {
    if (useWorker) return await WorkerExplainer.create(options);
    return new LocalExplainer(await Engine.create({ ...options, base: pageUrl() }));
  } catch (e) {
    throw toGcamError(e, 'createExplainer');
  }
}

/** Runs the engine in this thread. */
class LocalExplainer {
  constructor(engine) {
    this._engine = engine;
    this.info = engine.info;
    this.labels = engine.labels;
  }

  _live(what) {
    if (!this._engine) throw new GcamDisposedError(what);
    return this._engine;
  }

  async explain(image, options) {
    return this._live('explain').explain(image, options);
  }

  async evaluate(image, explanation, options) {
    return this._live('evaluate').evaluate(image, explanation, options);
  }

  async overlay(image, explanation, options) {
    return this._live('overlay').overlay(image, explanation, options);
  }

  async decodeImage(bytes, options) {
    this._live('decodeImage');
    return decodeImage(bytes, options, async (b) => this._live('decodeImage').decodeImage(b));
  }

  dispose() {
    if (this._engine) this._engine.dispose();
    this._engine = null;
  }
}

/** Forwards every call to web/worker.js; checks arguments here first, with the engine's checks. */
class WorkerExplainer {
  static async create(options) {
    checkThreadsOption(options.threads);
    checkDepthOption(options.depth);
    const timeoutMs = checkTimeoutOption(options.loadTimeoutMs);
    const base = pageUrl();
    // The worker sees the page's isolation: say here, in the page's console, why threads
    // asked for cannot run (the worker then quietly runs one).
    const why = threadsUnavailable();
    if (why && Number.isInteger(options.threads) && options.threads > 1) warnOneThread(options.threads, why);
    // The default is a literal `new Worker(new URL('./worker.js', import.meta.url), ...)`, the
    // pattern Vite and webpack bundle; workerUrl is for CDNs and unusual setups.
    let where = "gradcam-wasm's worker.js";
    if (options.workerUrl != null) {
      try {
        where = new URL(String(options.workerUrl), base).href;
      } catch (e) {
        throw new GcamArgumentError(`createExplainer: workerUrl ${String(options.workerUrl)} is not a URL`, { cause: e });
      }
    }
    let worker;
    try {
      worker = options.workerUrl != null ? new Worker(where, { type: 'module' })
        : new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    } catch (e) {
      throw new GcamLoadError(`cannot start the worker ${where}: ${e.message}`, { cause: e });
    }
    const self = new WorkerExplainer(worker, options.onProgress, where);
    try {
      await self._started(timeoutMs);
      await self._init({ ...options, loadTimeoutMs: timeoutMs }, base);
    } catch (e) {
      self.dispose();
      throw e;
    }
    return self;
  }

  constructor(worker, onProgress, where) {
    this._worker = worker;
    this._where = where;
    this._next = 1;
    this._pending = new Map();
    this._acks = [];
    this._pthreads = new Map(); // id -> the pthread workers started for the worker
    this._start = null; // { resolve, reject } until the worker says it runs
    worker.onmessage = (ev) => this._onMessage(ev.data, onProgress);
    worker.onerror = (ev) => {
      if (ev.preventDefault) ev.preventDefault();
      if (this._start) {
        // a module worker that cannot load (missing, not JavaScript, a syntax error) gets an
        // error event with no message
        this._start.reject(new GcamLoadError(`cannot start the worker ${where}: ${ev.message ||
          'the script did not load (missing, not served as JavaScript, or an error in it)'}`));
        return;
      }
      const err = new GcamError('GCAM_STATUS_BACKEND', `the worker ${where} failed: ${ev.message || 'an error'}`);
      for (const p of this._pending.values()) p.reject(err);
      this._pending.clear();
    };
  }

  /** Resolves when the worker's module has run (its 'ready' message); rejects on its error
   * event or after `ms`: a worker URL that never answers must not hang createExplainer. */
  _started(ms) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new GcamLoadError(
        `the worker ${this._where} did not start: no answer within ${ms / 1000} s`)), ms);
      const done = (f) => (v) => { clearTimeout(timer); this._start = null; f(v); };
      this._start = { resolve: done(resolve), reject: done(reject) };
    });
  }

  _onMessage(msg, onProgress) {
    if (msg.type === 'ready') {
      if (this._start) this._start.resolve();
    } else if (msg.type === 'progress') {
      if (onProgress) onProgress({ loaded: msg.loaded, total: msg.total });
    } else if (msg.type === 'pthread') {
      this._startPthread(msg.id, msg.port);
    } else if (msg.type === 'pthreadTerminate') {
      const w = this._pthreads.get(msg.id);
      this._pthreads.delete(msg.id);
      if (w) w.terminate();
    } else if (msg.type === 'ack') {
      const resolve = this._acks.shift();
      if (resolve) resolve();
    } else {
      const p = this._pending.get(msg.id);
      if (!p) return;
      this._pending.delete(msg.id);
      if (msg.type === 'error') p.reject(deserializeError(msg.error));
      else p.resolve(msg.value);
    }
  }

  /** One of the threaded build's pthread workers, started here for the worker (see
   * web/worker.js: a worker started inside a worker can hang Firefox's), on `port`. */
  _startPthread(id, port) {
    const failed = (message) => { if (this._worker) this._worker.postMessage({ op: 'pthreadError', id, message }); };
    let w;
    try {
      w = new Worker(new URL('./dist/gcam-simd-threads.worker.js', import.meta.url), { type: 'module' });
    } catch (e) {
      return failed(e.message);
    }
    this._pthreads.set(id, w);
    w.addEventListener('error', (e) => {
      e.preventDefault();
      failed(e.message || 'it did not load');
    });
    w.postMessage({ cmd: 'gcamPort', port }, [port]);
  }

  _call(op, args, transfer = []) {
    if (!this._worker) return Promise.reject(new GcamDisposedError(op));
    const id = this._next++;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject });
      try {
        this._worker.postMessage({ id, op, ...args }, transfer);
      } catch (e) {
        this._pending.delete(id);
        reject(toGcamError(e, op)); // not cloneable
      }
    });
  }

  async _init(options, base) {
    const common = {
      wasmUrl: wasmUrls(options.wasmUrl, base), simd: options.simd, threads: options.threads, base,
      loadTimeoutMs: options.loadTimeoutMs, memory: options.memory, maxMemoryMB: options.maxMemoryMB,
      depth: options.depth,
    };
    const source = options.weights;
    let kind;
    if (typeof source === 'string' || source instanceof URL) {
      let url;
      try {
        url = new URL(String(source), base).href;
      } catch (e) {
        throw new GcamArgumentError(`createExplainer: weights ${String(source)} is not a URL`, { cause: e });
      }
      kind = { kind: 'url', url };
    } else if (typeof Blob !== 'undefined' && source instanceof Blob) {
      kind = { kind: 'blob', blob: source };
    }
    if (kind) {
      ({ info: this.info, labels: this.labels } = await this._call('init', { ...common, source: kind }));
      return;
    }
    // A buffer or a Response: feed the worker chunk by chunk, one in flight at a time, so
    // neither side ever holds a second copy of the whole file.
    const { total, chunks, owned } = await weightsStream(source, base);
    const ready = this._call('init', { ...common, source: { kind: 'chunks', total } });
    let failed = false;
    ready.catch(() => { failed = true; });
    try {
      for await (const chunk of chunks) {
        if (failed || !this._worker) break;
        // transfer the chunk's buffer when it is the stream's own and whole; copy the rest
        const copy = owned && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk : chunk.slice();
        const acked = new Promise((resolve) => this._acks.push(resolve));
        this._worker.postMessage({ op: 'chunk', data: copy }, [copy.buffer]);
        await Promise.race([acked, ready.catch(() => {})]);
      }
    } catch (e) {
      ready.catch(() => {}); // the stream's error is the one to report
      throw e;
    }
    if (!failed && this._worker) this._worker.postMessage({ op: 'end' });
    ({ info: this.info, labels: this.labels } = await ready);
  }

  async explain(image, options) {
    if (!this._worker) throw new GcamDisposedError('explain');
    checkImage(image, 'explain');
    const checked = explainOptions(options, this.info);
    // the pixels are copied (not transferred): the caller keeps its ImageData
    return this._call('explain', { image: plainImage(image), options: checked });
  }

  async evaluate(image, explanation, options) {
    if (!this._worker) throw new GcamDisposedError('evaluate');
    checkImage(image, 'evaluate');
    const { map, options: checked } = evaluateArguments(explanation, options, this.info);
    return this._call('evaluate', { image: plainImage(image), explanation: map, options: checked });
  }

  async overlay(image, explanation, options) {
    if (!this._worker) throw new GcamDisposedError('overlay');
    checkImage(image, 'overlay');
    const { map, options: checked } = overlayArguments(explanation, options);
    const out = await this._call('overlay', { image: plainImage(image), explanation: map, options: checked });
    return typeof ImageData !== 'undefined' ? new ImageData(out.data, out.width, out.height) : out;
  }

  async decodeImage(bytes, options) {
    if (!this._worker) throw new GcamDisposedError('decodeImage');
    return decodeImage(bytes, options, async (b) => {
      const out = await this._call('decodeImage', { bytes: b });
      return typeof ImageData !== 'undefined' ? new ImageData(out.data, out.width, out.height) : out;
    });
  }

  dispose() {
    if (!this._worker) return;
    this._worker.terminate(); // frees the wasm instance and everything in it
    this._worker = null;
    for (const w of this._pthreads.values()) w.terminate();
    this._pthreads.clear();
    if (this._start) this._start.reject(new GcamDisposedError('createExplainer'));
    const err = new GcamDisposedError('pending call');
    for (const p of this._pending.values()) p.reject(err);
    this._pending.clear();
    for (const resolve of this._acks) resolve();
    this._acks = [];
  }
}

function plainImage(image) {
  return { data: image.data, width: image.width, height: image.height };
}

// ---- decodeImage: the browser's decoder first, the library's behind it -------------------------

const IMAGE_CODES = new Set(['GCAM_STATUS_IMAGE_DECODE', 'GCAM_STATUS_IMAGE_TOO_LARGE', 'GCAM_STATUS_UNSUPPORTED_FORMAT']);
const MAX_IMAGE_PIXELS = 8192 * 8192; // GCAM_MAX_IMAGE_PIXELS (include/gcam.h)

/**
 * Both explainers' decodeImage. A JPEG or PNG goes to the browser's own decoder when this JS
 * engine has one: decoders that browsers fuzz and sandbox, which decode off the main thread and
 * take nothing from the wasm heap (which never shrinks). Anything else, any failure of the
 * browser's (a file it refuses, a size over the library's limit, no 2D canvas), and Node go to
 * `library(bytes)`: the library's decoder, whose refusals become GcamImageErrors with the C
 * status as `code`, the same in every engine.
 */
async function decodeImage(bytes, options, library) {
  const decoder = decodeOptions(options);
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
  if (!(bytes instanceof Uint8Array)) throw new GcamArgumentError('decodeImage: expected an ArrayBuffer or Uint8Array');
  if (decoder === 'auto') {
    const theirs = await browserDecode(bytes);
    if (theirs) return theirs;
  }
  try {
    return await library(bytes);
  } catch (e) {
    if (e instanceof GcamError && IMAGE_CODES.has(e.code) && !(e instanceof GcamImageError))
      throw new GcamImageError(e.message, e.cause === undefined ? undefined : { cause: e.cause }, e.code);
    throw e;
  }
}

function decodeOptions(options) {
  if (options === undefined) return 'auto';
  if (options === null || typeof options !== 'object') throw new GcamArgumentError('decodeImage: options must be an object');
  for (const key of Object.keys(options))
    if (key !== 'decoder') throw new GcamArgumentError(`decodeImage: unknown option '${key}'`);
  const d = Object.prototype.hasOwnProperty.call(options, 'decoder') ? options.decoder : undefined;
  if (d === undefined) return 'auto';
  if (d !== 'auto' && d !== 'library') throw new GcamArgumentError(`decodeImage: decoder must be 'auto' or 'library', not ${String(d)}`);
  return d;
}

/**
 * A whole JPEG or PNG, the only files handed to the browser. Other formats (GIF, WebP, BMP:
 * a browser reads them, the library refuses them by name) and files that end early go to the
 * library: Firefox and WebKit decode a cut-off file to a partial image without an error (a
 * PNG whose IDAT runs past the end of the file came back as a 90x90 picture), which would be
 * a wrong answer; the library refuses it. Complete: a PNG's chunks all lie inside the file
 * up to its IEND; a JPEG ends with its EOI marker (FF D9).
 */
function wholePngOrJpeg(b) {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (b.length >= 8 && png.every((v, i) => b[i] === v)) {
    for (let i = 8; i + 12 <= b.length;) {
      const len = ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
      if (len > b.length - i - 12) return false;
      if (b[i + 4] === 0x49 && b[i + 5] === 0x45 && b[i + 6] === 0x4e && b[i + 7] === 0x44) return true; // IEND
      i += 12 + len;
    }
    return false;
  }
  return b.length >= 4 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff &&
    b[b.length - 2] === 0xff && b[b.length - 1] === 0xd9;
}

/** A 2D context of a w x h canvas: an OffscreenCanvas (pages and workers), or a canvas element. */
function context2d(w, h) {
  const settings = { willReadFrequently: true };
  if (typeof OffscreenCanvas === 'function') return new OffscreenCanvas(w, h).getContext('2d', settings);
  if (typeof document !== 'undefined' && typeof document.createElement === 'function') {
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    return c.getContext('2d', settings);
  }
  return null;
}

/**
 * The browser's decode of a JPEG or PNG as an ImageData, or null when there is no browser
 * decoder here or it failed (the library's then decides, and names what is wrong). The file's
 * own values, not colour-managed (colorSpaceConversion 'none', as the library reads them),
 * alpha not premultiplied by the bitmap (the canvas still premultiplies: semi-transparent
 * pixels may differ by its rounding).
 */
async function browserDecode(bytes) {
  if (typeof createImageBitmap !== 'function' || typeof Blob !== 'function' || !wholePngOrJpeg(bytes)) return null;
  let bitmap = null;
  try {
    bitmap = await createImageBitmap(new Blob([bytes]), { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
    const { width, height } = bitmap;
    if (!(width > 0 && height > 0) || width * height > MAX_IMAGE_PIXELS) return null;
    const ctx = context2d(width, height);
    if (!ctx) return null;
    ctx.drawImage(bitmap, 0, 0);
    const img = ctx.getImageData(0, 0, width, height);
    return img && img.width === width && img.height === height && img.data.length === width * height * 4 ? img : null;
  } catch {
    return null;
  } finally {
    if (bitmap && typeof bitmap.close === 'function') bitmap.close();
  }
}
