/* ABELE (Guidotti 2019): an image explained in the latent space of an
 * adversarial autoencoder trained on its dataset (salmap train-aae). The
 * job carries the AAE as three auxiliary models, aae_encoder (image in
 * [-1, 1] -> z), aae_decoder (z -> image in [-1, 1]) and
 * aae_discriminator (z -> validity, a latent is valid above 0.5).
 *
 * With z_x = enc(x): a neighbourhood of valid latents, half drawn from the
 * prior N(0, I), half from two genetic runs started at z_x (genetic.c; one
 * towards x's label, one away; fitness as LORE's with a sigmoid on the
 * similarity 1 - |z - z_x| and on the label term; mutation redraws a
 * latent dimension from N(0, 1) until the latent is valid), each latent
 * decoded and labelled by the model, every generation one round; when at
 * most two labels appear, valid latents of other labels are added (10%).
 * A decision tree (surrogate/tree.c) on the latents, weighted by
 * sqrt(exp(-d^2 / w^2)), w = 0.75 sqrt(latent dim), its depth and leaf
 * size chosen by cross-validated macro-F1 over a small grid. x's rule and
 * counterfactual rules in latent space; a counterfactual is kept when z_x
 * moved across it decodes to an image the model labels otherwise.
 * Exemplars: valid latents in x's leaf whose decoded image keeps x's label;
 * counter-exemplars: valid latents in a kept counterfactual's leaf whose
 * image does not. The saliency S is the pixelwise median over exemplars of
 * D = x - e on 0..255 (127.5: no difference) with each D's values within
 * its knee threshold of 127.5 set to 127.5; the map is the relevance
 * R = 1 - |S - 127.5| / 127.5.
 *
 * Where the reference is wrong, this is not (docs/METHODS.md): labels stay
 * with the latents they were computed on, every generation and candidate
 * batch is one model call, draws are keyed by (seed, image id), and the
 * counterfactuals are checked by the model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/adaptive.h"
#include "explain/genetic.h"
#include "explain/gradient.h"
#include "model/score.h"
#include "surrogate/surrogate.h"
#include "util/grow.h"
#include "util/rng.h"
#include "util/rowset.h"

#define ABELE_MAX_LATENT 1024

typedef struct abele_params {
    char aae[SM_PARAM_STR];
    int samples;
    sm_genetic_params ga;
    double balance;
    int exemplars, counter_exemplars, tries, folds, internal_batch;
    double spread;
} abele_params;

/* ---- the latent space ---------------------------------------------- */

typedef struct abele_space {
    sm_model *enc, *dec, *disc; /* the job's, borrowed */
    sm_preproc pp;
    int L;                      /* latent dimensions */
    int64_t c, h, w;
    float *zx;                  /* enc(x) */
    float *xpix;                /* x on 0..255, grey, h x w */
    int cap;                    /* rows a model run */
} abele_space;

static void space_free(void *p)
{
    abele_space *s = p;
    if (!s)
        return;
    free(s->zx);
    free(s->xpix);
    free(s);
}

/* The AAE's [-1, 1] from the model input, and back. */
static float to_aae(const sm_preproc *pp, int ch, float v)
{
    return (v * pp->std[ch] + pp->mean[ch]) / pp->scale / 127.5f - 1.0f;
}

static float to_model(const sm_preproc *pp, int ch, float t)
{
    return ((t + 1.0f) * 127.5f * pp->scale - pp->mean[ch]) / pp->std[ch];
}

/* Checks that auxiliary model m (called name) has one input of rank
 * rank whose dims 1.. are dims[1..] (0: any). */
static int check_input(const char *name, sm_model *m, int rank,
                       const int64_t *dims, sm_err *err)
{
    int64_t shape[SM_MAX_DIMS];
    if (sm_model_n_inputs(m) != 1)
        return sm_err_set(err, "auxiliary model '%s' has %d inputs, not 1",
                          name, sm_model_n_inputs(m));
    int r = sm_model_input_shape(m, 0, shape);
    if (r != rank)
        return sm_err_set(err, "auxiliary model '%s' reads rank %d, not %d",
                          name, r, rank);
    for (int k = 1; k < rank; k++)
        if (dims[k] > 0 && shape[k] != dims[k])
            return sm_err_set(err, "auxiliary model '%s': input dim %d is "
                              "%lld, not %lld", name, k, (long long)shape[k],
                              (long long)dims[k]);
    return 0;
}

static void *space_open(const void *params, const sm_explain_ctx *ctx,
                        const sm_explain_image *im, size_t *row_bytes,
                        sm_err *err)
{
    const abele_params *p = params;
    if (!ctx->preproc) {
        sm_err_set(err, "abele needs the model's preprocessing (its config)");
        return NULL;
    }
    abele_space *s = calloc(1, sizeof *s);
    if (!s) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    s->pp = *ctx->preproc;
    s->c = im->c, s->h = im->h, s->w = im->w;
    s->cap = p->internal_batch;
    if (!(s->enc = sm_explain_aux_model(ctx, "aae_encoder", err)) ||
        !(s->dec = sm_explain_aux_model(ctx, "aae_decoder", err)) ||
        !(s->disc = sm_explain_aux_model(ctx, "aae_discriminator", err)))
        goto fail;
    int64_t dshape[SM_MAX_DIMS];
    if (check_input("aae_encoder", s->enc, 4,
                    (int64_t[]){0, im->c, im->h, im->w}, err))
        goto fail;
    if (sm_model_n_inputs(s->dec) != 1 ||
        sm_model_input_shape(s->dec, 0, dshape) != 2 || dshape[1] < 1 ||
        dshape[1] > ABELE_MAX_LATENT) {
        sm_err_set(err, "auxiliary model 'aae_decoder' must read N x latent "
                   "(latent 1..%d)", ABELE_MAX_LATENT);
        goto fail;
    }
    s->L = (int)dshape[1];
    if (check_input("aae_discriminator", s->disc, 2, (int64_t[]){0, s->L},
                    err))
        goto fail;
    s->zx = malloc(sizeof(float) * (size_t)s->L);
    s->xpix = malloc(sizeof(float) * (size_t)(s->h * s->w));
    float *t = malloc(sizeof(float) * (size_t)(s->c * s->h * s->w));
    if (!s->zx || !s->xpix || !t) {
        free(t);
        sm_err_set(err, "out of memory");
        goto fail;
    }
    int64_t hw = s->h * s->w;
    for (int64_t q = 0; q < hw; q++)
        s->xpix[q] = 0;
    for (int64_t ch = 0; ch < s->c; ch++)
        for (int64_t q = 0; q < hw; q++) {
            t[ch * hw + q] = to_aae(&s->pp, (int)ch, im->x[ch * hw + q]);
            s->xpix[q] += (t[ch * hw + q] + 1.0f) * 127.5f / (float)s->c;
        }
    const sm_tensor *z = sm_model_forward(s->enc, t, 1, err);
    free(t);
    if (!z)
        goto fail;
    if (sm_tensor_numel(z) != s->L) {
        sm_err_set(err, "auxiliary model 'aae_encoder' gives %lld values, "
                   "the decoder reads %d", (long long)sm_tensor_numel(z), s->L);
        goto fail;
    }
    memcpy(s->zx, z->data, sizeof(float) * (size_t)s->L);
    *row_bytes = sizeof(float) * (size_t)s->L;
    return s;
fail:
    space_free(s);
    return NULL;
}

