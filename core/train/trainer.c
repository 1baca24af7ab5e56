#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/score.h"
#include "util/file.h"
#include "util/rng.h"

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#define ADAM_B1 0.9
#define ADAM_B2 0.999
#define ADAM_EPS 1e-8
#define EVAL_BATCH 512

struct sm_trainer {
    sm_train_opts o;
    char arch[32];
    sm_train_net *net;
    sm_model *m;
    int c, h, w, n_classes;
    size_t per;               /* floats per image */
    int n_params;
    float **m1, **m2;         /* per parameter: momentum / Adam's m, Adam's v */
    int64_t steps;            /* optimizer steps taken */
    int epoch;                /* epochs completed */
    double lr;                /* the current step's learning rate */
    float *seed;              /* batch x classes */
    float *xb;                /* batch x per: a shuffled batch */
    int *lb;
    size_t *order;
    size_t order_n;
};

void sm_train_opts_init(sm_train_opts *o)
{
    memset(o, 0, sizeof *o);
    o->batch = 64;
    o->optimizer = SM_TRAIN_ADAM;
    o->lr = sm_train_default_lr(o->optimizer);
    o->momentum = 0.9;
    o->schedule = SM_TRAIN_CONSTANT;
    o->threads = 1;
}

double sm_train_default_lr(sm_train_optimizer opt)
{
    return opt == SM_TRAIN_SGD ? 0.05 : 1e-3;
}

int sm_train_opts_check(const sm_train_opts *o, sm_err *err)
{
    if (!o->arch)
        return sm_err_set(err, "no architecture given");
    if (o->epochs < 1)
        return sm_err_set(err, "epochs must be at least 1, not %d", o->epochs);
    if (o->batch < 1)
        return sm_err_set(err, "batch must be at least 1, not %d", o->batch);
    if (o->optimizer != SM_TRAIN_ADAM && o->optimizer != SM_TRAIN_SGD)
        return sm_err_set(err, "unknown optimizer %d", (int)o->optimizer);
    if (!(o->lr > 0) || !isfinite(o->lr))
        return sm_err_set(err, "learning rate must be a positive number, not %g",
                          o->lr);
    if (!(o->momentum >= 0 && o->momentum < 1))
        return sm_err_set(err, "momentum must be in [0, 1), not %g", o->momentum);
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
        return sm_err_set(err, "weight decay must be >= 0, not %g",
                          o->weight_decay);
    if (o->schedule != SM_TRAIN_CONSTANT && o->schedule != SM_TRAIN_COSINE)
        return sm_err_set(err, "unknown schedule %d", (int)o->schedule);
    if (o->threads < 1 || o->threads > SM_MODEL_MAX_THREADS)
        return sm_err_set(err, "threads must be 1..%d, not %d",
                          SM_MODEL_MAX_THREADS, o->threads);
    return 0;
}

void sm_trainer_destroy(sm_trainer **tp)
{
    sm_trainer *t = tp ? *tp : NULL;
    if (!t)
        return;
    for (int i = 0; i < t->n_params; i++) {
        if (t->m1)
            free(t->m1[i]);
        if (t->m2)
            free(t->m2[i]);
    }
    free(t->m1);
    free(t->m2);
    free(t->seed);
    free(t->xb);
    free(t->lb);
    free(t->order);
    sm_model_destroy(&t->m);
    sm_train_net_destroy(&t->net);
    free(t);
    *tp = NULL;
}

