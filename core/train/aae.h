/* sm_aae_trainer: the adversarial autoencoder of ABELE (Guidotti et al.),
 * trained with the engine's own backward pass: an encoder of images to a
 * latent vector z, a decoder back, and a discriminator that tells encoded
 * images from draws of the prior N(0, I) (the nets: train/arch.h).
 *
 * Images are in [-1, 1] (t = 2 * pixel / 255 - 1: load them with scale
 * 2/255, mean 1, std 1). One step on a batch x of n images:
 *
 *   (a) the discriminator: z_fake = enc(x) and n draws z_real of the prior;
 *       d_loss = the mean over the 2n rows of BCE(D's logit, label), real 1
 *       and fake 0; Adam on D's parameters alone;
 *   (b) the autoencoder: z = enc(x), x^ = dec(z); mse = the mean of
 *       (x^ - x)^2 over every value, adv = the mean of BCE(D(z), 1);
 *       loss = mse_weight * mse + adv_weight * adv, its gradient back
 *       through the decoder and, for dL/dz, through D (whose own gradients
 *       are not applied), the two summed into the encoder's; Adam on the
 *       encoder's and decoder's parameters.
 *
 * BCE works on the logit l (BCE-with-logits, stable): softplus(l) - y l,
 * with d/dl = sigmoid(l) - y.
 *
 * Deterministic: the initial weights come from the seed, pass p's batch
 * order is train/set.h's shuffle keyed by (seed, p), step s's prior draws
 * are keyed by (seed, s); the same seed, options, data and thread count
 * give the same bytes (on the same machine and BLAS). Pair threads > 1
 * with a single-threaded BLAS (openblas_set_num_threads(1)). */
#ifndef SM_TRAIN_AAE_H
#define SM_TRAIN_AAE_H

#include <stdint.h>

#include "config/aae_config.h"
#include "data/image.h"
#include "model/model.h"
#include "train/arch.h"
#include "train/set.h"
#include "util/err.h"

typedef struct sm_aae_opts {
    int latent;               /* 1..SM_AAE_MAX_LATENT (MNIST 4, Fashion 8) */
    int steps;                /* >= 1 */
    int batch;                /* images per step (default 256) */
    double lr, beta1;         /* Adam (2e-4, 0.5; beta2 0.999, eps 1e-8) */
    double mse_weight, adv_weight; /* >= 0, not both 0 (0.999, 0.001) */
    uint64_t seed;
    int threads;              /* engine threads (default 1) */
    int hidden[2];            /* encoder and decoder widths (1024, 1024) */
    int d_hidden[2];          /* discriminator widths (1024, 512) */
    int shift;                /* augmentation: sm_aae_trainer_next moves
                                 each image by up to +-shift pixels in x
                                 and y (0: none; at most SM_AAE_MAX_SHIFT
                                 and less than the image's sides) */
    double noise;             /* denoising: sm_aae_trainer_next's encoder
                                 reads each value plus noise * N(0, 1), the
                                 reconstruction is measured against the
                                 value (0: none; at most 1) */
} sm_aae_opts;

/* The defaults above (latent and steps 0: both must be set). */
void sm_aae_opts_init(sm_aae_opts *o);

/* 0, or -1 naming the first bad option. */
int sm_aae_opts_check(const sm_aae_opts *o, sm_err *err);

typedef struct sm_aae_trainer sm_aae_trainer;

/* New nets for images of c x h x w, initialised from o->seed, loaded into
 * the engine as trainable. NULL with a message. */
sm_aae_trainer *sm_aae_trainer_new(const sm_aae_opts *o, int c, int h, int w,
                                   sm_err *err);

void sm_aae_trainer_destroy(sm_aae_trainer **t);

/* A net being trained (borrowed): its parameters are the weights. */
sm_model *sm_aae_trainer_model(sm_aae_trainer *t, sm_train_aae_part part);

