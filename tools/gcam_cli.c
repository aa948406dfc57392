/* gcam_cli.c: the native command-line tool.
 *
 *   gcam explain [--weights W] --image I [--class N | --top-k K] [--score logit|softmax]
 *                [--method M[,M...]|all] [--layer L[,L...]|all] [--samples N] [--noise F]
 *                [--steps N] [--seed N] [--map-out PATH]
 *                [--metric deletion|insertion|randomization] [--metric-steps N]
 *                [--baseline blur|mean]
 *                [--overlay OUT.png] [--heatmap OUT.png] [--json] [--backend auto|portable|xnnpack]
 *                [--threads N]
 *   gcam info [--weights W]
 *
 * Without --weights the built-in default model is used (the small Fashion-MNIST VGG the
 * project trains). Errors: exit status 1 (2 for usage) and one line on stderr. */
#define _POSIX_C_SOURCE 200809L /* open(O_CLOEXEC), fstat: also under -std=c11 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gcam.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBIW_WINDOWS_UTF8
#include "stb_image_write.h"

#include "default_model.h"
#include "threadpool.h" /* the pthread pool behind the library's thread hook */

#define GCAM_CLI_MAX_FILE ((size_t)1 << 30)

typedef struct cli_args {
  const char *command;
  const char *weights, *image, *overlay, *heatmap, *map_out;
  int32_t class_index; /* -1: by rank */
  int32_t top_k;
  gcam_score score;
  gcam_backend backend;
  int json;
  int32_t threads;     /* tasks at once: the library's pool size (1: serial) */
  gcam_method methods[GCAM_METHOD_COUNT]; /* --method, in the order given */
  int32_t n_methods;
  const char *layers;  /* --layer as given (names, indices, all): resolved once the model is known */
  gcam_explain_params explain; /* samples, noise, steps, seed */
  int32_t metric;      /* a gcam_metric, or -1: none */
  gcam_evaluate_params evaluate;
  int detailed;        /* --method, --layer or --metric given: the text output names each map */
} cli_args;

#define CLI_MAX_LIST 64 /* entries of a --layer list (VGG16 has 13 convs) */

static int cli_oom; /* make_maps' OUT_OF_MEMORY was its own malloc's, not the library's */

/* A command-line word for a message: printable ASCII only, anything else as '?' (a
 * terminal must never receive raw bytes from an argument), cut at 64 characters. */
static const char *printable(const char *s) {
  static char buf[68];
  size_t n = 0;
  for (; s[n] && n < 64; n++)
    buf[n] = (unsigned char)s[n] >= 0x20 && (unsigned char)s[n] < 0x7f ? s[n] : '?';
  if (s[n]) buf[n++] = '~';
  buf[n] = 0;
  return buf;
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "gcam: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see gcam --help)\n");
  return 2;
}

static int fail(gcam_status st) {
  fprintf(stderr, "gcam: %s (%s)\n", gcam_last_error(), gcam_status_string(st));
  return 1;
}

static void print_help(void) {
  printf(
      "gcam %s: Grad-CAM heatmaps for VGG image classifiers\n\n"
      "usage:\n"
      "  gcam explain [--weights W] --image I [--class N | --top-k K]\n"
      "               [--score logit|softmax] [--method M[,M...]|all] [--layer L[,L...]|all]\n"
      "               [--samples N] [--noise F] [--steps N] [--seed N] [--map-out PATH]\n"
      "               [--metric deletion|insertion|randomization] [--metric-steps N]\n"
      "               [--baseline blur|mean] [--overlay OUT.png] [--heatmap OUT.png]\n"
      "               [--json] [--backend auto|portable|xnnpack] [--threads N]\n"
      "  gcam info [--weights W]\n\n"
      "  --weights W    a gcam weights file (weights/convert.py makes one from Keras .h5 or\n"
      "                 torchvision .pth); default: the built-in small Fashion-MNIST VGG\n"
      "  --image I      a JPEG or PNG\n"
      "  --class N      explain class N (default: the top class)\n"
      "  --top-k K      explain the K best classes (one forward pass for all)\n"
      "  --score S      logit (default, as the Grad-CAM paper) or softmax (as Keras' recipe)\n"
      "  --method M     gradcam (default), hirescam, gradcam-elementwise, gradcam++, xgradcam,\n"
      "                 layercam, eigencam, eigengradcam, or the pixel-level saliency,\n"
      "                 guided-backprop, guided-gradcam, smoothgrad, integrated-gradients;\n"
      "                 a comma-separated list or all (docs/methods.md)\n"
      "  --layer L      the target conv layer: a name (block4_conv3) or an index from 0;\n"
      "                 a comma-separated list or all; default the last conv\n"
      "  --samples N    smoothgrad's noisy copies, 1..1024 (default 25)\n"
      "  --noise F      smoothgrad's noise, a fraction of the input's range in (0, 1] (0.15)\n"
      "  --steps N      integrated-gradients' steps, 1..1024 (default 32)\n"
      "  --seed N       the seed of smoothgrad's noise and of randomization (default 0)\n"
      "  --map-out P    write the raw map as little-endian float32, row-major; with several\n"
      "                 methods or layers P is a prefix: P.<method>.<layer>.f32\n"
      "  --metric M     deletion, insertion (AUC of the class probability as pixels go or come\n"
      "                 in the map's order) or randomization (rank correlation with the map\n"
      "                 as the layers are re-initialised top-down)\n"
      "  --metric-steps N  deletion/insertion steps, 1..1024 (default 32)\n"
      "  --baseline B   what deletion/insertion put instead of a pixel: blur (default) or mean\n"
      "  --overlay F    write the heatmap blended over the image (0.4 heat + 0.9 image) as PNG\n"
      "  --heatmap F    write the colored heatmap alone, at the image's size, as PNG\n"
      "  --json         print one JSON object: predictions and explanations\n"
      "  --threads N    threads for the network (default: the number of online CPUs)\n",
      GCAM_VERSION_STRING);
}

