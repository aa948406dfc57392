// errors.js: the errors the wrapper throws. Every one is a GcamError with a `.code`:
// the C status name for failures inside the library ("GCAM_STATUS_CORRUPT", with the C
// message), or the wrapper's own codes for what it refuses before touching WebAssembly.
// Whatever else goes wrong underneath (a stream that breaks, a WebAssembly trap, a JS
// allocation that fails) reaches the caller as one of these, with the original as `cause`.

export class GcamError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = 'GcamError';
    this.code = code;
  }
}

/** A wrong argument (ImageData size, class index, option), caught before any C call. */
export class GcamArgumentError extends GcamError {
  constructor(message, options) {
    super('GCAM_STATUS_INVALID_ARGUMENT', message, options);
    this.name = 'GcamArgumentError';
  }
}

/** A call on an explainer after dispose(). */
export class GcamDisposedError extends GcamError {
  constructor(what, options) {
    super('GCAM_STATUS_BAD_STATE', `${what}: this explainer has been disposed`, options);
    this.name = 'GcamDisposedError';
  }
}

/** Weights that could not be fetched or read (HTTP error, missing file, a broken stream). */
export class GcamWeightsError extends GcamError {
  constructor(message, options) {
    super('GCAM_STATUS_IO', message, options);
    this.name = 'GcamWeightsError';
  }
}

/** An image that could not be decoded; `code` says why: GCAM_STATUS_IMAGE_DECODE (not a
 * readable JPEG or PNG: corrupt, truncated, hostile), GCAM_STATUS_IMAGE_TOO_LARGE (over the
 * pixel limit or the decode budget), GCAM_STATUS_UNSUPPORTED_FORMAT (GIF, WebP, ...). */
export class GcamImageError extends GcamError {
  constructor(message, options, code = 'GCAM_STATUS_IMAGE_DECODE') {
    super(code, message, options);
    this.name = 'GcamImageError';
  }
}

/** What every call on an explainer throws once the WebAssembly engine has trapped: its memory
 * may be damaged, so nothing it computes can be trusted again. */
export const BROKEN_MESSAGE = 'the engine failed earlier: create a new explainer';

/**
 * The package's own files could not be loaded or started: a worker script, an Emscripten
 * loader or a .wasm (missing, not JavaScript / not WebAssembly, no answer within the time
 * limit). The message names the URL.
 */
export class GcamLoadError extends GcamError {
  constructor(message, options) {
    super('GCAM_STATUS_LOAD', message, options);
    this.name = 'GcamLoadError';
  }
}

/** A JS allocation that failed (a typed array or ArrayBuffer too large for this engine). */
function isJsAllocationFailure(e) {
  return e instanceof RangeError && /allocat|Invalid typed array length|Array buffer/i.test(e.message);
}

/**
 * Any error as a GcamError: GcamErrors pass; a WebAssembly trap (RuntimeError), or a pool
 * thread's crash, becomes GCAM_STATUS_BAD_STATE (the caller marks its engine broken); a failed JS allocation
 * GCAM_STATUS_OUT_OF_MEMORY; anything else GCAM_STATUS_BACKEND. `what` names the call.
 */
export function toGcamError(e, what) {
  if (e instanceof GcamError) return e;
  const reason = e && e.message ? e.message : String(e);
  if (typeof WebAssembly === 'object' && e instanceof WebAssembly.RuntimeError)
    return new GcamError('GCAM_STATUS_BAD_STATE', `${what}: the WebAssembly engine failed (${reason}): create a new explainer`,
                         { cause: e });
  // Emscripten's way out of a wait on the main thread when a pool thread crashed mid-run
  // (emscripten_futex_wait -> emscripten_unwind_to_js_event_loop): the run never finished
  if (e === 'unwind')
    return new GcamError('GCAM_STATUS_BAD_STATE', `${what}: a thread of the WebAssembly engine failed: create a new explainer`);
  if (isJsAllocationFailure(e)) return new GcamError('GCAM_STATUS_OUT_OF_MEMORY', `${what}: ${reason}`, { cause: e });
  return new GcamError('GCAM_STATUS_BACKEND', `${what}: ${reason}`, { cause: e });
}

const CLASSES = { GcamError, GcamArgumentError, GcamDisposedError, GcamWeightsError, GcamLoadError, GcamImageError };

/** A plain object that survives postMessage (the cause travels as its message). */
export function serializeError(err, what = 'worker') {
  const e = toGcamError(err, what);
  const cause = e.cause === undefined ? undefined : String(e.cause && e.cause.message ? e.cause.message : e.cause);
  return { name: e.name, code: e.code, message: e.message, cause };
}

/** The error again on the other side of postMessage, with its class (always a GcamError). */
export function deserializeError(e) {
  const options = e.cause === undefined ? undefined : { cause: new Error(e.cause) };
  const known = typeof e.name === 'string' && Object.prototype.hasOwnProperty.call(CLASSES, e.name);
  let err;
  if (!known || e.name === 'GcamError') err = new GcamError(e.code || 'GCAM_STATUS_BACKEND', e.message, options);
  else err = new CLASSES[e.name](e.message, options);
  if (e.code) err.code = e.code;
  // the messages of the subclasses are rebuilt by their constructors: keep the original
  err.message = e.message;
  return err;
}