static void *space_decode(const void *params, const sm_explain_ctx *ctx,
                          const sm_explain_image *im, const uint8_t *b,
                          size_t len, size_t *used, size_t *row_bytes,
                          sm_err *err)
{
    (void)b, (void)len;
    *used = 0; /* the space is a function of x and the job's models */
    return space_open(params, ctx, im, row_bytes, err);
}

/* Decodes n latents (n x L) into images in the AAE's [-1, 1] (n x c x h
 * x w), cap at a time. 0 or -1. */
static int decode(const abele_space *s, const float *Z, int64_t n,
                  float *out, sm_err *err)
{
    int64_t per = s->c * s->h * s->w;
    for (int64_t i = 0; i < n; i += s->cap) {
        int64_t m = n - i < s->cap ? n - i : s->cap;
        const sm_tensor *y = sm_model_forward(s->dec, Z + i * s->L, m, err);
        if (!y)
            return sm_err_prefix(err, "aae_decoder");
        if (sm_tensor_numel(y) != m * per)
            return sm_err_set(err, "aae_decoder gives %lld values for %lld "
                              "latents, not %lld a latent",
                              (long long)sm_tensor_numel(y), (long long)m,
                              (long long)per);
        memcpy(out + i * per, y->data, sizeof(float) * (size_t)(m * per));
    }
    return 0;
}

/* Validity of n latents (1: the discriminator says > 0.5). 0 or -1. */
static int validity(const abele_space *s, const float *Z, int64_t n,
                    uint8_t *valid, sm_err *err)
{
    for (int64_t i = 0; i < n; i += s->cap) {
        int64_t m = n - i < s->cap ? n - i : s->cap;
        const sm_tensor *y = sm_model_forward(s->disc, Z + i * s->L, m, err);
        if (!y)
            return sm_err_prefix(err, "aae_discriminator");
        if (sm_tensor_numel(y) != m)
            return sm_err_set(err, "aae_discriminator gives %lld values for "
                              "%lld latents", (long long)sm_tensor_numel(y),
                              (long long)m);
        for (int64_t k = 0; k < m; k++)
            valid[i + k] = y->data[k] > 0.5f;
    }
    return 0;
}

/* Model inputs of decoded images: make() of sm_explain_score_copies. */
typedef struct copies_job {
    const abele_space *s;
    const float *t;   /* images in [-1, 1] */
    double *y;
} copies_job;

static void copy_make(void *u, int64_t i, int64_t k, float *dst)
{
    (void)i;
    const copies_job *j = u;
    const abele_space *s = j->s;
    int64_t hw = s->h * s->w, per = s->c * hw;
    const float *t = j->t + k * per;
    for (int64_t ch = 0; ch < s->c; ch++)
        for (int64_t q = 0; q < hw; q++)
            dst[ch * hw + q] = to_model(&s->pp, (int)ch, t[ch * hw + q]);
}

static void copy_take(void *u, int64_t i, int64_t k, const float *copy,
                      const float *grad, double score)
{
    (void)i, (void)copy, (void)grad;
    ((copies_job *)u)->y[k] = score;
}

/* The model's labels of n images t (in [-1, 1]) into y. */
static int label_images(const sm_explain_ctx *ctx, const abele_space *s,
                        const float *t, int64_t n, double *y, sm_err *err)
{
    if (n == 0)
        return 0;
    float *zero = calloc((size_t)(s->c * s->h * s->w), sizeof(float));
    if (!zero)
        return sm_err_set(err, "out of memory");
    sm_tensor one = {.ndim = 4, .shape = {1, s->c, s->h, s->w}, .data = zero};
    copies_job job = {s, t, y};
    int target = 0;
    sm_explain_copies how = {n, s->cap, 1, copy_make, copy_take, &job, 1, 0};
    int rc = sm_explain_score_copies(ctx, &one, &target, &how, err);
    free(zero);
    return rc;
}

/* Decodes and labels n latents. */
static int label_latents(const sm_explain_ctx *ctx, const abele_space *s,
                         const float *Z, int64_t n, double *y, sm_err *err)
{
    int64_t per = s->c * s->h * s->w;
    float *t = malloc(sizeof(float) * (size_t)((n ? n : 1) * per));
    if (!t)
        return sm_err_set(err, "out of memory");
    int rc = decode(s, Z, n, t, err) || label_images(ctx, s, t, n, y, err);
    free(t);
    return rc ? -1 : 0;
}

static int space_labels(const void *params, const sm_explain_ctx *ctx,
                        const void *space, const uint8_t *rows, int64_t n,
                        double *label, sm_err *err)
{
    (void)params;
    return label_latents(ctx, space, (const float *)(const void *)rows, n,
                         label, err);
}

/* The target's probability on x, and z_x. */
static int space_finish(const void *params, const sm_explain_ctx *ctx,
                        const sm_explain_image *im, const void *space,
                        sm_explain_out *out, sm_err *err)
{
    (void)params;
    const abele_space *s = space;
    sm_explain_ctx prob = *ctx;
    prob.score_prob = 1;
    sm_model_scoring sc = sm_explain_scoring(&prob);
    sm_tensor one = {.ndim = 4, .shape = {1, im->c, im->h, im->w},
                     .data = (float *)im->x};
    if (sm_model_target_scores(&sc, &one, &im->target, &out->score, err))
        return -1;
    double z[ABELE_MAX_LATENT];
    for (int j = 0; j < s->L; j++)
        z[j] = s->zx[j];
    return sm_record_nums(&out->record, "latent", z, (size_t)s->L) ? -1 : 0;
}

static const sm_adaptive_space abele_latents = {
    space_open, NULL, space_decode, space_labels, space_finish, space_free};

/* ---- the search ----------------------------------------------------- */

enum { PH_RANDOM, PH_GENETIC, PH_BALANCE, PH_COUNTER, PH_EXEMPLARS, PH_DONE };

/* One genetic run: towards x's label (same) or away from it. */
typedef struct abele_pop {
    int same;
    uint64_t normal_key, normal_draw; /* mutation's N(0, 1) */
    sm_genetic_pop g;
} abele_pop;

/* Latents with their labels. */
typedef struct latents {
    float *z;        /* n x L */
    int32_t *label;
    int64_t n, cap_z, cap_label;
} latents;

typedef struct abele_search {
    const abele_params *p;
    const abele_space *s;
    const float *x;            /* the image (borrowed, as the space) */
    int L, target, phase, gen, tries;
    int32_t zx_label;          /* the model's label of dec(z_x) */
    uint64_t key, draw;        /* uniform draws outside the genetic runs */
    uint64_t nkey, ndraw;      /* normal draws outside them */
    abele_pop pop[2];
    latents nb;                /* the neighbourhood */
    int64_t n_balance;         /* latents of other labels it still wants */
    float *Z;                  /* the rows asked */
    int64_t n_Z, cap_Z;
    /* the tree and its rules, once the neighbourhood is complete */
    sm_tree *tree;
    int *cls, n_cls;           /* the tree's classes: labels present */
    sm_tree_params tp;
    double fidelity, cv_f1;
    sm_tree_rule rule;
    sm_tree_rule *cf;
    int n_cf;
    int *cf_label;             /* the model's label of each applied one */
    uint8_t *cf_kept;          /* the ones kept (sm_tree_counterfactuals_kept) */
    latents ex, cex;           /* exemplars, counter-exemplars */
    int64_t draws;             /* latents asked in all */
    int64_t asked[PH_DONE];    /* of them, in each phase */
    sm_rowset *judged;         /* latents the discriminator judged */
    uint8_t *valid;            /* their validity */
    int64_t cap_valid;
} abele_search;

