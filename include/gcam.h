/* gcam.h: Grad-CAM for VGG-family image classifiers, in C, for native and WebAssembly.
 *
 * gradcam-wasm runs a VGG network (VGG16 on ImageNet, or a small VGG) forward on an
 * image, back-propagates one class score by hand to the last convolution, and turns that
 * gradient into a Grad-CAM heatmap (Selvaraju et al. 2017) that says where the network
 * looked. It reproduces the Keras recipe of Chollet's "Deep Learning with Python" §5.4.3
 * number for number: bicubic resize to the model's input (as OpenCV's INTER_CUBIC),
 * the weights file's preprocessing, forward, gradient of the class score w.r.t. the last
 * conv layer's (post-ReLU) output, channel weights = spatial mean of that gradient,
 * map = ReLU(sum weight*activation), divided by its max; bilinear upsampling, JET colormap
 * and a 0.4*heat + 0.9*image blend.
 *
 * Usage (error handling shortened; every call returns a gcam_status):
 *
 *     gcam_model *model;
 *     gcam_model_params mp = gcam_model_default_params();
 *     if (gcam_model_load_from_memory(bytes, n_bytes, &mp, &model) != GCAM_STATUS_OK)
 *         fprintf(stderr, "%s\n", gcam_last_error());
 *
 *     gcam_state *state;
 *     gcam_state_create(model, &state);             // scratch for one image at a time
 *     gcam_state_forward_rgba(state, rgba, width, height, width * 4);
 *
 *     int32_t top[5];
 *     gcam_state_top_k(state, 5, top);              // class indices, best first
 *
 *     gcam_model_info info;
 *     gcam_model_get_info(model, &info);            // info.cam_width x info.cam_height (14x14)
 *     float *cam = malloc(sizeof(float) * info.cam_width * info.cam_height);
 *     float raw_max;
 *     gcam_state_explain(state, top[0], GCAM_SCORE_LOGIT, NULL, cam, &raw_max);
 *
 *     uint8_t *out = malloc((size_t)width * height * 4);
 *     gcam_overlay_params op = gcam_overlay_default_params();
 *     gcam_overlay_rgba(out, rgba, width, height, width * 4,
 *                       cam, info.cam_width, info.cam_height, &op);
 *
 *     gcam_state_free(state);
 *     gcam_model_free(model);
 *
 * One forward serves any number of classes: each gcam_state_explain() costs one backward
 * through the dense head only, never another forward.
 *
 * Objects. A gcam_model holds the weights and is immutable after loading: several states
 * (one per thread) may share it. A gcam_state holds the activations of one image; it is
 * not thread-safe. Neither allocates in the forward or backward pass.
 *
 * Errors. Every function returns GCAM_STATUS_OK or an error status; gcam_last_error()
 * then gives a one-line human reason (thread-local; valid until the next failing call on
 * the same thread). Nothing in the library prints or exits.
 *
 * Pixels are RGBA, 8 bits per channel, rows `stride` bytes apart; alpha is ignored on input.
 */
#ifndef GCAM_H
#define GCAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GCAM_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------------------------------- */
/* Status                                                                                   */

typedef enum gcam_status {
  GCAM_STATUS_OK = 0,
  GCAM_STATUS_INVALID_ARGUMENT = 1,    /* NULL pointer, size out of range, class out of range */
  GCAM_STATUS_OUT_OF_MEMORY = 2,
  GCAM_STATUS_BAD_FILE = 3,            /* not a gcam weights file (magic) or inconsistent header */
  GCAM_STATUS_UNSUPPORTED_VERSION = 4, /* a weights file of another format version */
  GCAM_STATUS_TRUNCATED = 5,           /* the data ends before the header says it should */
  GCAM_STATUS_CORRUPT = 6,             /* SHA-256 mismatch, bad offsets, NaN/Inf */
  GCAM_STATUS_BAD_CONFIG = 7,          /* tensor shapes contradict the network description */
  GCAM_STATUS_IMAGE_DECODE = 8,        /* not a decodable JPEG/PNG, or truncated */
  GCAM_STATUS_IMAGE_TOO_LARGE = 9,     /* width*height over the cap */
  GCAM_STATUS_UNSUPPORTED_FORMAT = 10, /* an image format we do not read (GIF, PSD, ...) */
  GCAM_STATUS_IO = 11,                 /* a file could not be opened or read */
  GCAM_STATUS_BACKEND = 12,            /* the requested backend is unavailable or failed */
  GCAM_STATUS_BAD_STATE = 13           /* calls out of order, e.g. explain before forward */
} gcam_status;

