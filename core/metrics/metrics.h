/* Per-map quality metrics beside deletion / insertion (deletion.h), in
 * docs/EXPLAIN.md "Faithfulness metrics": one file each.
 *
 * - faithfulness.c: faithfulness correlation (Bhatt 2020);
 * - sparseness.c:   Gini index of |map| (Chalasani 2020);
 * - complexity.c:   Shannon entropy of |map| / sum |map|;
 * - sensitivity.c:  max-sensitivity (Yeh 2019).
 *
 * An undefined value is NaN (an empty CSV cell). Random draws come from the
 * counter-based RNG (util/rng.h), stream sm_rng_key(seed, {id, "metric",
 * name}) with name "faithfulness" or "sensitivity", so a value is the same
 * bits whatever the batching or worker. */
#ifndef SM_METRICS_H
#define SM_METRICS_H

#include <stdint.h>

#include "model/score.h"
#include "tensor/tensor.h"
#include "util/err.h"

#define SM_METRIC_FAITHFULNESS_SUBSETS 100
#define SM_METRIC_SENSITIVITY_RADIUS 0.02

/* A job's metric parameters. Zero in every field is the defaults, so a
 * zeroed struct is a job's default. */
typedef struct sm_metric_params {
    int faithfulness_subsets;  /* R; 0: SM_METRIC_FAITHFULNESS_SUBSETS */
    int faithfulness_size;     /* pixels a subset; 0: W (a row's worth) */
    int sensitivity_samples;   /* N perturbations; 0: max-sensitivity off */
    double sensitivity_radius; /* L-inf radius as a fraction of the range
                                  of x's values; 0: 0.02 */
} sm_metric_params;

/* ---- sparseness.c ------------------------------------------------------ */

/* Gini index of |map| (n values), as Quantus computes it: a = |map|
 * sorted ascending, G = sum_i (2i - n - 1) a_i / (n sum a), i = 1..n.
 * 0 for an all-zero map (no mass to concentrate); NaN when a value is not
 * finite. 0 or -1 (out of memory) with a message. */
int sm_metric_sparseness(const float *map, int64_t n, double *value,
                         sm_err *err);

/* ---- complexity.c ------------------------------------------------------ */

/* Shannon entropy (natural log) of p = |map| / sum |map| over n values,
 * 0 log 0 = 0. NaN for an all-zero map (p undefined) or a value that is
 * not finite. */
double sm_metric_complexity(const float *map, int64_t n);

/* ---- faithfulness.c ---------------------------------------------------- */

/* r subsets of `size` distinct pixels of hw into idx (r x size), each a
 * partial Fisher-Yates shuffle of 0..hw-1 with draws uniform(key,
 * k * size + j) for subset k, draw j. size <= hw. 0 or -1 (out of
 * memory) with a message. */
int sm_metric_faithfulness_subsets(uint64_t key, int64_t hw, int64_t size,
                                   int64_t r, int64_t *idx, sm_err *err);

/* The Pearson correlation between the map's sums over each subset (idx,
 * r x size) and drops[0..r); NaN when undefined (r < 2, constant sums or
 * constant drops, a value not finite). */
double sm_metric_faithfulness_correlation(const float *map,
                                          const int64_t *idx, int64_t size,
                                          int64_t r, const double *drops);

/* The faithfulness correlation of map (h x w) on image x (c x h x w):
 * R subsets (p) set to 0 in every channel, each scored as the softmax
 * probability of `target` by sc's model (deletion's score), drops against
 * x's own, correlated with the map's sums. The R + 1 images run in
 * batches of at most `batch`. *evals: R + 1. 0 or -1 with a message. */
int sm_metric_faithfulness(const sm_model_scoring *sc, const float *x,
                           int64_t c, int64_t h, int64_t w, const float *map,
                           int target, const sm_metric_params *p,
                           uint64_t seed, const char *id, int64_t batch,
                           double *value, long *evals, sm_err *err);

/* ---- sensitivity.c ----------------------------------------------------- */

/* Explains the n images of x (n x C x H x W) as the map being measured
 * was made (same method, settings, target and id), maps into maps
 * (n x H x W). 0 or -1 with a message. */
typedef int (*sm_metric_explain_fn)(void *arg, const sm_tensor *x,
                                    float *maps, sm_err *err);

/* Max-sensitivity of map (h x w) of image x (c x h x w): N = p's samples
 * perturbations delta, each value uniform in [-r, r] with r = radius x
 * (max - min of x's values), delta_k,i = r (2 uniform(key, k C H W + i) - 1);
 * x + delta explained by `explain` in batches of at most `batch`; the
 * value is max_k ||map(x + delta_k) - map|| / ||map|| (L2 norms). NaN when
 * N is 0 (off) or ||map|| is 0 or not finite (then nothing is explained).
 * 0 or -1 with a message. */
int sm_metric_sensitivity(const float *x, int64_t c, int64_t h, int64_t w,
                          const float *map, const sm_metric_params *p,
                          uint64_t seed, const char *id, int64_t batch,
                          sm_metric_explain_fn explain, void *arg,
                          double *value, sm_err *err);

#endif
