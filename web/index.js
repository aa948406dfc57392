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
import { Engine, checkImage, explainOptions, overlayArguments, simdSupported, wasmUrls } from './core.js';
import {
  GcamError, GcamArgumentError, GcamDisposedError, GcamWeightsError, deserializeError, toGcamError,
} from './errors.js';
import { isNode, weightsStream } from './weights.js';

export { GcamError, GcamArgumentError, GcamDisposedError, GcamWeightsError, simdSupported };

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

/** Forwards every call to web/worker.js; checks arguments here first, with the engine's checks. */
class WorkerExplainer {
  static async create(options) {
    const base = pageUrl();
    let workerUrl;
    try {
      workerUrl = options.workerUrl ? new URL(String(options.workerUrl), base) : new URL('./worker.js', import.meta.url);
    } catch (e) {
      throw new GcamArgumentError(`createExplainer: workerUrl ${String(options.workerUrl)} is not a URL`, { cause: e });
    }
    const worker = new Worker(workerUrl, { type: 'module' });
    const self = new WorkerExplainer(worker, options.onProgress);
    try {
      await self._init(options, base);
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
      try {
        this._worker.postMessage({ id, op, ...args }, transfer);
      } catch (e) {
        this._pending.delete(id);
        reject(toGcamError(e, op)); // not cloneable
      }
    });
  }

  async _init(options, base) {
    const common = { wasmUrl: wasmUrls(options.wasmUrl, base), simd: options.simd, threads: options.threads, base };
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
    const checked = explainOptions(options, this.info.nClasses);
    // the pixels are copied (not transferred): the caller keeps its ImageData
    return this._call('explain', { image: plainImage(image), options: checked });
  }

  async overlay(image, explanation, options) {
    if (!this._worker) throw new GcamDisposedError('overlay');
    checkImage(image, 'overlay');
    const { map, options: checked } = overlayArguments(explanation, options);
    const out = await this._call('overlay', { image: plainImage(image), explanation: map, options: checked });
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
