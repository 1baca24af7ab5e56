/* LIME and KernelSHAP on superpixels: a black box linear in the on/off
 * state of grid superpixels (its output taken as the probability) gives
 * back its weights (KernelSHAP exactly, by full enumeration; LIME with a
 * tiny ridge penalty); maps do not depend on the batch, and only to
 * rounding on internal_batch; bad parameters are refused by name. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explainer.h"
#include "tmodel.h"
#include "util/rng.h"

#define K 3

/* out = W flatten(x) + b, x [N, c, h, w], K outputs; *wout gets W. */
static sm_model *linear_model(int64_t c, int64_t h, int64_t w,
                              sm_tensor **wout)
{
    int64_t f = c * h * w;
    sm_tensor *wt = sm_tensor_new(2, (int64_t[]){K, f});
    sm_tensor *b = sm_tensor_new(1, (int64_t[]){K});
    for (int64_t i = 0; i < K * f; i++)
        wt->data[i] = (float)sm_rng_normal(5, (uint64_t)i);
    for (int i = 0; i < K; i++)
        b->data[i] = 0.25f * (float)i;
    sm_model *m = tmodel_linear(wt, b, c, h, w);
    sm_tensor_destroy(&b);
    *wout = wt;
    return m;
}

static const char *const ids4[] = {"a", "b", "c", "d"};

/* Runs method name with "key=value" settings (NULL-ended) on x, maps
 * N x H x W; sm_explainer_run's result. */
static int explain(const char *name, const char *const *set, sm_model *m,
                   int output_probs, const sm_tensor *x, const int *target,
                   const char *const *ids, float *maps, sm_explain_out *out,
                   sm_err *err)
{
    sm_explain_ctx ctx = {m, 0, output_probs, 1, 42, NULL, 0, NULL};
    return tmodel_explain(name, set, &ctx, x, target,
                          ids ? ids : (const char *const *)ids4, maps, out, err);
}

/* The linear black box: a 2 x 6 x 6 image of ones on a 3 x 3 grid (2 x 2
 * cells), hidden cells 0: the output is b + sum_j z_j W_j with W_j the sum
 * of the weights over cell j. */
#define LC 2
#define LH 6
#define LW 6
static void cell_weights(const sm_tensor *wt, int target, double *wj)
{
    for (int j = 0; j < 9; j++)
        wj[j] = 0;
    const float *row = wt->data + target * LC * LH * LW;
    for (int ch = 0; ch < LC; ch++)
        for (int r = 0; r < LH; r++)
            for (int q = 0; q < LW; q++)
                wj[(r / 2) * 3 + q / 2] += row[ch * LH * LW + r * LW + q];
}

static void linear_case(const char *method, const char *const *set,
                        double tol)
{
    sm_tensor *wt;
    sm_model *m = linear_model(LC, LH, LW, &wt);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){2, LC, LH, LW});
    for (int64_t i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] = 1;
    int target[2] = {2, 0};
    float maps[2 * LH * LW];
    sm_explain_out out[2] = {0};
    sm_err err = {0};
    cr_assert_eq(explain(method, set, m, 1, x, target, NULL, maps, out, &err),
                 0, "%s", err.msg);
    for (int i = 0; i < 2; i++) {
        double wj[9], full = 0.25 * target[i];
        cell_weights(wt, target[i], wj);
        for (int j = 0; j < 9; j++)
            full += wj[j];
        cr_assert_float_eq(out[i].score, full, 1e-5);
        for (int r = 0; r < LH; r++)
            for (int q = 0; q < LW; q++)
                cr_assert_float_eq(maps[i * LH * LW + r * LW + q],
                                   wj[(r / 2) * 3 + q / 2], tol,
                                   "%s image %d pixel %d,%d: %g vs %g", method,
                                   i, r, q, maps[i * LH * LW + r * LW + q],
                                   wj[(r / 2) * 3 + q / 2]);
        cr_assert(strstr(sm_record_json(&out[i].record), "\"n_segments\": 9"), "%s",
                  sm_record_json(&out[i].record));
    }
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&wt);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 2);
}

