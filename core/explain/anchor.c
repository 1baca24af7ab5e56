/* Anchor (Ribeiro 2018) on superpixels, with the reference's defaults
 * (anchor_image.py, anchor_base.py): an anchor is a set of superpixels
 * that, kept on while every other superpixel is on with probability
 * p_sample (off: hidden as LIME hides it), keeps the model's label with
 * precision >= threshold. Search: the empty anchor first, then a beam
 * search by size, each size's beam chosen by KL-LUCB, each winner's
 * precision verified; the anchor is the verified one of largest coverage.
 *
 * Where the reference is wrong, this is not (docs/METHODS.md): KL bounds
 * bisected 16 times, not once; coverage drawn with p_sample, not 0.5;
 * counter-examples filled; every draw keyed by (seed, image id). One store
 * of samples is shared by all candidates, and a candidate counts only the
 * samples that are draws of its own distribution: its superpixels on, and
 * drawn for an anchor inside it (the reference also counts samples drawn
 * for its siblings, whose fixed superpixels bias the estimate).
 *
 * The search is a machine that asks for rows to label (adaptive.h): each
 * request is a round, labelled in one model call or in chunks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/adaptive.h"
#include "util/grow.h"
#include "util/rng.h"

typedef struct anchor_params {
    sm_superpixel_params sp; /* first: SM_SUPERPIXEL_PARAM_DEFS */
    double threshold, delta, tau, epsilon_stop, p_sample;
    int batch_size, beam_size, coverage_samples, max_anchor_size, max_evals;
    int examples;
} anchor_params;

/* A candidate anchor. */
typedef struct anchor_cand {
    int size, off;  /* superpixels feat[off .. off + size), in the order
                       they were added */
    long n, pos;    /* samples counted; those that keep the label */
    double coverage;
} anchor_cand;

#define EMPTY -1 /* the empty anchor, as a candidate id */
#define NONE -2

enum { PH_EMPTY, PH_SIZE, PH_START, PH_LUCB, PH_VERIFY, PH_END, PH_DONE };

typedef struct anchor_search {
    const anchor_params *p;
    const sm_superpixel_image *s;
    int d, target;
    uint64_t key;
    /* the shared store: each sample's row, the candidate it was drawn for
     * (or EMPTY) and whether it kept the label */
    uint8_t *rows; /* n_rows x d */
    int32_t *arm;
    uint8_t *keep;
    int64_t n_rows, cap_rows, cap_arm, cap_keep;
    anchor_cand *cand;
    int n_cand;
    int64_t cap_cand;
    int *feat;
    int n_feat;
    int64_t cap_feat;
    uint64_t *cov; /* per superpixel, bit v: coverage vector v shows it */
    int cov_words;
    uint8_t *mask; /* d bytes of scratch */
    /* the machine */
    int phase, size, fallback, top_n, n_arms, n_chosen, verify_i, n_best;
    int *arms, *chosen, *best; /* candidate ids, n_cand at most */
    int64_t cap_arms, cap_chosen, cap_best;
    long t;
    long empty_n, empty_pos;
    int answer, stop, truncated;
    double best_cov;
    /* the round asked */
    uint8_t *Z; /* n_Z x d */
    int32_t *Z_arm;
    int64_t n_Z, cap_Z, cap_Z_arm;
} anchor_search;

static void anchor_free(void *search)
{
    anchor_search *a = search;
    free(a->rows);
    free(a->arm);
    free(a->keep);
    free(a->cand);
    free(a->feat);
    free(a->cov);
    free(a->mask);
    free(a->arms);
    free(a->chosen);
    free(a->best);
    free(a->Z);
    free(a->Z_arm);
    free(a);
}

/* ---- bounds -------------------------------------------------------- */

static double kl_bernoulli(double p, double q)
{
    p = fmin(1 - 1e-16, fmax(1e-7, p));
    q = fmin(1 - 1e-16, fmax(1e-7, q));
    return p * log(p / q) + (1 - p) * log((1 - p) / (1 - q));
}

#define HALVINGS 16

