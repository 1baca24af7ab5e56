/* The adversarial autoencoder (core/train/aae.c, arch.c's nets,
 * config/aae_config.c, `salmap train-aae`): the nets against a forward pass
 * computed here, their gradients and those of the losses against central
 * finite differences, a step against its two halves and Adam's first step
 * by hand, learning, determinism, the saved files and their YAML, the
 * evaluation by hand, the shift augmentation, and the refusals. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/aae_config.h"
#include "model/model.h"
#include "tdata.h"
#include "tmodel.h"
#include "train/aae.h"
#include "train/arch.h"
#include "train/set.h"
#include "util/file.h"
#include "util/rng.h"

TDATA_SUITE(aae);

#define ENC SM_TRAIN_AAE_ENCODER
#define DEC SM_TRAIN_AAE_DECODER
#define DIS SM_TRAIN_AAE_DISCRIMINATOR

static const char *const two[] = {"a", "b"};

/* n values uniform in [-1, 1) from stream (seed, name). */
static void uniform(float *x, size_t n, uint64_t seed, const char *name)
{
    uint64_t key = sm_rng_key(seed, (const char *const[]){"test-aae", name, NULL});
    for (size_t j = 0; j < n; j++)
        x[j] = (float)(2 * sm_rng_uniform(key, j) - 1);
}

static sm_tensor *param(sm_model *m, const char *name)
{
    for (int i = 0; i < sm_model_n_params(m); i++)
        if (strcmp(sm_model_param_name(m, i), name) == 0)
            return sm_model_param(m, i);
    cr_assert_fail("no parameter %s", name);
    return NULL;
}

static double softplus(double x) { return fmax(x, 0) + log1p(exp(-fabs(x))); }

enum { A_NONE, A_LEAKY, A_TANH };

/* y = act(W x + b) for one row, from m's parameters fc<k>, in double. */
static void dense(sm_model *m, int k, const double *x, double *y, int act)
{
    char wn[16], bn[16];
    snprintf(wn, sizeof wn, "fc%d.weight", k);
    snprintf(bn, sizeof bn, "fc%d.bias", k);
    const sm_tensor *w = param(m, wn), *b = param(m, bn);
    int64_t out = w->shape[0], in = w->shape[1];
    for (int64_t o = 0; o < out; o++) {
        double s = b->data[o];
        for (int64_t i = 0; i < in; i++)
            s += (double)w->data[o * in + i] * x[i];
        y[o] = act == A_LEAKY ? (s > 0 ? s : 0.2 * s) : act == A_TANH ? tanh(s) : s;
    }
}

/* The three-layer net m on one row x (in values) by hand: the last layer's
 * output (before any sigmoid) into y. */
static void by_hand(sm_model *m, const float *x, int in, double *y, int last_act)
{
    double a[1024], h1[64], h2[64];
    cr_assert(in <= 1024);
    for (int i = 0; i < in; i++)
        a[i] = x[i];
    dense(m, 1, a, h1, A_LEAKY);
    dense(m, 2, h1, h2, A_LEAKY);
    dense(m, 3, h2, y, last_act);
}

static sm_model *small_net(sm_train_aae_part part, int c, int h, int w,
                           int latent, const int *hidden)
{
    sm_err err = {0};
    sm_train_net *net = sm_train_net_aae(part, c, h, w, latent, hidden, 9, &err);
    cr_assert_not_null(net, "%s", err.msg);
    sm_model *m = sm_train_net_model(net, 1, &err);
    cr_assert_not_null(m, "%s", err.msg);
    sm_train_net_destroy(&net);
    return m;
}

/* The nets compute flatten, fc, LeakyReLU 0.2, fc, LeakyReLU, fc, then
 * tanh and the reshape (decoder) or the sigmoid (discriminator), with the
 * declared inputs and outputs; the shipped sizes have the expected
 * parameters, and the encoder's and decoder's fc2 start apart. */
Test(aae, nets_compute_their_layers)
{
    const int c = 1, h = 4, w = 3, lat = 3, hid[2] = {7, 5}, n = 2;
    sm_err err = {0};
    float x[2 * 12], z[2 * 3];
    uniform(x, 24, 1, "x");
    uniform(z, 6, 1, "z");
    int64_t shape[SM_MAX_DIMS];

    sm_model *e = small_net(ENC, c, h, w, lat, hid);
    cr_assert_str_eq(sm_model_input_name(e, 0), "image");
    cr_assert_eq(sm_model_input_shape(e, 0, shape), 4);
    cr_assert(shape[0] == -1 && shape[1] == 1 && shape[2] == 4 && shape[3] == 3);
    cr_assert_eq(sm_model_n_outputs(e), 1);
    cr_assert_str_eq(sm_model_output_name(e, 0), "z");
    cr_assert_eq(sm_model_n_params(e), 6);
    cr_assert(sm_shape_equal(param(e, "fc1.weight")->ndim, param(e, "fc1.weight")->shape,
                             2, (int64_t[]){7, 12}));
    const sm_tensor *y = sm_model_forward(e, x, n, &err);
    cr_assert_not_null(y, "%s", err.msg);
    cr_assert(y->ndim == 2 && y->shape[0] == n && y->shape[1] == lat);
    for (int r = 0; r < n; r++) {
        double want[3];
        by_hand(e, x + r * 12, 12, want, A_NONE);
        for (int j = 0; j < lat; j++)
            cr_assert_float_eq(y->data[r * lat + j], want[j], 1e-5, "z[%d][%d]", r, j);
    }

    sm_model *d = small_net(DEC, c, h, w, lat, hid);
    cr_assert_str_eq(sm_model_input_name(d, 0), "z");
    cr_assert_eq(sm_model_input_shape(d, 0, shape), 2);
    cr_assert(shape[0] == -1 && shape[1] == lat);
    cr_assert_str_eq(sm_model_output_name(d, 0), "image");
    cr_assert_eq(sm_model_n_params(d), 6, "the reshape's shape is no parameter");
    y = sm_model_forward(d, z, n, &err);
    cr_assert_not_null(y, "%s", err.msg);
    cr_assert(sm_shape_equal(y->ndim, y->shape, 4, (int64_t[]){n, 1, 4, 3}));
    for (int r = 0; r < n; r++) {
        double want[12];
        by_hand(d, z + r * lat, lat, want, A_TANH);
        for (int j = 0; j < 12; j++)
            cr_assert_float_eq(y->data[r * 12 + j], want[j], 1e-5, "image %d value %d", r, j);
    }

    sm_model *s = small_net(DIS, c, h, w, lat, hid);
    cr_assert_eq(sm_model_n_outputs(s), 2);
    cr_assert_str_eq(sm_model_output_name(s, 0), "validity");
    cr_assert_str_eq(sm_model_output_name(s, 1), "logit");
    sm_tensor in = {.ndim = 2, .shape = {n, lat}, .data = z};
    const sm_tensor *ins[1] = {&in}, *outs[2];
    cr_assert_eq(sm_model_run(s, ins, 1, outs, &err), 0, "%s", err.msg);
    for (int r = 0; r < n; r++) {
        double l;
        by_hand(s, z + r * lat, lat, &l, A_NONE);
        cr_assert_float_eq(outs[1]->data[r], l, 1e-5);
        cr_assert_float_eq(outs[0]->data[r], 1 / (1 + exp(-l)), 1e-6);
    }
    sm_model_destroy(&e);
    sm_model_destroy(&d);
    sm_model_destroy(&s);

    /* The shipped sizes: 784-1024-1024-4, 4-1024-1024-784, 4-1024-512-1. */
    static const int64_t numel[3] = {
        784 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 4 + 4,
        4 * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 784 + 784,
        4 * 1024 + 1024 + 1024 * 512 + 512 + 512 + 1};
    sm_train_net *net[3];
    for (int p = 0; p < 3; p++) {
        net[p] = sm_train_net_aae((sm_train_aae_part)p, 1, 28, 28, 4, NULL, 1, &err);
        cr_assert_not_null(net[p], "%s", err.msg);
        cr_assert_eq(sm_train_net_numel(net[p]), numel[p], "part %d: %lld", p,
                     (long long)sm_train_net_numel(net[p]));
    }
    const sm_tensor *fe = sm_train_net_param(net[ENC], 2), *fd = sm_train_net_param(net[DEC], 2);
    cr_assert_str_eq(sm_train_net_param_name(net[ENC], 2), "fc2.weight");
    cr_assert(sm_shape_equal(fe->ndim, fe->shape, fd->ndim, fd->shape));
    cr_assert_neq(memcmp(fe->data, fd->data, 64 * sizeof(float)), 0,
                  "the nets' fc2 start alike");
    double bound = 1 / sqrt(1024.0), lo = 0, hi = 0;
    for (int64_t j = 0; j < sm_tensor_numel(fe); j++) {
        lo = fmin(lo, fe->data[j]);
        hi = fmax(hi, fe->data[j]);
    }
    cr_assert(lo >= -bound && hi <= bound && hi - lo > bound, "[%g, %g]", lo, hi);
    for (int p = 0; p < 3; p++)
        sm_train_net_destroy(&net[p]);

    cr_assert_null(sm_train_net_aae(ENC, 1, 28, 28, 0, NULL, 1, &err));
    cr_assert(tdata_has(err.msg, "aae-encoder: latent must be 1..65536, not 0"), "%s", err.msg);
    cr_assert_null(sm_train_net_aae(DEC, 2, 28, 28, 4, NULL, 1, &err));
    cr_assert(tdata_has(err.msg, "aae-decoder: images must have 1 or 3 channels, not 2"),
              "%s", err.msg);
    cr_assert_null(sm_train_net_aae(DIS, 1, 28, 28, 4, (const int[]){8, 0}, 1, &err));
    cr_assert(tdata_has(err.msg, "aae-discriminator: hidden width 2"), "%s", err.msg);
}

