/* image.h: image pre- and post-processing, matching OpenCV (4.6, as in Debian 12) pixel for
 * pixel where OpenCV defines the reference. Used by the CLI and by the browser alike, so
 * both produce the same pixels. None of these allocates except the decoder. */
#ifndef GCAM_IMAGE_H
#define GCAM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "gcam.h"

/* dst (dh, dw, ch) u8 = cv2.resize(src, (dw, dh), interpolation=cv2.INTER_CUBIC) on a uint8
 * image of `ch` channels (1..4); src rows are `src_stride` bytes apart. Needs no scratch
 * beyond the fixed-size buffers on the stack. */
void gcam__resize_bicubic_u8(uint8_t *dst, int32_t dw, int32_t dh, const uint8_t *src,
                             int32_t sw, int32_t sh, int32_t src_stride, int32_t ch);

/* dst (dh, dw) f32 = cv2.resize(src, (dw, dh)) default INTER_LINEAR on a float32 map. */
void gcam__resize_bilinear_f32(float *dst, int32_t dw, int32_t dh, const float *src, int32_t sw,
                               int32_t sh);

/* rgb (n, 3) = cv2.applyColorMap(gray, COLORMAP_JET), but in RGB order (OpenCV gives BGR). */
void gcam__colormap_jet(uint8_t *rgb, const uint8_t *gray, size_t n);

/* cv2.addWeighted(a, wa, b, wb, 0) on u8: saturate_cast<uchar>(a*wa + b*wb) */
uint8_t gcam__blend_u8(uint8_t a, float wa, uint8_t b, float wb);

/* map value in [0,1] -> u8 exactly as numpy's np.uint8(255 * heat) (truncation, float32) */
uint8_t gcam__heat_to_u8(float v);

/* The model's input tensor (H, W, 3) from an already resized RGB(A) u8 image (H, W, ch):
 *   GCAM_PREPROCESS_CAFFE: BGR order, x = pixel - mean_bgr[c]
 *   GCAM_PREPROCESS_TORCH: RGB order, x = (pixel/255 - mean[c]) / std[c]
 * `mean` and `std` are given in the tensor's channel order. */
void gcam__preprocess(float *out, const uint8_t *img, int32_t H, int32_t W, int32_t ch,
                      gcam_preprocess mode, const float mean[3], const float std_[3]);

/* Working memory one decode may take, estimated from the declared size before stb runs:
 * an 8192x8192 8-bit RGBA PNG or progressive JPEG fits, a 16-bit one of that size does not. */
#define GCAM__IMAGE_DECODE_BUDGET ((uint64_t)3 << 29) /* 1.5 GiB */

/* The structural check a JPEG or PNG passes before stb_image reads it (validate.c): every
 * segment and chunk length inside the file, JPEG Huffman tables of at most 256 codes and
 * defined before any scan uses them, sane frame and scan headers, PNG IDAT no larger than the
 * declared image can need, max_pixels and the decode budget. *w and *h get the declared size;
 * *inflated the bytes a PNG's image data inflates to (its rows and their filter bytes; 0 for
 * a JPEG), which bounds what stb may grow its zlib output to.
 * GCAM_STATUS_IMAGE_DECODE, _IMAGE_TOO_LARGE or _UNSUPPORTED_FORMAT, with a message. */
gcam_status gcam__image_validate(const uint8_t *p, size_t n, int64_t max_pixels, uint32_t *w,
                                 uint32_t *h, uint64_t *inflated);

#endif
