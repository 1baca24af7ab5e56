/* The quality metrics of metrics.h: hand-computed cases, the numpy
 * fixture (tests/fixtures/make_metrics_fixture.py), max-sensitivity of
 * maps linear in x, and the metrics through the explain tasks. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/task.h"
#include "io/npy.h"
#include "metrics/metrics.h"
#include "tmodel.h"
#include "util/rng.h"

static double sparseness(const float *m, int64_t n)
{
    double v = -1;
    sm_err err = {0};
    cr_assert_eq(sm_metric_sparseness(m, n, &v, &err), 0, "%s", err.msg);
    return v;
}

/* --- by hand ------------------------------------------------------------- */

Test(metrics_quality, sparseness_by_hand)
{
    /* |a| sorted 0, 1, 1, 2: (-3 x 0 - 1 x 1 + 1 x 1 + 3 x 2) / (4 x 4) */
    cr_assert_float_eq(sparseness((float[]){0, -1, 2, 1}, 4), 0.375, 1e-15);
    /* all the mass on one pixel of 9: (n - 1) / n */
    float one[9] = {0};
    one[4] = -3;
    cr_assert_float_eq(sparseness(one, 9), 8.0 / 9.0, 1e-15);
    /* uniform: 0; all zero: 0 (documented), not NaN */
    cr_assert_eq(sparseness((float[]){2, 2, -2, 2}, 4), 0);
    cr_assert_eq(sparseness((float[]){0, 0, 0, 0}, 4), 0);
    cr_assert(isnan(sparseness((float[]){1, NAN, 0, 0}, 4)));
    cr_assert(isnan(sparseness((float[]){1, INFINITY, 0, 0}, 4)));
}

Test(metrics_quality, complexity_by_hand)
{
    cr_assert_float_eq(sm_metric_complexity((float[]){3, -3, 3, 3}, 4),
                       log(4.0), 1e-15);
    /* p = 1/4, 1/4, 1/2, 0: 1/2 ln 4 + 1/2 ln 2, the zero adds nothing */
    cr_assert_float_eq(sm_metric_complexity((float[]){1, -1, 2, 0}, 4),
                       1.5 * log(2.0), 1e-15);
    cr_assert_eq(sm_metric_complexity((float[]){0, 0, 5, 0}, 4), 0);
    cr_assert(isnan(sm_metric_complexity((float[]){0, 0, 0, 0}, 4)),
              "an all-zero map has no distribution");
    cr_assert(isnan(sm_metric_complexity((float[]){NAN, 1, 0, 0}, 4)));
}

Test(metrics_quality, faithfulness_correlation_by_hand)
{
    /* a 3 x 3 map, subsets of 2 pixels whose sums are 1, 2, 3 */
    const float map[9] = {0.5f, 0.5f, 1, 1, 1.5f, 1.5f, 0, 0, 4};
    const int64_t idx[6] = {0, 1, 2, 3, 4, 5};
    /* drops 2, 4, 7: sums centred -1, 0, 1, drops -7/3, -1/3, 8/3:
     * r = 5 / sqrt(2 x 114 / 9) */
    double r = sm_metric_faithfulness_correlation(map, idx, 2, 3,
                                                  (double[]){2, 4, 7});
    cr_assert_float_eq(r, 5 / sqrt(228.0 / 9.0), 1e-14);
    /* the drops reversed: the opposite sign */
    cr_assert_float_eq(sm_metric_faithfulness_correlation(
                           map, idx, 2, 3, (double[]){7, 4, 2}),
                       -5 / sqrt(228.0 / 9.0), 1e-14);
    /* constant drops, constant sums, one subset: undefined */
    cr_assert(isnan(sm_metric_faithfulness_correlation(
        map, idx, 2, 3, (double[]){0.1, 0.1, 0.1})));
    const int64_t same[6] = {0, 1, 1, 0, 6, 8}; /* 1, 1, 4: not constant */
    cr_assert(!isnan(sm_metric_faithfulness_correlation(
        map, same, 2, 3, (double[]){1, 2, 3})));
    const int64_t flat[6] = {0, 1, 2, 6, 3, 7}; /* 1, 1, 1 */
    cr_assert(isnan(sm_metric_faithfulness_correlation(
        map, flat, 2, 3, (double[]){1, 2, 3})));
    cr_assert(isnan(sm_metric_faithfulness_correlation(map, idx, 2, 1,
                                                       (double[]){1})));
}

