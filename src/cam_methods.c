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
 * v = X^T u / |X^T u|), in double: Householder tridiagonalisation, bisection, inverse
 * iteration (gcam__top_eigenvector): robust when the top two singular values are close (power
 * iteration is not), O(n^3) for n = min(H*W, K), plus the Gram's O(H*W*K*n). */
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
  /* eigen: X (HW x K), Gram and its reflectors (n x n each), v (K), the means (K), 7n */
  const uint64_t d = gcam__is_eigen(method)
                         ? HW * (uint64_t)K + 2 * n * n + 2 * (uint64_t)K + 7 * n
                         : (uint64_t)K;
  if (d > (uint64_t)(SIZE_MAX / sizeof(double)) || HW * (uint64_t)K > (uint64_t)INT32_MAX)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "a %dx%dx%d map's work does not fit in memory",
                       (int)H, (int)W, (int)K);
  *doubles = (size_t)d;
  return GCAM_STATUS_OK;
}

/* ---- the first principal direction ---------------------------------------------------------- */

/* The largest eigenvalue of the symmetric tridiagonal (d, e) (n), by bisection on Sturm counts
 * (the number of eigenvalues below x is the number of negative pivots of T - x I). */
static double gcam__tridiag_top_eigenvalue(const double *d, const double *e, size_t n) {
  double lo = d[0], hi = d[0]; /* Gershgorin */
  for (size_t i = 0; i < n; i++) {
    const double r = (i > 0 ? fabs(e[i - 1]) : 0.0) + (i + 1 < n ? fabs(e[i]) : 0.0);
    lo = d[i] - r < lo ? d[i] - r : lo;
    hi = d[i] + r > hi ? d[i] + r : hi;
  }
  const double scale = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
  if (scale == 0.0) return 0.0;
  hi += 1e-12 * scale;
  for (int it = 0; it < 200 && hi - lo > 4e-16 * scale; it++) {
    const double x = 0.5 * (lo + hi);
    size_t below = 0;
    double q = 1.0;
    for (size_t i = 0; i < n; i++) {
      q = d[i] - x - (i > 0 ? e[i - 1] * e[i - 1] / q : 0.0);
      if (q == 0.0) q = -1e-300 * scale; /* x on an eigenvalue of a leading block */
      below += q < 0.0;
    }
    if (below == n)
      hi = x;
    else
      lo = x;
  }
  return hi;
}

/* x (n): the eigenvector of the tridiagonal (d, e) for its eigenvalue lambda, by inverse
 * iteration: solve (T - lambda I) x = previous x by Gaussian elimination with partial
 * pivoting (fill-in du2), a tiny pivot standing in for the zero one. t: 5n doubles. */
static void gcam__tridiag_eigenvector(double *x, const double *d, const double *e, size_t n,
                                      double lambda, double *t) {
  double *dd = t, *du = dd + n, *du2 = du + n, *dl = du2 + n, *r = dl + n;
  double norm_t = 0.0;
  for (size_t i = 0; i < n; i++) {
    const double a = fabs(d[i]) + (i > 0 ? fabs(e[i - 1]) : 0.0) + (i + 1 < n ? fabs(e[i]) : 0.0);
    norm_t = a > norm_t ? a : norm_t;
  }
  const double tiny = (norm_t > 0.0 ? norm_t : 1.0) * 1e-15;
  for (size_t i = 0; i < n; i++) x[i] = 1.0 / sqrt((double)n) * (1.0 + 1e-3 * (double)(i % 7));
  for (int it = 0; it < 4; it++) {
    for (size_t i = 0; i < n; i++) {
      dd[i] = d[i] - lambda;
      du[i] = i + 1 < n ? e[i] : 0.0;
      dl[i] = i + 1 < n ? e[i] : 0.0;
      du2[i] = 0.0;
      r[i] = x[i];
    }
    for (size_t i = 0; i + 1 < n; i++) {
      if (fabs(dd[i]) >= fabs(dl[i])) { /* row i is the pivot: eliminate dl[i] */
        if (dd[i] == 0.0) dd[i] = tiny;
        const double f = dl[i] / dd[i];
        dd[i + 1] -= f * du[i];
        r[i + 1] -= f * r[i];
      } else { /* swap rows i and i+1, then eliminate */
        const double f = dd[i] / dl[i], dd1 = dd[i + 1], du1 = i + 2 < n ? du[i + 1] : 0.0;
        dd[i] = dl[i];
        dd[i + 1] = du[i] - f * dd1;
        du[i] = dd1;
        du2[i] = du1;
        if (i + 2 < n) du[i + 1] = -f * du1;
        const double ri = r[i];
        r[i] = r[i + 1];
        r[i + 1] = ri - f * r[i];
      }
    }
    double norm = 0.0;
    for (size_t k = n; k-- > 0;) {
      const double piv = fabs(dd[k]) < tiny ? (dd[k] < 0 ? -tiny : tiny) : dd[k];
      double v = r[k];
      if (k + 1 < n) v -= du[k] * x[k + 1];
      if (k + 2 < n) v -= du2[k] * x[k + 2];
      x[k] = v / piv;
      norm += x[k] * x[k];
    }
    norm = sqrt(norm);
    for (size_t i = 0; i < n; i++) x[i] /= norm;
  }
}