/* The q farthest from p on one side (up: q >= p, else q <= p) with
 * KL(p, q) <= level, by bisection of Pinsker's bracket (16 halvings);
 * the bracket's outer end, so the bound stays conservative. */
static double kl_bound(double p, double level, int up)
{
    double in = p, out = up ? fmin(1, p + sqrt(level / 2))
                            : fmax(0, p - sqrt(level / 2));
    for (int i = 0; i < HALVINGS; i++) {
        double m = (in + out) / 2;
        if (kl_bernoulli(p, m) > level)
            out = m;
        else
            in = m;
    }
    return out;
}

static double kl_upper(double p, double level) { return kl_bound(p, level, 1); }
static double kl_lower(double p, double level) { return kl_bound(p, level, 0); }

static double mean_of(const anchor_cand *c)
{
    return c->n ? (double)c->pos / (double)c->n : 0;
}

/* The confidence level of the verification step (the reference's: the
 * beam's candidates of all sizes share delta). */
static double verify_beta(const anchor_search *a)
{
    return log(1 / (a->p->delta / (1 + (a->p->beam_size - 1) * a->d)));
}

/* ---- candidates ---------------------------------------------------- */

static const int *feat_of(const anchor_search *a, int c)
{
    return a->feat + a->cand[c].off;
}

/* 1 when row i is a draw of candidate c's distribution: c's superpixels
 * on, and drawn for an anchor inside c. a->mask holds c's superpixels. */
static int counts_for(const anchor_search *a, int c, int64_t i)
{
    const uint8_t *row = a->rows + i * a->d;
    const int *f = feat_of(a, c);
    for (int k = 0; k < a->cand[c].size; k++)
        if (!row[f[k]])
            return 0;
    if (a->arm[i] == EMPTY)
        return 1;
    const int *g = feat_of(a, a->arm[i]);
    for (int k = 0; k < a->cand[a->arm[i]].size; k++)
        if (!a->mask[g[k]])
            return 0;
    return 1;
}

static void mask_of(anchor_search *a, int c)
{
    memset(a->mask, 0, (size_t)a->d);
    if (c == EMPTY)
        return;
    for (int k = 0; k < a->cand[c].size; k++)
        a->mask[feat_of(a, c)[k]] = 1;
}

/* The share of coverage vectors that show all of c's superpixels. */
static double coverage_of(const anchor_search *a, int c)
{
    long hits = 0;
    const int *f = feat_of(a, c);
    for (int w = 0; w < a->cov_words; w++) {
        uint64_t v = ~(uint64_t)0;
        for (int k = 0; k < a->cand[c].size; k++)
            v &= a->cov[(size_t)f[k] * (size_t)a->cov_words + (size_t)w];
        hits += __builtin_popcountll(v);
    }
    return (double)hits / a->p->coverage_samples;
}

/* A new candidate: parent's superpixels (parent EMPTY: none) and then f,
 * unless the same set is already among candidates [from, n_cand): its id,
 * or -1 when it exists or is not wanted; -2 when out of memory. Its
 * statistics are those of every stored sample that counts for it. */
