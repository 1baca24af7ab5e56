/* The explainer interface and SAL: a linear model whose gradient is its
 * weight row, hand-checked; the probability score against differences. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explainer.h"
#include "explain/gradient.h"
#include "tmodel.h"
#include "util/rng.h"

/* y = W flatten(x) + b, x [N, 2, 3, 3], 4 classes. */
static sm_model *linear_model(sm_tensor **wout)
{
    int64_t ws[2] = {4, 18};
    sm_tensor *w = sm_tensor_new(2, ws), *b = sm_tensor_new(1, (int64_t[]){4});
    for (int i = 0; i < 72; i++)
        w->data[i] = (float)sm_rng_normal(7, (uint64_t)i);
    for (int i = 0; i < 4; i++)
        b->data[i] = 0.1f * (float)i;
    sm_model *m = tmodel_linear(w, b, 2, 3, 3);
    sm_tensor_destroy(&b);
    *wout = w;
    return m;
}

Test(explain, sal_of_a_linear_model_is_its_weight_row)
{
    sm_tensor *w;
    sm_model *m = linear_model(&w);
    sm_tensor *x = tmodel_images(3, 2, 3, 3, 1);
    int target[3] = {0, 3, 2};
    const char *ids[3] = {"a", "b", "c"};
    sm_explain_batch b = {x, target, ids};
    sm_explain_ctx ctx = {m, 0, 0, 0, 1, NULL, 0, NULL};
    float maps[3][9];
    sm_explain_out out[3] = {0};
    for (int i = 0; i < 3; i++)
        out[i].map = maps[i];
    sm_err err = {0};
    sm_explainer *e = sm_explainer_new("sal", &err);
    cr_assert_not_null(e, "%s", err.msg);
    cr_assert_eq(sm_explainer_run(e, &ctx, &b, out, &err), 0, "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        const float *row = w->data + target[i] * 18;
        double score = 0.1 * target[i];
        for (int q = 0; q < 18; q++)
            score += (double)row[q] * x->data[i * 18 + q];
        cr_assert_float_eq(out[i].score, score, 1e-5);
        cr_assert_eq(out[i].evals, 1);
        for (int q = 0; q < 9; q++)
            cr_assert_float_eq(maps[i][q], fmaxf(fabsf(row[q]), fabsf(row[9 + q])),
                               1e-6, "image %d pixel %d", i, q);
    }
    cr_assert_str_eq(sm_explainer_params_json(e), "{}");
    sm_explainer_destroy(&e);
    cr_assert_null(e);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&w);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 3);
}

Test(explain, probability_gradient_matches_differences)
{
    sm_tensor *w;
    sm_model *m = linear_model(&w);
    sm_tensor *x = tmodel_images(2, 2, 3, 3, 2);
    int target[2] = {1, 2};
    sm_explain_ctx ctx = {m, 0, 0, 1, 1, NULL, 0, NULL};
    float g[36];
    double score[2];
    sm_err err = {0};
    cr_assert_eq(sm_explain_gradient(&ctx, x, target, g, score, &err), 0, "%s", err.msg);
    for (int j = 0; j < 36; j++) {
        float keep = x->data[j];
        double sp[2], sm[2];
        x->data[j] = keep + 1e-2f;
        sm_explain_scores(&ctx, x, target, sp, &err);
        x->data[j] = keep - 1e-2f;
        sm_explain_scores(&ctx, x, target, sm, &err);
        x->data[j] = keep;
        double fd = (sp[j / 18] - sm[j / 18]) / 2e-2;
        cr_assert(fabs(fd - g[j]) < 1e-3, "element %d: %g vs %g", j, g[j], fd);
        cr_assert(score[j / 18] > 0 && score[j / 18] < 1);
    }
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&w);
    sm_model_destroy(&m);
}

Test(explain, refusals_name_the_method_and_key)
{
    sm_err err = {0};
    cr_assert_null(sm_explainer_new("saliency", &err));
    cr_assert(strstr(err.msg, "unknown method 'saliency'") && strstr(err.msg, "sal"),
              "%s", err.msg);
    sm_explainer *e = sm_explainer_new("sal", &err);
    cr_assert_eq(sm_explainer_set(e, "steps", "3", &err), -1);
    cr_assert(strstr(err.msg, "sal has no parameter 'steps'"), "%s", err.msg);
    sm_explainer_destroy(&e);
    /* a target outside the model's classes */
    sm_tensor *w;
    sm_model *m = linear_model(&w);
    sm_tensor *x = tmodel_images(1, 2, 3, 3, 3);
    int target[1] = {9};
    const char *ids[1] = {"a"};
    sm_explain_batch b = {x, target, ids};
    sm_explain_ctx ctx = {m, 0, 0, 0, 1, NULL, 0, NULL};
    float map[9];
    sm_explain_out out[1] = {{.map = map}};
    e = sm_explainer_new("sal", &err);
    cr_assert_eq(sm_explainer_run(e, &ctx, &b, out, &err), -1);
    cr_assert(strstr(err.msg, "sal: target class 9"), "%s", err.msg);
    sm_explainer_destroy(&e);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&w);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 1);
}

