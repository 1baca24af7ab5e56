#include "train/aae.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/score.h"
#include "train/optim.h"
#include "util/rng.h"

#define EVAL_BATCH 256
#define ENC SM_TRAIN_AAE_ENCODER
#define DEC SM_TRAIN_AAE_DECODER
#define DIS SM_TRAIN_AAE_DISCRIMINATOR

static const char *const part_names[3] = {"encoder", "decoder",
                                          "discriminator"};

struct sm_aae_trainer {
    sm_aae_opts o;
    int c, h, w;
    size_t per;               /* floats per image */
    sm_train_net *net[3];     /* indexed by sm_train_aae_part */
    sm_model *m[3];
    sm_optim *opt[3];
    int d_logit;              /* the discriminator's output `logit` */
    int steps;
    float *xb;                /* batch x per: the next batch */
    float *xn;                /* batch x per: xb with noise (noise > 0) */
    float *zd;                /* 2 batch x latent: encoded, then real */
    float *zr;                /* batch x latent: the step's prior draws */
    float *gd;                /* 2 batch: the seed of D's logits */
    float *gx;                /* batch x per: dL/dx^ */
    float *gz;                /* batch x latent: dL/dz */
    size_t *order;            /* the pass's order of the set */
    size_t order_n, pos;
    int pass;
    char source[256];         /* the set trained on */
};

void sm_aae_opts_init(sm_aae_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 256;
    o->lr = 2e-4;
    o->beta1 = 0.5;
    o->mse_weight = 0.999;
    o->adv_weight = 0.001;
    o->threads = 1;
    o->hidden[0] = o->hidden[1] = 1024;
    o->d_hidden[0] = 1024;
    o->d_hidden[1] = 512;
}

/* Adam as ABELE's: the given lr and beta1, beta2 0.999, eps 1e-8. */
static void adam_opts(const sm_aae_opts *o, sm_optim_opts *p)
{
    sm_optim_opts_init(p, SM_OPTIM_ADAM);
    p->lr = o->lr;
    p->beta1 = o->beta1;
}

int sm_aae_opts_check(const sm_aae_opts *o, sm_err *err)
{
    if (o->latent < 1 || o->latent > SM_AAE_MAX_LATENT)
        return sm_err_set(err, "latent must be 1..%d, not %d",
                          SM_AAE_MAX_LATENT, o->latent);
    if (o->steps < 1)
        return sm_err_set(err, "steps must be at least 1, not %d", o->steps);
    if (o->batch < 1)
        return sm_err_set(err, "batch must be at least 1, not %d", o->batch);
    sm_optim_opts p;
    adam_opts(o, &p);
    if (sm_optim_opts_check(&p, err))
        return -1;
    if (!(o->mse_weight >= 0 && o->adv_weight >= 0) ||
        !isfinite(o->mse_weight + o->adv_weight) ||
        !(o->mse_weight + o->adv_weight > 0))
        return sm_err_set(err, "loss weights must be >= 0 and not both 0, "
                          "not %g and %g", o->mse_weight, o->adv_weight);
    if (o->threads < 1 || o->threads > SM_MODEL_MAX_THREADS)
        return sm_err_set(err, "threads must be 1..%d, not %d",
                          SM_MODEL_MAX_THREADS, o->threads);
    if (!(o->noise >= 0 && o->noise <= 1))
        return sm_err_set(err, "noise must be in [0, 1], not %g", o->noise);
    if (o->shift < 0 || o->shift > SM_AAE_MAX_SHIFT)
        return sm_err_set(err, "shift must be 0..%d pixels, not %d",
                          SM_AAE_MAX_SHIFT, o->shift);
    return 0;
}

