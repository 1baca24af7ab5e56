#include "train/arch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "onnx/writer.h"
#include "util/rng.h"

#define OPSET 13
#define MAX_LAYERS 16
#define MAX_PARAMS (2 * MAX_LAYERS)

typedef enum { L_CONV, L_RELU, L_POOL, L_FLATTEN, L_FC } layer_kind;

/* n: output channels (conv) or features (fc; 0 = the classes); k: kernel
 * size (conv, pool); pad: conv padding on every side. */
typedef struct layer {
    layer_kind kind;
    int n, k, pad;
} layer;

typedef struct arch {
    const char *name;
    int n_layers;
    layer layers[MAX_LAYERS];
} arch;

static const arch archs[] = {
    {"lenet", 12, {{L_CONV, 6, 5, 2}, {L_RELU, 0, 0, 0}, {L_POOL, 0, 2, 0},
                   {L_CONV, 16, 5, 0}, {L_RELU, 0, 0, 0}, {L_POOL, 0, 2, 0},
                   {L_FLATTEN, 0, 0, 0}, {L_FC, 120, 0, 0}, {L_RELU, 0, 0, 0},
                   {L_FC, 84, 0, 0}, {L_RELU, 0, 0, 0}, {L_FC, 0, 0, 0}}},
    {"cnn", 10, {{L_CONV, 32, 3, 1}, {L_RELU, 0, 0, 0}, {L_POOL, 0, 2, 0},
                 {L_CONV, 64, 3, 1}, {L_RELU, 0, 0, 0}, {L_POOL, 0, 2, 0},
                 {L_FLATTEN, 0, 0, 0}, {L_FC, 128, 0, 0}, {L_RELU, 0, 0, 0},
                 {L_FC, 0, 0, 0}}},
    {"mlp", 4, {{L_FLATTEN, 0, 0, 0}, {L_FC, 128, 0, 0}, {L_RELU, 0, 0, 0},
                {L_FC, 0, 0, 0}}},
    {"linear", 2, {{L_FLATTEN, 0, 0, 0}, {L_FC, 0, 0, 0}}},
};
#define N_ARCHS ((int)(sizeof archs / sizeof archs[0]))


struct sm_train_net {
    const arch *a;
    int channels, height, width, classes;
    int n_params;
    char names[MAX_PARAMS][32];
    sm_tensor *params[MAX_PARAMS];
};

static void names_list(char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < N_ARCHS; i++)
        len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s%s",
                                i ? ", " : "", archs[i].name);
}

/* Uniform in +-1/sqrt(fan_in): PyTorch's default for Conv2d and Linear. */
static void init_uniform(sm_tensor *t, const char *name, int64_t fan_in,
                         uint64_t seed)
{
    uint64_t key = sm_rng_key(seed, (const char *const[]){"train-init", name, NULL});
    double bound = 1.0 / sqrt((double)fan_in);
    for (int64_t j = 0; j < sm_tensor_numel(t); j++)
        t->data[j] = (float)((2.0 * sm_rng_uniform(key, (uint64_t)j) - 1.0) * bound);
}

/* Adds layer parameters `<prefix>.weight` and `<prefix>.bias`. */
static int add_params(sm_train_net *net, const char *prefix, int wdim,
                      const int64_t *wshape, int64_t fan_in, uint64_t seed)
{
    const char *suffix[2] = {"weight", "bias"};
    for (int p = 0; p < 2; p++) {
        int i = net->n_params;
        snprintf(net->names[i], sizeof net->names[i], "%s.%s", prefix, suffix[p]);
        net->params[i] = p ? sm_tensor_new(1, wshape) : sm_tensor_new(wdim, wshape);
        if (!net->params[i])
            return -1;
        net->n_params++;
        init_uniform(net->params[i], net->names[i], fan_in, seed);
    }
    return 0;
}

