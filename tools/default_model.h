/* default_model.h: the small Fashion-MNIST VGG (weights/small/fashion_vgg.gcam), built into
 * the CLI so that `gcam explain --image I` works with no weights file at hand. */
#ifndef GCAM_DEFAULT_MODEL_H
#define GCAM_DEFAULT_MODEL_H

#include <stddef.h>

/* the embedded weights file, or NULL (*size = 0) when this build has none */
const unsigned char *gcam_default_model(size_t *size);

#endif
