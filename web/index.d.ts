// Type declarations for gradcam-wasm's JS API (web/index.js).

/** Anything with RGBA pixels: a DOM ImageData, or { data, width, height } in Node. */
export interface ImageDataLike {
  readonly data: Uint8ClampedArray | Uint8Array; // width * height * 4 bytes, RGBA
  readonly width: number;
  readonly height: number;
}

/** What `overlay` and `decodeImage` return in Node (no DOM): an ImageData's shape. */
export interface PlainImageData {
  readonly data: Uint8ClampedArray;
  readonly width: number;
  readonly height: number;
  readonly colorSpace: 'srgb';
}

/**
 * What `overlay` and `decodeImage` return: a real `ImageData` in browsers and workers (so
 * `ctx.putImageData(await explainer.overlay(...), 0, 0)` type-checks), `PlainImageData` in Node.
 * The type follows the program's libraries: `ImageData` when `lib` has "dom" or "webworker"
 * (then a Node run still gets the plain object, which has the same fields), else PlainImageData.
 */
export type ImageDataResult =
  typeof globalThis extends { ImageData: { prototype: infer T } } ? T : PlainImageData;

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
  /** the folder holding gcam-simd.wasm, gcam-scalar.wasm and gcam-simd-threads.wasm (a CDN's
   * copy of the package's web/dist/), a .wasm URL, or one URL per build; default: the
   * package's own files, wherever your bundler put them (see BUNDLERS.md) */
  wasmUrl?: string | URL | { simd?: string | URL; scalar?: string | URL; threads?: string | URL };
  /** called as the weights arrive (at most every MiB, and at the start and the end) */
  onProgress?: (progress: Progress) => void;
  /** run in a Web Worker: default true in browsers, false in Node (where `true` is a
   * GcamArgumentError: Node has no Web Workers) */
  worker?: boolean;
  /** the worker script, default the package's worker.js (a real URL, for strict CSPs), as
   * your bundler emitted it; started as a module worker */
  workerUrl?: string | URL;
  /** how long the worker, each Emscripten loader and each .wasm may take to answer (a download:
   * each chunk of it) before createExplainer rejects with a GcamLoadError; default 20000 */
  loadTimeoutMs?: number;
  /** force the SIMD (true) or scalar (false) build; default: detect */
  simd?: boolean;
  /** threads for the forward and backward passes: 'auto' (default: the cores, at most 8) or
   * 1..16. More than 1 needs SharedArrayBuffer: Node, or a cross-origin isolated page
   * (served with COOP: same-origin and COEP: require-corp); otherwise 1 is used, and a
   * count above 1 asked for explicitly gets one console.warn saying why. */
  threads?: number | 'auto';
  /** how the conv weights sit in the heap: 'compact' (the default in browsers: as the file
   * stores them, VGG16 59 MB f32 / 29 MB f16 and int8, transformed as each layer runs, at
   * 0.95-1.06x the time of 'fast' as measured) or 'fast' (the default in Node: packed for the
   * kernels at load, VGG16 236 MB whatever the file's dtype); see README "Memory" */
  memory?: 'compact' | 'fast';
  /** the most the wasm heap may grow to, in MB (32..4096; default 4096): past it loading or
   * explaining fails with a GcamError GCAM_STATUS_OUT_OF_MEMORY saying how much was needed */
  maxMemoryMB?: number;
  /** how deep a backward from this explainer may go, which sets what it keeps in memory:
   * 'last' (default: the CAM methods at the last conv only, the least memory), a conv layer
   * (name or index: the CAM methods at that layer or any above it), or 'input' (every layer
   * and the pixel-level methods; the most memory: `info.stateBytes` says how much). With
   * memory 'fast', the first explain() whose backward crosses a conv layer also allocates
   * the backward's packed conv weights, kept for the next ones (VGG16 at 'input': 226 MB;
   * the result's `memoryBytes` shows them; if the heap cannot hold them that explain() is a
   * GcamError GCAM_STATUS_OUT_OF_MEMORY and the explainer stays usable). An explain() that
   * needs more depth throws a GcamArgumentError naming this option. */
  depth?: 'last' | 'input' | LayerName | number;
}

/** A conv layer's Keras-style name, "block<b>_conv<i>" (see `ModelInfo.layers`). */
export type LayerName = string;

/** The explanation methods, named as pytorch-grad-cam spells them (docs/methods.md gives each
 * one's formula, reference and cost). The CAM methods make a map of the target layer's size;
 * the pixel-level ones ('saliency' on) a map of the model's input size and need
 * createExplainer({ depth: 'input' }). */
export type Method =
  | 'gradcam' | 'hirescam' | 'gradcam-elementwise' | 'gradcam++' | 'xgradcam' | 'layercam'
  | 'eigencam' | 'eigengradcam'
  | 'saliency' | 'guided-backprop' | 'guided-gradcam' | 'smoothgrad' | 'integrated-gradients';

/** Every Method, in the C library's order. */
export const methods: readonly Method[];

