/* Adaptive searches as the explainer's rounds (adaptive.h), and the
 * space of superpixel masks. */
#include "explain/adaptive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"
#include "util/rowset.h"

/* Every distinct row the model labelled for this image, in the order
 * asked, the proposed round's last (label -1 until told). The search asks
 * for rows; only the ones never labelled become the round: the model is a
 * function, so a row's label is asked once (the searches draw the same
 * on/off vector again and again when an image has few superpixels). */
typedef struct adaptive_state {
    const sm_adaptive_method *m;
    void *space;
    int d;           /* bytes a row */
    void *search;
    sm_rowset *rows; /* n_rows of them */
    int32_t *label;  /* n_rows */
    int64_t n_rows, cap_label;
    int64_t first;       /* the proposed round: rows [first, n_rows) */
    const uint8_t *Z;    /* what the search asked: n_Z rows, its own */
    int64_t n_Z;
    int32_t *zlabel;     /* their labels, for tell */
    int64_t cap_z;
} adaptive_state;

void sm_adaptive_release(void *st)
{
    adaptive_state *a = st;
    if (!a)
        return;
    if (a->search)
        a->m->free(a->search);
    if (a->space)
        a->m->space->free(a->space);
    sm_rowset_destroy(&a->rows);
    free(a->label);
    free(a->zlabel);
    free(a);
}

/* Adds row z (not there) with label -1. 0 or -1 out of memory. */
static int row_add(adaptive_state *a, const uint8_t *z)
{
    if (sm_grow((void **)&a->label, &a->cap_label, a->n_rows + 1,
                sizeof(int32_t)) ||
        sm_rowset_add(a->rows, z) < 0)
        return -1;
    a->label[a->n_rows++] = -1;
    return 0;
}

/* Tells the search the labels of every row it asked (all known). */
static int tell_search(adaptive_state *a, sm_err *err)
{
    int d = a->d;
    if (sm_grow((void **)&a->zlabel, &a->cap_z, a->n_Z, sizeof(int32_t)))
        return sm_err_set(err, "out of memory");
    for (int64_t r = 0; r < a->n_Z; r++)
        a->zlabel[r] = a->label[sm_rowset_find(a->rows, a->Z + r * d)];
    return a->m->tell(a->search, a->zlabel, a->n_Z, err);
}

/* Asks the search for rows until some were never labelled (the round) or
 * it is done (n = 0); rows labelled before are told at once. 0 or -1. */
static int adaptive_ask(adaptive_state *a, sm_err *err)
{
    int d = a->d;
    for (;;) {
        a->Z = NULL;
        if ((a->n_Z = a->m->ask(a->search, &a->Z, err)) < 0)
            return -1;
        a->first = a->n_rows;
        for (int64_t r = 0; r < a->n_Z; r++)
            if (sm_rowset_find(a->rows, a->Z + r * d) < 0 &&
                row_add(a, a->Z + r * d))
                return sm_err_set(err, "out of memory");
        if (a->n_rows > a->first || a->n_Z == 0)
            return 0;
        if (tell_search(a, err))
            return -1;
    }
}

/* The round's n labels in: told, and the next round asked. */
static int adaptive_tell(adaptive_state *a, const int32_t *label, int64_t n,
                         sm_err *err)
{
    if (n != a->n_rows - a->first)
        return sm_err_set(err, "%lld labels for a round of %lld rows",
                          (long long)n, (long long)(a->n_rows - a->first));
    memcpy(a->label + a->first, label, sizeof(int32_t) * (size_t)n);
    if (tell_search(a, err))
        return -1;
    return adaptive_ask(a, err);
}

void *sm_adaptive_alloc(size_t size, sm_err *err)
{
    void *p = calloc(1, size);
    if (!p)
        sm_err_set(err, "out of memory");
    return p;
}

/* A state over space (taken, rows of d bytes), its search started and
 * its first round asked; NULL with a message. */