Test(lime, lime_recovers_a_linear_black_box)
{
    linear_case("lime",
                (const char *[]){"segmentation=grid", "cells=3",
                                 "hide=constant", "hide_value=0",
                                 "alpha=1e-9", "samples=300", NULL},
                1e-4);
}

Test(lime, lime_extras_and_evals)
{
    sm_tensor *wt;
    sm_model *m = linear_model(LC, LH, LW, &wt);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){1, LC, LH, LW});
    for (int64_t i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] = 1;
    int target[1] = {1};
    float maps[LH * LW];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    cr_assert_eq(explain("lime",
                         (const char *[]){"segmentation=grid", "cells=3",
                                          "hide=constant", NULL},
                         m, 1, x, target, NULL, maps, out, &err),
                 0, "%s", err.msg);
    cr_assert_eq(out[0].evals, 1000);
    const char *keys[] = {"\"intercept\": ", "\"score\": ", "\"local_pred\": ",
                          "\"weights\": [", "\"method\": \"grid\"",
                          "\"cells\": 3", NULL};
    for (int k = 0; keys[k]; k++)
        cr_assert(strstr(sm_record_json(&out[0].record), keys[k]), "%s missing: %s", keys[k],
                  sm_record_json(&out[0].record));
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&wt);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 1);
}

/* Small grayscale images get quickshift's kernel_size 1 unless set. */
Test(lime, quickshift_kernel_size_rule_is_recorded)
{
    sm_tensor *wt;
    sm_model *m = linear_model(1, 16, 16, &wt);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){1, 1, 16, 16});
    for (int r = 0; r < 16; r++)
        for (int q = 0; q < 16; q++) /* four flat quadrants */
            x->data[r * 16 + q] = 0.2f * (float)((r / 8) * 2 + q / 8) + 0.1f;
    int target[1] = {0};
    float maps[256];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    cr_assert_eq(explain("lime", (const char *[]){"samples=50", NULL}, m, 0, x,
                         target, NULL, maps, out, &err),
                 0, "%s", err.msg);
    cr_assert(strstr(sm_record_json(&out[0].record), "\"kernel_size\": 1,"), "%s",
              sm_record_json(&out[0].record));
    cr_assert(strstr(sm_record_json(&out[0].record), "\"rescaled\": false"), "%s",
              sm_record_json(&out[0].record));
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&wt);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 1);
}

/* Random 3 x 12 x 12 images, softmax of a random linear model: each map is
 * bit-identical alone or in a batch (runs hold one image), and equal to
 * rounding whatever internal_batch. */
static void batch_independent(const char *method)
{
    sm_tensor *wt;
    sm_model *m = linear_model(3, 12, 12, &wt);
    int64_t hw = 144;
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){3, 3, 12, 12});
    for (int64_t i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] = (float)sm_rng_uniform(9, (uint64_t)i);
    int target[3] = {0, 1, 2};
    float maps[3 * 144], one[144], small[3 * 144];
    sm_explain_out out[3] = {0}, o1[1] = {0}, o7[3] = {0};
    sm_err err = {0};
    const char *set[] = {"segmentation=grid", "cells=4", NULL};
    const char *set7[] = {"segmentation=grid", "cells=4", "internal_batch=7",
                          NULL};
    cr_assert_eq(explain(method, set, m, 0, x, target, NULL, maps, out, &err),
                 0, "%s", err.msg);
    cr_assert_eq(explain(method, set7, m, 0, x, target, NULL, small, o7, &err),
                 0, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        sm_tensor *xi = sm_tensor_new(4, (int64_t[]){1, 3, 12, 12});
        memcpy(xi->data, x->data + i * 3 * hw, sizeof(float) * 3 * hw);
        cr_assert_eq(explain(method, set, m, 0, xi, target + i, ids4 + i, one,
                             o1, &err),
                     0, "%s", err.msg);
        cr_assert(memcmp(one, maps + i * hw, sizeof one) == 0,
                  "%s image %d differs alone", method, i);
        cr_assert_eq(o1[0].evals, out[i].evals);
        for (int64_t q = 0; q < hw; q++)
            cr_assert_float_eq(small[i * hw + q], maps[i * hw + q], 1e-5,
                               "%s image %d pixel %ld", method, i, (long)q);
        sm_tensor_destroy(&xi);
    }
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&wt);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 3);
    sm_explain_out_free(o1, 1);
    sm_explain_out_free(o7, 3);
}

