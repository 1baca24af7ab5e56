/* Training (core/train): the architectures, one SGD and one Adam step
 * against hand computation, learning a separable set, determinism from the
 * seed, the saved model and config, and the refusals of the library and of
 * `salmap train`. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config_model.h"
#include "config/model_config.h"
#include "model/model.h"
#include "tdata.h"
#include "train/arch.h"
#include "train/set.h"
#include "train/trainer.h"
#include "util/file.h"

TDATA_SUITE(train);

static const char *const digits[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

static sm_model *load_net(const sm_train_net *net)
{
    sm_err err = {0};
    size_t len;
    unsigned char *buf = sm_train_net_serialize(net, &len, &err);
    cr_assert_not_null(buf, "%s", err.msg);
    sm_model *m = sm_model_load_buffer(buf, len, "net", &err);
    free(buf);
    cr_assert_not_null(m, "%s", err.msg);
    return m;
}

static sm_tensor *param(sm_model *m, const char *name)
{
    for (int i = 0; i < sm_model_n_params(m); i++)
        if (strcmp(sm_model_param_name(m, i), name) == 0)
            return sm_model_param(m, i);
    cr_assert_fail("no parameter %s", name);
    return NULL;
}

static sm_model_config *parse_cfg(const char *yaml)
{
    sm_err err = {0};
    sm_model_config *cfg = sm_model_config_parse(yaml, strlen(yaml), "c.yaml", &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    return cfg;
}

/* The architectures load in the engine with PyTorch's parameter shapes,
 * the declared input and output, and logits for a batch. */
Test(train, architectures_load_with_expected_parameters)
{
    static const struct {
        const char *arch;
        int n_params;
        int64_t numel;
        const char *name;
        int64_t shape[4];
    } cases[] = {
        /* 156 + 2416 + 48120 + 10164 + 850 */
        {"lenet", 10, 61706, "fc1.weight", {120, 400}},
        /* 320 + 18496 + 401536 + 1290 */
        {"cnn", 8, 421642, "conv2.weight", {64, 32, 3, 3}},
        {"mlp", 4, 784 * 128 + 128 + 1290, "fc2.weight", {10, 128}},
        {"linear", 2, 7850, "fc1.bias", {10}},
    };
    sm_err err = {0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sm_train_net *net = sm_train_net_new(cases[c].arch, 1, 28, 28, 10, 1, &err);
        cr_assert_not_null(net, "%s", err.msg);
        cr_assert_eq(sm_train_net_numel(net), cases[c].numel, "%s: %lld",
                     cases[c].arch, (long long)sm_train_net_numel(net));
        sm_model *m = load_net(net);
        cr_assert_eq(sm_model_n_inputs(m), 1);
        cr_assert_str_eq(sm_model_input_name(m, 0), "input");
        int64_t shape[SM_MAX_DIMS];
        cr_assert_eq(sm_model_input_shape(m, 0, shape), 4);
        cr_assert(shape[0] == -1 && shape[1] == 1 && shape[2] == 28 && shape[3] == 28);
        cr_assert_str_eq(sm_model_output_name(m, 0), "logits");
        sm_model_set_trainable(m, 1);
        cr_assert_eq(sm_model_n_params(m), cases[c].n_params, "%s", cases[c].arch);
        const sm_tensor *p = param(m, cases[c].name);
        int nd = cases[c].shape[1] ? (cases[c].shape[2] ? 4 : 2) : 1;
        cr_assert(sm_shape_equal(p->ndim, p->shape, nd, cases[c].shape), "%s %s",
                  cases[c].arch, cases[c].name);
        float x[3 * 784];
        for (int i = 0; i < 3 * 784; i++)
            x[i] = (float)(i % 17) / 17.0f;
        const sm_tensor *y = sm_model_forward(m, x, 3, &err);
        cr_assert_not_null(y, "%s", err.msg);
        cr_assert(y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 10);
        sm_model_destroy(&m);
        sm_train_net_destroy(&net);
    }
}

