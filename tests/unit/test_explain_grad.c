/* The gradient family beyond SAL: grad, intg, smoothgrad, gradcam. Hand-
 * checked on linear models, Gauss-Legendre against known values, IG
 * completeness on the trained MNIST LeNet and on the shipped MNIST model
 * (models/mnist_cnn.onnx), quadrature convergence, SmoothGrad's
 * independence from batching, and every map against torch's on both models
 * (tests/fixtures/make_saliency_fixtures.py [--model cnn]). */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/image.h"
#include "explain/explainer.h"
#include "explain/gradient.h"
#include "explain/quadrature.h"
#include "explain/resample.h"
#include "io/npy.h"
#include "onnx/writer.h"
#include "util/rng.h"
#include "tmodel.h"

#define SAL_FIX "tests/fixtures/saliency/"
#define MNIST_MODEL "tests/fixtures/mnist_lenet_trained.onnx"
/* the shipped model (salmap train, arch cnn) and its torch fixtures */
#define SHIPPED_MODEL "models/mnist_cnn.onnx"
#define SAL_CNN_FIX "tests/fixtures/saliency_cnn/"
#define ELRP_CNN_INPUT "tests/fixtures/elrp_cnn/input.npy"

static void start_vips(void)
{
    sm_err err = {0};
    cr_assert_eq(sm_vips_init("salmap-tests", &err), 0, "%s", err.msg);
}

TestSuite(explain_grad, .init = start_vips);

/* x [N, 2, 3, 3] -> (conv: 1x1 Conv 2->2 into "feat") -> Flatten -> Gemm
 * into 4 logits. Weights from the RNG; *gemm_w / *conv_w receive copies. */
static sm_model *small_model(int conv, sm_tensor **gemm_w, sm_tensor **conv_w)
{
    sm_tensor *w = sm_tensor_new(2, (int64_t[]){4, 18});
    sm_tensor *b = sm_tensor_new(1, (int64_t[]){4});
    sm_tensor *cw = sm_tensor_new(4, (int64_t[]){2, 2, 1, 1});
    sm_tensor *cb = sm_tensor_new(1, (int64_t[]){2});
    for (int i = 0; i < 72; i++)
        w->data[i] = (float)sm_rng_normal(7, (uint64_t)i);
    for (int i = 0; i < 4; i++) {
        b->data[i] = 0.1f * (float)i;
        cw->data[i] = (float)sm_rng_normal(8, (uint64_t)i);
    }
    cb->data[0] = 0.25f;
    cb->data[1] = -0.5f;
    sm_onnx_writer *wr = sm_onnx_writer_new(13);
    sm_onnx_writer_input(wr, "x", 4, (int64_t[]){-1, 2, 3, 3});
    sm_onnx_writer_initializer(wr, "w", w);
    sm_onnx_writer_initializer(wr, "b", b);
    if (conv) {
        sm_onnx_writer_initializer(wr, "cw", cw);
        sm_onnx_writer_initializer(wr, "cb", cb);
        sm_onnx_writer_node(wr, "Conv", "conv", (const char *[]){"x", "cw", "cb"},
                            3, (const char *[]){"feat"}, 1);
    }
    sm_onnx_writer_node(wr, "Flatten", "f", (const char *[]){conv ? "feat" : "x"},
                        1, (const char *[]){"flat"}, 1);
    sm_onnx_writer_node(wr, "Gemm", "fc", (const char *[]){"flat", "w", "b"}, 3,
                        (const char *[]){"logits"}, 1);
    sm_onnx_writer_attr_int(wr, "transB", 1);
    sm_onnx_writer_output(wr, "logits", 2, (int64_t[]){-1, 4});
    size_t len;
    sm_err err = {0};
    unsigned char *buf = sm_onnx_writer_serialize(wr, &len, &err);
    cr_assert_not_null(buf, "%s", err.msg);
    sm_model *m = sm_model_load_buffer(buf, len, "small.onnx", &err);
    cr_assert_not_null(m, "%s", err.msg);
    free(buf);
    sm_onnx_writer_destroy(&wr);
    sm_tensor_destroy(&b);
    sm_tensor_destroy(&cb);
    *gemm_w = w;
    if (conv_w)
        *conv_w = cw;
    else
        sm_tensor_destroy(&cw);
    return m;
}

static sm_tensor *images(int64_t n, uint64_t key)
{
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){n, 2, 3, 3});
    for (int64_t i = 0; i < sm_tensor_numel(x); i++)
        x->data[i] = (float)sm_rng_uniform(key, (uint64_t)i);
    return x;
}

static const char *const ids8[] = {"a", "b", "c", "d", "e", "f", "g", "h"};

/* Runs method `name` with "key=value" settings (NULL-ended) on x; maps is
 * N x H x W. Returns sm_explainer_run's result, the message in err. */