/* L = sum(seed * output `out`) against central differences in every input
 * value and 5 values of each parameter; returns the worst
 * |fd - g| / max(1, |g|). */
static double net_fd(sm_model *m, float *x, int n, int out)
{
    sm_err err = {0};
    sm_tensor in = {.data = x};
    int64_t shape[SM_MAX_DIMS];
    int nd = sm_model_input_shape(m, 0, shape);
    in.ndim = nd;
    in.shape[0] = n;
    for (int k = 1; k < nd; k++)
        in.shape[k] = shape[k];
    const sm_tensor *ins[1] = {&in}, *outs[2], *g[1];
    cr_assert_eq(sm_model_run(m, ins, 1, outs, &err), 0, "%s", err.msg);
    sm_tensor *seed = sm_tensor_new(outs[out]->ndim, outs[out]->shape);
    uniform(seed->data, (size_t)sm_tensor_numel(seed), 2, "seed");
    cr_assert_eq(sm_model_backward(m, out, seed, g, &err), 0, "%s", err.msg);
    sm_tensor *gx = sm_tensor_clone(g[0]);
    int np = sm_model_n_params(m);
    sm_tensor *gp[8];
    for (int i = 0; i < np; i++)
        gp[i] = sm_tensor_clone(sm_model_param_grad(m, i));
    const double eps = 1e-3;
    double worst = 0;
    /* One value v of the input or a parameter, and its gradient. */
#define FD(v, gv)                                                              \
    do {                                                                       \
        float keep = (v);                                                      \
        double l[2];                                                           \
        for (int side = 0; side < 2; side++) {                                 \
            (v) = keep + (float)(side ? -eps : eps);                           \
            cr_assert_eq(sm_model_run(m, ins, 1, outs, &err), 0, "%s", err.msg); \
            l[side] = 0;                                                       \
            for (int64_t q = 0; q < sm_tensor_numel(seed); q++)                \
                l[side] += (double)seed->data[q] * outs[out]->data[q];         \
        }                                                                      \
        (v) = keep;                                                            \
        double fd = (l[0] - l[1]) / (2 * eps), gg = (gv);                      \
        worst = fmax(worst, fabs(fd - gg) / fmax(1.0, fabs(gg)));              \
    } while (0)
    for (int64_t j = 0; j < sm_tensor_numel(gx); j++)
        FD(x[j], gx->data[j]);
    for (int i = 0; i < np; i++) {
        sm_tensor *p = sm_model_param(m, i);
        uint64_t key = sm_rng_key(3, (const char *const[]){sm_model_param_name(m, i), NULL});
        for (int s = 0; s < 5; s++) {
            int64_t j = (int64_t)(sm_rng_u64(key, (uint64_t)s) % (uint64_t)sm_tensor_numel(p));
            FD(p->data[j], gp[i]->data[j]);
        }
        sm_tensor_destroy(&gp[i]);
    }
#undef FD
    sm_tensor_destroy(&gx);
    sm_tensor_destroy(&seed);
    return worst;
}

/* The engine's gradients through every layer of the three nets
 * (LeakyRelu, Tanh, Reshape, Sigmoid, Flatten, Gemm), inputs and
 * parameters, against central differences. */
Test(aae, net_gradients_match_finite_differences)
{
    const int hid[2] = {6, 5}, lat = 3, n = 3;
    float x[3 * 12], z[3 * 3];
    uniform(x, 36, 4, "x");
    uniform(z, 9, 4, "z");
    for (int j = 0; j < 9; j++)
        z[j] *= 2; /* the prior's spread */
    sm_model *e = small_net(ENC, 1, 4, 3, lat, hid);
    sm_model *d = small_net(DEC, 1, 4, 3, lat, hid);
    sm_model *s = small_net(DIS, 1, 4, 3, lat, hid);
    double we = net_fd(e, x, n, 0), wd = net_fd(d, z, n, 0);
    double wv = net_fd(s, z, n, 0), wl = net_fd(s, z, n, 1);
    cr_assert(we < 5e-3, "encoder: off by %g", we);
    cr_assert(wd < 5e-3, "decoder: off by %g", wd);
    cr_assert(wv < 5e-3, "discriminator validity: off by %g", wv);
    cr_assert(wl < 5e-3, "discriminator logit: off by %g", wl);
    sm_model_destroy(&e);
    sm_model_destroy(&d);
    sm_model_destroy(&s);
}

static sm_aae_opts small_opts(uint64_t seed)
{
    sm_aae_opts o;
    sm_aae_opts_init(&o);
    o.latent = 2;
    o.steps = 100;
    o.batch = 4;
    o.lr = 1e-3;
    o.seed = seed;
    o.hidden[0] = 6;
    o.hidden[1] = 5;
    o.d_hidden[0] = 5;
    o.d_hidden[1] = 4;
    return o;
}

static sm_aae_trainer *trainer(const sm_aae_opts *o, int c, int h, int w)
{
    sm_err err = {0};
    sm_aae_trainer *t = sm_aae_trainer_new(o, c, h, w, &err);
    cr_assert_not_null(t, "%s", err.msg);
    return t;
}

/* The losses against their formulas computed here from the nets' outputs,
 * and their gradients in every net's parameters against central
 * differences of the losses: the BCE-with-logits and MSE seeds, dL/dz
 * summed from the decoder and the discriminator. */