/** A conv layer of the model, in forward order. */
export interface LayerInfo {
  /** "block4_conv3" */
  name: LayerName;
  /** its output size: the size of a CAM map at this layer */
  width: number;
  height: number;
  channels: number;
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
  /** the map divided by its max (all zeros if the max is 0), row-major */
  heatmap: Float32Array;
  /** the map's size: the target layer's for the CAM methods (14 x 14 at VGG16's last conv,
   * 28 x 28 at block4_conv3), the model's input size for the pixel-level ones (224 x 224) */
  width: number;
  height: number;
  /** the max of the map before normalisation */
  rawMax: number;
  /** how the map was made, so that evaluate() can make it again: */
  method: Method;
  /** the target layer's name; 'input' for a pixel-level map that uses none (all but
   * 'guided-gradcam') */
  layer: LayerName | 'input';
  score: 'logit' | 'softmax';
  samples: number;
  noise: number;
  steps: number;
  seed: number;
}

/** What evaluate() needs of an explanation: its map, its class and (for 'randomization')
 * how to make it again; an Explanation has all of it. */
export interface EvaluatedMap {
  classIndex: number;
  heatmap: Float32Array;
  width: number;
  height: number;
  method?: Method;
  layer?: LayerName | 'input' | number;
  score?: 'logit' | 'softmax';
  samples?: number;
  noise?: number;
  steps?: number;
  seed?: number;
}

export interface EvaluateOptions {
  /** 'deletion' (default; Petsiuk et al. 2018: the class probability as pixels are removed,
   * the map's most salient first; lower AUC is better), 'insertion' (as pixels are revealed
   * from the baseline; higher is better) or 'randomization' (Adebayo et al. 2018: the
   * Spearman rank correlation of the map with itself as the dense layers, then the convs,
   * are re-initialised top-down; a faithful method's falls). Randomization copies the
   * weights once while it runs (the heap then holds them twice: mind maxMemoryMB); it
   * recomputes the map with the explanation's own method and layer, so it needs the depth
   * they need. Each deletion/insertion step is one forward pass. */
  metric?: 'deletion' | 'insertion' | 'randomization';
  /** deletion/insertion: the curve's points - 1, 1..1024; default 32 */
  steps?: number;
  /** deletion/insertion: what a removed pixel becomes: 'blur' (default: a Gaussian blur of
   * the image) or 'mean' (the dataset's mean colour) */
  baseline?: 'blur' | 'mean';
  /** randomization: the re-initialisation's seed, an integer in [0, 2^53); default 0 */
  seed?: number;
}

export interface EvaluateResult {
  metric: 'deletion' | 'insertion' | 'randomization';
  /** deletion/insertion: the area under the curve (trapezoid, x in [0, 1]) */
  auc: number;
  /** deletion/insertion: the class probability after each step (steps + 1 points);
   * randomization: one rank correlation per re-initialised layer (nDense + nConv points) */
  curve: Float64Array;
}

export interface ExplainOptions {
  /** the class(es) to explain; default (or null): the top prediction */
  classIndex?: number | number[] | null;
  /** how many predictions to return; default 5 (or the number of classes if fewer) */
  topK?: number;
  /** differentiate the logit (default, Grad-CAM paper) or the softmax probability (Keras) */
  score?: 'logit' | 'softmax';
  /** how to explain: default 'gradcam' */
  method?: Method;
  /** the target conv layer, by name ('block4_conv3') or index (0 = the first conv); default
   * (or null) the last conv. The CAM map has this layer's size; 'guided-gradcam' takes its
   * Grad-CAM factor here; the other pixel-level methods ignore it */
  layer?: LayerName | number | null;
  /** 'smoothgrad': the noisy copies averaged, 1..1024; default 25 */
  samples?: number;
  /** 'smoothgrad': the noise's standard deviation as a fraction of the preprocessed input's
   * range, in (0, 1]; default 0.15 (Smilkov et al.) */
  noise?: number;
  /** 'integrated-gradients': the steps from the black image, 1..1024; default 32 */
  steps?: number;
  /** 'smoothgrad': the noise's seed, an integer in [0, 2^53); default 0 */
  seed?: number;
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
  /** bytes of the wasm heap in use after this call (model, state, the explainer's buffers) */
  memoryBytes: number;
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
  /** the conv layers, in forward order: what `layer` and `depth` name */
  layers: LayerInfo[];
  /** the depth the explainer was created with: 'last', 'input' or a layer's name */
  depth: 'last' | 'input' | LayerName;
  /** bytes the state holds for that depth (activations kept for the backward, gradients) */
  stateBytes: number;
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
  /**
   * How faithful `explanation` (of `image`) is: a deletion or insertion curve and its AUC, or
   * the model-parameter randomization sanity check. Runs the forward of `image` unless it is
   * the last one. Throws GcamArgumentError for a bad option or explanation, before any work.
   */
  evaluate(image: ImageDataLike, explanation: EvaluatedMap, options?: EvaluateOptions): Promise<EvaluateResult>;
  /** The heatmap blended over the image at the image's own size, by the C core (the same
   * pixels as `gcam explain --overlay`). Any map size: a CAM map or a 224 x 224 pixel map. */
  overlay(image: ImageDataLike, explanation: Explanation, options?: OverlayOptions): Promise<ImageDataResult>;
  /** Decode a PNG or JPEG to RGBA. In a browser the browser's own decoder (createImageBitmap
   * and a canvas) does it when it can; otherwise (Node, another format, a file the browser
   * refuses), or with `{ decoder: 'library' }`, the library's (the CLI's: stb_image behind a
   * validating pass). Failures reject with a GcamImageError. The browser's pixels match the
   * library's exactly for opaque PNGs; JPEGs differ by a few levels (each browser has its own
   * IDCT), semi-transparent pixels by the canvas's premultiplied rounding, EXIF-rotated JPEGs
   * come upright, and a browser that perturbs canvas reads (anti-fingerprinting) adds its
   * noise: ask for the library's decoder where that matters. */
  decodeImage(bytes: ArrayBuffer | Uint8Array, options?: DecodeImageOptions): Promise<ImageDataResult>;
  /** Free the weights and the WebAssembly instance (joins its threads, terminates the
   * worker). Later calls throw GcamDisposedError. */
  dispose(): void;
}

