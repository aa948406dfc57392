/* cam_methods.c: the CAM family (see cam_methods.h). With p a pixel of the H*W map, k a
 * channel, A[p,k] the activation, g[p,k] = dA[p,k] its gradient and S_k = sum_p A[p,k]:
 *
 *   gradcam              w_k = mean_p g[p,k];                 cam = sum_k w_k A[.,k]
 *                        Selvaraju et al. 2017, arXiv:1610.02391
 *   hirescam             cam = sum_k g[.,k] A[.,k]            (the gradient not averaged)
 *                        Draelos & Carin 2020, arXiv:2011.08891
 *   gradcam-elementwise  cam = sum_k max(g[.,k] A[.,k], 0)    (pytorch-grad-cam's variant of
 *                        HiResCAM with the ReLU inside the sum)
 *   gradcam++            a[p,k] = g^2 / (2 g^2 + S_k g^3 + 1e-6)  (0 where g = 0),
 *                        w_k = sum_p max(g[p,k], 0) a[p,k];   cam = sum_k w_k A[.,k]
 *                        Chattopadhyay et al. 2018, arXiv:1710.11063, eq. 19 (the higher
 *                        derivatives of exp(score) written with powers of the first one)
 *   xgradcam             w_k = sum_p g[p,k] A[p,k] / (S_k + 1e-7); cam = sum_k w_k A[.,k]
 *                        Fu et al. 2020, arXiv:2008.02312
 *   layercam             cam = sum_k max(g[.,k], 0) A[.,k]
 *                        Jiang et al. 2021, IEEE TIP 30:5875
 *   eigencam             cam = X v, X = A (H*W x K) centred per channel (its column means
 *                        subtracted, as pytorch-grad-cam's get_2d_projection does), v its
 *                        first right singular vector (largest singular value)
 *                        Muhammad & Yeasin 2020, arXiv:2008.00299
 *   eigengradcam         the same with X = g * A (elementwise), centred
 * then raw = max(cam, 0) and norm = raw / max(raw), as gcam_state_explain() does.
 *
 * Precision: sums in double. gradcam rounds w_k to float and then sums in double exactly as
 * explain.c does, so its maps are bit-identical to gcam_state_explain()'s (tested).
 * gradcam++: pytorch-grad-cam computes a for every g and multiplies by max(g, 0); we compute it
 * only where g > 0, the same value except where its denominator vanishes for a g < 0 (numpy
 * then gives 0 * inf = NaN, we give 0).
 *
 * The singular vector's sign is arbitrary (LAPACK's choice in pytorch-grad-cam). We fix it:
 * v is flipped so that sum_k v_k > 0 (then the projection X v correlates positively with the
 * channel sum sum_k A[p,k], since X^T (that sum) = cov * 1); a sum of exactly 0 falls back to
 * the first non-zero component being positive. The vector is the top eigenvector of the
 * smaller Gram matrix (X^T X, K x K, when K <= H*W; else X X^T, whose top eigenvector u gives
 * v = X^T u / |X^T u|), found by cyclic Jacobi rotations in double: robust when the top two
 * singular values are close (power iteration is not), O(n^3) per sweep for n = min(H*W, K). */
#include "cam_methods.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "error.h"

static const char *const gcam__cam_names[GCAM__CAM_COUNT] = {
    "gradcam", "hirescam", "gradcam-elementwise", "gradcam++",
    "xgradcam", "layercam", "eigencam",           "eigengradcam"};

const char *gcam__cam_method_name(int method) {
  return method >= 0 && method < GCAM__CAM_COUNT ? gcam__cam_names[method] : NULL;
}

int gcam__cam_method_from_name(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < GCAM__CAM_COUNT; i++)
    if (strcmp(name, gcam__cam_names[i]) == 0) return i;
  return -1;
}

static int gcam__is_eigen(int method) {
  return method == GCAM__CAM_EIGENCAM || method == GCAM__CAM_EIGENGRADCAM;
}

gcam_status gcam__cam_work_doubles(int method, int32_t H, int32_t W, int32_t K,
                                   size_t *doubles) {
  if (!doubles) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "doubles is NULL");
  if (!gcam__cam_method_name(method))
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "unknown CAM method %d", method);
  if (H <= 0 || W <= 0 || K <= 0)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "map shape %dx%dx%d is not positive",
                       (int)H, (int)W, (int)K);
  const uint64_t HW = (uint64_t)H * (uint64_t)W, n = HW < (uint64_t)K ? HW : (uint64_t)K;
  /* eigen: X (HW x K), Gram and its eigenvectors (n x n each), v (K), the means (K) */
  const uint64_t d = gcam__is_eigen(method) ? HW * (uint64_t)K + 2 * n * n + 2 * (uint64_t)K
                                            : (uint64_t)K;
  if (d > (uint64_t)(SIZE_MAX / sizeof(double)) || HW * (uint64_t)K > (uint64_t)INT32_MAX)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "a %dx%dx%d map's work does not fit in memory",
                       (int)H, (int)W, (int)K);
  *doubles = (size_t)d;
  return GCAM_STATUS_OK;
}

