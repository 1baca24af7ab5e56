/* Job files: a `salmap explain` run described in YAML (docs/EXPLAIN.md,
 * "Job files"), e.g. configs/explain-mnist.yaml:
 *
 *   model: models/mnist_cnn.onnx
 *   config: models/mnist_cnn.yaml    # optional
 *   dataset: data/mnist/test
 *   out: out/mnist
 *   methods: [sal, grad, intg, elrp]
 *   limit: 100                       # optional, as the command line's
 *   seed: 0                          #   options of the same names
 *   batch: 64
 *   target: predicted                # predicted | label | <class index>
 *   score: logit                     # logit | prob
 *   metrics: true                    # true | false
 *   metric_params:                   # optional, as --set metrics.<key>
 *     faithfulness_subsets: 100      #   (metrics.h)
 *     faithfulness_size: 0           #   0: the image's width
 *     sensitivity_samples: 0         #   0: max-sensitivity off
 *     sensitivity_radius: 0.02
 *   params:                          # optional: per method, per parameter
 *     intg: {steps: 100, method: riemann_middle}
 *   models:                          # optional: auxiliary models by name
 *     aae_decoder: models/mnist_aae_decoder.onnx
 *
 * Paths are used as written (relative ones against the current folder,
 * as on the command line). Each params entry becomes the setting
 * "method.key=value" that `--set` would give, checked by the method itself
 * at load. Unknown keys, wrong types and bad values are errors of the form
 * "<file>:<line>: <key>: <what>". */
#ifndef SM_JOBFILE_H
#define SM_JOBFILE_H

#include <stddef.h>

#include "explain/job.h"
#include "util/err.h"

/* Job files larger than this are refused. */
#define SM_JOBFILE_MAX_BYTES ((size_t)1 << 20)
#define SM_JOBFILE_MAX_METHODS 32
#define SM_JOBFILE_MAX_SETTINGS 256

typedef struct sm_jobfile sm_jobfile;

/* Loads and checks the file. 0 with *out set, or -1 with a message. */
int sm_jobfile_load(const char *path, sm_jobfile **out, sm_err *err);

/* The same from YAML text in memory; `name` stands for the file. */
int sm_jobfile_parse(const char *yaml, size_t len, const char *name,
                     sm_jobfile **out, sm_err *err);

/* The job the file describes (defaults where it is silent; progress on);
 * it, its strings and its settings stay valid until sm_jobfile_destroy. */
const sm_explain_job *sm_jobfile_job(const sm_jobfile *jf);

void sm_jobfile_destroy(sm_jobfile **jf);

/* A job's defaults: every image, seed 0, batch 64, the predicted class,
 * its logit, metrics and progress on. */
void sm_jobfile_defaults(sm_explain_job *job);

/* Sets the field `key` of job (limit, seed, batch, target, score, metrics,
 * or a metric parameter as "metrics.<name>") from text, by the rules the
 * command line's options of the same names (and --set metrics.<name>)
 * follow too. -1 with a message without the key ("must be logit or
 * prob, not 'x'"): the caller names the option or the file's line. */
int sm_jobfile_set_field(sm_explain_job *job, const char *key,
                         const char *value, sm_err *err);

#endif