Test(metrics_quality, subsets_are_distinct_pixels_and_fixed_by_the_key)
{
    enum { HW = 30, S = 7, R = 50 };
    int64_t a[R * S], b[R * S], c[R * S], whole[HW];
    sm_err err = {0};
    cr_assert_eq(sm_metric_faithfulness_subsets(5, HW, S, R, a, &err), 0);
    cr_assert_eq(sm_metric_faithfulness_subsets(5, HW, S, R, b, &err), 0);
    cr_assert_eq(sm_metric_faithfulness_subsets(6, HW, S, R, c, &err), 0);
    cr_assert(memcmp(a, b, sizeof a) == 0, "the same key, the same subsets");
    cr_assert(memcmp(a, c, sizeof a) != 0, "another key, other subsets");
    int hits[HW] = {0};
    for (int k = 0; k < R; k++)
        for (int j = 0; j < S; j++) {
            int64_t v = a[k * S + j];
            cr_assert(v >= 0 && v < HW);
            hits[v]++;
            for (int q = 0; q < j; q++)
                cr_assert_neq(a[k * S + q], v, "subset %d repeats %lld", k,
                              (long long)v);
        }
    for (int i = 0; i < HW; i++) /* 350 draws over 30 pixels */
        cr_assert_gt(hits[i], 0, "pixel %d never drawn", i);
    /* a subset of every pixel: a permutation */
    cr_assert_eq(sm_metric_faithfulness_subsets(9, HW, HW, 1, whole, &err), 0);
    int seen[HW] = {0};
    for (int i = 0; i < HW; i++)
        seen[whole[i]]++;
    for (int i = 0; i < HW; i++)
        cr_assert_eq(seen[i], 1);
}

/* --- the numpy fixture ---------------------------------------------------- */

static void near(double got, double want, const char *what, int k)
{
    if (isnan(want)) {
        cr_assert(isnan(got), "%s of map %d: %.17g, numpy: nan", what, k, got);
        return;
    }
    cr_assert(fabs(got - want) <= 1e-12 * (1 + fabs(want)),
              "%s of map %d: %.17g, numpy: %.17g", what, k, got, want);
}

Test(metrics_quality, match_numpy)
{
    sm_err err = {0};
    sm_tensor *maps = sm_npy_read("tests/fixtures/metrics/maps.npy", &err);
    cr_assert_not_null(maps, "%s", err.msg);
    FILE *f = fopen("tests/fixtures/metrics/quality.txt", "r");
    cr_assert_not_null(f);
    int k_, r_, s_, h_, w_;
    cr_assert_eq(fscanf(f, "%d %d %d %d %d", &k_, &r_, &s_, &h_, &w_), 5);
    cr_assert(maps->ndim == 3 && maps->shape[0] == k_ &&
              maps->shape[1] == h_ && maps->shape[2] == w_);
    int64_t hw = h_ * w_;
    int64_t *idx = malloc(sizeof(int64_t) * (size_t)(r_ * s_));
    double *drops = malloc(sizeof(double) * (size_t)(k_ * r_));
    for (int i = 0; i < r_ * s_; i++) {
        long long v;
        cr_assert_eq(fscanf(f, "%lld", &v), 1);
        idx[i] = v;
    }
    for (int i = 0; i < k_ * r_; i++)
        cr_assert_eq(fscanf(f, "%lf", &drops[i]), 1);
    for (int k = 0; k < k_; k++) {
        double want[3];
        cr_assert_eq(fscanf(f, "%lf %lf %lf", &want[0], &want[1], &want[2]),
                     3);
        const float *m = maps->data + k * hw;
        near(sparseness(m, hw), want[0], "sparseness", k);
        near(sm_metric_complexity(m, hw), want[1], "complexity", k);
        near(sm_metric_faithfulness_correlation(m, idx, s_, r_,
                                                drops + k * r_),
             want[2], "faithfulness", k);
    }
    fclose(f);
    free(idx);
    free(drops);
    sm_tensor_destroy(&maps);
}

/* --- faithfulness on a model ------------------------------------------------ */

/* Class 0's logit is the sum of the pixels, class 1's is 0: p0 =
 * sigmoid(sum), so every subset's drop is known. */