static void latents_free(latents *l)
{
    free(l->z);
    free(l->label);
    memset(l, 0, sizeof *l);
}

static int latents_add(latents *l, int L, const float *z, int32_t label)
{
    if (sm_grow((void **)&l->z, &l->cap_z, l->n + 1, sizeof(float) * (size_t)L) ||
        sm_grow((void **)&l->label, &l->cap_label, l->n + 1, sizeof(int32_t)))
        return -1;
    memcpy(l->z + l->n * L, z, sizeof(float) * (size_t)L);
    l->label[l->n++] = label;
    return 0;
}

static double draw(abele_search *a)
{
    return sm_rng_uniform(a->key, a->draw++);
}

static double draw_normal(abele_search *a)
{
    return sm_rng_normal(a->nkey, a->ndraw++);
}

/* Validity of n latents into ok, each judged by the discriminator once
 * for the image: one judged before is answered from memory (the
 * discriminator is a function, its bits the same in any batch), the rest
 * in one run. The genetic runs' crossovers of equal parents, and the
 * neighbourhood judged again for exemplars, were 45% of the rows it
 * judged (docs/PERFORMANCE.md). 0 or -1. */
static int judge(abele_search *a, const float *Z, int64_t n, uint8_t *ok,
                 sm_err *err)
{
    const int L = a->L;
    const int64_t first = sm_rowset_count(a->judged);
    for (int64_t i = 0; i < n; i++)
        if (sm_rowset_find(a->judged, Z + i * L) < 0 &&
            sm_rowset_add(a->judged, Z + i * L) < 0)
            return sm_err_set(err, "out of memory");
    const int64_t count = sm_rowset_count(a->judged);
    if (sm_grow((void **)&a->valid, &a->cap_valid, count, 1))
        return sm_err_set(err, "out of memory");
    const float *fresh = (const float *)(const void *)sm_rowset_rows(a->judged);
    if (count > first &&
        validity(a->s, fresh + first * L, count - first, a->valid + first, err))
        return -1;
    for (int64_t i = 0; i < n; i++)
        ok[i] = a->valid[sm_rowset_find(a->judged, Z + i * L)];
    return 0;
}

/* Room for n rows to ask. */
static int rows_room(abele_search *a, int64_t n)
{
    return sm_grow((void **)&a->Z, &a->cap_Z, n, sizeof(float) * (size_t)a->L);
}

static double sigmoid(double v)
{
    return 1 / (1 + exp(-10 * (v - 0.5)));
}

static double distance(const float *u, const float *v, int L)
{
    double d = 0;
    for (int j = 0; j < L; j++)
        d += ((double)u[j] - v[j]) * ((double)u[j] - v[j]);
    return sqrt(d);
}

static double fitness(const abele_search *a, const abele_pop *q,
                      const float *z, int32_t label)
{
    double sim = 1 - distance(z, a->s->zx, a->L);
    double fs = sim < 1 ? sigmoid(sim) : 0; /* a copy of z_x adds nothing */
    double ft = sigmoid(label == a->target);
    return a->p->ga.alpha1 * fs + a->p->ga.alpha2 * (q->same ? ft : 1 - ft);
}

/* Mutation: dimension j redrawn from N(0, 1). */
static void redraw(void *ctx, sm_genetic_pop *g, uint8_t *row, int j)
{
    (void)g;
    abele_pop *q = ctx;
    float v = (float)sm_rng_normal(q->normal_key, q->normal_draw++);
    memcpy(row + sizeof(float) * (size_t)j, &v, sizeof v);
}

/* Valid latents drawn from the prior appended to a->Z (n of them, fewer
 * when `tries` batches of 2n candidates do not give n). */
static int draw_valid(abele_search *a, int64_t n, sm_err *err)
{
    int L = a->L;
    int64_t m = 2 * n + 8, want = a->n_Z + n;
    float *cand = malloc(sizeof(float) * (size_t)(m * L));
    uint8_t *ok = malloc((size_t)m);
    int rc = cand && ok && rows_room(a, want) == 0
                 ? 0
                 : sm_err_set(err, "out of memory");
    for (int t = 0; rc == 0 && t < a->p->tries && a->n_Z < want; t++) {
        for (int64_t i = 0; i < m * L; i++)
            cand[i] = (float)draw_normal(a);
        rc = judge(a, cand, m, ok, err);
        for (int64_t i = 0; rc == 0 && i < m && a->n_Z < want; i++)
            if (ok[i])
                memcpy(a->Z + (a->n_Z++) * L, cand + i * L,
                       sizeof(float) * (size_t)L);
    }
    free(cand);
    free(ok);
    return rc;
}

/* Every changed row (no fitness) of both runs made valid: an invalid one
 * gets a dimension redrawn, then another, up to `tries` times, and takes
 * the first valid of those (the last when none is). The chains are drawn
 * in stages of 1, 2, 4... links, each stage's links of every row still
 * invalid judged in one discriminator run (a run a try streamed the
 * discriminator's weights 20 times a generation; whole chains judged at
 * once cost 10 times the rows). */
static int repair(abele_search *a, sm_err *err)
{
    int L = a->L, T = a->p->tries, P0 = a->pop[0].g.P;
    int P = P0 + a->pop[1].g.P;
    size_t row = sizeof(float) * (size_t)L;
    float *cur = malloc(row * (size_t)P + 1);    /* each row's chain end */
    float *links = malloc(row * (size_t)P * (size_t)T + 1);
    int *idx = malloc(sizeof(int) * (size_t)P + 1);
    uint8_t *ok = malloc((size_t)P * (size_t)T + 1);
    int n = 0, rc = 0; /* rows as k * P0 + i: run k, row i */
    if (!cur || !links || !idx || !ok) {
        rc = sm_err_set(err, "out of memory");
        goto done;
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < a->pop[k].g.P; i++)
            if (isnan(a->pop[k].g.fit[i])) {
                memcpy(cur + (size_t)n * L, a->pop[k].g.ind + (size_t)i * row,
                       row);
                idx[n++] = k * P0 + i;
            }
    if (n == 0 || (rc = judge(a, cur, n, ok, err)))
        goto done;
    int left = 0; /* the invalid ones, compacted */
    for (int r = 0; r < n; r++)
        if (!ok[r]) {
            memmove(cur + (size_t)left * L, cur + (size_t)r * L, row);
            idx[left++] = idx[r];
        }
    for (int used = 0, len = 1; left > 0 && used < T; used += len, len *= 2) {
        if (len > T - used)
            len = T - used;
        for (int b = 0; b < left; b++) {
            abele_pop *q = &a->pop[idx[b] >= P0];
            const float *prev = cur + (size_t)b * L;
            for (int t = 0; t < len; t++) {
                float *z = links + ((size_t)b * len + (size_t)t) * L;
                memcpy(z, prev, row);
                redraw(q, &q->g, (uint8_t *)z,
                       sm_genetic_draw_int(&q->g, 0, L - 1));
                prev = z;
            }
        }
        if ((rc = judge(a, links, (int64_t)left * len, ok, err)))
            goto done;
        int still = 0;
        for (int b = 0; b < left; b++) {
            int t = 0;
            while (t < len && !ok[(size_t)b * len + (size_t)t])
                t++;
            int last = used + len == T;
            const float *z = links + ((size_t)b * len +
                                      (size_t)(t < len ? t : len - 1)) * L;
            if (t < len || last) { /* valid, or out of tries */
                sm_genetic_pop *g = &a->pop[idx[b] >= P0].g;
                int i = idx[b] >= P0 ? idx[b] - P0 : idx[b];
                memcpy(g->ind + (size_t)i * row, z, row);
            } else {
                memcpy(cur + (size_t)still * L, z, row);
                idx[still++] = idx[b];
            }
        }
        left = still;
    }
done:
    free(cur), free(links), free(idx), free(ok);
    return rc;
}

