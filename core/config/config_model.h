/* Binding a model config to a loaded model: the default config of a model
 * that comes without one, and the check that a config fits its model. */
#ifndef SM_CONFIG_MODEL_H
#define SM_CONFIG_MODEL_H

#include "config/model_config.h"
#include "data/dataset.h"
#include "model/model.h"

/* The config a model gets without one: its declared input size (it must be
 * N x C x H x W with C 1 or 3), pixels scaled to [0, 1], no mean/std, its
 * first output as logits. NULL with a message when the model's input does
 * not say enough. */
sm_model_config *sm_model_config_for_model(const sm_model *m,
                                           const char *model_name, sm_err *err);

/* 0 when the model has one input of rank 4 whose declared channels, height
 * and width (where not symbolic) are the config's, and the config's output
 * name (if any) is one of the model's outputs; otherwise -1 with a message
 * naming both files. *out_index receives the output to read. */
int sm_model_config_bind(const sm_model_config *cfg, const sm_model *m,
                         const char *model_name, int *out_index, sm_err *err);

/* The name of model output class j: the config's class name, else (a
 * config without classes) the dataset's, else j written into buf. */
const char *sm_class_name(const sm_model_config *cfg, const sm_dataset *ds,
                          int j, char *buf, size_t cap);

/* The model output class of a class name (a dataset label): its index among
 * the config's classes, else (no classes in the config) among the
 * dataset's; -1 when it is not there. */
int sm_class_index(const sm_model_config *cfg, const sm_dataset *ds,
                   const char *name);

#endif
