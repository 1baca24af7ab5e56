/* Anchor on superpixels (core/explain/anchor.c): black boxes whose rule is
 * known find it; the empty anchor when the label never changes; the
 * reported lower bound is KL-LUCB's, computed here in closed form; on a
 * random linear model the examples and counter-examples are labelled as
 * the model, computed here, labels them; a run is the same twice and the
 * same as its rounds driven as the pipeline drives them; bad settings and
 * corrupt states are refused with a message.
 *
 * The image is 1 x 12 x 12 of ones on a 4 x 4 grid (cells=4), hidden
 * pixels 0. Grid boundaries fall at floor(i * 12 / 4) (core/segment/grid.c),
 * so every cell is 3 x 3 pixels and cells are numbered row by row: cell 3
 * is rows 0..2 x columns 9..11, cell 7 rows 3..5 x columns 9..11. The
 * rule model has two classes: logit0 = a bias, logit1 = the sum of the
 * pixels of cells 3 and 7 (so 9 for each of them shown). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explainer.h"
#include "tmodel.h"
#include "util/rng.h"

#define S 12
#define HW (S * S)
#define CELLS 16
#define AREA 9

/* 1 when pixel (r, q) lies in cell 3 or cell 7 (by hand, see above). */
static int in_rule(int r, int q)
{
    return r < 6 && q >= 9;
}

/* logit0 = bias0, logit1 = sum of the pixels of cells 3 and 7. */
static sm_model *rule_model(float bias0)
{
    float weight[2 * CELLS] = {0};
    weight[CELLS + 3] = weight[CELLS + 7] = 1;
    return tmodel_cells(S, 4, 2, weight, (const float[]){bias0, 0});
}

static sm_tensor *ones(void)
{
    return tmodel_ones(1, 1, S, S);
}

static const char *const id1[] = {"img/a"};

/* The settings every case shares. */
static const char *const grid[] = {"segmentation=grid", "cells=4",
                                   "hide=constant", "hide_value=0", NULL};

static int run_anchor(sm_model *m, const sm_tensor *x, int target,
                      const char *const *more, float *map,
                      sm_explain_out *out, sm_err *err)
{
    const char *set[32];
    tmodel_concat(set, 32, grid, more);
    sm_explain_ctx ctx = {m, 0, 0, 1, 42, NULL, 0, NULL};
    return tmodel_explain("anchor", set, &ctx, x, &target, id1, map, out,
                          err);
}

/* ---- reading the record ---------------------------------------------- */

/* 1 for "key": true, 0 for false. */
static int jbool(const char *json, const char *key)
{
    char t[64], f[64];
    snprintf(t, sizeof t, "\"%s\": true", key);
    snprintf(f, sizeof f, "\"%s\": false", key);
    int is_t = strstr(json, t) != NULL, is_f = strstr(json, f) != NULL;
    cr_assert(is_t != is_f, "%s is not a boolean: %s", key, json);
    return is_t;
}

/* The "anchor" ids into ids (at most CELLS); their count. */
static int janchor(const char *json, int *ids)
{
    const char *p = strstr(json, "\"anchor\": [");
    cr_assert_not_null(p, "anchor missing: %s", json);
    p += strlen("\"anchor\": [");
    int n = 0;
    while (*p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        cr_assert(end != p && n < CELLS, "bad anchor: %s", json);
        ids[n++] = (int)v;
        p = end;
        if (*p == ',')
            p++;
        while (*p == ' ')
            p++;
    }
    return n;
}

/* ---- 1. known rules --------------------------------------------------- */

/* The label is 1 exactly when cells 3 and 7 are both shown (18 > 13.5,
 * 9 < 13.5): the anchor is {3, 7}, its precision 1 (every sample with
 * both shown keeps the label), its coverage the chance that a coverage
 * vector shows both, p_sample^2. */