/* PyTorch's default init: every weight and bias within +-1/sqrt(fan_in)
 * and spread over it; the same seed gives the same bytes, another seed
 * other weights. */
Test(train, initialisation_is_bounded_and_seeded)
{
    sm_err err = {0};
    sm_train_net *a = sm_train_net_new("lenet", 1, 28, 28, 10, 7, &err);
    sm_train_net *b = sm_train_net_new("lenet", 1, 28, 28, 10, 7, &err);
    sm_train_net *c = sm_train_net_new("lenet", 1, 28, 28, 10, 8, &err);
    cr_assert(a && b && c, "%s", err.msg);
    static const int64_t fan_in[10] = {25, 25, 150, 150, 400, 400, 120, 120, 84, 84};
    for (int i = 0; i < sm_train_net_n_params(a); i++) {
        const sm_tensor *t = sm_train_net_param(a, i);
        double bound = 1 / sqrt((double)fan_in[i]), lo = 0, hi = 0;
        for (int64_t j = 0; j < sm_tensor_numel(t); j++) {
            lo = fmin(lo, t->data[j]);
            hi = fmax(hi, t->data[j]);
        }
        cr_assert(lo >= -bound && hi <= bound, "%s", sm_train_net_param_name(a, i));
        cr_assert(hi - lo > bound, "%s spans [%g, %g]", sm_train_net_param_name(a, i), lo, hi);
    }
    size_t la, lb, lc;
    unsigned char *ba = sm_train_net_serialize(a, &la, &err);
    unsigned char *bb = sm_train_net_serialize(b, &lb, &err);
    unsigned char *bc = sm_train_net_serialize(c, &lc, &err);
    cr_assert(la == lb && memcmp(ba, bb, la) == 0);
    cr_assert(la == lc && memcmp(ba, bc, la) != 0);
    free(ba);
    free(bb);
    free(bc);
    sm_train_net_destroy(&a);
    sm_train_net_destroy(&b);
    sm_train_net_destroy(&c);
}

/* A softmax regression on 1x2x2 images with 3 classes: fixed weights, a
 * batch of 2, the gradient and the updates computed here by hand. */
#define NC 3
#define NF 4
static const float X[2][NF] = {{1, 0, 2, -1}, {0.5f, 1, -1, 0}};
static const int Y[2] = {2, 0};

static void set_weights(sm_model *m)
{
    sm_tensor *w = param(m, "fc1.weight"), *b = param(m, "fc1.bias");
    for (int k = 0; k < NC * NF; k++)
        w->data[k] = 0.1f * (float)(k % 5) - 0.2f;
    for (int k = 0; k < NC; k++)
        b->data[k] = 0.05f * (float)k;
}

/* The mean cross-entropy of the batch and its gradient (gw: NC x NF, gb),
 * in double. */
static double hand_grad(sm_model *m, double *gw, double *gb)
{
    const float *w = param(m, "fc1.weight")->data, *b = param(m, "fc1.bias")->data;
    double loss = 0;
    memset(gw, 0, NC * NF * sizeof(double));
    memset(gb, 0, NC * sizeof(double));
    for (int r = 0; r < 2; r++) {
        double z[NC], s = 0;
        for (int k = 0; k < NC; k++) {
            z[k] = b[k];
            for (int j = 0; j < NF; j++)
                z[k] += (double)w[k * NF + j] * X[r][j];
            s += exp(z[k]);
        }
        loss += (log(s) - z[Y[r]]) / 2;
        for (int k = 0; k < NC; k++) {
            double d = (exp(z[k]) / s - (k == Y[r])) / 2;
            gb[k] += d;
            for (int j = 0; j < NF; j++)
                gw[k * NF + j] += d * X[r][j];
        }
    }
    return loss;
}

static sm_trainer *tiny_trainer(sm_train_optimizer opt, double lr, double wd)
{
    sm_train_opts o;
    sm_train_opts_init(&o);
    o.arch = "linear";
    o.epochs = 1;
    o.batch = 2;
    o.optimizer = opt;
    o.lr = lr;
    o.weight_decay = wd;
    sm_err err = {0};
    sm_trainer *t = sm_trainer_new(&o, 1, 2, 2, NC, &err);
    cr_assert_not_null(t, "%s", err.msg);
    set_weights(sm_trainer_model(t));
    return t;
}

