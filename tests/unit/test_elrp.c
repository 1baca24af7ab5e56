/* ELRP and the engine's relevance pass: conservation on small CNNs (MaxPool,
 * AveragePool, residual Add, BatchNorm folded and standalone, Flatten,
 * GlobalAveragePool, MatMul) and on LeNet with zero biases; the epsilon rule
 * against gradient x input as epsilon -> 0; a 2-layer dense net worked out
 * by hand for each rule; maps against an independent torch float64
 * implementation (tests/fixtures/make_elrp_fixtures.py) on the trained
 * fixture LeNet and on the shipped models/mnist_cnn.onnx (--model cnn);
 * refusals. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/explainer.h"
#include "explain/gradient.h"
#include "io/npy.h"
#include "onnx/writer.h"
#include "util/rng.h"

#define FIX "tests/fixtures/elrp/"
#define CNN_FIX "tests/fixtures/elrp_cnn/"

/* A float initializer of the given shape: N(0, scale) from key, or zeros
 * (scale 0), or the constant -scale when scale < 0 (a BatchNorm variance). */
static void init(sm_onnx_writer *w, const char *name, int ndim,
                 const int64_t *shape, uint64_t key, double scale)
{
    sm_tensor *t = sm_tensor_new(ndim, shape);
    for (int64_t i = 0; i < sm_tensor_numel(t); i++)
        t->data[i] = scale < 0 ? (float)-scale
                               : (float)(scale * sm_rng_normal(key, (uint64_t)i));
    sm_onnx_writer_initializer(w, name, t);
    sm_tensor_destroy(&t);
}

static void node(sm_onnx_writer *w, const char *op, const char *name,
                 const char *const *in, int n_in, const char *out)
{
    sm_onnx_writer_node(w, op, name, in, n_in, (const char *[]){out}, 1);
}

static sm_model *finish(sm_onnx_writer *w, const char *out, int64_t k)
{
    sm_onnx_writer_output(w, out, 2, (int64_t[]){-1, k});
    size_t len;
    sm_err err = {0};
    unsigned char *buf = sm_onnx_writer_serialize(w, &len, &err);
    cr_assert_not_null(buf, "%s", err.msg);
    sm_model *m = sm_model_load_buffer(buf, len, "test.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    free(buf);
    sm_onnx_writer_destroy(&w);
    return m;
}

/* Conv(pads 1) Relu MaxPool Conv Relu AveragePool Flatten Gemm Relu Gemm,
 * biases zero: [N,2,12,12] -> [N,5]. */
static sm_model *lenet_like(void)
{
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){-1, 2, 12, 12});
    init(w, "w1", 4, (int64_t[]){4, 2, 3, 3}, 11, 0.5);
    init(w, "b1", 1, (int64_t[]){4}, 0, 0);
    init(w, "w2", 4, (int64_t[]){6, 4, 3, 3}, 12, 0.4);
    init(w, "b2", 1, (int64_t[]){6}, 0, 0);
    init(w, "w3", 2, (int64_t[]){10, 24}, 13, 0.4);
    init(w, "b3", 1, (int64_t[]){10}, 0, 0);
    init(w, "w4", 2, (int64_t[]){5, 10}, 14, 0.5);
    init(w, "b4", 1, (int64_t[]){5}, 0, 0);
    node(w, "Conv", "c1", (const char *[]){"x", "w1", "b1"}, 3, "c1");
    sm_onnx_writer_attr_ints(w, "pads", (int64_t[]){1, 1, 1, 1}, 4);
    node(w, "Relu", "r1", (const char *[]){"c1"}, 1, "r1");
    node(w, "MaxPool", "p1", (const char *[]){"r1"}, 1, "p1");
    sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2, 2}, 2);
    sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){2, 2}, 2);
    node(w, "Conv", "c2", (const char *[]){"p1", "w2", "b2"}, 3, "c2");
    node(w, "Relu", "r2", (const char *[]){"c2"}, 1, "r2");
    node(w, "AveragePool", "p2", (const char *[]){"r2"}, 1, "p2");
    sm_onnx_writer_attr_ints(w, "kernel_shape", (int64_t[]){2, 2}, 2);
    sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){2, 2}, 2);
    node(w, "Flatten", "f", (const char *[]){"p2"}, 1, "f");
    node(w, "Gemm", "g1", (const char *[]){"f", "w3", "b3"}, 3, "g1");
    sm_onnx_writer_attr_int(w, "transB", 1);
    node(w, "Relu", "r3", (const char *[]){"g1"}, 1, "r3");
    node(w, "Gemm", "g2", (const char *[]){"r3", "w4", "b4"}, 3, "logits");
    sm_onnx_writer_attr_int(w, "transB", 1);
    return finish(w, "logits", 5);
}

