/* The model-randomisation sanity check (explain/sanity.h): Spearman against
 * hand-computed cases and scipy (tests/fixtures/make_sanity_fixture.py),
 * the layers of a small hand-made model and their re-drawing (through a
 * folded BatchNormalization), the check's figures against maps computed
 * here, and `salmap sanity` (bytes, refusals). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explainer.h"
#include "explain/task.h"
#include "io/npy.h"
#include "explain/sanity.h"
#include "model/score.h"
#include "onnx/writer.h"
#include "tdata.h"
#include "tmodel.h"
#include "util/file.h"
#include "util/rng.h"

#define FIX "tests/fixtures/sanity/"

/* --- Spearman ----------------------------------------------------------- */

Test(sanity, spearman_by_hand)
{
    /* b's two 7s tie for ranks 3 and 4: both 3.5, ranks b = 1 2 3.5 5 3.5;
     * centred: a -2 -1 0 1 2, b -2 -1 .5 2 .5; 8 / sqrt(10 * 9.5). */
    float a[5] = {1, 2, 3, 4, 5}, b[5] = {5, 6, 7, 8, 7};
    cr_assert_float_eq(sm_sanity_spearman(a, b, 5), 8 / sqrt(95.0), 1e-15);
    /* ties on both sides: ranks 1.5 1.5 3.5 3.5 against 1..4:
     * 4 / sqrt(4 * 5) */
    float c[4] = {0, 0, 1, 1}, d[4] = {-3, 0.5f, 2, 9};
    cr_assert_float_eq(sm_sanity_spearman(c, d, 4), 4 / sqrt(20.0), 1e-15);
    /* ranks only: a monotone transform is 1, its reverse -1, exactly */
    float e[4] = {0.1f, 10, 100, 1000}, f[4] = {-1, -2, -30, -400};
    cr_assert_eq(sm_sanity_spearman(a, e, 4), 1.0);
    cr_assert_eq(sm_sanity_spearman(a, f, 4), -1.0);
    cr_assert_eq(sm_sanity_spearman(d, d, 4), 1.0);
    /* undefined: a constant, fewer than 2 values, a NaN */
    float z[4] = {2, 2, 2, 2}, g[4] = {1, NAN, 3, 4};
    cr_assert(isnan(sm_sanity_spearman(z, d, 4)));
    cr_assert(isnan(sm_sanity_spearman(d, z, 4)));
    cr_assert(isnan(sm_sanity_spearman(a, b, 1)));
    cr_assert(isnan(sm_sanity_spearman(g, d, 4)));
}

Test(sanity, spearman_matches_scipy)
{
    sm_err err = {0};
    sm_tensor *a = sm_npy_read(FIX "a.npy", &err);
    cr_assert_not_null(a, "%s", err.msg);
    sm_tensor *b = sm_npy_read(FIX "b.npy", &err);
    sm_tensor *rho = sm_npy_read(FIX "rho.npy", &err);
    sm_tensor *rabs = sm_npy_read(FIX "abs.npy", &err);
    cr_assert(b && rho && rabs, "%s", err.msg);
    int64_t k = a->shape[0], n = a->shape[1];
    cr_assert_eq(k, 8);
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    for (int64_t r = 0; r < k; r++) {
        const float *ar = a->data + r * n, *br = b->data + r * n;
        cr_assert_float_eq(sm_sanity_spearman(ar, br, n), rho->data[r], 1e-6,
                           "row %lld", (long long)r);
        for (int64_t i = 0; i < n; i++) {
            x[i] = fabsf(ar[i]);
            y[i] = fabsf(br[i]);
        }
        cr_assert_float_eq(sm_sanity_spearman(x, y, n), rabs->data[r], 1e-6,
                           "row %lld of |.|", (long long)r);
    }
    free(x);
    free(y);
    sm_tensor_destroy(&a);
    sm_tensor_destroy(&b);
    sm_tensor_destroy(&rho);
    sm_tensor_destroy(&rabs);
}

/* --- A small model ------------------------------------------------------ */

enum { S = 8, K = 3, N = 3 };

