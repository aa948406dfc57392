// weights.js: every kind of weights source as one stream of Uint8Array chunks, so that the
// engine copies each chunk into the WebAssembly heap as it arrives and the file is never
// held whole in JS memory (a URL, a Blob, a Response or a Node file path), or at least never
// copied whole (an ArrayBuffer or Uint8Array the caller already holds).
import { GcamArgumentError, GcamLoadError, GcamWeightsError } from './errors.js';

export const CHUNK_BYTES = 4 << 20;

const isNode = typeof process === 'object' && !!(process.versions && process.versions.node);

/** Slices of a buffer the caller holds, without copying. */
async function* sliceChunks(u8) {
  for (let off = 0; off < u8.byteLength; off += CHUNK_BYTES)
    yield u8.subarray(off, Math.min(off + CHUNK_BYTES, u8.byteLength));
}

async function* readerChunks(stream) {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value instanceof Uint8Array ? value : new Uint8Array(value);
    }
  } finally {
    reader.cancel().catch(() => {}); // a no-op after the end; stops a download abandoned early
  }
}

function fromResponse(response, what) {
  if (!response.ok)
    throw new GcamWeightsError(`weights ${what}: HTTP ${response.status} ${response.statusText}`.trim());
  if (!response.body) throw new GcamWeightsError(`weights ${what}: the response has no body`);
  const length = Number(response.headers.get('content-length'));
  // a compressed transfer's content-length is not the file's size: do not trust it then
  const encoded = response.headers.get('content-encoding');
  const total = !encoded && Number.isFinite(length) && length > 0 ? length : 0;
  return { total, chunks: readerChunks(response.body) };
}

/** Node's built-in modules through process.getBuiltinModule (Node >= 20.16), not import():
 * bundlers then see no `node:` module in the browser code, and no top-level await. Only
 * called under Node. */
export function nodeBuiltin(name) {
  if (typeof process.getBuiltinModule !== 'function')
    throw new GcamLoadError(
      `gradcam-wasm needs Node 20.16 or newer (process.getBuiltinModule); this is Node ${process.versions.node}`);
  return process.getBuiltinModule(name);
}

async function fromNodePath(path) {
  const fs = nodeBuiltin('node:fs');
  let stat;
  try {
    stat = await fs.promises.stat(path);
  } catch (e) {
    throw new GcamWeightsError(`weights file ${path}: ${e.code === 'ENOENT' ? 'not found' : e.message}`);
  }
  if (!stat.isFile()) throw new GcamWeightsError(`weights file ${path}: not a regular file`);
  const stream = fs.createReadStream(path, { highWaterMark: CHUNK_BYTES });
  return { total: stat.size, chunks: stream };
}

// In Node a string is a file path unless it has a URL scheme; in a browser, always a URL.
function looksLikeUrl(s) {
  return !isNode || /^(https?:|blob:|data:)/i.test(s);
}

/**
 * { total, chunks } for a weights source: total is the byte size (0 when unknown),
 * chunks an async iterable of Uint8Array.
 * `base` resolves relative URLs (the page's URL in a browser).
 */
export async function weightsStream(source, base) {
  if (source == null) throw new GcamArgumentError('createExplainer: `weights` is required');
  if (source instanceof ArrayBuffer) source = new Uint8Array(source);
  else if (ArrayBuffer.isView(source) && !(source instanceof Uint8Array))
    source = new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  if (source instanceof Uint8Array) return { total: source.byteLength, chunks: sliceChunks(source) };
  if (typeof Blob !== 'undefined' && source instanceof Blob)
    return { total: source.size, chunks: readerChunks(source.stream()) };
  if (typeof Response !== 'undefined' && source instanceof Response) return fromResponse(source, 'response');
  if (source instanceof URL) {
    if (source.protocol === 'file:' && isNode) {
      const { fileURLToPath } = nodeBuiltin('node:url');
      return fromNodePath(fileURLToPath(source));
    }
    source = source.href;
  }
  if (typeof source === 'string') {
    if (source.startsWith('file:') && isNode) return weightsStream(new URL(source));
    if (!looksLikeUrl(source)) return fromNodePath(source);
    const url = base ? new URL(source, base).href : source;
    let response;
    try {
      response = await fetch(url);
    } catch (e) {
      throw new GcamWeightsError(`weights ${url}: ${e.message}`);
    }
    return fromResponse(response, url);
  }
  throw new GcamArgumentError(
    'createExplainer: `weights` must be a URL, a path (Node), an ArrayBuffer, a Uint8Array, a Blob or a Response');
}