/* The eigenvector of the largest eigenvalue of the symmetric n x n G (destroyed) into v (n):
 * Householder reduction to tridiagonal T = Q^T G Q (the reflectors kept in H, n x n), the top
 * eigenvalue of T by bisection, its eigenvector y by inverse iteration, v = Q y. About
 * 4/3 n^3 flops (Jacobi rotations, tried first, took 100x longer at n = 512). t: 7n doubles. */
static void gcam__top_eigenvector(double *v, double *G, double *H, size_t n, double *t) {
  double *d = t, *e = d + n;
  for (size_t k = 0; k + 2 < n; k++) {
    double *h = H + k * n; /* reflector k: I - 2 h h^T on indices k+1 .. n-1 */
    double xnorm = 0.0;
    for (size_t i = k + 1; i < n; i++) xnorm += G[i * n + k] * G[i * n + k];
    xnorm = sqrt(xnorm);
    const double alpha = G[(k + 1) * n + k] > 0.0 ? -xnorm : xnorm;
    double hnorm = 0.0;
    for (size_t i = k + 1; i < n; i++) {
      h[i] = G[i * n + k] - (i == k + 1 ? alpha : 0.0);
      hnorm += h[i] * h[i];
    }
    e[k] = alpha;
    if (hnorm == 0.0) { /* the column is already reduced */
      e[k] = G[(k + 1) * n + k];
      for (size_t i = k + 1; i < n; i++) h[i] = 0.0;
      continue;
    }
    hnorm = sqrt(hnorm);
    for (size_t i = k + 1; i < n; i++) h[i] /= hnorm;
    /* G' = G - 2 h w^T - 2 w h^T on the trailing block, w = p - (h.p) h, p = G h */
    double *p = v, hp = 0.0; /* v is free until the end */
    for (size_t i = k + 1; i < n; i++) {
      double acc = 0.0;
      for (size_t j = k + 1; j < n; j++) acc += G[i * n + j] * h[j];
      p[i] = acc;
      hp += h[i] * acc;
    }
    for (size_t i = k + 1; i < n; i++) p[i] -= hp * h[i];
    for (size_t i = k + 1; i < n; i++)
      for (size_t j = k + 1; j < n; j++) G[i * n + j] -= 2.0 * (h[i] * p[j] + p[i] * h[j]);
  }
  for (size_t i = 0; i < n; i++) d[i] = G[i * n + i];
  if (n >= 2) e[n - 2] = G[(n - 1) * n + n - 2];
  const double lambda = gcam__tridiag_top_eigenvalue(d, e, n);
  gcam__tridiag_eigenvector(v, d, e, n, lambda, e + n);
  for (size_t k = n >= 2 ? n - 2 : 0; k-- > 0;) { /* v = H_0 ... H_{n-3} y */
    const double *h = H + k * n;
    double dot = 0.0;
    for (size_t i = k + 1; i < n; i++) dot += h[i] * v[i];
    for (size_t i = k + 1; i < n; i++) v[i] -= 2.0 * dot * h[i];
  }
}

/* raw (HW) = ReLU(X v), X = the centred A (eigencam) or g * A (eigengradcam) */
static void gcam__eigen_cam(float *raw, int grad, const float *A, const float *dA, size_t HW,
                            size_t K, double *work) {
  const size_t n = HW < K ? HW : K;
  double *X = work, *G = X + HW * K, *V = G + n * n, *v = V + n * n, *mean = v + K;
  double *t = mean + K; /* 7n */
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
    /* X^T X as a sum of the rows' outer products: contiguous rows, the upper triangle */
    for (size_t i = 0; i < K * K; i++) G[i] = 0.0;
    for (size_t p = 0; p < HW; p++) {
      const double *x = X + p * K;
      for (size_t i = 0; i < K; i++) {
        const double xi = x[i];
        double *gi = G + i * K;
        for (size_t j = i; j < K; j++) gi[j] += xi * x[j];
      }
    }
    for (size_t i = 0; i < K; i++)
      for (size_t j = 0; j < i; j++) G[i * K + j] = G[j * K + i];
    gcam__top_eigenvector(v, G, V, K, t);
  } else {
    for (size_t i = 0; i < HW; i++) /* X X^T */
      for (size_t j = i; j < HW; j++) {
        double acc = 0.0;
        for (size_t k = 0; k < K; k++) acc += X[i * K + k] * X[j * K + k];
        G[i * HW + j] = G[j * HW + i] = acc;
      }
    double *u = mean; /* the means are no longer needed; HW < K doubles of room */
    gcam__top_eigenvector(u, G, V, HW, t);
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