static int explain(const char *name, const char *const *set, sm_model *m,
                   const sm_tensor *x, const int *target, const char *const *ids,
                   float *maps, sm_explain_out *out, sm_err *err)
{
    sm_explain_ctx ctx = {m, 0, 0, 0, 42, NULL, 0, NULL};
    return tmodel_explain(name, set, &ctx, x, target,
                          ids ? ids : (const char *const *)ids8, maps, out, err);
}

/* The number after "key": in a JSON object. */
static double extra(const char *json, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *p = strstr(json, k);
    cr_assert_not_null(p, "no %s in %s", key, json);
    return strtod(p + strlen(k), NULL);
}

/* max |a - b| over n values, and max |b| into *scale. */
static double max_diff(const float *a, const float *b, int64_t n, double *scale)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    if (scale)
        *scale = s;
    return d;
}

Test(explain_grad, grad_of_a_linear_model_is_input_times_weight_row)
{
    sm_tensor *w;
    sm_model *m = small_model(0, &w, NULL);
    sm_tensor *x = images(3, 1);
    int target[3] = {0, 3, 2};
    float maps[27];
    sm_explain_out out[3] = {0};
    sm_err err = {0};
    cr_assert_eq(explain("grad", NULL, m, x, target, NULL, maps, out, &err), 0,
                 "%s", err.msg);
    for (int i = 0; i < 3; i++) {
        const float *row = w->data + target[i] * 18, *xi = x->data + i * 18;
        cr_assert_eq(out[i].evals, 1);
        for (int q = 0; q < 9; q++)
            cr_assert_float_eq(maps[i * 9 + q],
                               xi[q] * row[q] + xi[9 + q] * row[9 + q], 1e-6,
                               "image %d pixel %d", i, q);
    }
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&w);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 3);
}

Test(explain_grad, intg_of_a_linear_model_is_grad_times_input)
{
    sm_tensor *w;
    sm_model *m = small_model(0, &w, NULL);
    sm_tensor *x = images(3, 2);
    int target[3] = {1, 0, 3};
    float want[27], maps[27];
    sm_explain_out out[3] = {0};
    sm_err err = {0};
    cr_assert_eq(explain("grad", NULL, m, x, target, NULL, want, out, &err), 0);
    const char *methods[] = {"gausslegendre", "riemann_left", "riemann_right",
                             "riemann_middle", "riemann_trapezoid"};
    for (int k = 0; k < 5; k++) {
        char set[64];
        snprintf(set, sizeof set, "method=%s", methods[k]);
        const char *s[] = {set, "steps=7", "internal_batch=5", NULL};
        cr_assert_eq(explain("intg", s, m, x, target, NULL, maps, out, &err), 0,
                     "%s", err.msg);
        cr_assert(max_diff(maps, want, 27, NULL) < 1e-5, "%s", methods[k]);
        for (int i = 0; i < 3; i++) {
            cr_assert(fabs(extra(sm_record_json(&out[i].record), "delta")) < 1e-5, "%s: %s",
                      methods[k], sm_record_json(&out[i].record));
            cr_assert_float_eq(extra(sm_record_json(&out[i].record), "f_baseline"),
                               0.1 * target[i], 1e-6);
            cr_assert_eq(out[i].evals, 9);
        }
    }
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&w);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 3);
}

Test(explain_grad, gauss_legendre_nodes_and_weights)
{
    /* Abramowitz & Stegun 25.4.29, exact forms */
    double s65 = sqrt(6.0 / 5), s30 = sqrt(30.0), s107 = sqrt(10.0 / 7),
           s70 = sqrt(70.0);
    const double want[5][5][2] = {
        {{0, 2}},
        {{-1 / sqrt(3.0), 1}, {1 / sqrt(3.0), 1}},
        {{-sqrt(0.6), 5.0 / 9}, {0, 8.0 / 9}, {sqrt(0.6), 5.0 / 9}},
        {{-sqrt(3.0 / 7 + 2.0 / 7 * s65), (18 - s30) / 36},
         {-sqrt(3.0 / 7 - 2.0 / 7 * s65), (18 + s30) / 36},
         {sqrt(3.0 / 7 - 2.0 / 7 * s65), (18 + s30) / 36},
         {sqrt(3.0 / 7 + 2.0 / 7 * s65), (18 - s30) / 36}},
        {{-sqrt(5 + 2 * s107) / 3, (322 - 13 * s70) / 900},
         {-sqrt(5 - 2 * s107) / 3, (322 + 13 * s70) / 900},
         {0, 128.0 / 225},
         {sqrt(5 - 2 * s107) / 3, (322 + 13 * s70) / 900},
         {sqrt(5 + 2 * s107) / 3, (322 - 13 * s70) / 900}},
    };
    double t[64], wt[64];
    cr_assert_eq(sm_gauss_legendre(0, t, wt), -1);
    for (int n = 1; n <= 5; n++) {
        cr_assert_eq(sm_gauss_legendre(n, t, wt), 0);
        for (int k = 0; k < n; k++) {
            cr_assert(fabs(t[k] - want[n - 1][k][0]) < 1e-14, "n %d node %d", n, k);
            cr_assert(fabs(wt[k] - want[n - 1][k][1]) < 1e-14, "n %d weight %d", n, k);
        }
    }
    /* exact for every degree up to 2n - 1, on [-1, 1] and mapped to [0, 1]
     * as intg uses them; also for n = 50 */
    for (int n = 1; n <= 50; n += (n < 5 ? 1 : 45)) {
        sm_gauss_legendre(n, t, wt);
        for (int d = 0; d <= 2 * n - 1; d++) {
            double s = 0, s01 = 0;
            for (int k = 0; k < n; k++) {
                s += wt[k] * pow(t[k], d);
                s01 += wt[k] / 2 * pow((1 + t[k]) / 2, d);
            }
            cr_assert(fabs(s - (d % 2 ? 0 : 2.0 / (d + 1))) < 1e-13, "n %d x^%d", n, d);
            cr_assert(fabs(s01 - 1.0 / (d + 1)) < 1e-13, "n %d [0,1] x^%d", n, d);
        }
    }
}

