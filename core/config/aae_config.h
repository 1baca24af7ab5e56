/* The adversarial autoencoder's file: what `salmap train-aae` writes beside
 * its three ONNX nets (docs/TRAINING.md) and what reads them back. YAML:
 *
 *   aae:
 *     latent: 4                           # required, 1..SM_AAE_MAX_LATENT
 *     input: {channels: 1, height: 28, width: 28}   # required; channels 1|3
 *     range: [-1, 1]                      # optional; the only pixel space:
 *                                         # t = 2 * pixel / 255 - 1
 *     encoder: mnist_aae_encoder.onnx     # required, the three nets, each
 *     decoder: mnist_aae_decoder.onnx     # relative to the YAML's folder
 *     discriminator: mnist_aae_discriminator.onnx   # (or absolute); they
 *                                         # must exist
 *     classifier: mnist_cnn.onnx          # optional: the classifier it serves
 *     train: {dataset: D, steps: 5000, batch: 256, lr: 0.0002, beta1: 0.5,
 *             seed: 1, threads: 2, shift: 2, noise: 0.3}   # optional;
 *                                         # all keys but shift and noise
 *                                         # (0) when given
 *     test: {dataset: T, mse: 0.05, agreement: 0.93}   # optional, likewise
 *
 * Unknown keys, wrong types and out-of-range values are errors of the form
 * "<file>:<line>: <key>: <what>" (config/yaml_strict.h). */
#ifndef SM_AAE_CONFIG_H
#define SM_AAE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "util/err.h"

#define SM_AAE_MAX_LATENT 65536
#define SM_AAE_MAX_SHIFT 8        /* train-aae's --shift, pixels */

typedef struct sm_aae_train_info {
    char *dataset;
    int steps, batch;
    double lr, beta1;
    uint64_t seed;
    int threads;
    int shift;         /* optional in the YAML (0 when absent), written
                          only when not 0 */
    double noise;      /* likewise, in [0, 1] */
} sm_aae_train_info;

typedef struct sm_aae_test_info {
    char *dataset;
    double mse;        /* mean squared reconstruction error in [-1, 1] */
    double agreement;  /* share of images whose reconstruction the
                          classifier labels as the image, in [0, 1] */
} sm_aae_test_info;

/* A loaded config; free with sm_aae_config_free. */
typedef struct sm_aae_config {
    char *source;                 /* the YAML's path */
    int latent;
    int channels, height, width;
    char *encoder, *decoder, *discriminator; /* paths, resolved */
    char *classifier;             /* as written; NULL when absent */
    int has_train, has_test;
    sm_aae_train_info train;
    sm_aae_test_info test;
} sm_aae_config;

/* Reads path into *cfg (zeroed first). 0, or -1 with a message naming the
 * file (and the line and key when the fault is in the text); cfg then holds
 * nothing to free. */
int sm_aae_config_load(const char *path, sm_aae_config *cfg, sm_err *err);

/* Frees what cfg holds and zeroes it. */
void sm_aae_config_free(sm_aae_config *cfg);

/* cfg as YAML text (a new string, caller frees; NULL when out of memory),
 * the nets and the classifier by their file names: the nets live in the
 * YAML's folder. */
char *sm_aae_config_yaml(const sm_aae_config *cfg);

/* Writes sm_aae_config_yaml(cfg) to path atomically. 0 or -1. */
int sm_aae_config_save(const sm_aae_config *cfg, const char *path,
                       sm_err *err);

/* The path of net `part` ("encoder", "decoder", "discriminator") of the
 * YAML at yaml_path: its path without ".yaml", then "_<part>.onnx"
 * ("models/mnist_aae.yaml" -> "models/mnist_aae_encoder.onnx"). Into buf
 * (cap bytes); -1 if too long. */
int sm_aae_config_net_path(const char *yaml_path, const char *part,
                           char *buf, size_t cap);

/* The three nets of a config, loaded. */
typedef struct sm_aae_models {
    sm_model *encoder, *decoder, *discriminator;
} sm_aae_models;

/* Loads cfg's nets and checks each on a one-image batch: the encoder maps
 * a C x H x W image to `latent` values, the decoder those back to an
 * image, the discriminator to one value (its first output, the validity).
 * 0, or -1 with a message naming the YAML and the net; m then holds
 * nothing. */
int sm_aae_config_models(const sm_aae_config *cfg, sm_aae_models *m,
                         sm_err *err);

void sm_aae_models_free(sm_aae_models *m);

#endif