/* Conv+BatchNorm (folded at load) Relu, a residual block (Conv Relu, Add
 * with the skip), Relu, a standalone BatchNorm, GlobalAveragePool, Flatten,
 * MatMul and Add of a (zero) bias: [N,2,8,8] -> [N,5]. Every shift zero. */
static sm_model *residual(void)
{
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){-1, 2, 8, 8});
    init(w, "w1", 4, (int64_t[]){4, 2, 3, 3}, 21, 0.5);
    init(w, "s1", 1, (int64_t[]){4}, 22, 1.0);
    init(w, "z4", 1, (int64_t[]){4}, 0, 0);
    init(w, "v1", 1, (int64_t[]){4}, 0, -1.5);
    init(w, "w2", 4, (int64_t[]){4, 4, 3, 3}, 23, 0.4);
    init(w, "s2", 1, (int64_t[]){4}, 24, 1.0);
    init(w, "w3", 2, (int64_t[]){4, 5}, 25, 0.5);
    init(w, "b3", 1, (int64_t[]){5}, 0, 0);
    const int64_t pads[4] = {1, 1, 1, 1};
    node(w, "Conv", "c1", (const char *[]){"x", "w1"}, 2, "c1");
    sm_onnx_writer_attr_ints(w, "pads", pads, 4);
    node(w, "BatchNormalization", "bn1",
         (const char *[]){"c1", "s1", "z4", "z4", "v1"}, 5, "bn1");
    node(w, "Relu", "r1", (const char *[]){"bn1"}, 1, "h");
    node(w, "Conv", "c2", (const char *[]){"h", "w2", "z4"}, 3, "c2");
    sm_onnx_writer_attr_ints(w, "pads", pads, 4);
    node(w, "Relu", "r2", (const char *[]){"c2"}, 1, "g");
    node(w, "Add", "add", (const char *[]){"h", "g"}, 2, "sum");
    node(w, "Relu", "r3", (const char *[]){"sum"}, 1, "r3");
    node(w, "BatchNormalization", "bn2",
         (const char *[]){"r3", "s2", "z4", "z4", "v1"}, 5, "bn2");
    node(w, "GlobalAveragePool", "gap", (const char *[]){"bn2"}, 1, "gap");
    node(w, "Flatten", "f", (const char *[]){"gap"}, 1, "f");
    node(w, "MatMul", "mm", (const char *[]){"f", "w3"}, 2, "mm");
    node(w, "Add", "bias", (const char *[]){"mm", "b3"}, 2, "logits");
    return finish(w, "logits", 5);
}

static sm_tensor *randn(int64_t n, int64_t c, int64_t h, int64_t wd,
                        uint64_t key)
{
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){n, c, h, wd});
    for (int64_t i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] = (float)sm_rng_normal(key, (uint64_t)i);
    return x;
}

/* Runs elrp with a composite and epsilon ("" : default) on every image of
 * x, its predicted classes as targets (into target), maps into maps
 * (N x H x W). 0, or -1 with the message in err. */
static int run_elrp(sm_model *m, const sm_tensor *x, const char *composite,
                    const char *eps, int *target, float *maps,
                    sm_explain_out *out, sm_err *err)
{
    int64_t n = x->shape[0], hw = x->shape[2] * x->shape[3];
    const sm_tensor *y = sm_model_forward(m, x->data, n, err);
    cr_assert_not_null(y, "%s", err->msg);
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < y->shape[1]; k++)
            if (y->data[i * y->shape[1] + k] > y->data[i * y->shape[1] + best])
                best = k;
        target[i] = best;
        out[i].map = maps + i * hw;
    }
    sm_explainer *e = sm_explainer_new("elrp", err);
    cr_assert_not_null(e, "%s", err->msg);
    if (*composite)
        cr_assert_eq(sm_explainer_set(e, "composite", composite, err), 0, "%s", err->msg);
    if (*eps)
        cr_assert_eq(sm_explainer_set(e, "epsilon", eps, err), 0, "%s", err->msg);
    sm_explain_batch b = {x, target, NULL};
    sm_explain_ctx ctx = {m, 0, 0, 0, 1, NULL, 0, NULL};
    sm_explain_out_free(out, x->shape[0]); /* from an earlier run */
    int rc = sm_explainer_run(e, &ctx, &b, out, err);
    sm_explainer_destroy(&e);
    return rc;
}

