/* In-memory explain tasks (task.h) and the output folder (store.h): a job
 * run through job.c writes the maps the tasks compute; a neighbourhood
 * scored in one chunk or in seven shuffled ones and fitted gives run()'s
 * map bit for bit; targets by label mark unknown labels failed; the store
 * round-trips and refuses ids that leave it; a dataset's raw bytes decode
 * to sm_dataset_load's floats. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "config/config_model.h"
#include "data/dataset.h"
#include "explain/gradient.h"
#include "explain/job.h"
#include "explain/store.h"
#include "explain/task.h"
#include "io/npy.h"
#include "metrics/deletion.h"
#include "tdata.h"
#include "tmodel.h"
#include "util/file.h"
#include "util/rng.h"

TDATA_SUITE(task);

#define TK 3 /* classes of the linear model */

/* A linear model over c x h x w inputs, TK classes. */
static sm_model *task_model(int64_t c, int64_t h, int64_t w)
{
    sm_tensor *wt = sm_tensor_new(2, (int64_t[]){TK, c * h * w});
    for (int64_t i = 0; i < sm_tensor_numel(wt); i++)
        wt->data[i] = (float)sm_rng_normal(11, (uint64_t)i);
    sm_model *m = tmodel_linear(wt, NULL, c, h, w);
    sm_tensor_destroy(&wt);
    return m;
}

/* Method name with "key=value" settings (NULL-ended). */
static sm_explainer *task_explainer(const char *name, const char *const *set)
{
    sm_err err = {0};
    sm_explainer *e = sm_explainer_new(name, &err);
    cr_assert_not_null(e, "%s", err.msg);
    for (int i = 0; set && set[i]; i++) {
        char kv[128];
        snprintf(kv, sizeof kv, "%s", set[i]);
        char *eq = strchr(kv, '=');
        cr_assert_not_null(eq);
        *eq = '\0';
        cr_assert_eq(sm_explainer_set(e, kv, eq + 1, &err), 0, "%s", err.msg);
    }
    return e;
}

/* The model's argmax on image r of x. */
static int argmax_of(sm_model *m, const sm_tensor *x, int64_t r)
{
    sm_err err = {0};
    int64_t per = sm_tensor_numel(x) / x->shape[0];
    const sm_tensor *y = sm_model_forward(m, x->data + r * per, 1, &err);
    cr_assert_not_null(y, "%s", err.msg);
    int best = 0;
    for (int c = 1; c < TK; c++)
        best = y->data[c] > y->data[best] ? c : best;
    return best;
}

/* A text file, NUL-terminated (caller frees). */
static char *read_text(const char *path)
{
    size_t len;
    sm_err err = {0};
    unsigned char *b = sm_file_read(path, 1 << 20, &len, &err);
    cr_assert_not_null(b, "%s", err.msg);
    char *t = malloc(len + 1);
    cr_assert_not_null(t);
    memcpy(t, b, len);
    t[len] = '\0';
    free(b);
    return t;
}

/* --- targets ------------------------------------------------------------ */

