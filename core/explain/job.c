/* The direct loop of `salmap explain` (job.h): batches of the dataset in
 * order, each loaded, its targets chosen and every method run on it
 * through the in-memory tasks of task.h, the results written through the
 * output folder of store.h. The pipeline's workers and broker call the
 * same two modules, so the two give the same maps; this loop stays as the
 * baseline the pipeline is measured against. */
#include "explain/job.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config_model.h"
#include "data/dataset.h"
#include "explain/explainer.h"
#include "explain/settings.h"
#include "explain/store.h"
#include "explain/task.h"
#include "io/jobinfo.h"
#include "util/clock.h"
#include "util/progress.h"

static void skipped(const sm_err *e, void *failed)
{
    fprintf(stderr, "salmap explain: skipped: %s\n", e->msg);
    ++*(size_t *)failed;
}

/* Everything a run holds; freed by state_free. */
typedef struct state {
    const sm_explain_job *job;
    sm_model *model;
    sm_model *aux_model[SM_EXPLAIN_MAX_AUX];
    sm_explain_aux aux[SM_EXPLAIN_MAX_AUX];
    sm_model_config *cfg;
    sm_dataset *ds;
    sm_explainer **ex;
    sm_explain_store *store;
    sm_explain_setup setup;
    int model_threads;
    sm_preproc pp;
    size_t count;
} state;

static void state_free(state *s)
{
    for (int i = 0; s->ex && i < s->job->n_methods; i++)
        sm_explainer_destroy(&s->ex[i]);
    free(s->ex);
    sm_explain_store_destroy(&s->store);
    sm_dataset_destroy(&s->ds);
    sm_model_config_destroy(&s->cfg);
    sm_model_destroy(&s->model);
    for (int i = 0; i < SM_EXPLAIN_MAX_AUX; i++)
        sm_model_destroy(&s->aux_model[i]);
}

static int setup(state *s, sm_err *err)
{
    const sm_explain_job *j = s->job;
    if (j->n_methods < 1)
        return sm_err_set(err, "no methods to run");
    if (sm_vips_init(NULL, err))
        return -1;
    if (!(s->model = sm_model_load_file(j->model, err)))
        return -1;
    s->cfg = j->config ? sm_model_config_load(j->config, err)
                       : sm_model_config_for_model(s->model, j->model, err);
    int out_idx;
    if (!s->cfg || sm_model_config_bind(s->cfg, s->model, j->model, &out_idx, err))
        return -1;
    sm_model_config_preproc(s->cfg, &s->pp);
    /* The engine splits batches over the cores; OpenBLAS stays on one
     * thread (docs/PERFORMANCE.md). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    openblas_set_num_threads(1);
    s->model_threads = cores > 0 ? (int)cores : 1;
    sm_model_set_threads(s->model, s->model_threads);
    if (j->n_aux > SM_EXPLAIN_MAX_AUX)
        return sm_err_set(err, "%d auxiliary models, more than %d", j->n_aux,
                          SM_EXPLAIN_MAX_AUX);
    for (int i = 0; i < j->n_aux; i++) {
        if (!(s->aux_model[i] = sm_model_load_file(j->aux_paths[i], err)))
            return sm_err_prefix(err, "auxiliary model '%s'", j->aux_names[i]);
        sm_model_set_threads(s->aux_model[i], s->model_threads);
        s->aux[i] = (sm_explain_aux){j->aux_names[i], s->aux_model[i]};
    }
    s->ex = calloc((size_t)j->n_methods, sizeof *s->ex);
    if (!s->ex)
        return sm_err_set(err, "out of memory");
    if (sm_settings_explainers(j->methods, (size_t)j->n_methods, j->settings,
                               (size_t)j->n_settings, s->ex, err))
        return -1;
    if (!(s->ds = sm_dataset_open(j->dataset, err)))
        return -1;
    s->count = sm_dataset_count(s->ds);
    if (j->limit && j->limit < s->count)
        s->count = j->limit;
    if (j->target == SM_TARGET_INDEX &&
        (j->target_index < 0 || (s->cfg->n_classes && j->target_index >= s->cfg->n_classes)))
        return sm_err_set(err, "target class %d is not one of the model's "
                          "classes", j->target_index);
    s->setup = (sm_explain_setup){
        .model = s->model,
        .out_idx = out_idx,
        .output_probs = s->cfg->output_kind == SM_OUTPUT_PROBABILITIES,
        .seed = j->seed,
        .target = j->target,
        .target_index = j->target_index,
        .score_prob = j->score_prob,
        .metrics = j->metrics,
        .metric = j->metric,
        .aux = s->aux,
        .n_aux = j->n_aux,
        .preproc = &s->pp,
    };
    /* the first thing written: a bad job leaves nothing behind */
    return (s->store = sm_explain_store_open(j->out, err)) ? 0 : -1;
}