Test(explain, rng_is_keyed_and_counter_based)
{
    uint64_t a = sm_rng_key(1, (const char *[]){"img/1", "smoothgrad", NULL});
    uint64_t b = sm_rng_key(1, (const char *[]){"img/1", "smoothgrad", NULL});
    uint64_t c = sm_rng_key(1, (const char *[]){"img/2", "smoothgrad", NULL});
    uint64_t d = sm_rng_key(2, (const char *[]){"img/1", "smoothgrad", NULL});
    uint64_t e = sm_rng_key(1, (const char *[]){"img/1s", "moothgrad", NULL});
    cr_assert_eq(a, b);
    cr_assert_neq(a, c);
    cr_assert_neq(a, d);
    cr_assert_neq(a, e, "names are separated, not concatenated");
    /* normal draws: mean ~0, variance ~1 over 20000 */
    double s = 0, s2 = 0;
    for (int i = 0; i < 20000; i++) {
        double v = sm_rng_normal(a, (uint64_t)i);
        s += v;
        s2 += v * v;
    }
    cr_assert(fabs(s / 20000) < 0.03 && fabs(s2 / 20000 - 1) < 0.05,
              "mean %g var %g", s / 20000, s2 / 20000);
}

/* sm_rng_normals: a value depends on its counter alone, wherever a run
 * starts or stops; the pairs' two halves are independent standard
 * normals (mean 0, variance 1, 68.27% within one sigma, no correlation
 * between the halves). */
Test(explain, rng_normals_are_counter_based_pairs)
{
    enum { N = 40000 };
    static double all[N], part[N];
    uint64_t key = sm_rng_key(3, (const char *[]){"img/1", "smoothgrad", NULL});
    sm_rng_normals(key, 0, N, all);
    /* runs of odd lengths from odd and even counters */
    for (int64_t c0 = 0, len = 1; c0 < N; c0 += len, len = len % 7 + 2) {
        int64_t n = c0 + len <= N ? len : N - c0;
        sm_rng_normals(key, (uint64_t)c0, n, part + c0);
    }
    cr_assert_eq(memcmp(all, part, sizeof all), 0);
    double s = 0, s2 = 0, cross = 0;
    int inside = 0;
    for (int i = 0; i < N; i++) {
        s += all[i];
        s2 += all[i] * all[i];
        inside += fabs(all[i]) < 1;
        if (i % 2)
            cross += all[i] * all[i - 1];
    }
    cr_assert(fabs(s / N) < 0.02 && fabs(s2 / N - 1) < 0.03, "mean %g var %g",
              s / N, s2 / N);
    cr_assert(fabs((double)inside / N - 0.6827) < 0.01, "within 1: %g",
              (double)inside / N);
    cr_assert(fabs(cross / (N / 2)) < 0.03, "pair correlation %g", cross / (N / 2));
    /* another key, another stream */
    sm_rng_normals(key + 1, 0, N, part);
    cr_assert_neq(memcmp(all, part, sizeof all), 0);
}

/* A method finds the job's auxiliary models by name; a missing one is an
 * error naming it and those the job has. */
Test(explain, auxiliary_models_by_name)
{
    sm_model *a = (sm_model *)1, *b = (sm_model *)2; /* never run */
    const sm_explain_aux aux[2] = {{"aae_encoder", a}, {"aae_decoder", b}};
    sm_explain_ctx ctx = {NULL, 0, 0, 0, 0, aux, 2, NULL};
    sm_err err = {0};
    cr_assert_eq(sm_explain_aux_model(&ctx, "aae_decoder", &err), b);
    cr_assert_eq(sm_explain_aux_model(&ctx, "aae_encoder", &err), a);
    cr_assert_null(sm_explain_aux_model(&ctx, "aae", &err));
    cr_assert_str_eq(err.msg, "the job has no auxiliary model 'aae' (it has: "
                     "aae_encoder, aae_decoder)");
    ctx.n_aux = 0;
    cr_assert_null(sm_explain_aux_model(&ctx, "aae", &err));
    cr_assert(strstr(err.msg, "(it has: none)"), "%s", err.msg);
}

/* A record an add could not complete (out of memory: marked failed, as
 * record.c does) fails the method, naming the image, though its run
 * returned 0. */
static int incomplete_run(const void *params, const sm_explain_ctx *ctx,
                          const sm_explain_batch *b, sm_explain_out *out,
                          sm_err *err)
{
    (void)params, (void)ctx, (void)b, (void)err;
    sm_record_addf(&out[1].record, "kept", "%d", 1);
    out[1].record.failed = 1;
    return 0;
}

Test(explain, an_incomplete_record_fails_the_method)
{
    static const sm_explainer_class cls = {.name = "incomplete",
                                           .run = incomplete_run};
    sm_err err = {0};
    sm_explainer *e = sm_explainer_new_class(&cls, &err);
    cr_assert_not_null(e, "%s", err.msg);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){2, 1, 2, 2});
    float maps[2][4];
    sm_explain_out out[2] = {{.map = maps[0]}, {.map = maps[1]}};
    const int target[2] = {0, 0};
    const char *ids[2] = {"a", "b"};
    sm_explain_ctx ctx = {NULL, 0, 0, 0, 0, NULL, 0, NULL};
    sm_explain_batch b = {x, target, ids};
    cr_assert_eq(sm_explainer_run(e, &ctx, &b, out, &err), -1);
    cr_assert_str_eq(err.msg, "incomplete: image 'b': out of memory for its "
                     "record");
    sm_explain_out_free(out, 2);
    sm_tensor_destroy(&x);
    sm_explainer_destroy(&e);
}