void sm_aae_trainer_destroy(sm_aae_trainer **tp)
{
    sm_aae_trainer *t = tp ? *tp : NULL;
    if (!t)
        return;
    for (int p = 0; p < 3; p++) {
        sm_optim_destroy(&t->opt[p]);
        sm_model_destroy(&t->m[p]);
        sm_train_net_destroy(&t->net[p]);
    }
    free(t->xb);
    free(t->xn);
    free(t->zd);
    free(t->zr);
    free(t->gd);
    free(t->gx);
    free(t->gz);
    free(t->order);
    free(t);
    *tp = NULL;
}

sm_aae_trainer *sm_aae_trainer_new(const sm_aae_opts *o, int c, int h, int w,
                                   sm_err *err)
{
    if (sm_aae_opts_check(o, err))
        return NULL;
    if (o->shift >= h || o->shift >= w) {
        sm_err_set(err, "shift %d must be less than the images' sides "
                   "(%dx%d)", o->shift, h, w);
        return NULL;
    }
    sm_aae_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    t->o = *o;
    t->c = c;
    t->h = h;
    t->w = w;
    t->per = (size_t)c * (size_t)h * (size_t)w;
    snprintf(t->source, sizeof t->source, "memory");
    sm_optim_opts p;
    adam_opts(o, &p);
    for (int k = 0; k < 3; k++)
        if (!(t->net[k] = sm_train_net_aae((sm_train_aae_part)k, c, h, w,
                                           o->latent,
                                           k == DIS ? o->d_hidden : o->hidden,
                                           o->seed, err)) ||
            !(t->m[k] = sm_train_net_model(t->net[k], o->threads, err)) ||
            !(t->opt[k] = sm_optim_new(t->m[k], &p, err)))
            goto fail;
    t->d_logit = sm_model_output_index(t->m[DIS], "logit");
    size_t b = (size_t)o->batch, lat = (size_t)o->latent;
    t->xb = malloc(b * t->per * sizeof(float));
    t->zd = malloc(2 * b * lat * sizeof(float));
    t->zr = malloc(b * lat * sizeof(float));
    t->gd = malloc(2 * b * sizeof(float));
    t->gx = malloc(b * t->per * sizeof(float));
    t->gz = malloc(b * lat * sizeof(float));
    if (o->noise > 0)
        t->xn = malloc(b * t->per * sizeof(float));
    if (!t->xb || (o->noise > 0 && !t->xn) || !t->zd || !t->zr || !t->gd || !t->gx || !t->gz) {
        sm_err_set(err, "autoencoder: out of memory for batches of %d", o->batch);
        goto fail;
    }
    return t;
fail:
    sm_aae_trainer_destroy(&t);
    return NULL;
}

sm_model *sm_aae_trainer_model(sm_aae_trainer *t, sm_train_aae_part part)
{
    return (int)part >= 0 && (int)part < 3 ? t->m[part] : NULL;
}

int sm_aae_trainer_steps(const sm_aae_trainer *t) { return t->steps; }

/* A stream per step, as the prior's: the key names the step. */
static uint64_t step_key(uint64_t seed, const char *name, int64_t step)
{
    char s[24];
    snprintf(s, sizeof s, "%lld", (long long)step);
    return sm_rng_key(seed, (const char *const[]){name, s, NULL});
}

void sm_aae_shift_draw(uint64_t seed, int64_t step, int r, int shift,
                       int *dx, int *dy)
{
    *dx = *dy = 0;
    if (shift <= 0)
        return;
    uint64_t key = step_key(seed, "aae-shift", step), k = 2 * (uint64_t)shift + 1;
    /* The modulo's bias is below 2^-59 for these small k. */
    *dx = (int)(sm_rng_u64(key, 2 * (uint64_t)r) % k) - shift;
    *dy = (int)(sm_rng_u64(key, 2 * (uint64_t)r + 1) % k) - shift;
}