static int parse_int(const char *s, int32_t lo, int32_t hi, int32_t *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return 0;
  *out = (int32_t)v;
  return 1;
}

/* A whole number in 0..2^64-1 (strtoull would take "-1" as 2^64-1). */
static int parse_u64(const char *s, uint64_t *out) {
  char *end;
  if (*s < '0' || *s > '9') return 0;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return 0;
  *out = (uint64_t)v;
  return 1;
}

/* --method's list: "all" or names separated by commas, each once. */
static int parse_methods(const char *val, cli_args *a) {
  a->n_methods = 0;
  if (!strcmp(val, "all")) {
    for (int32_t m = 0; m < GCAM_METHOD_COUNT; m++) a->methods[a->n_methods++] = (gcam_method)m;
    return 0;
  }
  const char *p = val;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char name[40];
    gcam_method m = GCAM_METHOD_GRADCAM;
    int ok = len > 0 && len < sizeof name;
    if (ok) {
      memcpy(name, p, len);
      name[len] = 0;
      ok = gcam_method_from_name(name, &m) == GCAM_STATUS_OK;
    }
    if (!ok)
      return usage_error("--method: unknown method '%s' (gradcam, hirescam, gradcam-elementwise, "
                         "gradcam++, xgradcam, layercam, eigencam, eigengradcam, saliency, "
                         "guided-backprop, guided-gradcam, smoothgrad, integrated-gradients, or all)",
                         printable(val));
    for (int32_t i = 0; i < a->n_methods; i++)
      if (a->methods[i] == m) return usage_error("--method names '%s' twice", gcam_method_name(m));
    a->methods[a->n_methods++] = m;
    if (!comma) return 0;
    p = comma + 1;
  }
}

