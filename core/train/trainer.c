#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/yaml_strict.h"
#include "model/score.h"
#include "train/optim.h"
#include "util/file.h"

#define EVAL_BATCH 512

struct sm_trainer {
    sm_train_opts o;
    char arch[32];
    sm_train_net *net;
    sm_model *m;
    int c, h, w, n_classes;
    size_t per;               /* floats per image */
    sm_optim *opt;
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

static sm_optim_kind optim_kind(sm_train_optimizer opt)
{
    return opt == SM_TRAIN_SGD ? SM_OPTIM_SGD
         : opt == SM_TRAIN_ADAM ? SM_OPTIM_ADAM : (sm_optim_kind)-1;
}

double sm_train_default_lr(sm_train_optimizer opt)
{
    return sm_optim_default_lr(optim_kind(opt));
}

/* The optimizer the options describe: Adam with PyTorch's betas and eps. */
static void optim_opts(const sm_train_opts *o, sm_optim_opts *p)
{
    sm_optim_opts_init(p, optim_kind(o->optimizer));
    p->lr = o->lr;
    p->momentum = o->momentum;
    p->weight_decay = o->weight_decay;
}

int sm_train_opts_check(const sm_train_opts *o, sm_err *err)
{
    if (!o->arch)
        return sm_err_set(err, "no architecture given");
    if (o->epochs < 1)
        return sm_err_set(err, "epochs must be at least 1, not %d", o->epochs);
    if (o->batch < 1)
        return sm_err_set(err, "batch must be at least 1, not %d", o->batch);
    sm_optim_opts p;
    optim_opts(o, &p);
    if (sm_optim_opts_check(&p, err))
        return -1;
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
    sm_optim_destroy(&t->opt);
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
    sm_optim_opts p;
    optim_opts(o, &p);
    if (!(t->net = sm_train_net_new(o->arch, c, h, w, n_classes, o->seed, err)) ||
        !(t->m = sm_train_net_model(t->net, o->threads, err)) ||
        !(t->opt = sm_optim_new(t->m, &p, err)))
        goto fail;
    t->seed = malloc((size_t)o->batch * (size_t)n_classes * sizeof(float));
    t->xb = malloc((size_t)o->batch * t->per * sizeof(float));
    t->lb = malloc((size_t)o->batch * sizeof(int));
    if (!t->seed || !t->xb || !t->lb) {
        sm_err_set(err, "%s: out of memory", o->arch);
        goto fail;
    }
    return t;
fail:
    sm_trainer_destroy(&t);
    return NULL;
}

sm_model *sm_trainer_model(sm_trainer *t) { return t->m; }

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

int sm_trainer_step(sm_trainer *t, const float *x, const int *labels, int n,
                    double *loss, int *correct, sm_err *err)
{
    if (n < 1 || n > t->o.batch)
        return sm_err_set(err, "%s: a step takes 1..%d images, not %d",
                          t->arch, t->o.batch, n);
    unsigned mode = sm_optim_flush_denormals();
    sm_tensor seed = {0};
    seed.ndim = 2;
    seed.shape[0] = n;
    seed.shape[1] = t->n_classes;
    seed.data = t->seed;
    const sm_tensor *grads[1];
    int rc = forward_loss(t, x, labels, n, t->seed, loss, correct, err) ||
             sm_model_backward(t->m, 0, &seed, grads, err);
    if (rc == 0)
        sm_optim_step(t->opt, t->lr);
    sm_optim_restore_denormals(mode);
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
    sm_train_shuffle(t->order, n, t->o.seed, t->epoch);
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
        unsigned mode = sm_optim_flush_denormals();
        /* The set's images are contiguous: no copy. */
        int rc = forward_loss(t, sm_train_set_image(set, i), lb, nb, NULL, &l,
                              &c, err);
        sm_optim_restore_denormals(mode);
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
        len += sm_yaml_quote(s + len, cap - len, classes[k]);
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