/* A number from the JSON extras: the value after "key": . */
static double extra(const char *json, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *p = strstr(json, k);
    cr_assert_not_null(p, "no %s in %s", key, json);
    return strtod(p + strlen(k), NULL);
}

/* Sum of each map against the logit: conservation, and the extras that
 * record it. */
static void check_conservation(sm_model *m, const sm_tensor *x,
                               const char *composite)
{
    int64_t n = x->shape[0], hw = x->shape[2] * x->shape[3];
    int *target = malloc(sizeof(int) * (size_t)n);
    float *maps = malloc(sizeof(float) * (size_t)(n * hw));
    sm_explain_out *out = calloc((size_t)n, sizeof *out);
    sm_err err = {0};
    cr_assert_eq(run_elrp(m, x, composite, "", target, maps, out, &err), 0,
                 "%s: %s", composite, err.msg);
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t q = 0; q < hw; q++)
            s += maps[i * hw + q];
        double f = out[i].score;
        cr_assert(fabs(s - f) <= 1e-4 * fabs(f), "%s image %lld: sum R %.8g, "
                  "logit %.8g", composite, (long long)i, s, f);
        cr_assert(fabs(extra(sm_record_json(&out[i].record), "relevance_sum") - s) <= 1e-5 * fabs(f));
        cr_assert(fabs(extra(sm_record_json(&out[i].record), "logit") - f) <= 1e-6 * fabs(f));
        cr_assert(fabs(extra(sm_record_json(&out[i].record), "conservation") - 1) <= 1e-4,
                  "%s", sm_record_json(&out[i].record));
        cr_assert_eq(out[i].evals, 1);
    }
    free(target);
    free(maps);
    sm_explain_out_free(out, n);
    free(out);
}

/* tests/fixtures/lenet.onnx with every bias (rank-1 weight) zeroed. */
static sm_model *lenet_zero_bias(void)
{
    sm_err err = {0};
    sm_model *m = sm_model_load_file("tests/fixtures/lenet.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    sm_model_set_trainable(m, 1);
    int zeroed = 0;
    for (int i = 0; i < sm_model_n_params(m); i++) {
        sm_tensor *p = sm_model_param(m, i);
        if (p->ndim == 1) {
            memset(p->data, 0, (size_t)sm_tensor_numel(p) * sizeof(float));
            zeroed++;
        }
    }
    cr_assert_eq(zeroed, 5);
    sm_model_set_trainable(m, 0);
    return m;
}

Test(elrp, conservation_with_zero_biases)
{
    const char *composites[] = {"epsilon", "zplus", "epsilon_plus_flat"};
    sm_model *nets[3] = {lenet_like(), residual(), lenet_zero_bias()};
    sm_tensor *xs[3] = {randn(6, 2, 12, 12, 31), randn(6, 2, 8, 8, 32),
                        randn(4, 1, 28, 28, 33)};
    cr_assert_eq(sm_model_n_nodes(nets[1]), 11, "the first BatchNorm folds");
    for (int k = 0; k < 3; k++) {
        for (int c = 0; c < 3; c++)
            check_conservation(nets[k], xs[k], composites[c]);
        sm_tensor_destroy(&xs[k]);
        sm_model_destroy(&nets[k]);
    }
}

/* The same maps whether the batch runs in one lane or is split over
 * threads. */
Test(elrp, threads_give_the_same_maps)
{
    sm_model *m = residual();
    sm_tensor *x = randn(8, 2, 8, 8, 41);
    int target[8];
    float a[8 * 64], b[8 * 64];
    sm_explain_out out[8] = {0};
    sm_err err = {0};
    const char *composites[] = {"epsilon", "alpha2beta1", "epsilon_plus_flat"};
    for (int c = 0; c < 3; c++) {
        sm_model_set_threads(m, 1);
        cr_assert_eq(run_elrp(m, x, composites[c], "", target, a, out, &err), 0, "%s", err.msg);
        sm_model_set_threads(m, 3);
        cr_assert_eq(run_elrp(m, x, composites[c], "", target, b, out, &err), 0, "%s", err.msg);
        for (int q = 0; q < 8 * 64; q++)
            cr_assert(fabsf(a[q] - b[q]) <= 1e-6f * (1 + fabsf(a[q])),
                      "%s %d: %g vs %g", composites[c], q, a[q], b[q]);
    }
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 8);
}

