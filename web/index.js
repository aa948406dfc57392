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
import { Engine, checkImage, simdSupported } from './core.js';
import {
  GcamError, GcamArgumentError, GcamDisposedError, GcamWeightsError, deserializeError,
} from './errors.js';
import { CHUNK_BYTES } from './weights.js';

export { GcamError, GcamArgumentError, GcamDisposedError, GcamWeightsError, simdSupported };

const isNode = typeof process === 'object' && !!(process.versions && process.versions.node);

/**
 * Load the WebAssembly build (SIMD when the engine has it) and the weights.
 * See index.d.ts for the options.
 */
export async function createExplainer(options = {}) {
  if (options == null || typeof options !== 'object') throw new GcamArgumentError('createExplainer: expected an options object');
  if (options.weights == null) throw new GcamArgumentError('createExplainer: `weights` is required');
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function')
    throw new GcamArgumentError('createExplainer: onProgress must be a function');
  const useWorker = options.worker === undefined ? !isNode && typeof Worker !== 'undefined' : !!options.worker;
  if (useWorker && typeof Worker === 'undefined')
    throw new GcamArgumentError('createExplainer: { worker: true } needs Web Workers (not available here)');
  if (useWorker) return WorkerExplainer.create(options);
  const base = typeof location !== 'undefined' ? location.href : undefined;
  const engine = await Engine.create({ ...options, base });
  return new LocalExplainer(engine);
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

  async overlay(image, explanation, options) {
    return this._live('overlay').overlay(image, explanation, options);
  }

  async decodeImage(bytes) {
    return this._live('decodeImage').decodeImage(bytes);
  }

  dispose() {
    if (this._engine) this._engine.dispose();
    this._engine = null;
  }
}

/** Forwards every call to web/worker.js; checks arguments here first, as the engine does. */
class WorkerExplainer {
  static async create(options) {
    const workerUrl = options.workerUrl ? new URL(String(options.workerUrl), location.href)
                                        : new URL('./worker.js', import.meta.url);
    const worker = new Worker(workerUrl, { type: 'module' });
    const self = new WorkerExplainer(worker, options.onProgress);
    try {
      await self._init(options);
    } catch (e) {
      self.dispose();
      throw e;
    }
    return self;
  }

  constructor(worker, onProgress) {
    this._worker = worker;
    this._next = 1;
    this._pending = new Map();
    this._acks = [];
    worker.onmessage = (ev) => this._onMessage(ev.data, onProgress);
    worker.onerror = (ev) => {
      const err = new GcamError('GCAM_STATUS_BACKEND', `worker failed: ${ev.message || 'could not start'}`);
      for (const p of this._pending.values()) p.reject(err);
      this._pending.clear();
    };
  }

  _onMessage(msg, onProgress) {
    if (msg.type === 'progress') {
      if (onProgress) onProgress({ loaded: msg.loaded, total: msg.total });
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

  _call(op, args, transfer = []) {
    if (!this._worker) return Promise.reject(new GcamDisposedError(op));
    const id = this._next++;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject });
      this._worker.postMessage({ id, op, ...args }, transfer);
    });
  }

  async _init(options) {
    const base = location.href;
    const wasmUrl = resolveWasmUrl(options.wasmUrl, base);
    let source = options.weights;
    const common = { wasmUrl, simd: options.simd, threads: options.threads, base,
                     memory: options.memory, maxMemoryMB: options.maxMemoryMB };
    if (typeof source === 'string' || source instanceof URL) {
      ({ info: this.info, labels: this.labels } =
        await this._call('init', { ...common, source: { kind: 'url', url: new URL(String(source), base).href } }));
      return;
    }
    if (typeof Blob !== 'undefined' && source instanceof Blob) {
      ({ info: this.info, labels: this.labels } = await this._call('init', { ...common, source: { kind: 'blob', blob: source } }));
      return;
    }
    // A buffer or a Response: feed the worker chunk by chunk, one in flight at a time, so
    // neither side ever holds a second copy of the whole file.
    let total = 0;
    let chunks;
    if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
      const u8 = source instanceof ArrayBuffer ? new Uint8Array(source)
                                               : new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
      total = u8.byteLength;
      chunks = (async function* () {
        for (let off = 0; off < u8.byteLength; off += CHUNK_BYTES) yield u8.slice(off, off + CHUNK_BYTES);
      })();
    } else if (typeof Response !== 'undefined' && source instanceof Response) {
      if (!source.ok) throw new GcamWeightsError(`weights response: HTTP ${source.status}`);
      const length = Number(source.headers.get('content-length'));
      total = Number.isFinite(length) && length > 0 && !source.headers.get('content-encoding') ? length : 0;
      const reader = source.body.getReader();
      chunks = (async function* () {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return;
            yield value;
          }
        } finally {
          reader.cancel().catch(() => {}); // stops the download when the load fails early
        }
      })();
    } else {
      throw new GcamArgumentError(
        'createExplainer: `weights` must be a URL, an ArrayBuffer, a Uint8Array, a Blob or a Response');
    }
    const ready = this._call('init', { ...common, source: { kind: 'chunks', total } });
    let failed = false;
    ready.catch(() => { failed = true; });
    for await (const chunk of chunks) {
      if (failed || !this._worker) break;
      // transfer the chunk's buffer when the chunk owns it all (our slices, fetch's chunks)
      const copy = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk : chunk.slice();
      const acked = new Promise((resolve) => this._acks.push(resolve));
      this._worker.postMessage({ op: 'chunk', data: copy }, [copy.buffer]);
      await Promise.race([acked, ready.catch(() => {})]);
    }
    if (!failed && this._worker) this._worker.postMessage({ op: 'end' });
    ({ info: this.info, labels: this.labels } = await ready);
  }

  async explain(image, options = {}) {
    if (!this._worker) throw new GcamDisposedError('explain');
    checkImage(image, 'explain');
    checkClassesHere(options, this.info);
    // the pixels are copied (not transferred): the caller keeps its ImageData
    return this._call('explain', { image: plainImage(image), options });
  }

  async overlay(image, explanation, options = {}) {
    if (!this._worker) throw new GcamDisposedError('overlay');
    checkImage(image, 'overlay');
    const out = await this._call('overlay', { image: plainImage(image), explanation, options });
    return typeof ImageData !== 'undefined' ? new ImageData(out.data, out.width, out.height) : out;
  }

  async decodeImage(bytes) {
    if (!this._worker) throw new GcamDisposedError('decodeImage');
    const out = await this._call('decodeImage', { bytes });
    return typeof ImageData !== 'undefined' ? new ImageData(out.data, out.width, out.height) : out;
  }

  dispose() {
    if (!this._worker) return;
    this._worker.terminate(); // frees the wasm instance and everything in it
    this._worker = null;
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

function checkClassesHere(options, info) {
  if (!options || options.classIndex === undefined || options.classIndex === null || !info) return;
  const list = Array.isArray(options.classIndex) ? options.classIndex : [options.classIndex];
  for (const c of list)
    if (!Number.isInteger(c) || c < 0 || c >= info.nClasses)
      throw new GcamArgumentError(`explain: class index ${c} is out of range [0, ${info.nClasses})`);
}

function resolveWasmUrl(wasmUrl, base) {
  if (wasmUrl == null) return undefined;
  if (typeof wasmUrl === 'object' && !(wasmUrl instanceof URL)) {
    const out = {};
    for (const k of ['simd', 'scalar', 'threads']) if (wasmUrl[k] != null) out[k] = new URL(String(wasmUrl[k]), base).href;
    return out;
  }
  return new URL(String(wasmUrl), base).href;
}