/* The name of a status ("GCAM_STATUS_TRUNCATED") */
const char *gcam_status_string(gcam_status status);

/* The reason for the last failure on this thread ("" if none). */
const char *gcam_last_error(void);

/* ---------------------------------------------------------------------------------------- */
/* Model                                                                                    */

typedef struct gcam_model gcam_model;
typedef struct gcam_model_loader gcam_model_loader;

typedef enum gcam_backend {
  GCAM_BACKEND_AUTO = 0,     /* the fastest built in: XNNPACK natively when the build has it
                              * (1.3x our kernels on one AVX-512 core), else PORTABLE */
  GCAM_BACKEND_PORTABLE = 1, /* our own SIMD kernels: the only backend in WebAssembly */
  GCAM_BACKEND_XNNPACK = 2   /* Debian's XNNPACK for the convolutions (native builds only) */
} gcam_backend;

/* How the 3x3 conv weights sit in memory (the portable backend; XNNPACK keeps its own).
 * VGG16, 224x224: conv weights 59 MB as f32 in the file. */
typedef enum gcam_memory {
  GCAM_MEMORY_FAST = 0,   /* packed for the kernels once, at load: Winograd F(4,3) weights take
                           * 4x the file's f32 size (VGG16: 236 MB), whatever the file's dtype,
                           * plus the canonical f32 weights (59 MB) that a backward through
                           * the convs packs from, layer by layer, as it runs */
  GCAM_MEMORY_COMPACT = 1 /* kept as the file has them (f32; f16 in f16 and int8 files: VGG16
                           * 59 MB / 29 MB) and transformed as each layer runs, into a scratch
                           * of at most 12 MB per state; slightly different rounding than FAST
                           * (the transform in f32 instead of double), same accuracy */
} gcam_memory;

typedef struct gcam_model_params {
  gcam_backend backend;
  gcam_memory memory;     /* default GCAM_MEMORY_FAST */
  /* The most the weights (plus one conv's loading buffer) may take in memory, in bytes; 0 =
   * no limit but the address space. A file whose header asks for more is refused with
   * GCAM_STATUS_OUT_OF_MEMORY before anything is allocated: the way for an app (or a fuzzer)
   * to bound what a file from a stranger can make it reserve. */
  uint64_t max_weight_bytes;
} gcam_model_params;

gcam_model_params gcam_model_default_params(void);

typedef enum gcam_preprocess {
  GCAM_PREPROCESS_CAFFE = 0, /* Keras "caffe": BGR, 0..255 minus the mean per channel */
  GCAM_PREPROCESS_TORCH = 1  /* torchvision: RGB, /255, minus mean, divided by std */
} gcam_preprocess;

typedef struct gcam_model_info {
  int32_t input_width, input_height; /* 224 x 224 for VGG16 */
  int32_t n_conv;                     /* 13 for VGG16 */
  int32_t n_dense;                    /* 3 for VGG16 */
  int32_t n_classes;                  /* 1000 for ImageNet */
  int32_t cam_width, cam_height;      /* size of the last conv map: 14 x 14 for VGG16 */
  int32_t cam_channels;               /* its channels: 512 for VGG16 */
  int32_t has_labels;                 /* 1 if gcam_model_label() returns names */
  gcam_preprocess preprocess;
  gcam_backend backend;               /* the backend actually in use (never AUTO) */
  int32_t winograd_tile;              /* the 3x3 convs' Winograd output tile this build runs:
                                       * 4 = F(4,3), 2 = F(2,3), 0 = direct (CMake option
                                       * GCAM_WINOGRAD_M); 0 with XNNPACK, which
                                       * picks its own */
  size_t weight_bytes;                /* bytes of the weights allocation: dense weights stay in
                                       * the file's storage type (f32, f16, int8 + scales) */
  char sha256[65];                    /* hex SHA-256 the file carries (of its bytes 64..end) */
  gcam_memory memory;                 /* the conv weights' layout in use */
} gcam_model_info;

