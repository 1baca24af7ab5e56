/* Adaptive searches over superpixels as the explainer's rounds
 * (adaptive.h). */
#include "explain/adaptive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct adaptive_state {
    const sm_adaptive_method *m;
    sm_superpixel_image s;
    void *search;
    int32_t *seen; /* the labels of every row asked so far */
    int64_t n_seen, cap;
    const uint8_t *Z; /* the proposed round: n rows, the search's */
    int64_t n;
} adaptive_state;

void sm_adaptive_release(void *st)
{
    adaptive_state *a = st;
    if (!a)
        return;
    if (a->search)
        a->m->free(a->search);
    sm_superpixel_image_free(&a->s);
    free(a->seen);
    free(a);
}

/* Asks the search for its next round. 0 or -1. */
static int adaptive_ask(adaptive_state *a, sm_err *err)
{
    a->Z = NULL;
    a->n = a->m->ask(a->search, &a->Z, err);
    return a->n < 0 ? -1 : 0;
}

/* Gives the search the labels of its round and asks for the next. */
static int adaptive_tell(adaptive_state *a, const int32_t *label, int64_t n,
                         sm_err *err)
{
    if (n != a->n)
        return sm_err_set(err, "%lld labels for a round of %lld rows",
                          (long long)n, (long long)a->n);
    if (a->n_seen + n > a->cap) {
        int64_t cap = a->cap ? a->cap : 1024;
        while (cap < a->n_seen + n)
            cap *= 2;
        int32_t *seen = realloc(a->seen, sizeof(int32_t) * (size_t)cap);
        if (!seen)
            return sm_err_set(err, "out of memory");
        a->seen = seen;
        a->cap = cap;
    }
    memcpy(a->seen + a->n_seen, label, sizeof(int32_t) * (size_t)n);
    a->n_seen += n;
    if (a->m->tell(a->search, label, n, err))
        return -1;
    return adaptive_ask(a, err);
}

/* A state over segmentation s (taken), its search started and its first
 * round asked; NULL with a message. */