/* Digits for the MNIST model: 8 spread over data/mnist/test when present,
 * else the 4 of the saliency fixtures. */
static sm_tensor *mnist_digits(void)
{
    sm_err err = {0};
    struct stat st;
    if (stat("data/mnist/test", &st) != 0) {
        sm_tensor *x = sm_npy_read(SAL_FIX "digits.npy", &err);
        cr_assert_not_null(x, "%s", err.msg);
        return x;
    }
    sm_dataset *ds = sm_dataset_open("data/mnist/test", &err);
    cr_assert_not_null(ds, "%s", err.msg);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 28, 28); /* configs/mnist.yaml: pixel / 255 */
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){8, 1, 28, 28});
    size_t count = sm_dataset_count(ds);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(sm_dataset_load(ds, (size_t)i * count / 8, &pp,
                                     x->data + i * 784, &err), 0, "%s", err.msg);
    sm_dataset_destroy(&ds);
    return x;
}

static sm_model *load_model(const char *path)
{
    sm_err err = {0};
    sm_model *m = sm_model_load_file(path, &err);
    cr_assert_not_null(m, "%s: %s", path, err.msg);
    return m;
}

static sm_model *mnist_model(void) { return load_model(MNIST_MODEL); }

/* The predicted classes of x. */
static void predict(sm_model *m, const sm_tensor *x, int *target)
{
    sm_err err = {0};
    const sm_tensor *y = sm_model_forward(m, x->data, x->shape[0], &err);
    cr_assert_not_null(y, "%s", err.msg);
    for (int64_t i = 0; i < x->shape[0]; i++) {
        int best = 0;
        for (int k = 1; k < y->shape[1]; k++)
            best = y->data[i * y->shape[1] + k] > y->data[i * y->shape[1] + best] ? k : best;
        target[i] = best;
    }
}

/* intg with its defaults (50 Gauss-Legendre steps, zero baseline) on the
 * (at most 16) digits x, predicted classes as targets: |delta| <= 1% of
 * |f(x) - f(b)| for each. Returns the worst |delta| / |f(x) - f(b)|. */
static double check_completeness(sm_model *m, const sm_tensor *x)
{
    int64_t n = x->shape[0];
    cr_assert(n >= 1 && n <= 16);
    int target[16];
    predict(m, x, target);
    float maps[16 * 784];
    sm_explain_out out[16] = {0};
    sm_err err = {0};
    cr_assert_eq(explain("intg", NULL, m, x, target, NULL, maps, out, &err), 0,
                 "%s", err.msg);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double delta = extra(sm_record_json(&out[i].record), "delta");
        double fb = extra(sm_record_json(&out[i].record), "f_baseline");
        double gap = out[i].score - fb, sum = 0;
        for (int q = 0; q < 784; q++)
            sum += maps[i * 784 + q];
        cr_assert(fabs(delta) <= 0.01 * fabs(gap), "image %lld: delta %g, f(x) - f(b) %g",
                  (long long)i, delta, gap);
        cr_assert(fabs(sum - extra(sm_record_json(&out[i].record), "sum_attr")) < 1e-3 * fabs(gap) + 1e-4);
        cr_assert_eq(out[i].evals, 52);
        worst = fmax(worst, fabs(delta) / fabs(gap));
    }
    sm_explain_out_free(out, 16);
    return worst;
}

Test(explain_grad, intg_completeness_on_the_trained_lenet)
{
    sm_model *m = mnist_model();
    sm_tensor *x = mnist_digits();
    check_completeness(m, x);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}

