#include "explain/explainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sm_explainer {
    const sm_explainer_class *cls;
    void *params;
    char json[2048];
};

static int set_param(const sm_explainer_class *c, void *params,
                     const sm_param_def *d, const char *text, sm_err *err)
{
    char *end;
    unsigned char *base = params;
    switch (d->type) {
    case SM_PARAM_INT: {
        errno = 0;
        long v = strtol(text, &end, 10);
        if (!*text || *end || errno || v < d->min || v > d->max)
            return sm_err_set(err, "%s.%s: '%s' is not an integer in [%g, %g]",
                              c->name, d->name, text, d->min, d->max);
        int iv = (int)v;
        memcpy(base + d->offset, &iv, sizeof iv);
        return 0;
    }
    case SM_PARAM_FLOAT: {
        errno = 0;
        double v = strtod(text, &end);
        if (!*text || *end || errno || !isfinite(v) || v < d->min || v > d->max)
            return sm_err_set(err, "%s.%s: '%s' is not a number in [%g, %g]",
                              c->name, d->name, text, d->min, d->max);
        memcpy(base + d->offset, &v, sizeof v);
        return 0;
    }
    case SM_PARAM_STRING:
        if (strlen(text) >= SM_PARAM_STR)
            return sm_err_set(err, "%s.%s: value too long", c->name, d->name);
        if (d->choices) {
            int ok = 0;
            char list[512] = "";
            for (const char *const *ch = d->choices; *ch; ch++) {
                ok |= strcmp(*ch, text) == 0;
                snprintf(list + strlen(list), sizeof list - strlen(list),
                         "%s%s", ch == d->choices ? "" : ", ", *ch);
            }
            if (!ok)
                return sm_err_set(err, "%s.%s: '%s' is not one of: %s",
                                  c->name, d->name, text, list);
        }
        snprintf((char *)(base + d->offset), SM_PARAM_STR, "%s", text);
        return 0;
    }
    return sm_err_set(err, "%s.%s: bad parameter type", c->name, d->name);
}

sm_explainer *sm_explainer_new(const char *name, sm_err *err)
{
    const sm_explainer_class *c = sm_explainer_find(name);
    if (!c) {
        char list[512] = "";
        for (const sm_explainer_class *const *k = sm_explainer_all(); *k; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     k == sm_explainer_all() ? "" : ", ", (*k)->name);
        sm_err_set(err, "unknown method '%s' (known: %s)", name, list);
        return NULL;
    }
    sm_explainer *e = calloc(1, sizeof *e);
    if (!e || !(e->params = calloc(1, c->params_size ? c->params_size : 1))) {
        free(e);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    e->cls = c;
    for (const sm_param_def *d = c->params; d && d->name; d++)
        if (set_param(c, e->params, d, d->def, err)) {
            sm_explainer_destroy(&e); /* a bad default: a programmer error */
            return NULL;
        }
    return e;
}

void sm_explainer_destroy(sm_explainer **e)
{
    if (!e || !*e)
        return;
    free((*e)->params);
    free(*e);
    *e = NULL;
}

const sm_explainer_class *sm_explainer_class_of(const sm_explainer *e)
{
    return e->cls;
}

int sm_explainer_set(sm_explainer *e, const char *key, const char *value,
                     sm_err *err)
{
    for (const sm_param_def *d = e->cls->params; d && d->name; d++)
        if (strcmp(d->name, key) == 0)
            return set_param(e->cls, e->params, d, value, err);
    char list[512] = "";
    for (const sm_param_def *d = e->cls->params; d && d->name; d++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                 d == e->cls->params ? "" : ", ", d->name);
    return sm_err_set(err, "%s has no parameter '%s' (it has: %s)",
                      e->cls->name, key, *list ? list : "none");
}

const char *sm_explainer_params_json(sm_explainer *e)
{
    size_t off = 0;
    const unsigned char *base = e->params;
    off += (size_t)snprintf(e->json + off, sizeof e->json - off, "{");
    for (const sm_param_def *d = e->cls->params; d && d->name; d++) {
        if (off >= sizeof e->json)
            break;
        const char *sep = d == e->cls->params ? "" : ", ";
        if (d->type == SM_PARAM_INT) {
            int v;
            memcpy(&v, base + d->offset, sizeof v);
            off += (size_t)snprintf(e->json + off, sizeof e->json - off,
                                    "%s\"%s\": %d", sep, d->name, v);
        } else if (d->type == SM_PARAM_FLOAT) {
            double v;
            memcpy(&v, base + d->offset, sizeof v);
            off += (size_t)snprintf(e->json + off, sizeof e->json - off,
                                    "%s\"%s\": %.15g", sep, d->name, v);
        } else {
            off += (size_t)snprintf(e->json + off, sizeof e->json - off,
                                    "%s\"%s\": \"%s\"", sep, d->name,
                                    (const char *)(base + d->offset));
        }
    }
    if (off < sizeof e->json)
        snprintf(e->json + off, sizeof e->json - off, "}");
    return e->json;
}

/* What a method leaves unset reads as nothing: no score, no evaluations,
 * no extras. */
static void clear_out(sm_explain_out *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        out[i].score = 0;
        out[i].evals = 0;
        snprintf(out[i].extras, sizeof out[i].extras, "{}");
    }
}