static adaptive_state *adaptive_new(const sm_adaptive_method *m,
                                    const void *params,
                                    const sm_explain_ctx *ctx,
                                    const sm_explain_image *im,
                                    sm_superpixel_image *s, sm_err *err)
{
    adaptive_state *a = calloc(1, sizeof *a);
    if (!a) {
        sm_superpixel_image_free(s);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    a->m = m;
    a->s = *s;
    if (!(a->search = m->start(params, ctx, im, &a->s, err)) ||
        adaptive_ask(a, err)) {
        sm_adaptive_release(a);
        return NULL;
    }
    return a;
}

void *sm_adaptive_begin(const sm_adaptive_method *m, const void *params,
                        const sm_explain_ctx *ctx, const sm_explain_image *im,
                        sm_err *err)
{
    sm_superpixel_image s;
    adaptive_state *a = NULL;
    if (sm_superpixel_segment(params, im->x, im->c, im->h, im->w, &s, err) ==
        0)
        a = adaptive_new(m, params, ctx, im, &s, err);
    if (!a)
        sm_err_prefix(err, "image '%s'", im->id);
    return a;
}

int64_t sm_adaptive_propose(const void *params, const sm_explain_ctx *ctx,
                            const sm_explain_image *im, void *st, sm_err *err)
{
    (void)params, (void)ctx, (void)im, (void)err;
    return ((const adaptive_state *)st)->n;
}

int sm_adaptive_round_score(const void *params, const sm_explain_ctx *ctx,
                            const sm_explain_image *im, const void *st,
                            int64_t first, int64_t count, double *y,
                            sm_err *err)
{
    const sm_superpixel_params *p = params; /* the first member */
    const adaptive_state *a = st;
    if (sm_superpixel_labels(ctx, &a->s, a->Z + first * a->s.d, count,
                             p->internal_batch, y, err))
        return sm_err_prefix(err, "image '%s'", im->id);
    return 0;
}

int sm_adaptive_update(const void *params, const sm_explain_ctx *ctx,
                       const sm_explain_image *im, void *st, const double *y,
                       int64_t n, sm_err *err)
{
    (void)params, (void)ctx;
    adaptive_state *a = st;
    int32_t *label = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    int rc = label ? 0 : sm_err_set(err, "out of memory");
    /* labels gathered from the wire: class indices, checked */
    for (int64_t i = 0; rc == 0 && i < n; i++)
        if (!(y[i] >= 0 && y[i] <= INT32_MAX && y[i] == floor(y[i])))
            rc = sm_err_set(err, "label %g of row %lld is not a class", y[i],
                            (long long)i);
        else
            label[i] = (int32_t)y[i];
    rc = rc || adaptive_tell(a, label, n, err) ? -1 : 0;
    free(label);
    if (rc)
        sm_err_prefix(err, "image '%s'", im->id);
    return rc;
}

int sm_adaptive_finish(const void *params, const sm_explain_ctx *ctx,
                       const sm_explain_image *im, void *st,
                       sm_explain_out *out, sm_err *err)
{
    (void)params;
    adaptive_state *a = st;
    if (a->m->finish(a->search, ctx, out, err))
        return sm_err_prefix(err, "image '%s'", im->id);
    return 0;
}

/* Bytes: the segmentation (sm_superpixel_image_encode), then the count
 * of labels (int64) and the int32 labels of every row asked before the
 * proposed round. The count makes a state cut by whole rounds fail: it
 * would replay to an earlier round, which may ask as many rows. */
int sm_adaptive_encode(const void *params, const void *st, sm_text *t,
                       sm_err *err)
{
    (void)params;
    const adaptive_state *a = st;
    if (sm_superpixel_image_encode(&a->s, t, err))
        return -1;
    if (sm_text_add(t, &a->n_seen, sizeof a->n_seen) ||
        sm_text_add(t, a->seen, sizeof(int32_t) * (size_t)a->n_seen))
        return sm_err_set(err, "out of memory");
    return 0;
}

/* Replays the search from the start with the labels it was told. */
void *sm_adaptive_decode(const sm_adaptive_method *m, const void *params,
                         const sm_explain_ctx *ctx, const sm_explain_image *im,
                         const uint8_t *b, size_t len, sm_err *err)
{
    sm_superpixel_image s;
    size_t used;
    if (sm_superpixel_image_decode(params, im, b, len, &s, &used, err))
        return NULL;
    adaptive_state *a = NULL;
    int64_t count = -1, total = 0;
    if (len - used >= sizeof count) {
        memcpy(&count, b + used, sizeof count);
        used += sizeof count;
        total = (int64_t)((len - used) / sizeof(int32_t));
    }
    int32_t *label = NULL;
    if (count < 0 || (len - used) % sizeof(int32_t)) {
        sm_superpixel_image_free(&s);
        sm_err_set(err, "labels of %zu bytes", len - used);
    } else if (count != total) {
        sm_superpixel_image_free(&s);
        sm_err_set(err, "%lld labels, not the %lld the state counts",
                   (long long)total, (long long)count);
    } else if (!(label = malloc(sizeof(int32_t) * (size_t)(total + 1)))) {
        sm_superpixel_image_free(&s);
        sm_err_set(err, "out of memory");
    } else if ((a = adaptive_new(m, params, ctx, im, &s, err))) {
        memcpy(label, b + used, sizeof(int32_t) * (size_t)total);
        int rc = 0;
        for (int64_t at = 0, n; rc == 0 && at < total; at += n) {
            n = a->n;
            if (n == 0 || n > total - at)
                rc = sm_err_set(err, "%lld labels do not end a round",
                                (long long)total);
            for (int64_t i = at; rc == 0 && i < at + n; i++)
                if (label[i] < 0)
                    rc = sm_err_set(err, "label %d is not a class",
                                    (int)label[i]);
            rc = rc || adaptive_tell(a, label + at, n, err) ? -1 : 0;
        }
        if (rc)
            sm_adaptive_release(a), a = NULL;
    }
    free(label);
    if (!a)
        sm_err_prefix(err, "image '%s'", im->id);
    return a;
}