Test(aae, loss_gradients_match_finite_differences)
{
    sm_aae_opts o = small_opts(5);
    o.mse_weight = 0.6; /* both terms count */
    o.adv_weight = 0.4;
    sm_aae_trainer *t = trainer(&o, 1, 3, 3);
    const int n = 4, lat = 2;
    float x[4 * 9], zr[4 * 2];
    uniform(x, 36, 6, "x");
    sm_aae_prior(5, 0, n, lat, zr);
    sm_err err = {0};
    sm_model *m[3];
    for (int p = 0; p < 3; p++)
        m[p] = sm_aae_trainer_model(t, (sm_train_aae_part)p);

    /* By hand: z, x^, D's logits of z and of the prior draws. */
    const sm_tensor *y = sm_model_forward(m[ENC], x, n, &err);
    cr_assert_not_null(y, "%s", err.msg);
    float z[8];
    memcpy(z, y->data, sizeof z);
    y = sm_model_forward(m[DEC], z, n, &err);
    cr_assert_not_null(y, "%s", err.msg);
    double mse = 0, adv = 0, dl = 0;
    for (int j = 0; j < 36; j++)
        mse += ((double)y->data[j] - x[j]) * ((double)y->data[j] - x[j]) / 36;
    for (int r = 0; r < n; r++) {
        double lf, lr;
        by_hand(m[DIS], z + r * lat, lat, &lf, A_NONE);
        by_hand(m[DIS], zr + r * lat, lat, &lr, A_NONE);
        adv += softplus(-lf) / n;               /* BCE(D(z), 1) */
        dl += (softplus(lf) + softplus(-lr)) / (2 * n); /* fake 0, real 1 */
    }
    double got_mse, got_adv, got_dl;
    cr_assert_eq(sm_aae_trainer_ae_loss(t, x, n, 1, &got_mse, &got_adv, &err), 0, "%s", err.msg);
    cr_assert_float_eq(got_mse, mse, 1e-6 * mse);
    cr_assert_float_eq(got_adv, adv, 1e-5 * adv);
    sm_tensor *g[3][6];
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < 6; i++)
            g[p][i] = sm_tensor_clone(sm_model_param_grad(m[p], i));
    cr_assert_eq(sm_aae_trainer_d_loss(t, x, zr, n, 1, &got_dl, &err), 0, "%s", err.msg);
    cr_assert_float_eq(got_dl, dl, 1e-5 * dl);
    for (int i = 0; i < 6; i++)
        g[DIS][i] = sm_tensor_clone(sm_model_param_grad(m[DIS], i));

    const double eps = 1e-2;
    int big = 0; /* gradients well above the tolerance's floor */
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < 6; i++) {
            sm_tensor *w = sm_model_param(m[p], i);
            uint64_t key = sm_rng_key(7, (const char *const[]){sm_model_param_name(m[p], i), NULL});
            for (int s = 0; s < 4; s++) {
                int64_t j = (int64_t)(sm_rng_u64(key, (uint64_t)(s + 10 * p)) %
                                      (uint64_t)sm_tensor_numel(w));
                float keep = w->data[j];
                double l[2];
                for (int side = 0; side < 2; side++) {
                    w->data[j] = keep + (float)(side ? -eps : eps);
                    double a, b;
                    if (p == DIS) {
                        cr_assert_eq(sm_aae_trainer_d_loss(t, x, zr, n, 0, &a, &err), 0);
                        l[side] = a;
                    } else {
                        cr_assert_eq(sm_aae_trainer_ae_loss(t, x, n, 0, &a, &b, &err), 0);
                        l[side] = o.mse_weight * a + o.adv_weight * b;
                    }
                }
                w->data[j] = keep;
                double fd = (l[0] - l[1]) / (2 * eps), gj = g[p][i]->data[j];
                /* the gradients are small: relative, over the differences' noise */
                cr_assert(fabs(fd - gj) <= 2e-2 * fabs(gj) + 1e-6, "%d %s[%lld]: backward "
                          "%g, differences %g", p, sm_model_param_name(m[p], i),
                          (long long)j, gj, fd);
                big += fabs(gj) > 1e-4;
            }
            sm_tensor_destroy(&g[p][i]);
        }
    cr_assert_gt(big, 36, "%d of 72 gradients above 1e-4", big);
    sm_aae_trainer_destroy(&t);
}

/* w -= lr g / (|g| + eps): Adam's first step (bias-corrected m = g,
 * v = g^2), on every parameter of m. */
static void adam_first_step(sm_model *m, double lr)
{
    for (int i = 0; i < sm_model_n_params(m); i++) {
        sm_tensor *w = sm_model_param(m, i);
        const float *g = sm_model_param_grad(m, i)->data;
        for (int64_t j = 0; j < sm_tensor_numel(w); j++)
            w->data[j] = (float)(w->data[j] - lr * g[j] / (fabs(g[j]) + 1e-8));
    }
}

/* One step is the discriminator's half with the step's prior draws and an
 * Adam step of D alone, then the autoencoder's half and an Adam step of
 * the encoder and decoder: D's gradients of the second half are not
 * applied. */