/* ---- the first principal direction ---------------------------------------------------------- */

/* The eigenvector of the largest eigenvalue of the symmetric n x n G (destroyed) into e (n),
 * by cyclic Jacobi with the rotations accumulated in V (n x n). */
static void gcam__top_eigenvector(double *e, double *G, double *V, size_t n) {
  for (size_t i = 0; i < n * n; i++) V[i] = 0.0;
  for (size_t i = 0; i < n; i++) V[i * n + i] = 1.0;
  double total = 0.0;
  for (size_t i = 0; i < n * n; i++) total += G[i] * G[i];
  for (int sweep = 0; sweep < 60; sweep++) {
    double off = 0.0;
    for (size_t p = 0; p < n; p++)
      for (size_t q = p + 1; q < n; q++) off += G[p * n + q] * G[p * n + q];
    if (off <= 1e-30 * total || off == 0.0) break;
    for (size_t p = 0; p < n; p++)
      for (size_t q = p + 1; q < n; q++) {
        const double gpq = G[p * n + q];
        if (fabs(gpq) <= 1e-300) continue;
        /* the rotation in the (p, q) plane that zeroes G[p][q] */
        const double theta = (G[q * n + q] - G[p * n + p]) / (2.0 * gpq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
        const double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
        for (size_t k = 0; k < n; k++) { /* G J */
          const double a = G[k * n + p], b = G[k * n + q];
          G[k * n + p] = c * a - s * b;
          G[k * n + q] = s * a + c * b;
        }
        for (size_t k = 0; k < n; k++) { /* J^T (G J) */
          const double a = G[p * n + k], b = G[q * n + k];
          G[p * n + k] = c * a - s * b;
          G[q * n + k] = s * a + c * b;
        }
        for (size_t k = 0; k < n; k++) { /* V J */
          const double a = V[k * n + p], b = V[k * n + q];
          V[k * n + p] = c * a - s * b;
          V[k * n + q] = s * a + c * b;
        }
      }
  }
  size_t best = 0;
  for (size_t i = 1; i < n; i++)
    if (G[i * n + i] > G[best * n + best]) best = i;
  for (size_t k = 0; k < n; k++) e[k] = V[k * n + best];
}

/* raw (HW) = ReLU(X v), X = the centred A (eigencam) or g * A (eigengradcam) */
static void gcam__eigen_cam(float *raw, int grad, const float *A, const float *dA, size_t HW,
                            size_t K, double *work) {
  const size_t n = HW < K ? HW : K;
  double *X = work, *G = X + HW * K, *V = G + n * n, *v = V + n * n, *mean = v + K;
  for (size_t k = 0; k < K; k++) mean[k] = 0.0;
  for (size_t p = 0; p < HW; p++)
    for (size_t k = 0; k < K; k++) {
      const double x = grad ? (double)dA[p * K + k] * A[p * K + k] : (double)A[p * K + k];
      X[p * K + k] = x != x ? 0.0 : x; /* pytorch-grad-cam zeroes NaNs */
      mean[k] += X[p * K + k];
    }
  for (size_t k = 0; k < K; k++) mean[k] /= (double)HW;
  for (size_t p = 0; p < HW; p++)
    for (size_t k = 0; k < K; k++) X[p * K + k] -= mean[k];
  if (K <= HW) {
    for (size_t i = 0; i < K; i++) /* X^T X */
      for (size_t j = i; j < K; j++) {
        double acc = 0.0;
        for (size_t p = 0; p < HW; p++) acc += X[p * K + i] * X[p * K + j];
        G[i * K + j] = G[j * K + i] = acc;
      }
    gcam__top_eigenvector(v, G, V, K);
  } else {
    for (size_t i = 0; i < HW; i++) /* X X^T */
      for (size_t j = i; j < HW; j++) {
        double acc = 0.0;
        for (size_t k = 0; k < K; k++) acc += X[i * K + k] * X[j * K + k];
        G[i * HW + j] = G[j * HW + i] = acc;
      }
    double *u = mean; /* the means are no longer needed; HW < K doubles of room */
    gcam__top_eigenvector(u, G, V, HW);
    double norm = 0.0;
    for (size_t k = 0; k < K; k++) {
      double acc = 0.0;
      for (size_t p = 0; p < HW; p++) acc += X[p * K + k] * u[p];
      v[k] = acc;
      norm += acc * acc;
    }
    norm = sqrt(norm);
    for (size_t k = 0; k < K; k++) v[k] = norm > 0.0 ? v[k] / norm : 0.0;
  }
  double sum = 0.0;
  for (size_t k = 0; k < K; k++) sum += v[k];
  int flip = sum < 0.0;
  if (sum == 0.0)
    for (size_t k = 0; k < K; k++)
      if (v[k] != 0.0) {
        flip = v[k] < 0.0;
        break;
      }
  for (size_t p = 0; p < HW; p++) {
    double acc = 0.0;
    for (size_t k = 0; k < K; k++) acc += X[p * K + k] * v[k];
    const double c = flip ? -acc : acc;
    raw[p] = c > 0.0 ? (float)c : 0.0f;
  }
}

/* ---- the map ---------------------------------------------------------------------------------- */

/* w (K): the channel weights of the weighted-sum methods */
static void gcam__channel_weights(double *w, int method, const float *A, const float *g,
                                  size_t HW, size_t K) {
  for (size_t k = 0; k < K; k++) {
    double S = 0.0, acc = 0.0;
    if (method != GCAM__CAM_GRADCAM)
      for (size_t p = 0; p < HW; p++) S += A[p * K + k];
    for (size_t p = 0; p < HW; p++) {
      const double gv = g[p * K + k];
      if (method == GCAM__CAM_GRADCAM) {
        acc += gv;
      } else if (method == GCAM__CAM_XGRADCAM) {
        acc += gv * A[p * K + k];
      } else if (gv > 0.0) { /* gradcam++ */
        const double g2 = gv * gv;
        acc += gv * (g2 / (2.0 * g2 + S * g2 * gv + 1e-6));
      }
    }
    if (method == GCAM__CAM_GRADCAM)
      w[k] = (double)(float)(acc / (double)HW); /* as explain.c: alpha is a float */
    else if (method == GCAM__CAM_XGRADCAM)
      w[k] = acc / (S + 1e-7);
    else
      w[k] = acc;
  }
}

/* one pixel's cam for the sum-over-channels methods */
static double gcam__pixel_cam(int method, const double *w, const float *a, const float *g,
                              size_t K) {
  double v = 0.0;
  for (size_t k = 0; k < K; k++) {
    switch (method) {
      case GCAM__CAM_HIRESCAM: v += (double)g[k] * a[k]; break;
      case GCAM__CAM_GRADCAM_ELEMENTWISE: {
        const double e = (double)g[k] * a[k];
        v += e > 0.0 ? e : 0.0;
        break;
      }
      case GCAM__CAM_LAYERCAM: v += (g[k] > 0.0f ? (double)g[k] : 0.0) * a[k]; break;
      default: v += w[k] * a[k]; break;
    }
  }
  return v;
}

gcam_status gcam__cam_map(float *raw, float *norm, float *raw_max, int method, const float *A,
                          const float *dA, int32_t H, int32_t W, int32_t K, double *work,
                          size_t work_doubles) {
  size_t need = 0;
  gcam_status st = gcam__cam_work_doubles(method, H, W, K, &need);
  if (st != GCAM_STATUS_OK) return st;
  if (!raw || !A || (!dA && method != GCAM__CAM_EIGENCAM) || !work)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "raw, A, dA or work is NULL");
  if (work_doubles < need)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "%s on %dx%dx%d needs %zu doubles of "
                       "work, got %zu", gcam__cam_names[method], (int)H, (int)W, (int)K, need,
                       work_doubles);
  const size_t HW = (size_t)H * (size_t)W, Kz = (size_t)K;
  float max = 0.0f;
  if (gcam__is_eigen(method)) {
    gcam__eigen_cam(raw, method == GCAM__CAM_EIGENGRADCAM, A, dA, HW, Kz, work);
  } else {
    double *w = work;
    if (method == GCAM__CAM_GRADCAM || method == GCAM__CAM_GRADCAM_PLUSPLUS ||
        method == GCAM__CAM_XGRADCAM)
      gcam__channel_weights(w, method, A, dA, HW, Kz);
    for (size_t p = 0; p < HW; p++) {
      const double v = gcam__pixel_cam(method, w, A + p * Kz, dA ? dA + p * Kz : NULL, Kz);
      raw[p] = v > 0.0 ? (float)v : 0.0f;
    }
  }
  for (size_t p = 0; p < HW; p++)
    if (raw[p] > max) max = raw[p];
  if (norm)
    for (size_t p = 0; p < HW; p++) norm[p] = max > 0.0f ? raw[p] / max : 0.0f;
  if (raw_max) *raw_max = max;
  return GCAM_STATUS_OK;
}