Test(train, sgd_steps_match_hand_computation)
{
    const double lr = 0.1, wd = 0.01, mu = 0.9;
    sm_trainer *t = tiny_trainer(SM_TRAIN_SGD, lr, wd);
    sm_model *m = sm_trainer_model(t);
    sm_err err = {0};
    double gw[NC * NF], gb[NC], w0[NC * NF + NC], v[NC * NF + NC];
    double expect_loss = hand_grad(m, gw, gb);
    for (int k = 0; k < NC * NF; k++)
        w0[k] = param(m, "fc1.weight")->data[k];
    for (int k = 0; k < NC; k++)
        w0[NC * NF + k] = param(m, "fc1.bias")->data[k];
    double loss;
    int correct;
    cr_assert_eq(sm_trainer_step(t, &X[0][0], Y, 2, &loss, &correct, &err), 0, "%s", err.msg);
    cr_assert_float_eq(loss, expect_loss, 1e-6);
    /* First step: v = g + wd w, w -= lr v. */
    for (int k = 0; k < NC * NF + NC; k++) {
        double g = k < NC * NF ? gw[k] : gb[k - NC * NF];
        v[k] = g + wd * w0[k];
        w0[k] -= lr * v[k];
        const float *now = k < NC * NF ? &param(m, "fc1.weight")->data[k]
                                       : &param(m, "fc1.bias")->data[k - NC * NF];
        cr_assert_float_eq(*now, w0[k], 1e-6, "param %d: %g, by hand %g", k, *now, w0[k]);
    }
    /* Second step: momentum. The loss went down. */
    double loss2 = hand_grad(m, gw, gb);
    cr_assert_lt(loss2, loss);
    cr_assert_eq(sm_trainer_step(t, &X[0][0], Y, 2, &loss, NULL, &err), 0, "%s", err.msg);
    cr_assert_float_eq(loss, loss2, 1e-6);
    for (int k = 0; k < NC * NF + NC; k++) {
        double g = k < NC * NF ? gw[k] : gb[k - NC * NF];
        v[k] = mu * v[k] + g + wd * w0[k];
        w0[k] -= lr * v[k];
        const float *now = k < NC * NF ? &param(m, "fc1.weight")->data[k]
                                       : &param(m, "fc1.bias")->data[k - NC * NF];
        cr_assert_float_eq(*now, w0[k], 1e-6, "param %d: %g, by hand %g", k, *now, w0[k]);
    }
    sm_trainer_destroy(&t);
    cr_assert_null(t);
}

/* Adam's first step: m = (1-b1) g, v = (1-b2) g^2, bias-corrected to g
 * and g^2, so w -= lr g / (|g| + eps). */
Test(train, adam_first_step_matches_formula)
{
    const double lr = 0.01;
    sm_trainer *t = tiny_trainer(SM_TRAIN_ADAM, lr, 0);
    sm_model *m = sm_trainer_model(t);
    sm_err err = {0};
    double gw[NC * NF], gb[NC], w0[NC * NF];
    hand_grad(m, gw, gb);
    for (int k = 0; k < NC * NF; k++)
        w0[k] = param(m, "fc1.weight")->data[k];
    cr_assert_eq(sm_trainer_step(t, &X[0][0], Y, 2, NULL, NULL, &err), 0, "%s", err.msg);
    for (int k = 0; k < NC * NF; k++) {
        double want = w0[k] - lr * gw[k] / (fabs(gw[k]) + 1e-8);
        cr_assert_float_eq(param(m, "fc1.weight")->data[k], want, 1e-6, "weight %d", k);
    }
    sm_trainer_destroy(&t);
}

/* 3 classes of 8x8 images: a bright band at the top, middle or bottom,
 * over deterministic noise. */