/* OUT/job.json (io/jobinfo.h) at the start (finished 0) and the end;
 * a failure is reported, not fatal: the maps matter more. */
static void write_jobinfo(state *s, double started, double finished,
                          const sm_explain_stats *st, const char *state_name)
{
    const sm_explain_job *j = s->job;
    sm_jobinfo_method *m = calloc((size_t)j->n_methods, sizeof *m);
    char threads[64], target[32];
    const char *workers[1] = {threads};
    sm_err err;
    if (!m) {
        fprintf(stderr, "salmap explain: %s/job.json: out of memory\n", j->out);
        return;
    }
    sm_explainers_describe(s->ex, j->n_methods, m);
    snprintf(threads, sizeof threads, "this process (%d threads)",
             s->model_threads);
    snprintf(target, sizeof target, "%d", j->target_index);
    sm_jobinfo ji = {
        .model = j->model, .config = j->config, .dataset = j->dataset,
        .channels = s->pp.channels, .height = s->pp.height,
        .width = s->pp.width, .methods = m, .n_methods = j->n_methods,
        .seed = j->seed, .limit = j->limit,
        .target = j->target == SM_TARGET_INDEX ? target
                  : j->target == SM_TARGET_LABEL ? "label" : "predicted",
        .score = j->score_prob ? "prob" : "logit", .metrics = j->metrics,
        .images = s->count, .started = started, .finished = finished,
        .workers = workers, .n_workers = 1,
        .maps = st->maps_written + st->maps_skipped,
        .failed = st->images_failed * (uint64_t)j->n_methods,
        .state = state_name};
    if (sm_jobinfo_write(j->out, &ji, &err))
        fprintf(stderr, "salmap explain: %s\n", err.msg);
    free(m);
}

/* A map whose row the batch's commit could not write: not written. */
static void map_lost(void *u, const char *id, const char *method, const sm_err *why)
{
    (void)id, (void)method, (void)why;
    ((sm_explain_stats *)u)->maps_written--;
}

/* Explains the images of x (res from sm_explain_targets; rows of failed
 * images are skipped) with method m and writes the maps not already
 * complete. The whole batch is explained even when some of it is done, so
 * a resumed run explains exactly the batches of an uninterrupted one
 * (only a batch that an interrupted run left half-written is explained
 * twice). */
static int run_method(state *s, int m, const sm_tensor *x, const size_t *idx,
                      const char *const *ids, sm_explain_result *res,
                      sm_explain_stats *st, sm_err *err)
{
    const char *method = s->job->methods[m];
    size_t n = (size_t)x->shape[0], kept = 0, k = 0;
    unsigned char *todo = malloc(n ? n : 1);
    if (!todo)
        return sm_err_set(err, "out of memory");
    for (size_t r = 0; r < n; r++) {
        kept += !res[r].failed;
        todo[r] = !res[r].failed && !sm_explain_store_done(s->store, ids[r],
                                                           method);
        k += todo[r];
    }
    st->maps_skipped += kept - k;
    int rc = 0;
    if (k)
        rc = sm_explain_images(&s->setup, s->ex[m], x, ids, res, err);
    const char *params = sm_explainer_params_json(s->ex[m]);
    if (rc == 0 && !params)
        rc = sm_err_set(err, "out of memory");
    /* the batch's maps made durable together (store.h) */
    sm_explain_store_begin(s->store);
    for (size_t r = 0; k && rc == 0 && r < n; r++) {
        if (!todo[r])
            continue;
        char pb[32], tb[32];
        rc = sm_explain_store_put(
            s->store, ids[r], sm_dataset_label_name(s->ds, idx[r]),
            sm_class_name(s->cfg, s->ds, res[r].predicted, pb, sizeof pb),
            sm_class_name(s->cfg, s->ds, res[r].target, tb, sizeof tb),
            method, params, &res[r], s->pp.height, s->pp.width, err);
        st->maps_written += rc == 0;
    }
    sm_err cerr;
    if (sm_explain_store_commit(s->store, map_lost, st, &cerr) && rc == 0) {
        *err = cerr;
        rc = -1;
    }
    sm_explain_results_free(res, (int64_t)n);
    free(todo);
    return rc;
}

static void progress(const state *s, size_t done_n, double t0, int final)
{
    double dt = sm_clock_now() - t0;
    sm_progress_show("salmap explain", "images", done_n, s->count,
                     dt > 0 ? (double)done_n / dt : 0, final, s->job->progress);
}

