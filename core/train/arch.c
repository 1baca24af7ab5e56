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
#define LEAKY_ALPHA 0.2f
#define RESHAPE_SHAPE "reshape.shape"

typedef enum {
    L_CONV, L_RELU, L_LEAKY, L_TANH, L_SIGMOID, L_POOL, L_FLATTEN, L_FC,
    L_RESHAPE
} layer_kind;

/* n: output channels (conv) or features (fc; 0 = the net's output width:
 * classes, latent, 1 or C*H*W); k: kernel size (conv, pool); pad: conv
 * padding on every side; value: the name of the value it writes (NULL:
 * its node's). */
typedef struct layer {
    layer_kind kind;
    int n, k, pad;
    const char *value;
} layer;

/* input: the graph input, an image (N x C x H x W) or, with vector_input,
 * N x features. outputs: graph outputs in order, each a layer's value.
 * key_by_arch: the arch's name joins each parameter's init key (the
 * autoencoder's nets all have an fc1.weight, which must not start alike). */
typedef struct arch {
    const char *name;
    const char *input;
    int vector_input, key_by_arch;
    int n_outputs;
    const char *outputs[2];
    int n_layers;
    layer layers[MAX_LAYERS];
} arch;

#define CLASSIFIER(nm, nl, ...) \
    {nm, "input", 0, 0, 1, {"logits", NULL}, nl, __VA_ARGS__}

static const arch classifiers[] = {
    CLASSIFIER("lenet", 12,
               {{L_CONV, 6, 5, 2, 0}, {L_RELU, 0, 0, 0, 0}, {L_POOL, 0, 2, 0, 0},
                {L_CONV, 16, 5, 0, 0}, {L_RELU, 0, 0, 0, 0}, {L_POOL, 0, 2, 0, 0},
                {L_FLATTEN, 0, 0, 0, 0}, {L_FC, 120, 0, 0, 0}, {L_RELU, 0, 0, 0, 0},
                {L_FC, 84, 0, 0, 0}, {L_RELU, 0, 0, 0, 0}, {L_FC, 0, 0, 0, "logits"}}),
    CLASSIFIER("cnn", 10,
               {{L_CONV, 32, 3, 1, 0}, {L_RELU, 0, 0, 0, 0}, {L_POOL, 0, 2, 0, 0},
                {L_CONV, 64, 3, 1, 0}, {L_RELU, 0, 0, 0, 0}, {L_POOL, 0, 2, 0, 0},
                {L_FLATTEN, 0, 0, 0, 0}, {L_FC, 128, 0, 0, 0}, {L_RELU, 0, 0, 0, 0},
                {L_FC, 0, 0, 0, "logits"}}),
    CLASSIFIER("mlp", 4,
               {{L_FLATTEN, 0, 0, 0, 0}, {L_FC, 128, 0, 0, 0}, {L_RELU, 0, 0, 0, 0},
                {L_FC, 0, 0, 0, "logits"}}),
    CLASSIFIER("linear", 2, {{L_FLATTEN, 0, 0, 0, 0}, {L_FC, 0, 0, 0, "logits"}}),
};
#define N_CLASSIFIERS ((int)(sizeof classifiers / sizeof classifiers[0]))

/* Indexed by sm_train_aae_part. */
static const arch aae_nets[] = {
    {"aae-encoder", "image", 0, 1, 1, {"z", NULL}, 6,
     {{L_FLATTEN, 0, 0, 0, 0}, {L_FC, 1024, 0, 0, 0}, {L_LEAKY, 0, 0, 0, 0},
      {L_FC, 1024, 0, 0, 0}, {L_LEAKY, 0, 0, 0, 0}, {L_FC, 0, 0, 0, "z"}}},
    {"aae-decoder", "z", 1, 1, 1, {"image", NULL}, 7,
     {{L_FC, 1024, 0, 0, 0}, {L_LEAKY, 0, 0, 0, 0}, {L_FC, 1024, 0, 0, 0},
      {L_LEAKY, 0, 0, 0, 0}, {L_FC, 0, 0, 0, 0}, {L_TANH, 0, 0, 0, 0},
      {L_RESHAPE, 0, 0, 0, "image"}}},
    {"aae-discriminator", "z", 1, 1, 2, {"validity", "logit"}, 6,
     {{L_FC, 1024, 0, 0, 0}, {L_LEAKY, 0, 0, 0, 0}, {L_FC, 512, 0, 0, 0},
      {L_LEAKY, 0, 0, 0, 0}, {L_FC, 0, 0, 0, "logit"},
      {L_SIGMOID, 0, 0, 0, "validity"}}},
};
#define N_AAE_NETS ((int)(sizeof aae_nets / sizeof aae_nets[0]))