static int parse_args(int argc, char **argv, cli_args *a) {
  memset(a, 0, sizeof *a);
  a->class_index = -1;
  a->top_k = 0;
  a->score = GCAM_SCORE_LOGIT;
  a->backend = GCAM_BACKEND_AUTO;
  a->threads = gcam_pthreadpool_online_cpus();
  a->methods[0] = GCAM_METHOD_GRADCAM;
  a->n_methods = 1;
  a->explain = gcam_explain_default_params();
  a->metric = -1;
  a->evaluate = gcam_evaluate_default_params();
  int metric_steps = 0, baseline = 0; /* given: they need --metric */
  if (argc < 2) return usage_error("%s", "missing command: explain or info");
  a->command = argv[1];
  if (strcmp(a->command, "explain") && strcmp(a->command, "info"))
    return usage_error("unknown command '%s'", printable(a->command));
  static const char *const valued[] = {"--weights", "--image", "--overlay", "--heatmap",
                                        "--class",   "--top-k", "--score",   "--backend",
                                        "--threads", "--method", "--layer", "--samples",
                                        "--noise", "--steps", "--seed", "--map-out",
                                        "--metric", "--metric-steps", "--baseline"};
  for (int i = 2; i < argc; i++) {
    const char *opt = argv[i];
    if (!strcmp(opt, "--json")) {
      a->json = 1;
      continue;
    }
    int known = 0;
    for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) known |= !strcmp(opt, valued[k]);
    if (!known) return usage_error("unknown option %s", printable(opt));
    if (i + 1 >= argc) return usage_error("%s needs a value", opt);
    const char *val = argv[++i];
    if (!strcmp(opt, "--weights")) a->weights = val;
    else if (!strcmp(opt, "--image")) a->image = val;
    else if (!strcmp(opt, "--overlay")) a->overlay = val;
    else if (!strcmp(opt, "--heatmap")) a->heatmap = val;
    else if (!strcmp(opt, "--class")) {
      if (!parse_int(val, 0, INT32_MAX, &a->class_index))
        return usage_error("--class takes a class index >= 0, not '%s'", val);
    } else if (!strcmp(opt, "--top-k")) {
      if (!parse_int(val, 1, 1 << 20, &a->top_k))
        return usage_error("--top-k takes a whole number >= 1, not '%s'", val);
    } else if (!strcmp(opt, "--score")) {
      if (!strcmp(val, "logit")) a->score = GCAM_SCORE_LOGIT;
      else if (!strcmp(val, "softmax")) a->score = GCAM_SCORE_SOFTMAX;
      else return usage_error("--score is logit or softmax, not '%s'", val);
    } else if (!strcmp(opt, "--backend")) {
      if (!strcmp(val, "auto")) a->backend = GCAM_BACKEND_AUTO;
      else if (!strcmp(val, "portable")) a->backend = GCAM_BACKEND_PORTABLE;
      else if (!strcmp(val, "xnnpack")) a->backend = GCAM_BACKEND_XNNPACK;
      else return usage_error("--backend is auto, portable or xnnpack, not '%s'", val);
    } else if (!strcmp(opt, "--threads")) {
      if (!parse_int(val, 1, 1024, &a->threads))
        return usage_error("--threads takes a whole number from 1 to 1024, not '%s'", val);
    } else if (!strcmp(opt, "--method")) {
      int rc = parse_methods(val, a);
      if (rc) return rc;
      a->detailed = 1;
    } else if (!strcmp(opt, "--layer")) {
      if (!*val) return usage_error("%s", "--layer takes a conv layer's name or index, not ''");
      a->layers = val;
      a->detailed = 1;
    } else if (!strcmp(opt, "--samples")) {
      if (!parse_int(val, 1, 1024, &a->explain.samples))
        return usage_error("--samples takes a whole number from 1 to 1024, not '%s'", printable(val));
    } else if (!strcmp(opt, "--steps")) {
      if (!parse_int(val, 1, 1024, &a->explain.steps))
        return usage_error("--steps takes a whole number from 1 to 1024, not '%s'", printable(val));
    } else if (!strcmp(opt, "--noise")) {
      char *end;
      errno = 0;
      float f = strtof(val, &end);
      if (errno || end == val || *end || !(f > 0.0f && f <= 1.0f))
        return usage_error("--noise takes a number in (0, 1], not '%s'", printable(val));
      a->explain.noise = f;
    } else if (!strcmp(opt, "--seed")) {
      if (!parse_u64(val, &a->explain.seed) || !parse_u64(val, &a->evaluate.seed))
        return usage_error("--seed takes a whole number from 0 to 2^64-1, not '%s'", printable(val));
    } else if (!strcmp(opt, "--map-out")) {
      if (!*val) return usage_error("%s", "--map-out takes a file name, not ''");
      a->map_out = val;
    } else if (!strcmp(opt, "--metric")) {
      if (!strcmp(val, "deletion")) a->metric = GCAM_METRIC_DELETION;
      else if (!strcmp(val, "insertion")) a->metric = GCAM_METRIC_INSERTION;
      else if (!strcmp(val, "randomization")) a->metric = GCAM_METRIC_RANDOMIZATION;
      else return usage_error("--metric is deletion, insertion or randomization, not '%s'",
                              printable(val));
      a->evaluate.metric = (gcam_metric)a->metric;
      a->detailed = 1;
    } else if (!strcmp(opt, "--metric-steps")) {
      if (!parse_int(val, 1, 1024, &a->evaluate.steps))
        return usage_error("--metric-steps takes a whole number from 1 to 1024, not '%s'",
                           printable(val));
      metric_steps = 1;
    } else if (!strcmp(opt, "--baseline")) {
      if (!strcmp(val, "blur")) a->evaluate.baseline = GCAM_BASELINE_BLUR;
      else if (!strcmp(val, "mean")) a->evaluate.baseline = GCAM_BASELINE_MEAN;
      else return usage_error("--baseline is blur or mean, not '%s'", printable(val));
      baseline = 1;
    }
  }
  if ((metric_steps || baseline) && a->metric < 0)
    return usage_error("%s needs --metric", metric_steps ? "--metric-steps" : "--baseline");
  if (a->metric == GCAM_METRIC_RANDOMIZATION && (metric_steps || baseline))
    return usage_error("%s is for --metric deletion or insertion",
                       metric_steps ? "--metric-steps" : "--baseline");
  if (a->class_index >= 0 && a->top_k)
    return usage_error("%s", "--class and --top-k exclude each other");
  if (a->map_out && a->top_k > 1)
    return usage_error("%s", "--map-out writes one class's maps: use --class N or --top-k 1");
  if (!strcmp(a->command, "explain") && !a->image)
    return usage_error("%s", "explain needs --image");
  return 0;
}