Test(aae, a_step_is_its_two_halves)
{
    sm_aae_opts o = small_opts(11);
    sm_aae_trainer *a = trainer(&o, 1, 3, 3), *b = trainer(&o, 1, 3, 3);
    const int n = 4;
    float x[36], zr[8];
    uniform(x, 36, 12, "x");
    sm_err err = {0};
    sm_aae_losses l;
    cr_assert_eq(sm_aae_trainer_step(a, x, n, &l, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_aae_trainer_steps(a), 1);

    sm_aae_prior(11, 0, n, 2, zr);
    double dl, mse, adv;
    cr_assert_eq(sm_aae_trainer_d_loss(b, x, zr, n, 1, &dl, &err), 0, "%s", err.msg);
    adam_first_step(sm_aae_trainer_model(b, DIS), o.lr);
    cr_assert_eq(sm_aae_trainer_ae_loss(b, x, n, 1, &mse, &adv, &err), 0, "%s", err.msg);
    adam_first_step(sm_aae_trainer_model(b, ENC), o.lr);
    adam_first_step(sm_aae_trainer_model(b, DEC), o.lr);
    /* adv reads D after its step, by hand here to the float's last bits */
    cr_assert(l.d_loss == dl && l.mse == mse && fabs(l.adv - adv) < 1e-6 * adv,
              "losses %g %g %g, halves %g %g %g", l.d_loss, l.mse, l.adv, dl, mse, adv);
    int moved = 0;
    for (int p = 0; p < 3; p++) {
        sm_model *ma = sm_aae_trainer_model(a, (sm_train_aae_part)p);
        sm_model *mb = sm_aae_trainer_model(b, (sm_train_aae_part)p);
        for (int i = 0; i < sm_model_n_params(ma); i++) {
            const sm_tensor *wa = sm_model_param(ma, i), *wb = sm_model_param(mb, i);
            for (int64_t j = 0; j < sm_tensor_numel(wa); j++)
                cr_assert(fabsf(wa->data[j] - wb->data[j]) < 1e-6f, "%d %s[%lld]: %g, by "
                          "hand %g", p, sm_model_param_name(ma, i), (long long)j,
                          wa->data[j], wb->data[j]);
        }
        sm_train_net *fresh = sm_train_net_aae((sm_train_aae_part)p, 1, 3, 3, 2,
                                               p == DIS ? o.d_hidden : o.hidden, 11, &err);
        cr_assert_not_null(fresh, "%s", err.msg);
        moved += fabsf(sm_train_net_param(fresh, 0)->data[0] -
                       sm_model_param(ma, 0)->data[0]) > 1e-4f;
        sm_train_net_destroy(&fresh);
    }
    cr_assert_eq(moved, 3, "every net took a step");
    sm_aae_trainer_destroy(&a);
    sm_aae_trainer_destroy(&b);
}

/* n images of 1 x 8 x 8 in [-1, 1]: a bright band in one of four row
 * pairs over dim noise. */
static sm_train_set *bands(size_t n)
{
    float *x = malloc(n * 64 * sizeof(float)), noise[64];
    int *y = calloc(n, sizeof(int));
    for (size_t i = 0; i < n; i++) {
        char name[24];
        snprintf(name, sizeof name, "%zu", i);
        uniform(noise, 64, 13, name);
        for (int p = 0; p < 64; p++)
            x[i * 64 + (size_t)p] = (p / 16 == (int)(i % 4) ? 0.7f : -0.8f) + 0.1f * noise[p];
        y[i] = (int)(i % 2);
    }
    sm_err err = {0};
    sm_train_set *s = sm_train_set_from_memory(x, y, n, 1, 8, 8, two, 2, &err);
    cr_assert_not_null(s, "%s", err.msg);
    free(x);
    free(y);
    return s;
}

static double set_mse(sm_aae_trainer *t, const sm_train_set *set)
{
    double mse;
    sm_err err = {0};
    cr_assert_eq(sm_aae_evaluate(sm_aae_trainer_model(t, ENC), sm_aae_trainer_model(t, DEC),
                                 NULL, 0, NULL, set, &mse, NULL, &err), 0, "%s", err.msg);
    return mse;
}

/* A few dozen steps on 64 images: the reconstruction error falls, the
 * losses stay finite, and the trainer stops at its steps. */
Test(aae, learns_a_small_set)
{
    sm_train_set *set = bands(64);
    sm_aae_opts o = small_opts(1);
    o.hidden[0] = o.hidden[1] = 32;
    o.d_hidden[0] = 32;
    o.d_hidden[1] = 16;
    o.batch = 16;
    o.steps = 60;
    o.threads = 2;
    sm_aae_trainer *t = trainer(&o, 1, 8, 8);
    double mse0 = set_mse(t, set), first = 0, last = 0;
    sm_err err = {0};
    for (int s = 0; s < o.steps; s++) {
        sm_aae_losses l;
        cr_assert_eq(sm_aae_trainer_next(t, set, &l, &err), 0, "%s", err.msg);
        cr_assert(isfinite(l.d_loss) && isfinite(l.mse) && isfinite(l.adv));
        if (s < 10)
            first += l.mse / 10;
        if (s >= o.steps - 10)
            last += l.mse / 10;
    }
    double mse = set_mse(t, set);
    cr_assert_lt(last, first / 2, "mse over the first 10 steps %g, the last %g", first, last);
    cr_assert_lt(mse, mse0 / 3, "mse %g, at first %g", mse, mse0);
    cr_assert_neq(sm_aae_trainer_next(t, set, NULL, &err), 0);
    cr_assert(tdata_has(err.msg, "all 60 steps are done"), "%s", err.msg);
    sm_aae_trainer_destroy(&t);

    o.batch = 65;
    t = trainer(&o, 1, 8, 8);
    cr_assert_neq(sm_aae_trainer_next(t, set, NULL, &err), 0);
    cr_assert(tdata_has(err.msg, "memory: 64 images, fewer than a batch of 65"), "%s", err.msg);
    sm_aae_trainer_destroy(&t);
    t = trainer(&o, 1, 4, 4);
    cr_assert_neq(sm_aae_trainer_next(t, set, NULL, &err), 0);
    cr_assert(tdata_has(err.msg, "images are 1x8x8, the autoencoder's 1x4x4"), "%s", err.msg);
    float x[16] = {0};
    cr_assert_neq(sm_aae_trainer_step(t, x, 0, NULL, &err), 0);
    cr_assert(tdata_has(err.msg, "1..65 images, not 0"), "%s", err.msg);
    sm_aae_trainer_destroy(&t);
    sm_train_set_destroy(&set);
}

/* Trains o on set for `steps` steps and saves it to dir/sub/x_aae.yaml. */
static void train_save(sm_aae_opts o, const sm_train_set *set, int steps,
                       const char *sub)
{
    char path[TDATA_PATH];
    sm_err err = {0};
    o.steps = steps;
    sm_aae_trainer *t = trainer(&o, 1, 8, 8);
    for (int s = 0; s < steps; s++)
        cr_assert_eq(sm_aae_trainer_next(t, set, NULL, &err), 0, "%s", err.msg);
    tdata_path(path, dir, sub);
    cr_assert_eq(sm_file_mkdirs(path, &err), 0, "%s", err.msg);
    strcat(path, "/x_aae.yaml");
    cr_assert_eq(sm_aae_trainer_save(t, path, NULL, &err), 0, "%s", err.msg);
    sm_aae_trainer_destroy(&t);
}

/* 1 when dir/a/name and dir/b/name hold the same bytes. */
static int same_file(const char *a, const char *b, const char *name)
{
    char pa[TDATA_PATH], pb[TDATA_PATH];
    snprintf(pa, sizeof pa, "%s/%s/%s", dir, a, name);
    snprintf(pb, sizeof pb, "%s/%s/%s", dir, b, name);
    size_t la, lb;
    sm_err err = {0};
    unsigned char *ba = sm_file_read(pa, SM_FILE_MAX_MODEL, &la, &err);
    cr_assert_not_null(ba, "%s", err.msg);
    unsigned char *bb = sm_file_read(pb, SM_FILE_MAX_MODEL, &lb, &err);
    cr_assert_not_null(bb, "%s", err.msg);
    int same = la == lb && memcmp(ba, bb, la) == 0;
    free(ba);
    free(bb);
    return same;
}

/* o writes the same files twice, with one thread or two (each run against
 * itself, in dir/<tag>a<threads> and <tag>b<threads>), and other (o
 * changed in what says `why`) other nets, in <tag>c<threads>. */
static void same_bytes_twice(const char *tag, sm_aae_opts o, sm_aae_opts other,
                             const char *why)
{
    sm_train_set *set = bands(40);
    static const char *const files[] = {"x_aae.yaml", "x_aae_encoder.onnx",
                                        "x_aae_decoder.onnx",
                                        "x_aae_discriminator.onnx"};
    for (int threads = 1; threads <= 2; threads++) {
        o.threads = other.threads = threads;
        char a[16], b[16], c[16];
        snprintf(a, sizeof a, "%sa%d", tag, threads);
        snprintf(b, sizeof b, "%sb%d", tag, threads);
        snprintf(c, sizeof c, "%sc%d", tag, threads);
        train_save(o, set, 5, a);
        train_save(o, set, 5, b);
        train_save(other, set, 5, c);
        for (int f = 0; f < 4; f++)
            cr_assert(same_file(a, b, files[f]), "%s differs", files[f]);
        for (int f = 1; f < 4; f++)
            cr_assert(!same_file(a, c, files[f]), "%s: %s, the same file", files[f], why);
    }
    sm_train_set_destroy(&set);
}

/* The same seed writes the same files; another seed other nets. */
Test(aae, same_seed_same_bytes)
{
    sm_aae_opts o = small_opts(3);
    o.batch = 16; /* 2 steps a pass: the third starts another */
    sm_aae_opts other = o;
    other.seed = 4;
    same_bytes_twice("", o, other, "another seed");
}

/* The saved YAML loads with its nets beside it, and the nets loaded from
 * the files compute what the trainer's did, bit for bit; the YAML written
 * again from what was loaded loads the same. */
Test(aae, saves_and_loads)
{
    sm_train_set *set = bands(16);
    sm_aae_opts o = small_opts(8);
    o.steps = 3;
    sm_aae_trainer *t = trainer(&o, 1, 8, 8);
    sm_err err = {0};
    for (int s = 0; s < 3; s++)
        cr_assert_eq(sm_aae_trainer_next(t, set, NULL, &err), 0, "%s", err.msg);
    char path[TDATA_PATH], enc[TDATA_PATH], again[TDATA_PATH];
    tdata_path(path, dir, "m_aae.yaml");
    sm_aae_config meta = {.classifier = "models/mnist_cnn.onnx", .has_test = 1,
                          .test = {.dataset = "data/t \"x\"", .mse = 0.125,
                                   .agreement = 0.75}};
    cr_assert_eq(sm_aae_trainer_save(t, path, &meta, &err), 0, "%s", err.msg);
    sm_aae_config cfg;
    cr_assert_eq(sm_aae_config_load(path, &cfg, &err), 0, "%s", err.msg);
    cr_assert(cfg.latent == 2 && cfg.channels == 1 && cfg.height == 8 && cfg.width == 8);
    cr_assert_str_eq(cfg.encoder, tdata_path(enc, dir, "m_aae_encoder.onnx"));
    cr_assert_str_eq(cfg.decoder, tdata_path(enc, dir, "m_aae_decoder.onnx"));
    cr_assert_str_eq(cfg.discriminator, tdata_path(enc, dir, "m_aae_discriminator.onnx"));
    cr_assert_str_eq(cfg.classifier, "mnist_cnn.onnx");
    cr_assert(cfg.has_train && cfg.has_test);
    cr_assert_str_eq(cfg.train.dataset, "memory");
    cr_assert(cfg.train.steps == 3 && cfg.train.batch == 4 && cfg.train.seed == 8 &&
              cfg.train.threads == 1);
    cr_assert_float_eq(cfg.train.lr, 1e-3, 1e-9);
    cr_assert_float_eq(cfg.train.beta1, 0.5, 1e-9);
    cr_assert_str_eq(cfg.test.dataset, "data/t \"x\"");
    cr_assert(cfg.test.mse == 0.125 && cfg.test.agreement == 0.75);

    sm_aae_models ms;
    cr_assert_eq(sm_aae_config_models(&cfg, &ms, &err), 0, "%s", err.msg);
    const sm_tensor *za = sm_model_forward(ms.encoder, sm_train_set_image(set, 0), 5, &err);
    cr_assert_not_null(za, "%s", err.msg);
    sm_tensor *keep = sm_tensor_clone(za);
    const sm_tensor *zb = sm_model_forward(sm_aae_trainer_model(t, ENC),
                                           sm_train_set_image(set, 0), 5, &err);
    cr_assert_eq(memcmp(keep->data, zb->data, 10 * sizeof(float)), 0, "encoders differ");
    const sm_tensor *xa = sm_model_forward(ms.decoder, keep->data, 5, &err);
    cr_assert_not_null(xa, "%s", err.msg);
    sm_tensor *kx = sm_tensor_clone(xa);
    const sm_tensor *xb = sm_model_forward(sm_aae_trainer_model(t, DEC), keep->data, 5, &err);
    cr_assert_eq(memcmp(kx->data, xb->data, 5 * 64 * sizeof(float)), 0, "decoders differ");
    const sm_tensor *va = sm_model_forward(ms.discriminator, keep->data, 5, &err);
    cr_assert_not_null(va, "%s", err.msg);
    sm_tensor *kv = sm_tensor_clone(va);
    const sm_tensor *vb = sm_model_forward(sm_aae_trainer_model(t, DIS), keep->data, 5, &err);
    cr_assert_eq(memcmp(kv->data, vb->data, 5 * sizeof(float)), 0, "discriminators differ");
    sm_tensor_destroy(&keep);
    sm_tensor_destroy(&kx);
    sm_tensor_destroy(&kv);
    sm_aae_models_free(&ms);
    cr_assert_null(ms.encoder);

    tdata_path(again, dir, "again.yaml");
    cr_assert_eq(sm_aae_config_save(&cfg, again, &err), 0, "%s", err.msg);
    sm_aae_config back;
    cr_assert_eq(sm_aae_config_load(again, &back, &err), 0, "%s", err.msg);
    cr_assert(back.latent == cfg.latent && back.train.steps == cfg.train.steps &&
              back.train.lr == cfg.train.lr && back.test.mse == cfg.test.mse &&
              back.test.agreement == cfg.test.agreement);
    cr_assert_str_eq(back.encoder, cfg.encoder);
    cr_assert_str_eq(back.classifier, cfg.classifier);
    cr_assert_str_eq(back.test.dataset, cfg.test.dataset);
    char np[TDATA_PATH];
    cr_assert_eq(sm_aae_config_net_path("models/x_aae.yaml", "decoder", np, sizeof np), 0);
    cr_assert_str_eq(np, "models/x_aae_decoder.onnx");
    sm_aae_config_free(&back);
    sm_aae_config_free(&cfg);
    sm_aae_trainer_destroy(&t);
    sm_train_set_destroy(&set);
}

/* Writes text to dir/name and loads it, expecting a failure whose message
 * names the file and holds needle. */
static void refused(const char *name, const char *text, const char *needle)
{
    char path[TDATA_PATH];
    tdata_text(path, dir, name, text);
    sm_aae_config cfg;
    sm_err err = {0};
    cr_assert_neq(sm_aae_config_load(path, &cfg, &err), 0, "accepted: %s", text);
    cr_assert(tdata_has(err.msg, path), "'%s' does not name %s", err.msg, path);
    cr_assert(tdata_has(err.msg, needle), "'%s' lacks '%s'", err.msg, needle);
    cr_assert_null(cfg.source);
}

#define HEAD "aae:\n  latent: 2\n  input: {channels: 1, height: 8, width: 8}\n"
#define NETS "  encoder: e.onnx\n  decoder: d.onnx\n  discriminator: s.onnx\n"

Test(aae, config_refuses_bad_yaml)
{
    char p[TDATA_PATH];
    for (int k = 0; k < 3; k++)
        tdata_text(p, dir, (const char *[]){"e.onnx", "d.onnx", "s.onnx"}[k], "x");
    sm_aae_config cfg;
    sm_err err = {0};
    cr_assert_eq(sm_aae_config_load(tdata_text(p, dir, "ok.yaml", HEAD NETS), &cfg, &err),
                 0, "%s", err.msg);
    cr_assert(!cfg.has_train && !cfg.has_test && !cfg.classifier);
    sm_aae_config_free(&cfg);
    refused("k1.yaml", HEAD NETS "  depth: 3\n", "k1.yaml:7: aae.depth: unknown key");
    refused("k2.yaml", HEAD NETS "model: x\n", "k2.yaml:7: model: unknown key");
    refused("l1.yaml", "aae:\n  latent: 0\n  input: {channels: 1, height: 8, width: 8}\n" NETS,
            "l1.yaml:2: aae.latent: '0' is not an integer in 1..65536");
    refused("l2.yaml", "aae:\n  latent: four\n  input: {channels: 1, height: 8, width: 8}\n" NETS,
            "aae.latent: 'four' is not an integer");
    refused("c.yaml", "aae:\n  latent: 2\n  input: {channels: 2, height: 8, width: 8}\n" NETS,
            "aae.input.channels: must be 1 or 3, not 2");
    refused("m.yaml", HEAD "  encoder: e.onnx\n  discriminator: s.onnx\n",
            "missing required key 'decoder'");
    char gone[TDATA_PATH + 64];
    snprintf(gone, sizeof gone, "f.yaml:4: aae.encoder: %s/gone.onnx: No such file or "
             "directory", dir);
    refused("f.yaml", HEAD "  encoder: gone.onnx\n  decoder: d.onnx\n  discriminator: s.onnx\n",
            gone);
    refused("r.yaml", HEAD "  range: [0, 1]\n" NETS, "aae.range: must be [-1, 1]");
    refused("t.yaml", HEAD NETS "  test: {dataset: x, mse: 0.1, agreement: 1.5}\n",
            "aae.test.agreement: '1.5' is not a number in [0, 1]");
    refused("s.yaml", HEAD NETS "  train: {dataset: x, steps: 5, batch: 8, lr: 0.1, beta1: 0.5, "
            "threads: 1}\n", "missing required key 'seed'");
    cr_assert_neq(sm_aae_config_load(tdata_path(p, dir, "nowhere.yaml"), &cfg, &err), 0);
    cr_assert(tdata_has(err.msg, "nowhere.yaml: No such file or directory"), "%s", err.msg);

    /* Nets whose latent is not the YAML's. */
    sm_train_set *set = bands(8);
    train_save(small_opts(2), set, 1, "n");
    tdata_text(p, dir, "n/wrong.yaml", "aae:\n  latent: 3\n  input: {channels: 1, height: 8, "
               "width: 8}\n  encoder: x_aae_encoder.onnx\n  decoder: x_aae_decoder.onnx\n"
               "  discriminator: x_aae_discriminator.onnx\n");
    cr_assert_eq(sm_aae_config_load(p, &cfg, &err), 0, "%s", err.msg);
    sm_aae_models ms;
    cr_assert_neq(sm_aae_config_models(&cfg, &ms, &err), 0);
    cr_assert(tdata_has(err.msg, p) && tdata_has(err.msg, "encoder") &&
              tdata_has(err.msg, "output z is [1, 2], the config wants [1, 3]"), "%s", err.msg);
    cr_assert_null(ms.encoder);
    sm_aae_config_free(&cfg);
    sm_train_set_destroy(&set);
}

/* The classifier's label of one image t (9 values in [-1, 1]) read as
 * pixels (t + 1) * 127.5, scaled by 1/255, minus 0.5, over 0.25. */
static int label_by_hand(const float *t, const float *w, const float *b)
{
    int best = 0;
    double top = -1e300;
    for (int k = 0; k < 3; k++) {
        double s = b[k];
        for (int j = 0; j < 9; j++)
            s += (double)w[k * 9 + j] * (((t[j] + 1) * 127.5 / 255 - 0.5) / 0.25);
        if (s > top) {
            top = s;
            best = k;
        }
    }
    return best;
}

/* The evaluation's MSE and agreement against the same computed here. */
Test(aae, evaluate_matches_hand_computation)
{
    const int n = 300; /* over one evaluation batch */
    float *x = malloc(n * 9 * sizeof(float));
    int *y = calloc(n, sizeof(int));
    uniform(x, (size_t)n * 9, 14, "x");
    sm_err err = {0};
    sm_train_set *set = sm_train_set_from_memory(x, y, (size_t)n, 1, 3, 3, two, 2, &err);
    cr_assert_not_null(set, "%s", err.msg);
    sm_aae_opts o = small_opts(15);
    sm_aae_trainer *t = trainer(&o, 1, 3, 3);
    for (int s = 0; s < 20; s++)
        cr_assert_eq(sm_aae_trainer_step(t, x + 4 * 9 * s, 4, NULL, &err), 0, "%s", err.msg);
    sm_tensor *w = sm_tensor_new(2, (int64_t[]){3, 9}), *b = sm_tensor_new(1, (int64_t[]){3});
    uniform(w->data, 27, 16, "w");
    uniform(b->data, 3, 16, "b");
    sm_model *cls = tmodel_linear(w, b, 1, 3, 3);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 3, 3);
    pp.mean[0] = 0.5f;
    pp.std[0] = 0.25f;
    double mse, agreement;
    sm_model *enc = sm_aae_trainer_model(t, ENC), *dec = sm_aae_trainer_model(t, DEC);
    cr_assert_eq(sm_aae_evaluate(enc, dec, cls, 0, &pp, set, &mse, &agreement, &err), 0,
                 "%s", err.msg);

    double sq = 0;
    int agree = 0, seen[3] = {0};
    for (int i = 0; i < n; i++) {
        const sm_tensor *z = sm_model_forward(enc, x + i * 9, 1, &err);
        cr_assert_not_null(z, "%s", err.msg);
        const sm_tensor *xh = sm_model_forward(dec, z->data, 1, &err);
        cr_assert_not_null(xh, "%s", err.msg);
        for (int j = 0; j < 9; j++)
            sq += ((double)xh->data[j] - x[i * 9 + j]) * ((double)xh->data[j] - x[i * 9 + j]);
        int la = label_by_hand(x + i * 9, w->data, b->data);
        seen[la]++;
        agree += la == label_by_hand(xh->data, w->data, b->data);
    }
    cr_assert(seen[0] && seen[1] && seen[2], "the images take every label");
    cr_assert(agree > 0 && agree < n, "agreement %d of %d says nothing", agree, n);
    cr_assert_float_eq(mse, sq / (n * 9), 1e-9);
    cr_assert_float_eq(agreement, (double)agree / n, 1e-12, "%g, by hand %d/%d", agreement,
                       agree, n);
    sm_preproc other = pp;
    other.height = 4;
    cr_assert_neq(sm_aae_evaluate(enc, dec, cls, 0, &other, set, &mse, &agreement, &err), 0);
    cr_assert(tdata_has(err.msg, "images are 1x3x3, the classifier's 1x4x3"), "%s", err.msg);
    sm_model_destroy(&cls);
    sm_tensor_destroy(&w);
    sm_tensor_destroy(&b);
    sm_aae_trainer_destroy(&t);
    sm_train_set_destroy(&set);
    free(x);
    free(y);
}