sm_trainer *sm_trainer_new(const sm_train_opts *o, int c, int h, int w,
                           int n_classes, sm_err *err)
{
    if (sm_train_opts_check(o, err))
        return NULL;
    sm_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    t->o = *o;
    snprintf(t->arch, sizeof t->arch, "%s", o->arch);
    t->o.arch = t->arch;
    t->c = c;
    t->h = h;
    t->w = w;
    t->n_classes = n_classes;
    t->per = (size_t)c * (size_t)h * (size_t)w;
    t->lr = o->lr;
    if (!(t->net = sm_train_net_new(o->arch, c, h, w, n_classes, o->seed, err)))
        goto fail;
    /* The engine trains what it loads: the net goes through its own ONNX
     * bytes, so the trained graph is exactly the one saved. */
    size_t len;
    unsigned char *buf = sm_train_net_serialize(t->net, &len, err);
    if (!buf)
        goto fail;
    t->m = sm_model_load_buffer(buf, len, o->arch, err);
    free(buf);
    if (!t->m)
        goto fail;
    sm_model_set_trainable(t->m, 1);
    sm_model_set_threads(t->m, o->threads);
    t->n_params = sm_model_n_params(t->m);
    if (t->n_params != sm_train_net_n_params(t->net)) {
        sm_err_set(err, "%s: the engine found %d of the net's %d parameters "
                   "(out of memory?)", o->arch, t->n_params,
                   sm_train_net_n_params(t->net));
        goto fail;
    }
    t->m1 = calloc((size_t)t->n_params, sizeof(float *));
    t->m2 = calloc((size_t)t->n_params, sizeof(float *));
    t->seed = malloc((size_t)o->batch * (size_t)n_classes * sizeof(float));
    t->xb = malloc((size_t)o->batch * t->per * sizeof(float));
    t->lb = malloc((size_t)o->batch * sizeof(int));
    int ok = t->m1 && t->m2 && t->seed && t->xb && t->lb;
    for (int i = 0; ok && i < t->n_params; i++) {
        size_t n = (size_t)sm_tensor_numel(sm_model_param(t->m, i));
        t->m1[i] = calloc(n ? n : 1, sizeof(float));
        if (o->optimizer == SM_TRAIN_ADAM)
            t->m2[i] = calloc(n ? n : 1, sizeof(float));
        ok = t->m1[i] && (o->optimizer != SM_TRAIN_ADAM || t->m2[i]);
    }
    if (!ok) {
        sm_err_set(err, "%s: out of memory", o->arch);
        goto fail;
    }
    return t;
fail:
    sm_trainer_destroy(&t);
    return NULL;
}

sm_model *sm_trainer_model(sm_trainer *t) { return t->m; }

/* Training drives many gradients and Adam's second moments into denormal
 * floats, which x86 computes on up to 100 times slower: flush them to zero
 * (FTZ, DAZ) while the trainer computes, and restore the caller's mode.
 * The engine's lane threads start inside that window and inherit it. */
static unsigned flush_denormals(void)
{
#if defined(__SSE__)
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);
    return old;
#else
    return 0;
#endif
}

static void restore_denormals(unsigned old)
{
#if defined(__SSE__)
    _mm_setcsr(old);
#else
    (void)old;
#endif
}

/* Forward on n images, the batch's loss and right answers, and (when seed
 * is not NULL) the backward seed (softmax - onehot) / n. */
static int forward_loss(sm_trainer *t, const float *x, const int *labels,
                        int n, float *seed, double *loss, int *correct,
                        sm_err *err)
{
    for (int r = 0; r < n; r++)
        if (labels[r] < 0 || labels[r] >= t->n_classes)
            return sm_err_set(err, "%s: label %d of image %d is not a class "
                              "index below %d", t->arch, labels[r], r,
                              t->n_classes);
    const sm_tensor *y = sm_model_forward(t->m, x, n, err);
    if (!y)
        return -1;
    int k = t->n_classes;
    double total = 0;
    int right = 0;
    for (int r = 0; r < n; r++) {
        const float *row = y->data + (size_t)r * (size_t)k;
        int best = (int)sm_model_argmax_row(row, k);
        double s = 0;
        for (int j = 0; j < k; j++)
            s += exp((double)row[j] - row[best]);
        total += log(s) - ((double)row[labels[r]] - row[best]);
        right += best == labels[r];
        if (seed)
            for (int j = 0; j < k; j++)
                seed[(size_t)r * (size_t)k + (size_t)j] =
                    (float)((exp((double)row[j] - row[best]) / s -
                             (j == labels[r])) / n);
    }
    if (loss)
        *loss = total / n;
    if (correct)
        *correct = right;
    return 0;
}

static void update(sm_trainer *t)
{
    const sm_train_opts *o = &t->o;
    float lr = (float)t->lr, wd = (float)o->weight_decay;
    float mu = (float)o->momentum;
    double b1t = 1 - pow(ADAM_B1, (double)t->steps);
    double b2t = 1 - pow(ADAM_B2, (double)t->steps);
    float step = (float)(t->lr / b1t), rb2 = (float)(1 / sqrt(b2t));
    for (int i = 0; i < t->n_params; i++) {
        sm_tensor *p = sm_model_param(t->m, i);
        const float *g = sm_model_param_grad(t->m, i)->data;
        float *w = p->data, *m1 = t->m1[i], *m2 = t->m2[i];
        int64_t n = sm_tensor_numel(p);
        if (o->optimizer == SM_TRAIN_SGD) {
            for (int64_t j = 0; j < n; j++) {
                m1[j] = mu * m1[j] + (g[j] + wd * w[j]);
                w[j] -= lr * m1[j];
            }
        } else {
            for (int64_t j = 0; j < n; j++) {
                float gj = g[j] + wd * w[j];
                m1[j] = (float)ADAM_B1 * m1[j] + (float)(1 - ADAM_B1) * gj;
                m2[j] = (float)ADAM_B2 * m2[j] + (float)(1 - ADAM_B2) * gj * gj;
                w[j] -= step * m1[j] / (sqrtf(m2[j]) * rb2 + (float)ADAM_EPS);
            }
        }
    }
}

