/* evaluate.h: the private pieces of the faithfulness and sanity metrics (evaluate.c) and of
 * the model re-initialisation the randomization check needs (model_randomize.c), declared
 * here so the tests can check each piece on its own. */
#ifndef GCAM_EVALUATE_H
#define GCAM_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "gcam.h"
#include "model.h"

/* ---- model_randomize.c ------------------------------------------------------------------ */

/* A private copy of `m` for re-initialising: the one weights allocation copied, every layer
 * pointer rebased into the copy, no labels. Free with gcam_model_free(). */
gcam_status gcam__model_clone(const gcam_model *m, gcam_model **out);

/* Floats of staging gcam__model_reinit_conv() needs for `m`'s largest conv (0: none). */
size_t gcam__model_reinit_staging_floats(const gcam_model *m);

/* Re-initialise conv layer i (dense layer j) of a clone with Keras's he_normal: a normal of
 * std sqrt(2 / fan_in) / 0.87962566 truncated at 2 of those stds (so the kept values have
 * std sqrt(2 / fan_in)), fan_in = 9 C (conv) or IN (dense); biases 0. The draws come from a
 * stream seeded by (seed, layer), so a layer's new weights do not depend on which layers
 * were re-initialised before it. The weights are written in every form the layer keeps:
 * canonical (3,3,C,OC) f32 (XNNPACK's, and the backward's w_canon) and packed (through
 * `staging`, gcam__model_reinit_staging_floats() floats), or compact f32 / f16, for convs;
 * f32, f16 or int8 (scale 2 std / 127 per output, which holds the truncated range exactly)
 * for dense layers. Then gcam__state_refresh_conv makes what was derived from the weights
 * again. */
void gcam__model_reinit_conv(gcam_model *m, int32_t i, uint64_t seed, float *staging);
void gcam__model_reinit_dense(gcam_model *m, int32_t j, uint64_t seed);

/* IEEE binary16 bits of a finite f, rounded to nearest even; inf past the f16 range (the
 * re-initialised weights are far inside it). */
uint16_t gcam__f32_to_f16(float f);

/* After conv i of model m (the state's, a private copy) changed: what was derived from its
 * weights is made again (the state's packed backward weights, the model's XNNPACK
 * operator). */
gcam_status gcam__state_refresh_conv(gcam_state *s, gcam_model *m, int32_t i);

/* ---- evaluate.c --------------------------------------------------------------------------- */

/* Spearman's rank correlation of a and b (n values each): the Pearson correlation of their
 * ranks, ties given their average rank (as scipy.stats.spearmanr). 0 when either is constant
 * (no ranking to correlate). `work` holds 3 n doubles; allocates nothing. */
double gcam__spearman(const float *a, const float *b, size_t n, double *work);

/* The ranks of x (n values, 1-based, ties averaged) into rank (n doubles); `order` holds
 * 2 n int32 (the sort's scratch). */
void gcam__ranks(double *rank, const float *x, size_t n, int32_t *order);

/* The Gaussian blur a BLUR baseline is: x (H, W, 3) -> out (H, W, 3), separable, radius 5,
 * sigma 5 (RISE's klen = 11, nsig = 5), the kernel renormalised over the taps inside the
 * image at the borders (a constant image stays constant). tmp holds H W 3 floats. */
void gcam__blur_baseline(float *out, const float *x, int32_t H, int32_t W, float *tmp);

/* The cascading randomization of gcam_state_evaluate(): with include_original, curve[0] is
 * the correlation before any layer is re-initialised (1 when `map` is the state's own
 * explanation), and the n_layers points after it follow; else curve gets the n_layers
 * points only. n_layers in 0..n_dense + n_conv. */
gcam_status gcam__evaluate_randomization(gcam_state *s, int32_t class_index, const float *map,
                                         int32_t map_width, int32_t map_height,
                                         const gcam_explain_params *explain, uint64_t seed,
                                         int32_t n_layers, int include_original, double *curve);

#endif
