// worker.js: the explainer in a Web Worker, driven by web/index.js. One engine per worker.
// Messages in: { id, op: 'init' | 'explain' | 'evaluate' | 'overlay' | 'decodeImage', ... } and, while an
// init with source.kind 'chunks' runs, { op: 'chunk', data } ... { op: 'end' }.
// Messages out: { type: 'ready' } once this module has run (web/index.js waits for it, with a
// time limit), { id, type: 'result', value } | { id, type: 'error', error },
// { type: 'progress', loaded, total }, { type: 'ack' } after each chunk is in the heap;
// { type: 'pthread', id, port } asks the page to start a pthread worker on that port
// ({ type: 'pthreadTerminate', id } to end it), which answers { op: 'pthreadError', id,
// message } if the worker fails.
import { Engine, setPthreadStarter } from './core.js';
import { serializeError } from './errors.js';

// The threaded build's pthread workers are started by the page, not here: in Firefox a Worker
// constructed inside a worker (a nested worker) now and then blocks the constructing worker
// in its constructor for good (about 2 constructions in 100 under WebDriver BiDi, measured with
// tests/browser/stress_threads.mjs), and with it every timer that would report the hang.
// The page (web/index.js) starts each one and hands it one end of a MessageChannel; the loader
// here talks to it through the other end, as it would through the Worker.
const pthreads = new Map(); // id -> PageStartedWorker
let nextPthread = 1;
class PageStartedWorker {
  constructor() {
    this.id = nextPthread++;
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.onmessage = null;
    this.onerror = null;
    this.errorListeners = [];
    port1.onmessage = (ev) => { if (this.onmessage) this.onmessage(ev); };
    pthreads.set(this.id, this);
    self.postMessage({ type: 'pthread', id: this.id, port: port2 }, [port2]);
  }
  postMessage(msg, transfer) { this.port.postMessage(msg, transfer || []); }
  addEventListener(type, f) { if (type === 'error') this.errorListeners.push(f); }
  /** the page saw the worker's error event (it did not load, or a thread threw) */
  failed(message) {
    const e = { message, preventDefault() {} };
    for (const f of this.errorListeners) f(e);
    if (this.onerror) this.onerror(e);
  }
  terminate() {
    if (!pthreads.delete(this.id)) return;
    this.port.close();
    self.postMessage({ type: 'pthreadTerminate', id: this.id });
  }
}
setPthreadStarter(() => new PageStartedWorker());

let engine = null;
let feed = null; // the chunk queue of a running init

function chunkFeed() {
  const queue = [];
  let wake = null;
  let ended = false;
  return {
    push(data) { queue.push(data); if (wake) wake(); },
    end() { ended = true; if (wake) wake(); },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        if (queue.length) {
          yield queue.shift();
          self.postMessage({ type: 'ack' }); // the chunk is in the heap: send the next
        } else if (ended) {
          return;
        } else {
          await new Promise((resolve) => { wake = resolve; });
          wake = null;
        }
      }
    },
  };
}

async function handle(msg) {
  switch (msg.op) {
    case 'init': {
      let weights;
      if (msg.source.kind === 'url') weights = msg.source.url;
      else if (msg.source.kind === 'blob') weights = msg.source.blob;
      else {
        feed = chunkFeed();
        weights = { total: msg.source.total, chunks: feed };
      }
      const onProgress = (p) => self.postMessage({ type: 'progress', loaded: p.loaded, total: p.total });
      // warnThreads: false: web/index.js already warned in the page's console
      engine = await Engine.create({ weights, wasmUrl: msg.wasmUrl, simd: msg.simd, threads: msg.threads, base: msg.base,
                                     loadTimeoutMs: msg.loadTimeoutMs, warnThreads: false,
                                     memory: msg.memory, maxMemoryMB: msg.maxMemoryMB, depth: msg.depth, onProgress });
      feed = null;
      return { value: { info: engine.info, labels: engine.labels } };
    }
    case 'explain': {
      const r = engine.explain(msg.image, msg.options);
      return { value: r, transfer: [r.logits.buffer, ...r.explanations.map((e) => e.heatmap.buffer)] };
    }
    case 'evaluate': {
      const r = engine.evaluate(msg.image, msg.explanation, msg.options);
      return { value: r, transfer: [r.curve.buffer] };
    }
    case 'overlay': {
      const out = engine.overlay(msg.image, msg.explanation, msg.options);
      return { value: { data: out.data, width: out.width, height: out.height }, transfer: [out.data.buffer] };
    }
    case 'decodeImage': {
      const out = engine.decodeImage(msg.bytes);
      return { value: { data: out.data, width: out.width, height: out.height }, transfer: [out.data.buffer] };
    }
    default:
      throw new Error(`worker: unknown op ${msg.op}`);
  }
}

self.onmessage = async (ev) => {
  const msg = ev.data;
  if (msg.op === 'chunk') return feed && feed.push(msg.data);
  if (msg.op === 'end') return feed && feed.end();
  if (msg.op === 'pthreadError') return pthreads.get(msg.id)?.failed(msg.message);
  try {
    const { value, transfer } = await handle(msg);
    self.postMessage({ id: msg.id, type: 'result', value }, transfer || []);
  } catch (e) {
    if (msg.op === 'init' && engine === null && feed) feed = null;
    self.postMessage({ id: msg.id, type: 'error', error: serializeError(e) });
  }
};

self.postMessage({ type: 'ready' });