sm_train_net *sm_train_net_new(const char *arch_name, int channels, int height,
                               int width, int classes, uint64_t seed,
                               sm_err *err)
{
    const arch *a = NULL;
    for (int i = 0; i < N_ARCHS && arch_name; i++)
        if (strcmp(archs[i].name, arch_name) == 0)
            a = &archs[i];
    if (!a) {
        char list[128];
        names_list(list, sizeof list);
        sm_err_set(err, "unknown architecture '%s' (known: %s)",
                   arch_name ? arch_name : "", list);
        return NULL;
    }
    if (channels != 1 && channels != 3) {
        sm_err_set(err, "%s: images must have 1 or 3 channels, not %d",
                   a->name, channels);
        return NULL;
    }
    if (classes < 2) {
        sm_err_set(err, "%s: a classifier needs at least 2 classes, not %d",
                   a->name, classes);
        return NULL;
    }
    if (height < 1 || width < 1 || (int64_t)height * width > SM_IMAGE_MAX_PIXELS) {
        sm_err_set(err, "%s: bad input size %dx%d", a->name, height, width);
        return NULL;
    }
    sm_train_net *net = calloc(1, sizeof *net);
    if (!net) {
        sm_err_set(err, "%s: out of memory", a->name);
        return NULL;
    }
    net->a = a;
    net->channels = channels;
    net->height = height;
    net->width = width;
    net->classes = classes;
    int64_t c = channels, h = height, w = width, features = 0;
    int n_conv = 0, n_fc = 0;
    for (int l = 0; l < a->n_layers; l++) {
        const layer *ly = &a->layers[l];
        char prefix[16];
        int rc = 0;
        switch (ly->kind) {
        case L_CONV:
            h += 2 * ly->pad - ly->k + 1;
            w += 2 * ly->pad - ly->k + 1;
            snprintf(prefix, sizeof prefix, "conv%d", ++n_conv);
            rc = add_params(net, prefix, 4,
                            (int64_t[]){ly->n, c, ly->k, ly->k},
                            c * ly->k * ly->k, seed);
            c = ly->n;
            break;
        case L_POOL:
            h /= ly->k;
            w /= ly->k;
            break;
        case L_FLATTEN:
            features = c * h * w;
            break;
        case L_FC: {
            int64_t out = ly->n ? ly->n : classes;
            snprintf(prefix, sizeof prefix, "fc%d", ++n_fc);
            rc = add_params(net, prefix, 2, (int64_t[]){out, features},
                            features, seed);
            features = out;
            break;
        }
        case L_RELU:
            break;
        }
        if (h < 1 || w < 1) {
            sm_err_set(err, "%s: input %dx%d is too small for its "
                       "convolutions and pools", a->name, height, width);
            sm_train_net_destroy(&net);
            return NULL;
        }
        if (rc) {
            sm_err_set(err, "%s: out of memory", a->name);
            sm_train_net_destroy(&net);
            return NULL;
        }
    }
    return net;
}

void sm_train_net_destroy(sm_train_net **net)
{
    if (!net || !*net)
        return;
    for (int i = 0; i < (*net)->n_params; i++)
        sm_tensor_destroy(&(*net)->params[i]);
    free(*net);
    *net = NULL;
}

const char *sm_train_net_arch(const sm_train_net *net) { return net->a->name; }

int sm_train_net_n_params(const sm_train_net *net) { return net->n_params; }

const char *sm_train_net_param_name(const sm_train_net *net, int i)
{
    return i >= 0 && i < net->n_params ? net->names[i] : NULL;
}

const sm_tensor *sm_train_net_param(const sm_train_net *net, int i)
{
    return i >= 0 && i < net->n_params ? net->params[i] : NULL;
}

int64_t sm_train_net_numel(const sm_train_net *net)
{
    int64_t n = 0;
    for (int i = 0; i < net->n_params; i++)
        n += sm_tensor_numel(net->params[i]);
    return n;
}

int sm_train_net_take(sm_train_net *net, sm_model *m, sm_err *err)
{
    for (int i = 0; i < net->n_params; i++) {
        const sm_tensor *dst = net->params[i];
        const sm_tensor *src = NULL;
        for (int j = 0; j < sm_model_n_params(m) && !src; j++)
            if (strcmp(sm_model_param_name(m, j), net->names[i]) == 0)
                src = sm_model_param(m, j);
        if (!src || !sm_shape_equal(src->ndim, src->shape, dst->ndim, dst->shape))
            return sm_err_set(err, "%s: the model has no parameter '%s' of "
                              "the net's shape", net->a->name, net->names[i]);
        memcpy(dst->data, src->data,
               (size_t)sm_tensor_numel(dst) * sizeof(float));
    }
    return 0;
}

/* The graph: values are named after the node that makes them, the last
 * one `logits`. */