/* Load a whole weights file held in memory (the primary path: the browser has no files).
 * The bytes are not retained. */
gcam_status gcam_model_load_from_memory(const void *data, size_t size,
                                        const gcam_model_params *params, gcam_model **out);

/* Load from a file path (a thin wrapper that streams the file through a loader). Only a
 * regular file is read: a FIFO, a device or a directory is refused (GCAM_STATUS_IO) before
 * a byte is read. */
gcam_status gcam_model_load_from_file(const char *path, const gcam_model_params *params,
                                      gcam_model **out);

/* Streaming load: feed the file in chunks of any size, in order, then finish. The weights
 * are written straight to their final place as they arrive, so the file is never held twice
 * in memory. `expected_size` is the file's total size if known (0 if not): a mismatch with the
 * header is reported at the first write instead of at the end. With a known size the weights
 * are allocated once, when the header has been read; with 0 the header's sizes are claims
 * not yet backed by bytes, and the memory grows with the payload actually received (at most
 * twice it, until an eighth of the weights has arrived; then all of them). Every size is computed in 64 bits: a network whose weights,
 * activations or scratch would not fit this build's address space (any one buffer over half
 * of it: 2 GiB in wasm32) is refused with GCAM_STATUS_OUT_OF_MEMORY before allocating. */
gcam_status gcam_model_loader_create(const gcam_model_params *params, uint64_t expected_size,
                                     gcam_model_loader **out);
gcam_status gcam_model_loader_write(gcam_model_loader *loader, const void *chunk, size_t size);
/* Validates the total size and the file's SHA-256, then yields the model. The loader is
 * freed whatever the outcome. */
gcam_status gcam_model_loader_finish(gcam_model_loader *loader, gcam_model **out);
void gcam_model_loader_free(gcam_model_loader *loader);

void gcam_model_free(gcam_model *model);

gcam_status gcam_model_get_info(const gcam_model *model, gcam_model_info *info);

/* The name of class `class_index` ("tabby, tabby cat"), or NULL when the file has no labels
 * or the index is out of range. */
const char *gcam_model_label(const gcam_model *model, int32_t class_index);

/* ---------------------------------------------------------------------------------------- */
/* State: one image at a time                                                               */

typedef struct gcam_state gcam_state;

gcam_status gcam_state_create(const gcam_model *model, gcam_state **out);
void gcam_state_free(gcam_state *state);

/* Threads. The library never creates threads: the host may lend it a pool through this hook,
 * and a state that has one splits its convolutions and dense layers into independent tasks
 * (blocks of output channels, pixels or Winograd tiles). Each output value is computed by the
 * same arithmetic as without a pool, so results are bit-identical whatever the thread count.
 * tools/threadpool.c implements the hook over pthreads. */
typedef void (*gcam_task_fn)(void *context, int32_t task);

typedef struct gcam_threadpool {
  /* Run fn(context, t) for every t in [0, n_tasks), in any order and on any threads, and
   * return when all are done. Tasks are independent. NULL run = serial. */
  void (*run)(void *pool, gcam_task_fn fn, void *context, int32_t n_tasks);
  void *pool;        /* passed back to run() */
  int32_t n_threads; /* how many tasks the pool runs at once: a hint for splitting */
} gcam_threadpool;

/* Lend the state a pool (copied; the pool itself must outlive its use by the state), or
 * NULL to go back to serial. Sizes per-task scratch for pool->n_threads at this call, so it
 * may return GCAM_STATUS_OUT_OF_MEMORY (the state then keeps its previous pool). Not during
 * a forward or explain on the same state. */
gcam_status gcam_state_set_threadpool(gcam_state *state, const gcam_threadpool *pool);

/* Resize the RGBA image to the model's input (bicubic, as cv2.INTER_CUBIC on uint8),
 * preprocess it as the weights file says, and run the network forward. */