Test(metrics_quality, faithfulness_on_a_model_by_hand)
{
    enum { C = 2, H = 3, W = 4, HW = H * W };
    sm_tensor *wt = sm_tensor_new(2, (int64_t[]){2, C * HW});
    for (int i = 0; i < C * HW; i++)
        wt->data[i] = 1; /* row 0; row 1 set to 0 below */
    for (int i = C * HW; i < 2 * C * HW; i++)
        wt->data[i] = 0;
    sm_model *m = tmodel_linear(wt, NULL, C, H, W);
    float x[C * HW], map[HW];
    for (int i = 0; i < C * HW; i++)
        x[i] = (float)(sm_rng_uniform(3, (uint64_t)i) - 0.3);
    for (int i = 0; i < HW; i++)
        map[i] = (float)sm_rng_normal(4, (uint64_t)i);
    /* logits scored as given: the metric asks for the probability */
    sm_model_scoring sc = {m, 0, 0, 0, 0};
    sm_metric_params p = {.faithfulness_subsets = 9, .faithfulness_size = 5};
    double got, got1;
    long evals;
    sm_err err = {0};
    cr_assert_eq(sm_metric_faithfulness(&sc, x, C, H, W, map, 0, &p, 17, "a/b",
                                        4, &got, &evals, &err),
                 0, "%s", err.msg);
    cr_assert_eq(evals, 10);
    /* the same with every image in one batch: the same bits */
    cr_assert_eq(sm_metric_faithfulness(&sc, x, C, H, W, map, 0, &p, 17, "a/b",
                                        64, &got1, &evals, &err),
                 0);
    cr_assert(memcmp(&got, &got1, sizeof got) == 0);
    /* by hand: the documented stream, sigmoid drops, Pearson */
    uint64_t key = sm_rng_key(17, (const char *[]){"a/b", "metric",
                                                   "faithfulness", NULL});
    int64_t idx[9 * 5];
    cr_assert_eq(sm_metric_faithfulness_subsets(key, HW, 5, 9, idx, &err), 0);
    double total = 0, a[9], d[9], ma = 0, md = 0;
    for (int i = 0; i < C * HW; i++)
        total += x[i];
    for (int k = 0; k < 9; k++) {
        double gone = 0;
        a[k] = 0;
        for (int j = 0; j < 5; j++) {
            int64_t q = idx[k * 5 + j];
            a[k] += map[q];
            gone += x[q] + x[HW + q]; /* both channels */
        }
        d[k] = 1 / (1 + exp(-total)) - 1 / (1 + exp(-(total - gone)));
        ma += a[k] / 9;
        md += d[k] / 9;
    }
    double sab = 0, saa = 0, sdd = 0;
    for (int k = 0; k < 9; k++) {
        sab += (a[k] - ma) * (d[k] - md);
        saa += (a[k] - ma) * (a[k] - ma);
        sdd += (d[k] - md) * (d[k] - md);
    }
    cr_assert_float_eq(got, sab / sqrt(saa * sdd), 1e-5);
    /* the map that is the pixels' own sum ranks subsets as the drops do
     * (monotone, not linear: sigmoid) */
    float own[HW];
    for (int i = 0; i < HW; i++)
        own[i] = x[i] + x[HW + i];
    cr_assert_eq(sm_metric_faithfulness(&sc, x, C, H, W, own, 0, &p, 17, "a/b",
                                        4, &got, &evals, &err),
                 0);
    cr_assert_gt(got, 0.95, "%g", got);
    /* another image id: other subsets, another value */
    cr_assert_eq(sm_metric_faithfulness(&sc, x, C, H, W, map, 0, &p, 17, "a/c",
                                        4, &got1, &evals, &err),
                 0);
    cr_assert_neq(got1, sab / sqrt(saa * sdd));
    sm_tensor_destroy(&wt);
    sm_model_destroy(&m);
}

/* --- max-sensitivity ------------------------------------------------------ */

enum { SC = 2, SH = 3, SW = 3, SHW = SH * SW };

/* map = 2 x channel 0 - channel 1: linear in x */
static int linear_map(void *arg, const sm_tensor *x, float *maps, sm_err *err)
{
    (void)err;
    ++*(int *)arg;
    for (int64_t k = 0; k < x->shape[0]; k++)
        for (int i = 0; i < SHW; i++)
            maps[k * SHW + i] = 2 * x->data[k * SC * SHW + i] -
                                x->data[k * SC * SHW + SHW + i];
    return 0;
}

/* The value by its definition: the documented draws, and
 * ||A delta|| / ||A x|| with A the linear map above (in double). */
static double sensitivity_by_hand(const float *x, int n, double frac,
                                  uint64_t seed, const char *id)
{
    float lo = x[0], hi = x[0];
    for (int i = 0; i < SC * SHW; i++)
        lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    double r = frac * ((double)hi - lo), ax = 0, most = 0;
    for (int i = 0; i < SHW; i++)
        ax += pow(2.0 * x[i] - x[SHW + i], 2);
    uint64_t key = sm_rng_key(seed, (const char *[]){id, "metric",
                                                     "sensitivity", NULL});
    for (int k = 0; k < n; k++) {
        double s = 0, dl[SC * SHW];
        for (int i = 0; i < SC * SHW; i++)
            dl[i] = r * (2 * sm_rng_uniform(key, (uint64_t)(k * SC * SHW + i)) - 1);
        for (int i = 0; i < SHW; i++)
            s += pow(2 * dl[i] - dl[SHW + i], 2);
        most = fmax(most, sqrt(s / ax));
    }
    return most;
}