/* The whole file in memory, for the image decoder. Only a regular file, opened without
 * blocking (a FIFO with no writer would block open() itself) and read to the size it had
 * when opened: /dev/zero or a pipe is refused before a byte is read. */
static gcam_status read_file(const char *path, unsigned char **data, size_t *size) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "gcam: cannot open %s: %s\n", path, strerror(errno));
    return GCAM_STATUS_IO;
  }
  struct stat sb;
  const char *why = NULL;
  if (fstat(fd, &sb) != 0) why = strerror(errno);
  else if (!S_ISREG(sb.st_mode)) why = "not a regular file";
  else if ((uint64_t)sb.st_size > GCAM_CLI_MAX_FILE) why = "file over 1 GiB";
  unsigned char *buf = NULL;
  size_t n = 0;
  if (!why) {
    const size_t want = (size_t)sb.st_size;
    buf = malloc(want + 1);
    if (!buf) why = "out of memory";
    while (buf && n < want) {
      ssize_t got = read(fd, buf + n, want - n);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) {
        why = strerror(errno);
        break;
      }
      if (got == 0) break; /* shrank while we read: take what is there */
      n += (size_t)got;
    }
  }
  close(fd);
  if (why) {
    free(buf);
    fprintf(stderr, "gcam: cannot read %s: %s\n", path, why);
    return GCAM_STATUS_IO;
  }
  *data = buf, *size = n;
  return GCAM_STATUS_OK;
}

/* Call only after no_model() said there is one to load. The library's XNNPACK backend runs on
 * one thread, so `auto` with several threads asks for our kernels, which use them all. */
static gcam_status load_model(const cli_args *a, gcam_model **model) {
  gcam_model_params mp = gcam_model_default_params();
  mp.backend = a->backend == GCAM_BACKEND_AUTO && a->threads > 1 ? GCAM_BACKEND_PORTABLE
                                                                 : a->backend;
  if (a->weights) return gcam_model_load_from_file(a->weights, &mp, model);
  size_t size;
  const unsigned char *bytes = gcam_default_model(&size);
  return gcam_model_load_from_memory(bytes, size, &mp, model);
}