gcam_status gcam_state_forward_rgba(gcam_state *state, const uint8_t *rgba, int32_t width,
                                    int32_t height, int32_t stride);

/* Run forward on an already preprocessed input tensor, (input_height, input_width, 3)
 * float32, channels in the order the model expects. For tests and for callers that do
 * their own preprocessing. */
gcam_status gcam_state_forward_tensor(gcam_state *state, const float *input);

/* After a forward: the logits (n_classes floats, owned by the state) and probabilities. */
gcam_status gcam_state_logits(const gcam_state *state, const float **logits);
gcam_status gcam_state_probabilities(const gcam_state *state, const float **probabilities);

/* The k best classes by logit, best first (ties: lower index first). 1 <= k <= n_classes. */
gcam_status gcam_state_top_k(const gcam_state *state, int32_t k, int32_t *indices);

typedef enum gcam_score {
  GCAM_SCORE_LOGIT = 0,  /* the class's pre-softmax output (Grad-CAM paper; default) */
  GCAM_SCORE_SOFTMAX = 1 /* the class's probability (Keras recipe in Chollet's book) */
} gcam_score;

/* Grad-CAM of one class for the image of the last forward.
 *   raw_map:  cam_height*cam_width floats, ReLU(sum_k alpha_k A_k), or NULL
 *   norm_map: cam_height*cam_width floats, raw_map / max(raw_map) (all zeros if the max is 0),
 *             or NULL
 *   raw_max:  the max of raw_map, or NULL
 * Maps are row-major. Costs one backward through the dense head. */
gcam_status gcam_state_explain(gcam_state *state, int32_t class_index, gcam_score score,
                               float *raw_map, float *norm_map, float *raw_max);

/* For tests and for callers who want the gradient itself: d(score)/d(last conv output),
 * (cam_height, cam_width, cam_channels) floats, and the activation it applies to. Valid
 * after gcam_state_explain() until the next call on the state; after
 * gcam_state_explain_ex() with a CAM method, the target layer's (its height, width and
 * channels: gcam_model_layer_info()). BAD_STATE after a pixel method. */
gcam_status gcam_state_last_gradient(const gcam_state *state, const float **grad,
                                     const float **activation);

/* ---------------------------------------------------------------------------------------- */
/* Layers                                                                                   */

/* Conv layers are numbered 0..n_conv-1 in forward order and named as Keras names VGG16's:
 * "block<b>_conv<i>", b counting blocks from 1 (a block ends at a 2x2 max-pool), i from 1
 * within the block. The names come from the network's structure, not from the file's tensor
 * names, so a small VGG's layers are named the same way. */
typedef struct gcam_layer_info {
  char name[32];          /* "block4_conv3" */
  int32_t width, height;  /* the conv's output size (= a CAM map's size): 28 x 28 for
                           * VGG16's block4_conv3 */
  int32_t channels;       /* its output channels: 512 for block4_conv3 */
} gcam_layer_info;

/* The index of the conv layer called `name` (exact, "block4_conv3"). An unknown name is
 * GCAM_STATUS_INVALID_ARGUMENT with a message listing the valid range ("no conv layer named
 * 'x' (this model has block1_conv1..block5_conv3)"). */
gcam_status gcam_model_layer_index(const gcam_model *model, const char *name, int32_t *index);

/* Name and output size of conv layer `index` (0..n_conv-1; else INVALID_ARGUMENT). */
gcam_status gcam_model_layer_info(const gcam_model *model, int32_t index, gcam_layer_info *info);

/* ---------------------------------------------------------------------------------------- */
/* State with a deeper backward                                                             */

/* What a backward from this state may reach. Deeper costs memory: a conv layer's output
 * must be kept (not overwritten by the next layer) for a backward to pass through it. */
#define GCAM_DEPTH_LAST_CONV (-1) /* the Grad-CAM family at the last conv only: today's memory */
#define GCAM_DEPTH_INPUT (-2)     /* down to the input: also the pixel-level methods */