/* Steps taken. */
int sm_aae_trainer_steps(const sm_aae_trainer *t);

typedef struct sm_aae_losses {
    double d_loss;            /* (a)'s, before its update */
    double mse, adv;          /* (b)'s, before its update */
} sm_aae_losses;

/* One step on n images (x: n x c x h x w, in [-1, 1]; 1 <= n <= batch),
 * the prior drawn for the step's number. losses may be NULL. 0 or -1. */
int sm_aae_trainer_step(sm_aae_trainer *t, const float *x, int n,
                        sm_aae_losses *losses, sm_err *err);

/* The next step (at most o->steps) on the next full batch of set: batches
 * follow each pass's shuffle, and a pass's last images short of a batch
 * wait for the next pass (every step sees `batch` images). With o->shift,
 * the batch's row r is its image translated by sm_aae_shift_draw(seed,
 * step, r) (against overfitting a small set); with o->noise, the encoder
 * reads value j of the batch plus noise * sm_rng_normal(key, j), key =
 * sm_rng_key(seed, {"aae-noise", the step's number in decimal}), and the
 * reconstruction is measured against the batch. The set must hold images
 * of the trainer's size, at least a batch of them. 0 or -1. */
int sm_aae_trainer_next(sm_aae_trainer *t, const sm_train_set *set,
                        sm_aae_losses *losses, sm_err *err);

/* The halves of a step without their updates, as the step computes them
 * (for checks): (a) on n encoded images of x and the n rows of z_real
 * (n x latent), d_loss into *d_loss; (b) on x, mse and adv. With grad set,
 * the gradients of d_loss (D's parameters), and of mse_weight * mse +
 * adv_weight * adv (the encoder's and decoder's), are left in the models'
 * parameter gradients (sm_model_param_grad). 0 or -1. */
int sm_aae_trainer_d_loss(sm_aae_trainer *t, const float *x,
                          const float *z_real, int n, int grad,
                          double *d_loss, sm_err *err);
int sm_aae_trainer_ae_loss(sm_aae_trainer *t, const float *x, int n,
                           int grad, double *mse, double *adv, sm_err *err);

/* The translation of row r of step `step`'s batch: dx and dy, each
 * uniform in -shift..shift, keyed by (seed, step) (shift 0: both 0). */
void sm_aae_shift_draw(uint64_t seed, int64_t step, int r, int shift,
                       int *dx, int *dy);

/* src (c x h x w) translated by dx columns right and dy rows down into dst
 * (not src): dst(y, x) = src(y - dy, x - dx), and `fill` where that falls
 * outside src (-1, pixel 0: MNIST's background). */
void sm_aae_translate(const float *src, int c, int h, int w, int dx, int dy,
                      float fill, float *dst);

/* Step `step`'s draws of the prior N(0, I): n x latent values into z. */
void sm_aae_prior(uint64_t seed, int64_t step, int n, int latent, float *z);

/* Writes the three nets to sm_aae_config_net_path(yaml_path, part) and the
 * YAML at yaml_path, each atomically: cfg's classifier, train dataset and
 * test block (may be NULL: none), with the trainer's latent, image size,
 * nets and options (steps: those taken). 0 or -1. */
int sm_aae_trainer_save(sm_aae_trainer *t, const char *yaml_path,
                        const sm_aae_config *cfg, sm_err *err);

/* The reconstruction of set's images (in [-1, 1]) through enc and dec:
 * *mse, the mean squared error over every value, and, with a classifier
 * (may be NULL), *agreement, the share of images whose reconstruction it
 * labels as it labels the image (argmax of its output `out`), both read as
 * pixels (t + 1) / 2 * 255 preprocessed by pp. 0 or -1. */
int sm_aae_evaluate(sm_model *enc, sm_model *dec, sm_model *classifier,
                    int out, const sm_preproc *pp, const sm_train_set *set,
                    double *mse, double *agreement, sm_err *err);

#endif