/* 1 (after saying so) when no --weights was given and this build has no built-in model */
static int no_model(const cli_args *a) {
  size_t size;
  if (a->weights || gcam_default_model(&size)) return 0;
  fprintf(stderr, "gcam: this build has no built-in model: pass --weights FILE\n");
  return 1;
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static int cmd_info(const cli_args *a) {
  gcam_model *model;
  gcam_status st = load_model(a, &model);
  if (st) return fail(st);
  gcam_model_info info;
  gcam_model_get_info(model, &info);
  printf("input %dx%d, %d conv + %d dense layers, %d classes%s, Grad-CAM map %dx%dx%d\n",
         info.input_width, info.input_height, info.n_conv, info.n_dense, info.n_classes,
         info.has_labels ? " (labelled)" : "", info.cam_width, info.cam_height,
         info.cam_channels);
  printf("preprocess %s, %zu bytes of weights, sha256 %s\n",
         info.preprocess == GCAM_PREPROCESS_CAFFE ? "caffe (BGR - mean)" : "torch (RGB, mean/std)",
         info.weight_bytes, info.sha256);
  if (info.backend == GCAM_BACKEND_XNNPACK)
    printf("backend xnnpack (Debian's XNNPACK for the convolutions, one thread)%s\n",
           a->backend == GCAM_BACKEND_AUTO ? ", chosen by --backend auto" : "");
  else
    printf("backend portable (our kernels, Winograd tile %d, %d thread%s)%s\n",
           info.winograd_tile, a->threads, a->threads > 1 ? "s" : "",
           a->backend == GCAM_BACKEND_AUTO ? ", chosen by --backend auto" : "");
  /* the names --layer takes, with the size of a CAM map there */
  printf("conv layers (--layer):");
  for (int32_t i = 0; i < info.n_conv; i++) {
    gcam_layer_info li;
    if (gcam_model_layer_info(model, i, &li) == GCAM_STATUS_OK)
      printf("%s %d %s %dx%dx%d", i ? "," : "", i, li.name, li.width, li.height, li.channels);
  }
  printf("\n");
  gcam_model_free(model);
  return 0;
}

typedef struct explanation {
  int32_t class_index;
  gcam_method method;
  int32_t layer;       /* the conv index, or -1: a pixel map that uses no layer */
  int32_t width, height;
  float raw_max;
  float *map;          /* normalised */
  float *raw;          /* for --map-out, else NULL */
  gcam_evaluate_result *metric; /* for --metric, else NULL */
} explanation;

/* The name of an explanation's layer: the conv's, or "input" for a pixel map of no layer. */
static const char *layer_name(const gcam_model *model, int32_t layer, gcam_layer_info *info) {
  if (layer < 0 || gcam_model_layer_info(model, layer, info)) return "input";
  return info->name;
}

static const char *metric_name(int32_t metric) {
  return metric == GCAM_METRIC_DELETION ? "deletion"
         : metric == GCAM_METRIC_INSERTION ? "insertion" : "randomization";
}

static void print_json(const gcam_model *model, const gcam_model_info *info, const int32_t *top,
                       int32_t n_top, const float *logits, const float *probs,
                       const explanation *ex, int32_t n_ex, const cli_args *a) {
  printf("{\"predictions\": [");
  for (int32_t i = 0; i < n_top; i++) {
    int32_t c = top[i];
    printf("%s{\"index\": %d, ", i ? ", " : "", c);
    if (info->has_labels) {
      printf("\"label\": ");
      print_json_string(gcam_model_label(model, c));
      printf(", ");
    }
    printf("\"probability\": %.9g, \"logit\": %.9g}", probs[c], logits[c]);
  }
  printf("], \"explanations\": [");
  for (int32_t e = 0; e < n_ex; e++) {
    gcam_layer_info li;
    printf("%s{\"class\": %d, ", e ? ", " : "", ex[e].class_index);
    if (info->has_labels) {
      printf("\"label\": ");
      print_json_string(gcam_model_label(model, ex[e].class_index));
      printf(", ");
    }
    printf("\"method\": \"%s\", \"layer\": ", gcam_method_name(ex[e].method));
    print_json_string(layer_name(model, ex[e].layer, &li));
    printf(", \"map_width\": %d, \"map_height\": %d", ex[e].width, ex[e].height);
    printf(", \"raw_max\": %.9g, \"heatmap\": {\"width\": %d, \"height\": %d, \"data\": [",
           ex[e].raw_max, ex[e].width, ex[e].height);
    int32_t hw = ex[e].width * ex[e].height;
    for (int32_t p = 0; p < hw; p++) printf("%s%.9g", p ? ", " : "", ex[e].map[p]);
    printf("]}");
    if (ex[e].metric) {
      const gcam_evaluate_result *r = ex[e].metric;
      printf(", \"metric\": {\"name\": \"%s\", \"auc\": %.17g, \"curve\": [", metric_name(a->metric),
             r->auc);
      for (int32_t p = 0; p < r->n_points; p++) printf("%s%.17g", p ? ", " : "", r->curve[p]);
      printf("]}");
    }
    printf("}");
  }
  printf("]}\n");
}

/* One line per map (with --method, --layer or --metric): what was made, and the metric. */
static void print_maps(const gcam_model *model, const explanation *ex, int32_t n_ex,
                       const cli_args *a) {
  for (int32_t e = 0; e < n_ex; e++) {
    gcam_layer_info li;
    printf("class %d %s at %s: map %dx%d, raw max %.6g", ex[e].class_index,
           gcam_method_name(ex[e].method), layer_name(model, ex[e].layer, &li), ex[e].width,
           ex[e].height, ex[e].raw_max);
    if (ex[e].metric && a->metric == GCAM_METRIC_RANDOMIZATION) {
      printf(", randomization rank correlations");
      for (int32_t p = 0; p < ex[e].metric->n_points; p++) printf(" %.4f", ex[e].metric->curve[p]);
    } else if (ex[e].metric) {
      printf(", %s AUC %.6f (%d points)", metric_name(a->metric), ex[e].metric->auc,
             ex[e].metric->n_points);
    }
    printf("\n");
  }
}

static void print_text(const gcam_model *model, const int32_t *top, int32_t n_top,
                       const float *logits, const float *probs) {
  for (int32_t i = 0; i < n_top; i++) {
    const char *label = gcam_model_label(model, top[i]);
    printf("%d. class %d%s%s  p=%.4f  logit=%.4f\n", i + 1, top[i], label ? " " : "",
           label ? label : "", probs[top[i]], logits[top[i]]);
  }
}

/* The PNG is encoded in memory and written with every error checked: stb's own file
 * writer ignores fwrite's and fclose's results (a full disk said "written"). */
static int write_png(const char *path, const uint8_t *rgba, int32_t w, int32_t h) {
  int len = 0;
  unsigned char *png = stbi_write_png_to_mem(rgba, w * 4, w, h, 4, &len);
  if (!png) {
    fprintf(stderr, "gcam: cannot encode %s: out of memory\n", path);
    return 1;
  }
  FILE *f = fopen(path, "wb");
  int err = f ? 0 : errno;
  if (f && fwrite(png, 1, (size_t)len, f) != (size_t)len) err = errno ? errno : EIO;
  if (f && fflush(f) != 0 && !err) err = errno ? errno : EIO;
  if (f && fclose(f) != 0 && !err) err = errno ? errno : EIO;
  STBIW_FREE(png);
  if (err) {
    fprintf(stderr, "gcam: cannot write %s: %s\n", path, strerror(err));
    return 1;
  }
  return 0;
}

static int write_images(const cli_args *a, const uint8_t *rgba, int32_t w, int32_t h,
                        const explanation *ex) {
  uint8_t *out = malloc((size_t)w * h * 4);
  if (!out) {
    fprintf(stderr, "gcam: out of memory for a %dx%d image\n", w, h);
    return 1;
  }
  int rc = 0;
  gcam_status st;
  if (a->overlay) {
    gcam_overlay_params op = gcam_overlay_default_params();
    st = gcam_overlay_rgba(out, rgba, w, h, w * 4, ex->map, ex->width, ex->height, &op);
    rc = st ? fail(st) : write_png(a->overlay, out, w, h);
  }
  if (!rc && a->heatmap) {
    st = gcam_heatmap_rgba(out, w, h, ex->map, ex->width, ex->height, GCAM_COLORMAP_JET);
    rc = st ? fail(st) : write_png(a->heatmap, out, w, h);
  }
  free(out);
  return rc;
}

/* --layer's list resolved against the model: conv indices, each once; default the last conv.
 * 0, or (after one stderr line naming --layer) 2. */
static int resolve_layers(const cli_args *a, const gcam_model *model, int32_t n_conv,
                          int32_t *layers, int32_t *n_layers) {
  *n_layers = 0;
  if (!a->layers) {
    layers[(*n_layers)++] = n_conv - 1;
    return 0;
  }
  if (!strcmp(a->layers, "all")) {
    for (int32_t i = 0; i < n_conv && i < CLI_MAX_LIST; i++) layers[(*n_layers)++] = i;
    return 0;
  }
  const char *p = a->layers;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    char word[40];
    int32_t index = -1;
    if (len == 0 || len >= sizeof word) return usage_error("--layer: '%s' is not a layer list", printable(a->layers));
    memcpy(word, p, len);
    word[len] = 0;
    if (word[0] >= '0' && word[0] <= '9') {
      if (!parse_int(word, 0, n_conv - 1, &index)) {
        fprintf(stderr, "gcam: --layer: index %s is out of range (this model has conv layers 0..%d)\n",
                printable(word), n_conv - 1);
        return 2;
      }
    } else if (gcam_model_layer_index(model, word, &index) != GCAM_STATUS_OK) {
      const char *why = gcam_last_error();
      if (why && *why) fprintf(stderr, "gcam: --layer: %s\n", why);
      else fprintf(stderr, "gcam: --layer: no conv layer named '%s'\n", printable(word));
      return 2;
    }
    for (int32_t i = 0; i < *n_layers; i++)
      if (layers[i] == index) return usage_error("--layer names layer %s twice", printable(word));
    if (*n_layers == CLI_MAX_LIST) return usage_error("%s", "--layer: too many layers");
    layers[(*n_layers)++] = index;
    if (!comma) return 0;
    p = comma + 1;
  }
}