int sm_trainer_step(sm_trainer *t, const float *x, const int *labels, int n,
                    double *loss, int *correct, sm_err *err)
{
    if (n < 1 || n > t->o.batch)
        return sm_err_set(err, "%s: a step takes 1..%d images, not %d",
                          t->arch, t->o.batch, n);
    unsigned mode = flush_denormals();
    sm_tensor seed = {0};
    seed.ndim = 2;
    seed.shape[0] = n;
    seed.shape[1] = t->n_classes;
    seed.data = t->seed;
    const sm_tensor *grads[1];
    int rc = forward_loss(t, x, labels, n, t->seed, loss, correct, err) ||
             sm_model_backward(t->m, 0, &seed, grads, err);
    if (rc == 0) {
        t->steps++;
        update(t);
    }
    restore_denormals(mode);
    return rc ? -1 : 0;
}

static int check_set(const sm_trainer *t, const sm_train_set *set, sm_err *err)
{
    int c, h, w;
    sm_train_set_shape(set, &c, &h, &w);
    if (c != t->c || h != t->h || w != t->w)
        return sm_err_set(err, "%s: images are %dx%dx%d, the model's input "
                          "%dx%dx%d", sm_train_set_source(set), c, h, w, t->c,
                          t->h, t->w);
    if (sm_train_set_n_classes(set) != t->n_classes)
        return sm_err_set(err, "%s: %d classes, the model has %d",
                          sm_train_set_source(set),
                          sm_train_set_n_classes(set), t->n_classes);
    return 0;
}

/* The epoch's order: a Fisher-Yates shuffle keyed by (seed, epoch). */
static int shuffle(sm_trainer *t, size_t n, sm_err *err)
{
    if (t->order_n != n) {
        free(t->order);
        t->order_n = 0;
        if (!(t->order = malloc(n * sizeof(size_t))))
            return sm_err_set(err, "%s: out of memory", t->arch);
        t->order_n = n;
    }
    char ep[24];
    snprintf(ep, sizeof ep, "%d", t->epoch);
    uint64_t key = sm_rng_key(t->o.seed, (const char *const[]){"train-shuffle", ep, NULL});
    for (size_t i = 0; i < n; i++)
        t->order[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(sm_rng_uniform(key, i) * (double)(i + 1));
        size_t tmp = t->order[i];
        t->order[i] = t->order[j];
        t->order[j] = tmp;
    }
    return 0;
}

int sm_trainer_epoch(sm_trainer *t, const sm_train_set *set,
                     sm_train_progress_fn progress, void *ctx, double *loss,
                     double *accuracy, sm_err *err)
{
    if (t->epoch >= t->o.epochs)
        return sm_err_set(err, "%s: all %d epochs are done", t->arch,
                          t->o.epochs);
    if (check_set(t, set, err) || shuffle(t, sm_train_set_count(set), err))
        return -1;
    size_t n = sm_train_set_count(set), b = (size_t)t->o.batch;
    int64_t per_epoch = (int64_t)((n + b - 1) / b);
    int64_t total = per_epoch * t->o.epochs;
    sm_train_progress p = {.epoch = t->epoch + 1, .epochs = t->o.epochs,
                           .total = n};
    double sum_loss = 0;
    size_t right = 0;
    for (size_t i = 0; i < n; i += b) {
        int nb = (int)(n - i < b ? n - i : b);
        for (int r = 0; r < nb; r++) {
            size_t k = t->order[i + (size_t)r];
            memcpy(t->xb + (size_t)r * t->per, sm_train_set_image(set, k),
                   t->per * sizeof(float));
            t->lb[r] = sm_train_set_label(set, k);
        }
        if (t->o.schedule == SM_TRAIN_COSINE)
            t->lr = t->o.lr * 0.5 *
                    (1 + cos(M_PI * (double)(t->epoch * per_epoch +
                                             (int64_t)(i / b)) / (double)total));
        double l;
        int c;
        if (sm_trainer_step(t, t->xb, t->lb, nb, &l, &c, err))
            return sm_err_prefix(err, "epoch %d", t->epoch + 1);
        sum_loss += l * nb;
        right += (size_t)c;
        p.seen = i + (size_t)nb;
        p.loss = sum_loss / (double)p.seen;
        p.accuracy = (double)right / (double)p.seen;
        if (progress)
            progress(&p, ctx);
    }
    t->epoch++;
    if (loss)
        *loss = p.loss;
    if (accuracy)
        *accuracy = p.accuracy;
    return 0;
}