static int cand_add(anchor_search *a, int parent, int f, int from)
{
    int size = parent == EMPTY ? 1 : a->cand[parent].size + 1;
    memset(a->mask, 0, (size_t)a->d);
    if (parent != EMPTY)
        for (int k = 0; k < size - 1; k++)
            a->mask[feat_of(a, parent)[k]] = 1;
    if (a->mask[f])
        return -1;
    a->mask[f] = 1;
    for (int c = from; c < a->n_cand; c++) {
        int same = 1;
        for (int k = 0; k < size && same; k++)
            same = a->mask[feat_of(a, c)[k]];
        if (same)
            return -1;
    }
    int64_t n = a->n_cand + 1;
    if (sm_grow((void **)&a->cand, &a->cap_cand, n, sizeof *a->cand) ||
        sm_grow((void **)&a->feat, &a->cap_feat, a->n_feat + size,
                sizeof *a->feat) ||
        sm_grow((void **)&a->arms, &a->cap_arms, n, sizeof(int)) ||
        sm_grow((void **)&a->chosen, &a->cap_chosen, n, sizeof(int)) ||
        sm_grow((void **)&a->best, &a->cap_best, n, sizeof(int)))
        return -2;
    int c = a->n_cand;
    anchor_cand *k = &a->cand[c];
    k->size = size;
    k->off = a->n_feat;
    if (parent != EMPTY)
        memcpy(a->feat + a->n_feat, feat_of(a, parent),
               sizeof(int) * (size_t)(size - 1));
    a->feat[a->n_feat + size - 1] = f;
    a->n_feat += size;
    a->n_cand++;
    k->coverage = coverage_of(a, c);
    if (k->coverage <= a->best_cov) { /* cannot beat the anchor found */
        a->n_cand--;
        a->n_feat -= size;
        return -1;
    }
    k->n = k->pos = 0;
    for (int64_t i = 0; i < a->n_rows; i++)
        if (counts_for(a, c, i)) {
            k->n++;
            k->pos += a->keep[i];
        }
    return c;
}

/* ---- the machine --------------------------------------------------- */

/* Asks for count rows drawn for candidate c (EMPTY: nothing fixed). Row
 * k of the store (counting what was asked before it) draws superpixel j
 * from counter k * d + j. 0, 1 when the budget is spent, -1 out of
 * memory. */
static int request(anchor_search *a, int c, int64_t count)
{
    if (a->n_rows + a->n_Z + count > a->p->max_evals)
        return 1;
    int d = a->d;
    if (sm_grow((void **)&a->Z, &a->cap_Z, a->n_Z + count, (size_t)d) ||
        sm_grow((void **)&a->Z_arm, &a->cap_Z_arm, a->n_Z + count,
                sizeof(int32_t)))
        return -1;
    mask_of(a, c);
    for (int64_t r = 0; r < count; r++) {
        uint64_t k = (uint64_t)(a->n_rows + a->n_Z);
        uint8_t *z = a->Z + a->n_Z * d;
        for (int j = 0; j < d; j++)
            z[j] = a->mask[j] ||
                   sm_rng_uniform(a->key, k * (uint64_t)d + (uint64_t)j) <
                       a->p->p_sample;
        a->Z_arm[a->n_Z++] = c;
    }
    return 0;
}