struct sm_train_net {
    arch a;                   /* a copy, with the hidden widths asked for */
    int channels, height, width;
    int in_features;          /* a vector input's width */
    int out;                  /* the last fc's width (0 in the table) */
    int feat[MAX_LAYERS];     /* each layer's output width; 0: an image */
    int n_params;
    char names[MAX_PARAMS][32];
    sm_tensor *params[MAX_PARAMS];
};

static void names_list(char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < N_CLASSIFIERS; i++)
        len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s%s",
                                i ? ", " : "", classifiers[i].name);
}

/* Uniform in +-1/sqrt(fan_in): PyTorch's default for Conv2d and Linear. */
static void init_uniform(sm_tensor *t, const arch *a, const char *name,
                         int64_t fan_in, uint64_t seed)
{
    uint64_t key = a->key_by_arch
        ? sm_rng_key(seed, (const char *const[]){"train-init", a->name, name, NULL})
        : sm_rng_key(seed, (const char *const[]){"train-init", name, NULL});
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
        init_uniform(net->params[i], &net->a, net->names[i], fan_in, seed);
    }
    return 0;
}

static int check_image(const char *name, int channels, int height, int width,
                       sm_err *err)
{
    if (channels != 1 && channels != 3)
        return sm_err_set(err, "%s: images must have 1 or 3 channels, not %d",
                          name, channels);
    if (height < 1 || width < 1 ||
        (int64_t)height * width > SM_IMAGE_MAX_PIXELS)
        return sm_err_set(err, "%s: bad input size %dx%d", name, height,
                          width);
    return 0;
}

/* A net of arch a: its parameters made and initialised layer by layer.
 * in_features: a vector input's width; out: the last fc's. hidden (may be
 * NULL): the widths of the fc layers before the last, in order. */
static sm_train_net *net_new(const arch *a, const int *hidden, int channels,
                             int height, int width, int in_features, int out,
                             uint64_t seed, sm_err *err)
{
    sm_train_net *net = calloc(1, sizeof *net);
    if (!net) {
        sm_err_set(err, "%s: out of memory", a->name);
        return NULL;
    }
    net->a = *a;
    net->channels = channels;
    net->height = height;
    net->width = width;
    net->in_features = in_features;
    net->out = out;
    int n_fc = 0, hid = 0;
    for (int l = 0; l < a->n_layers; l++)
        n_fc += a->layers[l].kind == L_FC;
    for (int l = 0; l < a->n_layers && hidden; l++)
        if (a->layers[l].kind == L_FC && ++hid < n_fc)
            net->a.layers[l].n = hidden[hid - 1];
    int64_t c = channels, h = height, w = width;
    int64_t features = a->vector_input ? in_features : 0;
    int n_conv = 0;
    n_fc = 0;
    for (int l = 0; l < a->n_layers; l++) {
        const layer *ly = &net->a.layers[l];
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
            int64_t n = ly->n ? ly->n : out;
            snprintf(prefix, sizeof prefix, "fc%d", ++n_fc);
            rc = add_params(net, prefix, 2, (int64_t[]){n, features},
                            features, seed);
            features = n;
            break;
        }
        case L_RESHAPE:
            features = 0; /* an image again */
            break;
        case L_RELU:
        case L_LEAKY:
        case L_TANH:
        case L_SIGMOID:
            break;
        }
        net->feat[l] = (int)features;
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

