#include "explain/explainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render/colormap.h"

struct sm_explainer {
    const sm_explainer_class *cls;
    void *params;
    sm_text json; /* the parameters as JSON, rebuilt on each ask */
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
    return sm_explainer_new_class(c, err);
}

sm_explainer *sm_explainer_new_class(const sm_explainer_class *c,
                                     sm_err *err)
{
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
    sm_text_free(&(*e)->json);
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
    sm_text *t = &e->json;
    const unsigned char *base = e->params;
    t->len = 0;
    int rc = sm_text_addf(t, "{");
    for (const sm_param_def *d = e->cls->params; d && d->name && !rc; d++) {
        const char *sep = d == e->cls->params ? "" : ", ";
        if (d->type == SM_PARAM_INT) {
            int v;
            memcpy(&v, base + d->offset, sizeof v);
            rc = sm_text_addf(t, "%s\"%s\": %d", sep, d->name, v);
        } else if (d->type == SM_PARAM_FLOAT) {
            double v;
            memcpy(&v, base + d->offset, sizeof v);
            rc = sm_text_addf(t, "%s\"%s\": %.15g", sep, d->name, v);
        } else {
            rc = sm_text_addf(t, "%s\"%s\": \"%s\"", sep, d->name,
                              (const char *)(base + d->offset));
        }
    }
    return rc || sm_text_addf(t, "}") ? NULL : t->s;
}

sm_model *sm_explain_aux_model(const sm_explain_ctx *ctx, const char *name,
                               sm_err *err)
{
    sm_text have = {0};
    for (int i = 0; i < ctx->n_aux; i++) {
        if (strcmp(ctx->aux[i].name, name) == 0) {
            sm_text_free(&have);
            return ctx->aux[i].model;
        }
        sm_text_addf(&have, "%s%s", i ? ", " : "", ctx->aux[i].name);
    }
    sm_err_set(err, "the job has no auxiliary model '%s' (it has: %s)", name,
               have.len ? have.s : "none");
    sm_text_free(&have);
    return NULL;
}

void sm_explain_out_free(sm_explain_out *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        sm_record_free(&out[i].record);
}

/* What a method leaves unset reads as nothing: no score, no evaluations,
 * an empty record. out's records hold nothing yet (the caller's arrays
 * may be uninitialised). */
static void clear_out(sm_explain_out *out, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        out[i].score = 0;
        out[i].evals = 0;
        memset(&out[i].record, 0, sizeof out[i].record);
    }
}

int sm_explain_signed(const void *params)
{
    (void)params;
    return 1;
}

static int map_signed(const sm_explainer_class *c, const void *params)
{
    return c->signed_map && c->signed_map(params);
}

int sm_explainer_map_signed(const sm_explainer *e)
{
    return map_signed(e->cls, e->params);
}

void sm_explainers_describe(sm_explainer *const *ex, int n,
                            sm_jobinfo_method *m)
{
    for (int k = 0; k < n; k++)
        m[k] = (sm_jobinfo_method){ex[k]->cls->name,
                                   sm_explainer_params_json(ex[k]),
                                   sm_explainer_map_signed(ex[k])};
}

/* The colour scale of out's map (hw values) into its record as "scale":
 * the legend of the map's PNG (render/colormap.h). A map with a NaN gets
 * none: its PNG is refused later, with the reason. */
static void add_scale(const sm_explainer_class *c, const void *params,
                      sm_explain_out *out, int64_t hw)
{
    sm_cmap_scale s;
    sm_err err;
    if (c->no_map || !out->map ||
        sm_cmap_scale_of(map_signed(c, params) ? SM_CMAP_DIVERGING
                                               : SM_CMAP_SEQUENTIAL,
                         out->map, (size_t)hw, c->name, &s, &err))
        return;
    sm_record_addf(&out->record, "scale",
                   "{\"colormap\": \"%s\", \"min\": %.9g, \"max\": %.9g}",
                   sm_cmap_kind_name(s.kind), s.lo, s.hi);
}

/* -1 with a message when an add to out's record ran out of memory (the
 * record marks it; methods add without checking). */
