/* LORE on superpixels (core/explain/lore.c): black boxes whose rules are
 * known give them back, with the counterfactuals that the model, asked
 * here, confirms; a run is the same twice and the same as its rounds
 * driven as the pipeline drives them; evals count what was asked; bad
 * settings and corrupt states are refused with a message.
 *
 * The image is 1 x 12 x 12 of ones on a 4 x 4 grid (cells=4), hidden
 * pixels 0: every cell is 3 x 3 pixels, cells numbered row by row, so
 * pixel (r, q) lies in cell (r / 3) * 4 + q / 3 (as test_anchor.c). x is
 * every cell shown.
 *
 * The two-class rule model (as test_anchor.c's): logit0 = 13.5, logit1 =
 * the sum of the pixels of cells 3 and 7 (9 for each shown): label 1
 * exactly when both are shown (18 > 13.5; 9 < 13.5).
 *
 * The three-class model: logit0 = the sum of the pixels of cells 5 and 9,
 * logit1 = 1.5 x the sum of cell 5's, logit2 = 11. With a = [5 shown], b
 * = [9 shown] the logits are (9a + 9b, 13.5a, 11):
 *   a=0 b=0: (0, 0, 11)       -> 2
 *   a=0 b=1: (9, 0, 11)       -> 2
 *   a=1 b=0: (9, 13.5, 11)    -> 1
 *   a=1 b=1: (18, 13.5, 11)   -> 0 (x)
 * so class 2 iff cell 5 hidden, class 1 iff 5 shown and 9 hidden, else 0;
 * every winner leads by at least 2. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explainer.h"
#include "model/score.h"
#include "tmodel.h"

#define S 12
#define HW (S * S)
#define CELLS 16

static const char *const id1[] = {"img/a"};

static const char *const grid[] = {"segmentation=grid", "cells=4",
                                   "hide=constant", "hide_value=0", NULL};

static sm_model *rule_model(void)
{
    float weight[2 * CELLS] = {0};
    weight[CELLS + 3] = weight[CELLS + 7] = 1;
    return tmodel_cells(S, 4, 2, weight, (const float[]){13.5f, 0});
}

static sm_model *three_model(void)
{
    float weight[3 * CELLS] = {0};
    weight[5] = weight[9] = 1;
    weight[CELLS + 5] = 1.5f;
    return tmodel_cells(S, 4, 3, weight, (const float[]){0, 0, 11});
}

static int run_lore(sm_model *m, const sm_tensor *x, int target,
                    const char *const *more, float *map, sm_explain_out *out,
                    sm_err *err)
{
    const char *set[32];
    tmodel_concat(set, 32, grid, more);
    sm_explain_ctx ctx = {m, 0, 0, 1, 42, NULL, 0, NULL};
    return tmodel_explain("lore", set, &ctx, x, &target, id1, map, out, err);
}

/* The model's own label of x (ones) with the cells of mask[CELLS] shown
 * (1) or hidden (0: pixels 0), asked here. */
static int model_label(sm_model *m, const float *mask)
{
    float img[HW];
    for (int r = 0; r < S; r++)
        for (int q = 0; q < S; q++) {
            float v = mask[(r / 3) * 4 + q / 3];
            cr_assert(v == 0 || v == 1, "mask value %g", v);
            img[r * S + q] = v;
        }
    sm_err err = {0};
    const sm_tensor *y = sm_model_forward(m, img, 1, &err);
    cr_assert_not_null(y, "%s", err.msg);
    return (int)sm_model_argmax_row(y->data, y->shape[1]);
}

/* ---- reading the record ---------------------------------------------- */

static double num(const sm_explain_out *out, const char *key)
{
    double v;
    cr_assert(sm_record_number(&out->record, key, &v), "%s missing: %s",
              key, sm_record_json(&out->record));
    return v;
}

typedef struct premise {
    int superpixel, shown;
} premise;

/* p past the literal lit (after blanks); asserts it is there. */
static const char *expect(const char *p, const char *lit)
{
    p += strspn(p, " ");
    cr_assert(strncmp(p, lit, strlen(lit)) == 0, "'%s' expected at '%.60s'",
              lit, p);
    return p + strlen(lit);
}