/* The rows of a and b (N x 1 x 28 x 28 each) in one tensor. */
static sm_tensor *concat_digits(const sm_tensor *a, const sm_tensor *b)
{
    cr_assert(a->ndim == 4 && b->ndim == 4 && a->shape[1] * a->shape[2] * a->shape[3] == 784 &&
              b->shape[1] * b->shape[2] * b->shape[3] == 784);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){a->shape[0] + b->shape[0], 1, 28, 28});
    cr_assert_not_null(x);
    memcpy(x->data, a->data, sizeof(float) * (size_t)sm_tensor_numel(a));
    memcpy(x->data + sm_tensor_numel(a), b->data, sizeof(float) * (size_t)sm_tensor_numel(b));
    return x;
}

/* intg's completeness requirement (|delta| within 1% of f(x) - f(b)) with
 * 50 Gauss-Legendre steps on the shipped MNIST model. Always on the 8 real
 * test digits saved with its fixtures (saliency_cnn/digits.npy: classes 1,
 * 2, 4, 5; elrp_cnn/input.npy: 6, 7, 8, 9), and on 8 more spread over
 * data/mnist/test when it is present. */
Test(explain_grad, intg_completeness_on_the_shipped_model)
{
    sm_model *m = load_model(SHIPPED_MODEL);
    sm_err err = {0};
    sm_tensor *a = sm_npy_read(SAL_CNN_FIX "digits.npy", &err);
    cr_assert_not_null(a, "%s", err.msg);
    sm_tensor *b = sm_npy_read(ELRP_CNN_INPUT, &err);
    cr_assert_not_null(b, "%s", err.msg);
    sm_tensor *x = concat_digits(a, b);
    cr_assert_eq(x->shape[0], 8);
    double worst = check_completeness(m, x);
    cr_log_info("shipped model, 8 fixture digits: worst |delta| / |f(x) - f(0)| = %.3g",
                worst);
    struct stat st;
    if (stat("data/mnist/test", &st) == 0) {
        sm_tensor *d = mnist_digits();
        cr_assert_eq(d->shape[0], 8);
        worst = check_completeness(m, d);
        cr_log_info("shipped model, 8 digits of data/mnist/test: worst |delta| / "
                    "|f(x) - f(0)| = %.3g", worst);
        sm_tensor_destroy(&d);
    }
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&b);
    sm_tensor_destroy(&a);
    sm_model_destroy(&m);
}

Test(explain_grad, riemann_rules_converge_to_gauss_legendre)
{
    sm_model *m = mnist_model();
    sm_tensor *all = mnist_digits();
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){1, 1, 28, 28});
    memcpy(x->data, all->data + 784, sizeof(float) * 784);
    int target[1];
    predict(m, x, target);
    float gl[784], map[784];
    sm_explain_out out[1] = {0};
    sm_err err = {0};
    const char *s_gl[] = {"steps=200", NULL};
    cr_assert_eq(explain("intg", s_gl, m, x, target, NULL, gl, out, &err), 0, "%s", err.msg);
    double scale;
    max_diff(gl, gl, 784, &scale);
    const char *methods[] = {"riemann_left", "riemann_right", "riemann_middle",
                             "riemann_trapezoid"};
    for (int k = 0; k < 4; k++) {
        double e[2];
        const char *steps[] = {"steps=8", "steps=300"};
        for (int j = 0; j < 2; j++) {
            char set[64];
            snprintf(set, sizeof set, "method=%s", methods[k]);
            const char *s[] = {set, steps[j], NULL};
            cr_assert_eq(explain("intg", s, m, x, target, NULL, map, out, &err), 0);
            e[j] = max_diff(map, gl, 784, NULL) / scale;
        }
        cr_log_info("intg %s: max error vs GL(200), relative to max|map|: %.3g at 8 steps, "
                    "%.3g at 300", methods[k], e[0], e[1]);
        cr_assert(e[1] < e[0] && e[1] < 0.02, "%s: %g at 8 steps, %g at 300",
                  methods[k], e[0], e[1]);
    }
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&all);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 1);
}