static int record_check(const sm_explainer_class *c, const sm_explain_out *out,
                        const char *id, sm_err *err)
{
    if (!out->record.failed)
        return 0;
    return sm_err_set(err, "%s: image '%s': out of memory for its record",
                      c->name, id ? id : "?");
}

/* ---- rounds ------------------------------------------------------------- */

/* A method loops forever only by mistake; this many rounds is an error. */
#define MAX_ROUNDS (1 << 20)

static int has_rounds(const sm_explainer_class *c)
{
    return c->begin && c->propose && c->round_score && c->update &&
           c->finish && c->encode && c->decode && c->release;
}

static int has_one_round(const sm_explainer_class *c)
{
    return c->samples && c->score && c->fit;
}

/* The one round of a class with samples, score and fit: n samples, all
 * scored, then fitted. */
typedef struct one_round {
    int64_t n;
    double *y;  /* its n scores, NULL until they are in */
} one_round;

struct sm_explain_rounds {
    const sm_explainer_class *cls;
    const void *params;
    sm_explain_ctx ctx;
    sm_explain_image im;
    void *st;       /* the class's state, or a one_round */
    int64_t n;      /* the proposed round's count, 0 when done */
    int round;
    sm_explainer *e; /* borrowed: what made it (sm_explain_rounds_new) */
};

static void one_round_free(one_round *o)
{
    if (o)
        free(o->y);
    free(o);
}

static void *op_begin(sm_explain_rounds *r, sm_err *err)
{
    const sm_explainer_class *c = r->cls;
    const sm_explain_image *im = &r->im;
    if (has_rounds(c))
        return c->begin(r->params, &r->ctx, im, err);
    one_round *o = calloc(1, sizeof *o);
    if (!o) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    o->n = c->samples(r->params, &r->ctx, im->x, im->c, im->h, im->w,
                      im->target, im->id, err);
    if (o->n < 0) {
        free(o);
        return NULL;
    }
    return o;
}

static int64_t op_propose(sm_explain_rounds *r, sm_err *err)
{
    if (has_rounds(r->cls))
        return r->cls->propose(r->params, &r->ctx, &r->im, r->st, err);
    const one_round *o = r->st;
    return o->y ? 0 : o->n;
}

static int op_score(sm_explain_rounds *r, int64_t first, int64_t count,
                    double *y, sm_err *err)
{
    const sm_explainer_class *c = r->cls;
    const sm_explain_image *im = &r->im;
    if (has_rounds(c))
        return c->round_score(r->params, &r->ctx, im, r->st, first, count, y,
                              err);
    return c->score(r->params, &r->ctx, im->x, im->c, im->h, im->w,
                    im->target, im->id, first, count, y, err);
}

static int op_update(sm_explain_rounds *r, const double *y, int64_t n,
                     sm_err *err)
{
    if (has_rounds(r->cls))
        return r->cls->update(r->params, &r->ctx, &r->im, r->st, y, n, err);
    one_round *o = r->st;
    if (!(o->y = malloc(sizeof(double) * (size_t)(n ? n : 1))))
        return sm_err_set(err, "out of memory");
    memcpy(o->y, y, sizeof(double) * (size_t)n);
    return 0;
}

static int op_finish(sm_explain_rounds *r, sm_explain_out *out, sm_err *err)
{
    const sm_explainer_class *c = r->cls;
    const sm_explain_image *im = &r->im;
    if (has_rounds(c))
        return c->finish(r->params, &r->ctx, im, r->st, out, err);
    const one_round *o = r->st;
    return c->fit(r->params, &r->ctx, im->x, im->c, im->h, im->w, im->target,
                  im->id, o->y, o->n, out, err);
}

/* A one-round state taken up from bytes holds nothing beyond the header
 * (a state is encoded only while its round is proposed, so never with its
 * scores): it is begun again, and its n checked against the header's. */
static one_round *one_round_decode(sm_explain_rounds *r, size_t len,
                                   sm_err *err)
{
    if (len) {
        sm_err_set(err, "image '%s': %zu bytes after a one-round state's "
                   "header", r->im.id, len);
        return NULL;
    }
    return op_begin(r, err);
}