Test(aae, options_are_checked)
{
    sm_aae_opts o;
    sm_aae_opts_init(&o);
    cr_assert(o.batch == 256 && o.lr == 2e-4 && o.beta1 == 0.5 && o.mse_weight == 0.999 &&
              o.adv_weight == 0.001 && o.hidden[0] == 1024 && o.d_hidden[1] == 512);
    sm_err err = {0};
    static const struct {
        int field;
        double v;
        const char *needle;
    } bad[] = {{0, 0, "latent must be 1..65536, not 0"},
               {1, 0, "steps must be at least 1"},
               {2, 0, "batch must be at least 1"},
               {3, -1, "learning rate must be a positive number"},
               {4, 1, "beta1 must be in [0, 1), not 1"},
               {5, -0.5, "loss weights must be >= 0"},
               {6, 17, "threads must be 1..16"}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        sm_aae_opts_init(&o);
        o.latent = 4;
        o.steps = 10;
        cr_assert_eq(sm_aae_opts_check(&o, &err), 0, "%s", err.msg);
        switch (bad[k].field) {
        case 0: o.latent = (int)bad[k].v; break;
        case 1: o.steps = (int)bad[k].v; break;
        case 2: o.batch = (int)bad[k].v; break;
        case 3: o.lr = bad[k].v; break;
        case 4: o.beta1 = bad[k].v; break;
        case 5: o.mse_weight = bad[k].v; break;
        case 6: o.threads = (int)bad[k].v; break;
        }
        cr_assert_neq(sm_aae_opts_check(&o, &err), 0, "accepted: %s", bad[k].needle);
        cr_assert(tdata_has(err.msg, bad[k].needle), "'%s' lacks '%s'", err.msg, bad[k].needle);
        cr_assert_null(sm_aae_trainer_new(&o, 1, 8, 8, &err));
    }
}