Test(explain_grad, intg_baselines)
{
    sm_tensor *w;
    sm_model *m = small_model(0, &w, NULL);
    sm_tensor *x = images(2, 3);
    /* a constant image is its own blur: no attribution at all */
    for (int q = 0; q < 18; q++)
        x->data[q] = 0.5f;
    int target[2] = {2, 1};
    float maps[18], want[18];
    sm_explain_out out[2] = {0};
    sm_err err = {0};
    const char *blur[] = {"baseline=blur", "sigma=1", NULL};
    cr_assert_eq(explain("intg", blur, m, x, target, NULL, maps, out, &err), 0, "%s", err.msg);
    for (int q = 0; q < 9; q++)
        cr_assert(fabsf(maps[q]) < 1e-6);
    cr_assert_float_eq(extra(sm_record_json(&out[0].record), "f_baseline"), out[0].score, 1e-5);
    cr_assert(fabs(extra(sm_record_json(&out[1].record), "delta")) < 1e-5, "%s", sm_record_json(&out[1].record));
    /* constant c: the linear model's attribution is (x - c) * w */
    const char *cst[] = {"baseline=constant", "baseline_value=0.25", NULL};
    cr_assert_eq(explain("intg", cst, m, x, target, NULL, maps, out, &err), 0, "%s", err.msg);
    for (int i = 0; i < 2; i++)
        for (int q = 0; q < 9; q++) {
            const float *row = w->data + target[i] * 18, *xi = x->data + i * 18;
            want[i * 9 + q] = (xi[q] - 0.25f) * row[q] + (xi[9 + q] - 0.25f) * row[9 + q];
        }
    cr_assert(max_diff(maps, want, 18, NULL) < 1e-5);
    /* the blur itself: a unit impulse spreads into a normalised Gaussian */
    float imp[81] = {0}, bl[81];
    imp[40] = 1;
    cr_assert_eq(sm_explain_blur(imp, 1, 9, 9, 1.0, bl, &err), 0, "%s", err.msg);
    double sum = 0;
    for (int q = 0; q < 81; q++)
        sum += bl[q];
    cr_assert(fabs(sum - 1) < 1e-3, "sum %g", sum);
    cr_assert(fabs(bl[40] - 1 / (2 * M_PI)) < 0.01, "peak %g", bl[40]);
    cr_assert_float_eq(bl[39], bl[41], 1e-7);
    cr_assert_float_eq(bl[31], bl[49], 1e-7);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&w);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 2);
}

Test(explain_grad, smoothgrad_is_deterministic_and_batch_independent)
{
    sm_model *m = mnist_model();
    sm_tensor *all = mnist_digits();
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){3, 1, 28, 28});
    memcpy(x->data, all->data, sizeof(float) * 3 * 784);
    int target[3];
    predict(m, x, target);
    float maps[3 * 784], again[3 * 784], one[784];
    sm_explain_out out[3] = {0};
    sm_err err = {0};
    /* runs of 7 copies, then 3 */
    const char *s7[] = {"samples=10", "internal_batch=7", NULL};
    const char *s1[] = {"samples=10", "internal_batch=7", NULL};
    cr_assert_eq(explain("smoothgrad", s7, m, x, target, NULL, maps, out, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(out[0].evals, 11);
    cr_assert_eq(explain("smoothgrad", s7, m, x, target, NULL, again, out, &err), 0);
    cr_assert_eq(memcmp(maps, again, sizeof maps), 0);
    sm_tensor *xi = sm_tensor_new(4, (int64_t[]){1, 1, 28, 28});
    for (int i = 0; i < 3; i++) {
        memcpy(xi->data, x->data + i * 784, sizeof(float) * 784);
        const char *id[1] = {ids8[i]};
        cr_assert_eq(explain("smoothgrad", s1, m, xi, target + i, id, one, out, &err), 0);
        cr_assert_eq(memcmp(one, maps + i * 784, sizeof one), 0, "image %d", i);
    }
    /* another id, another noise */
    const char *other[1] = {"zz"};
    explain("smoothgrad", s1, m, xi, target + 2, other, one, out, &err);
    cr_assert_neq(memcmp(one, maps + 2 * 784, sizeof one), 0);
    sm_tensor_destroy(&xi);
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&all);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 3);
}

Test(explain_grad, smoothgrad_without_noise_is_sal)
{
    sm_model *m = mnist_model();
    sm_tensor *x = mnist_digits();
    /* jitter breaks the digits' exact ties (background zeros), at which
     * max pooling routes the gradient by any rounding */
    for (int64_t e = 0; e < sm_tensor_numel(x); e++)
        x->data[e] += 0.05f * (float)sm_rng_uniform(9, (uint64_t)e);
    int target[8];
    predict(m, x, target);
    int64_t n = x->shape[0];
    float sal[8 * 784], sg[8 * 784];
    sm_explain_out out[8] = {0};
    sm_err err = {0};
    cr_assert_eq(explain("sal", NULL, m, x, target, NULL, sal, out, &err), 0);
    const char *s[] = {"samples=4", "noise_level=1e-6", NULL};
    cr_assert_eq(explain("smoothgrad", s, m, x, target, NULL, sg, out, &err), 0);
    double scale, d = max_diff(sg, sal, n * 784, &scale);
    cr_assert(d < 1e-3 * scale, "%g of %g", d, scale);
    /* base grad: gradient x (noisy) input */
    float grad[8 * 784];
    cr_assert_eq(explain("grad", NULL, m, x, target, NULL, grad, out, &err), 0);
    const char *sgrad[] = {"samples=4", "noise_level=1e-6", "base=grad", NULL};
    cr_assert_eq(explain("smoothgrad", sgrad, m, x, target, NULL, sg, out, &err), 0);
    d = max_diff(sg, grad, n * 784, &scale);
    cr_assert(d < 1e-3 * scale, "%g of %g", d, scale);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 8);
}

