/* What a worker computes (task.h): targets, maps and metrics in memory.
 * job.c's direct loop calls the same functions, so the pipeline and the
 * loop give the same bits. */
#include "explain/task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "explain/gradient.h"
#include "metrics/deletion.h"
#include "metrics/metrics.h"
#include "util/clock.h"

/* Images per model run of the deletion and insertion curves and of the
 * faithfulness subsets; images per explainer run of max-sensitivity. */
#define METRICS_BATCH 64

static sm_explain_ctx ctx_of(const sm_explain_setup *s)
{
    sm_explain_ctx ctx = {s->model, s->out_idx, s->output_probs,
                          s->score_prob, s->seed, s->aux, s->n_aux,
                          s->preproc};
    return ctx;
}

/* res as sm_explain_targets leaves an image: nothing but its map buffer
 * (the caller's array may be uninitialised: nothing to free yet). */
static void result_reset(sm_explain_result *r)
{
    float *map = r->map;
    memset(r, 0, sizeof *r);
    r->map = map;
}

void sm_explain_results_free(sm_explain_result *res, int64_t n)
{
    for (int64_t r = 0; r < n; r++)
        sm_record_free(&res[r].record);
}

int sm_explain_targets(const sm_explain_setup *s, const sm_tensor *x,
                       const int *labels, const char *const *ids,
                       sm_explain_result *res, sm_err *err)
{
    int64_t n = x->shape[0];
    if (n < 1)
        return 0;
    const sm_tensor *in[1] = {x}, *outs[64];
    if (sm_model_n_outputs(s->model) > 64)
        return sm_err_set(err, "too many model outputs");
    if (sm_model_infer(s->model, in, 1, outs, err))
        return -1;
    const sm_tensor *y = outs[s->out_idx];
    int64_t k = y->shape[y->ndim - 1];
    for (int64_t r = 0; r < n; r++) {
        int best = (int)sm_model_argmax_row(y->data + r * k, k);
        int t = best;
        if (s->target == SM_TARGET_INDEX)
            t = s->target_index;
        else if (s->target == SM_TARGET_LABEL)
            t = labels ? labels[r] : -1;
        result_reset(&res[r]);
        if (t < 0 || t >= k) {
            res[r].failed = 1;
            if (s->target == SM_TARGET_INDEX)
                snprintf(res[r].error, sizeof res[r].error,
                         "%s: target class %d is not one of the model's %lld "
                         "classes", ids[r], t, (long long)k);
            else
                snprintf(res[r].error, sizeof res[r].error,
                         "%s: its label is not one of the model's classes",
                         ids[r]);
            continue;
        }
        res[r].predicted = best;
        res[r].target = t;
    }
    return 0;
}

/* max-sensitivity's explainer: the map's own method, settings, target
 * and id (so its own draws) on perturbed copies of the image */
typedef struct again {
    sm_explainer *e;
    sm_explain_ctx ctx;
    int target;
    const char *id;
    int64_t hw;
} again;

static int explain_again(void *arg, const sm_tensor *x, float *maps,
                         sm_err *err)
{
    const again *a = arg;
    int64_t n = x->shape[0];
    int *target = malloc(sizeof(int) * (size_t)n);
    const char **ids = malloc(sizeof(char *) * (size_t)n);
    sm_explain_out *out = calloc((size_t)n, sizeof *out);
    int rc = -1;
    if (!target || !ids || !out) {
        sm_err_set(err, "sensitivity: out of memory");
    } else {
        for (int64_t k = 0; k < n; k++) {
            target[k] = a->target;
            ids[k] = a->id;
            out[k].map = maps + k * a->hw;
        }
        sm_explain_batch b = {x, target, ids};
        rc = sm_explainer_run(a->e, &a->ctx, &b, out, err);
        sm_explain_out_free(out, n);
    }
    free(target);
    free(ids);
    free(out);
    return rc;
}

/* What a method left in o, into r (o's record moved), and when s->metrics
 * the metrics of r's map on image x (C x H x W, called id, explained by e):
 * the single place they are computed, for the direct loop and the
 * pipeline alike. 0 or -1. */
