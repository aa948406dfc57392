/* cam_methods.h: the CAM family as pure functions of one layer's activation and gradient.
 *
 *   A  (H, W, K): the target layer's (post-ReLU) output, as Keras returns a conv's output
 *   dA (H, W, K): d score / d A, from the backward
 *   -> raw (H, W) = ReLU(cam), norm (H, W) = raw / max(raw) (all zeros when max(raw) = 0),
 * the convention of gcam_state_explain(). Names and formulas are pytorch-grad-cam's
 * (jacobgil/pytorch-grad-cam, read for this file); each method's formula and paper are in
 * cam_methods.c and docs/methods.md. The maps are pytorch-grad-cam's before its
 * scale_cam_image(), which subtracts the min and divides by max + 1e-7: after the ReLU the min
 * is 0 whenever any value was clipped, so the two normalisations differ only by that epsilon
 * on maps that are positive everywhere.
 *
 * Nothing here allocates: the caller provides `work`, gcam__cam_work_doubles() doubles. */
#ifndef GCAM_CAM_METHODS_H
#define GCAM_CAM_METHODS_H

#include <stddef.h>
#include <stdint.h>

#include "gcam.h"

typedef enum {
  GCAM__CAM_GRADCAM = 0,           /* "gradcam" */
  GCAM__CAM_HIRESCAM,              /* "hirescam" */
  GCAM__CAM_GRADCAM_ELEMENTWISE,   /* "gradcam-elementwise" */
  GCAM__CAM_GRADCAM_PLUSPLUS,      /* "gradcam++" */
  GCAM__CAM_XGRADCAM,              /* "xgradcam" */
  GCAM__CAM_LAYERCAM,              /* "layercam" */
  GCAM__CAM_EIGENCAM,              /* "eigencam" */
  GCAM__CAM_EIGENGRADCAM,          /* "eigengradcam" */
  GCAM__CAM_COUNT
} gcam__cam_method;

/* "gradcam", ...; NULL for a value out of range */
const char *gcam__cam_method_name(int method);
/* the method of that name (exact, lowercase), or -1 */
int gcam__cam_method_from_name(const char *name);

/* doubles of `work` gcam__cam_map() needs for this method and shape. INVALID_ARGUMENT for an
 * unknown method or a shape <= 0, OUT_OF_MEMORY when the bytes would not fit in a size_t
 * (32 bits in wasm). */
gcam_status gcam__cam_work_doubles(int method, int32_t H, int32_t W, int32_t K, size_t *doubles);

/* raw (H*W) and optionally norm (H*W) and *raw_max for one method. A and dA are (H, W, K);
 * dA is unused (may be NULL) by eigencam. raw must not alias A, dA or work. */
gcam_status gcam__cam_map(float *raw, float *norm, float *raw_max, int method, const float *A,
                          const float *dA, int32_t H, int32_t W, int32_t K, double *work,
                          size_t work_doubles);

#endif