static sm_tensor *normal(int ndim, const int64_t *shape, const char *name,
                         double sd, double mean)
{
    sm_tensor *t = sm_tensor_new(ndim, shape);
    cr_assert_not_null(t);
    uint64_t key = sm_rng_key(7, (const char *const[]){"test_sanity", name, NULL});
    for (int64_t i = 0; i < sm_tensor_numel(t); i++)
        t->data[i] = (float)(mean + sd * sm_rng_normal(key, (uint64_t)i));
    return t;
}

/* x [N,1,8,8] -> Conv "conv" (2 3x3 filters, pad 1) -> BatchNormalization
 * "bn" (folded into conv at load) -> Relu -> Flatten -> Gemm "fc" (3
 * classes). layers: 0 none (Flatten only, a Relu before). */
static unsigned char *tiny_bytes(int layers, size_t *len)
{
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){-1, 1, S, S});
    const char *prev = "x";
    sm_tensor *t[8] = {0};
    int nt = 0;
    if (layers) {
        t[nt++] = normal(4, (int64_t[]){2, 1, 3, 3}, "conv.weight", 0.5, 0);
        t[nt++] = normal(1, (int64_t[]){2}, "conv.bias", 0.1, 0);
        t[nt++] = normal(1, (int64_t[]){2}, "bn.scale", 0.1, 1);
        t[nt++] = normal(1, (int64_t[]){2}, "bn.bias", 0.1, 0.1);
        t[nt++] = normal(1, (int64_t[]){2}, "bn.mean", 0.1, 0);
        t[nt++] = normal(1, (int64_t[]){2}, "bn.var", 0.1, 1);
        t[nt++] = normal(2, (int64_t[]){K, 2 * S * S}, "fc.weight", 0.1, 0);
        t[nt++] = normal(1, (int64_t[]){K}, "fc.bias", 0.1, 0);
        const char *names[8] = {"conv.weight", "conv.bias", "bn.scale",
                                "bn.bias", "bn.mean", "bn.var", "fc.weight",
                                "fc.bias"};
        for (int i = 0; i < nt; i++)
            sm_onnx_writer_initializer(w, names[i], t[i]);
        sm_onnx_writer_node(w, "Conv", "conv",
                            (const char *[]){"x", "conv.weight", "conv.bias"}, 3,
                            (const char *[]){"c"}, 1);
        sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){3, 3}, 2);
        sm_onnx_writer_attr_ints(w, "pads", (int64_t[]){1, 1, 1, 1}, 4);
        sm_onnx_writer_node(w, "BatchNormalization", "bn",
                            (const char *[]){"c", "bn.scale", "bn.bias",
                                             "bn.mean", "bn.var"}, 5,
                            (const char *[]){"b"}, 1);
        prev = "b";
    }
    sm_onnx_writer_node(w, "Relu", "relu", (const char *[]){prev}, 1,
                        (const char *[]){"r"}, 1);
    sm_onnx_writer_node(w, "Flatten", "flat", (const char *[]){"r"}, 1,
                        (const char *[]){layers ? "f" : "logits"}, 1);
    if (layers) {
        sm_onnx_writer_node(w, "Gemm", "fc",
                            (const char *[]){"f", "fc.weight", "fc.bias"}, 3,
                            (const char *[]){"logits"}, 1);
        sm_onnx_writer_attr_int(w, "transB", 1);
    }
    sm_onnx_writer_output(w, "logits", 2,
                          (int64_t[]){-1, layers ? K : S * S});
    sm_err err = {0};
    unsigned char *buf = sm_onnx_writer_serialize(w, len, &err);
    cr_assert_not_null(buf, "%s", err.msg);
    sm_onnx_writer_destroy(&w);
    for (int i = 0; i < nt; i++)
        sm_tensor_destroy(&t[i]);
    return buf;
}