/* run() of a class that has only the neighbourhood ops: each image alone,
 * all of its samples scored at once, then fitted. */
static int run_neighbourhoods(const sm_explainer_class *cls,
                              const void *params, const sm_explain_ctx *ctx,
                              const sm_explain_batch *b, sm_explain_out *out,
                              sm_err *err)
{
    const sm_tensor *x = b->x;
    int64_t c = x->shape[1], h = x->shape[2], w = x->shape[3];
    for (int64_t i = 0; i < x->shape[0]; i++) {
        const float *xi = x->data + i * c * h * w;
        int t = b->target[i];
        const char *id = b->ids[i];
        int64_t n = cls->samples(params, ctx, xi, c, h, w, t, id, err);
        if (n < 0)
            return -1;
        double *y = malloc(sizeof(double) * (size_t)(n ? n : 1));
        if (!y)
            return sm_err_set(err, "out of memory");
        int rc = cls->score(params, ctx, xi, c, h, w, t, id, 0, n, y, err) ||
                 cls->fit(params, ctx, xi, c, h, w, t, id, y, n, out + i, err);
        free(y);
        if (rc)
            return -1;
    }
    return 0;
}

int sm_explainer_run(sm_explainer *e, const sm_explain_ctx *ctx,
                     const sm_explain_batch *b, sm_explain_out *out,
                     sm_err *err)
{
    if (e->cls->check && e->cls->check(e->params, err))
        return -1;
    clear_out(out, b->x->shape[0]);
    if (e->cls->run ? e->cls->run(e->params, ctx, b, out, err)
                    : run_neighbourhoods(e->cls, e->params, ctx, b, out, err))
        return sm_err_prefix(err, "%s", e->cls->name);
    return 0;
}

int sm_explainer_chunked(const sm_explainer *e)
{
    return e->cls->samples && e->cls->score && e->cls->fit;
}

/* What every neighbourhood op checks first: the method has the ops and
 * its parameters hold together. */
static int chunk_ready(const sm_explainer *e, sm_err *err)
{
    if (!sm_explainer_chunked(e))
        return sm_err_set(err, "%s does not score its neighbourhood in "
                          "chunks", e->cls->name);
    return e->cls->check ? e->cls->check(e->params, err) : 0;
}

int64_t sm_explainer_samples(sm_explainer *e, const sm_explain_ctx *ctx,
                             const float *x, int64_t c, int64_t h, int64_t w,
                             int target, const char *id, sm_err *err)
{
    if (chunk_ready(e, err))
        return -1;
    int64_t n = e->cls->samples(e->params, ctx, x, c, h, w, target, id, err);
    if (n < 0)
        sm_err_prefix(err, "%s", e->cls->name);
    return n < 0 ? -1 : n;
}

int sm_explainer_score(sm_explainer *e, const sm_explain_ctx *ctx,
                       const float *x, int64_t c, int64_t h, int64_t w,
                       int target, const char *id, int64_t first,
                       int64_t count, double *y, sm_err *err)
{
    if (chunk_ready(e, err))
        return -1;
    if (first < 0 || count < 0)
        return sm_err_set(err, "%s: image '%s': samples %lld + %lld: a "
                          "negative range", e->cls->name, id,
                          (long long)first, (long long)count);
    if (e->cls->score(e->params, ctx, x, c, h, w, target, id, first, count,
                      y, err))
        return sm_err_prefix(err, "%s", e->cls->name);
    return 0;
}

int sm_explainer_fit(sm_explainer *e, const sm_explain_ctx *ctx,
                     const float *x, int64_t c, int64_t h, int64_t w,
                     int target, const char *id, const double *y, int64_t n,
                     sm_explain_out *out, sm_err *err)
{
    if (chunk_ready(e, err))
        return -1;
    clear_out(out, 1);
    if (e->cls->fit(e->params, ctx, x, c, h, w, target, id, y, n, out, err))
        return sm_err_prefix(err, "%s", e->cls->name);
    return 0;
}
