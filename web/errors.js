// errors.js: the errors the wrapper throws. Every one is a GcamError with a `.code`:
// the C status name for failures inside the library ("GCAM_STATUS_CORRUPT", with the C
// message), or the wrapper's own codes for what it refuses before touching WebAssembly.

export class GcamError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'GcamError';
    this.code = code;
  }
}

/** A wrong argument (ImageData size, class index, option), caught before any C call. */
export class GcamArgumentError extends GcamError {
  constructor(message) {
    super('GCAM_STATUS_INVALID_ARGUMENT', message);
    this.name = 'GcamArgumentError';
  }
}

/** A call on an explainer after dispose(). */
export class GcamDisposedError extends GcamError {
  constructor(what) {
    super('GCAM_STATUS_BAD_STATE', `${what}: this explainer has been disposed`);
    this.name = 'GcamDisposedError';
  }
}

/** Weights that could not be fetched or read (HTTP error, missing file). */
export class GcamWeightsError extends GcamError {
  constructor(message) {
    super('GCAM_STATUS_IO', message);
    this.name = 'GcamWeightsError';
  }
}

/**
 * The package's own files could not be loaded or started: a worker script, an Emscripten
 * loader or a .wasm (missing, not JavaScript / not WebAssembly, no answer within the time
 * limit). The message names the URL.
 */
export class GcamLoadError extends GcamError {
  constructor(message) {
    super('GCAM_STATUS_LOAD', message);
    this.name = 'GcamLoadError';
  }
}

const CLASSES = { GcamError, GcamArgumentError, GcamDisposedError, GcamWeightsError, GcamLoadError };

/** A plain object that survives postMessage. */
export function serializeError(err) {
  if (err instanceof GcamError) return { name: err.name, code: err.code, message: err.message };
  return { name: 'Error', code: undefined, message: String(err && err.message ? err.message : err) };
}

/** The error again on the other side of postMessage, with its class. */
export function deserializeError(e) {
  let err;
  if (e.name === 'GcamError') err = new GcamError(e.code, e.message);
  else if (CLASSES[e.name]) err = new CLASSES[e.name](e.message);
  else err = new Error(e.message);
  if (err instanceof GcamError && e.code) err.code = e.code;
  // the messages of the subclasses are rebuilt by their constructors: keep the original
  err.message = e.message;
  return err;
}