static int finish(const sm_explain_setup *s, sm_explainer *e, const char *id,
                  const float *x, int64_t c, int64_t h, int64_t w,
                  sm_explain_out *o, sm_explain_result *r, sm_err *err)
{
    r->score = o->score;
    r->evals = o->evals;
    sm_record_move(&r->record, &o->record);
    r->has_metrics = 0;
    if (!s->metrics || !o->map) /* a method without a map: no metrics */
        return 0;
    sm_explain_ctx ctx = ctx_of(s);
    sm_model_scoring sc = sm_explain_scoring(&ctx);
    sm_deletion_result dr;
    long evals;
    again a = {e, ctx, r->target, id, h * w};
    if (sm_deletion_insertion(&sc, x, c, h, w, r->map, r->predicted, 0,
                              METRICS_BATCH, &dr, err) ||
        sm_metric_sparseness(r->map, h * w, &r->sparseness, err) ||
        sm_metric_faithfulness(&sc, x, c, h, w, r->map, r->predicted,
                               &s->metric, s->seed, id, METRICS_BATCH,
                               &r->faithfulness, &evals, err) ||
        sm_metric_sensitivity(x, c, h, w, r->map, &s->metric, s->seed, id,
                              METRICS_BATCH, explain_again, &a,
                              &r->sensitivity, err))
        return -1;
    r->complexity = sm_metric_complexity(r->map, h * w);
    r->has_metrics = 1;
    r->deletion_auc = dr.deletion_auc;
    r->insertion_auc = dr.insertion_auc;
    return 0;
}

int sm_explain_images(const sm_explain_setup *s, sm_explainer *e,
                      const sm_tensor *x, const char *const *ids,
                      sm_explain_result *res, sm_err *err)
{
    int64_t n = x->shape[0], c = x->shape[1], h = x->shape[2],
            w = x->shape[3], per = c * h * w, kept = 0;
    for (int64_t r = 0; r < n; r++)
        kept += !res[r].failed;
    if (!kept)
        return 0;
    /* The explained batch holds the images not failed, in order: a copy
     * only when some failed. */
    sm_tensor *xk = kept < n ? sm_tensor_new(4, (int64_t[]){kept, c, h, w})
                             : NULL;
    int64_t *slot = malloc(sizeof(int64_t) * (size_t)kept);
    int *target = malloc(sizeof(int) * (size_t)kept);
    const char **kid = malloc(sizeof(char *) * (size_t)kept);
    sm_explain_out *out = calloc((size_t)kept, sizeof *out);
    int rc = -1;
    if ((kept < n && !xk) || !slot || !target || !kid || !out) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    for (int64_t r = 0, q = 0; r < n; r++) {
        if (res[r].failed)
            continue;
        if (xk)
            memcpy(xk->data + q * per, x->data + r * per,
                   sizeof(float) * (size_t)per);
        slot[q] = r;
        target[q] = res[r].target;
        kid[q] = ids[r];
        out[q].map = sm_explainer_class_of(e)->no_map ? NULL : res[r].map;
        q++;
    }
    const sm_tensor *xe = xk ? xk : x;
    sm_explain_ctx ctx = ctx_of(s);
    sm_explain_batch b = {xe, target, kid};
    double t0 = sm_clock_now();
    if (sm_explainer_run(e, &ctx, &b, out, err))
        goto done;
    /* The batch's time, shared evenly: methods work on whole batches. */
    double seconds = (sm_clock_now() - t0) / (double)kept;
    for (int64_t q = 0; q < kept; q++) {
        sm_explain_result *r = &res[slot[q]];
        r->seconds = seconds;
        if (finish(s, e, kid[q], xe->data + q * per, c, h, w, &out[q], r,
                   err))
            goto done;
    }
    rc = 0;
done:
    if (out)
        sm_explain_out_free(out, kept);
    sm_tensor_destroy(&xk);
    free(slot);
    free(target);
    free(kid);
    free(out);
    return rc;
}

sm_explain_rounds *sm_explain_rounds_open(const sm_explain_setup *s,
                                          sm_explainer *e, const sm_tensor *x,
                                          const char *id, int target,
                                          const uint8_t *state, size_t len,
                                          sm_err *err)
{
    sm_explain_ctx ctx = ctx_of(s);
    sm_explain_image im = {x->data, x->shape[1], x->shape[2], x->shape[3],
                           target, id};
    return sm_explain_rounds_new(e, &ctx, &im, state, len, err);
}

int sm_explain_step(const sm_explain_setup *s, sm_explain_rounds *r,
                    const sm_tensor *x, const double *y, int64_t n,
                    sm_explain_result *res, sm_err *err)
{
    double t0 = sm_clock_now();
    if (sm_explain_rounds_update(r, y, n, err))
        return -1;
    if (sm_explain_rounds_n(r) > 0)
        return 1;
    int64_t c = x->shape[1], h = x->shape[2], w = x->shape[3];
    sm_explain_out o = {
        .map = sm_explain_rounds_class(r)->no_map ? NULL : res->map};
    int rc = sm_explain_rounds_finish(r, &o, err);
    if (rc == 0) {
        res->failed = 0;
        res->seconds = sm_clock_now() - t0;
        rc = finish(s, sm_explain_rounds_explainer(r),
                    sm_explain_rounds_image(r)->id, x->data, c, h, w, &o,
                    res, err);
    }
    sm_explain_out_free(&o, 1);
    return rc;
}