/* The rows without a fitness of both runs into a->Z. */
static int collect(abele_search *a)
{
    int L = a->L;
    a->n_Z = 0;
    if (rows_room(a, a->pop[0].g.P + a->pop[1].g.P + 1))
        return -1;
    for (int k = 0; k < 2; k++) {
        const sm_genetic_pop *g = &a->pop[k].g;
        for (int i = 0; i < g->P; i++)
            if (isnan(g->fit[i]))
                memcpy(a->Z + (a->n_Z++) * L,
                       g->ind + (size_t)i * L * sizeof(float),
                       sizeof(float) * (size_t)L);
    }
    return 0;
}

/* ---- the latent tree ------------------------------------------------- */

/* Macro-F1 of pred against truth (n labels, classes 0..k-1) over the
 * classes present in either, as scikit-learn's f1_score(average='macro'). */
static double macro_f1(const int *truth, const int *pred, int n, int k,
                       int *tp, int *fp, int *fn)
{
    memset(tp, 0, sizeof(int) * (size_t)k);
    memset(fp, 0, sizeof(int) * (size_t)k);
    memset(fn, 0, sizeof(int) * (size_t)k);
    for (int i = 0; i < n; i++)
        if (truth[i] == pred[i])
            tp[truth[i]]++;
        else
            fn[truth[i]]++, fp[pred[i]]++;
    double sum = 0;
    int m = 0;
    for (int c = 0; c < k; c++)
        if (tp[c] + fp[c] + fn[c] > 0) {
            sum += 2.0 * tp[c] / (2.0 * tp[c] + fp[c] + fn[c]);
            m++;
        }
    return m ? sum / m : 0;
}

/* The grid the tree's depth and leaf size are chosen from, in order (the
 * first of equal scores wins, as GridSearchCV's). */
static const int grid_depth[] = {0, 4, 8};
static const int grid_leaf[] = {1, 5, 20};
#define N_DEPTH ((int)(sizeof grid_depth / sizeof grid_depth[0]))
#define N_LEAF ((int)(sizeof grid_leaf / sizeof grid_leaf[0]))

/* Fits the tree on the neighbourhood: the grid by k-fold cross-validated
 * macro-F1 (folds from a shuffle keyed by the image), then the best on
 * every latent. X, y (dense), w: n rows. 0 or -1. */
static int fit_tree(abele_search *a, const double *X, const int *y,
                    const double *w, int n, double *cv_f1, sm_err *err)
{
    int L = a->L, k = a->p->folds, K = a->n_cls, rc = 0;
    int *fold = malloc(sizeof(int) * (size_t)n);
    int *order = malloc(sizeof(int) * (size_t)n);
    double *Xt = malloc(sizeof(double) * (size_t)(n * L));
    double *wt = malloc(sizeof(double) * (size_t)n);
    int *yt = malloc(sizeof(int) * (size_t)n);
    int *truth = malloc(sizeof(int) * (size_t)n);
    int *pred = malloc(sizeof(int) * (size_t)n);
    int *cnt = malloc(sizeof(int) * (size_t)(3 * K));
    if (!fold || !order || !Xt || !wt || !yt || !truth || !pred || !cnt) {
        rc = sm_err_set(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(draw(a) * (i + 1));
        int t = order[i];
        order[i] = order[j], order[j] = t;
    }
    for (int i = 0; i < n; i++)
        fold[order[i]] = i % k;
    double best = -1;
    sm_tree_params bp = {0, 2, 1, 0};
    for (int di = 0; di < N_DEPTH && rc == 0; di++)
        for (int li = 0; li < N_LEAF && rc == 0; li++) {
            sm_tree_params tp = {grid_depth[di], 2, grid_leaf[li], 0};
            double score = 0;
            for (int f = 0; f < k && rc == 0; f++) {
                int nt = 0, nv = 0;
                for (int i = 0; i < n; i++)
                    if (fold[i] != f) {
                        memcpy(Xt + (size_t)nt * L, X + (size_t)i * L,
                               sizeof(double) * (size_t)L);
                        yt[nt] = y[i], wt[nt++] = w[i];
                    }
                sm_tree *t = sm_tree_fit(Xt, nt, L, yt, K, wt, &tp, err);
                if (!t) {
                    rc = -1;
                    break;
                }
                for (int i = 0; i < n; i++)
                    if (fold[i] == f) {
                        truth[nv] = y[i];
                        pred[nv++] = sm_tree_predict(t, X + (size_t)i * L);
                    }
                sm_tree_destroy(&t);
                score += macro_f1(truth, pred, nv, K, cnt, cnt + K,
                                  cnt + 2 * K) / k;
            }
            if (rc == 0 && score > best)
                best = score, bp = tp;
        }
    *cv_f1 = best;
    a->tp = bp;
    if (rc == 0 && !(a->tree = sm_tree_fit(X, n, L, y, K, w, &bp, err)))
        rc = -1;
done:
    free(fold), free(order), free(Xt), free(wt), free(yt), free(truth);
    free(pred), free(cnt);
    return rc;
}

/* The neighbourhood's tree, x's rule, the counterfactual rules and the
 * fidelity; then the counterfactuals applied to z_x, the rows asked. */
static int build_tree(abele_search *a, sm_err *err)
{
    int L = a->L, n = (int)a->nb.n, rc = -1;
    double *X = malloc(sizeof(double) * (size_t)((n ? n : 1) * L));
    double *w = malloc(sizeof(double) * (size_t)(n ? n : 1));
    int *y = malloc(sizeof(int) * (size_t)(n ? n : 1));
    double zx[ABELE_MAX_LATENT];
    a->cls = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!X || !w || !y || !a->cls) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    double kw = 0.75 * sqrt((double)L);
    for (int i = 0; i < n; i++) {
        const float *z = a->nb.z + (size_t)i * L;
        for (int j = 0; j < L; j++)
            X[(size_t)i * L + j] = z[j];
        double d = distance(z, a->s->zx, L);
        w[i] = sqrt(exp(-d * d / (kw * kw)));
        y[i] = a->nb.label[i];
    }
    for (int j = 0; j < L; j++)
        zx[j] = a->s->zx[j];
    sm_tree_dense_labels(y, n, a->cls, &a->n_cls);
    if (fit_tree(a, X, y, w, n, &a->cv_f1, err) ||
        sm_tree_rule_of(a->tree, zx, &a->rule, err) ||
        sm_tree_counterfactuals(a->tree, zx, &a->cf, &a->n_cf, err))
        goto done;
    long agree = 0;
    for (int i = 0; i < n; i++)
        agree += sm_tree_predict(a->tree, X + (size_t)i * L) == y[i];
    a->fidelity = n ? (double)agree / n : 0;
    a->rule.label = a->cls[a->rule.label];
    for (int k = 0; k < a->n_cf; k++)
        a->cf[k].label = a->cls[a->cf[k].label];
    a->cf_label = malloc(sizeof(int) * (size_t)(a->n_cf + 1));
    a->cf_kept = calloc((size_t)(a->n_cf + 1), 1);
    if (!a->cf_label || !a->cf_kept || rows_room(a, a->n_cf + 1)) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    free(X), free(w), free(y);
    return rc;
}