/* A memory-bound model (the MobileNet-shaped fixture: depthwise layers,
 * few FLOPs a byte of activations) runs its gradient methods in runs of a
 * few images, the others in whole batches; either way each image's map
 * has the bits it has alone, on two threads. */
Test(explain_grad, memory_bound_models_run_gradients_in_chunks_alike)
{
    enum { N = 8 };
    sm_model *m = load_model("tests/fixtures/mobilenets.onnx");
    sm_model *r = load_model("tests/fixtures/resnet18s.onnx");
    sm_model_set_threads(m, 2);
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){N, 3, 64, 64});
    for (int64_t e = 0; e < sm_tensor_numel(x); e++)
        x->data[e] = (float)sm_rng_uniform(5, (uint64_t)e);
    sm_explain_ctx ctx = {m, 0, 0, 0, 42, NULL, 0, NULL};
    sm_err err = {0};
    int64_t rows = sm_explain_backward_rows(&ctx, x, &err);
    cr_assert(rows >= 4 && rows < N, "mobilenets: runs of %lld", (long long)rows);
    ctx.model = r;
    cr_assert_eq(sm_explain_backward_rows(&ctx, x, &err), N, "resnet18s: whole");
    int target[N]; /* every image its own class: a mixed-up one shows */
    for (int i = 0; i < N; i++)
        target[i] = i;
    static float maps[N * 4096], one[4096];
    sm_explain_out out[N] = {0};
    sm_tensor *xi = sm_tensor_new(4, (int64_t[]){1, 3, 64, 64});
    /* smoothgrad's copies are also made on the model's two threads */
    const char *const methods[] = {"sal", "gradcam", "intg", "smoothgrad"};
    const char *intg[] = {"steps=5", NULL}, *sg[] = {"samples=3", NULL};
    for (int k = 0; k < 4; k++) {
        const char *const *set = k == 2 ? intg : k == 3 ? sg : NULL;
        cr_assert_eq(explain(methods[k], set, m, x, target, NULL, maps, out, &err), 0,
                     "%s: %s", methods[k], err.msg);
        for (int i = 0; i < N; i++) {
            memcpy(xi->data, x->data + i * 3 * 4096, sizeof(float) * 3 * 4096);
            const char *id[1] = {ids8[i]};
            cr_assert_eq(explain(methods[k], set, m, xi, target + i, id, one, out, &err),
                         0, "%s", err.msg);
            cr_assert_eq(memcmp(one, maps + i * 4096, sizeof one), 0, "%s: image %d",
                         methods[k], i);
        }
    }
    sm_tensor_destroy(&xi);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
    sm_model_destroy(&r);
    sm_explain_out_free(out, N);
}

Test(explain_grad, gradcam_hand_checked)
{
    sm_tensor *w, *cw;
    sm_model *m = small_model(1, &w, &cw);
    sm_tensor *x = images(2, 4);
    int target[2] = {3, 1};
    float maps[18];
    sm_explain_out out[2] = {0};
    sm_err err = {0};
    for (int relu = 0; relu <= 1; relu++) {
        const char *s[] = {relu ? "relu=1" : "relu=0", NULL};
        cr_assert_eq(explain("gradcam", s, m, x, target, NULL, maps, out, &err), 0,
                     "%s", err.msg);
        int negative = 0;
        for (int i = 0; i < 2; i++) {
            const float *xi = x->data + i * 18, *row = w->data + target[i] * 18;
            double alpha[2] = {0, 0};
            for (int k = 0; k < 2; k++)
                for (int q = 0; q < 9; q++)
                    alpha[k] += row[k * 9 + q] / 9.0;
            for (int q = 0; q < 9; q++) {
                double cam = 0;
                for (int k = 0; k < 2; k++) {
                    double feat = cw->data[k * 2] * xi[q] + cw->data[k * 2 + 1] * xi[9 + q] +
                                  (k ? -0.5 : 0.25);
                    cam += alpha[k] * feat;
                }
                negative |= cam < 0;
                if (relu && cam < 0)
                    cam = 0;
                cr_assert_float_eq(maps[i * 9 + q], cam, 1e-5, "relu %d image %d pixel %d",
                                   relu, i, q);
            }
            /* the legend: [min, max] with the ReLU, symmetric without */
            float lo = maps[i * 9], hi = maps[i * 9];
            for (int q = 1; q < 9; q++) {
                lo = fminf(lo, maps[i * 9 + q]);
                hi = fmaxf(hi, maps[i * 9 + q]);
            }
            if (!relu) {
                hi = fmaxf(fabsf(lo), fabsf(hi));
                lo = -hi;
            }
            char want[200];
            snprintf(want, sizeof want, "{\"layer\": \"feat\", \"shape\": [2, 3, 3], "
                     "\"scale\": {\"colormap\": \"%s\", \"min\": %.9g, \"max\": %.9g}}",
                     relu ? "sequential" : "diverging", lo, hi);
            cr_assert_str_eq(sm_record_json(&out[i].record), want);
        }
        cr_assert(negative, "the case should exercise the ReLU");
    }
    /* a named layer: the input itself is a 2 x 3 x 3 feature map too */
    const char *s[] = {"layer=x", NULL};
    cr_assert_eq(explain("gradcam", s, m, x, target, NULL, maps, out, &err), 0, "%s", err.msg);
    cr_assert(!strncmp(sm_record_json(&out[0].record),
                       "{\"layer\": \"x\", \"shape\": [2, 3, 3], \"scale\": ", 44),
              "%s", sm_record_json(&out[0].record));
    sm_tensor_destroy(&x);
    sm_tensor_destroy(&w);
    sm_tensor_destroy(&cw);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 2);
}