static sm_train_set *bands(size_t n, uint64_t salt)
{
    float *x = malloc(n * 64 * sizeof(float));
    int *y = malloc(n * sizeof(int));
    uint64_t s = 12345 + salt;
    for (size_t i = 0; i < n; i++) {
        y[i] = (int)(i % 3);
        for (int p = 0; p < 64; p++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            float noise = (float)(s >> 40) / (float)(1 << 24) * 0.5f;
            int row = p / 8;
            x[i * 64 + (size_t)p] = noise + (row / 3 == y[i] ? 0.8f : 0.0f);
        }
    }
    sm_err err = {0};
    sm_train_set *set = sm_train_set_from_memory(x, y, n, 1, 8, 8, digits, 3, &err);
    cr_assert_not_null(set, "%s", err.msg);
    free(x);
    free(y);
    return set;
}

static sm_trainer *train_bands(const sm_train_set *set, const char *arch,
                               uint64_t seed, int epochs, int threads)
{
    sm_train_opts o;
    sm_train_opts_init(&o);
    o.arch = arch;
    o.epochs = epochs;
    o.seed = seed;
    o.batch = 16;
    o.lr = 0.01;
    o.threads = threads;
    o.schedule = SM_TRAIN_COSINE;
    sm_err err = {0};
    sm_trainer *t = sm_trainer_new(&o, 1, 8, 8, 3, &err);
    cr_assert_not_null(t, "%s", err.msg);
    for (int e = 0; e < epochs; e++)
        cr_assert_eq(sm_trainer_epoch(t, set, NULL, NULL, NULL, NULL, &err), 0,
                     "%s", err.msg);
    return t;
}

static void count_progress(const sm_train_progress *p, void *ctx)
{
    size_t *calls = ctx;
    cr_assert(p->seen <= p->total && p->epoch >= 1 && p->epoch <= p->epochs);
    (*calls)++;
}

Test(train, learns_a_separable_set)
{
    sm_train_set *set = bands(96, 0), *held = bands(48, 1);
    sm_err err = {0};
    sm_train_opts o;
    sm_train_opts_init(&o);
    o.arch = "cnn";
    o.epochs = 6;
    o.batch = 16;
    o.lr = 0.01;
    sm_trainer *t = sm_trainer_new(&o, 1, 8, 8, 3, &err);
    cr_assert_not_null(t, "%s", err.msg);
    double loss0, acc, loss;
    cr_assert_eq(sm_trainer_evaluate(t, set, &loss0, NULL, &err), 0, "%s", err.msg);
    size_t calls = 0;
    for (int e = 0; e < o.epochs; e++)
        cr_assert_eq(sm_trainer_epoch(t, set, count_progress, &calls, NULL, NULL,
                                      &err), 0, "%s", err.msg);
    cr_assert_eq(calls, 6 * 6, "one progress call per step");
    cr_assert_eq(sm_trainer_evaluate(t, set, &loss, &acc, &err), 0, "%s", err.msg);
    cr_assert_eq(acc, 1.0, "train accuracy %g", acc);
    cr_assert_lt(loss, loss0 / 4);
    cr_assert_eq(sm_trainer_evaluate(t, held, NULL, &acc, &err), 0, "%s", err.msg);
    cr_assert_geq(acc, 0.95, "held-out accuracy %g", acc);
    cr_assert_neq(sm_trainer_epoch(t, set, NULL, NULL, NULL, NULL, &err), 0);
    cr_assert(tdata_has(err.msg, "all 6 epochs are done"), "%s", err.msg);
    sm_trainer_destroy(&t);
    sm_train_set_destroy(&set);
    sm_train_set_destroy(&held);
}

static unsigned char *saved(sm_trainer *t, const char *name, size_t *len)
{
    char path[TDATA_PATH];
    sm_err err = {0};
    tdata_path(path, dir, name);
    cr_assert_eq(sm_trainer_save(t, path, NULL, digits, &err), 0, "%s", err.msg);
    unsigned char *buf = sm_file_read(path, SM_FILE_MAX_MODEL, len, &err);
    cr_assert_not_null(buf, "%s", err.msg);
    return buf;
}