static const char *integer(const char *p, int *v)
{
    char *end;
    long l = strtol(p, &end, 10);
    cr_assert(end != p, "a number expected at '%.60s'", p);
    *v = (int)l;
    return end;
}

/* A premise list [{"superpixel": f, "shown": true|false}, ...] at p into
 * at most CELLS premises; *n their count; past it. */
static const char *premises(const char *p, premise *pr, int *n)
{
    p = expect(p, "[");
    *n = 0;
    while (*(p += strspn(p, " ,")) != ']') {
        cr_assert_lt(*n, CELLS);
        p = integer(expect(p, "{\"superpixel\":"), &pr[*n].superpixel);
        p = expect(p, ", \"shown\": ");
        pr[*n].shown = strncmp(p, "true", 4) == 0;
        p = expect(p, pr[*n].shown ? "true" : "false");
        p = expect(p, "}");
        cr_assert(pr[*n].superpixel >= 0 && pr[*n].superpixel < CELLS);
        (*n)++;
    }
    return p + 1;
}

/* x's rule: its premises (*n of them) and label. */
static int rule(const char *json, premise *pr, int *n)
{
    const char *p = strstr(json, "\"rule\": {\"premises\": ");
    cr_assert_not_null(p, "%s", json);
    int label;
    p = premises(p + strlen("\"rule\": {\"premises\": "), pr, n);
    integer(expect(p, ", \"label\": "), &label);
    return label;
}

typedef struct cf {
    int label, model_label, cost, n;
    premise pr[CELLS];
} cf;

/* The "counterfactuals" list (at most 8); their count. */
static int counterfactuals(const char *json, cf *c)
{
    const char *p = strstr(json, "\"counterfactuals\": [");
    cr_assert_not_null(p, "%s", json);
    p += strlen("\"counterfactuals\": [");
    int k = 0;
    while (*(p += strspn(p, " ,")) != ']') {
        cr_assert_lt(k, 8);
        p = integer(expect(p, "{\"label\":"), &c[k].label);
        p = integer(expect(p, ", \"model_label\":"), &c[k].model_label);
        p = integer(expect(p, ", \"cost\":"), &c[k].cost);
        p = premises(expect(p, ", \"premises\": "), c[k].pr, &c[k].n);
        p = expect(p, "}");
        k++;
    }
    return k;
}

/* The "importance" list (CELLS numbers). */
static void importance(const char *json, double *imp)
{
    const char *p = strstr(json, "\"importance\": [");
    cr_assert_not_null(p, "%s", json);
    p += strlen("\"importance\": [");
    for (int j = 0; j < CELLS; j++) {
        char *end;
        imp[j] = strtod(p + strspn(p, " ,"), &end);
        cr_assert(end != p, "importance %d: %s", j, json);
        p = end;
    }
    expect(p, "]"); /* no more */
}

/* The map is imp[j] (> 0) on the cells j of on[] and 0 elsewhere, the
 * importances >= 0 and summing to 1 over on[] alone. */
static void check_map(const float *map, const double *imp, const int *on)
{
    double sum = 0;
    for (int j = 0; j < CELLS; j++) {
        if (on[j])
            cr_assert_gt(imp[j], 0, "importance of cell %d", j);
        else
            cr_assert_eq(imp[j], 0, "importance of cell %d", j);
        sum += imp[j];
    }
    cr_assert_float_eq(sum, 1, 1e-8);
    for (int r = 0; r < S; r++)
        for (int q = 0; q < S; q++) {
            int j = (r / 3) * 4 + q / 3;
            if (on[j])
                cr_assert_float_eq(map[r * S + q], imp[j], 1e-6,
                                   "map at %d,%d", r, q);
            else
                cr_assert_eq(map[r * S + q], 0.0f, "map at %d,%d", r, q);
        }
}