/* Proposes the next round into r->n. 0 or -1. */
static int propose(sm_explain_rounds *r, sm_err *err)
{
    if (r->round >= MAX_ROUNDS)
        return sm_err_set(err, "image '%s': not done after %d rounds",
                          r->im.id, r->round);
    int64_t n = op_propose(r, err);
    if (n < 0)
        return -1;
    r->n = n;
    r->round += n > 0;
    return 0;
}

int sm_explainer_chunked(const sm_explainer *e)
{
    return has_rounds(e->cls) || has_one_round(e->cls);
}

/* The rounds header before the class's bytes: the round (int32), then
 * its n (int64), packed. */
#define HEADER_BYTES 12

static sm_explain_rounds *rounds_open(const sm_explainer_class *c,
                                      const void *params,
                                      const sm_explain_ctx *ctx,
                                      const sm_explain_image *im,
                                      const uint8_t *state, size_t len,
                                      sm_err *err)
{
    sm_explain_rounds *r = calloc(1, sizeof *r);
    if (!r) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    *r = (sm_explain_rounds){c, params, *ctx, *im, NULL, 0, 0, NULL};
    if (!state) {
        if ((r->st = op_begin(r, err)) && propose(r, err) == 0)
            return r;
        sm_explain_rounds_destroy(&r);
        return NULL;
    }
    int32_t round;
    int64_t n;
    if (len < HEADER_BYTES) {
        sm_explain_rounds_destroy(&r);
        sm_err_set(err, "image '%s': state of %zu bytes", im->id, len);
        return NULL;
    }
    memcpy(&round, state, sizeof round);
    memcpy(&n, state + sizeof round, sizeof n);
    if (round < 1 || round > MAX_ROUNDS || n < 1) {
        sm_explain_rounds_destroy(&r);
        sm_err_set(err, "image '%s': a state with round %d of %lld samples",
                   im->id, (int)round, (long long)n);
        return NULL;
    }
    r->round = round;
    r->n = n;
    state += HEADER_BYTES;
    len -= HEADER_BYTES;
    r->st = has_rounds(c) ? c->decode(params, ctx, im, state, len, err)
                          : one_round_decode(r, len, err);
    int64_t now = r->st ? op_propose(r, err) : -1;
    if (r->st && now >= 0 && now != n)
        sm_err_set(err, "image '%s': a state whose round is not its own (%lld "
                   "samples, not %lld)", im->id, (long long)n,
                   (long long)now);
    if (now != n)
        sm_explain_rounds_destroy(&r);
    return r;
}

sm_explain_rounds *sm_explain_rounds_new(sm_explainer *e,
                                         const sm_explain_ctx *ctx,
                                         const sm_explain_image *im,
                                         const uint8_t *state, size_t len,
                                         sm_err *err)
{
    sm_explain_rounds *r = NULL;
    if (!sm_explainer_chunked(e))
        sm_err_set(err, "does not explain an image in rounds");
    else if (!e->cls->check || e->cls->check(e->params, err) == 0)
        r = rounds_open(e->cls, e->params, ctx, im, state, len, err);
    if (!r)
        sm_err_prefix(err, "%s", e->cls->name);
    else
        r->e = e;
    return r;
}

void sm_explain_rounds_destroy(sm_explain_rounds **r)
{
    if (!r || !*r)
        return;
    if ((*r)->st) {
        if (has_rounds((*r)->cls))
            (*r)->cls->release((*r)->st);
        else
            one_round_free((*r)->st);
    }
    free(*r);
    *r = NULL;
}

const sm_explainer_class *sm_explain_rounds_class(const sm_explain_rounds *r)
{
    return r->cls;
}

sm_explainer *sm_explain_rounds_explainer(const sm_explain_rounds *r)
{
    return r->e;
}

const sm_explain_image *sm_explain_rounds_image(const sm_explain_rounds *r)
{
    return &r->im;
}

int64_t sm_explain_rounds_n(const sm_explain_rounds *r)
{
    return r->n;
}

int sm_explain_rounds_round(const sm_explain_rounds *r)
{
    return r->round;
}

