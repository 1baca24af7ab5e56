/* sm_optim: the optimizers of salmap's trainers (train/trainer.h, the
 * classifier; train/aae.h, the adversarial autoencoder), over every
 * parameter of a trainable sm_model, as PyTorch's:
 *
 *   SGD   v = mu v + g;  w -= lr v
 *   Adam  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *         w -= lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *
 * with g the model's parameter gradient (sm_model_param_grad) plus
 * weight_decay * w (weights and biases alike). */
#ifndef SM_TRAIN_OPTIM_H
#define SM_TRAIN_OPTIM_H

#include <stdint.h>

#include "model/model.h"
#include "util/err.h"

typedef enum { SM_OPTIM_ADAM, SM_OPTIM_SGD } sm_optim_kind;

typedef struct sm_optim_opts {
    sm_optim_kind kind;
    double lr;            /* > 0: the rate a step uses unless told another */
    double beta1, beta2;  /* Adam, in [0, 1) (0.9, 0.999) */
    double eps;           /* Adam, > 0 (1e-8) */
    double momentum;      /* SGD, in [0, 1) (0.9) */
    double weight_decay;  /* >= 0 (0) */
} sm_optim_opts;

/* The defaults above, lr sm_optim_default_lr(kind). */
void sm_optim_opts_init(sm_optim_opts *o, sm_optim_kind kind);

/* Adam 1e-3, SGD 0.05. */
double sm_optim_default_lr(sm_optim_kind kind);

/* 0, or -1 naming the first bad option. */
int sm_optim_opts_check(const sm_optim_opts *o, sm_err *err);

typedef struct sm_optim sm_optim;

/* An optimizer of m's parameters (m trainable: sm_model_set_trainable),
 * its moments at zero. m is borrowed and must outlive it. NULL with a
 * message (bad options, out of memory). */
sm_optim *sm_optim_new(sm_model *m, const sm_optim_opts *o, sm_err *err);

void sm_optim_destroy(sm_optim **o);

/* One update of every parameter from the gradients the model's last
 * backward left, at learning rate lr. */
void sm_optim_step(sm_optim *o, double lr);

/* Steps taken. */
int64_t sm_optim_steps(const sm_optim *o);

/* Training drives gradients and Adam's second moments into denormal
 * floats, which x86 computes on up to 100 times slower: a trainer flushes
 * them to zero (FTZ, DAZ) while it computes, and restores the caller's
 * mode after. The engine's lane threads start inside that window and
 * inherit it. Returns the mode to restore. */
unsigned sm_optim_flush_denormals(void);
void sm_optim_restore_denormals(unsigned old);

#endif