void sm_aae_translate(const float *src, int c, int h, int w, int dx, int dy,
                      float fill, float *dst)
{
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++) {
            float *row = dst + ((size_t)ch * h + y) * w;
            int sy = y - dy;
            for (int x = 0; x < w; x++) {
                int sx = x - dx;
                row[x] = sy >= 0 && sy < h && sx >= 0 && sx < w
                       ? src[((size_t)ch * h + sy) * w + sx] : fill;
            }
        }
}

void sm_aae_prior(uint64_t seed, int64_t step, int n, int latent, float *z)
{
    uint64_t key = step_key(seed, "aae-prior", step);
    for (size_t j = 0; j < (size_t)n * (size_t)latent; j++)
        z[j] = (float)sm_rng_normal(key, j);
}

/* The mean over n logits l of BCE-with-logits, softplus(l) - y l, the
 * labels y 0 for rows below ones_from and 1 from it; with seed, scale times
 * its gradient, (sigmoid(l) - y) / n, into seed. */
static double bce_logits(const float *l, int n, int ones_from, double scale,
                         float *seed)
{
    double total = 0;
    for (int r = 0; r < n; r++) {
        double x = l[r], y = r >= ones_from;
        double e = exp(-fabs(x)); /* never overflows */
        total += (x > 0 ? x : 0) + log1p(e) - y * x;
        if (seed) {
            double sig = x >= 0 ? 1 / (1 + e) : e / (1 + e);
            seed[r] = (float)(scale * (sig - y) / n);
        }
    }
    return total / n;
}

/* D's logits for n rows of z. */
static const sm_tensor *d_logits(sm_aae_trainer *t, const float *z, int n,
                                 sm_err *err)
{
    sm_tensor in = {.ndim = 2, .shape = {n, t->o.latent}, .data = (float *)z};
    const sm_tensor *ins[1] = {&in}, *outs[2];
    if (sm_model_run(t->m[DIS], ins, 1, outs, err))
        return NULL;
    return outs[t->d_logit];
}

/* Backward through part's last run from output `out` seeded with seed
 * (shaped as rows x cols, or an image batch); the input's gradient, or
 * NULL. */
static const sm_tensor *back(sm_aae_trainer *t, int part, int out,
                             float *seed, int rows, int image, sm_err *err)
{
    sm_tensor s = {.ndim = image ? 4 : 2, .data = seed};
    s.shape[0] = rows;
    if (image) {
        s.shape[1] = t->c;
        s.shape[2] = t->h;
        s.shape[3] = t->w;
    } else {
        s.shape[1] = out == t->d_logit && part == DIS ? 1 : t->o.latent;
    }
    const sm_tensor *g[1];
    if (sm_model_backward(t->m[part], out, &s, g, err))
        return NULL;
    return g[0];
}

static int check_n(const sm_aae_trainer *t, int n, sm_err *err)
{
    if (n < 1 || n > t->o.batch)
        return sm_err_set(err, "autoencoder: a step takes 1..%d images, not "
                          "%d", t->o.batch, n);
    return 0;
}

/* (a): the encoder run on x (its z kept in zd's first n rows), D on those
 * and z_real. */
static int d_half(sm_aae_trainer *t, const float *x, const float *z_real,
                  int n, int grad, double *loss, sm_err *err)
{
    size_t nz = (size_t)n * (size_t)t->o.latent;
    const sm_tensor *z = sm_model_forward(t->m[ENC], x, n, err);
    if (!z)
        return -1;
    memcpy(t->zd, z->data, nz * sizeof(float));
    memcpy(t->zd + nz, z_real, nz * sizeof(float));
    const sm_tensor *l = d_logits(t, t->zd, 2 * n, err);
    if (!l)
        return -1;
    double dl = bce_logits(l->data, 2 * n, n, 1.0, grad ? t->gd : NULL);
    if (loss)
        *loss = dl;
    return grad && !back(t, DIS, t->d_logit, t->gd, 2 * n, 0, err) ? -1 : 0;
}