/* x's rule is "shown" on exactly the cells a and b (a < b), of label. */
static void check_rule(const char *json, int a, int b, int label)
{
    premise pr[CELLS];
    int n;
    cr_assert_eq(rule(json, pr, &n), label, "%s", json);
    cr_assert_eq(n, 2, "%s", json);
    cr_assert(pr[0].superpixel == a && pr[0].shown && pr[1].superpixel == b &&
                  pr[1].shown,
              "%s", json);
}

/* Counterfactual c's mask (row k of the "counterfactuals" array) is x
 * with c's premises applied; the model asked here gives it label, which
 * differs from x's. */
static void check_applied(sm_model *m, const sm_explain_out *out, int k,
                          const cf *c, int x_label)
{
    const sm_record_array *a = tmodel_array(&out->record, "counterfactuals");
    cr_assert_not_null(a);
    cr_assert(a->ndim == 2 && a->shape[1] == CELLS && k < a->shape[0]);
    const float *mask = a->data + k * CELLS;
    float want[CELLS];
    for (int j = 0; j < CELLS; j++)
        want[j] = 1;
    for (int i = 0; i < c->n; i++)
        want[c->pr[i].superpixel] = (float)c->pr[i].shown;
    for (int j = 0; j < CELLS; j++)
        cr_assert_eq(mask[j], want[j], "counterfactual %d, cell %d", k, j);
    int label = model_label(m, mask);
    cr_assert_neq(label, x_label, "counterfactual %d keeps x's label", k);
    cr_assert_eq(c->model_label, label, "counterfactual %d", k);
}

/* ---- 1. known rules --------------------------------------------------- */

/* Label 1 iff cells 3 and 7 are shown. The neighbourhood is labelled by
 * that rule, so the tree fits it (fidelity 1) by splitting on 3 and 7
 * alone: its root splits on one of them, the hidden side pure 0, the
 * shown side split on the other, pure both ways: 5 nodes. x's rule is
 * {3 shown, 7 shown} -> 1; the leaves of label 0 are the two hidden
 * sides, each a counterfactual of cost 1 (hiding one cell), and the
 * first, confirmed by the model, is the only one kept for class 0. */
