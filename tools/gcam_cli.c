/* gcam_cli.c: the native command-line tool.
 *
 *   gcam explain [--weights W] --image I [--class N | --top-k K] [--score logit|softmax]
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
  const char *weights, *image, *overlay, *heatmap;
  int32_t class_index; /* -1: by rank */
  int32_t top_k;
  gcam_score score;
  gcam_backend backend;
  int json;
  int32_t threads;     /* tasks at once: the library's pool size (1: serial) */
} cli_args;

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
      "               [--score logit|softmax] [--overlay OUT.png] [--heatmap OUT.png]\n"
      "               [--json] [--backend auto|portable|xnnpack] [--threads N]\n"
      "  gcam info [--weights W]\n\n"
      "  --weights W    a gcam weights file (weights/convert.py makes one from Keras .h5 or\n"
      "                 torchvision .pth); default: the built-in small Fashion-MNIST VGG\n"
      "  --image I      a JPEG or PNG\n"
      "  --class N      explain class N (default: the top class)\n"
      "  --top-k K      explain the K best classes (one forward pass for all)\n"
      "  --score S      logit (default, as the Grad-CAM paper) or softmax (as Keras' recipe)\n"
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

static int parse_args(int argc, char **argv, cli_args *a) {
  memset(a, 0, sizeof *a);
  a->class_index = -1;
  a->top_k = 0;
  a->score = GCAM_SCORE_LOGIT;
  a->backend = GCAM_BACKEND_AUTO;
  a->threads = gcam_pthreadpool_online_cpus();
  if (argc < 2) return usage_error("%s", "missing command: explain or info");
  a->command = argv[1];
  if (strcmp(a->command, "explain") && strcmp(a->command, "info"))
    return usage_error("unknown command '%s'", printable(a->command));
  static const char *const valued[] = {"--weights", "--image", "--overlay", "--heatmap",
                                        "--class",   "--top-k", "--score",   "--backend",
                                        "--threads"};
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
    }
  }
  if (a->class_index >= 0 && a->top_k)
    return usage_error("%s", "--class and --top-k exclude each other");
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
  gcam_model_free(model);
  return 0;
}

typedef struct explanation {
  int32_t class_index;
  float raw_max;
  float *map;
} explanation;

static void print_json(const gcam_model *model, const gcam_model_info *info, const int32_t *top,
                       int32_t n_top, const float *logits, const float *probs,
                       const explanation *ex, int32_t n_ex) {
  int32_t hw = info->cam_width * info->cam_height;
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
    printf("%s{\"class\": %d, ", e ? ", " : "", ex[e].class_index);
    if (info->has_labels) {
      printf("\"label\": ");
      print_json_string(gcam_model_label(model, ex[e].class_index));
      printf(", ");
    }
    printf("\"raw_max\": %.9g, \"heatmap\": {\"width\": %d, \"height\": %d, \"data\": [",
           ex[e].raw_max, info->cam_width, info->cam_height);
    for (int32_t p = 0; p < hw; p++) printf("%s%.9g", p ? ", " : "", ex[e].map[p]);
    printf("]}}");
  }
  printf("]}\n");
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
                        const gcam_model_info *info, const explanation *ex) {
  uint8_t *out = malloc((size_t)w * h * 4);
  if (!out) {
    fprintf(stderr, "gcam: out of memory for a %dx%d image\n", w, h);
    return 1;
  }
  int rc = 0;
  gcam_status st;
  if (a->overlay) {
    gcam_overlay_params op = gcam_overlay_default_params();
    st = gcam_overlay_rgba(out, rgba, w, h, w * 4, ex->map, info->cam_width, info->cam_height, &op);
    rc = st ? fail(st) : write_png(a->overlay, out, w, h);
  }
  if (!rc && a->heatmap) {
    st = gcam_heatmap_rgba(out, w, h, ex->map, info->cam_width, info->cam_height,
                           GCAM_COLORMAP_JET);
    rc = st ? fail(st) : write_png(a->heatmap, out, w, h);
  }
  free(out);
  return rc;
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
  int rc = 1;
  gcam_pthreadpool *pool = a->threads > 1 ? gcam_pthreadpool_create(a->threads) : NULL;
  if (a->threads > 1 && !pool) {
    fprintf(stderr, "gcam: cannot start %d threads\n", a->threads);
    goto done;
  }
  gcam_threadpool hook = gcam_pthreadpool_hook(pool);
  if ((st = load_model(a, &model)) || (st = gcam_state_create(model, &state)) ||
      (st = gcam_state_set_threadpool(state, &hook)) ||
      (st = gcam_state_forward_rgba(state, rgba, w, h, w * 4))) {
    rc = fail(st);
    goto done;
  }
  gcam_model_info info;
  gcam_model_get_info(model, &info);
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
  n_ex = a->class_index >= 0 ? 1 : a->top_k ? a->top_k : 1;
  ex = calloc((size_t)n_ex, sizeof *ex);
  if (!top || !ex) {
    fprintf(stderr, "gcam: out of memory\n");
    goto done;
  }
  gcam_state_top_k(state, n_top, top);
  gcam_state_logits(state, &logits);
  gcam_state_probabilities(state, &probs);
  for (int32_t e = 0; e < n_ex; e++) {
    ex[e].class_index = a->class_index >= 0 ? a->class_index : top[e];
    ex[e].map = malloc(sizeof(float) * (size_t)info.cam_width * info.cam_height);
    if (!ex[e].map) {
      fprintf(stderr, "gcam: out of memory\n");
      goto done;
    }
    st = gcam_state_explain(state, ex[e].class_index, a->score, NULL, ex[e].map, &ex[e].raw_max);
    if (st) {
      rc = fail(st);
      goto done;
    }
  }
  if (a->json) print_json(model, &info, top, n_top, logits, probs, ex, n_ex);
  else print_text(model, top, n_top, logits, probs);
  rc = (a->overlay || a->heatmap) ? write_images(a, rgba, w, h, &info, &ex[0]) : 0;
  if (!rc && !a->json) {
    if (a->overlay) printf("overlay of class %d written to %s\n", ex[0].class_index, a->overlay);
    if (a->heatmap) printf("heatmap of class %d written to %s\n", ex[0].class_index, a->heatmap);
  }
done:
  for (int32_t e = 0; ex && e < n_ex; e++) free(ex[e].map);
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
