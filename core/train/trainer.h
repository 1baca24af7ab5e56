/* sm_trainer: trains a classifier of train/arch.h on an in-memory set
 * (train/set.h) with the engine's own backward pass.
 *
 * Loss: mean cross-entropy of softmax(logits) over a mini-batch, so the
 * backward seed is (softmax - onehot) / batch. Optimizers as PyTorch's
 * (train/optim.h): SGD with momentum (v = mu v + g; w -= lr v) or Adam
 * (beta1 0.9, beta2 0.999, eps 1e-8, bias-corrected); weight decay adds wd * w to every
 * gradient (weights and biases). Learning rate constant, or cosine-annealed
 * to zero over the run's steps.
 *
 * Deterministic: the initial weights come from the seed, the epoch e order
 * is a Fisher-Yates shuffle keyed by (seed, e), and the engine's sums are in
 * a fixed order for a given thread count; the same seed, options, data and
 * thread count give the same bytes (on the same machine and BLAS).
 * The caller pairs threads > 1 with a single-threaded BLAS
 * (openblas_set_num_threads(1); model/model.h). */
#ifndef SM_TRAINER_H
#define SM_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "config/model_config.h"
#include "model/model.h"
#include "train/arch.h"
#include "train/set.h"
#include "util/err.h"

typedef enum { SM_TRAIN_ADAM, SM_TRAIN_SGD } sm_train_optimizer;
typedef enum { SM_TRAIN_CONSTANT, SM_TRAIN_COSINE } sm_train_schedule;

typedef struct sm_train_opts {
    const char *arch;         /* train/arch.h */
    int epochs;               /* >= 1 */
    uint64_t seed;
    int batch;                /* images per step (default 64) */
    sm_train_optimizer optimizer; /* default Adam */
    double lr;                /* default: sm_train_default_lr(optimizer) */
    double momentum;          /* SGD, 0 <= mu < 1 (default 0.9) */
    double weight_decay;      /* >= 0 (default 0) */
    sm_train_schedule schedule; /* default constant */
    int threads;              /* engine threads (default 1) */
} sm_train_opts;

/* The defaults above (arch NULL, epochs 0: both must be set). */
void sm_train_opts_init(sm_train_opts *o);

/* Adam 1e-3, SGD 0.05. */
double sm_train_default_lr(sm_train_optimizer opt);

/* 0, or -1 naming the first bad option. */
int sm_train_opts_check(const sm_train_opts *o, sm_err *err);

typedef struct sm_trainer sm_trainer;

/* A new net of o->arch for images of c x h x w and n_classes classes,
 * initialised from o->seed, loaded into the engine as trainable. NULL with
 * a message on bad options (sm_train_opts_check) or sizes. */
sm_trainer *sm_trainer_new(const sm_train_opts *o, int c, int h, int w,
                           int n_classes, sm_err *err);

void sm_trainer_destroy(sm_trainer **t);

/* The model being trained (borrowed): its parameters are the weights. */
sm_model *sm_trainer_model(sm_trainer *t);

/* One optimizer step on n images (x: n x c x h x w) with labels in
 * 0..n_classes-1, at the current learning rate. loss and correct (may be
 * NULL) receive the batch's mean loss and number of right predictions
 * before the step. 0 or -1. */
int sm_trainer_step(sm_trainer *t, const float *x, const int *labels, int n,
                    double *loss, int *correct, sm_err *err);

/* Progress after each step of an epoch: running means over the epoch. */
typedef struct sm_train_progress {
    int epoch, epochs;        /* 1-based */
    size_t seen, total;       /* images of this epoch */
    double loss, accuracy;
} sm_train_progress;
typedef void (*sm_train_progress_fn)(const sm_train_progress *p, void *ctx);

/* The next epoch (at most o->epochs): every image of set once, shuffled,
 * in batches of o->batch (the last may be smaller). progress may be NULL.
 * The set must match the trainer's image size and classes. loss and
 * accuracy (may be NULL) receive the epoch's means. 0 or -1. */
int sm_trainer_epoch(sm_trainer *t, const sm_train_set *set,
                     sm_train_progress_fn progress, void *ctx, double *loss,
                     double *accuracy, sm_err *err);

/* Mean loss and accuracy of the current weights on set (no update). */
int sm_trainer_evaluate(sm_trainer *t, const sm_train_set *set, double *loss,
                        double *accuracy, sm_err *err);

/* Writes the trained model to onnx_path (the net's graph with the current
 * weights) and its model config to sm_train_config_path(onnx_path): cfg's
 * preprocessing (defaults when cfg is NULL), the given class names and
 * output `logits`. Each file is written atomically. 0 or -1. */
int sm_trainer_save(sm_trainer *t, const char *onnx_path,
                    const sm_model_config *cfg, const char *const *classes,
                    sm_err *err);

/* The config's path for a model's: its .onnx extension replaced by .yaml
 * (appended when there is none). Into buf (cap bytes); -1 if too long. */
int sm_train_config_path(const char *onnx_path, char *buf, size_t cap);

#endif