/* z_x moved across counterfactual r into z: each premise x falsifies is
 * met just past its threshold (ABELE's eps 0.01 above a lower bound; an
 * upper bound itself, as a float that is not above it). */
static void apply_counterfactual(const abele_search *a, const sm_tree_rule *r,
                                 float *z)
{
    memcpy(z, a->s->zx, sizeof(float) * (size_t)a->L);
    for (int k = 0; k < r->n_cond; k++) {
        const sm_tree_cond *c = &r->cond[k];
        double v = z[c->feature];
        if (!(v > c->lo))
            v = c->lo + 0.01 < c->hi ? c->lo + 0.01 : (c->lo + c->hi) / 2;
        else if (!(v <= c->hi))
            v = c->hi;
        float f = (float)v;
        while ((double)f > c->hi)
            f = nextafterf(f, -INFINITY);
        while (!((double)f > c->lo))
            f = nextafterf(f, INFINITY);
        z[c->feature] = f;
    }
}

/* ---- the phases ------------------------------------------------------ */

/* Each run's rows above the largest gap of its fitness and its hall of
 * fame join the neighbourhood. */
static int gather_runs(abele_search *a)
{
    int L = a->L;
    double *sorted = malloc(sizeof(double) * (size_t)(a->pop[0].g.P + a->pop[1].g.P + 1));
    if (!sorted)
        return -1;
    for (int k = 0; k < 2; k++) {
        const sm_genetic_pop *q = &a->pop[k].g;
        double thr = sm_genetic_keep_above(q, sorted);
        for (int h = 0; h < 2; h++) {
            int count = h ? q->n_hof : q->P;
            for (int i = 0; i < count; i++) {
                if (!((h ? q->hof_fit : q->fit)[i] > thr))
                    continue;
                const uint8_t *z = (h ? q->hof : q->ind) +
                                   (size_t)i * L * sizeof(float);
                if (latents_add(&a->nb, L, (const float *)(const void *)z,
                                (h ? q->hof_lab : q->lab)[i])) {
                    free(sorted);
                    return -1;
                }
            }
        }
    }
    free(sorted);
    return 0;
}

/* The number of distinct labels among the neighbourhood's. */
static int n_labels(const abele_search *a)
{
    int seen[64] = {0}, n = 0;
    for (int64_t i = 0; i < a->nb.n; i++) {
        int l = a->nb.label[i];
        int k = 0;
        while (k < n && seen[k] != l)
            k++;
        if (k == n && n < 64)
            seen[n++] = l;
    }
    return n;
}

static int has_label(const abele_search *a, int32_t l)
{
    for (int64_t i = 0; i < a->nb.n; i++)
        if (a->nb.label[i] == l)
            return 1;
    return 0;
}

/* 1 when z falls in the leaf of x's rule (exemplars) or of a kept
 * counterfactual (counter-exemplars); which into *cf (-1: x's). */
static int leaf_of(const abele_search *a, const float *z)
{
    double v[ABELE_MAX_LATENT];
    for (int j = 0; j < a->L; j++)
        v[j] = z[j];
    return sm_tree_leaf(a->tree, v);
}

static int kept_leaf(const abele_search *a, int leaf)
{
    for (int k = 0; k < a->n_cf; k++)
        if (a->cf_kept[k] && a->cf[k].leaf == leaf)
            return 1;
    return 0;
}

static int is_zx(const abele_search *a, const float *z)
{
    return memcmp(z, a->s->zx, sizeof(float) * (size_t)a->L) == 0;
}

/* Candidates for the exemplars still wanted: latents around z_x (and
 * around each kept counterfactual) in the right leaf and valid, into the
 * rows to ask. */
static int exemplar_candidates(abele_search *a, sm_err *err)
{
    const abele_params *p = a->p;
    int L = a->L;
    int64_t want_ex = p->exemplars - a->ex.n;
    int64_t want_cex = p->counter_exemplars - a->cex.n;
    int kept[1024], n_kept = 0;
    for (int k = 0; k < a->n_cf && n_kept < 1024; k++)
        if (a->cf_kept[k])
            kept[n_kept++] = k;
    if (n_kept == 0 || want_cex < 0)
        want_cex = 0;
    if (want_ex < 0)
        want_ex = 0;
    int64_t m = 4 * (want_ex + want_cex);
    a->n_Z = 0;
    if (m == 0)
        return 0;
    float *cand = malloc(sizeof(float) * (size_t)(m * L));
    uint8_t *ok = malloc((size_t)m);
    if (!cand || !ok || rows_room(a, m)) {
        free(cand), free(ok);
        return sm_err_set(err, "out of memory");
    }
    float centre[ABELE_MAX_LATENT];
    int64_t nc = 0;
    for (int64_t i = 0; i < m; i++) {
        int for_ex = i < 4 * want_ex;
        int leaf = a->rule.leaf;
        if (for_ex) {
            memcpy(centre, a->s->zx, sizeof(float) * (size_t)L);
        } else {
            const sm_tree_rule *r = &a->cf[kept[i % n_kept]];
            apply_counterfactual(a, r, centre);
            leaf = r->leaf;
        }
        float *z = cand + nc * L;
        for (int j = 0; j < L; j++)
            z[j] = centre[j] + (float)(p->spread * draw_normal(a));
        if (leaf_of(a, z) == leaf)
            nc++;
    }
    int rc = judge(a, cand, nc, ok, err);
    for (int64_t i = 0; rc == 0 && i < nc; i++)
        if (ok[i])
            memcpy(a->Z + (a->n_Z++) * L, cand + i * L, sizeof(float) * (size_t)L);
    free(cand), free(ok);
    return rc;
}

/* Latents z (n, labelled) sorted into exemplars and counter-exemplars. */
static int take_exemplars(abele_search *a, const float *z, const int32_t *label,
                          int64_t n)
{
    const abele_params *p = a->p;
    int L = a->L;
    for (int64_t i = 0; i < n; i++) {
        const float *zi = z + i * L;
        if (is_zx(a, zi))
            continue;
        int leaf = leaf_of(a, zi);
        if (leaf == a->rule.leaf && label[i] == a->target &&
            a->ex.n < p->exemplars) {
            if (latents_add(&a->ex, L, zi, label[i]))
                return -1;
        } else if (label[i] != a->target && kept_leaf(a, leaf) &&
                   a->cex.n < p->counter_exemplars) {
            if (latents_add(&a->cex, L, zi, label[i]))
                return -1;
        }
    }
    return 0;
}

/* The neighbourhood's own exemplars (valid ones), then the first
 * candidates asked, or done. */