int sm_trainer_evaluate(sm_trainer *t, const sm_train_set *set, double *loss,
                        double *accuracy, sm_err *err)
{
    if (check_set(t, set, err))
        return -1;
    size_t n = sm_train_set_count(set);
    int lb[EVAL_BATCH];
    double sum_loss = 0;
    size_t right = 0;
    for (size_t i = 0; i < n; i += EVAL_BATCH) {
        int nb = (int)(n - i < EVAL_BATCH ? n - i : EVAL_BATCH);
        for (int r = 0; r < nb; r++)
            lb[r] = sm_train_set_label(set, i + (size_t)r);
        double l;
        int c;
        unsigned mode = flush_denormals();
        /* The set's images are contiguous: no copy. */
        int rc = forward_loss(t, sm_train_set_image(set, i), lb, nb, NULL, &l,
                              &c, err);
        restore_denormals(mode);
        if (rc)
            return sm_err_prefix(err, "%s", sm_train_set_source(set));
        sum_loss += l * nb;
        right += (size_t)c;
    }
    if (loss)
        *loss = sum_loss / (double)n;
    if (accuracy)
        *accuracy = (double)right / (double)n;
    return 0;
}

/* A YAML double-quoted scalar. */
static size_t yaml_quoted(char *dst, size_t cap, const char *s)
{
    size_t len = 0;
#define PUT(...) len += (size_t)snprintf(dst + len, len < cap ? cap - len : 0, __VA_ARGS__)
    PUT("\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            PUT("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            PUT("\\x%02x", *p);
        else
            PUT("%c", *p);
    }
    PUT("\"");
#undef PUT
    return len;
}

/* The config text; a new string (caller frees) or NULL. */
static char *config_yaml(const sm_trainer *t, const sm_model_config *cfg,
                         const char *const *classes)
{
    sm_preproc pp;
    if (cfg)
        sm_model_config_preproc(cfg, &pp);
    else
        sm_preproc_init(&pp, t->c, t->h, t->w);
    size_t cap = 1024;
    for (int k = 0; k < t->n_classes; k++)
        cap += 4 * strlen(classes[k]) + 8;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t len = (size_t)snprintf(
        s, cap,
        "# Model config written by salmap train: arch %s, %d epochs, seed "
        "%llu (docs/TRAINING.md).\n"
        "input: {channels: %d, height: %d, width: %d}\n"
        "scale: %.9g\n",
        t->arch, t->o.epochs, (unsigned long long)t->o.seed, t->c, t->h, t->w,
        (double)pp.scale);
    const char *key[2] = {"mean", "std"};
    for (int q = 0; q < 2; q++) {
        len += (size_t)snprintf(s + len, cap - len, "%s: [", key[q]);
        for (int ch = 0; ch < t->c; ch++)
            len += (size_t)snprintf(s + len, cap - len, "%s%.9g", ch ? ", " : "",
                                    (double)(q ? pp.std[ch] : pp.mean[ch]));
        len += (size_t)snprintf(s + len, cap - len, "]\n");
    }
    len += (size_t)snprintf(s + len, cap - len, "classes: [");
    for (int k = 0; k < t->n_classes; k++) {
        len += (size_t)snprintf(s + len, cap - len, "%s", k ? ", " : "");
        len += yaml_quoted(s + len, cap - len, classes[k]);
    }
    snprintf(s + len, cap - len, "]\noutput: {name: logits, kind: logits}\n");
    return s;
}

int sm_train_config_path(const char *onnx_path, char *buf, size_t cap)
{
    size_t n = strlen(onnx_path);
    if (n >= 5 && strcmp(onnx_path + n - 5, ".onnx") == 0)
        n -= 5;
    int w = snprintf(buf, cap, "%.*s.yaml", (int)n, onnx_path);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

int sm_trainer_save(sm_trainer *t, const char *onnx_path,
                    const sm_model_config *cfg, const char *const *classes,
                    sm_err *err)
{
    char ypath[4096];
    if (sm_train_config_path(onnx_path, ypath, sizeof ypath))
        return sm_err_set(err, "%s: path too long", onnx_path);
    char *yaml = config_yaml(t, cfg, classes);
    if (!yaml)
        return sm_err_set(err, "%s: out of memory", ypath);
    int rc = sm_train_net_take(t->net, t->m, err) ||
             sm_train_net_save(t->net, onnx_path, err) ||
             sm_file_write_atomic(ypath, yaml, strlen(yaml), err);
    free(yaml);
    return rc ? -1 : 0;
}