sm_train_net *sm_train_net_new(const char *arch_name, int channels, int height,
                               int width, int classes, uint64_t seed,
                               sm_err *err)
{
    const arch *a = NULL;
    for (int i = 0; i < N_CLASSIFIERS && arch_name; i++)
        if (strcmp(classifiers[i].name, arch_name) == 0)
            a = &classifiers[i];
    if (!a) {
        char list[128];
        names_list(list, sizeof list);
        sm_err_set(err, "unknown architecture '%s' (known: %s)",
                   arch_name ? arch_name : "", list);
        return NULL;
    }
    if (check_image(a->name, channels, height, width, err))
        return NULL;
    if (classes < 2) {
        sm_err_set(err, "%s: a classifier needs at least 2 classes, not %d",
                   a->name, classes);
        return NULL;
    }
    return net_new(a, NULL, channels, height, width, 0, classes, seed, err);
}

sm_train_net *sm_train_net_aae(sm_train_aae_part part, int channels,
                               int height, int width, int latent,
                               const int *hidden, uint64_t seed, sm_err *err)
{
    if ((int)part < 0 || (int)part >= N_AAE_NETS) {
        sm_err_set(err, "unknown autoencoder part %d", (int)part);
        return NULL;
    }
    const arch *a = &aae_nets[part];
    if (check_image(a->name, channels, height, width, err))
        return NULL;
    if (latent < 1 || latent > SM_TRAIN_MAX_WIDTH) {
        sm_err_set(err, "%s: latent must be 1..%d, not %d", a->name,
                   SM_TRAIN_MAX_WIDTH, latent);
        return NULL;
    }
    for (int i = 0; hidden && i < 2; i++)
        if (hidden[i] < 1 || hidden[i] > SM_TRAIN_MAX_WIDTH) {
            sm_err_set(err, "%s: hidden width %d must be 1..%d, not %d",
                       a->name, i + 1, SM_TRAIN_MAX_WIDTH, hidden[i]);
            return NULL;
        }
    int out = part == SM_TRAIN_AAE_ENCODER ? latent
            : part == SM_TRAIN_AAE_DECODER ? channels * height * width : 1;
    return net_new(a, hidden, channels, height, width, latent, out, seed,
                   err);
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

const char *sm_train_net_arch(const sm_train_net *net) { return net->a.name; }

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

sm_model *sm_train_net_model(const sm_train_net *net, int threads,
                             sm_err *err)
{
    size_t len;
    unsigned char *buf = sm_train_net_serialize(net, &len, err);
    if (!buf)
        return NULL;
    sm_model *m = sm_model_load_buffer(buf, len, net->a.name, err);
    free(buf);
    if (!m)
        return NULL;
    sm_model_set_trainable(m, 1);
    sm_model_set_threads(m, threads);
    if (sm_model_n_params(m) != net->n_params) {
        sm_err_set(err, "%s: the engine found %d of the net's %d parameters "
                   "(out of memory?)", net->a.name, sm_model_n_params(m),
                   net->n_params);
        sm_model_destroy(&m);
    }
    return m;
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
                              "the net's shape", net->a.name, net->names[i]);
        memcpy(dst->data, src->data,
               (size_t)sm_tensor_numel(dst) * sizeof(float));
    }
    return 0;
}

/* Graph output name's shape: an image, or N x the width of the layer that
 * writes it. */
static int output_shape(const sm_train_net *net, const char *name,
                        int64_t *shape)
{
    int feat = 0;
    for (int l = 0; l < net->a.n_layers; l++)
        if (net->a.layers[l].value && strcmp(net->a.layers[l].value, name) == 0)
            feat = net->feat[l];
    shape[0] = -1;
    if (feat) {
        shape[1] = feat;
        return 2;
    }
    shape[1] = net->channels;
    shape[2] = net->height;
    shape[3] = net->width;
    return 4;
}

/* A unary node of op_type named `<base><n>` (no number when n is 0). */
static int unary(sm_onnx_writer *w, const char *op_type, const char *base,
                 int n, const char *prev, const char *value, char *cur,
                 size_t cap)
{
    char node[24];
    if (n)
        snprintf(node, sizeof node, "%s%d", base, n);
    else
        snprintf(node, sizeof node, "%s", base);
    snprintf(cur, cap, "%s", value ? value : node);
    return sm_onnx_writer_node(w, op_type, node, (const char *[]){prev}, 1,
                               (const char *[]){cur}, 1);
}

