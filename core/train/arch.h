/* sm_train_net: the classifier architectures salmap trains, as an ONNX
 * graph (opset 13) with its weights.
 *
 * Every architecture reads `input` (N x C x H x W, N symbolic) and writes
 * `logits` (N x classes). Layers use PyTorch's names ("conv1.weight",
 * "fc3.bias") and its default initialisation: weights and biases uniform in
 * +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)), drawn from the
 * counter-based generator keyed by the seed and the parameter's name, so a
 * net is a pure function of (arch, sizes, classes, seed).
 *
 *   lenet   conv 6@5x5 pad 2, relu, maxpool 2, conv 16@5x5, relu, maxpool 2,
 *           fc 120, relu, fc 84, relu, fc classes          (inputs >= 12x12)
 *   cnn     conv 32@3x3 pad 1, relu, maxpool 2, conv 64@3x3 pad 1, relu,
 *           maxpool 2, fc 128, relu, fc classes            (inputs >= 4x4)
 *   mlp     fc 128, relu, fc classes
 *   linear  fc classes (softmax regression)
 *
 * No BatchNormalization: the engine would fold it into the conv at load. */
#ifndef SM_TRAIN_ARCH_H
#define SM_TRAIN_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "tensor/tensor.h"
#include "util/err.h"

typedef struct sm_train_net sm_train_net;

/* A freshly initialised net. NULL with a message for an unknown arch, a
 * channel count other than 1 or 3, fewer than 2 classes, or an input too
 * small for the arch's convolutions and pools. */
sm_train_net *sm_train_net_new(const char *arch, int channels, int height,
                               int width, int classes, uint64_t seed,
                               sm_err *err);

void sm_train_net_destroy(sm_train_net **net);

const char *sm_train_net_arch(const sm_train_net *net);
int sm_train_net_n_params(const sm_train_net *net);
const char *sm_train_net_param_name(const sm_train_net *net, int i);
const sm_tensor *sm_train_net_param(const sm_train_net *net, int i);
/* The number of trainable floats. */
int64_t sm_train_net_numel(const sm_train_net *net);

/* Copies the weights of a model loaded from this net (parameters matched by
 * name and shape) back into it, e.g. after training. 0 or -1. */
int sm_train_net_take(sm_train_net *net, sm_model *m, sm_err *err);

/* The ONNX model: a new buffer (caller frees), or written atomically. */
unsigned char *sm_train_net_serialize(const sm_train_net *net, size_t *len,
                                      sm_err *err);
int sm_train_net_save(const sm_train_net *net, const char *path, sm_err *err);

#endif