Test(explain_grad, upsampling_is_pytorch_bilinear)
{
    /* F.interpolate([[1, 2], [3, 4]], size=4, mode="bilinear",
     * align_corners=False): sources -0.25 (clamped to 0), 0.25, 0.75, 1.25
     * (clamped to the last pixel) along each axis */
    const float src[4] = {1, 2, 3, 4};
    const float want[16] = {1,   1.25, 1.75, 2,   1.5, 1.75, 2.25, 2.5,
                            2.5, 2.75, 3.25, 3.5, 3,   3.25, 3.75, 4};
    float got[16];
    sm_err err = {0};
    cr_assert_eq(sm_explain_upsample(src, 1, 2, 2, got, 4, 4, &err), 0, "%s", err.msg);
    for (int q = 0; q < 16; q++)
        cr_assert_float_eq(got[q], want[q], 1e-6, "pixel %d: %g", q, got[q]);
    /* 1 x 2 -> 1 x 3 (scale 1.5): sources 0 (clamped), 0.5, 1 (clamped) */
    const float s2[2] = {2, 6};
    float g2[3];
    cr_assert_eq(sm_explain_upsample(s2, 1, 1, 2, g2, 1, 3, &err), 0, "%s", err.msg);
    cr_assert_float_eq(g2[0], 2, 1e-6);
    cr_assert_float_eq(g2[1], 4, 1e-6);
    cr_assert_float_eq(g2[2], 6, 1e-6);
}

Test(explain_grad, bad_parameters_are_refused)
{
    sm_err err = {0};
    sm_explainer *e = sm_explainer_new("intg", &err);
    cr_assert_not_null(e, "%s", err.msg);
    cr_assert_eq(sm_explainer_set(e, "steps", "0", &err), -1);
    cr_assert(strstr(err.msg, "intg.steps: '0'"), "%s", err.msg);
    cr_assert_eq(sm_explainer_set(e, "method", "simpson", &err), -1);
    cr_assert(strstr(err.msg, "intg.method: 'simpson' is not one of") &&
              strstr(err.msg, "riemann_trapezoid"), "%s", err.msg);
    cr_assert_eq(sm_explainer_set(e, "baseline", "noise", &err), -1);
    cr_assert(strstr(err.msg, "intg.baseline: 'noise'"), "%s", err.msg);
    cr_assert_str_eq(sm_explainer_params_json(e),
                     "{\"steps\": 50, \"method\": \"gausslegendre\", \"baseline\": \"zero\", "
                     "\"baseline_value\": 0, \"sigma\": 5, \"internal_batch\": 256}");
    sm_explainer_destroy(&e);
    sm_tensor *w;
    sm_model *m = small_model(1, &w, NULL);
    sm_tensor *x = images(1, 5);
    int target[1] = {0};
    float map[9];
    sm_explain_out out[1] = {0};
    const char *trap[] = {"method=riemann_trapezoid", "steps=1", NULL};
    cr_assert_eq(explain("intg", trap, m, x, target, NULL, map, out, &err), -1);
    cr_assert(strstr(err.msg, "intg.steps: '1'") && strstr(err.msg, "riemann_trapezoid"),
              "%s", err.msg);
    const char *layer[] = {"layer=nope", NULL};
    cr_assert_eq(explain("gradcam", layer, m, x, target, NULL, map, out, &err), -1);
    cr_assert(strstr(err.msg, "gradcam: layer 'nope'") && strstr(err.msg, "no value named"),
              "%s", err.msg);
    const char *flat[] = {"layer=flat", NULL};
    cr_assert_eq(explain("gradcam", flat, m, x, target, NULL, map, out, &err), -1);
    cr_assert(strstr(err.msg, "gradcam: layer 'flat' is [1, 18]"), "%s", err.msg);
    const char *relu[] = {"relu=2", NULL};
    cr_assert_eq(explain("gradcam", relu, m, x, target, NULL, map, out, &err), -1);
    cr_assert(strstr(err.msg, "gradcam.relu: '2'"), "%s", err.msg);
    const char *samples[] = {"samples=0", NULL};
    cr_assert_eq(explain("smoothgrad", samples, m, x, target, NULL, map, out, &err), -1);
    cr_assert(strstr(err.msg, "smoothgrad.samples: '0'"), "%s", err.msg);
    sm_model_destroy(&m);
    sm_tensor_destroy(&w);
    /* no spatial value at all */
    m = small_model(0, &w, NULL);
    cr_assert_eq(explain("gradcam", NULL, m, x, target, NULL, map, out, &err), -1);
    cr_assert(strstr(err.msg, "gradcam: the model has no spatial"), "%s", err.msg);
    sm_model_destroy(&m);
    sm_tensor_destroy(&w);
    sm_tensor_destroy(&x);
    sm_explain_out_free(out, 1);
}