static adaptive_state *adaptive_new(const sm_adaptive_method *m,
                                    const void *params,
                                    const sm_explain_ctx *ctx,
                                    const sm_explain_image *im, void *space,
                                    size_t d, sm_err *err)
{
    adaptive_state *a = calloc(1, sizeof *a);
    if (!a) {
        m->space->free(space);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    a->m = m;
    a->space = space;
    a->d = (int)d;
    if (!(a->rows = sm_rowset_new(d))) {
        sm_adaptive_release(a);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    if (!(a->search = m->start(params, ctx, im, space, err)) ||
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
    size_t d;
    adaptive_state *a = NULL;
    void *space = m->space->open(params, ctx, im, &d, err);
    if (space)
        a = adaptive_new(m, params, ctx, im, space, d, err);
    if (!a)
        sm_err_prefix(err, "image '%s'", im->id);
    return a;
}

int64_t sm_adaptive_propose(const void *params, const sm_explain_ctx *ctx,
                            const sm_explain_image *im, void *st, sm_err *err)
{
    (void)params, (void)ctx, (void)im, (void)err;
    const adaptive_state *a = st;
    return a->n_rows - a->first;
}

int sm_adaptive_round_score(const void *params, const sm_explain_ctx *ctx,
                            const sm_explain_image *im, const void *st,
                            int64_t first, int64_t count, double *y,
                            sm_err *err)
{
    const adaptive_state *a = st;
    if (a->m->space->labels(params, ctx, a->space,
                            sm_rowset_rows(a->rows) + (a->first + first) * a->d, count, y,
                            err))
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

/* What every adaptive method reports beside its own: its space's score
 * and fields, and the label explained. */
int sm_adaptive_finish(const void *params, const sm_explain_ctx *ctx,
                       const sm_explain_image *im, void *st,
                       sm_explain_out *out, sm_err *err)
{
    adaptive_state *a = st;
    if (a->m->finish(a->search, ctx, out, err))
        return sm_err_prefix(err, "image '%s'", im->id);
    out->evals += a->n_rows + 1; /* the method's own, the rows, x */
    sm_record_addf(&out->record, "label", "%d", im->target);
    if (a->m->space->finish(params, ctx, im, a->space, out, err))
        return sm_err_prefix(err, "image '%s'", im->id);
    return 0;
}

/* Bytes: the space's (the segmentation), then the count
 * of labels (int64) and the int32 labels of every row labelled before the
 * proposed round. The count makes a state cut by whole rounds fail: it
 * would replay to an earlier round, which may ask as many rows. */
int sm_adaptive_encode(const void *params, const void *st, sm_text *t,
                       sm_err *err)
{
    (void)params;
    const adaptive_state *a = st;
    if (a->m->space->encode && a->m->space->encode(a->space, t, err))
        return -1;
    if (sm_text_add(t, &a->first, sizeof a->first) ||
        sm_text_add(t, a->label, sizeof(int32_t) * (size_t)a->first))
        return sm_err_set(err, "out of memory");
    return 0;
}

/* Replays the search from the start with the labels it was told. */
void *sm_adaptive_decode(const sm_adaptive_method *m, const void *params,
                         const sm_explain_ctx *ctx, const sm_explain_image *im,
                         const uint8_t *b, size_t len, sm_err *err)
{
    size_t used = 0, d;
    void *space = m->space->decode(params, ctx, im, b, len, &used, &d, err);
    if (!space)
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
        m->space->free(space);
        sm_err_set(err, "labels of %zu bytes", len - used);
    } else if (count != total) {
        m->space->free(space);
        sm_err_set(err, "%lld labels, not the %lld the state counts",
                   (long long)total, (long long)count);
    } else if (!(label = malloc(sizeof(int32_t) * (size_t)(total + 1)))) {
        m->space->free(space);
        sm_err_set(err, "out of memory");
    } else if ((a = adaptive_new(m, params, ctx, im, space, d, err))) {
        memcpy(label, b + used, sizeof(int32_t) * (size_t)total);
        int rc = 0;
        for (int64_t at = 0, n; rc == 0 && at < total; at += n) {
            n = a->n_rows - a->first;
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

/* ---- the superpixel space ------------------------------------------ */

/* A new segmentation to fill; NULL with a message. */
static sm_superpixel_image *sp_new(sm_err *err)
{
    sm_superpixel_image *s = malloc(sizeof *s);
    if (!s)
        sm_err_set(err, "out of memory");
    return s;
}

/* s once filled (rc 0), its row size set; freed and NULL when not. */
static void *sp_filled(sm_superpixel_image *s, int rc, size_t *row_bytes)
{
    if (rc) {
        free(s);
        return NULL;
    }
    *row_bytes = (size_t)s->d;
    return s;
}

static void *sp_open(const void *params, const sm_explain_ctx *ctx,
                     const sm_explain_image *im, size_t *row_bytes,
                     sm_err *err)
{
    (void)ctx;
    sm_superpixel_image *s = sp_new(err);
    return s ? sp_filled(s, sm_superpixel_segment(params, im->x, im->c, im->h,
                                                  im->w, s, err),
                         row_bytes)
             : NULL;
}

static int sp_encode(const void *space, sm_text *t, sm_err *err)
{
    return sm_superpixel_image_encode(space, t, err);
}

static void *sp_decode(const void *params, const sm_explain_ctx *ctx,
                       const sm_explain_image *im, const uint8_t *b,
                       size_t len, size_t *used, size_t *row_bytes,
                       sm_err *err)
{
    (void)ctx;
    sm_superpixel_image *s = sp_new(err);
    return s ? sp_filled(s, sm_superpixel_image_decode(params, im, b, len, s,
                                                       used, err),
                         row_bytes)
             : NULL;
}

static int sp_labels(const void *params, const sm_explain_ctx *ctx,
                     const void *space, const uint8_t *rows, int64_t n,
                     double *label, sm_err *err)
{
    const sm_superpixel_params *p = params; /* the first member */
    return sm_superpixel_labels(ctx, space, rows, n, p->internal_batch,
                                label, err);
}

/* The target's probability on x (as lime), the segmentation and its
 * superpixel ids (to read the record's masks). */
static int sp_finish(const void *params, const sm_explain_ctx *ctx,
                     const sm_explain_image *im, const void *space,
                     sm_explain_out *out, sm_err *err)
{
    (void)params;
    const sm_superpixel_image *s = space;
    uint8_t *all = malloc((size_t)s->d);
    float *seg = malloc(sizeof(float) * (size_t)(s->h * s->w));
    int rc = -1;
    if (!all || !seg) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    memset(all, 1, (size_t)s->d);
    if (sm_superpixel_scores(ctx, s, im->target, all, 1, 1, &out->score,
                             err))
        goto done;
    sm_record *rec = &out->record; /* explainer.c checks it */
    sm_record_addf(rec, "n_segments", "%d", s->d);
    sm_superpixel_record(s, rec);
    for (int64_t q = 0; q < s->h * s->w; q++)
        seg[q] = (float)s->label[q];
    sm_record_array_add(rec, "segments", 2, (int64_t[]){s->h, s->w}, seg);
    rc = 0;
done:
    free(all);
    free(seg);
    return rc;
}

static void sp_free(void *space)
{
    sm_superpixel_image_free(space);
    free(space);
}

const sm_adaptive_space sm_adaptive_superpixels = {
    sp_open, sp_encode, sp_decode, sp_labels, sp_finish, sp_free};