/* The shallowest depth the requests need: the input for a pixel method, else the lowest
 * target layer (the last conv's is the default state, today's memory). */
static int32_t needed_depth(const cli_args *a, const int32_t *layers, int32_t n_layers,
                            int32_t n_conv) {
  for (int32_t m = 0; m < a->n_methods; m++)
    if (gcam_method_is_pixel(a->methods[m])) return GCAM_DEPTH_INPUT;
  int32_t lowest = n_conv - 1;
  for (int32_t i = 0; i < n_layers; i++)
    if (layers[i] < lowest) lowest = layers[i];
  return lowest == n_conv - 1 ? GCAM_DEPTH_LAST_CONV : lowest;
}

/* The raw map as little-endian float32, whatever the host's byte order, every error checked. */
static int write_map(const char *path, const float *map, int32_t n) {
  FILE *f = fopen(path, "wb");
  int err = f ? 0 : errno;
  for (int32_t i = 0; f && !err && i < n; i++) {
    uint32_t u;
    memcpy(&u, &map[i], 4);
    unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 24)};
    if (fwrite(b, 1, 4, f) != 4) err = errno ? errno : EIO;
  }
  if (f && fflush(f) != 0 && !err) err = errno ? errno : EIO;
  if (f && fclose(f) != 0 && !err) err = errno ? errno : EIO;
  if (err) {
    fprintf(stderr, "gcam: cannot write %s: %s\n", path, strerror(err));
    return 1;
  }
  return 0;
}