/* `salmap train-aae` of the same build: help, refusals before any data is
 * read, and a tiny run on PNGs with the shipped MNIST classifier. */
Test(aae, cli_documents_refuses_and_trains)
{
    char msg[TDATA_PATH], out[TDATA_PATH], imgs[TDATA_PATH], p[TDATA_PATH];
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"train-aae", "--help", NULL}), 0);
    static const char *const opts[] = {"--dataset", "--classifier", "--config", "--latent",
                                       "--steps", "--seed", "--out", "--test", "--batch",
                                       "--lr", "--beta1", "--threads"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        cr_assert(tdata_has(msg, opts[i]), "--help lacks %s", opts[i]);
    tdata_path(out, dir, "t_aae.yaml");
    tdata_path(imgs, dir, "imgs");
#define CLI(...) tdata_salmap(msg, dir, (const char *[]){"train-aae", "--dataset", imgs, \
                              "--classifier", "models/mnist_cnn.onnx", "--seed", "1",   \
                              __VA_ARGS__, NULL})
    cr_assert_eq(CLI("--steps", "3", "--out", out), 2);
    cr_assert(tdata_has(msg, "missing --latent"), "%s", msg);
    cr_assert_eq(CLI("--latent", "2", "--steps", "3", "--out", out, "--beta1", "1"), 2);
    cr_assert(tdata_has(msg, "--beta1 must be a number in [0, 1), not '1'"), "%s", msg);
    cr_assert_eq(CLI("--latent", "2", "--steps", "3", "--out", "x.onnx"), 2);
    cr_assert(tdata_has(msg, "--out must name a .yaml file"), "%s", msg);
    cr_assert_eq(CLI("--latent", "2", "--steps", "3", "--out", "/nonexistent/x_aae.yaml"), 1);
    cr_assert(tdata_has(msg, "folder /nonexistent is not writable"), "%s", msg);
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"train-aae", "--dataset", imgs,
                              "--classifier", "nowhere.onnx", "--config", "models/mnist_cnn.yaml",
                              "--latent", "2", "--steps", "3", "--seed", "1", "--out", out,
                              NULL}), 1);
    cr_assert(tdata_has(msg, "nowhere.onnx"), "%s", msg);
    cr_assert_eq(access(out, F_OK), -1, "nothing written");

    /* 12 digits of 28x28 in two classes. */
    uint8_t px[28 * 28];
    for (int i = 0; i < 12; i++) {
        for (int j = 0; j < 28 * 28; j++)
            px[j] = (uint8_t)((j % 28 > 8 + i && j % 28 < 14 + i) ? 230 : 10 * (i % 3));
        char name[32];
        snprintf(name, sizeof name, "imgs/%d/%d.png", i % 2, i);
        tdata_png(p, dir, name, px, 28, 28, 1);
    }
    cr_assert_eq(CLI("--latent", "2", "--steps", "3", "--batch", "4", "--threads", "1",
                     "--out", out, "--test", imgs), 0, "%s", msg);
