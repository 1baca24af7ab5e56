#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

struct sm_optim {
    sm_optim_opts o;
    sm_model *m;
    int n_params;
    float **m1, **m2;  /* per parameter: momentum / Adam's m, Adam's v */
    int64_t steps;
};

double sm_optim_default_lr(sm_optim_kind kind)
{
    return kind == SM_OPTIM_SGD ? 0.05 : 1e-3;
}

void sm_optim_opts_init(sm_optim_opts *o, sm_optim_kind kind)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = sm_optim_default_lr(kind);
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->momentum = 0.9;
}

int sm_optim_opts_check(const sm_optim_opts *o, sm_err *err)
{
    if (o->kind != SM_OPTIM_ADAM && o->kind != SM_OPTIM_SGD)
        return sm_err_set(err, "unknown optimizer %d", (int)o->kind);
    if (!(o->lr > 0) || !isfinite(o->lr))
        return sm_err_set(err, "learning rate must be a positive number, not %g",
                          o->lr);
    if (!(o->beta1 >= 0 && o->beta1 < 1))
        return sm_err_set(err, "beta1 must be in [0, 1), not %g", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1))
        return sm_err_set(err, "beta2 must be in [0, 1), not %g", o->beta2);
    if (!(o->eps > 0) || !isfinite(o->eps))
        return sm_err_set(err, "eps must be a positive number, not %g", o->eps);
    if (!(o->momentum >= 0 && o->momentum < 1))
        return sm_err_set(err, "momentum must be in [0, 1), not %g", o->momentum);
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
        return sm_err_set(err, "weight decay must be >= 0, not %g",
                          o->weight_decay);
    return 0;
}

void sm_optim_destroy(sm_optim **op)
{
    sm_optim *o = op ? *op : NULL;
    if (!o)
        return;
    for (int i = 0; i < o->n_params; i++) {
        if (o->m1)
            free(o->m1[i]);
        if (o->m2)
            free(o->m2[i]);
    }
    free(o->m1);
    free(o->m2);
    free(o);
    *op = NULL;
}

sm_optim *sm_optim_new(sm_model *m, const sm_optim_opts *opts, sm_err *err)
{
    if (sm_optim_opts_check(opts, err))
        return NULL;
    sm_optim *o = calloc(1, sizeof *o);
    int n = sm_model_n_params(m);
    if (o) {
        o->o = *opts;
        o->m = m;
        o->m1 = calloc((size_t)n + 1, sizeof(float *));
        o->m2 = calloc((size_t)n + 1, sizeof(float *));
    }
    int ok = o && o->m1 && o->m2;
    for (int i = 0; ok && i < n; i++) {
        size_t k = (size_t)sm_tensor_numel(sm_model_param(m, i));
        o->n_params = i + 1;
        o->m1[i] = calloc(k ? k : 1, sizeof(float));
        if (opts->kind == SM_OPTIM_ADAM)
            o->m2[i] = calloc(k ? k : 1, sizeof(float));
        ok = o->m1[i] && (opts->kind != SM_OPTIM_ADAM || o->m2[i]);
    }
    if (!ok) {
        sm_optim_destroy(&o);
        sm_err_set(err, "out of memory for the optimizer's moments of %d "
                   "parameters", n);
    }
    return o;
}

int64_t sm_optim_steps(const sm_optim *o) { return o->steps; }

void sm_optim_step(sm_optim *o, double lr_d)
{
    const sm_optim_opts *p = &o->o;
    o->steps++;
    float lr = (float)lr_d, wd = (float)p->weight_decay;
    float mu = (float)p->momentum;
    float b1 = (float)p->beta1, c1 = (float)(1 - p->beta1);
    float b2 = (float)p->beta2, c2 = (float)(1 - p->beta2);
    float eps = (float)p->eps;
    double b1t = 1 - pow(p->beta1, (double)o->steps);
    double b2t = 1 - pow(p->beta2, (double)o->steps);
    float step = (float)(lr_d / b1t), rb2 = (float)(1 / sqrt(b2t));
    for (int i = 0; i < o->n_params; i++) {
        sm_tensor *t = sm_model_param(o->m, i);
        const float *g = sm_model_param_grad(o->m, i)->data;
        float *w = t->data, *m1 = o->m1[i], *m2 = o->m2[i];
        int64_t n = sm_tensor_numel(t);
        if (p->kind == SM_OPTIM_SGD) {
            for (int64_t j = 0; j < n; j++) {
                m1[j] = mu * m1[j] + (g[j] + wd * w[j]);
                w[j] -= lr * m1[j];
            }
        } else {
            for (int64_t j = 0; j < n; j++) {
                float gj = g[j] + wd * w[j];
                m1[j] = b1 * m1[j] + c1 * gj;
                m2[j] = b2 * m2[j] + c2 * gj * gj;
                w[j] -= step * m1[j] / (sqrtf(m2[j]) * rb2 + eps);
            }
        }
    }
}

unsigned sm_optim_flush_denormals(void)
{
#if defined(__SSE__)
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    return old;
#else
    return 0;
#endif
}

void sm_optim_restore_denormals(unsigned old)
{
#if defined(__SSE__)
    _mm_setcsr(old);
#else
    (void)old;
#endif
}