/* Worst |a - b| over the maps relative to the largest |b|. */
static double rel_diff(const float *a, const float *b, int64_t n)
{
    double worst = 0, mx = 0;
    for (int64_t q = 0; q < n; q++) {
        worst = fmax(worst, fabs((double)a[q] - b[q]));
        mx = fmax(mx, fabs((double)b[q]));
    }
    return worst / mx;
}

/* On a ReLU net R_z / z is the gradient with respect to z, so the epsilon
 * rule tends to gradient x input (with or without biases). */
Test(elrp, epsilon_to_zero_is_gradient_times_input)
{
    sm_err err = {0};
    for (int biases = 0; biases < 2; biases++) {
        sm_model *m = biases ? sm_model_load_file("tests/fixtures/lenet.onnx", &err)
                             : lenet_zero_bias();
        cr_assert_not_null(m, "%s", err.msg);
        sm_tensor *x = randn(4, 1, 28, 28, 51);
        int target[4];
        float maps[4 * 784], gx[4 * 784];
        sm_explain_out out[4] = {0};
        cr_assert_eq(run_elrp(m, x, "", "0", target, maps, out, &err), 0, "%s", err.msg);
        sm_explain_ctx ctx = {m, 0, 0, 0, 1, NULL, 0, NULL};
        cr_assert_eq(sm_explain_gradient(&ctx, x, target, gx, NULL, &err), 0, "%s", err.msg);
        for (int q = 0; q < 4 * 784; q++)
            gx[q] *= x->data[q];
        cr_assert(rel_diff(maps, gx, 4 * 784) < 1e-5, "biases %d: %g", biases,
                  rel_diff(maps, gx, 4 * 784));
        /* and the difference shrinks with epsilon */
        double prev = INFINITY;
        const char *eps[] = {"1e-1", "1e-3", "1e-5"};
        for (int k = 0; k < 3; k++) {
            cr_assert_eq(run_elrp(m, x, "", eps[k], target, maps, out, &err), 0, "%s", err.msg);
            double d = rel_diff(maps, gx, 4 * 784);
            cr_assert(d < prev, "epsilon %s: %g after %g", eps[k], d, prev);
            prev = d;
        }
        sm_tensor_destroy(&x);
        sm_model_destroy(&m);
        sm_explain_out_free(out, 4);
    }
}

/* x = [1, -1, 2]; h = relu(W1 x + b1) = [0.5, 3.75] with W1 = [[1, 2, .5],
 * [1, -1, 1]], b1 = [.5, -.25]; y = W2 h + b2 = [-6.9, 4] with W2 = [[1, -2],
 * [.5, 1]], b2 = [.1, 0]. Target class 1, R_y = [0, 4].
 *   epsilon: R_h = h * W2[1] = [.25, 3.75]; R_x = x * (W1[0] .25/.5 +
 *            W1[1] 3.75/3.75) = [1.5, 0, 2.5].
 *   z+: R_h = [.25, 3.75]; neuron 0: positive contributions [1, 0, 1] of
 *       2 -> [.125, 0, .125]; neuron 1: x+ w+ + x- w- = [1, 1, 2] of 4 ->
 *       [.9375, .9375, 1.875]; R_x = [1.0625, .9375, 2].
 *   alpha2beta1: R_h = 2 [.25, 3.75] (no negative part) = [.5, 7.5];
 *       neuron 0: z+ = 1 + 1 + b+ .5 = 2.5, z- = -2 (x-_1 w+_01), so
 *       2 [1, 0, 1] .5/2.5 - [0, -2, 0] .5/-2 = [.4, -.5, .4]; neuron 1:
 *       2 [1, 1, 2] 7.5/4 = [3.75, 3.75, 7.5] (z- = b- only);
 *       R_x = [4.15, 3.25, 7.9].
 *   epsilon_plus_flat: epsilon on the dense output layer, flat on the
 *       first: (.25 + 3.75) / 3 each. */