#undef CLI
    cr_assert(tdata_has(msg, "step 3/3") && tdata_has(msg, "test reconstruction mse: ") &&
              tdata_has(msg, "agreement: "), "%s", msg);
    sm_aae_config cfg;
    sm_err err = {0};
    cr_assert_eq(sm_aae_config_load(out, &cfg, &err), 0, "%s", err.msg);
    cr_assert(cfg.latent == 2 && cfg.height == 28 && cfg.has_test && cfg.train.steps == 3);
    cr_assert_str_eq(cfg.classifier, "mnist_cnn.onnx");
    cr_assert_str_eq(cfg.test.dataset, imgs);
    cr_assert_str_eq(cfg.decoder, tdata_path(p, dir, "t_aae_decoder.onnx"));
    sm_aae_config_free(&cfg);
}

/* Translation of a hand-made 2 x 3 x 4 image: each value names its place
 * (100 c + 10 y + x), so the expected images are written out here. */
Test(aae, translate_moves_by_hand)
{
    float src[24], dst[24];
    for (int c = 0; c < 2; c++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++)
                src[(c * 3 + y) * 4 + x] = (float)(100 * c + 10 * y + x);
    /* one right, one up: dst(y, x) = src(y + 1, x - 1) */
    static const float right_up[24] = {-1, 10, 11, 12,  -1, 20, 21, 22,  -1, -1, -1, -1,
                                       -1, 110, 111, 112,  -1, 120, 121, 122,  -1, -1, -1, -1};
    sm_aae_translate(src, 2, 3, 4, 1, -1, -1.0f, dst);
    cr_assert_arr_eq(dst, right_up, sizeof dst);
    /* two left, two down */
    static const float left_down[24] = {5, 5, 5, 5,  5, 5, 5, 5,  2, 3, 5, 5,
                                        5, 5, 5, 5,  5, 5, 5, 5,  102, 103, 5, 5};
    sm_aae_translate(src, 2, 3, 4, -2, 2, 5.0f, dst);
    cr_assert_arr_eq(dst, left_down, sizeof dst);
    sm_aae_translate(src, 2, 3, 4, 0, 0, -1.0f, dst);
    cr_assert_arr_eq(dst, src, sizeof dst);
    sm_aae_translate(src, 2, 3, 4, 4, 0, -1.0f, dst);
    for (int j = 0; j < 24; j++)
        cr_assert_eq(dst[j], -1.0f, "moved off the image: [%d] %g", j, dst[j]);
}

/* The draws: in -shift..shift, every one of the (2 shift + 1)^2 moves
 * taken about as often, a function of (seed, step, row); none at 0. */
Test(aae, shift_draws_cover_their_range)
{
    int count[5][5] = {{0}}, dx, dy, ex, ey, differ = 0;
    for (int r = 0; r < 2500; r++) {
        sm_aae_shift_draw(7, 3, r, 2, &dx, &dy);
        cr_assert(dx >= -2 && dx <= 2 && dy >= -2 && dy <= 2, "row %d: %d %d", r, dx, dy);
        count[dy + 2][dx + 2]++;
        sm_aae_shift_draw(7, 3, r, 2, &ex, &ey);
        cr_assert(ex == dx && ey == dy, "row %d drawn twice differs", r);
        sm_aae_shift_draw(7, 4, r, 2, &ex, &ey);
        differ += ex != dx || ey != dy;
        sm_aae_shift_draw(7, 3, r, 0, &ex, &ey);
        cr_assert(ex == 0 && ey == 0, "shift 0 moved row %d", r);
    }
    for (int i = 0; i < 25; i++) /* 100 expected, sd about 10 */
        cr_assert(count[i / 5][i % 5] > 60 && count[i / 5][i % 5] < 140, "move (%d, %d): %d "
                  "of 2500", i % 5 - 2, i / 5 - 2, count[i / 5][i % 5]);
    cr_assert_gt(differ, 2000, "another step, the same moves (%d of 2500 differ)", differ);
}

/* A shifted step is the plain step on the batch assembled here: pass 0's
 * shuffle, each image translated by its draw with black (-1) around. */
/* 12 band images, a trainer with the options `aug` (small_opts(seed) with
 * augmentation), one b without, and pass 0's order of the set. */
static sm_train_set *aug_pair(uint64_t seed, sm_aae_opts aug, sm_aae_trainer **a,
                              sm_aae_trainer **b, size_t order[12])
{
    sm_aae_opts o = small_opts(seed);
    *a = trainer(&aug, 1, 8, 8);
    *b = trainer(&o, 1, 8, 8);
    sm_train_shuffle(order, 12, seed, 0);
    return bands(12);
}