/* (b). encoded: the encoder's last run was on x with its current weights
 * and zd holds its z (after d_half), so it need not run again. */
static int ae_half(sm_aae_trainer *t, const float *x, int n, int grad,
                   int encoded, double *mse, double *adv, sm_err *err)
{
    const sm_aae_opts *o = &t->o;
    size_t nz = (size_t)n * (size_t)o->latent, nx = (size_t)n * t->per;
    if (!encoded) {
        const sm_tensor *z = sm_model_forward(t->m[ENC], x, n, err);
        if (!z)
            return -1;
        memcpy(t->zd, z->data, nz * sizeof(float));
    }
    const sm_tensor *xh = sm_model_forward(t->m[DEC], t->zd, n, err);
    if (!xh)
        return -1;
    double sq = 0, k = o->mse_weight * 2 / (double)nx;
    for (size_t j = 0; j < nx; j++) {
        double d = (double)xh->data[j] - x[j];
        sq += d * d;
        t->gx[j] = (float)(k * d);
    }
    if (mse)
        *mse = sq / (double)nx;
    const sm_tensor *l = d_logits(t, t->zd, n, err);
    if (!l)
        return -1;
    double a = bce_logits(l->data, n, 0, o->adv_weight, grad ? t->gd : NULL);
    if (adv)
        *adv = a;
    if (!grad)
        return 0;
    /* dL/dz: the decoder's part plus D's, then back through the encoder. */
    const sm_tensor *g = back(t, DEC, 0, t->gx, n, 1, err);
    if (!g)
        return -1;
    memcpy(t->gz, g->data, nz * sizeof(float));
    if (!(g = back(t, DIS, t->d_logit, t->gd, n, 0, err)))
        return -1;
    for (size_t j = 0; j < nz; j++)
        t->gz[j] += g->data[j];
    return back(t, ENC, 0, t->gz, n, 0, err) ? 0 : -1;
}

int sm_aae_trainer_d_loss(sm_aae_trainer *t, const float *x,
                          const float *z_real, int n, int grad,
                          double *d_loss, sm_err *err)
{
    if (check_n(t, n, err))
        return -1;
    unsigned mode = sm_optim_flush_denormals();
    int rc = d_half(t, x, z_real, n, grad, d_loss, err);
    sm_optim_restore_denormals(mode);
    return rc;
}

int sm_aae_trainer_ae_loss(sm_aae_trainer *t, const float *x, int n,
                           int grad, double *mse, double *adv, sm_err *err)
{
    if (check_n(t, n, err))
        return -1;
    unsigned mode = sm_optim_flush_denormals();
    int rc = ae_half(t, x, n, grad, 0, mse, adv, err);
    sm_optim_restore_denormals(mode);
    return rc;
}

/* A step whose encoder reads xin and whose reconstruction is measured
 * against x (the same but for the denoising option). */
static int step_on(sm_aae_trainer *t, const float *xin, const float *x, int n,
                   sm_aae_losses *losses, sm_err *err)
{
    if (check_n(t, n, err))
        return -1;
    sm_aae_losses l;
    unsigned mode = sm_optim_flush_denormals();
    sm_aae_prior(t->o.seed, t->steps, n, t->o.latent, t->zr);
    int rc = d_half(t, xin, t->zr, n, 1, &l.d_loss, err);
    if (rc == 0) {
        sm_optim_step(t->opt[DIS], t->o.lr);
        rc = ae_half(t, x, n, 1, 1, &l.mse, &l.adv, err);
    }
    if (rc == 0) {
        sm_optim_step(t->opt[ENC], t->o.lr);
        sm_optim_step(t->opt[DEC], t->o.lr);
        t->steps++;
        if (losses)
            *losses = l;
    }
    sm_optim_restore_denormals(mode);
    return rc ? sm_err_prefix(err, "step %d", t->steps + 1) : 0;
}

