/* The model-randomisation sanity check (Adebayo et al. 2018): the learned
 * layers of a classifier are re-drawn at random from the top (output) down,
 * cumulatively, and after each step every method's maps are computed again
 * on the same images (for the same target classes) and compared with the
 * original maps by Spearman rank correlation, of the signed maps and of
 * their absolute values. A method whose maps depend on what the model
 * learned decays towards 0; one that stays high explains the input more
 * than the model. docs/METRICS.md.
 *
 * A layer is a node of the graph with learned weights: Conv, Gemm, MatMul
 * (every float initializer it reads: weight and bias) and an unfolded
 * BatchNormalization (its scale and bias; the running statistics stay).
 * BatchNormalization folded into its Conv at load (model/fold.c) is that
 * Conv's layer. A parameter read by several nodes belongs to the last of
 * them, so the first step that reaches any of its readers re-draws it.
 * Layers are ordered by their node in evaluation order, last first.
 *
 * Re-drawing: each parameter tensor's values become independent normal
 * draws of mean 0 and standard deviation the tensor's original root mean
 * square: the layer keeps its scale (so activations neither die nor blow
 * up, and the test is of structure, not magnitude) and loses everything it
 * learned. Draw j of parameter P is sm_rng_normal(key(seed, "sanity", P),
 * j): the same whatever the run, step or thread count. */
#ifndef SM_SANITY_H
#define SM_SANITY_H

#include <stdint.h>

#include "explain/explainer.h"
#include "explain/task.h"
#include "model/model.h"
#include "util/err.h"

/* Spearman's rank correlation of a and b (n values each): the Pearson
 * correlation of their ranks, tied values given the average of their
 * ranks (as scipy.stats.spearmanr). NaN when n < 2, either is constant or
 * either holds a NaN. */
double sm_sanity_spearman(const float *a, const float *b, int64_t n);

/* The layers of a model, with a copy of their original weights. */
typedef struct sm_sanity_layers sm_sanity_layers;

/* The layers of m (borrowed until destroyed; it must stay loaded). Leaves
 * m's training mode off (sm_model_set_trainable), as the edits below do.
 * NULL with a message naming origin when m has no layer to randomise. */
sm_sanity_layers *sm_sanity_layers_new(sm_model *m, const char *origin,
                                       sm_err *err);
/* Puts the original weights back, then frees. */
void sm_sanity_layers_destroy(sm_sanity_layers **l);

int sm_sanity_layers_count(const sm_sanity_layers *l);
/* Layer k's node name (k = 0: the top layer). */
const char *sm_sanity_layers_name(const sm_sanity_layers *l, int k);

/* The model with its top k layers re-drawn from seed and the others as
 * loaded (k = 0: the model as loaded). Drops its plans, so the next run
 * computes with these weights. 0, or -1 with a message (k out of range). */
int sm_sanity_layers_randomise(sm_sanity_layers *l, int k, uint64_t seed,
                               sm_err *err);

/* One method at one step, over the images. */
typedef struct sm_sanity_stat {
    double spearman, spearman_sd;         /* mean, sample sd (NaN for
                                             fewer than 2 images) */
    double spearman_abs, spearman_abs_sd; /* the same of |map| */
    int images;                           /* images both correlations are
                                             defined for (neither map
                                             constant) */
} sm_sanity_stat;

/* Results: n_methods x (n_steps) stats, step 0 the model as loaded (maps
 * computed again: 1 unless a method is not reproducible), step k its top
 * k layers re-drawn. */
typedef struct sm_sanity_report {
    int n_methods, n_steps;  /* n_steps = layers + 1 */
    sm_sanity_stat *stat;    /* [method * n_steps + step] */
    long maps;               /* maps computed */
} sm_sanity_report;

void sm_sanity_report_destroy(sm_sanity_report **r);

/* Called after each method's maps at each step: done of total maps. */
typedef void (*sm_sanity_progress)(long done, long total, void *u);

/* The check of methods ex[0..n_ex) on the images x (N x C x H x W, the
 * model input; ids name them for the methods' draws) with the model,
 * output and scoring of s (its metrics ignored), layers l of s->model and
 * seed for the re-draws. Targets are chosen once, by s, on the model as
 * loaded, and kept at every step. The model is left as loaded. NULL with a
 * message (a method without maps, a method's failure). */
sm_sanity_report *sm_sanity_run(const sm_explain_setup *s,
                                sm_sanity_layers *l,
                                sm_explainer *const *ex, int n_ex,
                                const sm_tensor *x, const char *const *ids,
                                uint64_t seed, sm_sanity_progress progress,
                                void *u, sm_err *err);

#endif
