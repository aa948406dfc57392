// Type declarations for gradcam-wasm's JS API (web/index.js).

/** Anything with RGBA pixels: a DOM ImageData, or { data, width, height } in Node. */
export interface ImageDataLike {
  readonly data: Uint8ClampedArray | Uint8Array; // width * height * 4 bytes, RGBA
  readonly width: number;
  readonly height: number;
}

/** What `overlay` and `decodeImage` return: an ImageData in browsers, the same shape in Node. */
export interface ImageDataResult {
  readonly data: Uint8ClampedArray;
  readonly width: number;
  readonly height: number;
}

export interface Progress {
  /** bytes of the weights file read so far */
  loaded: number;
  /** the file's size, or 0 while it is unknown (no content-length) */
  total: number;
}

/**
 * Where the weights come from. They are streamed into the WebAssembly heap in chunks:
 * never through Emscripten's file system, never held twice.
 * - string | URL: fetched (in Node a string without a URL scheme is a file path, and a
 *   file: URL is read from disk)
 * - ArrayBuffer | Uint8Array: copied in chunk by chunk
 * - Blob (a File the user picked) | Response (e.g. from the Cache API)
 */
export type WeightsSource = string | URL | ArrayBuffer | ArrayBufferView | Blob | Response;

export interface ExplainerOptions {
  weights: WeightsSource;
  /** the folder holding gcam-simd.wasm and gcam-scalar.wasm, a .wasm URL, or one URL per
   * build; default: the package's own dist/ folder */
  wasmUrl?: string | URL | { simd?: string | URL; scalar?: string | URL; threads?: string | URL };
  /** called as the weights arrive (at most every MiB, and at the start and the end) */
  onProgress?: (progress: Progress) => void;
  /** run in a Web Worker: default true in browsers, false in Node */
  worker?: boolean;
  /** the worker script, default the package's worker.js (a real URL, for strict CSPs) */
  workerUrl?: string | URL;
  /** force the SIMD (true) or scalar (false) build; default: detect */
  simd?: boolean;
  /** threads for the forward and backward passes: 'auto' (default: the cores, at most 8) or
   * 1..16. More than 1 needs SharedArrayBuffer: Node, or a cross-origin isolated page
   * (served with COOP: same-origin and COEP: require-corp); otherwise 1 is used. */
  threads?: number | 'auto';
  /** how the conv weights sit in the heap: 'fast' (default: packed for the kernels at load,
   * VGG16 236 MB) or 'compact' (as the file stores them, 59 MB f32 / 29 MB f16 and int8,
   * transformed as each layer runs; see README "Memory") */
  memory?: 'compact' | 'fast';
  /** the most the wasm heap may grow to, in MB (32..4096; default 4096): past it loading or
   * explaining fails with a GcamError GCAM_STATUS_OUT_OF_MEMORY saying how much was needed */
  maxMemoryMB?: number;
}

export interface Prediction {
  index: number;
  /** the class name from the weights file, or null when it has none */
  label: string | null;
  probability: number;
  logit: number;
}

export interface Explanation {
  classIndex: number;
  /** the Grad-CAM map divided by its max (all zeros if the max is 0), row-major */
  heatmap: Float32Array;
  /** the map's size: the last conv layer's, 14 x 14 for VGG16 */
  width: number;
  height: number;
  /** the max of the map before normalisation */
  rawMax: number;
}

export interface ExplainOptions {
  /** the class(es) to explain; default: the top prediction */
  classIndex?: number | number[];
  /** how many predictions to return; default 5 (or the number of classes if fewer) */
  topK?: number;
  /** differentiate the logit (default, Grad-CAM paper) or the softmax probability (Keras) */
  score?: 'logit' | 'softmax';
}

export interface ExplainResult {
  /** the topK classes by logit, best first */
  predictions: Prediction[];
  /** one per explained class, in the order asked */
  explanations: Explanation[];
  /** all the logits */
  logits: Float32Array;
  /** true when the forward pass of the previous call was reused: the image had the same
   * size and the same pixels (compared byte for byte with the copy the explainer keeps of the
   * last image), so only the backward through the dense head ran */
  forwardReused: boolean;
  timings: { forwardMs: number; explainMs: number };
}

export interface OverlayOptions {
  /** weight of the colored heatmap, default 0.4 */
  alpha?: number;
  /** weight of the image, default 0.9 */
  imageWeight?: number;
  colormap?: 'jet' | 'gray';
}

export interface ModelInfo {
  inputWidth: number;
  inputHeight: number;
  nConv: number;
  nDense: number;
  nClasses: number;
  camWidth: number;
  camHeight: number;
  camChannels: number;
  hasLabels: boolean;
  preprocess: 'caffe' | 'torch';
  backend: number;
  weightBytes: number;
  /** hex SHA-256 the weights file carries (of its bytes 64..end) */
  sha256: string;
  /** threads actually in use */
  threads: number;
  /** whether the SIMD build is running */
  simd: boolean;
  /** the conv weights' layout in use */
  memory: 'compact' | 'fast';
  /** bytes of the wasm heap in use after loading (model, state, buffers) */
  memoryBytes: number;
  /** the most bytes in use while the weights streamed in */
  loadPeakBytes: number;
  /** size of the wasm memory (grown on demand, never shrunk) */
  wasmMemoryBytes: number;
}

export interface Explainer {
  readonly info: ModelInfo;
  /** class names (empty when the file has none) */
  readonly labels: (string | null)[];
  /**
   * Forward pass (unless the image is the last one explained: see `forwardReused`), the top
   * predictions and one Grad-CAM per class. Throws GcamArgumentError for a wrong image size
   * or a class out of range, before any work.
   */
  explain(image: ImageDataLike, options?: ExplainOptions): Promise<ExplainResult>;
  /** The heatmap blended over the image at the image's own size, by the C core (the same
   * pixels as `gcam explain --overlay`). */
  overlay(image: ImageDataLike, explanation: Explanation, options?: OverlayOptions): Promise<ImageDataResult>;
  /** Decode a PNG or JPEG with the library's decoder (the CLI's). */
  decodeImage(bytes: ArrayBuffer | Uint8Array): Promise<ImageDataResult>;
  /** Free the weights and the WebAssembly instance (terminates the worker). Later calls throw
   * GcamDisposedError. */
  dispose(): void;
}

export function createExplainer(options: ExplainerOptions): Promise<Explainer>;

/** true when this JS engine runs WebAssembly SIMD (the SIMD build is then used). */
export function simdSupported(): boolean;

/** Every error the package throws. `code` is the C status name ("GCAM_STATUS_CORRUPT") for
 * failures inside the library, with the library's message. */
export class GcamError extends Error {
  constructor(code: string, message: string);
  code: string;
}
/** A wrong argument, caught in JS before any WebAssembly call. code: GCAM_STATUS_INVALID_ARGUMENT */
export class GcamArgumentError extends GcamError {
  constructor(message: string);
}
/** A call after dispose(). code: GCAM_STATUS_BAD_STATE */
export class GcamDisposedError extends GcamError {
  constructor(what: string);
}
/** The weights could not be fetched or read. code: GCAM_STATUS_IO */
export class GcamWeightsError extends GcamError {
  constructor(message: string);
}