/* index.csv from every complete row, in dataset then method order. */
static int write_index(const state *s, sm_err *err)
{
    const char **ids = malloc(sizeof(char *) * (s->count ? s->count : 1));
    if (!ids)
        return sm_err_set(err, "out of memory");
    for (size_t i = 0; i < s->count; i++)
        ids[i] = sm_dataset_id(s->ds, i);
    int rc = sm_explain_store_index(s->store, ids, s->count,
                                    s->job->methods, s->job->n_methods, err);
    free(ids);
    return rc;
}

/* The per-batch buffers: bsz images, their dataset indices, ids, labels,
 * results and maps. */
typedef struct batch {
    sm_tensor *x;
    size_t *idx;
    const char **ids;
    int *labels;
    sm_explain_result *res;
    float *maps;
} batch;

static void batch_free(batch *b)
{
    sm_tensor_destroy(&b->x);
    free(b->idx);
    free(b->ids);
    free(b->labels);
    free(b->res);
    free(b->maps);
}

static int batch_new(const state *s, size_t bsz, batch *b, sm_err *err)
{
    const sm_preproc *pp = &s->pp;
    size_t hw = (size_t)pp->height * (size_t)pp->width;
    b->x = sm_tensor_new(4, (int64_t[]){(int64_t)bsz, pp->channels,
                                        pp->height, pp->width});
    b->idx = malloc(sizeof(size_t) * bsz);
    b->ids = malloc(sizeof(char *) * bsz);
    b->labels = malloc(sizeof(int) * bsz);
    b->res = calloc(bsz, sizeof *b->res);
    b->maps = malloc(sizeof(float) * hw * bsz);
    if (!b->x || !b->idx || !b->ids || !b->labels || !b->res || !b->maps)
        return sm_err_set(err, "out of memory");
    for (size_t r = 0; r < bsz; r++)
        b->res[r].map = b->maps + r * hw;
    return 0;
}

/* Images [i0, i1): loaded (those that fail are reported and counted),
 * their targets chosen, then each method run. 0 or -1. */
static int run_batch(state *s, batch *b, size_t i0, size_t i1,
                     sm_explain_stats *st, sm_err *err)
{
    const sm_explain_job *job = s->job;
    size_t n = sm_dataset_load_range(s->ds, i0, i1, &s->pp, b->x->data,
                                     s->model_threads, b->idx, skipped,
                                     &st->images_failed);
    if (!n)
        return 0;
    sm_tensor view = sm_tensor_rows(b->x, 0, (int64_t)n);
    for (size_t r = 0; r < n; r++) {
        b->ids[r] = sm_dataset_id(s->ds, b->idx[r]);
        b->labels[r] = sm_class_index(s->cfg, s->ds,
                                      sm_dataset_label_name(s->ds, b->idx[r]));
    }
    if (sm_explain_targets(&s->setup, &view, b->labels, b->ids, b->res, err))
        return -1;
    for (size_t r = 0; r < n; r++)
        if (b->res[r].failed) {
            fprintf(stderr, "salmap explain: skipped %s\n", b->res[r].error);
            st->images_failed++;
        }
    for (int m = 0; m < job->n_methods; m++)
        if (run_method(s, m, &view, b->idx, b->ids, b->res, st, err))
            return -1;
    return 0;
}

int sm_explain_job_run(const sm_explain_job *job, sm_explain_stats *st,
                       sm_err *err)
{
    state s = {.job = job};
    memset(st, 0, sizeof *st);
    double t0 = sm_clock_now();
    if (setup(&s, err)) {
        state_free(&s);
        return -1;
    }
    double started = (double)time(NULL);
    write_jobinfo(&s, started, 0, st, "running");
    const size_t bsz = job->batch > 0 ? (size_t)job->batch : 64;
    batch b = {0};
    int rc = batch_new(&s, bsz, &b, err);
    for (size_t i0 = 0; i0 < s.count && rc == 0; i0 += bsz) {
        size_t i1 = i0 + bsz < s.count ? i0 + bsz : s.count;
        int all_done = 1;
        for (size_t i = i0; i < i1 && all_done; i++)
            for (int m = 0; m < job->n_methods && all_done; m++)
                all_done = sm_explain_store_done(s.store, sm_dataset_id(s.ds, i),
                                                 job->methods[m]);
        st->images += i1 - i0;
        if (all_done) { /* a batch finished before: nothing to redo */
            st->maps_skipped += (i1 - i0) * (size_t)job->n_methods;
            continue;
        }
        rc = run_batch(&s, &b, i0, i1, st, err);
        if (rc == 0)
            progress(&s, i1, t0, i1 == s.count);
    }
    /* The index covers whatever is complete, even after an error. */
    sm_err ierr = {0};
    if (write_index(&s, rc ? &ierr : err) && rc == 0)
        rc = -1;
    st->seconds = sm_clock_now() - t0;
    write_jobinfo(&s, started, (double)time(NULL), st, rc ? "failed" : "done");
    batch_free(&b);
    state_free(&s);
    return rc;
}
