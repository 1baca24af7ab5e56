/* Deletion and insertion (Petsiuk 2018): how fast the predicted class's
 * probability falls when the map's most important pixels are removed
 * first (deletion: the image becomes zeros), and rises when they are put
 * back first (insertion: from a blurred image, Gaussian kernel 11, sigma 5,
 * zero padding). Pixels are ranked by the map, descending (ties: lower
 * index first); n = ceil(HW / step) steps of `step` pixels (all channels);
 * the probability is recorded at the n + 1 points and
 *   AUC = (sum of scores - s_0 / 2 - s_n / 2) / n.
 * Lower deletion, higher insertion is better. */
#ifndef SM_DELETION_H
#define SM_DELETION_H

#include "model/score.h"

typedef struct sm_deletion_result {
    double deletion_auc, insertion_auc;
    long evals; /* images the model evaluated */
} sm_deletion_result;

/* For one image x (C x H x W floats) and its map (H x W), with the class
 * `target` (the originally predicted one), scored by sc's model and output
 * (always as a probability). step <= 0: W (one row's worth). The model runs
 * in batches of at most `batch` images. */
int sm_deletion_insertion(const sm_model_scoring *sc, const float *x, int64_t c,
                          int64_t h, int64_t w, const float *map, int target,
                          int64_t step, int64_t batch, sm_deletion_result *r,
                          sm_err *err);

/* The insertion start image: x blurred per channel (kernel 11, sigma 5,
 * zeros outside), by libvips. */
int sm_deletion_blur(const float *x, int64_t c, int64_t h, int64_t w,
                     float *out, sm_err *err);

#endif