int sm_aae_trainer_step(sm_aae_trainer *t, const float *x, int n,
                        sm_aae_losses *losses, sm_err *err)
{
    return step_on(t, x, x, n, losses, err);
}

int sm_aae_trainer_next(sm_aae_trainer *t, const sm_train_set *set,
                        sm_aae_losses *losses, sm_err *err)
{
    if (t->steps >= t->o.steps)
        return sm_err_set(err, "autoencoder: all %d steps are done",
                          t->o.steps);
    int c, h, w;
    sm_train_set_shape(set, &c, &h, &w);
    size_t n = sm_train_set_count(set), b = (size_t)t->o.batch;
    if (c != t->c || h != t->h || w != t->w)
        return sm_err_set(err, "%s: images are %dx%dx%d, the autoencoder's "
                          "%dx%dx%d", sm_train_set_source(set), c, h, w, t->c,
                          t->h, t->w);
    if (n < b)
        return sm_err_set(err, "%s: %zu images, fewer than a batch of %zu",
                          sm_train_set_source(set), n, b);
    if (t->order_n != n) {
        free(t->order);
        t->order_n = 0;
        if (!(t->order = malloc(n * sizeof(size_t))))
            return sm_err_set(err, "%s: out of memory",
                              sm_train_set_source(set));
        t->order_n = n;
        t->pos = n; /* a new pass first */
    }
    if (t->pos + b > n) {
        sm_train_shuffle(t->order, n, t->o.seed, t->pass++);
        t->pos = 0;
    }
    for (size_t r = 0; r < b; r++) {
        const float *img = sm_train_set_image(set, t->order[t->pos + r]);
        int dx, dy;
        sm_aae_shift_draw(t->o.seed, t->steps, (int)r, t->o.shift, &dx, &dy);
        sm_aae_translate(img, t->c, t->h, t->w, dx, dy, -1.0f,
                         t->xb + r * t->per);
    }
    t->pos += b;
    snprintf(t->source, sizeof t->source, "%s", sm_train_set_source(set));
    if (!(t->o.noise > 0))
        return sm_aae_trainer_step(t, t->xb, (int)b, losses, err);
    uint64_t key = step_key(t->o.seed, "aae-noise", t->steps);
    for (size_t j = 0; j < b * t->per; j++)
        t->xn[j] = t->xb[j] + (float)(t->o.noise * sm_rng_normal(key, j));
    return step_on(t, t->xn, t->xb, (int)b, losses, err);
}

int sm_aae_trainer_save(sm_aae_trainer *t, const char *yaml_path,
                        const sm_aae_config *in, sm_err *err)
{
    char paths[3][4096];
    sm_aae_config cfg = {0};
    if (in)
        cfg = *in; /* its strings borrowed */
    for (int p = 0; p < 3; p++) {
        if (sm_aae_config_net_path(yaml_path, part_names[p], paths[p],
                                   sizeof paths[p]))
            return sm_err_set(err, "%s: path too long", yaml_path);
        if (sm_train_net_take(t->net[p], t->m[p], err) ||
            sm_train_net_save(t->net[p], paths[p], err))
            return -1;
    }
    cfg.latent = t->o.latent;
    cfg.channels = t->c;
    cfg.height = t->h;
    cfg.width = t->w;
    cfg.encoder = paths[ENC];
    cfg.decoder = paths[DEC];
    cfg.discriminator = paths[DIS];
    cfg.has_train = 1;
    cfg.train = (sm_aae_train_info){
        .dataset = t->source, .steps = t->steps, .batch = t->o.batch,
        .lr = t->o.lr, .beta1 = t->o.beta1, .seed = t->o.seed,
        .threads = t->o.threads, .shift = t->o.shift,
        .noise = t->o.noise};
    return sm_aae_config_save(&cfg, yaml_path, err);
}

