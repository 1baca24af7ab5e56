#include "worker/compute.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config_model.h"
#include "data/image.h"
#include "explain/settings.h"
#include "explain/task.h"
#include "model/model.h"
#include "util/clock.h"

typedef struct cached {
    char hash[SM_HASH_HEX + 1];
    sm_model *model;
    uint64_t used;
} cached;

#define MAX_CLASSES 8

struct sm_compute {
    const sm_explainer_class *classes[MAX_CLASSES]; /* beside the registry */
    int n_classes;
    int threads;
    int n_cache;
    cached *cache;
    uint64_t clock;
    sm_msg_limits limits;
    char crash_on[256];  /* test hook: "" = none */
};

void sm_compute_set_crash_on(sm_compute *c, const char *id)
{
    snprintf(c->crash_on, sizeof c->crash_on, "%s", id ? id : "");
}

sm_compute *sm_compute_new(int threads, int cache, const sm_msg_limits *l,
                           sm_err *err)
{
    const int n_cache = cache > 0 ? cache : 1;
    sm_compute *c = calloc(1, sizeof *c);
    if (!c || !(c->cache = calloc((size_t)n_cache, sizeof *c->cache))) {
        free(c);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    c->threads = threads > 0 ? threads : 1;
    c->n_cache = n_cache;
    c->limits = *l;
    return c;
}

void sm_compute_destroy(sm_compute **cp)
{
    sm_compute *c = *cp;
    if (!c)
        return;
    for (int k = 0; k < c->n_cache; k++)
        sm_model_destroy(&c->cache[k].model);
    free(c->cache);
    free(c);
    *cp = NULL;
}

int sm_compute_add_class(sm_compute *c, const sm_explainer_class *cls)
{
    if (c->n_classes == MAX_CLASSES)
        return -1;
    c->classes[c->n_classes++] = cls;
    return 0;
}

/* Task t's method with its settings: one c was taught, else the
 * registry's. NULL with a message. */
static sm_explainer *explainer_for(const sm_compute *c, const sm_msg_task *t,
                                   sm_err *err)
{
    for (int k = 0; k < c->n_classes; k++)
        if (strcmp(c->classes[k]->name, t->method) == 0) {
            sm_explainer *e = sm_explainer_new_class(c->classes[k], err);
            if (e && sm_settings_apply(e, t->settings, t->n_settings, err))
                sm_explainer_destroy(&e);
            return e;
        }
    return sm_settings_explainer(t->method, t->settings, t->n_settings, err);
}

/* The model of hash: from the cache, or loaded from bytes, which the
 * caller checked hash to it (evicting the least recently used); NULL
 * without bytes (need it) or on error (err). */
static sm_model *model_for(sm_compute *c, const char *hash, const void *bytes,
                           size_t len, sm_err *err)
{
    cached *slot = &c->cache[0];
    for (int k = 0; k < c->n_cache; k++) {
        if (c->cache[k].model && !strcmp(c->cache[k].hash, hash)) {
            c->cache[k].used = ++c->clock;
            return c->cache[k].model;
        }
        if (!c->cache[k].model || c->cache[k].used < slot->used)
            slot = &c->cache[k];
    }
    if (!bytes)
        return NULL;
    char origin[96];
    snprintf(origin, sizeof origin, "model %.16s", hash);
    sm_model *m = sm_model_load_buffer(bytes, len, origin, err);
    if (!m)
        return NULL;
    sm_model_set_threads(m, c->threads);
    sm_model_destroy(&slot->model);
    slot->model = m;
    snprintf(slot->hash, sizeof slot->hash, "%s", hash);
    slot->used = ++c->clock;
    return m;
}

/* The task's target rule into s. */
static int parse_target(const char *target, const char *score,
                        sm_explain_setup *s, sm_err *err)
{
    if (!target || !strcmp(target, "predicted")) {
        s->target = SM_TARGET_PREDICTED;
    } else if (!strcmp(target, "label")) {
        s->target = SM_TARGET_LABEL;
    } else {
        char *end;
        long v = strtol(target, &end, 10);
        if (!*target || *end || v < 0 || v > 1000000)
            return sm_err_set(err, "target '%s': predicted, label or a class "
                              "index", target);
        s->target = SM_TARGET_INDEX;
        s->target_index = (int)v;
    }
    if (score && strcmp(score, "logit") && strcmp(score, "prob"))
        return sm_err_set(err, "score '%s': logit or prob", score);
    s->score_prob = score && !strcmp(score, "prob");
    return 0;
}

/* Decodes image im into dst by pp. */
static int decode_image(const sm_msg_image *im, const sm_preproc *pp,
                        float *dst, sm_err *err)
{
    if (im->format == SM_IMAGE_U8)
        return sm_image_load_u8(im->data, im->width, im->height, im->bands,
                                im->id, pp, dst, err);
    return sm_image_load_buffer(im->data, im->len, im->id, pp, dst, err);
}

/* The images of a task decoded on several threads: image r into row r
 * of x, its failure into res[r]. */
typedef struct decoding {
    const sm_msg_task *t;
    const sm_preproc *pp;
    float *x;
    int64_t per;
    sm_explain_result *res;
    int threads;
} decoding;

typedef struct decode_arg {
    const decoding *d;
    int first;
} decode_arg;

static void *decode_stride(void *arg)
{
    const decode_arg *a = arg;
    const decoding *d = a->d;
    for (size_t r = (size_t)a->first; r < d->t->n_images; r += (size_t)d->threads) {
        sm_err ierr;
        if (decode_image(&d->t->images[r], d->pp, d->x + (int64_t)r * d->per, &ierr)) {
            d->res[r].failed = 1;
            snprintf(d->res[r].error, sizeof d->res[r].error, "%s", ierr.msg);
        }
    }
    return NULL;
}

/* Decodes every image of t into x (row r: image r) on up to `threads`
 * threads (libvips decodes in parallel; each image is independent, so the
 * floats are those of one thread). Failures are marked in res. */
static void decode_all(const sm_msg_task *t, const sm_preproc *pp, float *x,
                       int64_t per, sm_explain_result *res, int threads)
{
    enum { MAX_DECODERS = 16 };
    decoding d = {t, pp, x, per, res, threads};
    if (d.threads > MAX_DECODERS)
        d.threads = MAX_DECODERS;
    if ((size_t)d.threads > t->n_images)
        d.threads = (int)t->n_images;
    if (d.threads < 1)
        d.threads = 1;
    pthread_t tid[MAX_DECODERS];
    decode_arg args[MAX_DECODERS];
    int started = 1;
    for (int k = 0; k < d.threads; k++)
        args[k] = (decode_arg){&d, k};
    for (int k = 1; k < d.threads; k++, started++)
        if (pthread_create(&tid[k], NULL, decode_stride, &args[k]))
            break;
    /* this thread takes stride 0, and the strides no thread started for */
    decode_stride(&args[0]);
    for (int k = started; k < d.threads; k++)
        decode_stride(&args[k]);
    for (int k = 1; k < started; k++)
        pthread_join(tid[k], NULL);
}

/* One RESULT item from r (map h x w, none when !with_map), its record's
 * arrays listed in a malloc'ed it->arrays (the caller frees it). 0, or -1
 * when out of memory. */
static int item_of(const sm_explain_result *r, const char *id,
                   const char *params, int with_map, int h, int w,
                   sm_msg_item *it)
{
    if (r->failed) {
        *it = (sm_msg_item){.id = id, .error = r->error};
        return 0;
    }
    const sm_record *rec = &r->record;
    *it = (sm_msg_item){
        .id = id, .predicted = r->predicted, .target = r->target,
        .score = r->score, .evals = r->evals, .seconds = r->seconds,
        .height = with_map ? h : 0, .width = with_map ? w : 0,
        .map = with_map ? r->map : NULL, .params = params,
        .record = sm_record_json(rec), .has_metrics = r->has_metrics,
        .deletion = r->deletion_auc, .insertion = r->insertion_auc,
        .faithfulness = r->faithfulness, .sparseness = r->sparseness,
        .complexity = r->complexity, .sensitivity = r->sensitivity};
    if (rec->n_arrays &&
        !(it->arrays = calloc(rec->n_arrays, sizeof *it->arrays)))
        return -1;
    for (size_t k = 0; k < rec->n_arrays; k++) {
        const sm_record_array *a = &rec->arrays[k];
        it->arrays[k] = (sm_msg_array){.name = a->name, .ndim = a->ndim,
                                       .data = a->data};
        memcpy(it->arrays[k].shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    }
    it->n_arrays = rec->n_arrays;
    return 0;
}

/* A chunk task's RESULT: the scores of its part of the proposed round of
 * the one image in x (target chosen in r). -1 fails the task. */
static int chunk_result(const sm_explain_setup *s, sm_explainer *e,
                        const sm_msg_task *t, const sm_tensor *x,
                        const sm_explain_result *r, sm_msg_buf *out,
                        sm_err *err)
{
    if (r->failed)
        return sm_err_set(err, "%s", r->error);
    sm_explain_rounds *rd = sm_explain_rounds_open(
        s, e, x, t->images[0].id, r->target, t->state, t->state_len, err);
    if (!rd)
        return -1;
    int64_t n = sm_explain_rounds_n(rd);
    int64_t first = t->part * n / t->parts, last = (t->part + 1) * n / t->parts;
    double *y = malloc(sizeof(double) * (size_t)(last - first + 1));
    int rc = !y ? sm_err_set(err, "out of memory")
                : sm_explain_rounds_score(rd, first, last - first, y, err);
    if (rc == 0) {
        sm_msg_result m = {.task = t->task, .scores = y,
                           .n_scores = last - first, .samples = n};
        rc = sm_msg_encode_result(&m, out) ? sm_err_set(err, "out of memory") : 0;
    }
    free(y);
    sm_explain_rounds_destroy(&rd);
    return rc;
}

/* A step task on the one image in x: its round's scores in, then its
 * result into r (0), or its next round as a RESULT into out (1). -1
 * fails the task. */
static int step(const sm_explain_setup *s, sm_explainer *e,
                const sm_msg_task *t, const sm_tensor *x,
                sm_explain_result *r, sm_msg_buf *out, sm_err *err)
{
    sm_explain_rounds *rd = sm_explain_rounds_open(
        s, e, x, t->images[0].id, r->target, t->state, t->state_len, err);
    int rc = !rd ? -1
                 : sm_explain_step(s, rd, x, t->scores, t->n_scores, r, err);
    sm_text state = {0};
    if (rc == 1 && sm_explain_rounds_encode(rd, &state, err) == 0) {
        sm_msg_result m = {.task = t->task,
                           .state = (const uint8_t *)state.s,
                           .state_len = state.len,
                           .samples = sm_explain_rounds_n(rd)};
        if (sm_msg_encode_result(&m, out))
            rc = sm_err_set(err, "out of memory");
    } else if (rc == 1) {
        rc = -1;
    }
    sm_text_free(&state);
    sm_explain_rounds_destroy(&rd);
    return rc;
}

/* Runs decoded task t on model m into a RESULT body. -1 (err) fails the
 * whole task: the caller sends it as the result's error. */
static int run(const sm_compute *c, const sm_msg_task *t, sm_model *m,
               const sm_explain_aux *aux, sm_msg_buf *out, sm_err *err)
{
    int threads = c->threads;
    sm_model_config *cfg = NULL;
    sm_explainer *e = NULL;
    sm_tensor *x = NULL;
    sm_explain_result *res = NULL, *kept = NULL;
    sm_msg_item *items = NULL;
    float *maps = NULL;
    int *labels = NULL;
    const char **ids = NULL;
    size_t *slot = NULL;
    int rc = -1, out_idx;
    size_t n = 0; /* images: known once the task is checked */
    cfg = t->config ? sm_model_config_parse(t->config, strlen(t->config), "config", err)
                    : sm_model_config_for_model(m, "model", err);
    if (!cfg || sm_model_config_bind(cfg, m, "model", &out_idx, err))
        goto done;
    sm_preproc pp;
    sm_model_config_preproc(cfg, &pp);
    sm_explain_setup s = {.model = m, .out_idx = out_idx,
                          .output_probs = cfg->output_kind == SM_OUTPUT_PROBABILITIES,
                          .seed = t->seed, .metrics = t->metrics,
                          .metric = {t->faithfulness_subsets,
                                     t->faithfulness_size,
                                     t->sensitivity_samples,
                                     t->sensitivity_radius},
                          .aux = aux, .n_aux = (int)t->n_models,
                          .preproc = &pp};
    if (parse_target(t->target, t->score, &s, err) ||
        !(e = explainer_for(c, t, err)))
        goto done;
    if (t->kind != SM_TASK_IMAGES && (t->n_images != 1 || !sm_explainer_chunked(e))) {
        sm_err_set(err, "a %s task needs one image and a neighbourhood method",
                   t->kind == SM_TASK_CHUNK ? "chunk" : "step");
        goto done;
    }
    n = t->n_images;
    size_t hw = (size_t)pp.height * (size_t)pp.width;
    int64_t per = (int64_t)pp.channels * (int64_t)hw;
    x = sm_tensor_new(4, (int64_t[]){(int64_t)n, pp.channels, pp.height, pp.width});
    res = calloc(n, sizeof *res);
    kept = calloc(n, sizeof *kept);
    items = calloc(n, sizeof *items);
    maps = malloc(sizeof(float) * hw * n);
    labels = malloc(sizeof(int) * n);
    ids = malloc(sizeof(char *) * n);
    slot = malloc(sizeof(size_t) * n);
    if (!x || !res || !kept || !items || !maps || !labels || !ids || !slot) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    /* Decoded into row r each, then those that decoded moved up to fill
     * x's first k rows and kept[0..k); slot[q] is kept[q]'s place. */
    decode_all(t, &pp, x->data, per, res, threads);
    size_t k = 0;
    for (size_t r = 0; r < n; r++) {
        if (res[r].failed)
            continue;
        if (k != r)
            memmove(x->data + (int64_t)k * per, x->data + (int64_t)r * per,
                    sizeof(float) * (size_t)per);
        kept[k].map = maps + r * hw;
        labels[k] = t->images[r].label_index;
        ids[k] = t->images[r].id;
        slot[k++] = r;
    }
    sm_tensor view = *x;
    view.owns = 0;
    view.shape[0] = (int64_t)k;
    if (t->kind != SM_TASK_IMAGES && k == 0) {
        sm_err_set(err, "%s", res[0].error);
        goto done;
    }
    if (k && sm_explain_targets(&s, &view, labels, ids, kept, err))
        goto done;
    if (t->kind == SM_TASK_CHUNK) {
        rc = chunk_result(&s, e, t, &view, &kept[0], out, err);
        goto done;
    }
    if (t->kind == SM_TASK_IMAGES && k &&
        sm_explain_images(&s, e, &view, ids, kept, err))
        goto done;
    if (t->kind == SM_TASK_STEP && !kept[0].failed) {
        int stepped = step(&s, e, t, &view, &kept[0], out, err);
        if (stepped) { /* an error, or the next round's RESULT in out */
            rc = stepped == 1 ? 0 : -1;
            goto done;
        }
    }
    for (size_t q = 0; q < k; q++) { /* the records move to res */
        res[slot[q]] = kept[q];
        memset(&kept[q].record, 0, sizeof kept[q].record);
    }
    const char *params = sm_explainer_params_json(e);
    if (!params) {
        sm_err_set(err, "out of memory");
        goto done;
    }
    int with_map = !sm_explainer_class_of(e)->no_map;
    for (size_t r = 0; r < n; r++)
        if (item_of(&res[r], t->images[r].id, params, with_map, pp.height,
                    pp.width, &items[r])) {
            sm_err_set(err, "out of memory");
            goto done;
        }
    sm_msg_result r = {.task = t->task, .items = items, .n_items = n};
    rc = sm_msg_encode_result(&r, out) ? sm_err_set(err, "out of memory") : 0;
done:
    for (size_t r = 0; items && r < n; r++)
        free(items[r].arrays);
    if (res)
        sm_explain_results_free(res, (int64_t)n);
    if (kept)
        sm_explain_results_free(kept, (int64_t)n);
    free(slot);
    free(ids);
    free(labels);
    free(maps);
    free(items);
    free(kept);
    free(res);
    sm_tensor_destroy(&x);
    sm_explainer_destroy(&e);
    sm_model_config_destroy(&cfg);
    return rc;
}

sm_compute_status sm_compute_run(sm_compute *c, const void *task, size_t len,
                                 const void *model, size_t model_len,
                                 sm_msg_buf *result, char *need, sm_err *err)
{
    sm_msg_doc *doc = NULL;
    sm_msg_task t;
    if (sm_msg_decode_task(task, len, &c->limits, &doc, &t, err)) {
        /* answered when its id can be read, so that its lease does not
         * wait for this worker's death: the broker fails its images */
        uint64_t id;
        if (sm_msg_peek_task(task, len, &c->limits, &id, NULL))
            return SM_COMPUTE_BAD_TASK;
        sm_msg_result r = {.task = id, .error = err->msg};
        return sm_msg_encode_result(&r, result) ? SM_COMPUTE_BAD_TASK
                                                : SM_COMPUTE_DONE;
    }
    for (size_t k = 0; c->crash_on[0] && k < t.n_images; k++)
        if (t.images[k].id && !strcmp(t.images[k].id, c->crash_on)) {
            fprintf(stderr, "salmap-worker: image '%s': SALMAP_TEST_CRASH_ON: "
                    "aborting\n", c->crash_on);
            abort();
        }
    /* The classifier, then the auxiliary models: all in the cache at once
     * (the least recently used out is never one of this task's), the
     * bytes given used for the one whose hash they have. */
    sm_err terr = {0};
    char have[SM_HASH_HEX + 1] = "";
    int used = 0; /* the bytes are one of the task's models */
    if (model)
        sm_hash_hex(model, model_len, have);
    for (size_t k = 0; model && k <= t.n_models; k++)
        used |= !strcmp(have, k ? t.model_hashes[k - 1] : t.model);
    sm_model *m = NULL;
    sm_explain_aux aux[SM_EXPLAIN_MAX_AUX];
    if (model && !used)
        sm_err_set(&terr, "the model bytes received hash to %s, none of the "
                   "task's models", have);
    else if (t.n_models > SM_EXPLAIN_MAX_AUX ||
             (int)t.n_models + 1 > c->n_cache)
        sm_err_set(&terr, "the task needs %zu models at once; this worker "
                   "keeps %d", t.n_models + 1, c->n_cache);
    for (size_t k = 0; !terr.msg[0] && k <= t.n_models; k++) {
        const char *hash = k ? t.model_hashes[k - 1] : t.model;
        sm_model *mk = model_for(c, hash, strcmp(have, hash) ? NULL : model,
                                 model_len, &terr);
        if (!mk && !terr.msg[0]) {
            snprintf(need, SM_HASH_HEX + 1, "%s", hash);
            sm_msg_doc_destroy(&doc);
            return SM_COMPUTE_NEED_MODEL;
        }
        if (k)
            aux[k - 1] = (sm_explain_aux){t.model_names[k - 1], mk};
        else
            m = mk;
    }
    if (terr.msg[0] || run(c, &t, m, aux, result, &terr)) {
        sm_msg_buf_free(result);
        sm_msg_result r = {.task = t.task, .error = terr.msg};
        if (sm_msg_encode_result(&r, result)) {
            sm_msg_doc_destroy(&doc);
            sm_err_set(err, "out of memory");
            return SM_COMPUTE_BAD_TASK;
        }
    }
    sm_msg_doc_destroy(&doc);
    return SM_COMPUTE_DONE;
}
