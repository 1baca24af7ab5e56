/* sm_train_net: the nets salmap trains, as an ONNX graph (opset 13) with
 * their weights: the classifiers of `salmap train` and the three nets of
 * the adversarial autoencoder (train/aae.h).
 *
 * Every classifier reads `input` (N x C x H x W, N symbolic) and writes
 * `logits` (N x classes). Layers use PyTorch's names ("conv1.weight",
 * "fc3.bias") and its default initialisation: weights and biases uniform in
 * +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)), drawn from the
 * counter-based generator keyed by the seed and the parameter's name (and,
 * for the autoencoder's nets, which share names, the net's), so a net is a
 * pure function of (arch, sizes, classes, seed).
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

/* A freshly initialised classifier. NULL with a message for an unknown
 * arch, a channel count other than 1 or 3, fewer than 2 classes, or an
 * input too small for the arch's convolutions and pools. */
sm_train_net *sm_train_net_new(const char *arch, int channels, int height,
                               int width, int classes, uint64_t seed,
                               sm_err *err);

/* The adversarial autoencoder's nets (ABELE), dense, LeakyReLU 0.2 after
 * each hidden layer, images in [-1, 1]:
 *
 *   aae-encoder        image (N x C x H x W) -> flatten, fc h1, fc h2,
 *                      fc latent -> z (N x latent)
 *   aae-decoder        z (N x latent) -> fc h1, fc h2, fc C*H*W, tanh,
 *                      reshape -> image (N x C x H x W)
 *   aae-discriminator  z (N x latent) -> fc h1, fc h2, fc 1 -> logit;
 *                      outputs validity = sigmoid(logit) (first), logit
 *
 * hidden: the widths h1, h2 (NULL: 1024, 1024 for the encoder and decoder;
 * 1024, 512 for the discriminator). NULL with a message for channels other
 * than 1 or 3, a latent or width outside 1..SM_TRAIN_MAX_WIDTH, or a bad
 * image size. */
typedef enum sm_train_aae_part {
    SM_TRAIN_AAE_ENCODER,
    SM_TRAIN_AAE_DECODER,
    SM_TRAIN_AAE_DISCRIMINATOR,
} sm_train_aae_part;
#define SM_TRAIN_MAX_WIDTH 65536
sm_train_net *sm_train_net_aae(sm_train_aae_part part, int channels,
                               int height, int width, int latent,
                               const int *hidden, uint64_t seed, sm_err *err);

void sm_train_net_destroy(sm_train_net **net);

const char *sm_train_net_arch(const sm_train_net *net);
int sm_train_net_n_params(const sm_train_net *net);
const char *sm_train_net_param_name(const sm_train_net *net, int i);
const sm_tensor *sm_train_net_param(const sm_train_net *net, int i);
/* The number of trainable floats. */
int64_t sm_train_net_numel(const sm_train_net *net);

/* The net in the engine, through its own ONNX bytes (so the trained graph
 * is exactly the one saved), trainable, with `threads` lanes. NULL with a
 * message. */
sm_model *sm_train_net_model(const sm_train_net *net, int threads,
                             sm_err *err);

/* Copies the weights of a model loaded from this net (parameters matched by
 * name and shape) back into it, e.g. after training. 0 or -1. */
int sm_train_net_take(sm_train_net *net, sm_model *m, sm_err *err);

/* The ONNX model: a new buffer (caller frees), or written atomically. */
unsigned char *sm_train_net_serialize(const sm_train_net *net, size_t *len,
                                      sm_err *err);
int sm_train_net_save(const sm_train_net *net, const char *path, sm_err *err);

#endif
