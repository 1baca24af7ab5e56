/* LORE (Guidotti 2018) on superpixels, with the reference's defaults
 * (LORE's gpdatagenerator.py and LORE_sa): a genetic neighbourhood of
 * on/off superpixel vectors around x (all on), labelled by the model; a
 * decision tree (surrogate/tree.c, balanced class weights) fitted on it;
 * x's rule (its root-to-leaf path) and counterfactual rules; the map puts
 * the tree's importance on the superpixels of x's rule, + where it needs
 * the superpixel shown, - where hidden.
 *
 * The neighbourhood: two populations of samples/2 copies of x evolve for
 * `generations` generations (DEAP's eaSimple: tournament selection,
 * two-point crossover, per-gene mutation to a random value), one towards
 * x's label and one away from it; fitness alpha1 * similarity (1 - the
 * share of superpixels that differ; 0 for a copy of x) + alpha2 * (1 when
 * the label is the same, resp. differs). Each keeps its individuals and
 * hall of fame above the largest gap of its sorted fitness; x is row 0.
 *
 * Where the reference is wrong or binary, this is not (docs/METHODS.md):
 * every draw keyed by (seed, image id); counterfactuals for every other
 * class reachable in the tree, ranked by the premises x falsifies, each
 * applied to x and checked with the model (the reference trusts the
 * tree). Each generation of both populations is one round (adaptive.c
 * asks the model only for the vectors it never labelled). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/adaptive.h"
#include "explain/genetic.h"
#include "surrogate/surrogate.h"
#include "util/rng.h"

typedef struct lore_params {
    sm_superpixel_params sp; /* first: SM_SUPERPIXEL_PARAM_DEFS */
    int samples;
    sm_genetic_params ga;
    int max_depth, min_samples_split, min_samples_leaf;
} lore_params;

/* One population: towards x's label (same) or away from it. */
typedef struct lore_pop {
    int same;
    sm_genetic_pop g;
} lore_pop;

typedef struct lore_search {
    const lore_params *p;
    const sm_superpixel_image *s;
    int d, target, gen, done;
    lore_pop pop[2];
    uint8_t *Z; /* the rows asked: the n_Z individuals without fitness */
    int64_t n_Z;
    int64_t draws; /* rows asked in all, what the reference evaluates */
} lore_search;

/* ---- the genetic algorithm ----------------------------------------- */

/* The fitness of row z, its label known. */
static double fitness(const lore_search *a, const lore_pop *q,
                      const uint8_t *z, int32_t label)
{
    int differ = 0;
    for (int j = 0; j < a->d; j++)
        differ += !z[j]; /* x is all on */
    double sim = 1 - (double)differ / a->d;
    if (sim >= 1) /* a copy of x adds nothing to the neighbourhood */
        sim = 0;
    int hit = q->same ? label == a->target : label != a->target;
    return a->p->ga.alpha1 * sim + a->p->ga.alpha2 * hit;
}

/* Mutation: a superpixel shown or hidden at random. */
static void flip(void *ctx, sm_genetic_pop *q, uint8_t *row, int j)
{
    (void)ctx;
    row[j] = sm_genetic_draw(q) < 0.5;
}

/* Evaluates every individual without a fitness (its label told), then
 * updates the hall of fame. */
static void evaluate(lore_search *a, lore_pop *q)
{
    sm_genetic_pop *g = &q->g;
    for (int i = 0; i < g->P; i++)
        if (isnan(g->fit[i]))
            g->fit[i] = fitness(a, q, g->ind + (size_t)i * a->d, g->lab[i]);
    sm_genetic_hof_update(g);
}

/* The rows of the individuals without a fitness, both populations in
 * order, into Z (adaptive.c asks the model only for rows it never
 * labelled). */
static void collect(lore_search *a)
{
    int d = a->d;
    a->n_Z = 0;
    for (int k = 0; k < 2; k++) {
        const sm_genetic_pop *g = &a->pop[k].g;
        for (int i = 0; i < g->P; i++)
            if (isnan(g->fit[i]))
                memcpy(a->Z + (a->n_Z++) * d, g->ind + (size_t)i * d,
                       (size_t)d);
    }
}

/* With every label of this generation known: fitness, hall of fame, and
 * the next generation bred, or done. */