/* Sorts ids[0..n) by (mean, id) ascending. */
static void sort_by_mean(const anchor_search *a, int *ids, int n)
{
    for (int i = 1; i < n; i++) {
        int v = ids[i], j = i;
        double mv = mean_of(&a->cand[v]);
        while (j > 0) {
            double mj = mean_of(&a->cand[ids[j - 1]]);
            if (mj < mv || (mj == mv && ids[j - 1] < v))
                break;
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = v;
    }
}

/* KL-LUCB's bounds at round t: among the arms outside the top_n by mean,
 * ut of largest upper bound; among the top_n, lt of smallest lower bound;
 * the gap B = ub(ut) - lb(lt). */
static double lucb_gap(anchor_search *a, int *ut, int *lt)
{
    int n = a->n_arms, top = a->top_n;
    int *idx = a->chosen; /* scratch until LUCB ends */
    memcpy(idx, a->arms, sizeof(int) * (size_t)n);
    sort_by_mean(a, idx, n);
    double beta = log(405.5 * n * pow((double)a->t, 1.1) / a->p->delta);
    double ub = -1, lb = 2;
    for (int i = 0; i < n - top; i++) {
        const anchor_cand *c = &a->cand[idx[i]];
        double u = kl_upper(mean_of(c), beta / (double)c->n);
        if (u > ub)
            ub = u, *ut = idx[i];
    }
    for (int i = n - top; i < n; i++) {
        const anchor_cand *c = &a->cand[idx[i]];
        double l = kl_lower(mean_of(c), beta / (double)c->n);
        if (l < lb)
            lb = l, *lt = idx[i];
    }
    return ub - lb;
}

/* The LUCB's winners: the top_n arms by mean (ascending), or all arms
 * when there are no more; then the fallback's answer, or verification. */
static void lucb_done(anchor_search *a)
{
    memcpy(a->chosen, a->arms, sizeof(int) * (size_t)a->n_arms);
    if (a->n_arms > a->top_n) {
        sort_by_mean(a, a->chosen, a->n_arms);
        memmove(a->chosen, a->chosen + a->n_arms - a->top_n,
                sizeof(int) * (size_t)a->top_n);
    }
    a->n_chosen = a->top_n;
    if (a->fallback) {
        a->answer = a->chosen[a->n_chosen - 1];
        a->phase = PH_DONE;
        return;
    }
    memcpy(a->best + a->n_best, a->chosen, sizeof(int) * (size_t)a->n_chosen);
    a->n_best += a->n_chosen;
    a->verify_i = 0;
    a->phase = PH_VERIFY;
}

/* The budget is spent: the anchor found so far, else the candidate of
 * highest precision among the beams (and the arms in play), else the
 * empty anchor. */
static void out_of_budget(anchor_search *a)
{
    int in_play = a->phase == PH_START || a->phase == PH_LUCB;
    a->truncated = 1;
    a->n_Z = 0;
    a->phase = PH_DONE;
    if (a->answer != NONE)
        return;
    a->answer = EMPTY;
    double best = -1;
    for (int pass = 0; pass < 2; pass++) {
        const int *ids = pass ? a->arms : a->best;
        int n = pass ? (in_play ? a->n_arms : 0) : a->n_best;
        for (int i = 0; i < n; i++)
            if (a->cand[ids[i]].n && mean_of(&a->cand[ids[i]]) > best)
                best = mean_of(&a->cand[ids[i]]), a->answer = ids[i];
    }
}

/* Runs the search until it asks for rows (a->n_Z > 0) or is done. 0, or
 * -1 out of memory. */
static int advance(anchor_search *a)
{
    const anchor_params *p = a->p;
    int rc;
#define ASK(c, count)                                                        \
    do {                                                                     \
        if ((rc = request(a, (c), (count))) < 0)                             \
            return -1;                                                       \
        if (rc > 0) {                                                        \
            out_of_budget(a);                                                \
            return 0;                                                        \
        }                                                                    \
    } while (0)
    while (a->n_Z == 0 && a->phase != PH_DONE) {
        switch (a->phase) {
        case PH_EMPTY: { /* does the empty anchor already hold? */
            double mean = a->empty_n ? (double)a->empty_pos / a->empty_n : 0;
            double lb = a->empty_n
                            ? kl_lower(mean, log(1 / p->delta) / a->empty_n)
                            : 0;
            if (!a->empty_n ||
                (mean > p->threshold && lb < p->threshold - p->tau)) {
                ASK(EMPTY, p->batch_size);
            } else if (lb > p->threshold) {
                a->answer = EMPTY;
                a->phase = PH_DONE;
            } else {
                a->size = 1;
                a->phase = PH_SIZE;
            }
            break;
        }
        case PH_SIZE: { /* the candidates one superpixel larger */
            int max = p->max_anchor_size ? p->max_anchor_size : a->d;
            a->n_arms = 0;
            if (a->size > max || a->size > a->d) {
                a->phase = PH_END;
                break;
            }
            int from = a->n_cand;
            for (int f = 0; f < a->d; f++)
                for (int b = 0; b < (a->size == 1 ? 1 : a->n_best); b++) {
                    int parent = a->size == 1 ? EMPTY : a->best[b];
                    if (parent != EMPTY && a->cand[parent].size != a->size - 1)
                        continue;
                    int c = cand_add(a, parent, f, from);
                    if (c == -2)
                        return -1;
                    if (c >= 0)
                        a->arms[a->n_arms++] = c;
                }
            a->top_n = a->n_arms < p->beam_size ? a->n_arms : p->beam_size;
            a->phase = a->n_arms ? PH_START : PH_END;
            break;
        }
        case PH_START: /* an arm without samples gets a batch first */
            for (int i = 0; i < a->n_arms; i++)
                if (a->cand[a->arms[i]].n == 0)
                    ASK(a->arms[i], p->batch_size);
            if (a->n_Z)
                break;
            if (a->n_arms == a->top_n) {
                lucb_done(a);
                break;
            }
            a->t = 1;
            a->phase = PH_LUCB;
            break;
        case PH_LUCB: {
            int ut = 0, lt = 0;
            if (lucb_gap(a, &ut, &lt) <= p->tau) {
                lucb_done(a);
                break;
            }
            ASK(ut, p->batch_size);
            ASK(lt, p->batch_size);
            a->t++;
            break;
        }
        case PH_VERIFY: { /* is each winner's precision clear of threshold? */
            double beta = verify_beta(a), th = p->threshold;
            while (a->verify_i < a->n_chosen && !a->n_Z) {
                int c = a->chosen[a->verify_i];
                const anchor_cand *k = &a->cand[c];
                double mean = mean_of(k), lvl = beta / (double)k->n;
                double lb = kl_lower(mean, lvl), ub = kl_upper(mean, lvl);
                if ((mean >= th && lb < th - p->epsilon_stop) ||
                    (mean < th && ub >= th + p->epsilon_stop)) {
                    ASK(c, p->batch_size);
                    break;
                }
                if (mean >= th && lb > th - p->epsilon_stop &&
                    k->coverage > a->best_cov) {
                    a->best_cov = k->coverage;
                    a->answer = c;
                    a->stop |= k->coverage == 1;
                }
                a->verify_i++;
            }
            if (a->n_Z)
                break;
            if (a->stop) {
                a->phase = PH_END;
            } else {
                a->size++;
                a->phase = PH_SIZE;
            }
            break;
        }
        case PH_END: /* none verified: the most precise of every beam */
            if (a->answer != NONE) {
                a->phase = PH_DONE;
            } else if (a->n_best == 0) {
                a->answer = EMPTY;
                a->phase = PH_DONE;
            } else {
                memcpy(a->arms, a->best, sizeof(int) * (size_t)a->n_best);
                a->n_arms = a->n_best;
                a->top_n = 1;
                a->fallback = 1;
                a->phase = PH_START;
            }
            break;
        }
    }
#undef ASK
    return 0;
}

/* ---- the adaptive method ------------------------------------------- */

static void *anchor_start(const void *params, const sm_explain_ctx *ctx,
                          const sm_explain_image *im,
                          const void *space, sm_err *err)
{
    const anchor_params *p = params;
    const sm_superpixel_image *s = space;
    anchor_search *a = sm_adaptive_alloc(sizeof *a, err);
    if (!a)
        return NULL;
    a->p = p, a->s = s, a->d = s->d, a->target = im->target;
    a->key = sm_rng_key(ctx->seed, (const char *[]){im->id, "anchor", NULL});
    a->answer = NONE;
    a->best_cov = -1;
    a->phase = PH_EMPTY;
    a->cov_words = (p->coverage_samples + 63) / 64;
    a->cov = calloc((size_t)a->d * (size_t)a->cov_words, sizeof(uint64_t));
    a->mask = malloc((size_t)a->d);
    if (!a->cov || !a->mask) {
        anchor_free(a);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    /* the coverage vectors, drawn once, with p_sample as the samples are */
    uint64_t ckey = sm_rng_key(ctx->seed, (const char *[]){im->id, "anchor",
                                                             "coverage", NULL});
    if (p->p_sample == 0.5) { /* the default: 64 fair coins a draw */
        int64_t tail = p->coverage_samples % 64;
        for (int j = 0; j < a->d; j++)
            for (int w = 0; w < a->cov_words; w++) {
                uint64_t bits = sm_rng_u64(ckey, (uint64_t)j *
                                                     (uint64_t)a->cov_words +
                                                     (uint64_t)w);
                if (tail && w == a->cov_words - 1)
                    bits &= ((uint64_t)1 << tail) - 1;
                a->cov[(size_t)j * (size_t)a->cov_words + (size_t)w] = bits;
            }
        return a;
    }
    for (int64_t v = 0; v < p->coverage_samples; v++)
        for (int j = 0; j < a->d; j++)
            if (sm_rng_uniform(ckey, (uint64_t)(v * a->d + j)) < p->p_sample)
                a->cov[(size_t)j * (size_t)a->cov_words + (size_t)(v / 64)] |=
                    (uint64_t)1 << (v % 64);
    return a;
}

static int64_t anchor_ask(void *search, const uint8_t **Z, sm_err *err)
{
    anchor_search *a = search;
    if (!a->n_Z && advance(a))
        return sm_err_set(err, "out of memory");
    *Z = a->Z;
    return a->n_Z;
}

static int anchor_tell(void *search, const int32_t *label, int64_t n,
                       sm_err *err)
{
    anchor_search *a = search;
    int d = a->d;
    int64_t need = a->n_rows + n;
    if (sm_grow((void **)&a->rows, &a->cap_rows, need, (size_t)d) ||
        sm_grow((void **)&a->arm, &a->cap_arm, need, sizeof(int32_t)) ||
        sm_grow((void **)&a->keep, &a->cap_keep, need, 1))
        return sm_err_set(err, "out of memory");
    memcpy(a->rows + a->n_rows * d, a->Z, (size_t)(n * d));
    for (int64_t i = 0; i < n; i++) {
        int c = a->Z_arm[i], keep = label[i] == a->target;
        a->arm[a->n_rows + i] = c;
        a->keep[a->n_rows + i] = (uint8_t)keep;
        if (c == EMPTY) {
            a->empty_n++;
            a->empty_pos += keep;
        } else {
            a->cand[c].n++;
            a->cand[c].pos += keep;
        }
    }
    a->n_rows += n;
    a->n_Z = 0;
    return 0;
}

/* Up to k masks (k x d) of the samples that count for the anchor and do
 * (keep 1) or do not keep the label, into rec as array name. */
static void anchor_examples(anchor_search *a, int keep, const char *name,
                            sm_record *rec)
{
    int d = a->d, k = 0, max = a->p->examples;
    float *m = malloc(sizeof(float) * (size_t)(max ? max : 1) * (size_t)d);
    if (!m) {
        rec->failed = 1;
        return;
    }
    mask_of(a, a->answer);
    for (int64_t i = 0; i < a->n_rows && k < max; i++) {
        int ok = a->answer == EMPTY ? a->arm[i] == EMPTY
                                    : counts_for(a, a->answer, i);
        if (!ok || a->keep[i] != keep)
            continue;
        for (int j = 0; j < d; j++)
            m[k * d + j] = a->rows[i * d + j];
        k++;
    }
    if (k)
        sm_record_array_add(rec, name, 2, (int64_t[]){k, d}, m);
    free(m);
}

static int anchor_finish(void *search, const sm_explain_ctx *ctx,
                         sm_explain_out *out, sm_err *err)
{
    (void)ctx;
    anchor_search *a = search;
    const anchor_params *p = a->p;
    int d = a->d, size = a->answer == EMPTY ? 0 : a->cand[a->answer].size;
    const int *f = size ? feat_of(a, a->answer) : NULL;
    double mean, lb, cov = 1;
    long n;
    if (a->answer == EMPTY) {
        n = a->empty_n;
        mean = n ? (double)a->empty_pos / n : 0;
        lb = n ? kl_lower(mean, log(1 / p->delta) / n) : 0;
    } else {
        const anchor_cand *c = &a->cand[a->answer];
        n = c->n;
        mean = mean_of(c);
        lb = kl_lower(mean, verify_beta(a) / (double)n);
        cov = c->coverage;
    }
    double *v = calloc((size_t)d, sizeof(double));
    if (!v)
        return sm_err_set(err, "out of memory");
    for (int k = 0; k < size; k++)
        v[f[k]] = 1;
    sm_superpixel_paint(a->s, v, out->map);
    free(v);
    sm_record *rec = &out->record; /* explainer.c checks it */
    sm_text ids = {0};
    sm_text_addf(&ids, "[");
    for (int k = 0; k < size; k++)
        sm_text_addf(&ids, "%s%d", k ? ", " : "", f[k]);
    if (sm_text_addf(&ids, "]"))
        rec->failed = 1;
    sm_record_addf(rec, "anchor", "%s", ids.s ? ids.s : "[]");
    sm_text_free(&ids);
    sm_record_addf(rec, "precision", "%.9g", mean);
    sm_record_addf(rec, "precision_lb", "%.9g", lb);
    sm_record_addf(rec, "coverage", "%.9g", cov);
    sm_record_addf(rec, "found", "%s",
                   a->answer == EMPTY ? (lb > p->threshold ? "true" : "false")
                   : mean >= p->threshold && lb > p->threshold - p->epsilon_stop
                       ? "true"
                       : "false");
    sm_record_addf(rec, "truncated", "%s", a->truncated ? "true" : "false");
    sm_record_addf(rec, "samples", "%ld", n);
    /* every sample drawn, what the reference evaluates; evals counts the
     * distinct ones, each labelled once */
    sm_record_addf(rec, "draws", "%lld", (long long)a->n_rows);
    anchor_examples(a, 1, "examples", rec);
    anchor_examples(a, 0, "counter_examples", rec);
    return 0;
}

static const sm_adaptive_method anchor_method = {
    &sm_adaptive_superpixels, anchor_start, anchor_ask, anchor_tell, anchor_finish, anchor_free};
SM_ADAPTIVE_OPS(anchor, anchor_method)

#define P(f) offsetof(anchor_params, f)
static const sm_param_def anchor_params_def[] = {
    SM_SUPERPIXEL_PARAM_DEFS(anchor_params),
    {"threshold", SM_PARAM_FLOAT, P(threshold), "0.95", 0, 1, NULL,
     "precision an anchor must reach"},
    {"delta", SM_PARAM_FLOAT, P(delta), "0.1", 1e-9, 0.999999, NULL,
     "confidence: bounds hold with probability 1 - delta"},
    {"tau", SM_PARAM_FLOAT, P(tau), "0.15", 1e-9, 1, NULL,
     "KL-LUCB's epsilon: how close the beam's means must be resolved"},
    {"epsilon_stop", SM_PARAM_FLOAT, P(epsilon_stop), "0.05", 0, 1, NULL,
     "verification: the lower bound must clear threshold - epsilon_stop"},
    {"p_sample", SM_PARAM_FLOAT, P(p_sample), "0.5", 1e-9, 0.999999, NULL,
     "probability that a superpixel outside the anchor is shown, in "
     "samples and coverage vectors alike"},
    {"batch_size", SM_PARAM_INT, P(batch_size), "100", 1, 1000000, NULL,
     "samples drawn for a candidate at a time"},
    {"beam_size", SM_PARAM_INT, P(beam_size), "1", 1, 1000, NULL,
     "candidates kept at each anchor size"},
    {"coverage_samples", SM_PARAM_INT, P(coverage_samples), "10000", 1,
     10000000, NULL, "random vectors coverage is measured on (no model "
     "calls)"},
    {"max_anchor_size", SM_PARAM_INT, P(max_anchor_size), "0", 0, 1000000,
     NULL, "largest anchor searched (0: every superpixel)"},
    {"max_evals", SM_PARAM_INT, P(max_evals), "100000", 1, 100000000, NULL,
     "samples per image at most (evals adds 1, the image itself); the "
     "search then stops with the best found (\"truncated\" in the record)"},
    {"examples", SM_PARAM_INT, P(examples), "10", 0, 100000, NULL,
     "examples and counter-examples recorded, each"},
    {NULL},
};
#undef P

const sm_explainer_class sm_explainer_anchor = {
    .name = "anchor",
    .summary = "Anchor: the superpixels that, kept, hold the label with "
               "precision >= 0.95 (KL-LUCB beam search)",
    .backward = 0,
    .params = anchor_params_def,
    .params_size = sizeof(anchor_params),
    .check = NULL,
    SM_ADAPTIVE_CLASS_OPS(anchor),
};
