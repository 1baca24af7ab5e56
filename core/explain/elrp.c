/* ELRP, layer-wise relevance propagation (Bach 2015) with the epsilon rule
 * or a composite of rules (ALGORITHMS.md). The target logit f_c(x) is the
 * relevance at the output; the engine's relevance pass (sm_model_relevance)
 * carries it back to the input in one sweep for the whole batch; the map is
 * the input relevance summed over channels. BatchNormalization after a Conv
 * was folded into it at load. One forward and one relevance pass a batch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/gradient.h"

typedef struct elrp_params {
    double epsilon;
    char composite[SM_PARAM_STR];
} elrp_params;

/* Composites by name: the rule of the first weighted layer, of the other
 * convolutions and of the dense layers (Zennit's names and choices). */
static const struct {
    const char *name;
    sm_lrp_rule first, conv, dense;
} composites[] = {
    {"epsilon", SM_LRP_EPSILON, SM_LRP_EPSILON, SM_LRP_EPSILON},
    {"epsilon_plus_flat", SM_LRP_FLAT, SM_LRP_ZPLUS, SM_LRP_EPSILON},
    {"alpha2beta1", SM_LRP_ALPHA_BETA, SM_LRP_ALPHA_BETA, SM_LRP_ALPHA_BETA},
    {"zplus", SM_LRP_ZPLUS, SM_LRP_ZPLUS, SM_LRP_ZPLUS},
};

static const char *const composite_names[] = {
    "epsilon", "epsilon_plus_flat", "alpha2beta1", "zplus", NULL};

/* The denominators' stabilizer of the z+, alpha-beta and flat rules
 * (Zennit's default); epsilon is the epsilon rule's own. */
#define STABILIZER 1e-6

static void rules_of(const elrp_params *p, sm_model_lrp_rules *r)
{
    memset(r, 0, sizeof *r);
    r->epsilon = p->epsilon;
    r->stabilizer = STABILIZER;
    r->alpha = 2.0;
    r->beta = 1.0;
    for (size_t i = 0; i < sizeof composites / sizeof composites[0]; i++)
        if (strcmp(composites[i].name, p->composite) == 0) {
            r->first = composites[i].first;
            r->conv = composites[i].conv;
            r->dense = composites[i].dense;
        }
}

static int elrp_run(const void *params, const sm_explain_ctx *ctx,
                    const sm_explain_batch *b, sm_explain_out *out,
                    sm_err *err)
{
    const elrp_params *p = params;
    const sm_tensor *x = b->x;
    int64_t n = x->shape[0], c = x->shape[1], hw = x->shape[2] * x->shape[3];
    sm_model *m = ctx->model;
    double *score = malloc(sizeof(double) * (size_t)n);
    double *logit = malloc(sizeof(double) * (size_t)n);
    sm_tensor *seed = NULL;
    int rc = -1;
    if (!score || !logit) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    /* Relevance starts from the logit; a probability score, when asked
     * for, is what gets reported (one more forward run). */
    sm_explain_ctx lc = *ctx;
    lc.score_prob = 0;
    if (ctx->score_prob && !ctx->output_probs &&
        sm_explain_scores(ctx, x, b->target, score, err))
        goto done;
    if (sm_explain_scores(&lc, x, b->target, logit, err))
        goto done;
    const sm_tensor *y = sm_model_activation(
        m, sm_model_output_name(m, ctx->output), err);
    if (!y || !(seed = sm_tensor_new(2, y->shape))) {
        if (y)
            sm_err_set(err, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        seed->data[i * y->shape[1] + b->target[i]] = (float)logit[i];
    sm_model_lrp_rules rules;
    rules_of(p, &rules);
    const sm_tensor *rel[8];
    if (sm_model_n_inputs(m) > 8) {
        sm_err_set(err, "too many model inputs");
        goto done;
    }
    if (sm_model_relevance(m, ctx->output, seed, &rules, rel, err))
        goto done;
    for (int64_t i = 0; i < n; i++) {
        const float *r = rel[0]->data + i * c * hw;
        double sum = 0;
        for (int64_t q = 0; q < c * hw; q++)
            sum += r[q];
        sm_explain_reduce(r, c, hw, SM_REDUCE_SUM, out[i].map);
        out[i].score = ctx->score_prob && !ctx->output_probs ? score[i]
                                                             : logit[i];
        out[i].evals = ctx->score_prob && !ctx->output_probs ? 2 : 1;
        /* Conservation: with zero biases (and epsilon -> 0) the input's
         * relevance adds up to the logit. */
        char ratio[32] = "null"; /* JSON has no NaN */
        if (logit[i] != 0)
            snprintf(ratio, sizeof ratio, "%.9g", sum / logit[i]);
        sm_record *rec = &out[i].record; /* explainer.c checks it */
        sm_record_str(rec, "composite", p->composite);
        sm_record_addf(rec, "relevance_sum", "%.9g", sum);
        sm_record_addf(rec, "logit", "%.9g", logit[i]);
        sm_record_addf(rec, "conservation", "%s", ratio);
    }
    rc = 0;
done:
    sm_tensor_destroy(&seed);
    free(score);
    free(logit);
    return rc;
}

static const sm_param_def elrp_params_def[] = {
    {"epsilon", SM_PARAM_FLOAT, offsetof(elrp_params, epsilon), "1e-6", 0, 1e6,
     NULL, "epsilon rule stabilizer: z + epsilon sign(z)"},
    {"composite", SM_PARAM_STRING, offsetof(elrp_params, composite), "epsilon",
     0, 0, composite_names,
     "rules per layer: epsilon everywhere, epsilon_plus_flat (flat first "
     "layer, z+ convs, epsilon dense), alpha2beta1, zplus"},
    {NULL},
};

const sm_explainer_class sm_explainer_elrp = {
    .name = "elrp",
    .signed_map = sm_explain_signed,
    .summary = "layer-wise relevance propagation: epsilon rule or a composite",
    .backward = 1, /* a relevance pass costs what a backward pass does */
    .params = elrp_params_def,
    .params_size = sizeof(elrp_params),
    .run = elrp_run,
};