/* salmap's sal, grad, intg and gradcam maps of `model` on the 4 digits of
 * fixture folder dir (make_saliency_fixtures.py) against torch's, each
 * within tol[k] of the largest |torch| value of its image's map. */
static void check_fixtures(const char *model, const char *dir, const double tol[4])
{
    sm_err err = {0};
    char path[128];
    sm_model *m = load_model(model);
    snprintf(path, sizeof path, "%sdigits.npy", dir);
    sm_tensor *x = sm_npy_read(path, &err);
    cr_assert_not_null(x, "%s", err.msg);
    snprintf(path, sizeof path, "%stargets.npy", dir);
    sm_tensor *tg = sm_npy_read(path, &err);
    cr_assert_not_null(tg, "%s", err.msg);
    int64_t n = x->shape[0];
    int target[4], pred[4];
    cr_assert_eq(n, 4);
    predict(m, x, pred);
    for (int i = 0; i < 4; i++) {
        target[i] = (int)tg->data[i];
        cr_assert_eq(pred[i], target[i], "image %d: salmap predicts %d, torch %d", i,
                     pred[i], target[i]);
    }
    const char *methods[] = {"sal", "grad", "intg", "gradcam"};
    float maps[4 * 784];
    sm_explain_out out[4] = {0};
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s%s.npy", dir, methods[k]);
        sm_tensor *want = sm_npy_read(path, &err);
        cr_assert_not_null(want, "%s", err.msg);
        cr_assert_eq(sm_tensor_numel(want), 4 * 784);
        cr_assert_eq(explain(methods[k], NULL, m, x, target, NULL, maps, out, &err), 0,
                     "%s: %s", methods[k], err.msg);
        double worst = 0;
        for (int i = 0; i < 4; i++) {
            double scale, d = max_diff(maps + i * 784, want->data + i * 784, 784, &scale);
            worst = fmax(worst, d / scale);
        }
        cr_log_info("%s fixture %s: max |salmap - torch| / max |torch| = %.3g", model,
                    methods[k], worst);
        cr_assert(worst < tol[k], "%s: %s differs from torch by %g of its max", model,
                  methods[k], worst);
        sm_tensor_destroy(&want);
    }
    sm_tensor_destroy(&tg);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
    sm_explain_out_free(out, 4);
}

Test(explain_grad, maps_match_torch_fixtures)
{
    const double tol[] = {1e-4, 1e-4, 3e-4, 1e-4};
    check_fixtures(MNIST_MODEL, SAL_FIX, tol);
}

/* The shipped model against torch float64 (make_saliency_fixtures.py
 * --model cnn); its logits too. */
Test(explain_grad, maps_match_torch_fixtures_on_the_shipped_model)
{
    const double tol[] = {1e-4, 1e-4, 3e-4, 1e-4};
    check_fixtures(SHIPPED_MODEL, SAL_CNN_FIX, tol);
    sm_err err = {0};
    sm_model *m = load_model(SHIPPED_MODEL);
    sm_tensor *x = sm_npy_read(SAL_CNN_FIX "digits.npy", &err);
    sm_tensor *want = sm_npy_read(SAL_CNN_FIX "logits.npy", &err);
    cr_assert(x && want, "%s", err.msg);
    const sm_tensor *y = sm_model_forward(m, x->data, x->shape[0], &err);
    cr_assert_not_null(y, "%s", err.msg);
    cr_assert_eq(sm_tensor_numel(y), sm_tensor_numel(want));
    double scale, d = max_diff(y->data, want->data, sm_tensor_numel(want), &scale);
    cr_log_info("shipped model logits: max |salmap - torch| / max |torch| = %.3g", d / scale);
    cr_assert(d < 1e-5 * scale, "logits differ by %g of %g", d, scale);
    sm_tensor_destroy(&want);
    sm_tensor_destroy(&x);
    sm_model_destroy(&m);
}