Test(metrics_quality, sensitivity_of_a_linear_map)
{
    float x[SC * SHW], map[SHW];
    for (int i = 0; i < SC * SHW; i++)
        x[i] = (float)sm_rng_uniform(8, (uint64_t)i) * 4 - 1;
    for (int i = 0; i < SHW; i++)
        map[i] = 2 * x[i] - x[SHW + i];
    sm_metric_params p = {.sensitivity_samples = 7};
    double v, v1;
    int calls = 0;
    sm_err err = {0};
    cr_assert_eq(sm_metric_sensitivity(x, SC, SH, SW, map, &p, 5, "img", 3,
                                       linear_map, &calls, &v, &err),
                 0, "%s", err.msg);
    cr_assert_eq(calls, 3, "7 perturbations in batches of 3");
    cr_assert_float_eq(v, sensitivity_by_hand(x, 7, 0.02, 5, "img"), 1e-5);
    /* delta within the ball: |2 d0 - d1| <= 3 r at every pixel */
    float lo = x[0], hi = x[0];
    for (int i = 0; i < SC * SHW; i++)
        lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    double ax = 0;
    for (int i = 0; i < SHW; i++)
        ax += (double)map[i] * map[i];
    cr_assert_leq(v, 0.02 * (hi - lo) * 3 * sqrt((double)SHW) / sqrt(ax));
    cr_assert_gt(v, 0);
    /* batching does not change the bits */
    calls = 0;
    cr_assert_eq(sm_metric_sensitivity(x, SC, SH, SW, map, &p, 5, "img", 64,
                                       linear_map, &calls, &v1, &err),
                 0);
    cr_assert_eq(calls, 1);
    cr_assert(memcmp(&v, &v1, sizeof v) == 0);
    /* twice the radius, twice the value (exactly linear, up to float) */
    p.sensitivity_radius = 0.04;
    cr_assert_eq(sm_metric_sensitivity(x, SC, SH, SW, map, &p, 5, "img", 3,
                                       linear_map, &calls, &v1, &err),
                 0);
    cr_assert_float_eq(v1, 2 * v, 1e-4 * v);
    /* N = 0, the default: NaN and nothing explained; a zero map: NaN */
    p = (sm_metric_params){0};
    calls = 0;
    cr_assert_eq(sm_metric_sensitivity(x, SC, SH, SW, map, &p, 5, "img", 3,
                                       linear_map, &calls, &v, &err),
                 0);
    cr_assert(isnan(v));
    p.sensitivity_samples = 4;
    float zero[SHW] = {0};
    cr_assert_eq(sm_metric_sensitivity(x, SC, SH, SW, zero, &p, 5, "img", 3,
                                       linear_map, &calls, &v, &err),
                 0);
    cr_assert(isnan(v));
    cr_assert_eq(calls, 0);
}

static int failing_map(void *arg, const sm_tensor *x, float *maps, sm_err *err)
{
    (void)arg, (void)x, (void)maps;
    return sm_err_set(err, "m: broken");
}

Test(metrics_quality, sensitivity_passes_on_the_explainer_error)
{
    float x[SC * SHW] = {1, 2}, map[SHW] = {1};
    sm_metric_params p = {.sensitivity_samples = 2};
    double v;
    sm_err err = {0};
    cr_assert_eq(sm_metric_sensitivity(x, SC, SH, SW, map, &p, 5, "img", 3,
                                       failing_map, NULL, &v, &err),
                 -1);
    cr_assert_str_eq(err.msg, "m: broken");
}

/* --- through the tasks ------------------------------------------------------ */

/* grad (gradient x input) of a linear model's logit is w (.) x summed over
 * channels, linear in x: finish()'s max-sensitivity re-explains with the
 * same method and gives the value by hand; the batch size of the task
 * changes no bit of any metric; N = 0 leaves sensitivity NaN (empty). */