typedef struct gcam_state_params {
  /* The deepest point a backward from this state may reach: GCAM_DEPTH_LAST_CONV (default),
   * a conv index 0..n_conv-1 (CAM methods at that layer or any above it), or
   * GCAM_DEPTH_INPUT (every layer, and the pixel-level methods). The state keeps every conv
   * output (and pool argmax) at or above that depth, plus gradient buffers, plus the
   * backward's weights of every conv above that depth: with GCAM_MEMORY_FAST (or XNNPACK)
   * one pre-packed copy per layer (VGG16 at GCAM_DEPTH_INPUT: 225 MiB), allocated by the
   * first explanation whose backward crosses a conv and filled as it reaches each layer;
   * with GCAM_MEMORY_COMPACT one buffer for the largest layer (38 MB), refilled as each
   * layer runs. gcam_state_memory_bytes() says what the state holds. */
  int32_t depth;
} gcam_state_params;

gcam_state_params gcam_state_default_params(void);

/* Create a state with these params (NULL = defaults). A depth out of range is
 * INVALID_ARGUMENT. gcam_state_create(m, out) == gcam_state_create_ex(m, NULL, out). */
gcam_status gcam_state_create_ex(const gcam_model *model, const gcam_state_params *params,
                                 gcam_state **out);

/* Bytes the state holds (activations, gradients, scratch), for apps that show memory. */
gcam_status gcam_state_memory_bytes(const gcam_state *state, uint64_t *bytes);

/* ---------------------------------------------------------------------------------------- */
/* Methods                                                                                  */

/* Names as pytorch-grad-cam spells them; formulas, references and costs in docs/methods.md.
 * The CAM family (GRADCAM..EIGENGRADCAM) makes a map of the target layer's size from its
 * activation and gradient; the pixel-level methods make a map of the model's input size from
 * the gradient at the input. */
typedef enum gcam_method {
  GCAM_METHOD_GRADCAM = 0,             /* "gradcam": Selvaraju et al. 2017 */
  GCAM_METHOD_HIRESCAM = 1,            /* "hirescam": Draelos & Carin 2020 */
  GCAM_METHOD_GRADCAM_ELEMENTWISE = 2, /* "gradcam-elementwise" */
  GCAM_METHOD_GRADCAM_PLUSPLUS = 3,    /* "gradcam++": Chattopadhyay et al. 2018 */
  GCAM_METHOD_XGRADCAM = 4,            /* "xgradcam": Fu et al. 2020 */
  GCAM_METHOD_LAYERCAM = 5,            /* "layercam": Jiang et al. 2021 */
  GCAM_METHOD_EIGENCAM = 6,            /* "eigencam": Muhammad & Yeasin 2020 (no gradient) */
  GCAM_METHOD_EIGENGRADCAM = 7,        /* "eigengradcam": first principal component of
                                        * gradient x activation; sign made deterministic */
  /* pixel-level: the map has the model's input size (224 x 224); need GCAM_DEPTH_INPUT */
  GCAM_METHOD_SALIENCY = 8,            /* "saliency": Simonyan et al. 2014, vanilla gradient */
  GCAM_METHOD_GUIDED_BACKPROP = 9,     /* "guided-backprop": Springenberg et al. 2015 */
  GCAM_METHOD_GUIDED_GRADCAM = 10,     /* "guided-gradcam": guided backprop x upsampled
                                        * Grad-CAM at `layer` (Selvaraju et al. 2017) */
  GCAM_METHOD_SMOOTHGRAD = 11,         /* "smoothgrad": Smilkov et al. 2017, seeded noise */
  GCAM_METHOD_INTEGRATED_GRADIENTS = 12, /* "integrated-gradients": Sundararajan et al. 2017,
                                          * from the black image */
  GCAM_METHOD_COUNT = 13
} gcam_method;

/* The method's name ("gradcam++"), or NULL if `method` is out of range. */
const char *gcam_method_name(gcam_method method);

/* The method called `name` (exact, lowercase, as gcam_method_name() spells it); an unknown
 * name is INVALID_ARGUMENT with a message listing the valid ones. */
gcam_status gcam_method_from_name(const char *name, gcam_method *out);

/* 1 for the pixel-level methods (SALIENCY..INTEGRATED_GRADIENTS), else 0. */
int gcam_method_is_pixel(gcam_method method);