static void advance(lore_search *a)
{
    for (int k = 0; k < 2; k++)
        evaluate(a, &a->pop[k]);
    if (a->gen == a->p->ga.generations) {
        a->done = 1;
        return;
    }
    a->gen++;
    const lore_params *p = a->p;
    for (int k = 0; k < 2; k++)
        sm_genetic_breed(&a->pop[k].g, &p->ga, flip, NULL);
}

static void lore_free(void *search)
{
    lore_search *a = search;
    for (int k = 0; k < 2; k++)
        sm_genetic_free(&a->pop[k].g);
    free(a->Z);
    free(a);
}

static void *lore_start(const void *params, const sm_explain_ctx *ctx,
                        const sm_explain_image *im,
                        const void *space, sm_err *err)
{
    const lore_params *p = params;
    const sm_superpixel_image *s = space;
    lore_search *a = sm_adaptive_alloc(sizeof *a, err);
    if (!a)
        return NULL;
    a->p = p, a->s = s, a->d = s->d, a->target = im->target;
    int d = a->d, ok = 1;
    uint8_t *x = malloc((size_t)d);
    if (x)
        memset(x, 1, (size_t)d); /* x: every superpixel shown */
    for (int k = 0; k < 2; k++) {
        lore_pop *q = &a->pop[k];
        q->same = k == 0;
        uint64_t key = sm_rng_key(ctx->seed, (const char *[]){
                                                 im->id, "lore",
                                                 k == 0 ? "same" : "other",
                                                 NULL});
        int P = k == 0 ? (p->samples + 1) / 2 : p->samples / 2;
        ok = ok && x &&
             sm_genetic_init(&q->g, P, d, 1, p->ga.halloffame, key, x) == 0;
    }
    free(x);
    a->Z = malloc((size_t)(p->samples + 1) * (size_t)d);
    if (!ok || !a->Z) {
        lore_free(a);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    return a;
}

static int64_t lore_ask(void *search, const uint8_t **Z, sm_err *err)
{
    (void)err;
    lore_search *a = search;
    a->n_Z = 0;
    while (!a->done && (collect(a), a->n_Z == 0))
        advance(a); /* nothing changed: a generation without new rows */
    if (a->done)
        a->n_Z = 0;
    a->draws += a->n_Z;
    *Z = a->Z;
    return a->n_Z;
}

static int lore_tell(void *search, const int32_t *label, int64_t n,
                     sm_err *err)
{
    (void)err, (void)n;
    lore_search *a = search;
    int64_t r = 0;
    for (int k = 0; k < 2; k++) {
        sm_genetic_pop *g = &a->pop[k].g;
        for (int i = 0; i < g->P; i++)
            if (isnan(g->fit[i]))
                g->lab[i] = label[r++];
    }
    advance(a);
    return 0;
}

/* ---- the neighbourhood, the tree, the rules ------------------------ */

/* The neighbourhood: x, then each population's kept individuals and hall
 * of fame. *X (n x d doubles) and *y (labels) are malloc'd. -1 on OOM. */
static int64_t neighbourhood(const lore_search *a, double **X, int **y)
{
    int d = a->d;
    int64_t max = 1;
    for (int k = 0; k < 2; k++)
        max += a->pop[k].g.P + a->pop[k].g.n_hof;
    double *sorted = malloc(sizeof(double) * (size_t)(a->pop[0].g.P + 1));
    *X = malloc(sizeof(double) * (size_t)(max * d));
    *y = malloc(sizeof(int) * (size_t)max);
    if (!sorted || !*X || !*y) {
        free(sorted);
        return -1;
    }
    int64_t n = 0;
    for (int j = 0; j < d; j++)
        (*X)[j] = 1;
    (*y)[n++] = a->target; /* x: the label it is explained for */
    for (int k = 0; k < 2; k++) {
        const sm_genetic_pop *q = &a->pop[k].g;
        double thr = sm_genetic_keep_above(q, sorted);
        for (int h = 0; h < 2; h++) {
            int count = h ? q->n_hof : q->P;
            for (int i = 0; i < count; i++) {
                const uint8_t *z = (h ? q->hof : q->ind) + (size_t)i * d;
                if (!((h ? q->hof_fit : q->fit)[i] > thr))
                    continue;
                for (int j = 0; j < d; j++)
                    (*X)[n * d + j] = z[j];
                (*y)[n++] = (h ? q->hof_lab : q->lab)[i];
            }
        }
    }
    free(sorted);
    return n;
}

/* A premise list of rule r as JSON into t: [{"superpixel": f, "shown":
 * true}, ...] (binary features: the tree splits at 0.5). */
static int premises_json(const sm_tree_rule *r, sm_text *t)
{
    int rc = sm_text_addf(t, "[");
    for (int k = 0; k < r->n_cond && rc == 0; k++)
        rc = sm_text_addf(t, "%s{\"superpixel\": %d, \"shown\": %s}",
                          k ? ", " : "", r->cond[k].feature,
                          r->cond[k].lo > -INFINITY ? "true" : "false");
    return rc || sm_text_addf(t, "]");
}

/* x (all on) with counterfactual r applied: each premise's superpixel
 * shown or hidden as it says. */
static void apply_rule(const sm_tree_rule *r, int d, uint8_t *z)
{
    memset(z, 1, (size_t)d);
    for (int k = 0; k < r->n_cond; k++)
        z[r->cond[k].feature] = r->cond[k].lo > -INFINITY;
}

static int lore_finish(void *search, const sm_explain_ctx *ctx,
                       sm_explain_out *out, sm_err *err)
{
    lore_search *a = search;
    const lore_params *p = a->p;
    int d = a->d, rc = -1, n_cf = 0, classes = 0;
    double *X = NULL, *imp = NULL, *v = NULL, *lab = NULL;
    int *y = NULL, *cls = NULL;
    uint8_t *Zc = NULL;
    sm_tree *tree = NULL;
    sm_tree_rule rule = {0}, *cf = NULL;
    sm_text t = {0};
    int64_t n = neighbourhood(a, &X, &y);
    if (n < 0 || !(cls = malloc(sizeof(int) * (size_t)n))) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    sm_tree_dense_labels(y, n, cls, &classes); /* y[i] now indexes cls */
    sm_tree_params tp = {p->max_depth, p->min_samples_split,
                         p->min_samples_leaf, 1};
    if (!(tree = sm_tree_fit(X, (int)n, d, y, classes, NULL, &tp, err)) ||
        sm_tree_rule_of(tree, X, &rule, err) ||
        sm_tree_counterfactuals(tree, X, &cf, &n_cf, err))
        goto done;
    rule.label = cls[rule.label]; /* the tree's classes back to labels */
    for (int k = 0; k < n_cf; k++)
        cf[k].label = cls[cf[k].label];
    imp = malloc(sizeof(double) * (size_t)d);
    v = calloc((size_t)d, sizeof(double));
    lab = malloc(sizeof(double) * (size_t)(n_cf + 1));
    Zc = malloc((size_t)(n_cf + 1) * (size_t)d);
    if (!imp || !v || !lab || !Zc) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    /* every counterfactual applied to x and labelled, in one model call */
    for (int k = 0; k < n_cf; k++)
        apply_rule(&cf[k], d, Zc + (size_t)(k + 1) * d);
    if (n_cf && sm_superpixel_labels(ctx, a->s, Zc + d, n_cf,
                                     p->sp.internal_batch, lab, err))
        goto done;
    long agree = 0;
    for (int64_t i = 0; i < n; i++)
        agree += sm_tree_predict(tree, X + i * d) == y[i];
    sm_tree_importances(tree, imp);
    for (int k = 0; k < rule.n_cond; k++) {
        int f = rule.cond[k].feature;
        v[f] = rule.cond[k].lo > -INFINITY ? imp[f] : -imp[f];
    }
    sm_superpixel_paint(a->s, v, out->map);
    out->evals = n_cf; /* adaptive.c adds the rows and x's score */
    sm_record *rec = &out->record; /* explainer.c checks it */
    if (premises_json(&rule, &t))
        rec->failed = 1;
    sm_record_addf(rec, "rule", "{\"premises\": %s, \"label\": %d}",
                   t.s ? t.s : "[]", rule.label);
    sm_record_addf(rec, "rule_length", "%d", rule.n_cond);
    sm_record_addf(rec, "fidelity", "%.9g", (double)agree / (double)n);
    /* per class, the counterfactual of fewest falsified premises that the
     * model confirms: applied to x, it changes the label */
    sm_text_free(&t);
    int rc2 = sm_text_addf(&t, "[");
    int shown = 0, rejected = 0;
    float *masks = malloc(sizeof(float) * (size_t)(n_cf ? n_cf : 1) *
                          (size_t)d);
    int *model = malloc(sizeof(int) * (size_t)(n_cf + 1));
    uint8_t *keep = malloc((size_t)(n_cf + 1));
    if (!masks || !model || !keep)
        rc2 = -1;
    for (int k = 0; k < n_cf && rc2 == 0; k++)
        model[k] = (int)lab[k];
    if (rc2 == 0)
        rejected = sm_tree_counterfactuals_kept(cf, n_cf, model, a->target,
                                                keep);
    for (int k = 0; k < n_cf && rc2 == 0; k++) {
        if (!keep[k])
            continue;
        rc2 = sm_text_addf(&t, "%s{\"label\": %d, \"model_label\": %d, "
                           "\"cost\": %d, \"premises\": ", shown ? ", " : "",
                           cf[k].label, (int)lab[k], cf[k].cost) ||
              premises_json(&cf[k], &t) || sm_text_addf(&t, "}");
        for (int j = 0; j < d; j++)
            masks[shown * d + j] = Zc[(size_t)(k + 1) * d + j];
        shown++;
    }
    free(model);
    free(keep);
    if (rc2 || sm_text_addf(&t, "]"))
        rec->failed = 1;
    sm_record_addf(rec, "counterfactuals", "%s", t.s ? t.s : "[]");
    sm_record_addf(rec, "counterfactuals_rejected", "%d", rejected);
    if (shown)
        sm_record_array_add(rec, "counterfactuals", 2, (int64_t[]){shown, d},
                            masks);
    free(masks);
    sm_record_addf(rec, "neighbourhood", "%lld", (long long)n);
    sm_record_addf(rec, "draws", "%lld", (long long)a->draws);
    long same = 0;
    for (int64_t i = 0; i < n; i++)
        same += cls[y[i]] == a->target;
    sm_record_addf(rec, "neighbourhood_same", "%ld", same);
    sm_record_addf(rec, "tree_nodes", "%d", tree->n_nodes);
    sm_record_nums(rec, "importance", imp, (size_t)d);
    rc = 0;
done:
    sm_text_free(&t);
    sm_tree_rule_free(&rule);
    sm_tree_rules_free(cf, n_cf);
    sm_tree_destroy(&tree);
    free(X);
    free(y);
    free(cls);
    free(imp);
    free(v);
    free(lab);
    free(Zc);
    return rc;
}

static const sm_adaptive_method lore_method = {
    &sm_adaptive_superpixels, lore_start, lore_ask, lore_tell, lore_finish,
    lore_free};
SM_ADAPTIVE_OPS(lore, lore_method)

#define P(f) offsetof(lore_params, f)
static const sm_param_def lore_params_def[] = {
    SM_SUPERPIXEL_PARAM_DEFS(lore_params),
    {"samples", SM_PARAM_INT, P(samples), "1000", 2, 10000000, NULL,
     "population of the two genetic runs together"},
    SM_GENETIC_PARAM_DEFS(lore_params),
    {"max_depth", SM_PARAM_INT, P(max_depth), "0", 0, 1000, NULL,
     "tree depth at most (0: unlimited)"},
    {"min_samples_split", SM_PARAM_INT, P(min_samples_split), "2", 2,
     100000000, NULL, "samples a node needs to be split"},
    {"min_samples_leaf", SM_PARAM_INT, P(min_samples_leaf), "1", 1,
     100000000, NULL, "samples each leaf keeps at least"},
    {NULL},
};
#undef P

const sm_explainer_class sm_explainer_lore = {
    .name = "lore",
    .summary = "LORE: a decision tree on a genetic neighbourhood of "
               "superpixel masks; x's rule and counterfactual rules",
    .backward = 0,
    .params = lore_params_def,
    .params_size = sizeof(lore_params),
    .check = NULL,
    SM_ADAPTIVE_CLASS_OPS(lore),
};