Test(elrp, dense_rules_by_hand)
{
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){-1, 1, 1, 3});
    const float v1[] = {1, 2, .5f, 1, -1, 1}, c1[] = {.5f, -.25f};
    const float v2[] = {1, -2, .5f, 1}, c2[] = {.1f, 0};
    sm_tensor t1 = {.ndim = 2, .shape = {2, 3}, .data = (float *)v1};
    sm_tensor t2 = {.ndim = 1, .shape = {2}, .data = (float *)c1};
    sm_tensor t3 = {.ndim = 2, .shape = {2, 2}, .data = (float *)v2};
    sm_tensor t4 = {.ndim = 1, .shape = {2}, .data = (float *)c2};
    sm_onnx_writer_initializer(w, "w1", &t1);
    sm_onnx_writer_initializer(w, "b1", &t2);
    sm_onnx_writer_initializer(w, "w2", &t3);
    sm_onnx_writer_initializer(w, "b2", &t4);
    node(w, "Flatten", "f", (const char *[]){"x"}, 1, "f");
    node(w, "Gemm", "g1", (const char *[]){"f", "w1", "b1"}, 3, "g1");
    sm_onnx_writer_attr_int(w, "transB", 1);
    node(w, "Relu", "r", (const char *[]){"g1"}, 1, "h");
    node(w, "Gemm", "g2", (const char *[]){"h", "w2", "b2"}, 3, "y");
    sm_onnx_writer_attr_int(w, "transB", 1);
    sm_model *m = finish(w, "y", 2);
    float xv[] = {1, -1, 2};
    sm_tensor x = {.ndim = 4, .shape = {1, 1, 1, 3}, .data = xv};
    const char *composites[] = {"epsilon", "zplus", "alpha2beta1",
                                "epsilon_plus_flat"};
    const double want[4][3] = {{1.5, 0, 2.5},
                               {1.0625, .9375, 2},
                               {4.15, 3.25, 7.9},
                               {4 / 3.0, 4 / 3.0, 4 / 3.0}};
    for (int c = 0; c < 4; c++) {
        int target[1];
        float map[3];
        sm_explain_out out[1] = {0};
        sm_err err = {0};
        cr_assert_eq(run_elrp(m, &x, composites[c], "", target, map, out, &err), 0, "%s", err.msg);
        cr_assert_eq(target[0], 1);
        cr_assert_float_eq(out[0].score, 4.0, 1e-6);
        for (int q = 0; q < 3; q++)
            cr_assert(fabs(map[q] - want[c][q]) < 1e-5, "%s pixel %d: %.7g, "
                      "want %.7g", composites[c], q, map[q], want[c][q]);
        sm_explain_out_free(out, 1);
    }
    sm_model_destroy(&m);
}

/* elrp maps of `model` on the 4 digits of fixture folder dir
 * (make_elrp_fixtures.py) against torch float64, for every composite: the
 * worst |delta| / max |torch| of each image's map under tol. */
static void check_fixtures(const char *model, const char *dir, double tol)
{
    sm_err err = {0};
    char path[128];
    sm_model *m = sm_model_load_file(model, &err);
    cr_assert_not_null(m, "%s", err.msg);
    snprintf(path, sizeof path, "%sinput.npy", dir);
    sm_tensor *x = sm_npy_read(path, &err);
    snprintf(path, sizeof path, "%stargets.npy", dir);
    sm_tensor *t = x ? sm_npy_read(path, &err) : NULL;
    cr_assert(x && t, "%s", err.msg);
    cr_assert_eq(x->shape[0], 4);
    const char *composites[] = {"epsilon", "epsilon_plus_flat", "alpha2beta1",
                                "zplus"};
    for (int c = 0; c < 4; c++) {
        snprintf(path, sizeof path, "%s%s.npy", dir, composites[c]);
        sm_tensor *want = sm_npy_read(path, &err);
        cr_assert_not_null(want, "%s", err.msg);
        int target[4];
        float maps[4 * 784];
        sm_explain_out out[4] = {0};
        cr_assert_eq(run_elrp(m, x, composites[c], "", target, maps, out, &err), 0, "%s", err.msg);
        double worst = 0;
        for (int i = 0; i < 4; i++) {
            cr_assert_eq(target[i], (int)t->data[i]);
            double d = rel_diff(maps + i * 784, want->data + i * 784, 784);
            cr_assert(d < tol, "%s %s image %d: %g", model, composites[c], i, d);
            worst = fmax(worst, d);
        }
        cr_log_info("%s elrp %s: max |salmap - torch| / max |torch| = %.3g", model,
                    composites[c], worst);
        sm_tensor_destroy(&want);
        sm_explain_out_free(out, 4);
    }
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&t);
    sm_model_destroy(&m);
}