static void rule_is_found(double p, int beam)
{
    sm_model *m = rule_model(1.5f * AREA);
    sm_tensor *x = ones();
    float map[HW];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    char ps[32], bs[32];
    snprintf(ps, sizeof ps, "p_sample=%g", p);
    snprintf(bs, sizeof bs, "beam_size=%d", beam);
    const char *more[] = {ps, bs, NULL};
    cr_assert_eq(run_anchor(m, x, 1, more, map, out, &err), 0, "%s",
                 err.msg);
    const char *json = sm_record_json(&out[0].record);
    int ids[CELLS];
    int n = janchor(json, ids);
    cr_assert_eq(n, 2, "p %g beam %d: %s", p, beam, json);
    cr_assert((ids[0] == 3 && ids[1] == 7) || (ids[0] == 7 && ids[1] == 3),
              "p %g beam %d: %s", p, beam, json);
    double prec = tmodel_jnum(json, "precision");
    double lb = tmodel_jnum(json, "precision_lb");
    double cov = tmodel_jnum(json, "coverage");
    double samples = tmodel_jnum(json, "samples");
    cr_assert_geq(prec, 0.95, "%s", json);
    cr_assert_eq(prec, 1.0, "%s", json);
    cr_assert_leq(lb, prec, "%s", json);
    cr_assert_gt(lb, 0.95 - 0.05, "verified: %s", json);
    /* coverage: a binomial share of 10000 vectors, 4 sigma */
    double c = p * p, sigma = sqrt(c * (1 - c) / 10000);
    cr_assert_leq(fabs(cov - c), 4 * sigma, "coverage %g, expected %g: %s",
                  cov, c, json);
    cr_assert(jbool(json, "found"), "%s", json);
    cr_assert_not(jbool(json, "truncated"), "%s", json);
    cr_assert_eq(tmodel_jnum(json, "label"), 1);
    cr_assert_eq(tmodel_jnum(json, "n_segments"), CELLS);
    cr_assert(strstr(json, "\"segmentation\": {\"method\": \"grid\", "
                           "\"cells\": 4"), "%s", json);
    cr_assert_gt(samples, 0);
    /* evals: the distinct rows labelled (at most 2^16 here) and the image */
    cr_assert_gt(out[0].evals, 1);
    cr_assert_leq(out[0].evals, 1 + 65536);
    /* the target's probability on the image: softmax of (13.5, 18) */
    cr_assert_float_eq(out[0].score, 1 / (1 + exp(13.5 - 18)), 1e-6);
    for (int r = 0; r < S; r++)
        for (int q = 0; q < S; q++)
            cr_assert_eq(map[r * S + q], in_rule(r, q) ? 1.0f : 0.0f,
                         "map at %d,%d", r, q);
    tmodel_grid_segments(&out[0].record, S, S, 4);
    /* examples: samples of the anchor that keep the label, so with cells
     * 3 and 7 shown; every sample of it keeps, so there are min(10, n)
     * of them and no counter-example */
    const sm_record_array *ex = tmodel_array(&out[0].record, "examples");
    cr_assert_not_null(ex, "%s", json);
    cr_assert(ex->ndim == 2 && ex->shape[1] == CELLS);
    cr_assert_eq(ex->shape[0], samples < 10 ? (int64_t)samples : 10);
    for (int64_t k = 0; k < ex->shape[0]; k++) {
        for (int j = 0; j < CELLS; j++)
            cr_assert(ex->data[k * CELLS + j] == 0 ||
                      ex->data[k * CELLS + j] == 1);
        cr_assert(ex->data[k * CELLS + 3] == 1 && ex->data[k * CELLS + 7] == 1,
                  "example %ld", (long)k);
    }
    cr_assert_null(tmodel_array(&out[0].record, "counter_examples"),
                   "no sample with cells 3 and 7 shown changes the label");
    sm_explain_out_free(out, 1);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

Test(anchor, rule_of_two_cells_is_found)
{
    rule_is_found(0.5, 1);
}

/* coverage follows p_sample (the reference draws it with 0.5) */
Test(anchor, rule_found_with_p_sample_0_7)
{
    rule_is_found(0.7, 1);
}

/* a wider beam: {3, 7} reached from both {3} and {7}, once */
Test(anchor, rule_found_with_a_beam_of_3)
{
    rule_is_found(0.5, 3);
}

/* The bias dominates: class 0 whatever is shown, so the empty anchor holds
 * after its first batch (all 100 keep: its lower bound 0.1^(1/100) =
 * 0.977 > 0.95). */
Test(anchor, a_label_that_never_changes_gives_the_empty_anchor)
{
    sm_model *m = rule_model(100);
    sm_tensor *x = ones();
    float map[HW];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    cr_assert_eq(run_anchor(m, x, 0, NULL, map, out, &err), 0, "%s",
                 err.msg);
    const char *json = sm_record_json(&out[0].record);
    cr_assert(strstr(json, "\"anchor\": []"), "%s", json);
    cr_assert_eq(tmodel_jnum(json, "precision"), 1.0, "%s", json);
    cr_assert_eq(tmodel_jnum(json, "coverage"), 1.0, "%s", json);
    cr_assert_eq(tmodel_jnum(json, "samples"), 100, "%s", json);
    cr_assert_leq(tmodel_jnum(json, "precision_lb"), 1.0, "%s", json);
    cr_assert(jbool(json, "found"), "%s", json);
    cr_assert_not(jbool(json, "truncated"), "%s", json);
    cr_assert_eq(tmodel_jnum(json, "label"), 0);
    /* a row is labelled once: the 100 samples' distinct rows (drawn here
     * as the method draws them: row k, superpixel j from counter
     * k * 16 + j of the stream (42, "img/a", "anchor")) and the image */
    uint64_t key = sm_rng_key(42, (const char *[]){"img/a", "anchor", NULL});
    unsigned rows[100];
    int distinct = 0;
    for (int k = 0; k < 100; k++) {
        rows[k] = 0;
        for (int j = 0; j < CELLS; j++)
            rows[k] |= (unsigned)(sm_rng_uniform(key, (uint64_t)(k * CELLS + j)) <
                                  0.5) << j;
        int seen = 0;
        for (int i = 0; i < k && !seen; i++)
            seen = rows[i] == rows[k];
        distinct += !seen;
    }
    cr_assert_eq(out[0].evals, distinct + 1, "%d distinct rows and the image",
                 distinct);
    for (int q = 0; q < HW; q++)
        cr_assert_eq(map[q], 0.0f, "pixel %d", q);
    tmodel_grid_segments(&out[0].record, S, S, 4);
    const sm_record_array *ex = tmodel_array(&out[0].record, "examples");
    cr_assert_not_null(ex);
    cr_assert(ex->shape[0] == 10 && ex->shape[1] == CELLS);
    cr_assert_null(tmodel_array(&out[0].record, "counter_examples"));
    sm_explain_out_free(out, 1);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* ---- 4. the KL bound -------------------------------------------------- */

/* With every sample keeping (mean 1) after n samples, KL-LUCB's lower
 * bound is the q with KL(1 || q) = -log q = log(1 / delta) / n, that is
 * delta^(1/n). Bisected 16 times from Pinsker's bracket [1 - sqrt(level /
 * 2), 1] (no wider than 1), the reported lower end lies within 2^-16
 * below it; KL clamps p to 1 - 1e-16, which moves q by ~1e-15, and the
 * record prints 9 digits: 1e-9 of slack. The empty anchor stops sampling
 * at the first multiple n of batch_size whose bound is >= threshold - tau,
 * and holds when it is > threshold: n by hand below. */
static void empty_bound(const char *const *more, double delta, long want_n)
{
    sm_model *m = rule_model(100);
    sm_tensor *x = ones();
    float map[HW];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    cr_assert_eq(run_anchor(m, x, 0, more, map, out, &err), 0, "%s",
                 err.msg);
    const char *json = sm_record_json(&out[0].record);
    cr_assert(strstr(json, "\"anchor\": []"), "%s", json);
    cr_assert_eq(tmodel_jnum(json, "samples"), want_n, "%s", json);
    double lb = tmodel_jnum(json, "precision_lb");
    double q = pow(delta, 1.0 / (double)want_n);
    cr_assert_leq(lb, q + 1e-9, "lb %.12g above the bound %.12g", lb, q);
    cr_assert_geq(lb, q - ldexp(1, -16) - 1e-9,
                  "lb %.12g more than 2^-16 below the bound %.12g", lb, q);
    cr_assert_eq(tmodel_jnum(json, "precision"), 1.0);
    cr_assert(jbool(json, "found"), "%s", json);
    sm_explain_out_free(out, 1);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

Test(anchor, empty_anchor_bound_is_kl_lucb_lower_bound)
{
    /* 0.1^(1/100) = 0.97724 > 0.95: one batch */
    empty_bound(NULL, 0.1, 100);
    /* 0.1^(1/7) = 0.71969 > 0.5: one batch, a wide bracket (0.405) */
    empty_bound((const char *[]){"batch_size=7", "threshold=0.5", NULL}, 0.1,
                7);
    /* 0.01^(1/30) = 0.85770 > 0.8 */
    empty_bound((const char *[]){"batch_size=30", "delta=0.01",
                                 "threshold=0.8", NULL},
                0.01, 30);
    /* tau 0.001: 0.1^(1/n) for n = 10, 20, 30, 40 is 0.794, 0.891, 0.926,
     * 0.944 < 0.949, so more; n = 50 gives 0.95499 > 0.95 */
    empty_bound((const char *[]){"batch_size=10", "tau=0.001", NULL}, 0.1,
                50);
}

/* ---- 2. determinism and the pipeline ---------------------------------- */

/* The run twice, and by rounds (tmodel_runs_equal_rounds), in at least
 * min_rounds rounds. */
static void run_twice_and_by_rounds(sm_model *m, int classes,
                                    const sm_tensor *x, int target,
                                    const char *const *more, int min_rounds)
{
    const char *set[32];
    tmodel_concat(set, 32, grid, more);
    sm_explain_ctx ctx = {m, 0, 0, 1, 42, NULL, 0, NULL};
    cr_assert_geq(tmodel_runs_equal_rounds("anchor", set, &ctx, x, target,
                                           id1[0], classes, NULL, NULL),
                  min_rounds);
}

Test(anchor, rule_run_is_deterministic_and_equals_its_rounds)
{
    sm_model *m = rule_model(1.5f * AREA);
    sm_tensor *x = ones();
    /* small batches: many rounds */
    run_twice_and_by_rounds(m, 2, x, 1,
                            (const char *[]){"batch_size=16", NULL}, 5);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* A random linear model of 3 classes (no bias) on a random image. */
static sm_model *random_model(sm_tensor **w, sm_tensor **x)
{
    *w = sm_tensor_new(2, (int64_t[]){3, HW});
    for (int64_t i = 0; i < 3 * HW; i++)
        (*w)->data[i] = (float)sm_rng_normal(11, (uint64_t)i);
    *x = tmodel_images(1, 1, S, S, 12);
    return tmodel_linear(*w, NULL, 1, S, S);
}

/* The random model's label of the image with cells shown by mask[16]
 * (NULL: all), computed here: hidden pixels 0, pixel (r, q) in cell
 * (r / 3) * 4 + q / 3. -1 when the two highest logits are within 1e-3
 * (float rounding in the model could order them either way). */
static int linear_label(const sm_tensor *w, const sm_tensor *x,
                        const float *mask)
{
    double logit[3] = {0};
    for (int k = 0; k < 3; k++)
        for (int r = 0; r < S; r++)
            for (int q = 0; q < S; q++)
                if (!mask || mask[(r / 3) * 4 + q / 3] == 1)
                    logit[k] += (double)w->data[k * HW + r * S + q] *
                                x->data[r * S + q];
    int best = 0;
    for (int k = 1; k < 3; k++)
        if (logit[k] > logit[best])
            best = k;
    for (int k = 0; k < 3; k++)
        if (k != best && fabs(logit[k] - logit[best]) < 1e-3)
            return -1;
    return best;
}

/* The record of the random model's anchor against the model computed
 * here: the map is 1 exactly on the anchor's cells; every example and
 * counter-example shows the anchor's cells and is labelled the target
 * (examples) or not (counter-examples); precision_lb <= precision. */
static void check_random(const sm_tensor *w, const sm_tensor *x, int target,
                         const float *map, const sm_explain_out *out)
{
    const char *json = sm_record_json(&out->record);
    int ids[CELLS], on[CELLS] = {0};
    int n = janchor(json, ids);
    for (int k = 0; k < n; k++) {
        cr_assert(ids[k] >= 0 && ids[k] < CELLS && !on[ids[k]], "%s", json);
        on[ids[k]] = 1;
    }
    for (int r = 0; r < S; r++)
        for (int q = 0; q < S; q++)
            cr_assert_eq(map[r * S + q], (float)on[(r / 3) * 4 + q / 3]);
    cr_assert_leq(tmodel_jnum(json, "precision_lb"),
                  tmodel_jnum(json, "precision"));
    cr_assert_eq(tmodel_jnum(json, "label"), target);
    int rows = 0;
    for (int kind = 0; kind < 2; kind++) {
        const sm_record_array *a = tmodel_array(
            &out->record, kind ? "counter_examples" : "examples");
        if (!a)
            continue;
        cr_assert(a->ndim == 2 && a->shape[1] == CELLS && a->shape[0] >= 1 &&
                  a->shape[0] <= 10);
        for (int64_t i = 0; i < a->shape[0]; i++) {
            const float *row = a->data + i * CELLS;
            for (int j = 0; j < CELLS; j++)
                cr_assert(row[j] == 0 || row[j] == 1);
            for (int k = 0; k < n; k++)
                cr_assert_eq(row[ids[k]], 1, "%s row %ld hides cell %d",
                             a->name, (long)i, ids[k]);
            int label = linear_label(w, x, row);
            if (label >= 0)
                cr_assert_eq(label == target, !kind, "%s row %ld: label %d",
                             a->name, (long)i, label);
            rows++;
        }
    }
    cr_assert_gt(rows, 0);
}

/* The random model: labels of every class, counter-examples, and the
 * budget running out mid-search; records checked against the model. */
Test(anchor, random_model_records_hold)
{
    sm_tensor *w, *x;
    sm_model *m = random_model(&w, &x);
    int target = linear_label(w, x, NULL);
    cr_assert_geq(target, 0);
    float map[HW];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    cr_assert_eq(run_anchor(m, x, target,
                            (const char *[]){"batch_size=20", "beam_size=2",
                                             NULL},
                            map, out, &err),
                 0, "%s", err.msg);
    check_random(w, x, target, map, out);
    const char *json = sm_record_json(&out[0].record);
    cr_assert_not(jbool(json, "truncated"), "%s", json);
    cr_assert_not_null(tmodel_array(&out[0].record, "counter_examples"),
                       "this image has some: %s", json);
    /* 230 evaluations: the search stops early, having drawn at most 230 */
    cr_assert_eq(run_anchor(m, x, target,
                            (const char *[]){"batch_size=20", "beam_size=2",
                                             "max_evals=230", NULL},
                            map, out, &err),
                 0, "%s", err.msg);
    check_random(w, x, target, map, out);
    json = sm_record_json(&out[0].record);
    cr_assert(jbool(json, "truncated"), "%s", json);
    cr_assert_leq(out[0].evals, 230 + 1, "samples and the image");
    /* a budget below one batch: nothing drawn, the empty anchor */
    cr_assert_eq(run_anchor(m, x, target,
                            (const char *[]){"batch_size=20", "max_evals=19",
                                             NULL},
                            map, out, &err),
                 0, "%s", err.msg);
    json = sm_record_json(&out[0].record);
    cr_assert(strstr(json, "\"anchor\": []"), "%s", json);
    cr_assert(jbool(json, "truncated"), "%s", json);
    cr_assert_not(jbool(json, "found"), "%s", json);
    cr_assert_eq(tmodel_jnum(json, "samples"), 0, "%s", json);
    cr_assert_eq(out[0].evals, 1, "the image alone");
    for (int q = 0; q < HW; q++)
        cr_assert_eq(map[q], 0.0f);
    cr_assert_null(tmodel_array(&out[0].record, "examples"));
    cr_assert_null(tmodel_array(&out[0].record, "counter_examples"));
    sm_explain_out_free(out, 1);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&w);
    sm_model_destroy(&m);
}

Test(anchor, random_model_is_deterministic_and_equals_its_rounds)
{
    sm_tensor *w, *x;
    sm_model *m = random_model(&w, &x);
    int target = linear_label(w, x, NULL);
    cr_assert_geq(target, 0);
    run_twice_and_by_rounds(m, 3, x, target,
                            (const char *[]){"batch_size=20", "beam_size=2",
                                             NULL},
                            3);
    run_twice_and_by_rounds(m, 3, x, target,
                            (const char *[]){"batch_size=20", "beam_size=2",
                                             "max_evals=230", NULL},
                            3);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&w);
    sm_model_destroy(&m);
}

/* ---- 3. refusals ------------------------------------------------------ */

Test(anchor, bad_settings_are_refused_by_name)
{
    tmodel_bad_setting("anchor", "beam_size", "0");
    tmodel_bad_setting("anchor", "threshold", "1.5");
    tmodel_bad_setting("anchor", "delta", "0");
    tmodel_bad_setting("anchor", "batch_size", "0");
}

/* A state from the wire, corrupted, is refused with a message naming
 * the method and the image (tmodel_corrupt_states): three rounds in, 1
 * (the empty anchor), then the cells'. */
Test(anchor, corrupt_states_are_refused)
{
    sm_model *m = rule_model(1.5f * AREA);
    sm_tensor *x = ones();
    const char *set[32];
    tmodel_concat(set, 32, grid, (const char *[]){"batch_size=16", NULL});
    sm_explainer *e = tmodel_explainer("anchor", set);
    sm_explain_ctx ctx = {m, 0, 0, 1, 42, NULL, 0, NULL};
    sm_explain_image im = {x->data, 1, S, S, 1, id1[0]};
    tmodel_corrupt_states(e, "anchor", &ctx, &im, 3, CELLS);
    sm_explainer_destroy(&e);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}
