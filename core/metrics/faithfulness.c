/* Faithfulness correlation (metrics.h; Bhatt 2020): do the map's sums over
 * random pixel subsets follow how much removing those subsets costs the
 * predicted class? */
#include "metrics/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

int sm_metric_faithfulness_subsets(uint64_t key, int64_t hw, int64_t size,
                                   int64_t r, int64_t *idx, sm_err *err)
{
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)(hw > 0 ? hw : 1));
    int64_t *took = malloc(sizeof(int64_t) * (size_t)(size > 0 ? size : 1));
    if (!perm || !took) {
        free(perm);
        free(took);
        return sm_err_set(err, "faithfulness: out of memory");
    }
    for (int64_t i = 0; i < hw; i++)
        perm[i] = i;
    for (int64_t k = 0; k < r; k++) {
        for (int64_t j = 0; j < size; j++) {
            double u = sm_rng_uniform(key, (uint64_t)(k * size + j));
            int64_t t = j + (int64_t)(u * (double)(hw - j));
            if (t >= hw) /* u < 1, but rounding */
                t = hw - 1;
            int64_t v = perm[j];
            perm[j] = perm[t];
            perm[t] = v;
            took[j] = t;
            idx[k * size + j] = perm[j];
        }
        /* undone in reverse: perm is 0..hw-1 again for the next subset */
        for (int64_t j = size - 1; j >= 0; j--) {
            int64_t v = perm[j];
            perm[j] = perm[took[j]];
            perm[took[j]] = v;
        }
    }
    free(perm);
    free(took);
    return 0;
}

/* The map's sum over subset k (in the subset's order: fixed bits). */
static double subset_sum(const float *map, const int64_t *idx, int64_t size,
                         int64_t k)
{
    double s = 0;
    for (int64_t j = 0; j < size; j++)
        s += (double)map[idx[k * size + j]];
    return s;
}

double sm_metric_faithfulness_correlation(const float *map,
                                          const int64_t *idx, int64_t size,
                                          int64_t r, const double *drops)
{
    /* Pearson, two passes (the sums are cheap to make again). Constancy
     * is tested on the values themselves: their mean need not be one of
     * them in floating point, which would leave a spurious spread. */
    if (r < 2)
        return NAN;
    double a0 = subset_sum(map, idx, size, 0), ma = 0, mb = 0;
    int varies_a = 0, varies_b = 0;
    for (int64_t k = 0; k < r; k++) {
        double a = subset_sum(map, idx, size, k);
        varies_a |= a != a0;
        varies_b |= drops[k] != drops[0];
        ma += a;
        mb += drops[k];
    }
    if (!varies_a || !varies_b || !isfinite(ma) || !isfinite(mb))
        return NAN;
    ma /= (double)r;
    mb /= (double)r;
    double sab = 0, saa = 0, sbb = 0;
    for (int64_t k = 0; k < r; k++) {
        double da = subset_sum(map, idx, size, k) - ma, db = drops[k] - mb;
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    return sab / (sqrt(saa) * sqrt(sbb));
}

/* The probabilities of target on x (scores[0]) and on x with each subset
 * set to 0 (scores[1..r]), batch images a model run. */
static int subset_scores(const sm_model_scoring *sc, const float *x,
                         int64_t c, int64_t h, int64_t w, const int64_t *idx,
                         int64_t size, int64_t r, int target, int64_t batch,
                         double *scores, sm_err *err)
{
    const int64_t hw = h * w, per = c * hw;
    int *tg = malloc(sizeof(int) * (size_t)batch);
    if (!tg)
        return sm_err_set(err, "faithfulness: out of memory");
    int rc = 0;
    for (int64_t k0 = 0; k0 <= r && rc == 0; k0 += batch) {
        int64_t nb = r + 1 - k0 < batch ? r + 1 - k0 : batch;
        sm_tensor *t = sm_tensor_new(4, (int64_t[]){nb, c, h, w});
        if (!t) {
            rc = sm_err_set(err, "faithfulness: out of memory");
            break;
        }
        for (int64_t b = 0; b < nb; b++) {
            float *im = t->data + b * per;
            memcpy(im, x, sizeof(float) * (size_t)per);
            int64_t k = k0 + b - 1; /* image 0 is x itself */
            for (int64_t j = 0; k >= 0 && j < size; j++)
                for (int64_t ch = 0; ch < c; ch++)
                    im[ch * hw + idx[k * size + j]] = 0;
            tg[b] = target;
        }
        rc = sm_model_target_scores(sc, t, tg, scores + k0, err);
        sm_tensor_destroy(&t);
    }
    free(tg);
    return rc;
}

int sm_metric_faithfulness(const sm_model_scoring *sc, const float *x,
                           int64_t c, int64_t h, int64_t w, const float *map,
                           int target, const sm_metric_params *p,
                           uint64_t seed, const char *id, int64_t batch,
                           double *value, long *evals, sm_err *err)
{
    const int64_t hw = h * w;
    int64_t r = p->faithfulness_subsets > 0 ? p->faithfulness_subsets
                                            : SM_METRIC_FAITHFULNESS_SUBSETS;
    int64_t size = p->faithfulness_size > 0 ? p->faithfulness_size : w;
    if (size > hw) /* every subset the whole image: documented */
        size = hw;
    if (batch < 1)
        batch = 64;
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(r * size));
    double *s = malloc(sizeof(double) * (size_t)(r + 1));
    int rc = -1;
    if (!idx || !s) {
        sm_err_set(err, "faithfulness: out of memory");
        goto out;
    }
    uint64_t key = sm_rng_key(seed, (const char *[]){id, "metric",
                                                     "faithfulness", NULL});
    /* the probability of the originally predicted class, as deletion's */
    sm_model_scoring pc = *sc;
    pc.score_prob = 1;
    pc.forward_only = 1;
    if (sm_metric_faithfulness_subsets(key, hw, size, r, idx, err) ||
        subset_scores(&pc, x, c, h, w, idx, size, r, target, batch, s, err))
        goto out;
    double s0 = s[0];
    for (int64_t k = 0; k < r; k++) /* the drops, in place */
        s[k] = s0 - s[k + 1];
    *value = sm_metric_faithfulness_correlation(map, idx, size, r, s);
    *evals = (long)(r + 1);
    rc = 0;
out:
    free(idx);
    free(s);
    return rc;
}