Test(aae, shifted_batches_are_the_drawn_moves)
{
    sm_aae_opts o = small_opts(21), plain = o;
    o.shift = 2;
    sm_aae_trainer *a, *b, *c = trainer(&plain, 1, 8, 8);
    size_t order[12];
    sm_train_set *set = aug_pair(21, o, &a, &b, order);
    sm_err err = {0};
    sm_aae_losses la, lb, lc;
    cr_assert_eq(sm_aae_trainer_next(a, set, &la, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_aae_trainer_next(c, set, &lc, &err), 0, "%s", err.msg);
    float x[4 * 64];
    int moved = 0;
    for (int r = 0; r < 4; r++) {
        int dx, dy;
        sm_aae_shift_draw(21, 0, r, 2, &dx, &dy);
        moved += dx || dy;
        sm_aae_translate(sm_train_set_image(set, order[r]), 1, 8, 8, dx, dy, -1.0f, x + r * 64);
    }
    cr_assert_gt(moved, 0, "the draws moved no image: the test says nothing");
    cr_assert_eq(sm_aae_trainer_step(b, x, 4, &lb, &err), 0, "%s", err.msg);
    cr_assert(la.d_loss == lb.d_loss && la.mse == lb.mse && la.adv == lb.adv,
              "losses %g %g %g, by hand %g %g %g", la.d_loss, la.mse, la.adv, lb.d_loss,
              lb.mse, lb.adv);
    cr_assert(la.mse != lc.mse, "shift 2 and none trained on the same images");
    for (int p = 0; p < 3; p++) {
        sm_model *ma = sm_aae_trainer_model(a, (sm_train_aae_part)p);
        sm_model *mb = sm_aae_trainer_model(b, (sm_train_aae_part)p);
        for (int i = 0; i < sm_model_n_params(ma); i++) {
            const sm_tensor *wa = sm_model_param(ma, i), *wb = sm_model_param(mb, i);
            cr_assert_eq(memcmp(wa->data, wb->data, (size_t)sm_tensor_numel(wa) * sizeof(float)),
                         0, "%d %s differs", p, sm_model_param_name(ma, i));
        }
    }
    sm_aae_trainer_destroy(&a);
    sm_aae_trainer_destroy(&b);
    sm_aae_trainer_destroy(&c);
    sm_train_set_destroy(&set);
}

/* Seeded training with shifts and noise writes the same bytes run to run
 * (one thread and two), other nets than without, and its YAML records
 * both, which load back; a YAML without them reads 0; bad ones are
 * refused. */
Test(aae, augmented_training_same_bytes_and_recorded)
{
    sm_aae_opts o = small_opts(3);
    o.batch = 16;
    o.shift = 1;
    o.noise = 0.25;
    sm_aae_opts other = o;
    other.shift = 0;
    other.noise = 0;
    same_bytes_twice("s", o, other, "augmented and not");
    char p[TDATA_PATH];
    sm_aae_config cfg;
    sm_err err = {0};
    cr_assert_eq(sm_aae_config_load(tdata_path(p, dir, "sa1/x_aae.yaml"), &cfg, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(cfg.train.shift, 1);
    cr_assert_float_eq(cfg.train.noise, 0.25, 1e-9);
    sm_aae_config_free(&cfg);
    size_t len;
    char *text = (char *)sm_file_read(tdata_path(p, dir, "sc1/x_aae.yaml"), 1 << 16, &len,
                                      &err);
    cr_assert_not_null(text, "%s", err.msg);
    cr_assert(!tdata_has(text, "shift") && !tdata_has(text, "noise"), "0 is written: %s", text);
    free(text);
    cr_assert_eq(sm_aae_config_load(p, &cfg, &err), 0, "%s", err.msg);
    cr_assert(cfg.train.shift == 0 && cfg.train.noise == 0);
    sm_aae_config_free(&cfg);
    for (int k = 0; k < 3; k++)
        tdata_text(p, dir, (const char *[]){"e.onnx", "d.onnx", "s.onnx"}[k], "x");
    refused("sh.yaml", HEAD NETS "  train: {dataset: x, steps: 5, batch: 8, lr: 0.1, beta1: 0.5, "
            "seed: 1, threads: 1, shift: 9}\n",
            "sh.yaml:7: aae.train.shift: '9' is not an integer in 0..8");
    refused("no.yaml", HEAD NETS "  train: {dataset: x, steps: 5, batch: 8, lr: 0.1, beta1: 0.5, "
            "seed: 1, threads: 1, noise: 1.5}\n",
            "no.yaml:7: aae.train.noise: '1.5' is not a number in [0, 1]");
}

/* A noisy step: the discriminator's half reads the batch plus the noise
 * drawn here, the mse is of that input's reconstruction against the clean
 * batch (both before any update: D's step changes neither net). */
Test(aae, noise_is_read_by_the_encoder_and_not_the_target)
{
    sm_aae_opts o = small_opts(22);
    o.noise = 0.5;
    sm_aae_trainer *a, *b;
    size_t order[12];
    sm_train_set *set = aug_pair(22, o, &a, &b, order);
    sm_err err = {0};
    float x[4 * 64], xin[4 * 64], zr[8];
    uint64_t key = sm_rng_key(22, (const char *const[]){"aae-noise", "0", NULL});
    for (int r = 0; r < 4; r++)
        memcpy(x + r * 64, sm_train_set_image(set, order[r]), 64 * sizeof(float));
    for (int j = 0; j < 4 * 64; j++)
        xin[j] = x[j] + (float)(0.5 * sm_rng_normal(key, (uint64_t)j));
    sm_aae_prior(22, 0, 4, 2, zr);
    double dl, clean_dl, sq = 0;
    cr_assert_eq(sm_aae_trainer_d_loss(b, xin, zr, 4, 0, &dl, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_aae_trainer_d_loss(b, x, zr, 4, 0, &clean_dl, &err), 0, "%s", err.msg);
    const sm_tensor *z = sm_model_forward(sm_aae_trainer_model(b, ENC), xin, 4, &err);
    cr_assert_not_null(z, "%s", err.msg);
    const sm_tensor *xh = sm_model_forward(sm_aae_trainer_model(b, DEC), z->data, 4, &err);
    cr_assert_not_null(xh, "%s", err.msg);
    for (int j = 0; j < 4 * 64; j++)
        sq += ((double)xh->data[j] - x[j]) * ((double)xh->data[j] - x[j]);
    sm_aae_losses l;
    cr_assert_eq(sm_aae_trainer_next(a, set, &l, &err), 0, "%s", err.msg);
    cr_assert(l.d_loss == dl && dl != clean_dl, "d_loss %.9g, by hand %.9g (clean %.9g)",
              l.d_loss, dl, clean_dl);
    cr_assert_float_eq(l.mse, sq / (4 * 64), 1e-12, "mse %.12g, by hand %.12g", l.mse,
                       sq / (4 * 64));
    sm_aae_trainer_destroy(&a);
    sm_aae_trainer_destroy(&b);
    sm_train_set_destroy(&set);
}

/* Shifts outside 0..8, or not less than the images' sides, and noise
 * outside [0, 1] are refused by the options' check, the trainer and the
 * CLI. */
Test(aae, bad_shifts_and_noise_are_refused)
{
    sm_aae_opts o = small_opts(1);
    sm_err err = {0};
    static const int bad[] = {-1, 9};
    for (int k = 0; k < 2; k++) {
        o.shift = bad[k];
        cr_assert_neq(sm_aae_opts_check(&o, &err), 0, "accepted shift %d", bad[k]);
        char needle[64];
        snprintf(needle, sizeof needle, "shift must be 0..8 pixels, not %d", bad[k]);
        cr_assert(tdata_has(err.msg, needle), "'%s' lacks '%s'", err.msg, needle);
    }
    o.shift = 8;
    cr_assert_eq(sm_aae_opts_check(&o, &err), 0, "%s", err.msg);
    cr_assert_null(sm_aae_trainer_new(&o, 1, 8, 9, &err));
    cr_assert(tdata_has(err.msg, "shift 8 must be less than the images' sides (8x9)"), "%s",
              err.msg);
    o.shift = 7;
    sm_aae_trainer *t = trainer(&o, 1, 8, 9);
    sm_aae_trainer_destroy(&t);
    o.shift = 0;
    static const double bad_noise[] = {-0.1, 1.5, NAN};
    for (int k = 0; k < 3; k++) {
        o.noise = bad_noise[k];
        cr_assert_neq(sm_aae_opts_check(&o, &err), 0, "accepted noise %g", bad_noise[k]);
        cr_assert(tdata_has(err.msg, "noise must be in [0, 1], not "), "%s", err.msg);
    }

    char msg[TDATA_PATH], out[TDATA_PATH];
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"train-aae", "--help", NULL}), 0);
    cr_assert(tdata_has(msg, "--shift P") && tdata_has(msg, "--noise S"), "--help lacks "
              "--shift or --noise");
    tdata_path(out, dir, "sh_aae.yaml");
    static const char *const words[] = {"9", "-1", "two", ""};
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"train-aae", "--dataset", "x",
                                  "--classifier", "models/mnist_cnn.onnx", "--latent", "2",
                                  "--steps", "3", "--seed", "1", "--out", out, "--shift",
                                  words[k], NULL}), 2);
        char needle[64];
        snprintf(needle, sizeof needle, "--shift must be an integer in 0..8, not '%s'",
                 words[k]);
        cr_assert(tdata_has(msg, needle), "'%s' lacks '%s'", msg, needle);
        cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"train-aae", "--dataset", "x",
                                  "--classifier", "models/mnist_cnn.onnx", "--latent", "2",
                                  "--steps", "3", "--seed", "1", "--out", out, "--noise",
                                  (const char *[]){"1.5", "-0.1", "x", "nan"}[k], NULL}), 2);
        cr_assert(tdata_has(msg, "--noise must be a number in [0, 1], not '"), "%s", msg);
    }
    cr_assert_eq(access(out, F_OK), -1, "nothing written");
}
