// weights.js: every kind of weights source as one stream of Uint8Array chunks, so that the
// engine copies each chunk into the WebAssembly heap as it arrives and the file is never
// held whole in JS memory (a URL, a Blob, a Response or a Node file path), or at least never
// copied whole (an ArrayBuffer or Uint8Array the caller already holds). Whatever breaks while
// reading (a dropped connection, a body already read, a file that cannot be read) is a
// GcamWeightsError with the original error as its `cause`.
import { GcamArgumentError, GcamError, GcamLoadError, GcamWeightsError } from './errors.js';

export const CHUNK_BYTES = 4 << 20;

/** true in Node (the one place the package asks: web/core.js and web/index.js import it). */
export const isNode = typeof process === 'object' && !!(process.versions && process.versions.node);

/** Slices of a buffer the caller holds, without copying. */
async function* sliceChunks(u8) {
  for (let off = 0; off < u8.byteLength; off += CHUNK_BYTES)
    yield u8.subarray(off, Math.min(off + CHUNK_BYTES, u8.byteLength));
}

function bytesOf(value, what) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new GcamWeightsError(`weights ${what}: the stream gave a ${typeof value}, not bytes`);
}

function readFailure(e, what) {
  if (e instanceof GcamError) return e;
  return new GcamWeightsError(`weights ${what}: reading failed: ${e && e.message ? e.message : e}`, { cause: e });
}

/** The chunks of a ReadableStream (a Response's body, a Blob's stream). */
async function* readerChunks(stream, what) {
  let reader;
  try {
    reader = stream.getReader();
  } catch (e) {
    throw readFailure(e, what); // locked: someone else is reading it
  }
  try {
    for (;;) {
      let next;
      try {
        next = await reader.read();
      } catch (e) {
        throw readFailure(e, what); // the connection dropped, the body errored
      }
      if (next.done) return;
      yield bytesOf(next.value, what);
    }
  } finally {
    reader.cancel().catch(() => {}); // a no-op after the end; stops a download abandoned early
  }
}

/** A Node readable stream's chunks (a file). */
async function* nodeChunks(stream, what) {
  try {
    for await (const chunk of stream) yield bytesOf(chunk, what);
  } catch (e) {
    throw readFailure(e, what);
  }
}

/**
 * { total, chunks } of a Response: total is its content-length when that is the file's size
 * (not for a compressed transfer, whose length is the compressed one), else 0.
 */
export function fromResponse(response, what = 'response') {
  if (!response.ok)
    throw new GcamWeightsError(`weights ${what}: HTTP ${response.status} ${response.statusText}`.trim());
  if (response.bodyUsed) throw new GcamWeightsError(`weights ${what}: the response's body was already read`);
  if (!response.body) throw new GcamWeightsError(`weights ${what}: the response has no body`);
  const length = Number(response.headers.get('content-length'));
  const encoded = response.headers.get('content-encoding');
  const total = !encoded && Number.isSafeInteger(length) && length > 0 ? length : 0;
  return { total, chunks: readerChunks(response.body, what) };
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
    throw new GcamWeightsError(`weights file ${path}: ${e.code === 'ENOENT' ? 'not found' : e.message}`, { cause: e });
  }
  if (!stat.isFile()) throw new GcamWeightsError(`weights file ${path}: not a regular file`);
  const stream = fs.createReadStream(path, { highWaterMark: CHUNK_BYTES });
  return { total: stat.size, chunks: nodeChunks(stream, `file ${path}`) };
}

// In Node a string is a file path unless it has a URL scheme; in a browser, always a URL.
function looksLikeUrl(s) {
  return !isNode || /^(https?:|blob:|data:)/i.test(s);
}

/** The caller's bytes as a Uint8Array (no copy), or null when `source` is not bytes. */
export function bytesSource(source) {
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  return null;
}

/**
 * { total, chunks } for a weights source: total is the byte size (0 when unknown),
 * chunks an async iterable of Uint8Array. `owned` is true when the chunks are the stream's
 * own (they may be transferred), false when they are views of the caller's buffer.
 * `base` resolves relative URLs (the page's URL in a browser).
 */
export async function weightsStream(source, base) {
  if (source == null) throw new GcamArgumentError('createExplainer: `weights` is required');
  const u8 = bytesSource(source);
  if (u8) return { total: u8.byteLength, chunks: sliceChunks(u8), owned: false };
  if (typeof Blob !== 'undefined' && source instanceof Blob)
    return { total: source.size, chunks: readerChunks(source.stream(), 'blob'), owned: true };
  if (typeof Response !== 'undefined' && source instanceof Response) return { ...fromResponse(source), owned: true };
  if (source instanceof URL) {
    if (source.protocol === 'file:' && isNode) {
      const { fileURLToPath } = nodeBuiltin('node:url');
      return { ...(await fromNodePath(fileURLToPath(source))), owned: true };
    }
    source = source.href;
  }
  if (typeof source === 'string') {
    if (source.startsWith('file:') && isNode) return weightsStream(new URL(source));
    if (!looksLikeUrl(source)) return { ...(await fromNodePath(source)), owned: true };
    let url;
    try {
      url = base ? new URL(source, base).href : new URL(source).href;
    } catch (e) {
      throw new GcamArgumentError(`createExplainer: weights ${source} is not a URL`, { cause: e });
    }
    let response;
    try {
      response = await fetch(url);
    } catch (e) {
      throw new GcamWeightsError(`weights ${url}: ${e.message}`, { cause: e });
    }
    return { ...fromResponse(response, url), owned: true };
  }
  throw new GcamArgumentError(
    'createExplainer: `weights` must be a URL, a path (Node), an ArrayBuffer, a Uint8Array, a Blob or a Response');
}
