/* overlay.c: the heatmap's last steps, pixel for pixel as the Keras/OpenCV recipe does them:
 * bilinear upsampling (cv2.resize), np.uint8(255 * heat), cv2.applyColorMap(JET) and
 * cv2.addWeighted(colored, 0.4, image, 0.9, 0). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "error.h"
#include "image/image.h"

uint8_t gcam__heat_to_u8(float v) {
  /* numpy: 255 * float32 stays float32, then the cast truncates toward zero */
  const float s = 255.f * v;
  if (!(s > 0.f)) return 0; /* also NaN */
  if (s >= 255.f) return 255;
  return (uint8_t)s;
}

uint8_t gcam__blend_u8(uint8_t a, float wa, uint8_t b, float wb) {
  /* OpenCV 4.6 on a CPU with FMA (its AVX2 dispatch, the usual case) computes
   * round(fma(a, wa, fma(b, wb, 0))): b*wb rounded to float once, then a*wa added to it with
   * a single rounding. a*wa and the float b*wb are exact in double, and so is their sum for
   * weights of ordinary size, so double reproduces the fused result on any CPU. */
  const float t = (float)((double)b * (double)wb);
  const float s = (float)((double)a * (double)wa + (double)t);
  if (!(s > -0.5f)) return 0; /* also NaN */
  if (s >= 255.5f) return 255;
  return (uint8_t)lrintf(s); /* cvRound: ties to even */
}

gcam_overlay_params gcam_overlay_default_params(void) {
  gcam_overlay_params p;
  p.heat_weight = 0.4f;
  p.image_weight = 0.9f;
  p.colormap = GCAM_COLORMAP_JET;
  return p;
}

static gcam_status gcam__check_map(const float *map, int32_t map_width, int32_t map_height) {
  if (!map) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "map is NULL");
  if (map_width < 1 || map_height < 1)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "map size %dx%d: both must be >= 1",
                       (int)map_width, (int)map_height);
  if ((uint64_t)map_width * (uint64_t)map_height > (uint64_t)GCAM_MAX_IMAGE_PIXELS)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "map size %dx%d is over %lld values",
                       (int)map_width, (int)map_height, (long long)GCAM_MAX_IMAGE_PIXELS);
  return GCAM_STATUS_OK;
}

/* Images are capped at the decoder's limit, GCAM_MAX_IMAGE_PIXELS (2^26): then width*height*4
 * bytes and width*height floats are addressable even with a 32-bit size_t, and no absurd size
 * reaches malloc. */
static gcam_status gcam__check_size(int32_t width, int32_t height) {
  if (width < 1 || height < 1)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "image size %dx%d: both must be >= 1",
                       (int)width, (int)height);
  if ((uint64_t)width * (uint64_t)height > (uint64_t)GCAM_MAX_IMAGE_PIXELS)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "image size %dx%d is over %lld pixels",
                       (int)width, (int)height, (long long)GCAM_MAX_IMAGE_PIXELS);
  return GCAM_STATUS_OK;
}

/* lut[g] = the color of heat level g */
static void gcam__heat_lut(uint8_t lut[256][3], gcam_colormap colormap) {
  uint8_t ramp[256];
  for (int g = 0; g < 256; g++) ramp[g] = (uint8_t)g;
  if (colormap == GCAM_COLORMAP_JET) {
    gcam__colormap_jet(&lut[0][0], ramp, 256);
  } else {
    for (int g = 0; g < 256; g++) lut[g][0] = lut[g][1] = lut[g][2] = ramp[g];
  }
}

/* The map upsampled to width x height, in a buffer the caller frees. */
static gcam_status gcam__upsample(float **heat, int32_t width, int32_t height, const float *map,
                            int32_t map_width, int32_t map_height) {
  *heat = malloc((size_t)width * (size_t)height * sizeof(float));
  if (!*heat)
    return gcam__error(GCAM_STATUS_OUT_OF_MEMORY, "no memory for a %dx%d heatmap", (int)width,
                       (int)height);
  gcam__resize_bilinear_f32(*heat, width, height, map, map_width, map_height);
  return GCAM_STATUS_OK;
}

gcam_status gcam_overlay_rgba(uint8_t *out, const uint8_t *rgba, int32_t width, int32_t height,
                              int32_t stride, const float *map, int32_t map_width,
                              int32_t map_height, const gcam_overlay_params *params) {
  gcam_status st;
  if (!out || !rgba) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "out or rgba is NULL");
  if (!params) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "params is NULL");
  if ((st = gcam__check_size(width, height)) != GCAM_STATUS_OK) return st;
  if (stride < 0 || (int64_t)stride < (int64_t)width * 4)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "stride %d is less than width*4 = %lld",
                       (int)stride, (long long)width * 4);
  if ((st = gcam__check_map(map, map_width, map_height)) != GCAM_STATUS_OK) return st;
  if (!isfinite(params->heat_weight) || !isfinite(params->image_weight))
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "blend weights must be finite");
  if (params->colormap != GCAM_COLORMAP_JET && params->colormap != GCAM_COLORMAP_GRAY)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "unknown colormap %d",
                       (int)params->colormap);

  float *heat;
  if ((st = gcam__upsample(&heat, width, height, map, map_width, map_height)) != GCAM_STATUS_OK)
    return st;
  uint8_t lut[256][3];
  gcam__heat_lut(lut, params->colormap);
  for (int32_t y = 0; y < height; y++) {
    const uint8_t *src = rgba + (size_t)y * (size_t)stride;
    const float *h = heat + (size_t)y * (size_t)width;
    uint8_t *dst = out + (size_t)y * (size_t)width * 4;
    for (size_t x = 0; x < (size_t)width; x++) {
      const uint8_t *color = lut[gcam__heat_to_u8(h[x])];
      for (size_t c = 0; c < 3; c++)
        dst[4 * x + c] = gcam__blend_u8(color[c], params->heat_weight, src[4 * x + c],
                                        params->image_weight);
      dst[4 * x + 3] = src[4 * x + 3];
    }
  }
  free(heat);
  return GCAM_STATUS_OK;
}

gcam_status gcam_heatmap_rgba(uint8_t *out, int32_t width, int32_t height, const float *map,
                              int32_t map_width, int32_t map_height, gcam_colormap colormap) {
  gcam_status st;
  if (!out) return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "out is NULL");
  if ((st = gcam__check_size(width, height)) != GCAM_STATUS_OK) return st;
  if ((st = gcam__check_map(map, map_width, map_height)) != GCAM_STATUS_OK) return st;
  if (colormap != GCAM_COLORMAP_JET && colormap != GCAM_COLORMAP_GRAY)
    return gcam__error(GCAM_STATUS_INVALID_ARGUMENT, "unknown colormap %d", (int)colormap);

  float *heat;
  if ((st = gcam__upsample(&heat, width, height, map, map_width, map_height)) != GCAM_STATUS_OK)
    return st;
  uint8_t lut[256][3];
  gcam__heat_lut(lut, colormap);
  const size_t n = (size_t)width * (size_t)height;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *color = lut[gcam__heat_to_u8(heat[i])];
    out[4 * i + 0] = color[0];
    out[4 * i + 1] = color[1];
    out[4 * i + 2] = color[2];
    out[4 * i + 3] = 255;
  }
  free(heat);
  return GCAM_STATUS_OK;
}