typedef struct gcam_explain_params {
  gcam_method method;  /* default GCAM_METHOD_GRADCAM */
  int32_t layer;       /* target conv index, or -1 = the last conv (default). A CAM method's
                        * map is that layer's size; guided-gradcam's Grad-CAM factor is
                        * taken there; the other pixel methods ignore it */
  gcam_score score;    /* default GCAM_SCORE_LOGIT */
  int32_t samples;     /* smoothgrad: noisy copies, 1..1024 (default 25) */
  float noise;         /* smoothgrad: noise std as a fraction of (max - min) of the
                        * preprocessed input, in (0, 1] (default 0.15, Smilkov et al.) */
  int32_t steps;       /* integrated-gradients: 1..1024 (default 32) */
  uint64_t seed;       /* smoothgrad's noise (default 0) */
} gcam_explain_params;

gcam_explain_params gcam_explain_default_params(void);

/* The size of the map an explain with these params writes: the layer's (CAM methods) or the
 * input's (pixel methods). Checks the params as gcam_state_explain_ex() does: an unknown
 * method, a layer out of range or samples / steps / noise out of range are INVALID_ARGUMENT;
 * a layer or method deeper than the state's depth is BAD_STATE, with a message naming the
 * gcam_state_params.depth needed. */
gcam_status gcam_state_map_size(const gcam_state *state, const gcam_explain_params *params,
                                int32_t *width, int32_t *height);

/* One explanation of one class after a forward. raw_map / norm_map / raw_max as in
 * gcam_state_explain() (each may be NULL), sized by gcam_state_map_size(). After it the
 * state still holds the image's forward (smoothgrad / integrated-gradients run extra
 * forwards on noisy / scaled inputs and restore it), so any number of explains follow one
 * forward. params NULL = gcam_explain_default_params().
 * gcam_state_explain(s, c, score, raw, norm, max) == this with method gradcam, layer -1. */
gcam_status gcam_state_explain_ex(gcam_state *state, int32_t class_index,
                                  const gcam_explain_params *params, float *raw_map,
                                  float *norm_map, float *raw_max);

/* After an explain with a pixel method: d score / d input, (input_height, input_width, 3)
 * floats in the preprocessed tensor's channel order (for guided-backprop the guided
 * gradient; for smoothgrad its mean over samples; for integrated-gradients the attribution
 * (x - baseline) * mean gradient). Owned by the state, valid until the next call on it;
 * BAD_STATE if the last explain was not a pixel method. */
gcam_status gcam_state_input_gradient(const gcam_state *state, const float **grad);

/* ---------------------------------------------------------------------------------------- */
/* Faithfulness and sanity                                                                  */

typedef enum gcam_metric {
  GCAM_METRIC_DELETION = 0,      /* Petsiuk et al. 2018 (RISE): remove pixels, most salient
                                  * first; lower AUC is better */
  GCAM_METRIC_INSERTION = 1,     /* reveal pixels, most salient first, from the baseline;
                                  * higher AUC is better */
  GCAM_METRIC_RANDOMIZATION = 2  /* Adebayo et al. 2018: cascading re-initialisation */
} gcam_metric;

typedef enum gcam_baseline {
  GCAM_BASELINE_BLUR = 0, /* a Gaussian blur of the input (sigma in docs/methods.md) */
  GCAM_BASELINE_MEAN = 1  /* 0 after preprocessing: the dataset mean colour */
} gcam_baseline;

typedef struct gcam_evaluate_params {
  gcam_metric metric;
  int32_t steps;          /* deletion/insertion: curve points - 1, 1..1024 (default 32) */
  gcam_baseline baseline; /* deletion/insertion: what a removed pixel becomes (default BLUR) */
  uint64_t seed;          /* randomization: the re-initialisation's seed (default 0) */
} gcam_evaluate_params;

gcam_evaluate_params gcam_evaluate_default_params(void);