/* Pixels (t + 1) / 2 * 255 of n images in [-1, 1] preprocessed by pp. */
static void to_classifier(const float *t, size_t n, const sm_preproc *pp,
                          float *x)
{
    size_t hw = (size_t)pp->height * (size_t)pp->width;
    size_t per = (size_t)pp->channels * hw;
    for (size_t j = 0; j < n * per; j++) {
        size_t ch = j % per / hw;
        float pixel = (t[j] + 1.0f) * 127.5f;
        x[j] = (pixel * pp->scale - pp->mean[ch]) / pp->std[ch];
    }
}

/* The classifier's labels of nb images x (in [-1, 1]) into label. */
static int classify(const sm_model_scoring *s, const float *x, int nb,
                    const sm_preproc *pp, float *buf, const int *zeros,
                    int *label, sm_err *err)
{
    to_classifier(x, (size_t)nb, pp, buf);
    sm_tensor in = {.ndim = 4, .shape = {nb, pp->channels, pp->height,
                                         pp->width}, .data = buf};
    const sm_tensor *y = sm_model_class_scores(s, &in, zeros, err);
    if (!y)
        return -1;
    for (int r = 0; r < nb; r++)
        label[r] = (int)sm_model_argmax_row(y->data + (size_t)r * (size_t)y->shape[1],
                                            y->shape[1]);
    return 0;
}

int sm_aae_evaluate(sm_model *enc, sm_model *dec, sm_model *classifier,
                    int out, const sm_preproc *pp, const sm_train_set *set,
                    double *mse, double *agreement, sm_err *err)
{
    int c, h, w;
    sm_train_set_shape(set, &c, &h, &w);
    if (classifier && (pp->channels != c || pp->height != h || pp->width != w))
        return sm_err_set(err, "%s: images are %dx%dx%d, the classifier's "
                          "%dx%dx%d", sm_train_set_source(set), c, h, w,
                          pp->channels, pp->height, pp->width);
    size_t n = sm_train_set_count(set), per = (size_t)c * h * w;
    float *buf = malloc(EVAL_BATCH * per * sizeof(float));
    int zeros[EVAL_BATCH] = {0}, la[EVAL_BATCH], lb[EVAL_BATCH];
    if (!buf)
        return sm_err_set(err, "%s: out of memory", sm_train_set_source(set));
    sm_model_scoring s = {.model = classifier, .output = out, .forward_only = 1};
    double sq = 0;
    size_t agree = 0;
    int rc = 0;
    unsigned mode = sm_optim_flush_denormals();
    for (size_t i = 0; i < n && rc == 0; i += EVAL_BATCH) {
        int nb = (int)(n - i < EVAL_BATCH ? n - i : EVAL_BATCH);
        const float *x = sm_train_set_image(set, i); /* contiguous */
        const sm_tensor *z = sm_model_forward(enc, x, nb, err);
        const sm_tensor *xh = z ? sm_model_forward(dec, z->data, nb, err) : NULL;
        if (!xh || sm_tensor_numel(xh) != (int64_t)((size_t)nb * per)) {
            rc = xh ? sm_err_set(err, "the decoder's images are not the "
                                 "set's %dx%dx%d", c, h, w) : -1;
            break;
        }
        for (size_t j = 0; j < (size_t)nb * per; j++) {
            double d = (double)xh->data[j] - x[j];
            sq += d * d;
        }
        if (classifier) {
            rc = classify(&s, x, nb, pp, buf, zeros, la, err) ||
                 classify(&s, xh->data, nb, pp, buf, zeros, lb, err);
            for (int r = 0; r < nb && rc == 0; r++)
                agree += la[r] == lb[r];
        }
    }
    sm_optim_restore_denormals(mode);
    free(buf);
    if (rc)
        return sm_err_prefix(err, "%s", sm_train_set_source(set));
    if (mse)
        *mse = sq / ((double)n * (double)per);
    if (agreement)
        *agreement = classifier ? (double)agree / (double)n : 0;
    return 0;
}
