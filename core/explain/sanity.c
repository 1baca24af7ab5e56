#include "explain/sanity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

/* --- Spearman ----------------------------------------------------------- */

typedef struct ranked {
    float v;
    int64_t i;
} ranked;

static int by_value(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Ranks 1..n of v into r, ties the average of theirs; o is scratch. */
static void ranks(const float *v, int64_t n, ranked *o, double *r)
{
    for (int64_t i = 0; i < n; i++)
        o[i] = (ranked){v[i], i};
    qsort(o, (size_t)n, sizeof *o, by_value);
    for (int64_t i = 0; i < n;) {
        int64_t j = i + 1;
        while (j < n && o[j].v == o[i].v)
            j++;
        double avg = (double)(i + 1 + j) / 2; /* of ranks i+1 .. j */
        for (int64_t k = i; k < j; k++)
            r[o[k].i] = avg;
        i = j;
    }
}

double sm_sanity_spearman(const float *a, const float *b, int64_t n)
{
    if (n < 2)
        return NAN;
    for (int64_t i = 0; i < n; i++)
        if (isnan(a[i]) || isnan(b[i]))
            return NAN;
    ranked *o = malloc(sizeof *o * (size_t)n);
    double *ra = malloc(sizeof *ra * (size_t)n), *rb = malloc(sizeof *rb * (size_t)n);
    double r = NAN;
    if (o && ra && rb) {
        ranks(a, n, o, ra);
        ranks(b, n, o, rb);
        /* Ranks are multiples of 1/2 and their mean (n + 1) / 2: every
         * term below is exact, so a map against itself gives 1 exactly. */
        double mean = (double)(n + 1) / 2, sab = 0, saa = 0, sbb = 0;
        for (int64_t i = 0; i < n; i++) {
            double da = ra[i] - mean, db = rb[i] - mean;
            sab += da * db;
            saa += da * da;
            sbb += db * db;
        }
        if (saa > 0 && sbb > 0) {
            r = sab / sqrt(saa * sbb);
            r = r > 1 ? 1 : r < -1 ? -1 : r;
        }
    }
    free(o);
    free(ra);
    free(rb);
    return r;
}

/* --- Layers ------------------------------------------------------------- */

typedef struct layer {
    int node;         /* in evaluation order */
    const char *name; /* the node's (borrowed from the model) */
    int *params, n;   /* indices of sm_model_param */
} layer;

struct sm_sanity_layers {
    sm_model *m;
    layer *layer;        /* top first */
    int n;
    int n_params;        /* of the trainable model */
    sm_tensor **orig;    /* [param]: the loaded weights (NULL: not a layer's) */
    double *rms;         /* [param] */
};

/* 1 when input `slot` of a node of type op is a learned weight. */
static int learned(const char *op, int slot)
{
    if (!strcmp(op, "Conv") || !strcmp(op, "Gemm") || !strcmp(op, "MatMul"))
        return slot >= 1;
    if (!strcmp(op, "BatchNormalization"))
        return slot == 1 || slot == 2; /* scale, bias; not the statistics */
    return 0;
}

static int by_node_desc(const void *a, const void *b)
{
    const layer *x = a, *y = b;
    return (x->node < y->node) - (x->node > y->node);
}

void sm_sanity_layers_destroy(sm_sanity_layers **lp)
{
    if (!lp || !*lp)
        return;
    sm_sanity_layers *l = *lp;
    sm_sanity_layers_randomise(l, 0, 0, NULL);
    for (int k = 0; k < l->n; k++)
        free(l->layer[k].params);
    for (int i = 0; l->orig && i < l->n_params; i++)
        sm_tensor_destroy(&l->orig[i]);
    free(l->orig);
    free(l->rms);
    free(l->layer);
    free(l);
    *lp = NULL;
}

/* Adds parameter i to the layer of node `node`, made when new. */
static int add_param(sm_sanity_layers *l, int node, const char *name, int i)
{
    int k = 0;
    while (k < l->n && l->layer[k].node != node)
        k++;
    if (k == l->n) {
        layer *g = realloc(l->layer, sizeof *g * (size_t)(l->n + 1));
        if (!g)
            return -1;
        l->layer = g;
        g[k] = (layer){.node = node, .name = name};
        l->n++;
    }
    int *p = realloc(l->layer[k].params, sizeof *p * (size_t)(l->layer[k].n + 1));
    if (!p)
        return -1;
    p[l->layer[k].n++] = i;
    l->layer[k].params = p;
    return 0;
}

sm_sanity_layers *sm_sanity_layers_new(sm_model *m, const char *origin,
                                       sm_err *err)
{
    sm_sanity_layers *l = calloc(1, sizeof *l);
    if (!l) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    l->m = m;
    /* Parameters are listed only while the model is trainable; the
     * tensors are the ones its plans read. */
    sm_model_set_trainable(m, 1);
    l->n_params = sm_model_n_params(m);
    l->orig = calloc((size_t)l->n_params + 1, sizeof *l->orig);
    l->rms = calloc((size_t)l->n_params + 1, sizeof *l->rms);
    int rc = l->orig && l->rms ? 0 : -1;
    for (int i = 0; i < l->n_params && rc == 0; i++) {
        const char *node, *op;
        int slot, at = sm_model_param_reader(m, i, &node, &op, &slot);
        if (at < 0 || !learned(op, slot))
            continue;
        const sm_tensor *t = sm_model_param(m, i);
        if (!(l->orig[i] = sm_tensor_clone(t)) || add_param(l, at, node, i)) {
            rc = -1;
            break;
        }
        double ss = 0;
        int64_t n = sm_tensor_numel(t);
        for (int64_t j = 0; j < n; j++)
            ss += (double)t->data[j] * t->data[j];
        l->rms[i] = n ? sqrt(ss / (double)n) : 0;
    }
    /* Runs go back to the model's own constant folding: faster, and the
     * gradients of the weights are not wanted. */
    sm_model_set_trainable(m, 0);
    if (rc) {
        sm_err_set(err, "out of memory");
    } else if (l->n == 0) {
        sm_err_set(err, "%s: no layer with learned weights to randomise "
                   "(Conv, Gemm, MatMul or BatchNormalization with float "
                   "initializers)", origin);
        rc = -1;
    }
    if (rc) {
        sm_sanity_layers_destroy(&l);
        return NULL;
    }
    qsort(l->layer, (size_t)l->n, sizeof *l->layer, by_node_desc);
    return l;
}

int sm_sanity_layers_count(const sm_sanity_layers *l) { return l->n; }

const char *sm_sanity_layers_name(const sm_sanity_layers *l, int k)
{
    return k >= 0 && k < l->n ? l->layer[k].name : NULL;
}

int sm_sanity_layers_randomise(sm_sanity_layers *l, int k, uint64_t seed,
                               sm_err *err)
{
    if (k < 0 || k > l->n)
        return sm_err_set(err, "step %d: the model has %d layers", k, l->n);
    sm_model_set_trainable(l->m, 1);
    if (sm_model_n_params(l->m) != l->n_params) { /* its lists failed */
        sm_model_set_trainable(l->m, 0);
        return sm_err_set(err, "out of memory");
    }
    for (int g = 0; g < l->n; g++)
        for (int q = 0; q < l->layer[g].n; q++) {
            int i = l->layer[g].params[q];
            sm_tensor *t = sm_model_param(l->m, i);
            int64_t n = sm_tensor_numel(t);
            if (g >= k) {
                memcpy(t->data, l->orig[i]->data, sizeof(float) * (size_t)n);
                continue;
            }
            uint64_t key = sm_rng_key(seed, (const char *const[]){
                "sanity", sm_model_param_name(l->m, i), NULL});
            for (int64_t j = 0; j < n; j++)
                t->data[j] = (float)(l->rms[i] * sm_rng_normal(key, (uint64_t)j));
        }
    /* Turning training off drops every plan, and with them the constant
     * subgraphs (a transposed weight...) folded from the old weights. */
    sm_model_set_trainable(l->m, 0);
    return 0;
}

/* --- The check ---------------------------------------------------------- */

void sm_sanity_report_destroy(sm_sanity_report **rp)
{
    if (!rp || !*rp)
        return;
    free((*rp)->stat);
    free(*rp);
    *rp = NULL;
}

/* Mean and sample sd of v[0..n). */
static void mean_sd(const double *v, int n, double *mean, double *sd)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n ? s / n : NAN;
    for (int i = 0; i < n; i++)
        ss += (v[i] - *mean) * (v[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : NAN;
}

/* Everything one run holds. */
typedef struct run {
    const sm_explain_setup *s;
    const sm_tensor *x;
    const char *const *ids;
    sm_explain_result *res;  /* N: targets, then each method's maps */
    float *orig;             /* n_ex x N x hw: the maps as loaded */
    float *maps;             /* N x hw */
    float *a, *b;            /* hw: |maps| */
    double *r, *ra;          /* N */
    int64_t n, hw;
} run;

/* Maps of method e on the images into maps (res's targets kept). */
static int maps_of(run *w, sm_explainer *e, float *maps, sm_err *err)
{
    for (int64_t q = 0; q < w->n; q++)
        w->res[q].map = maps + q * w->hw;
    int rc = sm_explain_images(w->s, e, w->x, w->ids, w->res, err);
    sm_explain_results_free(w->res, w->n); /* leaves them empty */
    return rc;
}

/* The correlations of w->maps with method m's original maps into st. */
static void compare(run *w, int m, sm_sanity_stat *st)
{
    int k = 0;
    for (int64_t q = 0; q < w->n; q++) {
        if (w->res[q].failed)
            continue;
        const float *o = w->orig + ((int64_t)m * w->n + q) * w->hw,
                    *p = w->maps + q * w->hw;
        for (int64_t j = 0; j < w->hw; j++) {
            w->a[j] = fabsf(o[j]);
            w->b[j] = fabsf(p[j]);
        }
        double r = sm_sanity_spearman(o, p, w->hw),
               ra = sm_sanity_spearman(w->a, w->b, w->hw);
        if (isnan(r) || isnan(ra))
            continue;
        w->r[k] = r;
        w->ra[k++] = ra;
    }
    mean_sd(w->r, k, &st->spearman, &st->spearman_sd);
    mean_sd(w->ra, k, &st->spearman_abs, &st->spearman_abs_sd);
    st->images = k;
}

sm_sanity_report *sm_sanity_run(const sm_explain_setup *s,
                                sm_sanity_layers *l,
                                sm_explainer *const *ex, int n_ex,
                                const sm_tensor *x, const char *const *ids,
                                uint64_t seed, sm_sanity_progress progress,
                                void *u, sm_err *err)
{
    for (int m = 0; m < n_ex; m++)
        if (sm_explainer_class_of(ex[m])->no_map) {
            sm_err_set(err, "method '%s' gives no map to compare",
                       sm_explainer_class_of(ex[m])->name);
            return NULL;
        }
    if (x->ndim != 4 || x->shape[0] < 1) {
        sm_err_set(err, "no images to explain");
        return NULL;
    }
    sm_explain_setup so = *s;
    so.metrics = 0;
    run w = {.s = &so, .x = x, .ids = ids, .n = x->shape[0],
             .hw = x->shape[2] * x->shape[3]};
    sm_sanity_report *rep = calloc(1, sizeof *rep);
    size_t nhw = (size_t)(w.n * w.hw);
    w.res = calloc((size_t)w.n, sizeof *w.res);
    w.orig = malloc(sizeof(float) * nhw * (size_t)(n_ex ? n_ex : 1));
    w.maps = malloc(sizeof(float) * nhw);
    w.a = malloc(sizeof(float) * (size_t)w.hw);
    w.b = malloc(sizeof(float) * (size_t)w.hw);
    w.r = malloc(sizeof(double) * (size_t)w.n);
    w.ra = malloc(sizeof(double) * (size_t)w.n);
    int n_steps = sm_sanity_layers_count(l) + 1, rc = -1;
    if (rep)
        rep->stat = calloc((size_t)(n_ex * n_steps) + 1, sizeof *rep->stat);
    if (!rep || !rep->stat || !w.res || !w.orig || !w.maps || !w.a || !w.b ||
        !w.r || !w.ra) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    rep->n_methods = n_ex;
    rep->n_steps = n_steps;
    long total = (long)(n_steps + 1) * n_ex * (long)w.n;
    /* The targets and the original maps, on the model as loaded. */
    if (sm_sanity_layers_randomise(l, 0, seed, err) ||
        sm_explain_targets(&so, x, NULL, ids, w.res, err))
        goto out;
    for (int m = 0; m < n_ex; m++) {
        if (maps_of(&w, ex[m], w.orig + (size_t)m * nhw, err))
            goto out;
        rep->maps += w.n;
        if (progress)
            progress(rep->maps, total, u);
    }
    for (int step = 0; step < n_steps; step++) {
        if (sm_sanity_layers_randomise(l, step, seed, err))
            goto out;
        for (int m = 0; m < n_ex; m++) {
            if (maps_of(&w, ex[m], w.maps, err))
                goto out;
            compare(&w, m, &rep->stat[m * n_steps + step]);
            rep->maps += w.n;
            if (progress)
                progress(rep->maps, total, u);
        }
    }
    rc = 0;
out:
    sm_sanity_layers_randomise(l, 0, seed, NULL);
    free(w.res);
    free(w.orig);
    free(w.maps);
    free(w.a);
    free(w.b);
    free(w.r);
    free(w.ra);
    if (rc)
        sm_sanity_report_destroy(&rep);
    return rep;
}