static sm_model *tiny(int layers)
{
    size_t len;
    sm_err err = {0};
    unsigned char *buf = tiny_bytes(layers, &len);
    sm_model *m = sm_model_load_buffer(buf, len, "tiny.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    free(buf);
    return m;
}

/* The model's logits of x into y (N x K). */
static void logits(sm_model *m, const sm_tensor *x, float *y)
{
    sm_err err = {0};
    const sm_tensor *out = sm_model_forward(m, x->data, x->shape[0], &err);
    cr_assert_not_null(out, "%s", err.msg);
    memcpy(y, out->data, sizeof(float) * (size_t)sm_tensor_numel(out));
}

static int same(const float *a, const float *b, int n)
{
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

Test(sanity, layers_are_the_learned_nodes_top_first)
{
    sm_err err = {0};
    sm_model *m = tiny(1);
    sm_sanity_layers *l = sm_sanity_layers_new(m, "tiny.onnx", &err);
    cr_assert_not_null(l, "%s", err.msg);
    /* the BatchNormalization is folded: conv holds its weights */
    cr_assert_eq(sm_sanity_layers_count(l), 2);
    cr_assert_str_eq(sm_sanity_layers_name(l, 0), "fc");
    cr_assert_str_eq(sm_sanity_layers_name(l, 1), "conv");
    cr_assert_null(sm_sanity_layers_name(l, 2));
    cr_assert_eq(sm_sanity_layers_randomise(l, 3, 0, &err), -1);
    cr_assert(tdata_has(err.msg, "step 3") && tdata_has(err.msg, "2 layers"),
              "%s", err.msg);
    sm_sanity_layers_destroy(&l);
    sm_model_destroy(&m);
}

Test(sanity, randomising_changes_the_outputs_and_restoring_undoes_it)
{
    sm_err err = {0};
    sm_model *m = tiny(1);
    sm_tensor *x = tmodel_images(N, 1, S, S, 11);
    float y0[N * K], y1[N * K], y1b[N * K], y2[N * K], yseed[N * K], y[N * K];
    logits(m, x, y0); /* a plan of this shape exists before the edits */
    sm_sanity_layers *l = sm_sanity_layers_new(m, "tiny.onnx", &err);
    cr_assert_not_null(l, "%s", err.msg);
    logits(m, x, y);
    cr_assert(same(y, y0, N * K), "listing the layers changed the model");
    cr_assert_eq(sm_sanity_layers_randomise(l, 1, 5, &err), 0, "%s", err.msg);
    logits(m, x, y1);
    for (int i = 0; i < N * K; i++)
        cr_assert_neq(y1[i], y0[i], "logit %d: fc re-drawn, output unchanged", i);
    /* the conv layer (its weights are the BatchNormalization folded in) */
    cr_assert_eq(sm_sanity_layers_randomise(l, 2, 5, &err), 0, "%s", err.msg);
    logits(m, x, y2);
    for (int i = 0; i < N * K; i++)
        cr_assert_neq(y2[i], y1[i], "logit %d: conv re-drawn, output unchanged", i);
    /* the same draws again, other draws with another seed */
    cr_assert_eq(sm_sanity_layers_randomise(l, 1, 5, &err), 0, "%s", err.msg);
    logits(m, x, y1b);
    cr_assert(same(y1, y1b, N * K));
    cr_assert_eq(sm_sanity_layers_randomise(l, 1, 6, &err), 0, "%s", err.msg);
    logits(m, x, yseed);
    cr_assert(!same(y1, yseed, N * K));
    /* step 0 and destroying both give the loaded weights back */
    cr_assert_eq(sm_sanity_layers_randomise(l, 0, 5, &err), 0, "%s", err.msg);
    logits(m, x, y);
    cr_assert(same(y, y0, N * K));
    sm_sanity_layers_randomise(l, 2, 5, &err);
    sm_sanity_layers_destroy(&l);
    logits(m, x, y);
    cr_assert(same(y, y0, N * K));
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* The predicted class of each image. */
static void predicted(sm_model *m, const sm_tensor *x, int *t)
{
    float y[N * K];
    logits(m, x, y);
    for (int i = 0; i < N; i++)
        t[i] = (int)sm_model_argmax_row(y + i * K, K);
}

Test(sanity, step_figures_are_the_correlations_of_the_maps)
{
    sm_err err = {0};
    sm_model *m = tiny(1);
    sm_tensor *x = tmodel_images(N, 1, S, S, 12);
    const char *ids[N] = {"a", "b", "c"};
    int target[N];
    predicted(m, x, target);
    float y0[N * K], y[N * K];
    logits(m, x, y0);
    /* sal's maps here, on the model as loaded and with fc re-drawn */
    sm_explain_ctx ctx = {.model = m, .seed = 3};
    sm_explain_out out[N] = {0};
    float orig[N * S * S], rnd[N * S * S];
    cr_assert_eq(tmodel_explain("sal", NULL, &ctx, x, target, ids, orig, out,
                                &err), 0, "%s", err.msg);
    sm_sanity_layers *l = sm_sanity_layers_new(m, "tiny.onnx", &err);
    cr_assert_not_null(l, "%s", err.msg);
    cr_assert_eq(sm_sanity_layers_randomise(l, 1, 3, &err), 0, "%s", err.msg);
    cr_assert_eq(tmodel_explain("sal", NULL, &ctx, x, target, ids, rnd, out,
                                &err), 0, "%s", err.msg);
    sm_explain_out_free(out, N);
    cr_assert_eq(sm_sanity_layers_randomise(l, 0, 3, &err), 0, "%s", err.msg);
    double r[N], s = 0, ss = 0;
    for (int i = 0; i < N; i++)
        s += r[i] = sm_sanity_spearman(orig + i * S * S, rnd + i * S * S, S * S);
    for (int i = 0; i < N; i++)
        ss += (r[i] - s / N) * (r[i] - s / N);
    /* the check */
    sm_explainer *ex[2] = {tmodel_explainer("sal", NULL),
                           tmodel_explainer("grad", NULL)};
    sm_explain_setup su = {.model = m, .seed = 3, .target = SM_TARGET_PREDICTED,
                           .metrics = 1};
    sm_sanity_report *rep = sm_sanity_run(&su, l, ex, 2, x, ids, 3, NULL, NULL,
                                          &err);
    cr_assert_not_null(rep, "%s", err.msg);
    cr_assert_eq(rep->n_methods, 2);
    cr_assert_eq(rep->n_steps, 3);
    cr_assert_eq(rep->maps, (3 + 1) * 2 * N);
    for (int mi = 0; mi < 2; mi++) {
        const sm_sanity_stat *st0 = &rep->stat[mi * 3];
        cr_assert_eq(st0->spearman, 1.0, "method %d step 0", mi);
        cr_assert_eq(st0->spearman_abs, 1.0);
        cr_assert_eq(st0->spearman_sd, 0.0);
        cr_assert_eq(st0->images, N);
    }
    const sm_sanity_stat *st1 = &rep->stat[1];
    cr_assert_lt(st1->spearman, 0.99);
    cr_assert_float_eq(st1->spearman, s / N, 1e-12);
    cr_assert_float_eq(st1->spearman_sd, sqrt(ss / (N - 1)), 1e-12);
    /* sal is |gradient|: the two figures are one */
    cr_assert_eq(st1->spearman_abs, st1->spearman);
    cr_assert_eq(st1->images, N);
    /* the model is left as loaded */
    logits(m, x, y);
    cr_assert(same(y, y0, N * K));
    sm_sanity_report_destroy(&rep);
    sm_explainer_destroy(&ex[0]);
    sm_explainer_destroy(&ex[1]);
    sm_sanity_layers_destroy(&l);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

static int nomap_run(const void *p, const sm_explain_ctx *c,
                     const sm_explain_batch *b, sm_explain_out *o, sm_err *e)
{
    (void)p, (void)c, (void)b, (void)o, (void)e;
    return 0;
}

Test(sanity, refusals)
{
    sm_err err = {0};
    /* nothing learned: a Relu and a Flatten */
    sm_model *bare = tiny(0);
    cr_assert_null(sm_sanity_layers_new(bare, "bare.onnx", &err));
    cr_assert(tdata_has(err.msg, "bare.onnx") &&
              tdata_has(err.msg, "no layer with learned weights"), "%s", err.msg);
    sm_model_destroy(&bare);
    /* a method without maps */
    static const sm_explainer_class nomap = {.name = "nomap", .no_map = 1,
                                             .run = nomap_run};
    sm_model *m = tiny(1);
    sm_sanity_layers *l = sm_sanity_layers_new(m, "tiny.onnx", &err);
    cr_assert_not_null(l, "%s", err.msg);
    sm_explainer *ex[1] = {sm_explainer_new_class(&nomap, &err)};
    cr_assert_not_null(ex[0], "%s", err.msg);
    sm_tensor *x = tmodel_images(1, 1, S, S, 13);
    const char *ids[1] = {"a"};
    sm_explain_setup su = {.model = m, .target = SM_TARGET_PREDICTED};
    cr_assert_null(sm_sanity_run(&su, l, ex, 1, x, ids, 0, NULL, NULL, &err));
    cr_assert(tdata_has(err.msg, "'nomap' gives no map"), "%s", err.msg);
    sm_explainer_destroy(&ex[0]);
    sm_tensor_destroy(&x);
    sm_sanity_layers_destroy(&l);
    sm_model_destroy(&m);
}

/* --- salmap sanity ------------------------------------------------------ */

TDATA_SUITE(sanity_cli);

/* dir/tiny.onnx (layers) or dir/bare.onnx, and dir/ds: 4 PNGs in 2
 * classes. */
static void cli_files(void)
{
    char p[TDATA_PATH];
    size_t len;
    for (int layers = 0; layers < 2; layers++) {
        unsigned char *buf = tiny_bytes(layers, &len);
        tdata_write(p, dir, layers ? "tiny.onnx" : "bare.onnx", buf, len);
        free(buf);
    }
    for (int i = 0; i < 4; i++) {
        uint8_t px[S * S];
        for (int j = 0; j < S * S; j++)
            px[j] = (uint8_t)(sm_rng_u64(sm_rng_key(1, (const char *const[]){"img", NULL}),
                                         (uint64_t)(i * S * S + j)) & 0xff);
        char name[32];
        snprintf(name, sizeof name, "ds/%d/%d.png", i % 2, i);
        tdata_png(p, dir, name, px, S, S, 1);
    }
}

Test(sanity_cli, writes_the_same_csv_twice)
{
    cli_files();
    char msg[TDATA_PATH], model[TDATA_PATH], ds[TDATA_PATH], o1[TDATA_PATH],
        o2[TDATA_PATH], p[TDATA_PATH];
    tdata_path(model, dir, "tiny.onnx");
    tdata_path(ds, dir, "ds");
    tdata_path(o1, dir, "o1");
    tdata_path(o2, dir, "o2");
    const char *args[] = {"sanity", "--model", model, "--dataset", ds,
                          "--methods", "sal,grad", "--limit", "3", "--out", o1,
                          "--seed", "4", "--threads", "1", NULL};
    cr_assert_eq(tdata_salmap(msg, dir, args), 0, "%s", msg);
    /* progress lines (not a terminal) and the table */
    cr_assert(tdata_has(msg, "salmap sanity: 24/24 maps") &&
              tdata_has(msg, "maps/s") && tdata_has(msg, "s left"), "%s", msg);
    cr_assert(tdata_has(msg, "fc") && tdata_has(msg, "conv") &&
              tdata_has(msg, "(none)"), "%s", msg);
    args[10] = o2;
    args[14] = "2"; /* threads change nothing */
    cr_assert_eq(tdata_salmap(msg, dir, args), 0, "%s", msg);
    sm_err err = {0};
    size_t la, lb;
    unsigned char *a = sm_file_read(tdata_path(p, o1, "sanity.csv"), 1 << 20, &la, &err);
    cr_assert_not_null(a, "%s", err.msg);
    unsigned char *b = sm_file_read(tdata_path(p, o2, "sanity.csv"), 1 << 20, &lb, &err);
    cr_assert_not_null(b, "%s", err.msg);
    cr_assert(la == lb && memcmp(a, b, la) == 0, "two runs differ");
    /* header and a row a (method, step): 2 methods x 3 steps */
    const char *want[] = {
        "method,step,layer,spearman,spearman_sd,spearman_abs,spearman_abs_sd,images",
        "sal,0,,1.000000,0.000000,1.000000,0.000000,3", "sal,1,fc,", "sal,2,conv,",
        "grad,0,,1.000000,0.000000,1.000000,0.000000,3", "grad,1,fc,",
        "grad,2,conv,"};
    char *text = strndup((const char *)a, la); /* NUL-terminated */
    cr_assert_not_null(text);
    char *save, *line = strtok_r(text, "\n", &save);
    int n = 0;
    for (; line; line = strtok_r(NULL, "\n", &save), n++) {
        cr_assert_lt(n, 7, "extra line %s", line);
        cr_assert_eq(strncmp(line, want[n], strlen(want[n])), 0, "line %d: %s", n, line);
        if (n) /* 3 images each */
            cr_assert_str_eq(line + strlen(line) - 2, ",3", "line %d: %s", n, line);
    }
    cr_assert_eq(n, 7);
    free(text);
    free(a);
    free(b);
}

Test(sanity_cli, refuses_bad_input)
{
    cli_files();
    char msg[TDATA_PATH], model[TDATA_PATH], bare[TDATA_PATH], ds[TDATA_PATH],
        out[TDATA_PATH];
    tdata_path(model, dir, "tiny.onnx");
    tdata_path(bare, dir, "bare.onnx");
    tdata_path(ds, dir, "ds");
    tdata_path(out, dir, "out");
    const char *unknown[] = {"sanity", "--model", model, "--dataset", ds,
                             "--methods", "sal,nope", "--out", out, NULL};
    cr_assert_eq(tdata_salmap(msg, dir, unknown), 1, "%s", msg);
    cr_assert(tdata_has(msg, "unknown method 'nope'"), "%s", msg);
    const char *noparams[] = {"sanity", "--model", bare, "--dataset", ds,
                              "--methods", "sal", "--out", out, NULL};
    cr_assert_eq(tdata_salmap(msg, dir, noparams), 1, "%s", msg);
    cr_assert(tdata_has(msg, "bare.onnx: no layer with learned weights"), "%s", msg);
    const char *setting[] = {"sanity", "--model", model, "--dataset", ds,
                             "--methods", "sal", "--out", out, "--set",
                             "intg.steps=3", NULL};
    cr_assert_eq(tdata_salmap(msg, dir, setting), 1, "%s", msg);
    cr_assert(tdata_has(msg, "intg"), "%s", msg);
    const char *limit[] = {"sanity", "--model", model, "--dataset", ds,
                           "--methods", "sal", "--out", out, "--limit", "x", NULL};
    cr_assert_eq(tdata_salmap(msg, dir, limit), 2, "%s", msg);
    cr_assert(tdata_has(msg, "--limit must be a positive integer, not 'x'"), "%s", msg);
    const char *threads[] = {"sanity", "--model", model, "--dataset", ds,
                             "--methods", "sal", "--out", out, "--threads", "17",
                             NULL};
    cr_assert_eq(tdata_salmap(msg, dir, threads), 2, "%s", msg);
    cr_assert(tdata_has(msg, "--threads"), "%s", msg);
    const char *no_out[] = {"sanity", "--model", model, "--dataset", ds,
                            "--methods", "sal", NULL};
    cr_assert_eq(tdata_salmap(msg, dir, no_out), 2, "%s", msg);
    cr_assert(tdata_has(msg, "missing --out"), "%s", msg);
    const char *no_ds[] = {"sanity", "--model", model, "--dataset", "/nonexistent/ds",
                           "--methods", "sal", "--out", out, NULL};
    cr_assert_eq(tdata_salmap(msg, dir, no_ds), 1, "%s", msg);
    cr_assert(tdata_has(msg, "/nonexistent/ds"), "%s", msg);
    /* nothing was written by the refused runs */
    char p[TDATA_PATH];
    FILE *f = fopen(tdata_path(p, dir, "out"), "r");
    cr_assert_null(f, "a refused run made %s", out);
}