static sm_onnx_writer *build(const sm_train_net *net)
{
    sm_onnx_writer *w = sm_onnx_writer_new(OPSET);
    if (!w)
        return NULL;
    const arch *a = net->a;
    int rc = sm_onnx_writer_input(w, "input", 4,
                                  (int64_t[]){-1, net->channels, net->height,
                                              net->width});
    for (int i = 0; i < net->n_params; i++)
        rc |= sm_onnx_writer_initializer(w, net->names[i], net->params[i]);
    char prev[32] = "input", cur[32];
    int n_conv = 0, n_fc = 0, n_relu = 0, n_pool = 0;
    for (int l = 0; l < a->n_layers && !rc; l++) {
        const layer *ly = &a->layers[l];
        int last = l == a->n_layers - 1;
        char wn[40], bn[40];
        switch (ly->kind) {
        case L_CONV:
            snprintf(cur, sizeof cur, "conv%d", ++n_conv);
            snprintf(wn, sizeof wn, "%s.weight", cur);
            snprintf(bn, sizeof bn, "%s.bias", cur);
            rc |= sm_onnx_writer_node(w, "Conv", cur,
                                      (const char *[]){prev, wn, bn}, 3,
                                      (const char *[]){cur}, 1);
            rc |= sm_onnx_writer_attr_ints(w, "kernel_shape",
                                           (int64_t[]){ly->k, ly->k}, 2);
            rc |= sm_onnx_writer_attr_ints(w, "pads",
                                           (int64_t[]){ly->pad, ly->pad,
                                                       ly->pad, ly->pad}, 4);
            rc |= sm_onnx_writer_attr_ints(w, "strides", (int64_t[]){1, 1}, 2);
            break;
        case L_RELU:
            snprintf(cur, sizeof cur, "relu%d", ++n_relu);
            rc |= sm_onnx_writer_node(w, "Relu", cur, (const char *[]){prev}, 1,
                                      (const char *[]){cur}, 1);
            break;
        case L_POOL:
            snprintf(cur, sizeof cur, "pool%d", ++n_pool);
            rc |= sm_onnx_writer_node(w, "MaxPool", cur, (const char *[]){prev},
                                      1, (const char *[]){cur}, 1);
            rc |= sm_onnx_writer_attr_ints(w, "kernel_shape",
                                           (int64_t[]){ly->k, ly->k}, 2);
            rc |= sm_onnx_writer_attr_ints(w, "strides",
                                           (int64_t[]){ly->k, ly->k}, 2);
            break;
        case L_FLATTEN:
            snprintf(cur, sizeof cur, "flatten");
            rc |= sm_onnx_writer_node(w, "Flatten", cur, (const char *[]){prev},
                                      1, (const char *[]){cur}, 1);
            rc |= sm_onnx_writer_attr_int(w, "axis", 1);
            break;
        case L_FC: {
            char node[16];
            snprintf(node, sizeof node, "fc%d", ++n_fc);
            snprintf(wn, sizeof wn, "%s.weight", node);
            snprintf(bn, sizeof bn, "%s.bias", node);
            snprintf(cur, sizeof cur, "%s", last ? "logits" : node);
            rc |= sm_onnx_writer_node(w, "Gemm", node,
                                      (const char *[]){prev, wn, bn}, 3,
                                      (const char *[]){cur}, 1);
            rc |= sm_onnx_writer_attr_int(w, "transB", 1);
            break;
        }
        }
        memcpy(prev, cur, sizeof prev);
    }
    rc |= sm_onnx_writer_output(w, "logits", 2, (int64_t[]){-1, net->classes});
    if (rc)
        sm_onnx_writer_destroy(&w);
    return w;
}

unsigned char *sm_train_net_serialize(const sm_train_net *net, size_t *len,
                                      sm_err *err)
{
    sm_onnx_writer *w = build(net);
    if (!w) {
        sm_err_set(err, "%s: out of memory building the ONNX graph", net->a->name);
        return NULL;
    }
    unsigned char *buf = sm_onnx_writer_serialize(w, len, err);
    sm_onnx_writer_destroy(&w);
    return buf;
}

int sm_train_net_save(const sm_train_net *net, const char *path, sm_err *err)
{
    sm_onnx_writer *w = build(net);
    if (!w)
        return sm_err_set(err, "%s: out of memory building the ONNX graph",
                          path);
    int rc = sm_onnx_writer_save(w, path, err);
    sm_onnx_writer_destroy(&w);
    return rc;
}
