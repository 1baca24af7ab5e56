/* The model config: how to turn images into the model's input and how to
 * read its output. YAML, e.g. configs/mnist.yaml:
 *
 *   input: {channels: 1, height: 28, width: 28}   # required; channels 1|3
 *   scale: 0.00392156862745098   # optional, default 1/255, > 0
 *   mean: [0.0]                  # optional, one per channel, default 0
 *   std: [1.0]                   # optional, one per channel (> 0), default 1
 *   classes: ["0", "1", ...]     # optional, distinct names
 *   output: {name: logits, kind: logits}
 *                                # optional: which model output (default
 *                                # the first) and whether it holds logits
 *                                # or probabilities (default logits)
 *
 * Unknown keys, wrong types and out-of-range values are errors of the form
 * "<file>:<line>: <key>: <what>". docs/DATA.md has the details. */
#ifndef SM_MODEL_CONFIG_H
#define SM_MODEL_CONFIG_H

#include <stddef.h>

#include "data/image.h"
#include "util/err.h"

/* Configs larger than this are refused. */
#define SM_MODEL_CONFIG_MAX_BYTES ((size_t)1 << 20)

typedef enum sm_output_kind {
    SM_OUTPUT_LOGITS = 0,
    SM_OUTPUT_PROBABILITIES = 1,
} sm_output_kind;

/* A loaded config; read-only for users, freed by sm_model_config_destroy. */
typedef struct sm_model_config {
    char *source;               /* the file (or name) it came from */
    int channels, height, width;
    float scale;
    float mean[3], std[3];      /* channels entries used */
    int n_classes;              /* 0 when the config names no classes */
    char **classes;
    char *output_name;          /* NULL: the model's first output */
    sm_output_kind output_kind;
} sm_model_config;

sm_model_config *sm_model_config_load(const char *path, sm_err *err);

/* The same from YAML text in memory (e.g. shipped over the wire); `name`
 * stands for the file in messages. */
sm_model_config *sm_model_config_parse(const char *yaml, size_t len,
                                       const char *name, sm_err *err);

void sm_model_config_destroy(sm_model_config **cfg);

/* The preprocessing the config describes. */
void sm_model_config_preproc(const sm_model_config *cfg, sm_preproc *pp);

/* "logits" or "probabilities". */
const char *sm_output_kind_name(sm_output_kind kind);

#endif