/* The graph: values are named after the node that makes them unless the
 * layer names its value (the outputs). */
static sm_onnx_writer *build(const sm_train_net *net)
{
    sm_onnx_writer *w = sm_onnx_writer_new(OPSET);
    if (!w)
        return NULL;
    const arch *a = &net->a;
    int rc = a->vector_input
        ? sm_onnx_writer_input(w, a->input, 2,
                               (int64_t[]){-1, net->in_features})
        : sm_onnx_writer_input(w, a->input, 4,
                               (int64_t[]){-1, net->channels, net->height,
                                           net->width});
    for (int i = 0; i < net->n_params; i++)
        rc |= sm_onnx_writer_initializer(w, net->names[i], net->params[i]);
    for (int l = 0; l < a->n_layers; l++)
        if (a->layers[l].kind == L_RESHAPE) {
            int64_t dims[4] = {-1, net->channels, net->height, net->width};
            sm_tensor shape = {.ndim = 1, .shape = {4}, .i64 = dims};
            rc |= sm_onnx_writer_initializer(w, RESHAPE_SHAPE, &shape);
        }
    char prev[32], cur[32];
    snprintf(prev, sizeof prev, "%s", a->input);
    int n_conv = 0, n_fc = 0, n_relu = 0, n_pool = 0, n_leaky = 0;
    for (int l = 0; l < a->n_layers && !rc; l++) {
        const layer *ly = &a->layers[l];
        char wn[40], bn[40], node[16];
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
            rc |= unary(w, "Relu", "relu", ++n_relu, prev, ly->value, cur,
                        sizeof cur);
            break;
        case L_LEAKY:
            rc |= unary(w, "LeakyRelu", "leakyrelu", ++n_leaky, prev,
                        ly->value, cur, sizeof cur);
            rc |= sm_onnx_writer_attr_float(w, "alpha", LEAKY_ALPHA);
            break;
        case L_TANH:
            rc |= unary(w, "Tanh", "tanh", 0, prev, ly->value, cur, sizeof cur);
            break;
        case L_SIGMOID:
            rc |= unary(w, "Sigmoid", "sigmoid", 0, prev, ly->value, cur,
                        sizeof cur);
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
            rc |= unary(w, "Flatten", "flatten", 0, prev, ly->value, cur,
                        sizeof cur);
            rc |= sm_onnx_writer_attr_int(w, "axis", 1);
            break;
        case L_RESHAPE:
            snprintf(cur, sizeof cur, "%s", ly->value ? ly->value : "reshape");
            rc |= sm_onnx_writer_node(w, "Reshape", "reshape",
                                      (const char *[]){prev, RESHAPE_SHAPE}, 2,
                                      (const char *[]){cur}, 1);
            break;
        case L_FC:
            snprintf(node, sizeof node, "fc%d", ++n_fc);
            snprintf(wn, sizeof wn, "%s.weight", node);
            snprintf(bn, sizeof bn, "%s.bias", node);
            snprintf(cur, sizeof cur, "%s", ly->value ? ly->value : node);
            rc |= sm_onnx_writer_node(w, "Gemm", node,
                                      (const char *[]){prev, wn, bn}, 3,
                                      (const char *[]){cur}, 1);
            rc |= sm_onnx_writer_attr_int(w, "transB", 1);
            break;
        }
        memcpy(prev, cur, sizeof prev);
    }
    for (int o = 0; o < a->n_outputs; o++) {
        int64_t shape[4];
        int nd = output_shape(net, a->outputs[o], shape);
        rc |= sm_onnx_writer_output(w, a->outputs[o], nd, shape);
    }
    if (rc)
        sm_onnx_writer_destroy(&w);
    return w;
}

unsigned char *sm_train_net_serialize(const sm_train_net *net, size_t *len,
                                      sm_err *err)
{
    sm_onnx_writer *w = build(net);
    if (!w) {
        sm_err_set(err, "%s: out of memory building the ONNX graph", net->a.name);
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