/* --map-out's files: PATH itself for one map, else PATH.<method>.<layer>.f32 for each. */
static int write_maps(const cli_args *a, const gcam_model *model, const explanation *ex,
                      int32_t n_ex) {
  for (int32_t e = 0; e < n_ex; e++) {
    char path[4096];
    gcam_layer_info li;
    const char *name = a->map_out;
    if (n_ex > 1) {
      int n = snprintf(path, sizeof path, "%s.%s.%s.f32", a->map_out,
                       gcam_method_name(ex[e].method), layer_name(model, ex[e].layer, &li));
      if (n < 0 || (size_t)n >= sizeof path) {
        fprintf(stderr, "gcam: --map-out: the prefix is too long\n");
        return 1;
      }
      name = path;
    }
    if (write_map(name, ex[e].raw, ex[e].width * ex[e].height)) return 1;
  }
  return 0;
}

/* Every (class, method, layer) map of the request, from the one forward the state holds;
 * a pixel method that uses no layer is made once per class. */
static gcam_status make_maps(const cli_args *a, gcam_state *state, const int32_t *classes,
                             int32_t n_classes, const int32_t *layers, int32_t n_layers,
                             explanation *ex, int32_t *n_ex) {
  gcam_status st = GCAM_STATUS_OK;
  *n_ex = 0;
  for (int32_t c = 0; c < n_classes; c++)
    for (int32_t m = 0; m < a->n_methods; m++) {
      gcam_method method = a->methods[m];
      int uses_layer = !gcam_method_is_pixel(method) || method == GCAM_METHOD_GUIDED_GRADCAM;
      for (int32_t l = 0; l < (uses_layer ? n_layers : 1); l++) {
        explanation *x = &ex[(*n_ex)++];
        gcam_explain_params p = a->explain;
        p.method = method;
        p.layer = uses_layer ? layers[l] : -1;
        p.score = a->score;
        x->class_index = classes[c];
        x->method = method;
        x->layer = p.layer;
        if ((st = gcam_state_map_size(state, &p, &x->width, &x->height))) return st;
        size_t n = (size_t)x->width * (size_t)x->height;
        x->map = malloc(sizeof(float) * n);
        x->raw = a->map_out ? malloc(sizeof(float) * n) : NULL;
        x->metric = a->metric >= 0 ? malloc(sizeof *x->metric) : NULL;
        if (!x->map || (a->map_out && !x->raw) || (a->metric >= 0 && !x->metric)) {
          cli_oom = 1;
          return GCAM_STATUS_OUT_OF_MEMORY;
        }
        if ((st = gcam_state_explain_ex(state, x->class_index, &p, x->raw, x->map, &x->raw_max)))
          return st;
        if (x->metric &&
            (st = gcam_state_evaluate(state, x->class_index, x->map, x->width, x->height, &p,
                                      &a->evaluate, x->metric)))
          return st;
      }
    }
  return st;
}