typedef struct gcam_evaluate_result {
  double auc;            /* deletion/insertion: area under the curve (trapezoid, x in [0,1]) */
  int32_t n_points;      /* points written to curve[] */
  /* deletion/insertion: the class probability after each step (steps + 1 points);
   * randomization: Spearman rank correlation of the map with the original after
   * re-initialising the top 1, 2, ... layers (dense layers first, then convs top-down:
   * n_dense + n_conv points). */
  double curve[1024 + 1];
} gcam_evaluate_result;

/* Evaluate an explanation of class `class_index` for the image of the state's last forward:
 * `map` (map_width x map_height, any size: bilinearly resized to the input) is the
 * explanation under test (normally the norm_map of an explain with `explain`), and
 * `explain` says how to recompute it (randomization). After it the state holds the image's
 * forward again. Randomization clones the model's weights once (memory: twice the
 * weights). */
gcam_status gcam_state_evaluate(gcam_state *state, int32_t class_index, const float *map,
                                int32_t map_width, int32_t map_height,
                                const gcam_explain_params *explain,
                                const gcam_evaluate_params *params, gcam_evaluate_result *out);

/* ---------------------------------------------------------------------------------------- */
/* Images and overlays                                                                      */

typedef enum gcam_colormap {
  GCAM_COLORMAP_JET = 0,  /* cv2.COLORMAP_JET */
  GCAM_COLORMAP_GRAY = 1  /* the heat value itself on all three channels */
} gcam_colormap;

typedef struct gcam_overlay_params {
  float heat_weight;    /* 0.4: weight of the colored heatmap */
  float image_weight;   /* 0.9: weight of the image */
  gcam_colormap colormap;
} gcam_overlay_params;

gcam_overlay_params gcam_overlay_default_params(void);

/* Blend a heatmap over an RGBA image, as the Keras recipe does with OpenCV:
 * heat = cv2.resize(map, (width, height)) (bilinear), u8 = uint8(255 * heat),
 * colored = applyColorMap(u8, JET), out = saturate(heat_weight*colored + image_weight*image).
 * `map` is (map_height, map_width) in [0, 1]. out is width*height*4 bytes, tightly packed,
 * alpha copied from the input. params must not be NULL; width*height and
 * map_width*map_height must not exceed GCAM_MAX_IMAGE_PIXELS. */
gcam_status gcam_overlay_rgba(uint8_t *out, const uint8_t *rgba, int32_t width, int32_t height,
                              int32_t stride, const float *map, int32_t map_width,
                              int32_t map_height, const gcam_overlay_params *params);

/* The upsampled heatmap alone as RGBA (colored, opaque): out is width*height*4 bytes.
 * Same size limits as gcam_overlay_rgba(). */
gcam_status gcam_heatmap_rgba(uint8_t *out, int32_t width, int32_t height, const float *map,
                              int32_t map_width, int32_t map_height, gcam_colormap colormap);

/* Largest image accepted by gcam_image_decode(), in pixels. */
#define GCAM_MAX_IMAGE_PIXELS ((int64_t)1 << 26) /* 67 Mpixel: 8192 x 8192 */

/* Decode a JPEG or PNG held in memory into tightly packed RGBA. Other formats are refused
 * (GCAM_STATUS_UNSUPPORTED_FORMAT); dimensions over max_pixels are refused before any
 * pixel memory is allocated (max_pixels <= 0 means GCAM_MAX_IMAGE_PIXELS; larger values are
 * clamped to it). Before the decoder (stb_image) reads a byte, the file's structure is
 * checked: every JPEG segment and PNG chunk lies inside the file, JPEG Huffman tables hold at
 * most 256 codes and exist before a scan uses them, PNG image data is no larger than the
 * declared image can need, and the memory the decode takes (estimated from the declared
 * size) is within 1.5 GiB; anything else is GCAM_STATUS_IMAGE_DECODE or _IMAGE_TOO_LARGE
 * (SECURITY.md). EXIF orientation is not applied. Free *rgba with gcam_image_free(). */
gcam_status gcam_image_decode(const void *data, size_t size, int64_t max_pixels, uint8_t **rgba,
                              int32_t *width, int32_t *height);
void gcam_image_free(uint8_t *rgba);

#ifdef __cplusplus
}
#endif

#endif /* GCAM_H */