export interface DecodeImageOptions {
  /** 'auto' (default): the browser's decoder when there is one, else the library's;
   * 'library': always the library's (the same pixels as the CLI and Node). */
  decoder?: 'auto' | 'library';
}

export function createExplainer(options: ExplainerOptions): Promise<Explainer>;

/** true when this JS engine runs WebAssembly SIMD (the SIMD build is then used). */
export function simdSupported(): boolean;

/** The C library's status names (include/gcam.h), and the wrapper's GCAM_STATUS_LOAD
 * (GcamLoadError): what every GcamError's `code` is. */
export type GcamStatusName =
  | 'GCAM_STATUS_INVALID_ARGUMENT'
  | 'GCAM_STATUS_OUT_OF_MEMORY'
  | 'GCAM_STATUS_BAD_FILE'
  | 'GCAM_STATUS_UNSUPPORTED_VERSION'
  | 'GCAM_STATUS_TRUNCATED'
  | 'GCAM_STATUS_CORRUPT'
  | 'GCAM_STATUS_BAD_CONFIG'
  | 'GCAM_STATUS_IMAGE_DECODE'
  | 'GCAM_STATUS_IMAGE_TOO_LARGE'
  | 'GCAM_STATUS_UNSUPPORTED_FORMAT'
  | 'GCAM_STATUS_IO'
  | 'GCAM_STATUS_BACKEND'
  | 'GCAM_STATUS_BAD_STATE'
  | 'GCAM_STATUS_LOAD';

/** Every error the package throws (every promise it rejects). `code` is the C status name
 * ("GCAM_STATUS_CORRUPT") for failures inside the library, with the library's message.
 * Whatever failed underneath (a stream, a WebAssembly trap, a JS allocation) is `cause`.
 * - GCAM_STATUS_OUT_OF_MEMORY: the wasm heap (or a JS allocation) could not grow; the
 *   explainer is unchanged and a smaller image may still work.
 * - GCAM_STATUS_BAD_STATE: the explainer cannot be used again: disposed (GcamDisposedError),
 *   or its WebAssembly engine trapped (`cause` is the RuntimeError), after which every call
 *   throws a GcamError with the message "the engine failed earlier: create a new explainer"
 *   rather than answer from memory that may be damaged. */
export class GcamError extends Error {
  constructor(code: GcamStatusName | (string & {}), message: string, options?: { cause?: unknown });
  code: GcamStatusName | (string & {});
  cause?: unknown;
}
/** A wrong argument, caught in JS before any WebAssembly call. code: GCAM_STATUS_INVALID_ARGUMENT */
export class GcamArgumentError extends GcamError {
  constructor(message: string, options?: { cause?: unknown });
}
/** A call after dispose(). code: GCAM_STATUS_BAD_STATE */
export class GcamDisposedError extends GcamError {
  constructor(what: string, options?: { cause?: unknown });
}
/** The weights could not be fetched or read: an HTTP error, a missing file, a stream that
 * errored or a connection that dropped mid-way (`cause`: the stream's own error), a Response
 * whose body was already read. code: GCAM_STATUS_IO */
export class GcamWeightsError extends GcamError {
  constructor(message: string, options?: { cause?: unknown });
}
/** An image that could not be decoded. code: GCAM_STATUS_IMAGE_DECODE (corrupt, truncated,
 * hostile), GCAM_STATUS_IMAGE_TOO_LARGE (over 8192 x 8192 pixels or the decode budget) or
 * GCAM_STATUS_UNSUPPORTED_FORMAT (not a JPEG or PNG) */
export class GcamImageError extends GcamError {
  constructor(message: string, options?: { cause?: unknown }, code?: GcamStatusName);
}
/** The package's own files could not be loaded or started within loadTimeoutMs: the worker
 * script, an Emscripten loader or a .wasm (missing, not JavaScript / not WebAssembly, no
 * answer). The message names the URL. code: GCAM_STATUS_LOAD */
export class GcamLoadError extends GcamError {
  constructor(message: string, options?: { cause?: unknown });
}