static int start_exemplars(abele_search *a, sm_err *err)
{
    int L = a->L;
    int64_t n = a->nb.n;
    uint8_t *ok = malloc((size_t)(n ? n : 1));
    if (!ok)
        return sm_err_set(err, "out of memory");
    int rc = judge(a, a->nb.z, n, ok, err);
    for (int64_t i = 0; rc == 0 && i < n; i++)
        if (ok[i] && take_exemplars(a, a->nb.z + i * L, &a->nb.label[i], 1))
            rc = sm_err_set(err, "out of memory");
    free(ok);
    a->phase = PH_EXEMPLARS;
    a->tries = 0;
    return rc;
}

/* A generation's labels (of its rows without fitness, in order) told:
 * fitness and hall of fame, then the next generation bred and made
 * valid, or the runs gathered into the neighbourhood. */
static int genetic_told(abele_search *a, const int32_t *label, sm_err *err)
{
    const abele_params *p = a->p;
    int L = a->L;
    int64_t r = 0;
    for (int k = 0; k < 2; k++) {
        abele_pop *q = &a->pop[k];
        sm_genetic_pop *g = &q->g;
        for (int i = 0; i < g->P; i++)
            if (isnan(g->fit[i])) {
                const uint8_t *z = g->ind + (size_t)i * L * sizeof(float);
                g->lab[i] = label[r++];
                g->fit[i] = fitness(a, q, (const float *)(const void *)z,
                                    g->lab[i]);
            }
        sm_genetic_hof_update(g);
    }
    if (a->gen == p->ga.generations) {
        if (gather_runs(a))
            return sm_err_set(err, "out of memory");
        a->phase = PH_BALANCE;
        a->tries = 0;
        a->n_balance = (int64_t)ceil(p->balance * (double)a->nb.n);
        return 0;
    }
    a->gen++;
    for (int k = 0; k < 2; k++)
        sm_genetic_breed(&a->pop[k].g, &p->ga, redraw, &a->pop[k]);
    return repair(a, err);
}

/* What to ask next, from the phase the labels told left. */
static int next_rows(abele_search *a, sm_err *err)
{
    const abele_params *p = a->p;
    int L = a->L;
    for (;;) {
        a->n_Z = 0;
        switch (a->phase) {
        case PH_GENETIC:
            if (collect(a))
                return sm_err_set(err, "out of memory");
            if (a->n_Z) /* rows labelled before are told by adaptive.c */
                return 0;
            if (genetic_told(a, NULL, err)) /* a generation unchanged */
                return -1;
            continue;
        case PH_BALANCE:
            if (a->n_balance > 0 && n_labels(a) <= 2 && a->tries < p->tries) {
                a->tries++;
                a->n_Z = 0;
                if (draw_valid(a, p->samples / 2, err))
                    return -1;
                if (a->n_Z)
                    return 0;
            }
            if (build_tree(a, err))
                return -1;
            a->phase = PH_COUNTER;
            for (int k = 0; k < a->n_cf; k++)
                apply_counterfactual(a, &a->cf[k], a->Z + (a->n_Z++) * L);
            if (a->n_Z)
                return 0;
            if (start_exemplars(a, err))
                return -1;
            continue;
        case PH_EXEMPLARS:
            if (a->tries < p->tries && exemplar_candidates(a, err))
                return -1;
            a->tries++;
            if (a->n_Z)
                return 0;
            a->phase = PH_DONE;
            return 0;
        default:
            return 0;
        }
    }
}

static int abele_tell(void *search, const int32_t *label, int64_t n,
                      sm_err *err)
{
    abele_search *a = search;
    int L = a->L;
    switch (a->phase) {
    case PH_RANDOM:
        a->zx_label = label[0];
        for (int64_t i = 1; i < n; i++)
            if (latents_add(&a->nb, L, a->Z + i * L, label[i]))
                return sm_err_set(err, "out of memory");
        a->phase = PH_GENETIC;
        break;
    case PH_GENETIC:
        if (genetic_told(a, label, err))
            return -1;
        break;
    case PH_BALANCE:
        for (int64_t i = 0; i < n && a->n_balance > 0; i++)
            if (!has_label(a, label[i])) {
                /* a label the neighbourhood lacks: this one, and every
                 * other of it drawn in this round */
                int32_t l = label[i];
                for (int64_t j = i; j < n && a->n_balance > 0; j++)
                    if (label[j] == l) {
                        if (latents_add(&a->nb, L, a->Z + j * L, l))
                            return sm_err_set(err, "out of memory");
                        a->n_balance--;
                    }
            }
        break;
    case PH_COUNTER:
        for (int64_t k = 0; k < n; k++)
            a->cf_label[k] = label[k];
        sm_tree_counterfactuals_kept(a->cf, a->n_cf, a->cf_label, a->target,
                                     a->cf_kept);
        if (start_exemplars(a, err))
            return -1;
        break;
    case PH_EXEMPLARS:
        if (take_exemplars(a, a->Z, label, n))
            return sm_err_set(err, "out of memory");
        break;
    default:
        break;
    }
    return next_rows(a, err);
}

static int64_t abele_ask(void *search, const uint8_t **Z, sm_err *err)
{
    (void)err;
    abele_search *a = search;
    if (a->phase == PH_DONE)
        a->n_Z = 0;
    else
        a->asked[a->phase] += a->n_Z;
    a->draws += a->n_Z;
    *Z = (const uint8_t *)a->Z;
    return a->n_Z;
}

static void abele_free(void *search)
{
    abele_search *a = search;
    for (int k = 0; k < 2; k++)
        sm_genetic_free(&a->pop[k].g);
    latents_free(&a->nb);
    latents_free(&a->ex);
    latents_free(&a->cex);
    free(a->Z);
    sm_tree_destroy(&a->tree);
    free(a->cls);
    sm_tree_rule_free(&a->rule);
    sm_tree_rules_free(a->cf, a->n_cf);
    free(a->cf_label);
    free(a->cf_kept);
    sm_rowset_destroy(&a->judged);
    free(a->valid);
    free(a);
}

/* The search starts with z_x and samples/2 valid latents of the prior as
 * its first round. */