Test(lime, lime_is_batch_independent) { batch_independent("lime"); }

/* A refusal whose message contains every word of want. */
static void refused(const char *method, const char *const *set,
                    const char *const *want)
{
    sm_tensor *wt;
    sm_model *m = linear_model(LC, LH, LW, &wt);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){1, LC, LH, LW});
    for (int64_t i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] = 0.5f;
    int target[1] = {0};
    float maps[LH * LW];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    cr_assert_neq(explain(method, set, m, 0, x, target, NULL, maps, out, &err),
                  0, "%s accepted %s", method, set[0]);
    for (int k = 0; want[k]; k++)
        cr_assert(strstr(err.msg, want[k]), "'%s' lacks '%s'", err.msg,
                  want[k]);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&wt);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 1);
}

Test(lime, bad_parameters_are_refused_by_name)
{
    refused("lime", (const char *[]){"segmentation=watershed", NULL},
            (const char *[]){"lime", "segmentation", "watershed", NULL});
    refused("lime", (const char *[]){"samples=0", NULL},
            (const char *[]){"lime", "samples", "0", NULL});
    refused("lime", (const char *[]){"feature_selection=best", NULL},
            (const char *[]){"lime", "feature_selection", "best", NULL});
    refused("lime", (const char *[]){"hide=blur", NULL},
            (const char *[]){"lime", "hide", "blur", NULL});
    /* a flat image is one quickshift segment */
    refused("lime", (const char *[]){"samples=10", NULL},
            (const char *[]){"lime", "quickshift", "kernel_size", NULL});
    refused("lime", (const char *[]){"segmentation=grid", "cells=1", NULL},
            (const char *[]){"lime", "grid", "cells", NULL});
}

Test(lime, kernelshap_recovers_a_linear_black_box_exactly)
{
    /* 9 cells: 2^9 - 2 = 510 coalitions, all enumerated by the default
     * budget (2 * 9 + 2048) */
    linear_case("kernelshap",
                (const char *[]){"segmentation=grid", "cells=3",
                                 "hide=constant", "hide_value=0", NULL},
                1e-5);
}

Test(lime, kernelshap_extras_and_evals)
{
    sm_tensor *wt;
    sm_model *m = linear_model(LC, LH, LW, &wt);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){1, LC, LH, LW});
    for (int64_t i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] = 1;
    int target[1] = {1};
    float maps[LH * LW];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    cr_assert_eq(explain("kernelshap",
                         (const char *[]){"segmentation=grid", "cells=3",
                                          "hide=constant", "budget=100", NULL},
                         m, 1, x, target, NULL, maps, out, &err),
                 0, "%s", err.msg);
    cr_assert_eq(out[0].evals, 102);
    const char *keys[] = {"\"base_value\": 0.25,", "\"fx\": ", "\"phi\": [",
                          "\"n_segments\": 9", NULL};
    for (int k = 0; keys[k]; k++)
        cr_assert(strstr(sm_record_json(&out[0].record), keys[k]), "%s missing: %s", keys[k],
                  sm_record_json(&out[0].record));
    /* efficiency holds whatever the budget */
    double sum = 0, wj[9];
    cell_weights(wt, 1, wj);
    for (int r = 0; r < LH; r += 2)
        for (int q = 0; q < LW; q += 2)
            sum += maps[r * LW + q];
    double full = 0;
    for (int j = 0; j < 9; j++)
        full += wj[j];
    cr_assert_float_eq(sum, full, 1e-5);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&wt);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 1);
}

Test(lime, kernelshap_is_batch_independent)
{
    batch_independent("kernelshap");
}

Test(lime, kernelshap_bad_parameters_are_refused_by_name)
{
    refused("kernelshap", (const char *[]){"segmentation=watershed", NULL},
            (const char *[]){"kernelshap", "segmentation", "watershed", NULL});
    refused("kernelshap", (const char *[]){"budget=-1", NULL},
            (const char *[]){"kernelshap", "budget", "-1", NULL});
    refused("kernelshap", (const char *[]){"segmentation=grid", "cells=1", NULL},
            (const char *[]){"kernelshap", "grid", "cells", NULL});
}