/* Maps of the trained MNIST LeNet against torch float64, layer by layer
 * (make_elrp_fixtures.py), for every composite. */
Test(elrp, maps_match_torch_fixtures)
{
    check_fixtures("tests/fixtures/mnist_lenet_trained.onnx", FIX, 1e-4);
}

/* The same on the shipped MNIST model, arch cnn (make_elrp_fixtures.py
 * --model cnn), and its logits. */
Test(elrp, maps_match_torch_fixtures_on_the_shipped_model)
{
    check_fixtures("models/mnist_cnn.onnx", CNN_FIX, 1e-4);
    sm_err err = {0};
    sm_model *m = sm_model_load_file("models/mnist_cnn.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    sm_tensor *x = sm_npy_read(CNN_FIX "input.npy", &err);
    sm_tensor *want = x ? sm_npy_read(CNN_FIX "logits.npy", &err) : NULL;
    cr_assert(x && want, "%s", err.msg);
    const sm_tensor *y = sm_model_forward(m, x->data, x->shape[0], &err);
    cr_assert_not_null(y, "%s", err.msg);
    cr_assert_eq(sm_tensor_numel(y), sm_tensor_numel(want));
    double d = rel_diff(y->data, want->data, sm_tensor_numel(want));
    cr_assert(d < 1e-5, "logits differ by %g of the largest", d);
    sm_tensor_destroy(&want);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

Test(elrp, refusals)
{
    /* Softmax at the output: LRP starts from the logits */
    sm_onnx_writer *w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){-1, 1, 2, 2});
    init(w, "w", 2, (int64_t[]){3, 4}, 61, 1.0);
    node(w, "Flatten", "f", (const char *[]){"x"}, 1, "f");
    node(w, "Gemm", "fc", (const char *[]){"f", "w"}, 2, "z");
    sm_onnx_writer_attr_int(w, "transB", 1);
    node(w, "Softmax", "sm", (const char *[]){"z"}, 1, "p");
    sm_model *m = finish(w, "p", 3);
    sm_tensor *x = randn(2, 1, 2, 2, 62);
    int target[2];
    float maps[8];
    sm_explain_out out[2] = {0};
    sm_err err = {0};
    cr_assert_eq(run_elrp(m, x, "", "", target, maps, out, &err), -1);
    cr_assert(strstr(err.msg, "elrp: ") && strstr(err.msg, "node 'sm': Softmax "
              "on the relevance path"), "%s", err.msg);
    sm_model_destroy(&m);
    /* a product of two activations */
    w = sm_onnx_writer_new(13);
    sm_onnx_writer_input(w, "x", 4, (int64_t[]){-1, 1, 2, 2});
    init(w, "w", 2, (int64_t[]){3, 4}, 61, 1.0);
    node(w, "Flatten", "f", (const char *[]){"x"}, 1, "f");
    node(w, "Gemm", "fc", (const char *[]){"f", "w"}, 2, "z");
    sm_onnx_writer_attr_int(w, "transB", 1);
    node(w, "Mul", "sq", (const char *[]){"z", "z"}, 2, "y");
    m = finish(w, "y", 3);
    cr_assert_eq(run_elrp(m, x, "", "", target, maps, out, &err), -1);
    cr_assert(strstr(err.msg, "node 'sq': Mul of two activations"), "%s", err.msg);
    sm_model_destroy(&m);
    sm_tensor_destroy(&x);
    /* an unknown composite, a negative epsilon */
    sm_explainer *e = sm_explainer_new("elrp", &err);
    cr_assert_not_null(e, "%s", err.msg);
    cr_assert_eq(sm_explainer_set(e, "composite", "lrp_z", &err), -1);
    cr_assert(strstr(err.msg, "elrp.composite: 'lrp_z' is not one of: epsilon, "
              "epsilon_plus_flat, alpha2beta1, zplus"), "%s", err.msg);
    cr_assert_eq(sm_explainer_set(e, "epsilon", "-1", &err), -1);
    cr_assert(strstr(err.msg, "elrp.epsilon: '-1'"), "%s", err.msg);
    cr_assert_str_eq(sm_explainer_params_json(e),
                     "{\"epsilon\": 1e-06, \"composite\": \"epsilon\"}");
    sm_explainer_destroy(&e);
    sm_explain_out_free(out, 2);
}