/* The same seed gives the same model file, with one thread or two (each
 * run against itself); another seed another one. */
Test(train, same_seed_same_bytes)
{
    sm_train_set *set = bands(60, 0);
    for (int threads = 1; threads <= 2; threads++) {
        size_t la, lb, lc;
        sm_trainer *a = train_bands(set, "cnn", 3, 2, threads);
        sm_trainer *b = train_bands(set, "cnn", 3, 2, threads);
        sm_trainer *c = train_bands(set, "cnn", 4, 2, threads);
        unsigned char *ba = saved(a, "a.onnx", &la), *bb = saved(b, "b.onnx", &lb);
        unsigned char *bc = saved(c, "c.onnx", &lc);
        cr_assert(la == lb && memcmp(ba, bb, la) == 0, "same seed, different files");
        cr_assert(la == lc && memcmp(ba, bc, la) != 0, "another seed, the same file");
        free(ba);
        free(bb);
        free(bc);
        sm_trainer_destroy(&a);
        sm_trainer_destroy(&b);
        sm_trainer_destroy(&c);
    }
    sm_train_set_destroy(&set);
}

/* The saved model and config load, bind, and give the trainer's outputs. */
Test(train, saves_model_and_config)
{
    sm_train_set *set = bands(30, 0);
    sm_trainer *t = train_bands(set, "mlp", 5, 1, 1);
    sm_err err = {0};
    char path[TDATA_PATH], ypath[TDATA_PATH];
    tdata_path(path, dir, "m.onnx");
    static const char *const names[] = {"top \"band\"", "middle", "bottom"};
    sm_model_config *in = parse_cfg("input: {channels: 1, height: 8, width: 8}\n"
                                    "scale: 0.5\nmean: [0.25]\nstd: [2]\n");
    cr_assert_eq(sm_trainer_save(t, path, in, names, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_train_config_path(path, ypath, sizeof ypath), 0);
    cr_assert(tdata_has(ypath, "/m.yaml"), "%s", ypath);
    sm_model_config *cfg = sm_model_config_load(ypath, &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    cr_assert(cfg->channels == 1 && cfg->height == 8 && cfg->width == 8);
    cr_assert(cfg->scale == 0.5f && cfg->mean[0] == 0.25f && cfg->std[0] == 2.0f);
    cr_assert_eq(cfg->n_classes, 3);
    for (int k = 0; k < 3; k++)
        cr_assert_str_eq(cfg->classes[k], names[k]);
    cr_assert_str_eq(cfg->output_name, "logits");
    sm_model *m = sm_model_load_file(path, &err);
    cr_assert_not_null(m, "%s", err.msg);
    int out;
    cr_assert_eq(sm_model_config_bind(cfg, m, path, &out, &err), 0, "%s", err.msg);
    const sm_tensor *y = sm_model_forward(m, sm_train_set_image(set, 0), 4, &err);
    cr_assert_not_null(y, "%s", err.msg);
    sm_tensor *keep = sm_tensor_clone(y);
    const sm_tensor *z = sm_model_forward(sm_trainer_model(t), sm_train_set_image(set, 0), 4, &err);
    cr_assert_not_null(z, "%s", err.msg);
    for (int j = 0; j < 12; j++)
        cr_assert_eq(keep->data[j], z->data[j]);
    char other[TDATA_PATH];
    cr_assert_eq(sm_train_config_path("models/x", other, sizeof other), 0);
    cr_assert_str_eq(other, "models/x.yaml");
    sm_tensor_destroy(&keep);
    sm_model_destroy(&m);
    sm_model_config_destroy(&cfg);
    sm_model_config_destroy(&in);
    sm_trainer_destroy(&t);
    sm_train_set_destroy(&set);
}

/* An ImageFolder set: labels follow the config's class order, by name. */
Test(train, loads_image_folder_with_config_class_order)
{
    char p[TDATA_PATH];
    uint8_t px[16];
    for (int v = 0; v < 2; v++) {
        memset(px, v ? 200 : 10, sizeof px);
        tdata_png(p, dir, v ? "ds/b/x.png" : "ds/a/y.png", px, 4, 4, 1);
    }
    sm_err err = {0};
    sm_model_config *cfg = parse_cfg("input: {channels: 1, height: 4, width: 4}\n"
                                     "classes: [b, a]\n");
    sm_train_set *set = sm_train_set_load(tdata_path(p, dir, "ds"), cfg, NULL, 0, 2, &err);
    cr_assert_not_null(set, "%s", err.msg);
    cr_assert_eq(sm_train_set_count(set), 2);
    /* Folder order: a, then b. */
    cr_assert_eq(sm_train_set_label(set, 0), 1);
    cr_assert_eq(sm_train_set_label(set, 1), 0);
    cr_assert_float_eq(sm_train_set_image(set, 1)[5], 200 / 255.0f, 1e-6);
    cr_assert_str_eq(sm_train_set_classes(set)[0], "b");
    sm_train_set_destroy(&set);
    sm_model_config_destroy(&cfg);
    /* A class the config does not name. */
    cfg = parse_cfg("input: {channels: 1, height: 4, width: 4}\nclasses: [a, c]\n");
    cr_assert_null(sm_train_set_load(tdata_path(p, dir, "ds"), cfg, NULL, 0, 1, &err));
    cr_assert(tdata_has(err.msg, "class 'b' is not one of the 2 classes of c.yaml"), "%s", err.msg);
    cr_assert_null(sm_train_set_load(tdata_path(p, dir, "missing"), cfg, NULL, 0, 1, &err));
    cr_assert(tdata_has(err.msg, "missing"), "%s", err.msg);
    sm_model_config_destroy(&cfg);
}

static void refused(const sm_train_opts *o, int c, int h, int w, int k,
                    const char *needle)
{
    sm_err err = {0};
    sm_trainer *t = sm_trainer_new(o, c, h, w, k, &err);
    cr_assert_null(t, "accepted, expected '%s'", needle);
    cr_assert(tdata_has(err.msg, needle), "'%s' lacks '%s'", err.msg, needle);
}

Test(train, refuses_bad_options_and_sizes)
{
    sm_train_opts o;
    sm_train_opts_init(&o);
    o.epochs = 1;
    refused(&o, 1, 28, 28, 10, "no architecture");
    o.arch = "resnet";
    refused(&o, 1, 28, 28, 10, "unknown architecture 'resnet' (known: lenet, cnn, mlp, linear)");
    o.arch = "lenet";
    refused(&o, 1, 8, 8, 10, "lenet: input 8x8 is too small");
    refused(&o, 2, 28, 28, 10, "1 or 3 channels, not 2");
    refused(&o, 1, 28, 28, 1, "at least 2 classes");
    o.epochs = 0;
    refused(&o, 1, 28, 28, 10, "epochs must be at least 1, not 0");
    o.epochs = 1;
    o.batch = 0;
    refused(&o, 1, 28, 28, 10, "batch must be at least 1");
    o.batch = 8;
    o.lr = -1;
    refused(&o, 1, 28, 28, 10, "learning rate must be a positive number");
    o.lr = 0.1;
    o.momentum = 1;
    refused(&o, 1, 28, 28, 10, "momentum must be in [0, 1)");
    o.momentum = 0.5;
    o.threads = 99;
    refused(&o, 1, 28, 28, 10, "threads must be 1..16");
    /* A set that does not fit the model, a bad label, a bad batch. */
    o.threads = 1;
    o.arch = "cnn";
    sm_err err = {0};
    sm_trainer *t = sm_trainer_new(&o, 1, 4, 4, 3, &err);
    cr_assert_not_null(t, "%s", err.msg);
    sm_train_set *set = bands(6, 0);
    cr_assert_neq(sm_trainer_epoch(t, set, NULL, NULL, NULL, NULL, &err), 0);
    cr_assert(tdata_has(err.msg, "memory: images are 1x8x8, the model's input 1x4x4"), "%s", err.msg);
    cr_assert_neq(sm_trainer_evaluate(t, set, NULL, NULL, &err), 0);
    float x[2 * 16] = {0};
    cr_assert_neq(sm_trainer_step(t, x, (const int[]){0, 3}, 2, NULL, NULL, &err), 0);
    cr_assert(tdata_has(err.msg, "label 3 of image 1"), "%s", err.msg);
    cr_assert_neq(sm_trainer_step(t, x, (const int[]){0, 1}, 0, NULL, NULL, &err), 0);
    cr_assert(tdata_has(err.msg, "1..8 images, not 0"), "%s", err.msg);
    cr_assert_null(sm_train_set_from_memory(x, (const int[]){0, 5}, 2, 1, 4, 4, digits, 3, &err));
    cr_assert(tdata_has(err.msg, "image 1: label 5"), "%s", err.msg);
    sm_train_set_destroy(&set);
    sm_trainer_destroy(&t);
}

/* `salmap train` of the same build (skipped when it is not built): help,
 * and refusals before any data is read. */
static int run_cli(char *msg, ...)
{
    const char *args[32] = {"train"};
    int argc = 1;
    va_list ap;
    va_start(ap, msg);
    for (const char *a; argc < 31 && (a = va_arg(ap, const char *));)
        args[argc++] = a;
    va_end(ap);
    args[argc] = NULL;
    return tdata_salmap(msg, dir, args);
}

Test(train, cli_documents_and_refuses)
{
    char msg[TDATA_PATH], out[TDATA_PATH];
    cr_assert_eq(run_cli(msg, "--help", NULL), 0);
    static const char *const opts[] = {"--dataset", "--config", "--arch", "--epochs",
                                       "--seed", "--out", "--test", "--batch",
                                       "--optimizer", "--lr", "--momentum",
                                       "--weight-decay", "--schedule", "--threads"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        cr_assert(tdata_has(msg, opts[i]), "--help lacks %s", opts[i]);
    tdata_path(out, dir, "m.onnx");
    const char *base[] = {"--dataset", "data/mnist/train", "--config", "configs/mnist.yaml",
                          "--seed", "1", "--out", out};
#define CLI(...) run_cli(msg, base[0], base[1], base[2], base[3], base[4], base[5], \
                         base[6], base[7], __VA_ARGS__, NULL)
    cr_assert_eq(CLI("--arch", "lenet", "--epochs", "0"), 2);
    cr_assert(tdata_has(msg, "--epochs must be a positive integer, not '0'"), "%s", msg);
    cr_assert_eq(CLI("--arch", "lenet", "--epochs", "1", "--optimizer", "rmsprop"), 2);
    cr_assert(tdata_has(msg, "--optimizer must be adam or sgd"), "%s", msg);
    cr_assert_eq(CLI("--arch", "lenet", "--epochs", "1", "--lr", "fast"), 2);
    cr_assert(tdata_has(msg, "--lr must be a positive number"), "%s", msg);
    cr_assert_eq(CLI("--arch", "lenet"), 2);
    cr_assert(tdata_has(msg, "missing --epochs"), "%s", msg);
    cr_assert_eq(CLI("--arch", "alexnet", "--epochs", "1"), 1);
    cr_assert(tdata_has(msg, "unknown architecture 'alexnet'"), "%s", msg);
    cr_assert_eq(run_cli(msg, "--dataset", "nowhere", "--config", "configs/mnist.yaml",
                         "--arch", "lenet", "--epochs", "1", "--seed", "1", "--out", out,
                         NULL), 1);
    cr_assert(tdata_has(msg, "nowhere"), "%s", msg);
    cr_assert_eq(run_cli(msg, "--dataset", "nowhere", "--config", "configs/mnist.yaml",
                         "--arch", "lenet", "--epochs", "1", "--seed", "1", "--out",
                         "/nonexistent/m.onnx", NULL), 1);
    cr_assert(tdata_has(msg, "folder /nonexistent is not writable"), "%s", msg);
    cr_assert_eq(access(out, F_OK), -1, "nothing written");
#undef CLI
}
