/* colormap.c: the JET colormap as cv2.applyColorMap(COLORMAP_JET) produces it.
 *
 * OpenCV's JET is GNU Octave's jet(256): piecewise linear ramps of x = i/255 with knees at
 * 1/8, 3/8, 5/8, 7/8, tabulated in double, stored as float, then passed through OpenCV's
 * interp1 (float) onto the same 256 points and scaled to u8 with round-half-to-even. We build
 * the table the same way so that the few entries that fall on an exact half (255 * (4x - 3/2)
 * is always k + 1/2) round exactly as OpenCV's do. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <stdint.h>

#include "image/image.h"

#define JET_N 256

/* Octave's jet at x, channel 0 = red, 1 = green, 2 = blue. The blue ramp is the red one
 * shifted by 1/4 down, green is in the middle. */
static double gcam__jet_ramp(int channel, double x) {
  const double shift = channel == 0 ? 0.0 : (channel == 1 ? 0.25 : 0.5);
  /* red: 0 until 3/8, 4x - 3/2 up to 5/8, 1 up to 7/8, then -4x + 9/2 (and 0 past 9/8) */
  const double lo = 3.0 / 8 - shift, hi = 7.0 / 8 - shift;
  if (x < lo) return 0.0;
  if (x < lo + 0.25) return 4 * x - (1.5 - 4 * shift);
  if (x < hi) return 1.0;
  if (x < hi + 0.25) return -4 * x + (4.5 - 4 * shift);
  return 0.0;
}

/* lut[i][c] for c in R, G, B */
static void gcam__jet_lut(uint8_t lut[JET_N][3]) {
  /* Octave's linspace(0, 1, n): x1 + i * delta, with the last point set to x2 exactly */
  const double delta = 1.0 / (JET_N - 1);
  /* OpenCV's linspace in float: x0 + i * step */
  const float step = 1.f / (JET_N - 1);
  for (int c = 0; c < 3; c++) {
    float prev_x = 0.f, prev_y = 0.f;
    for (int i = 0; i < JET_N; i++) {
      const double xd = i == JET_N - 1 ? 1.0 : i * delta;
      const float y = (float)gcam__jet_ramp(c, xd);
      const float x = 0.f + (float)i * step;
      /* interp1 at its own knots: y[i-1] + (x[i]-x[i-1]) * (y[i]-y[i-1]) / (x[i]-x[i-1]) */
      float yi = i == 0 ? y : prev_y + (x - prev_x) * (y - prev_y) / (x - prev_x);
      long v = lrintf(yi * 255.f);
      lut[i][c] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v));
      prev_x = x;
      prev_y = y;
    }
  }
}

void gcam__colormap_jet(uint8_t *rgb, const uint8_t *gray, size_t n) {
  uint8_t lut[JET_N][3];
  gcam__jet_lut(lut);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *e = lut[gray[i]];
    rgb[3 * i + 0] = e[0];
    rgb[3 * i + 1] = e[1];
    rgb[3 * i + 2] = e[2];
  }
}