static void *abele_start(const void *params, const sm_explain_ctx *ctx,
                         const sm_explain_image *im, const void *space,
                         sm_err *err)
{
    const abele_params *p = params;
    const abele_space *s = space;
    abele_search *a = sm_adaptive_alloc(sizeof *a, err);
    if (!a)
        return NULL;
    a->p = p, a->s = s, a->L = s->L, a->target = im->target, a->x = im->x;
    a->key = sm_rng_key(ctx->seed, (const char *[]){im->id, "abele", NULL});
    a->nkey = sm_rng_key(ctx->seed,
                         (const char *[]){im->id, "abele", "normal", NULL});
    int half = p->samples / 2, ok = 1;
    for (int k = 0; k < 2; k++) {
        abele_pop *q = &a->pop[k];
        const char *run = k == 0 ? "same" : "other";
        q->same = k == 0;
        q->normal_key = sm_rng_key(
            ctx->seed, (const char *[]){im->id, "abele", run, "normal", NULL});
        uint64_t key = sm_rng_key(ctx->seed,
                                  (const char *[]){im->id, "abele", run, NULL});
        int P = k == 0 ? (half + 1) / 2 : half / 2;
        ok = ok && sm_genetic_init(&q->g, P, a->L, sizeof(float),
                                   p->ga.halloffame, key, s->zx) == 0;
    }
    if (!ok || rows_room(a, 1) || !(a->judged = sm_rowset_new(
                                        sizeof(float) * (size_t)a->L))) {
        abele_free(a);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    memcpy(a->Z, s->zx, sizeof(float) * (size_t)a->L);
    a->n_Z = 1;
    if (draw_valid(a, p->samples - half, err)) {
        abele_free(a);
        return NULL;
    }
    return a;
}

/* ---- the maps and the record ---------------------------------------- */

/* Knee threshold of |D - 127.5| (n values on 0..255): the bins of the
 * histogram (1 wide) sorted by count, descending; the knee is the point
 * of log(count) farthest from the chord of the curve; the bins before it
 * are the background of small differences, and g is one past the largest
 * of them (0 when there is no knee). */
static double knee(const float *D, int64_t n)
{
    int count[128] = {0}, order[128], m = 0;
    for (int64_t q = 0; q < n; q++) {
        int b = (int)fabsf(D[q] - 127.5f);
        count[b > 127 ? 127 : b]++;
    }
    for (int b = 0; b < 128; b++)
        if (count[b] > 0) {
            int at = m++;
            while (at > 0 && count[order[at - 1]] < count[b]) /* stable */
                order[at] = order[at - 1], at--;
            order[at] = b;
        }
    if (m < 3)
        return 0;
    double y0 = log(count[order[0]]), y1 = log(count[order[m - 1]]);
    double dx = m - 1, dy = y1 - y0, best = -1;
    int at = 0;
    for (int i = 0; i < m; i++) {
        double d = fabs(dy * i - dx * (log(count[order[i]]) - y0));
        if (d > best)
            best = d, at = i;
    }
    int g = 0;
    for (int i = 0; i < at; i++)
        if (order[i] + 1 > g)
            g = order[i] + 1;
    return g;
}

static int float_cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Grey images on 0..255 (n x h x w) of n latents. */
static int grey_images(const abele_space *s, const float *Z, int64_t n,
                       float *out, sm_err *err)
{
    int64_t hw = s->h * s->w, per = s->c * hw;
    float *t = malloc(sizeof(float) * (size_t)((n ? n : 1) * per));
    if (!t)
        return sm_err_set(err, "out of memory");
    int rc = decode(s, Z, n, t, err);
    for (int64_t i = 0; rc == 0 && i < n; i++)
        for (int64_t q = 0; q < hw; q++) {
            float v = 0;
            for (int64_t ch = 0; ch < s->c; ch++)
                v += (t[i * per + ch * hw + q] + 1.0f) * 127.5f;
            out[i * hw + q] = v / (float)s->c;
        }
    free(t);
    return rc;
}

/* S (h x w) from the exemplars' grey images E (n x h x w). */
static void saliency(const abele_space *s, const float *E, int64_t n, float *S,
                     float *D, float *col)
{
    int64_t hw = s->h * s->w;
    for (int64_t i = 0; i < n; i++) {
        float *d = D + i * hw;
        for (int64_t q = 0; q < hw; q++)
            d[q] = (s->xpix[q] - E[i * hw + q] + 255.0f) / 2.0f;
        double g = knee(d, hw);
        for (int64_t q = 0; q < hw; q++)
            if (fabsf(d[q] - 127.5f) < g)
                d[q] = 127.5f;
    }
    for (int64_t q = 0; q < hw; q++) {
        if (n == 0) {
            S[q] = 127.5f;
            continue;
        }
        for (int64_t i = 0; i < n; i++)
            col[i] = D[i * hw + q];
        qsort(col, (size_t)n, sizeof(float), float_cmp);
        S[q] = n % 2 ? col[n / 2] : (col[n / 2 - 1] + col[n / 2]) / 2;
    }
}

/* ABELE's relevance test: the pixels of R up to its 95th percentile
 * replaced by 0, 127 and 255 in turn; flips[k] = 1 when the model's label
 * of that image is not x's. */
static int relevance(const sm_explain_ctx *ctx, const abele_space *s,
                     const float *R, const float *x, int target, int *flips,
                     sm_err *err)
{
    int64_t hw = s->h * s->w, per = s->c * hw;
    float *sorted = malloc(sizeof(float) * (size_t)hw);
    float *t = malloc(sizeof(float) * (size_t)(3 * per));
    double lab[3];
    if (!sorted || !t) {
        free(sorted), free(t);
        return sm_err_set(err, "out of memory");
    }
    memcpy(sorted, R, sizeof(float) * (size_t)hw);
    qsort(sorted, (size_t)hw, sizeof(float), float_cmp);
    float p95 = sorted[(hw - 1) * 95 / 100];
    static const float fill[3] = {0, 127, 255};
    for (int k = 0; k < 3; k++)
        for (int64_t ch = 0; ch < s->c; ch++)
            for (int64_t q = 0; q < hw; q++)
                t[k * per + ch * hw + q] =
                    R[q] <= p95 ? fill[k] / 127.5f - 1.0f
                                : to_aae(&s->pp, (int)ch, x[ch * hw + q]);
    int rc = label_images(ctx, s, t, 3, lab, err);
    for (int k = 0; rc == 0 && k < 3; k++)
        flips[k] = (int)lab[k] != target;
    free(sorted), free(t);
    return rc;
}

/* A rule's premises as JSON: [{"dim": j, "gt": lo, "le": hi}, ...]. */
static int premises_json(const sm_tree_rule *r, sm_text *t)
{
    int rc = sm_text_addf(t, "[");
    for (int k = 0; k < r->n_cond && rc == 0; k++) {
        const sm_tree_cond *c = &r->cond[k];
        rc = sm_text_addf(t, "%s{\"dim\": %d", k ? ", " : "", c->feature);
        if (rc == 0 && c->lo > -INFINITY)
            rc = sm_text_addf(t, ", \"gt\": %.9g", c->lo);
        if (rc == 0 && c->hi < INFINITY)
            rc = sm_text_addf(t, ", \"le\": %.9g", c->hi);
        rc = rc || sm_text_addf(t, "}");
    }
    return rc || sm_text_addf(t, "]");
}

static int abele_finish(void *search, const sm_explain_ctx *ctx,
                        sm_explain_out *out, sm_err *err)
{
    abele_search *a = search;
    const abele_space *s = a->s;
    int L = a->L, rc = -1;
    int64_t hw = s->h * s->w, ne = a->ex.n, nc = a->cex.n;
    int64_t nmax = (ne > nc ? ne : nc) + 1;
    float *E = malloc(sizeof(float) * (size_t)((ne + 1) * hw));
    float *C = malloc(sizeof(float) * (size_t)((nc + 1) * hw));
    float *D = malloc(sizeof(float) * (size_t)((ne + 1) * hw));
    float *col = malloc(sizeof(float) * (size_t)nmax);
    float *S = malloc(sizeof(float) * (size_t)hw);
    float *R = out->map ? out->map : malloc(sizeof(float) * (size_t)hw);
    float *cfz = malloc(sizeof(float) * (size_t)((a->n_cf + 2) * L));
    sm_text t = {0};
    if (!E || !C || !D || !col || !S || !R || !cfz) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    if (grey_images(s, a->ex.z, ne, E, err) ||
        grey_images(s, a->cex.z, nc, C, err))
        goto done;
    saliency(s, E, ne, S, D, col);
    for (int64_t q = 0; q < hw; q++)
        R[q] = ne ? 1.0f - fabsf(S[q] - 127.5f) / 127.5f : 0.0f;
    int flips[3] = {0, 0, 0};
    if (ne && relevance(ctx, s, R, a->x, a->target, flips, err))
        goto done;
    out->evals = ne ? 3 : 0; /* adaptive.c adds the rows and x's score */
    sm_record *rec = &out->record; /* explainer.c checks it */
    int rc2 = premises_json(&a->rule, &t);
    sm_record_addf(rec, "rule", "{\"premises\": %s, \"label\": %d}",
                   rc2 || !t.s ? "[]" : t.s, a->rule.label);
    sm_record_addf(rec, "rule_length", "%d", a->rule.n_cond);
    sm_record_addf(rec, "fidelity", "%.9g", a->fidelity);
    sm_text_free(&t);
    rc2 = sm_text_addf(&t, "[");
    int shown = 0;
    int rejected = sm_tree_counterfactuals_kept(a->cf, a->n_cf, a->cf_label,
                                                a->target, a->cf_kept);
    for (int k = 0; k < a->n_cf && rc2 == 0; k++) {
        if (!a->cf_kept[k])
            continue;
        apply_counterfactual(a, &a->cf[k], cfz + shown * L);
        rc2 = sm_text_addf(&t, "%s{\"label\": %d, \"model_label\": %d, "
                           "\"cost\": %d, \"premises\": ", shown ? ", " : "",
                           a->cf[k].label, a->cf_label[k], a->cf[k].cost) ||
              premises_json(&a->cf[k], &t) || sm_text_addf(&t, "}");
        shown++;
    }
    if (rc2 || sm_text_addf(&t, "]"))
        rec->failed = 1;
    sm_record_addf(rec, "counterfactuals", "%s", t.s ? t.s : "[]");
    sm_record_addf(rec, "counterfactuals_rejected", "%d", rejected);
    if (ne)
        sm_record_addf(rec, "relevance", "%.9g",
                       (3 - flips[0] - flips[1] - flips[2]) / 3.0);
    sm_record_addf(rec, "relevance_flips", "[%d, %d, %d]", flips[0], flips[1],
                   flips[2]);
    sm_record_addf(rec, "exemplars", "%lld", (long long)ne);
    sm_record_addf(rec, "counter_exemplars", "%lld", (long long)nc);
    sm_record_addf(rec, "neighbourhood", "%lld", (long long)a->nb.n);
    long same = 0;
    for (int64_t i = 0; i < a->nb.n; i++)
        same += a->nb.label[i] == a->target;
    sm_record_addf(rec, "neighbourhood_same", "%ld", same);
    sm_record_addf(rec, "neighbourhood_labels", "%d", a->n_cls);
    sm_record_addf(rec, "latent_label", "%d", (int)a->zx_label);
    sm_record_addf(rec, "tree", "{\"nodes\": %d, \"max_depth\": %d, "
                   "\"min_samples_leaf\": %d, \"cv_macro_f1\": %.9g}",
                   a->tree->n_nodes, a->tp.max_depth, a->tp.min_samples_leaf,
                   a->cv_f1);
    sm_record_addf(rec, "draws", "%lld", (long long)a->draws);
    sm_record_addf(rec, "draws_by_phase", "{\"random\": %lld, \"genetic\": "
                   "%lld, \"balance\": %lld, \"counterfactuals\": %lld, "
                   "\"exemplars\": %lld}", (long long)a->asked[PH_RANDOM],
                   (long long)a->asked[PH_GENETIC],
                   (long long)a->asked[PH_BALANCE],
                   (long long)a->asked[PH_COUNTER],
                   (long long)a->asked[PH_EXEMPLARS]);
    sm_record_array_add(rec, "saliency", 2, (int64_t[]){s->h, s->w}, S);
    if (ne)
        sm_record_array_add(rec, "exemplars", 3, (int64_t[]){ne, s->h, s->w},
                            E);
    if (nc)
        sm_record_array_add(rec, "counter_exemplars", 3,
                            (int64_t[]){nc, s->h, s->w}, C);
    if (shown)
        sm_record_array_add(rec, "counterfactuals", 2,
                            (int64_t[]){shown, L}, cfz);
    if (ne)
        sm_record_array_add(rec, "exemplar_latents", 2, (int64_t[]){ne, L},
                            a->ex.z);
    if (nc)
        sm_record_array_add(rec, "counter_exemplar_latents", 2,
                            (int64_t[]){nc, L}, a->cex.z);
    for (int j = 0; j < L; j++) /* x's rule as a box: lower, upper bounds */
        cfz[j] = -INFINITY, cfz[L + j] = INFINITY;
    for (int k = 0; k < a->rule.n_cond; k++) {
        const sm_tree_cond *c = &a->rule.cond[k];
        cfz[c->feature] = (float)c->lo;
        cfz[L + c->feature] = (float)c->hi;
    }
    sm_record_array_add(rec, "rule_bounds", 2, (int64_t[]){2, L}, cfz);
    rc = 0;
done:
    sm_text_free(&t);
    free(E), free(C), free(D), free(col), free(S), free(cfz);
    if (R != out->map)
        free(R);
    return rc;
}

static const sm_adaptive_method abele_method = {
    &abele_latents, abele_start, abele_ask, abele_tell, abele_finish,
    abele_free};
SM_ADAPTIVE_OPS(abele, abele_method)

#define P(f) offsetof(abele_params, f)
static const sm_param_def abele_params_def[] = {
    {"aae", SM_PARAM_STRING, P(aae), "", 0, 0, NULL,
     "the autoencoder's YAML (salmap train-aae); empty: <model's "
     "prefix>_aae.yaml beside the model"},
    {"samples", SM_PARAM_INT, P(samples), "1000", 4, 10000000, NULL,
     "neighbourhood: half valid latents of the prior, half the genetic "
     "runs' populations"},
    SM_GENETIC_PARAM_DEFS(abele_params),
    {"balance", SM_PARAM_FLOAT, P(balance), "0.1", 0, 1, NULL,
     "with at most two labels, latents of others added (a share)"},
    {"exemplars", SM_PARAM_INT, P(exemplars), "100", 0, 100000, NULL,
     "exemplars wanted (valid, in x's leaf, x's label)"},
    {"counter_exemplars", SM_PARAM_INT, P(counter_exemplars), "100", 0,
     100000, NULL, "counter-exemplars wanted (in kept counterfactuals' "
     "leaves, another label)"},
    {"spread", SM_PARAM_FLOAT, P(spread), "0.5", 1e-6, 100, NULL,
     "standard deviation of exemplar candidates around their centre"},
    {"tries", SM_PARAM_INT, P(tries), "10", 1, 1000, NULL,
     "batches of candidates (valid latents, balance, exemplars) at most"},
    {"folds", SM_PARAM_INT, P(folds), "3", 2, 20, NULL,
     "cross-validation folds of the tree's grid"},
    {"internal_batch", SM_PARAM_INT, P(internal_batch), "256", 1, 65536,
     NULL, "latents a decoder or model run"},
    {NULL},
};
#undef P

const sm_explainer_class sm_explainer_abele = {
    .name = "abele",
    .summary = "ABELE: a decision tree on a latent neighbourhood of an "
               "adversarial autoencoder; rules, exemplars, counter-exemplars",
    .backward = 0,
    .params = abele_params_def,
    .params_size = sizeof(abele_params),
    .check = NULL,
    SM_ADAPTIVE_CLASS_OPS(abele),
};