static int cmd_explain(const cli_args *a) {
  unsigned char *file = NULL;
  size_t file_size = 0;
  if (read_file(a->image, &file, &file_size)) return 1;
  uint8_t *rgba = NULL;
  int32_t w = 0, h = 0;
  gcam_status st = gcam_image_decode(file, file_size, GCAM_MAX_IMAGE_PIXELS, &rgba, &w, &h);
  free(file);
  if (st) return fail(st);

  gcam_model *model = NULL;
  gcam_state *state = NULL;
  explanation *ex = NULL;
  int32_t *top = NULL, n_ex = 0;
  int32_t layers[CLI_MAX_LIST], n_layers = 0;
  int rc = 1;
  gcam_pthreadpool *pool = a->threads > 1 ? gcam_pthreadpool_create(a->threads) : NULL;
  if (a->threads > 1 && !pool) {
    fprintf(stderr, "gcam: cannot start %d threads\n", a->threads);
    goto done;
  }
  gcam_threadpool hook = gcam_pthreadpool_hook(pool);
  if ((st = load_model(a, &model))) {
    rc = fail(st);
    goto done;
  }
  gcam_model_info info;
  gcam_model_get_info(model, &info);
  if ((rc = resolve_layers(a, model, info.n_conv, layers, &n_layers))) goto done;
  rc = 1;
  gcam_state_params sp = gcam_state_default_params();
  sp.depth = needed_depth(a, layers, n_layers, info.n_conv);
  if ((st = gcam_state_create_ex(model, &sp, &state)) ||
      (st = gcam_state_set_threadpool(state, &hook)) ||
      (st = gcam_state_forward_rgba(state, rgba, w, h, w * 4))) {
    rc = fail(st);
    goto done;
  }
  if (a->class_index >= info.n_classes) {
    fprintf(stderr, "gcam: class %d is outside the model's %d classes (0..%d)\n", a->class_index,
            info.n_classes, info.n_classes - 1);
    goto done;
  }
  if (a->top_k > info.n_classes) {
    fprintf(stderr, "gcam: --top-k %d is more than the model's %d classes\n", a->top_k,
            info.n_classes);
    goto done;
  }
  int32_t n_top = a->top_k > 5 ? a->top_k : 5;
  if (n_top > info.n_classes) n_top = info.n_classes;
  const float *logits, *probs;
  top = malloc(sizeof(int32_t) * (size_t)n_top);
  int32_t n_classes = a->class_index >= 0 ? 1 : a->top_k ? a->top_k : 1;
  ex = calloc((size_t)n_classes * (size_t)a->n_methods * (size_t)n_layers, sizeof *ex);
  if (!top || !ex) {
    fprintf(stderr, "gcam: out of memory\n");
    goto done;
  }
  gcam_state_top_k(state, n_top, top);
  gcam_state_logits(state, &logits);
  gcam_state_probabilities(state, &probs);
  int32_t one_class = a->class_index;
  st = make_maps(a, state, a->class_index >= 0 ? &one_class : top, n_classes, layers, n_layers, ex,
                 &n_ex);
  if (st) {
    if (cli_oom) fprintf(stderr, "gcam: out of memory for the maps\n");
    else rc = fail(st);
    goto done;
  }
  if (a->json) print_json(model, &info, top, n_top, logits, probs, ex, n_ex, a);
  else print_text(model, top, n_top, logits, probs);
  if (!a->json && a->detailed) print_maps(model, ex, n_ex, a);
  rc = (a->overlay || a->heatmap) ? write_images(a, rgba, w, h, &ex[0]) : 0;
  if (!rc && a->map_out) rc = write_maps(a, model, ex, n_ex);
  if (!rc && !a->json) {
    if (a->overlay) printf("overlay of class %d written to %s\n", ex[0].class_index, a->overlay);
    if (a->heatmap) printf("heatmap of class %d written to %s\n", ex[0].class_index, a->heatmap);
    if (a->map_out)
      printf("%d raw map%s written to %s%s\n", n_ex, n_ex > 1 ? "s" : "", a->map_out,
             n_ex > 1 ? ".<method>.<layer>.f32" : "");
  }
done:
  for (int32_t e = 0; ex && e < n_ex; e++) {
    free(ex[e].map);
    free(ex[e].raw);
    free(ex[e].metric);
  }
  free(ex);
  free(top);
  gcam_state_free(state);
  gcam_pthreadpool_destroy(pool);
  gcam_model_free(model);
  gcam_image_free(rgba);
  return rc;
}

int main(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    print_help();
    return 0;
  }
  if (argc >= 2 && !strcmp(argv[1], "--version")) {
    printf("gcam %s\n", GCAM_VERSION_STRING);
    return 0;
  }
  cli_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc;
  if (no_model(&a)) return 1;
  rc = !strcmp(a.command, "info") ? cmd_info(&a) : cmd_explain(&a);
  /* stdout to a full disk or a closed pipe is a failure too, not a silent exit 0 */
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "gcam: cannot write the output: %s\n", strerror(errno ? errno : EIO));
    return 1;
  }
  return rc;
}