Test(task, targets_by_label_mark_unknown_labels_failed)
{
    sm_model *m = task_model(1, 4, 4);
    sm_tensor *x = tmodel_images(4, 1, 4, 4, 3);
    sm_explain_setup s = {.model = m, .target = SM_TARGET_LABEL};
    const char *ids[4] = {"a", "b", "c", "d"};
    const int labels[4] = {1, -1, 2, TK};
    float maps[4][16];
    sm_explain_result res[4];
    for (int r = 0; r < 4; r++)
        res[r].map = maps[r];
    sm_err err = {0};
    cr_assert_eq(sm_explain_targets(&s, x, labels, ids, res, &err), 0, "%s",
                 err.msg);
    cr_assert(!res[0].failed && !res[2].failed);
    cr_assert_eq(res[0].target, 1);
    cr_assert_eq(res[2].target, 2);
    cr_assert_eq(res[0].predicted, argmax_of(m, x, 0));
    cr_assert_eq(res[2].predicted, argmax_of(m, x, 2));
    for (int r = 1; r < 4; r += 2) {
        cr_assert(res[r].failed, "image %d", r);
        cr_assert(tdata_has(res[r].error, ids[r]), "%s", res[r].error);
        cr_assert(tdata_has(res[r].error, "label"), "%s", res[r].error);
    }
    cr_assert_eq(res[3].map, maps[3], "the map buffer is the caller's");

    /* no labels at all: every image fails; predicted: the argmax */
    cr_assert_eq(sm_explain_targets(&s, x, NULL, ids, res, &err), 0);
    for (int r = 0; r < 4; r++)
        cr_assert(res[r].failed);
    s.target = SM_TARGET_PREDICTED;
    cr_assert_eq(sm_explain_targets(&s, x, NULL, ids, res, &err), 0);
    for (int r = 0; r < 4; r++) {
        cr_assert(!res[r].failed);
        cr_assert_eq(res[r].target, res[r].predicted);
        cr_assert_eq(res[r].predicted, argmax_of(m, x, r));
    }
    s.target = SM_TARGET_INDEX;
    s.target_index = TK + 2;
    cr_assert_eq(sm_explain_targets(&s, x, NULL, ids, res, &err), 0);
    cr_assert(res[0].failed && tdata_has(res[0].error, "target class 5"),
              "%s", res[0].error);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* sm_explain_images explains exactly the images not failed, as the
 * explainer does on them alone, with their metrics. */
Test(task, images_skip_failed_ones_and_equal_the_explainer)
{
    sm_model *m = task_model(1, 8, 8);
    sm_tensor *x = tmodel_images(3, 1, 8, 8, 5);
    sm_explain_setup s = {.model = m, .metrics = 1, .seed = 4};
    const char *ids[3] = {"p", "q", "r"};
    float maps[3][64];
    sm_explain_result res[3];
    for (int r = 0; r < 3; r++)
        res[r].map = maps[r];
    sm_err err = {0};
    cr_assert_eq(sm_explain_targets(&s, x, NULL, ids, res, &err), 0);
    res[1].failed = 1;
    for (int q = 0; q < 64; q++)
        maps[1][q] = -7.0f;
    sm_explainer *e = task_explainer("lime", (const char *[]){
        "segmentation=grid", "cells=4", "samples=80", NULL});
    cr_assert_eq(sm_explain_images(&s, e, x, ids, res, &err), 0, "%s",
                 err.msg);
    for (int q = 0; q < 64; q++)
        cr_assert_eq(maps[1][q], -7.0f, "a failed image's map is untouched");
    sm_explain_ctx ctx = {m, 0, 0, 0, 4, NULL, 0, NULL};
    for (int r = 0; r < 3; r += 2) {
        sm_tensor *xi = sm_tensor_new(4, (int64_t[]){1, 1, 8, 8});
        memcpy(xi->data, x->data + r * 64, sizeof(float) * 64);
        float map[64];
        sm_explain_out out = {.map = map};
        sm_explain_batch b = {xi, &res[r].target, ids + r};
        cr_assert_eq(sm_explainer_run(e, &ctx, &b, &out, &err), 0, "%s",
                     err.msg);
        cr_assert(memcmp(map, maps[r], sizeof map) == 0, "image %d", r);
        cr_assert_eq(out.score, res[r].score);
        cr_assert_eq(out.evals, res[r].evals);
        cr_assert_str_eq(sm_record_json(&out.record), sm_record_json(&res[r].record));
        sm_deletion_result dr;
        sm_model_scoring sc = sm_explain_scoring(&ctx);
        cr_assert_eq(sm_deletion_insertion(&sc, xi->data, 1, 8, 8, map,
                                           res[r].predicted, 0, 64, &dr,
                                           &err),
                     0, "%s", err.msg);
        cr_assert(res[r].has_metrics);
        cr_assert_eq(dr.deletion_auc, res[r].deletion_auc);
        cr_assert_eq(dr.insertion_auc, res[r].insertion_auc);
        cr_assert(res[r].seconds >= 0);
        sm_tensor_destroy(&xi);
        sm_explain_out_free(&out, 1);
    }
    sm_explain_results_free(res, 3);
    sm_explainer_destroy(&e);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* --- chunked neighbourhoods ---------------------------------------------- */

/* Every image of a small batch: its round scored in 1 chunk and in 7
 * chunks taken in shuffled order, each chunk on rounds begun anew as a
 * chunk worker begins them, and on rounds taken up from the encoded state
 * (the same scores), then stepped: the map, score, evals, record and
 * metrics of sm_explain_images (run()). */
static void chunked_equals_run(const char *method, const char *const *set)
{
    sm_model *m = task_model(3, 12, 12);
    sm_tensor *x = tmodel_images(2, 3, 12, 12, 8);
    /* max-sensitivity on: the step re-explains with the rounds' method */
    sm_explain_setup s = {.model = m, .metrics = 1, .seed = 9,
                          .metric = {.sensitivity_samples = 2}};
    const char *ids[2] = {"7/one", "7/two"};
    float maps[2][144], fit_map[144];
    sm_explain_result res[2];
    for (int r = 0; r < 2; r++)
        res[r].map = maps[r];
    sm_err err = {0};
    sm_explainer *e = task_explainer(method, set);
    cr_assert(sm_explainer_chunked(e), "%s", method);
    cr_assert_eq(sm_explain_targets(&s, x, NULL, ids, res, &err), 0);
    cr_assert_eq(sm_explain_images(&s, e, x, ids, res, &err), 0, "%s",
                 err.msg);
    static const int order[7] = {3, 6, 0, 5, 1, 4, 2};
    for (int r = 0; r < 2; r++) {
        sm_tensor xi = *x;
        xi.owns = 0;
        xi.shape[0] = 1;
        xi.data = x->data + r * 3 * 144;
        int t = res[r].target;
        sm_explain_rounds *rd =
            sm_explain_rounds_open(&s, e, &xi, ids[r], t, NULL, 0, &err);
        cr_assert_not_null(rd, "%s: %s", method, err.msg);
        int64_t n = sm_explain_rounds_n(rd);
        cr_assert_gt(n, 7, "%s", method);
        cr_assert_eq(sm_explain_rounds_round(rd), 1);
        sm_text state = {0};
        cr_assert_eq(sm_explain_rounds_encode(rd, &state, &err), 0);
        double *y1 = malloc(sizeof(double) * (size_t)n);
        double *y7 = malloc(sizeof(double) * (size_t)n);
        double *ys = malloc(sizeof(double) * (size_t)n);
        cr_assert_eq(sm_explain_rounds_score(rd, 0, n, y1, &err), 0, "%s",
                     err.msg);
        for (int k = 0; k < 7; k++) {
            int64_t a = order[k] * n / 7, b = (order[k] + 1) * n / 7;
            sm_explain_rounds *ck = sm_explain_rounds_open(
                &s, e, &xi, ids[r], t, NULL, 0, &err);
            sm_explain_rounds *cs = sm_explain_rounds_open(
                &s, e, &xi, ids[r], t, (const uint8_t *)state.s, state.len,
                &err);
            cr_assert(ck && cs, "%s", err.msg);
            cr_assert_eq(sm_explain_rounds_n(cs), n);
            cr_assert_eq(sm_explain_rounds_score(ck, a, b - a, y7 + a, &err),
                         0, "%s", err.msg);
            cr_assert_eq(sm_explain_rounds_score(cs, a, b - a, ys + a, &err),
                         0, "%s", err.msg);
            sm_explain_rounds_destroy(&ck);
            sm_explain_rounds_destroy(&cs);
        }
        cr_assert(memcmp(y1, y7, sizeof(double) * (size_t)n) == 0,
                  "%s: 7 chunks score differently", method);
        cr_assert(memcmp(y1, ys, sizeof(double) * (size_t)n) == 0,
                  "%s: chunks from the encoded state score differently",
                  method);
        /* beyond the round, or stepping with too few scores: refused */
        cr_assert_eq(sm_explain_rounds_score(rd, n - 1, 2, y1, &err), -1,
                     "%s", method);
        cr_assert(tdata_has(err.msg, method), "%s", err.msg);
        sm_explain_result fr = res[r];
        memset(&fr.record, 0, sizeof fr.record);
        fr.map = fit_map;
        cr_assert_eq(sm_explain_step(&s, rd, &xi, y7, n - 1, &fr, &err), -1,
                     "%s", method);
        cr_assert(tdata_has(err.msg, "scores for a round of"), "%s", err.msg);
        /* the step where the scores were gathered: on the state taken up */
        sm_explain_rounds_destroy(&rd);
        rd = sm_explain_rounds_open(&s, e, &xi, ids[r], t,
                                    (const uint8_t *)state.s, state.len, &err);
        cr_assert_not_null(rd, "%s", err.msg);
        cr_assert_eq(sm_explain_step(&s, rd, &xi, y7, n, &fr, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(sm_explain_rounds_n(rd), 0, "one round only");
        cr_assert(memcmp(fit_map, maps[r], sizeof fit_map) == 0,
                  "%s: image %d: the stepped map differs from run()'s",
                  method, r);
        cr_assert_eq(fr.score, res[r].score);
        cr_assert_eq(fr.evals, res[r].evals);
        cr_assert_eq(fr.evals, n);
        cr_assert_str_eq(sm_record_json(&fr.record),
                         sm_record_json(&res[r].record));
        cr_assert(fr.has_metrics);
        cr_assert_eq(fr.deletion_auc, res[r].deletion_auc);
        cr_assert_eq(fr.insertion_auc, res[r].insertion_auc);
        const double qf[] = {fr.faithfulness, fr.sparseness, fr.complexity,
                             fr.sensitivity};
        const double qr[] = {res[r].faithfulness, res[r].sparseness,
                             res[r].complexity, res[r].sensitivity};
        cr_assert(memcmp(qf, qr, sizeof qf) == 0, "%s: stepped metrics "
                  "differ from run()'s", method);
        cr_assert(isfinite(fr.sensitivity), "%s", method);
        /* a state that is not this image's, or cut short: refused */
        state.s[4] ^= 1; /* the round's n, low byte */
        sm_explain_rounds *bad = sm_explain_rounds_open(
            &s, e, &xi, ids[r], t, (const uint8_t *)state.s, state.len, &err);
        cr_assert_null(bad, "%s: a state with another n", method);
        state.s[4] ^= 1;
        bad = sm_explain_rounds_open(&s, e, &xi, ids[r], t,
                                     (const uint8_t *)state.s, state.len - 1,
                                     &err);
        cr_assert_null(bad, "%s: a state cut short", method);
        sm_explain_results_free(&fr, 1);
        sm_explain_rounds_destroy(&rd);
        sm_text_free(&state);
        free(y1);
        free(y7);
        free(ys);
    }
    sm_explain_results_free(res, 2);
    sm_explainer_destroy(&e);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

Test(task, lime_chunked_equals_run)
{
    chunked_equals_run("lime", (const char *[]){"segmentation=grid",
                                                "cells=4", "samples=150",
                                                "internal_batch=40", NULL});
}

Test(task, kernelshap_chunked_equals_run)
{
    /* 16 cells: 2 + 2 x 16 + 2048 coalitions, sampled and enumerated */
    chunked_equals_run("kernelshap", (const char *[]){"segmentation=grid",
                                                      "cells=4", NULL});
}

Test(task, kernelshap_quickshift_chunked_equals_run)
{
    chunked_equals_run("kernelshap", (const char *[]){"kernel_size=1", "budget=60",
                                                      NULL});
}

Test(task, rise_chunked_equals_run)
{
    chunked_equals_run("rise", (const char *[]){"masks=90", "grid=3", NULL});
}

Test(task, occlusion_chunked_equals_run)
{
    chunked_equals_run("occlusion", (const char *[]){"window=3", NULL});
}

Test(task, gradient_methods_are_not_chunked)
{
    sm_model *m = task_model(1, 4, 4);
    sm_tensor *x = tmodel_images(1, 1, 4, 4, 1);
    sm_explain_setup s = {.model = m};
    sm_explainer *e = task_explainer("sal", NULL);
    cr_assert_not(sm_explainer_chunked(e));
    sm_err err = {0};
    cr_assert_null(sm_explain_rounds_open(&s, e, x, "a", 0, NULL, 0, &err));
    cr_assert(tdata_has(err.msg, "sal: does not explain an image in rounds"),
              "%s", err.msg);
    sm_explainer_destroy(&e);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* --- the output folder ---------------------------------------------------- */

static sm_explain_result store_result(float *map, double score)
{
    sm_explain_result r;
    memset(&r, 0, sizeof r);
    r.map = map;
    r.score = score;
    r.evals = 12;
    r.seconds = 0.25;
    r.has_metrics = 1;
    r.deletion_auc = 0.125;
    r.insertion_auc = 0.75;
    r.faithfulness = 0.5;
    r.sparseness = 0.25;
    r.complexity = 1.5;
    r.sensitivity = NAN; /* off: an empty cell */
    cr_assert_eq(sm_record_str(&r.record, "k", "a,b"), 0);
    return r;
}

/* index.csv's record columns: top-level members only, numbers only, and
 * nothing from malformed text. */
Test(task, record_numbers_are_found_at_the_top_level_only)
{
    sm_record r = {0};
    double v = -1;
    cr_assert_eq(sm_record_number(&r, "coverage", &v), 0);
    sm_record_str(&r, "k", "a,}\"coverage\": 7");
    sm_record_addf(&r, "rule", "{\"coverage\": 9, \"p\": [1, {\"x\": \"}\"}]}");
    sm_record_addf(&r, "name", "\"precision\"");
    sm_record_addf(&r, "coverage", "%g", 0.25);
    sm_record_addf(&r, "rule_length", "%d", -3);
    cr_assert_eq(sm_record_number(&r, "coverage", &v), 1);
    cr_assert_eq(v, 0.25);
    cr_assert_eq(sm_record_number(&r, "rule_length", &v), 1);
    cr_assert_eq(v, -3);
    cr_assert_eq(sm_record_number(&r, "name", &v), 0, "a string is no number");
    cr_assert_eq(sm_record_number(&r, "precision", &v), 0);
    cr_assert_eq(sm_record_number(&r, "x", &v), 0, "nested members are not");
    const char *bad[] = {"{\"coverage\"", "{\"a\": \"x, \"coverage\": 1",
                         "[\"coverage\", 1]", "{\"a\": {\"b\": 1, \"coverage\": 2",
                         "{\"coverage\" 1}", "{\"a\\\"\": 1}", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(sm_record_set_json(&r, bad[i]), 0);
        cr_assert_eq(sm_record_number(&r, "coverage", &v), 0, "%s", bad[i]);
    }
    sm_record_free(&r);
}

Test(task, store_round_trip)
{
    char out[TDATA_PATH], p[TDATA_PATH];
    tdata_path(out, dir, "out");
    sm_err err = {0};
    sm_explain_store *st = sm_explain_store_open(out, &err);
    cr_assert_not_null(st, "%s", err.msg);
    cr_assert_str_eq(sm_explain_store_dir(st), out);
    float map[6] = {1, -2, 3.5f, 0, 5, 6};
    sm_explain_result r = store_result(map, 0.5);
    const float ex[6] = {0.5f, 1, 2, 3, 4, -1};
    cr_assert_eq(sm_record_array_add(&r.record, "exemplars", 2,
                                     (int64_t[]){3, 2}, ex),
                 0);
    cr_assert_not(sm_explain_store_done(st, "7/7_0001", "sal"));
    cr_assert_eq(sm_explain_store_put(st, "7/7_0001", "7", "7", "3", "sal",
                                      "{}", &r, 2, 3, &err),
                 0, "%s", err.msg);
    cr_assert(sm_explain_store_done(st, "7/7_0001", "sal"));
    cr_assert_not(sm_explain_store_done(st, "7/7_0001", "lime"));
    sm_tensor *t = sm_npy_read(tdata_path(p, out, "maps/7/7_0001/sal.npy"),
                               &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(t->ndim, 2);
    cr_assert_eq(t->shape[0], 2);
    cr_assert_eq(t->shape[1], 3);
    cr_assert(memcmp(t->data, map, sizeof map) == 0);
    sm_tensor_destroy(&t);
    /* the record beside it: its object and its arrays */
    char *json = read_text(tdata_path(p, out, "maps/7/7_0001/sal.json"));
    cr_assert_str_eq(json, "{\"k\": \"a,b\"}");
    free(json);
    t = sm_npy_read(tdata_path(p, out, "maps/7/7_0001/sal.exemplars.npy"),
                    &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert(t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 2);
    cr_assert(memcmp(t->data, ex, sizeof ex) == 0);
    sm_tensor_destroy(&t);
    /* a method with a map refuses a result without one */
    r.map = NULL;
    cr_assert_eq(sm_explain_store_put(st, "c", NULL, "1", "1", "sal", "{}",
                                      &r, 2, 3, &err),
                 -1);
    cr_assert(tdata_has(err.msg, "c: sal: the result has no map"), "%s",
              err.msg);
    cr_assert_not(sm_explain_store_done(st, "c", "sal"));
    r.map = map;
    r.has_metrics = 0;
    r.score = 2;
    cr_assert_eq(sm_explain_store_put(st, "b", NULL, "1", "1", "lime",
                                      "{\"samples\": 5}", &r, 2, 3, &err),
                 0, "%s", err.msg);
    r.has_metrics = 1;
    r.deletion_auc = 0.375;
    r.insertion_auc = 0.25;
    r.faithfulness = -0.5;
    r.sparseness = 0.75;
    r.complexity = NAN;
    r.sensitivity = 0.125;
    cr_assert_eq(sm_explain_store_put(st, "b", NULL, "1", "1", "sal", "{}",
                                      &r, 2, 3, &err),
                 0, "%s", err.msg);
    /* rows in the order asked, the missing skipped */
    const char *ids[3] = {"b", "missing", "7/7_0001"};
    const char *methods[2] = {"sal", "lime"};
    cr_assert_eq(sm_explain_store_index(st, ids, 3, methods, 2, &err), 0,
                 "%s", err.msg);
    char *csv = read_text(tdata_path(p, out, "index.csv"));
    size_t len = strlen(csv);
    const char want[] =
        SM_EXPLAIN_INDEX_HEADER
        "b,,1,1,2,sal,0.250000,12,0.375000,0.250000,-0.5,0.75,,0.125,,,,,,{},"
        "\"{\"\"k\"\": \"\"a,b\"\"}\"\n"
        "b,,1,1,2,lime,0.250000,12,,,,,,,,,,,,\"{\"\"samples\"\": 5}\",\"{\"\"k\"\": "
        "\"\"a,b\"\"}\"\n"
        "7/7_0001,7,7,3,0.5,sal,0.250000,12,0.125000,0.750000,0.5,0.25,1.5,,,,,,,"
        "{},\"{\"\"k\"\": \"\"a,b\"\"}\"\n";
    cr_assert_eq(len, strlen(want), "%.*s", (int)len, csv);
    cr_assert(memcmp(csv, want, len) == 0, "%.*s", (int)len, csv);
    free(csv);
    /* summary.csv: per method the maps, the missing ones, each column's
     * mean and sample deviation (by hand: deletion 0.375 and 0.125, mean
     * 0.25, sd sqrt(2 x 0.125^2 / 1); one value: no deviation) */
    csv = read_text(tdata_path(p, out, "summary.csv"));
    const char want_sum[] = SM_EXPLAIN_SUMMARY_HEADER
        "sal,2,1,0.25,0.176777,0.5,0.353553,0,0.707107,0.5,0.353553,1.5,,"
        "0.125,,,,,,,,,,,\n"
        "lime,1,2,,,,,,,,,,,,,,,,,,,,,,\n";
    cr_assert_str_eq(csv, want_sum);
    free(csv);
    sm_explain_results_free(&r, 1);
    sm_explain_store_destroy(&st);
    cr_assert_null(st);
}

typedef struct lost_rows {
    int n;
    char id[64], method[32], why[SM_ERR_MAX];
} lost_rows;

static void note_lost(void *u, const char *id, const char *method, const sm_err *why)
{
    lost_rows *l = u;
    l->n++;
    snprintf(l->id, sizeof l->id, "%s", id);
    snprintf(l->method, sizeof l->method, "%s", method);
    snprintf(l->why, sizeof l->why, "%s", why->msg);
}

/* A batch writes the same files as single puts, but an (id, method) is
 * complete only once the commit has made its files durable and written
 * its row; a row the commit cannot write is reported, not taken. */
Test(task, store_batch_rows_follow_the_commit)
{
    char one[TDATA_PATH], many[TDATA_PATH], p[TDATA_PATH], q[TDATA_PATH];
    sm_err err = {0};
    sm_explain_store *a = sm_explain_store_open(tdata_path(one, dir, "one"), &err);
    sm_explain_store *b = sm_explain_store_open(tdata_path(many, dir, "many"), &err);
    cr_assert(a && b, "%s", err.msg);
    float map[6] = {1, -2, 3.5f, 0, 5, 6};
    sm_explain_result r = store_result(map, 0.5);
    const float ex[2] = {0.5f, -1};
    cr_assert_eq(sm_record_array_add(&r.record, "ex", 1, (int64_t[]){2}, ex), 0);
    const char *ids[2] = {"7/7_0001", "b"};
    sm_explain_store_begin(b);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(sm_explain_store_put(a, ids[k], "7", "7", "3", "sal", "{}",
                                          &r, 2, 3, &err), 0, "%s", err.msg);
        cr_assert_eq(sm_explain_store_put(b, ids[k], "7", "7", "3", "sal", "{}",
                                          &r, 2, 3, &err), 0, "%s", err.msg);
        cr_assert(sm_explain_store_done(a, ids[k], "sal"));
        cr_assert_not(sm_explain_store_done(b, ids[k], "sal"), "%s before the commit",
                      ids[k]);
    }
    cr_assert_eq(sm_explain_store_commit(b, NULL, NULL, &err), 0, "%s", err.msg);
    static const char *const files[] = {"sal.npy", "sal.json", "sal.ex.npy", "sal.row"};
    for (int k = 0; k < 2; k++) {
        cr_assert(sm_explain_store_done(b, ids[k], "sal"));
        for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
            char rel[128];
            snprintf(rel, sizeof rel, "maps/%s/%s", ids[k], files[f]);
            size_t nx, ny;
            unsigned char *x = sm_file_read(tdata_path(p, one, rel), 1 << 20, &nx, &err);
            unsigned char *y = sm_file_read(tdata_path(q, many, rel), 1 << 20, &ny, &err);
            cr_assert(x && y && nx == ny && memcmp(x, y, nx) == 0, "%s", rel);
            free(x);
            free(y);
        }
    }
    /* a commit with nothing kept does nothing */
    cr_assert_eq(sm_explain_store_commit(b, NULL, NULL, &err), 0);
    /* the image's folder gone before the commit: its row is lost */
    sm_explain_store_begin(b);
    cr_assert_eq(sm_explain_store_put(b, "gone", "7", "7", "3", "sal", "{}", &r, 2, 3,
                                      &err), 0, "%s", err.msg);
    sm_file_remove_tree(tdata_path(p, many, "maps/gone"));
    lost_rows lost = {0};
    cr_assert_eq(sm_explain_store_commit(b, note_lost, &lost, &err), -1);
    cr_assert_eq(lost.n, 1);
    cr_assert_str_eq(lost.id, "gone");
    cr_assert_str_eq(lost.method, "sal");
    cr_assert(tdata_has(lost.why, "maps/gone/sal.row"), "%s", lost.why);
    cr_assert_str_eq(err.msg, lost.why);
    cr_assert_not(sm_explain_store_done(b, "gone", "sal"));
    /* after the batch, puts are single again: done at once */
    cr_assert_eq(sm_explain_store_put(b, "c", "7", "7", "3", "sal", "{}", &r, 2, 3,
                                      &err), 0, "%s", err.msg);
    cr_assert(sm_explain_store_done(b, "c", "sal"));
    sm_explain_results_free(&r, 1);
    sm_explain_store_destroy(&a);
    sm_explain_store_destroy(&b);
}

Test(task, store_refuses_ids_that_leave_it)
{
    char out[TDATA_PATH], p[TDATA_PATH];
    tdata_path(out, dir, "deep/out");
    sm_err err = {0};
    sm_explain_store *st = sm_explain_store_open(out, &err);
    cr_assert_not_null(st, "%s", err.msg);
    float map[1] = {1};
    sm_explain_result r = store_result(map, 1);
    const char *bad[] = {"../x", "a/../../x", "/tmp/x", "..", "a//b", "",
                         "a/./b", "a/", NULL};
    for (int k = 0; bad[k]; k++) {
        cr_assert_eq(sm_explain_store_put(st, bad[k], NULL, "0", "0", "sal",
                                          "{}", &r, 1, 1, &err),
                     -1, "'%s' accepted", bad[k]);
        cr_assert(tdata_has(err.msg, "would leave"), "%s", err.msg);
        cr_assert_not(sm_explain_store_done(st, bad[k], "sal"));
    }
    struct stat sb;
    cr_assert_neq(stat(tdata_path(p, dir, "deep/x"), &sb), 0);
    cr_assert_neq(stat(tdata_path(p, dir, "deep/out/x"), &sb), 0);
    /* a method name is one component too; a failed result has no map */
    cr_assert_eq(sm_explain_store_put(st, "a", NULL, "0", "0", "../sal", "{}",
                                      &r, 1, 1, &err),
                 -1);
    r.failed = 1;
    cr_assert_eq(sm_explain_store_put(st, "a", NULL, "0", "0", "sal", "{}",
                                      &r, 1, 1, &err),
                 -1);
    /* dots inside a name are fine */
    r.failed = 0;
    cr_assert_eq(sm_explain_store_put(st, "a..b/.c", NULL, "0", "0", "sal",
                                      "{}", &r, 1, 1, &err),
                 0, "%s", err.msg);
    cr_assert(sm_explain_store_done(st, "a..b/.c", "sal"));
    sm_explain_results_free(&r, 1);
    sm_explain_store_destroy(&st);
}

/* --- the direct loop ------------------------------------------------------ */

/* The metric columns of r's row, as index.csv gives them (NaN: empty). */
static void metric_cells(const sm_explain_result *r, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, ",%ld,%.6f,%.6f,", r->evals, r->deletion_auc,
                     r->insertion_auc);
    const double q[] = {r->faithfulness, r->sparseness, r->complexity,
                        r->sensitivity};
    for (int k = 0; k < 4; k++)
        n += isfinite(q[k]) ? snprintf(buf + n, cap - (size_t)n, "%.9g,", q[k])
                            : snprintf(buf + n, cap - (size_t)n, ",");
}

/* job.c on a folder of random 28 x 28 digits in batches of 4 writes the
 * maps and metrics that the tasks compute on all 6 images at once. */
Test(task, job_writes_what_the_tasks_compute)
{
    const char *model = "tests/fixtures/mnist_lenet_trained.onnx";
    const char *config = "configs/mnist.yaml";
    char ds_dir[TDATA_PATH], out[TDATA_PATH], p[TDATA_PATH];
    uint8_t px[28 * 28];
    for (int i = 0; i < 6; i++) {
        for (int q = 0; q < 28 * 28; q++)
            px[q] = (uint8_t)(sm_rng_uniform(21, (uint64_t)(i * 784 + q)) *
                              (q % 28 > 6 && q % 28 < 21 ? 256 : 40));
        char name[64];
        snprintf(name, sizeof name, "ds/%d/img%d.png", i % 3, i);
        tdata_png(p, dir, name, px, 28, 28, 1);
    }
    tdata_path(ds_dir, dir, "ds");
    tdata_path(out, dir, "out");
    const char *methods[2] = {"sal", "lime"};
    const char *settings[1] = {"lime.samples=40"};
    sm_explain_job job = {.model = model, .config = config,
                          .dataset = ds_dir, .out = out, .methods = methods,
                          .n_methods = 2, .settings = settings,
                          .n_settings = 1, .seed = 3, .batch = 4,
                          .metrics = 1,
                          .metric = {.faithfulness_subsets = 20,
                                     .sensitivity_samples = 2}};
    sm_explain_stats stats;
    sm_err err = {0};
    cr_assert_eq(sm_explain_job_run(&job, &stats, &err), 0, "%s", err.msg);
    cr_assert_eq(stats.maps_written, 12);

    sm_model *m = sm_model_load_file(model, &err);
    cr_assert_not_null(m, "%s", err.msg);
    sm_model_config *cfg = sm_model_config_load(config, &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    int out_idx;
    cr_assert_eq(sm_model_config_bind(cfg, m, model, &out_idx, &err), 0);
    sm_preproc pp;
    sm_model_config_preproc(cfg, &pp);
    sm_dataset *ds = sm_dataset_open(ds_dir, &err);
    cr_assert_not_null(ds, "%s", err.msg);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){6, 1, 28, 28});
    const char *ids[6];
    float maps[6][784];
    sm_explain_result res[6];
    for (size_t i = 0; i < 6; i++) {
        cr_assert_eq(sm_dataset_load(ds, i, &pp, x->data + i * 784, &err), 0);
        ids[i] = sm_dataset_id(ds, i);
        res[i].map = maps[i];
    }
    sm_explain_setup s = {.model = m, .out_idx = out_idx, .seed = 3,
                          .metrics = 1, .metric = job.metric};
    cr_assert_eq(sm_explain_targets(&s, x, NULL, ids, res, &err), 0);
    for (int k = 0; k < 2; k++) {
        sm_explainer *e = task_explainer(
            methods[k], k ? (const char *[]){"samples=40", NULL} : NULL);
        cr_assert_eq(sm_explain_images(&s, e, x, ids, res, &err), 0, "%s",
                     err.msg);
        for (int i = 0; i < 6; i++) {
            char name[256], auc[256];
            snprintf(name, sizeof name, "maps/%s/%s.npy", ids[i], methods[k]);
            sm_tensor *t = sm_npy_read(tdata_path(p, out, name), &err);
            cr_assert_not_null(t, "%s", err.msg);
            cr_assert(memcmp(t->data, maps[i], sizeof maps[i]) == 0,
                      "%s of %s differs from the task's", methods[k], ids[i]);
            sm_tensor_destroy(&t);
            snprintf(name, sizeof name, "maps/%s/%s.row", ids[i], methods[k]);
            char *row = read_text(tdata_path(p, out, name));
            metric_cells(&res[i], auc, sizeof auc);
            cr_assert(isfinite(res[i].sensitivity) &&
                      isfinite(res[i].sparseness), "%s", auc);
            cr_assert(tdata_has(row, auc), "%s not in %s", auc, row);
            free(row);
        }
        sm_explainer_destroy(&e);
    }
    sm_explain_results_free(res, 6);
    sm_tensor_destroy(&x);
    sm_dataset_destroy(&ds);
    sm_model_config_destroy(&cfg);
    sm_model_destroy(&m);
}

/* --- raw dataset images --------------------------------------------------- */

/* Every image of ds: its raw bytes decoded as a remote worker would give
 * sm_dataset_load's floats exactly, for two preprocessings (the second
 * resizes to three channels). */
static void raw_decodes_as_load(const sm_dataset *ds,
                                sm_dataset_raw_format want)
{
    sm_preproc pps[2];
    sm_preproc_init(&pps[0], 1, 4, 4);
    sm_preproc_init(&pps[1], 3, 7, 5);
    pps[1].mean[1] = 0.5f;
    float a[3 * 7 * 5], b[3 * 7 * 5];
    sm_err err = {0};
    for (size_t i = 0; i < sm_dataset_count(ds); i++) {
        sm_dataset_raw_image raw;
        cr_assert_eq(sm_dataset_raw(ds, i, &raw, &err), 0, "%s", err.msg);
        cr_assert_eq(raw.format, want);
        cr_assert_gt(raw.len, 0);
        for (int k = 0; k < 2; k++) {
            const sm_preproc *pp = &pps[k];
            size_t size = sizeof(float) * (size_t)(pp->channels *
                                                   pp->height * pp->width);
            cr_assert_eq(sm_dataset_load(ds, i, pp, a, &err), 0, "%s",
                         err.msg);
            int rc = raw.format == SM_DATASET_RAW_FILE
                         ? sm_image_load_buffer(raw.data, raw.len, "raw", pp,
                                                b, &err)
                         : sm_image_load_u8(raw.data, raw.width, raw.height,
                                            raw.bands, "raw", pp, b, &err);
            cr_assert_eq(rc, 0, "%s", err.msg);
            cr_assert(memcmp(a, b, size) == 0, "image %zu, preprocessing %d",
                      i, k);
        }
        sm_dataset_raw_free(&raw);
        cr_assert_null(raw.data);
        sm_dataset_raw_free(&raw); /* twice: harmless */
    }
    sm_dataset_raw_image raw;
    cr_assert_eq(sm_dataset_raw(ds, sm_dataset_count(ds), &raw, &err), -1);
    cr_assert(tdata_has(err.msg, "does not exist"), "%s", err.msg);
}

Test(task, raw_png_folder_decodes_as_load)
{
    char p[TDATA_PATH];
    uint8_t px[6 * 5 * 4];
    for (size_t q = 0; q < sizeof px; q++)
        px[q] = (uint8_t)(q * 37 + 11);
    tdata_png(p, dir, "f/a/grey.png", px, 5, 6, 1);
    tdata_png(p, dir, "f/a/rgb.png", px, 4, 3, 3);
    tdata_png(p, dir, "f/b/alpha.png", px, 6, 5, 2);
    tdata_png(p, dir, "f/b/rgba.png", px, 4, 4, 4);
    sm_err err = {0};
    sm_dataset *ds = sm_dataset_open(tdata_path(p, dir, "f"), &err);
    cr_assert_not_null(ds, "%s", err.msg);
    cr_assert_eq(sm_dataset_count(ds), 4);
    raw_decodes_as_load(ds, SM_DATASET_RAW_FILE);
    sm_dataset_destroy(&ds);
}

Test(task, raw_idx_records_decode_as_load)
{
    /* 5 images of 3 x 4 bytes, big-endian dimensions */
    uint8_t f[16 + 5 * 12] = {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 4};
    for (int q = 0; q < 5 * 12; q++)
        f[16 + q] = (uint8_t)(q * 53 + 7);
    char p[TDATA_PATH];
    tdata_write(p, dir, "x-images-idx3-ubyte", f, sizeof f);
    sm_err err = {0};
    sm_dataset *ds = sm_dataset_open(p, &err);
    cr_assert_not_null(ds, "%s", err.msg);
    raw_decodes_as_load(ds, SM_DATASET_RAW_U8);
    sm_dataset_raw_image raw;
    cr_assert_eq(sm_dataset_raw(ds, 2, &raw, &err), 0);
    cr_assert_eq(raw.width, 4);
    cr_assert_eq(raw.height, 3);
    cr_assert_eq(raw.bands, 1);
    cr_assert_eq(raw.len, 12);
    cr_assert(memcmp(raw.data, f + 16 + 24, 12) == 0);
    sm_dataset_raw_free(&raw);
    sm_dataset_destroy(&ds);
}

Test(task, load_buffer_refuses_what_load_file_refuses)
{
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 2, 2);
    float got[4];
    sm_err err = {0};
    const char junk[] = "this is not a picture at all\n";
    cr_assert_eq(sm_image_load_buffer(junk, sizeof junk, "junk", &pp, got,
                                      &err),
                 -1);
    cr_assert(tdata_has(err.msg, "junk: not an image format"), "%s", err.msg);
    const char pgm[] = "P2\n2 1\n255\n0 255\n"; /* PPM: an untrusted loader */
    cr_assert_eq(sm_image_load_buffer(pgm, strlen(pgm), "pgm", &pp, got,
                                      &err),
                 -1);
    cr_assert(tdata_has(err.msg, "untrusted"), "%s", err.msg);
    cr_assert_eq(sm_image_load_buffer(pgm, 0, "empty", &pp, got, &err), -1);
    cr_assert(tdata_has(err.msg, "empty"), "%s", err.msg);

    /* a PNG whose header claims 10000 x 10000 pixels */
    char p[TDATA_PATH];
    uint8_t px[4] = {1, 2, 3, 4};
    tdata_png(p, dir, "small.png", px, 2, 2, 1);
    size_t len;
    uint8_t *png = sm_file_read(p, 1 << 20, &len, &err);
    cr_assert_not_null(png, "%s", err.msg);
    cr_assert(len > 33 && memcmp(png + 12, "IHDR", 4) == 0);
    for (int k = 0; k < 2; k++) { /* width and height, big-endian */
        png[16 + 4 * k + 2] = 0x27;
        png[16 + 4 * k + 3] = 0x10;
    }
    uLong crc = crc32(0, png + 12, 17);
    for (int k = 0; k < 4; k++)
        png[29 + k] = (uint8_t)(crc >> (24 - 8 * k));
    cr_assert_eq(sm_image_load_buffer(png, len, "huge", &pp, got, &err), -1);
    cr_assert(tdata_has(err.msg, "larger than the limit"), "%s", err.msg);
    free(png);
}