Test(lore, rule_of_two_cells_is_found)
{
    sm_model *m = rule_model();
    sm_tensor *x = tmodel_ones(1, 1, S, S);
    float map[HW];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    cr_assert_eq(run_lore(m, x, 1, NULL, map, out, &err), 0, "%s", err.msg);
    const char *json = sm_record_json(&out[0].record);
    cr_assert_eq(num(out, "fidelity"), 1.0, "%s", json);
    check_rule(json, 3, 7, 1);
    cr_assert_eq(num(out, "rule_length"), 2, "%s", json);
    cr_assert_eq(num(out, "tree_nodes"), 5, "%s", json);
    cr_assert_eq(num(out, "label"), 1);
    cr_assert_eq(num(out, "n_segments"), CELLS);
    double n = num(out, "neighbourhood"), same = num(out, "neighbourhood_same");
    cr_assert(same >= 1 && same < n, "x and rows of both labels: %s", json);
    cr_assert(strstr(json, "\"segmentation\": {\"method\": \"grid\", "
                           "\"cells\": 4"), "%s", json);
    tmodel_grid_segments(&out[0].record, S, S, 4);
    /* the target's probability on the image: softmax of (13.5, 18) */
    cr_assert_float_eq(out[0].score, 1 / (1 + exp(13.5 - 18)), 1e-6);
    double imp[CELLS];
    importance(json, imp);
    int on[CELLS] = {0};
    on[3] = on[7] = 1;
    check_map(map, imp, on);
    cf c[8];
    int k = counterfactuals(json, c);
    cr_assert_eq(k, 1, "one other class: %s", json);
    cr_assert_eq(num(out, "counterfactuals_rejected"), 0, "%s", json);
    cr_assert(c[0].label == 0 && c[0].model_label == 0 && c[0].cost == 1,
              "%s", json);
    cr_assert(c[0].n == 1 && !c[0].pr[0].shown &&
                  (c[0].pr[0].superpixel == 3 || c[0].pr[0].superpixel == 7),
              "hides 3 or 7: %s", json);
    const sm_record_array *a = tmodel_array(&out[0].record, "counterfactuals");
    cr_assert_not_null(a);
    cr_assert_eq(a->shape[0], 1);
    check_applied(m, out, 0, &c[0], 1);
    sm_explain_out_free(out, 1);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* Three classes: x (label 0) has rule {5 shown, 9 shown}; the cheapest
 * way to class 2 is hiding cell 5, to class 1 hiding cell 9 (each cost
 * 1), both confirmed by the model.
 *
 * The tree, by hand: balanced class weights give each class a third of
 * the weight, so the root's gini is 2/3. Splitting on cell 5 leaves
 * class 2 pure on the hidden side and classes 0 and 1 (a third each, gini
 * 1/2) on the other: children's impurity 2/3 x 1/2 = 1/3, whatever the
 * counts; splitting on cell 9 puts a share s of class 2 with class 1 and
 * the rest with class 0, 2s / (3 (1 + s)) + 2 (1 - s) / (3 (2 - s)) >=
 * 1/3 (equal at s = 0 or 1, where the tie goes to the lower cell, 5).
 * No cell but 5 and 9 carries the label, so none separates a class (the
 * neighbourhood is hundreds of rows). So the root splits on 5 (decrease
 * 1/3), its shown side on 9 (decrease 2/3 x 1/2 = 1/3): 5 nodes, the
 * importance of each 1/2. */
Test(lore, three_classes_give_a_counterfactual_each)
{
    sm_model *m = three_model();
    sm_tensor *x = tmodel_ones(1, 1, S, S);
    float ones16[CELLS];
    for (int j = 0; j < CELLS; j++)
        ones16[j] = 1;
    cr_assert_eq(model_label(m, ones16), 0, "x's label");
    float map[HW];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    cr_assert_eq(run_lore(m, x, 0, NULL, map, out, &err), 0, "%s", err.msg);
    const char *json = sm_record_json(&out[0].record);
    cr_assert_eq(num(out, "fidelity"), 1.0, "%s", json);
    check_rule(json, 5, 9, 0);
    cr_assert_eq(num(out, "tree_nodes"), 5, "%s", json);
    double imp[CELLS];
    importance(json, imp);
    int on[CELLS] = {0};
    on[5] = on[9] = 1;
    check_map(map, imp, on);
    cr_assert_float_eq(imp[5], 0.5, 1e-8, "%s", json);
    cr_assert_float_eq(imp[9], 0.5, 1e-8, "%s", json);
    cf c[8];
    int k = counterfactuals(json, c);
    cr_assert_eq(k, 2, "%s", json);
    cr_assert_eq(num(out, "counterfactuals_rejected"), 0, "%s", json);
    int seen[3] = {0};
    for (int i = 0; i < k; i++) {
        cr_assert(c[i].label == 1 || c[i].label == 2, "%s", json);
        seen[c[i].label]++;
        cr_assert_eq(c[i].cost, 1, "%s", json);
        cr_assert(c[i].n == 1 && !c[i].pr[0].shown &&
                      c[i].pr[0].superpixel == (c[i].label == 2 ? 5 : 9),
                  "%s", json);
        check_applied(m, out, i, &c[i], 0);
        cr_assert_eq(c[i].model_label, c[i].label, "%s", json);
    }
    cr_assert(seen[1] == 1 && seen[2] == 1, "%s", json);
    sm_explain_out_free(out, 1);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* ---- 2. determinism and the pipeline ---------------------------------- */

/* The run twice, and by rounds (tmodel_runs_equal_rounds), in at least
 * min_rounds rounds; the rounds' rows in *rows, the evals in *evals. */
static void run_twice_and_by_rounds(sm_model *m, int classes,
                                    const sm_tensor *x, int target,
                                    const char *const *more, int min_rounds,
                                    int64_t *rows, int64_t *evals)
{
    const char *set[32];
    tmodel_concat(set, 32, grid, more);
    sm_explain_ctx ctx = {m, 0, 0, 1, 42, NULL, 0, NULL};
    cr_assert_geq(tmodel_runs_equal_rounds("lore", set, &ctx, x, target,
                                           id1[0], classes, rows, evals),
                  min_rounds);
}

Test(lore, runs_are_deterministic_and_equal_their_rounds)
{
    sm_model *m = rule_model();
    sm_tensor *x = tmodel_ones(1, 1, S, S);
    int64_t rows, evals;
    /* one round a generation, the first x alone; later generations may
     * ask only rows labelled before and take no round */
    run_twice_and_by_rounds(m, 2, x, 1, NULL, 3, &rows, &evals);
    run_twice_and_by_rounds(m, 2, x, 1,
                            (const char *[]){"samples=101", "generations=4",
                                             "tournament=2", "halloffame=0.3",
                                             "crossover=0.9", NULL},
                            2, &rows, &evals);
    sm_model_destroy(&m);
    m = three_model();
    run_twice_and_by_rounds(m, 3, x, 0,
                            (const char *[]){"samples=200", "mutation=0.5",
                                             "max_depth=1", NULL},
                            3, &rows, &evals);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* ---- 3. evals --------------------------------------------------------- */

/* evals = the distinct rows labelled (the rounds' rows, each asked once)
 * + 1 (x's score) + the counterfactual candidates validated: on the rule
 * model the tree's two leaves of label 0 (see rule_of_two_cells_is_found). */
Test(lore, evals_count_rows_score_and_candidates)
{
    sm_model *m = rule_model();
    sm_tensor *x = tmodel_ones(1, 1, S, S);
    int64_t rows, evals;
    run_twice_and_by_rounds(m, 2, x, 1, NULL, 3, &rows, &evals);
    cr_assert_gt(rows, 1);
    cr_assert_leq(rows, 1 << CELLS);
    cr_assert_eq(evals, rows + 1 + 2, "%ld rows", (long)rows);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* generations=0: both populations are copies of x, so the only row asked
 * is x (one round of one row). Every copy has the same fitness (0.5 in
 * the population of x's label, 0 in the other), so none lies above the
 * largest gap of its population (a gap of 0), nor does the hall of fame
 * (one copy): the neighbourhood is x alone, the tree one leaf, no rule,
 * no counterfactual candidate, the map 0. evals = 1 row + x's score. */
Test(lore, no_generation_asks_x_alone)
{
    sm_model *m = rule_model();
    sm_tensor *x = tmodel_ones(1, 1, S, S);
    const char *more[] = {"generations=0", NULL};
    int64_t rows, evals;
    run_twice_and_by_rounds(m, 2, x, 1, more, 1, &rows, &evals);
    cr_assert_eq(rows, 1);
    cr_assert_eq(evals, 1 + 1);
    float map[HW];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    cr_assert_eq(run_lore(m, x, 1, more, map, out, &err), 0, "%s", err.msg);
    const char *json = sm_record_json(&out[0].record);
    premise pr[CELLS];
    int n;
    cr_assert_eq(rule(json, pr, &n), 1, "%s", json);
    cr_assert_eq(n, 0, "%s", json);
    cr_assert_eq(num(out, "rule_length"), 0);
    cr_assert_eq(num(out, "neighbourhood"), 1, "%s", json);
    cr_assert_eq(num(out, "neighbourhood_same"), 1, "%s", json);
    cr_assert_eq(num(out, "tree_nodes"), 1, "%s", json);
    cr_assert_eq(num(out, "fidelity"), 1, "%s", json);
    cf c[8];
    cr_assert_eq(counterfactuals(json, c), 0, "%s", json);
    cr_assert_eq(num(out, "counterfactuals_rejected"), 0, "%s", json);
    cr_assert_null(tmodel_array(&out[0].record, "counterfactuals"));
    double imp[CELLS];
    importance(json, imp);
    for (int j = 0; j < CELLS; j++)
        cr_assert_eq(imp[j], 0, "%s", json);
    for (int q = 0; q < HW; q++)
        cr_assert_eq(map[q], 0.0f, "pixel %d", q);
    sm_explain_out_free(out, 1);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* ---- 4. labels from the wire ----------------------------------------- */

/* Labels are names to the tree: a state whose labels of class 2 are told
 * as 2^31 - 1 (a label the adaptive rounds take: any int32 >= 0) gives
 * the same run, the order of the classes being the same, but for the
 * name of the class-2 counterfactual (its model_label is the model's). */
Test(lore, a_label_beyond_the_model_classes_is_a_name)
{
    sm_model *m = three_model();
    sm_tensor *x = tmodel_ones(1, 1, S, S);
    float m1[HW], m2[HW];
    sm_explain_out o1[1] = {0}, o2 = {.map = m2};
    sm_err err = {0};
    cr_assert_eq(run_lore(m, x, 0, NULL, m1, o1, &err), 0, "%s", err.msg);
    const char *set[32];
    tmodel_concat(set, 32, grid, NULL);
    sm_explainer *e = tmodel_explainer("lore", set);
    sm_explain_ctx ctx = {m, 0, 0, 1, 42, NULL, 0, NULL};
    sm_explain_image im = {x->data, 1, S, S, 0, id1[0]};
    sm_explain_rounds *rd = sm_explain_rounds_new(e, &ctx, &im, NULL, 0, &err);
    cr_assert_not_null(rd, "%s", err.msg);
    int64_t renamed = 0;
    for (int64_t n; (n = sm_explain_rounds_n(rd)) > 0;) {
        double *y = malloc(sizeof(double) * (size_t)n);
        cr_assert_not_null(y);
        cr_assert_eq(sm_explain_rounds_score(rd, 0, n, y, &err), 0, "%s",
                     err.msg);
        for (int64_t i = 0; i < n; i++)
            if (y[i] == 2)
                y[i] = INT32_MAX, renamed++;
        cr_assert_eq(sm_explain_rounds_update(rd, y, n, &err), 0, "%s",
                     err.msg);
        free(y);
    }
    cr_assert_gt(renamed, 0);
    cr_assert_eq(sm_explain_rounds_finish(rd, &o2, &err), 0, "%s", err.msg);
    sm_explain_rounds_destroy(&rd);
    const char *j1 = sm_record_json(&o1[0].record);
    const char *at = strstr(j1, "{\"label\": 2, ");
    cr_assert_not_null(at, "a counterfactual to class 2: %s", j1);
    char want[4096];
    snprintf(want, sizeof want, "%.*s{\"label\": %d, %s", (int)(at - j1), j1,
             INT32_MAX, at + strlen("{\"label\": 2, "));
    cr_assert_str_eq(sm_record_json(&o2.record), want);
    cr_assert(memcmp(m1, m2, sizeof m1) == 0, "maps differ");
    cr_assert_eq(o1[0].evals, o2.evals);
    sm_explain_out_free(o1, 1);
    sm_explain_out_free(&o2, 1);
    sm_explainer_destroy(&e);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* ---- 5. refusals ------------------------------------------------------ */

Test(lore, bad_settings_are_refused_by_name)
{
    tmodel_bad_setting("lore", "generations", "-1");
    tmodel_bad_setting("lore", "samples", "1");
    tmodel_bad_setting("lore", "crossover", "1.5");
    tmodel_bad_setting("lore", "mutation", "-0.1");
    tmodel_bad_setting("lore", "tournament", "0");
    tmodel_bad_setting("lore", "min_samples_leaf", "0");
}

/* Three rounds in: x alone, then two generations' new rows. */
Test(lore, corrupt_states_are_refused)
{
    sm_model *m = rule_model();
    sm_tensor *x = tmodel_ones(1, 1, S, S);
    const char *set[32];
    tmodel_concat(set, 32, grid, NULL);
    sm_explainer *e = tmodel_explainer("lore", set);
    sm_explain_ctx ctx = {m, 0, 0, 1, 42, NULL, 0, NULL};
    sm_explain_image im = {x->data, 1, S, S, 1, id1[0]};
    tmodel_corrupt_states(e, "lore", &ctx, &im, 3, CELLS);
    sm_explainer_destroy(&e);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}