int sm_explain_rounds_score(sm_explain_rounds *r, int64_t first,
                            int64_t count, double *y, sm_err *err)
{
    if (first < 0 || count < 0 || first > r->n || count > r->n - first)
        return sm_err_set(err, "%s: image '%s': samples %lld + %lld are not "
                          "within its round of %lld", r->cls->name, r->im.id,
                          (long long)first, (long long)count,
                          (long long)r->n);
    if (op_score(r, first, count, y, err))
        return sm_err_prefix(err, "%s", r->cls->name);
    return 0;
}

int sm_explain_rounds_update(sm_explain_rounds *r, const double *y,
                             int64_t n, sm_err *err)
{
    if (r->n == 0 || n != r->n)
        return sm_err_set(err, "%s: image '%s': %lld scores for a round of "
                          "%lld", r->cls->name, r->im.id, (long long)n,
                          (long long)r->n);
    if (op_update(r, y, n, err) || propose(r, err))
        return sm_err_prefix(err, "%s", r->cls->name);
    return 0;
}

int sm_explain_rounds_finish(sm_explain_rounds *r, sm_explain_out *out,
                             sm_err *err)
{
    if (r->n != 0)
        return sm_err_set(err, "%s: image '%s': round %d is not scored",
                          r->cls->name, r->im.id, r->round);
    clear_out(out, 1);
    if (op_finish(r, out, err))
        return sm_err_prefix(err, "%s", r->cls->name);
    add_scale(r->cls, r->params, out, r->im.h * r->im.w);
    return record_check(r->cls, out, r->im.id, err);
}

int sm_explain_rounds_encode(const sm_explain_rounds *r, sm_text *t,
                             sm_err *err)
{
    if (r->n == 0)
        return sm_err_set(err, "%s: image '%s': done, no round to encode",
                          r->cls->name, r->im.id);
    int32_t round = r->round;
    size_t at = t->len;
    if (sm_text_add(t, &round, sizeof round) == 0 &&
        sm_text_add(t, &r->n, sizeof r->n) == 0 &&
        (!has_rounds(r->cls) || r->cls->encode(r->params, r->st, t, err) == 0))
        return 0;
    t->len = at;
    return sm_err_set(err, "%s: image '%s': cannot encode its state",
                      r->cls->name, r->im.id);
}

/* run() of a class without one: each image alone, all its rounds here. */
static int run_rounds(const sm_explainer_class *cls, const void *params,
                      const sm_explain_ctx *ctx, const sm_explain_batch *b,
                      sm_explain_out *out, sm_err *err)
{
    const sm_tensor *x = b->x;
    int64_t c = x->shape[1], h = x->shape[2], w = x->shape[3];
    for (int64_t i = 0; i < x->shape[0]; i++) {
        sm_explain_image im = {x->data + i * c * h * w, c, h, w, b->target[i],
                               b->ids[i]};
        sm_explain_rounds *r =
            rounds_open(cls, params, ctx, &im, NULL, 0, err);
        double *y = NULL;
        int rc = r ? 0 : -1;
        while (rc == 0 && r->n > 0) {
            double *grown = realloc(y, sizeof(double) * (size_t)r->n);
            rc = !grown ? sm_err_set(err, "out of memory")
                        : op_score(r, 0, r->n, grown, err) ||
                              op_update(r, grown, r->n, err) ||
                              propose(r, err);
            if (grown)
                y = grown;
        }
        if (rc == 0)
            rc = op_finish(r, &out[i], err);
        free(y);
        sm_explain_rounds_destroy(&r);
        if (rc)
            return -1;
    }
    return 0;
}

int sm_explainer_run(sm_explainer *e, const sm_explain_ctx *ctx,
                     const sm_explain_batch *b, sm_explain_out *out,
                     sm_err *err)
{
    clear_out(out, b->x->shape[0]);
    if (e->cls->check && e->cls->check(e->params, err))
        return -1;
    if (e->cls->run ? e->cls->run(e->params, ctx, b, out, err)
                    : run_rounds(e->cls, e->params, ctx, b, out, err))
        return sm_err_prefix(err, "%s", e->cls->name);
    for (int64_t i = 0; i < b->x->shape[0]; i++) {
        add_scale(e->cls, e->params, &out[i], b->x->shape[2] * b->x->shape[3]);
        if (record_check(e->cls, &out[i], b->ids ? b->ids[i] : NULL, err))
            return -1;
    }
    return 0;
}