Test(metrics_quality, tasks_compute_every_metric)
{
    enum { N = 5, C = 2, H = 4, W = 5, HW = H * W };
    sm_tensor *wt = sm_tensor_new(2, (int64_t[]){3, C * HW});
    for (int64_t i = 0; i < sm_tensor_numel(wt); i++)
        wt->data[i] = (float)sm_rng_normal(11, (uint64_t)i);
    sm_model *m = tmodel_linear(wt, NULL, C, H, W);
    sm_tensor *x = tmodel_images(N, C, H, W, 12);
    const char *ids[N] = {"a", "b", "c", "d", "e"};
    sm_explain_setup s = {.model = m, .metrics = 1, .seed = 6,
                          .metric = {.faithfulness_subsets = 12,
                                     .sensitivity_samples = 4}};
    float maps[N][HW], maps1[N][HW];
    sm_explain_result res[N], one[N];
    sm_err err = {0};
    sm_explainer *e = tmodel_explainer("grad", NULL);
    for (int r = 0; r < N; r++)
        res[r].map = maps[r], one[r].map = maps1[r];
    cr_assert_eq(sm_explain_targets(&s, x, NULL, ids, res, &err), 0);
    cr_assert_eq(sm_explain_images(&s, e, x, ids, res, &err), 0, "%s",
                 err.msg);
    /* each image alone (a batch of 1) */
    for (int r = 0; r < N; r++) {
        sm_tensor xi = *x;
        xi.owns = 0;
        xi.shape[0] = 1;
        xi.data = x->data + r * C * HW;
        cr_assert_eq(sm_explain_targets(&s, &xi, NULL, ids + r, one + r, &err),
                     0);
        cr_assert_eq(sm_explain_images(&s, e, &xi, ids + r, one + r, &err), 0,
                     "%s", err.msg);
    }
    for (int r = 0; r < N; r++) {
        const sm_explain_result *a = &res[r], *b = &one[r];
        cr_assert(a->has_metrics && b->has_metrics);
        cr_assert(memcmp(maps[r], maps1[r], sizeof maps[r]) == 0);
        const double qa[] = {a->deletion_auc, a->insertion_auc, a->faithfulness,
                             a->sparseness, a->complexity, a->sensitivity};
        const double qb[] = {b->deletion_auc, b->insertion_auc, b->faithfulness,
                             b->sparseness, b->complexity, b->sensitivity};
        cr_assert(memcmp(qa, qb, sizeof qa) == 0, "image %d: batch of %d and "
                  "of 1 differ", r, N);
        double sp;
        cr_assert_eq(sm_metric_sparseness(maps[r], HW, &sp, &err), 0);
        cr_assert_eq(sp, a->sparseness);
        cr_assert_eq(sm_metric_complexity(maps[r], HW), a->complexity);
        cr_assert(a->faithfulness >= -1 && a->faithfulness <= 1);
        /* by hand: map(x + delta) - map(x) = sum_c w_tc delta_c */
        const float *xr = x->data + r * C * HW, *w = wt->data + a->target * C * HW;
        float lo = xr[0], hi = xr[0];
        for (int i = 0; i < C * HW; i++)
            lo = fminf(lo, xr[i]), hi = fmaxf(hi, xr[i]);
        double rad = 0.02 * ((double)hi - lo), norm = 0, most = 0;
        for (int i = 0; i < HW; i++)
            norm += (double)maps[r][i] * maps[r][i];
        uint64_t key = sm_rng_key(6, (const char *[]){ids[r], "metric",
                                                      "sensitivity", NULL});
        for (int k = 0; k < 4; k++) {
            double s2 = 0;
            for (int i = 0; i < HW; i++) {
                double dm = 0;
                for (int c = 0; c < C; c++) {
                    uint64_t at = (uint64_t)(k * C * HW + c * HW + i);
                    dm += w[c * HW + i] * rad * (2 * sm_rng_uniform(key, at) - 1);
                }
                s2 += dm * dm;
            }
            most = fmax(most, sqrt(s2 / norm));
        }
        cr_assert_float_eq(a->sensitivity, most, 1e-4 * most, "image %d", r);
    }
    /* max-sensitivity off (the default): NaN, the others as before */
    s.metric.sensitivity_samples = 0;
    sm_explain_results_free(one, N);
    cr_assert_eq(sm_explain_targets(&s, x, NULL, ids, one, &err), 0);
    cr_assert_eq(sm_explain_images(&s, e, x, ids, one, &err), 0);
    for (int r = 0; r < N; r++) {
        cr_assert(isnan(one[r].sensitivity));
        cr_assert(memcmp(&one[r].faithfulness, &res[r].faithfulness,
                         sizeof(double)) == 0);
    }
    sm_explain_results_free(res, N);
    sm_explain_results_free(one, N);
    sm_explainer_destroy(&e);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&wt);
    sm_model_destroy(&m);
}
