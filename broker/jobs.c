/* Jobs on the broker: setting one up from its SUBMIT body, planning it
 * into tasks, turning workers' results into files, finishing it.
 *
 * Where the aggregator runs: a neighbourhood's parts are gathered here,
 * but the fit over them is a task of its own ("step") that a worker runs.
 * The fit needs the image's superpixels and the model (for the metrics of
 * the map it makes), which workers have and the broker does not load; and
 * a fit, even a slow one on large images, then never holds up the
 * broker's loop, whose heartbeats and leases must stay on time, while the
 * loop never holds up a fit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/blobs.h"
#include "broker/internal.h"
#include "config/config_model.h"
#include "explain/settings.h"
#include "model/model.h"
#include "util/file.h"
#include "util/text.h"

void btask_push(btask_list *l, btask *t)
{
    t->next = NULL;
    t->prev = l->tail;
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    l->n++;
}

void btask_push_front(btask_list *l, btask *t)
{
    t->prev = NULL;
    t->next = l->head;
    if (l->head)
        l->head->prev = t;
    else
        l->tail = t;
    l->head = t;
    l->n++;
}

void btask_unlink(btask_list *l, btask *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        l->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        l->tail = t->prev;
    t->next = t->prev = NULL;
    l->n--;
}

static void gather_free(bgather *g)
{
    if (!g)
        return;
    for (int k = 0; g->scores && k < g->parts; k++)
        free(g->scores[k]);
    free(g->scores);
    free(g->len);
    free(g);
}

/* Removes g from j's gathers and frees it. */
static void gather_close(bjob *j, bgather *g)
{
    for (bgather **p = &j->gathers; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            break;
        }
    gather_free(g);
}

void btask_free(btask *t)
{
    if (!t)
        return;
    free(t->images);
    free(t);
}

static const char *const state_names[] = {"queued", "running", "done",
                                          "failed", "cancelled"};

const char *bjob_state_name(bjob_state s)
{
    return state_names[s];
}

void bjob_free(bjob **jp)
{
    bjob *j = *jp;
    if (!j)
        return;
    btask *t;
    while ((t = j->queue.head)) {
        btask_unlink(&j->queue, t);
        btask_free(t);
    }
    while (j->gathers)
        gather_close(j, j->gathers);
    for (size_t m = 0; j->ex && m < j->spec.n_methods; m++)
        sm_explainer_destroy(&j->ex[m]);
    for (size_t m = 0; j->msettings && m < j->spec.n_methods; m++)
        free(j->msettings[m]);
    free(j->ex);
    free(j->msettings);
    free(j->n_msettings);
    sm_explain_store_destroy(&j->store);
    sm_dataset_destroy(&j->ds);
    sm_model_config_destroy(&j->cfg);
    sm_msg_doc_destroy(&j->doc);
    free(j->body);
    free(j->error);
    free(j);
    *jp = NULL;
}

/* Inline images become a CSV-manifest dataset in the broker's state
 * folder, so that a resumed job finds them and the rest of the broker
 * sees one kind of dataset. */
static int write_inline(sm_broker *b, bjob *j, char *manifest, size_t cap,
                        sm_err *err)
{
    char dir[4096], path[8192];
    snprintf(dir, sizeof dir, "%s/jobs/%s", b->state_dir, j->id);
    if (snprintf(manifest, cap, "%s/images.csv", dir) >= (int)cap)
        return sm_err_set(err, "state folder path too long");
    sm_text csv = {0};
    int rc = sm_text_addf(&csv, "path,label\n") ? sm_err_set(err, "out of memory") : 0;
    for (size_t i = 0; rc == 0 && i < j->spec.n_images; i++) {
        const sm_msg_image *im = &j->spec.images[i];
        char file[4096];
        snprintf(file, sizeof file, "%s.img", im->id);
        snprintf(path, sizeof path, "%s/%s", dir, file);
        char *slash = strrchr(path, '/');
        *slash = '\0';
        rc = sm_file_mkdirs(path, err);
        *slash = '/';
        if (rc == 0)
            rc = sm_file_write_atomic(path, im->data, im->len, err);
        if (rc == 0 && (sm_text_csv(&csv, file) || sm_text_addf(&csv, ",") ||
                        sm_text_csv(&csv, im->label ? im->label : "") ||
                        sm_text_addf(&csv, "\n")))
            rc = sm_err_set(err, "out of memory");
    }
    if (rc == 0)
        rc = sm_file_write_atomic(manifest, csv.s, csv.len, err);
    sm_text_free(&csv);
    return rc;
}

/* Everything a job needs before it runs; -1 with a message that the
 * client will see. */
static int setup(sm_broker *b, bjob *j, sm_err *err)
{
    const sm_msg_job *s = &j->spec;
    char path[4096];
    if (!sm_blobs_path(b->blob_dir, s->model, path, sizeof path))
        return sm_err_set(err, "model %s: the broker does not hold it (PUT it "
                          "first)", s->model);
    /* The broker loads the model once, to refuse a bad one at submission
     * and to derive its default config; workers load their own. */
    sm_model *model = sm_model_load_file(path, err);
    if (!model)
        return sm_err_prefix(err, "model %s", s->model);
    int out_idx, rc = 0;
    char name[96];
    snprintf(name, sizeof name, "model %.16s", s->model);
    j->cfg = s->config ? sm_model_config_parse(s->config, strlen(s->config),
                                               "config", err)
                       : sm_model_config_for_model(model, name, err);
    if (!j->cfg || sm_model_config_bind(j->cfg, model, name, &out_idx, err))
        rc = -1;
    sm_model_destroy(&model);
    if (rc)
        return -1;
    if (!!s->dataset == !!s->n_images)
        return sm_err_set(err, "a job needs either a dataset or images");
    if (s->dataset)
        j->ds = sm_dataset_open(s->dataset, err);
    else if (write_inline(b, j, path, sizeof path, err) == 0)
        j->ds = sm_dataset_open(path, err);
    if (!j->ds)
        return -1;
    j->count = sm_dataset_count(j->ds);
    if (s->limit && s->limit < j->count)
        j->count = (size_t)s->limit;
    size_t nm = s->n_methods;
    j->ex = calloc(nm, sizeof *j->ex);
    j->msettings = calloc(nm, sizeof *j->msettings);
    j->n_msettings = calloc(nm, sizeof *j->n_msettings);
    if (!j->ex || !j->msettings || !j->n_msettings)
        return sm_err_set(err, "out of memory");
    if (sm_settings_explainers(s->methods, nm, s->settings, s->n_settings,
                               j->ex, err))
        return -1;
    for (size_t m = 0; m < nm; m++) {
        if (!(j->msettings[m] = malloc(sizeof(char *) * (s->n_settings + 1))))
            return sm_err_set(err, "out of memory");
        sm_settings_of(s->methods[m], s->settings, s->n_settings,
                       j->msettings[m], &j->n_msettings[m]);
    }
    if (strcmp(s->target, "predicted") && strcmp(s->target, "label")) {
        char *end;
        long t = strtol(s->target, &end, 10);
        if (!*s->target || *end || t < 0 ||
            (j->cfg->n_classes && t >= j->cfg->n_classes))
            return sm_err_set(err, "target '%s': predicted, label or a class "
                              "index of the model", s->target);
    }
    if (strcmp(s->score, "logit") && strcmp(s->score, "prob"))
        return sm_err_set(err, "score '%s': logit or prob", s->score);
    if (!(j->store = sm_explain_store_open(s->out, err)))
        return -1;
    j->maps_total = (uint64_t)j->count * nm;
    return 0;
}

bjob *bjob_new(sm_broker *b, const char *id, const void *body, size_t len,
               int resume, sm_err *err)
{
    bjob *j = calloc(1, sizeof *j);
    if (!j || !(j->body = malloc(len ? len : 1))) {
        free(j);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    memcpy(j->body, body, len);
    j->body_len = len;
    snprintf(j->id, sizeof j->id, "%s", id);
    j->t0 = j->last_event = b->now;
    if (sm_msg_decode_job(j->body, len, &b->limits, &j->doc, &j->spec, err) ||
        setup(b, j, err)) {
        if (!resume) {
            bjob_free(&j);
            return NULL;
        }
        j->state = BJOB_FAILED;
        j->error = strdup(err->msg);
        return j;
    }
    j->state = BJOB_RUNNING;
    return j;
}

bjob *bjob_find(sm_broker *b, const char *id)
{
    for (bjob *j = b->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

void bjob_append(sm_broker *b, bjob *j)
{
    bjob **p = &b->jobs;
    while (*p)
        p = &(*p)->next;
    *p = j;
}

int bjob_ended(const bjob *j)
{
    return j->state == BJOB_DONE || j->state == BJOB_FAILED ||
           j->state == BJOB_CANCELLED;
}

void bjob_status(const bjob *j, double now, sm_msg_status *st)
{
    memset(st, 0, sizeof *st);
    st->job = j->id;
    st->name = j->spec.name;
    st->state = bjob_state_name(j->state);
    st->out = j->spec.out ? j->spec.out : "";
    st->error = j->error;
    st->images = j->count;
    st->maps_total = j->maps_total;
    st->maps_done = j->maps_done;
    st->maps_failed = j->maps_failed;
    st->maps_found = j->maps_found;
    st->seconds = now - j->t0;
    st->rate = st->seconds > 0 ? (double)j->maps_done / st->seconds : 0;
}

void bjob_set_state(sm_broker *b, bjob *j, bjob_state s, const char *error)
{
    sm_err err;
    j->state = s;
    if (error && !j->error)
        j->error = strdup(error);
    j->dirty = 1;
    if (sm_journal_set(b->journal, j->id, bjob_state_name(s), j->error,
                       j->maps_done, j->maps_failed, &err))
        sm_broker_warn("job %s: %s", j->id, err.msg);
}

static btask *task_new(sm_broker *b, bjob *j, int method, sm_task_kind kind,
                       size_t n_images)
{
    btask *t = calloc(1, sizeof *t);
    if (!t || !(t->images = malloc(sizeof(size_t) * (n_images ? n_images : 1)))) {
        free(t);
        return NULL;
    }
    t->id = b->epoch | b->next_task++;
    t->job = j;
    t->method = method;
    t->kind = kind;
    return t;
}

/* Live workers with nothing to do, less the tasks queued already. */
static long idle_workers(const sm_broker *b)
{
    long idle = 0;
    for (const bworker *w = b->wk; w; w = w->next)
        idle += w->inflight == 0;
    for (const bjob *j = b->jobs; j; j = j->next)
        idle -= (long)j->queue.n;
    return idle;
}

/* Splits image i of a neighbourhood method into parts when idle workers
 * outnumber the images left to plan (latency: one image's neighbourhood
 * spread over them). Workers, not credits: parts that go to one worker
 * run one after the other and only add cost. 1 when it queued the parts,
 * 0 when the image goes whole, -1 when out of memory. */
static int plan_parts(sm_broker *b, bjob *j, int m, size_t i)
{
    long idle = idle_workers(b);
    size_t left = j->count - i;
    int parts = idle > (long)left ? (int)(idle / (long)left) : 1;
    if (parts > b->cfg.max_parts)
        parts = b->cfg.max_parts;
    if (parts < 2)
        return 0;
    bgather *g = calloc(1, sizeof *g);
    if (!g || !(g->scores = calloc((size_t)parts, sizeof *g->scores)) ||
        !(g->len = calloc((size_t)parts, sizeof *g->len))) {
        gather_free(g);
        return -1;
    }
    g->image = i;
    g->method = m;
    g->parts = parts;
    g->next = j->gathers;
    j->gathers = g;
    for (int k = 0; k < parts; k++) {
        btask *t = task_new(b, j, m, SM_TASK_CHUNK, 1);
        if (!t)
            return -1; /* g stays with the job */
        t->images[0] = i;
        t->n_images = 1;
        t->part = k;
        t->gather = g;
        btask_push(&j->queue, t);
    }
    return 1;
}

/* Whole images of a neighbourhood method go several to a task while many
 * are left (their targets then take one model run, not one each), but
 * never so many that a worker would wait: at most half of the images left
 * per worker, and 8. */
static size_t group_size(const sm_broker *b, const bjob *j, size_t i)
{
    size_t workers = 0, left = j->count - i;
    for (const bworker *w = b->wk; w; w = w->next)
        workers++;
    size_t g = left / (2 * (workers ? workers : 1));
    return g < 1 ? 1 : g > 8 ? 8 : g;
}

void bjob_plan(sm_broker *b, bjob *j)
{
    if (j->state != BJOB_RUNNING || j->queue.n || j->cursor >= j->count)
        return;
    size_t batch = j->spec.batch > 0 ? (size_t)j->spec.batch : 64;
    size_t i0 = j->cursor, i1 = i0 + batch < j->count ? i0 + batch : j->count;
    for (size_t m = 0; m < j->spec.n_methods; m++) {
        const char *method = j->spec.methods[m];
        int chunked = sm_explainer_chunked(j->ex[m]);
        btask *t = NULL;
        size_t cap = 0; /* images t may take */
        for (size_t i = i0; i < i1; i++) {
            if (sm_explain_store_done(j->store, sm_dataset_id(j->ds, i), method)) {
                j->maps_done++;
                j->maps_found++;
                j->dirty = 1;
                continue;
            }
            int split = chunked && !t ? plan_parts(b, j, (int)m, i) : 0;
            if (split > 0)
                continue;
            if (!t) {
                cap = chunked ? group_size(b, j, i) : i1 - i0;
                if (split < 0 || !(t = task_new(b, j, (int)m, SM_TASK_IMAGES, cap))) {
                    sm_broker_warn("job %s: out of memory planning", j->id);
                    break;
                }
            }
            t->images[t->n_images++] = i;
            if (t->n_images == cap) {
                btask_push(&j->queue, t);
                t = NULL;
            }
        }
        if (t)
            btask_push(&j->queue, t);
    }
    j->cursor = i1;
}

/* The class index of image i's label for the model, or -1. */
static int label_index(const bjob *j, size_t i)
{
    const char *label = sm_dataset_label_name(j->ds, i);
    return label ? sm_class_index(j->cfg, j->ds, label) : -1;
}

int bjob_encode_task(sm_broker *b, const btask *t, sm_msg_buf *buf,
                     sm_err *err)
{
    (void)b;
    const bjob *j = t->job;
    sm_msg_image *im = calloc(t->n_images, sizeof *im);
    sm_dataset_raw_image *raw = calloc(t->n_images, sizeof *raw);
    double *scores = NULL;
    int rc = -1;
    if (!im || !raw) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    for (size_t r = 0; r < t->n_images; r++) {
        size_t i = t->images[r];
        if (sm_dataset_raw(j->ds, i, &raw[r], err))
            goto out;
        im[r].id = sm_dataset_id(j->ds, i);
        im[r].label = sm_dataset_label_name(j->ds, i);
        im[r].label_index = label_index(j, i);
        im[r].format = raw[r].format == SM_DATASET_RAW_U8 ? SM_IMAGE_U8
                                                          : SM_IMAGE_FILE;
        im[r].width = raw[r].width;
        im[r].height = raw[r].height;
        im[r].bands = raw[r].bands;
        im[r].data = raw[r].data;
        im[r].len = raw[r].len;
    }
    sm_msg_task m = {
        .task = t->id, .job = j->id, .kind = t->kind, .model = j->spec.model,
        .config = j->spec.config, .method = j->spec.methods[t->method],
        .settings = j->msettings[t->method],
        .n_settings = j->n_msettings[t->method], .seed = j->spec.seed,
        .target = j->spec.target, .score = j->spec.score,
        .metrics = j->spec.metrics, .images = im, .n_images = t->n_images,
    };
    if (t->kind == SM_TASK_CHUNK) {
        m.part = t->part;
        m.parts = t->gather->parts;
    } else if (t->kind == SM_TASK_STEP) {
        const bgather *g = t->gather;
        if (!(scores = malloc(sizeof(double) * (size_t)(g->samples ? g->samples : 1)))) {
            sm_err_set(err, "out of memory");
            goto out;
        }
        int64_t at = 0;
        for (int k = 0; k < g->parts; k++) {
            memcpy(scores + at, g->scores[k], sizeof(double) * (size_t)g->len[k]);
            at += g->len[k];
        }
        m.scores = scores;
        m.n_scores = g->samples;
    }
    if (sm_msg_encode_task(&m, buf)) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    rc = 0;
out:
    for (size_t r = 0; raw && r < t->n_images; r++)
        sm_dataset_raw_free(&raw[r]);
    free(raw);
    free(im);
    free(scores);
    return rc;
}

/* Writes one image's map and row. */
static void put_item(bjob *j, int m, size_t i,
                     const sm_msg_item *it)
{
    const char *id = sm_dataset_id(j->ds, i);
    sm_err err;
    if (!it->id || strcmp(it->id, id) != 0) {
        sm_broker_warn("job %s: a result for '%s' where '%s' was asked; "
                      "counted as failed", j->id, it->id ? it->id : "?", id);
        j->maps_failed++;
        return;
    }
    if (it->error) {
        const char *file = sm_dataset_path(j->ds, i);
        sm_broker_warn("job %s: %s: %s: %s", j->id, file ? file : id,
                       j->spec.methods[m], it->error);
        j->maps_failed++;
        return;
    }
    if (it->height != j->cfg->height || it->width != j->cfg->width) {
        sm_broker_warn("job %s: %s: %s: a %dx%d map for a %dx%d model input; "
                      "counted as failed", j->id, id, j->spec.methods[m],
                      it->height, it->width, j->cfg->height, j->cfg->width);
        j->maps_failed++;
        return;
    }
    sm_explain_result r = {0};
    r.predicted = it->predicted;
    r.target = it->target;
    r.score = it->score;
    r.evals = (long)it->evals;
    r.seconds = it->seconds;
    r.map = (float *)it->map;
    snprintf(r.extras, sizeof r.extras, "%s", it->record ? it->record : "{}");
    r.has_metrics = it->has_metrics;
    r.deletion_auc = it->deletion;
    r.insertion_auc = it->insertion;
    char pb[32], tb[32];
    if (sm_explain_store_put(j->store, id, sm_dataset_label_name(j->ds, i),
                             sm_class_name(j->cfg, j->ds, it->predicted, pb, sizeof pb),
                             sm_class_name(j->cfg, j->ds, it->target, tb, sizeof tb),
                             j->spec.methods[m], it->params ? it->params : "{}",
                             &r, it->height, it->width, &err)) {
        sm_broker_warn("job %s: %s", j->id, err.msg);
        j->maps_failed++;
        return;
    }
    j->maps_done++;
}

void bjob_task_failed(sm_broker *b, btask *t, const char *why)
{
    bjob *j = t->job;
    sm_broker_warn("job %s: task %llu (%s, %zu image(s), first '%s'): %s",
                  j->id, (unsigned long long)t->id, j->spec.methods[t->method],
                  t->n_images, sm_dataset_id(j->ds, t->images[0]), why);
    if (t->kind == SM_TASK_CHUNK) {
        /* the image's other parts are of no use now: drop those queued;
         * results of those out are ignored */
        bgather *g = t->gather;
        for (btask *q = j->queue.head, *nx; q; q = nx) {
            nx = q->next;
            if (q->gather == g) {
                btask_unlink(&j->queue, q);
                btask_free(q);
            }
        }
        if (!g->failed)
            j->maps_failed++;
        g->failed = 1;
    } else if (t->kind == SM_TASK_STEP) {
        gather_close(j, t->gather);
        j->maps_failed++;
    } else {
        j->maps_failed += t->n_images;
    }
    j->dirty = 1;
    btask_free(t);
    bjob_check_done(b, j);
}

void bjob_result(sm_broker *b, btask *t, const sm_msg_result *r)
{
    bjob *j = t->job;
    if (j->state != BJOB_RUNNING || (t->kind == SM_TASK_CHUNK && t->gather->failed)) {
        btask_free(t);
        bjob_check_done(b, j);
        return;
    }
    if (r->error) {
        bjob_task_failed(b, t, r->error);
        return;
    }
    if (t->kind == SM_TASK_CHUNK) {
        bgather *g = t->gather;
        int64_t n = r->samples, k = t->part;
        int64_t want = (k + 1) * n / g->parts - k * n / g->parts;
        if (n < 1 || (g->samples && n != g->samples) || r->n_scores != want) {
            bjob_task_failed(b, t, "a chunk result of the wrong size");
            return;
        }
        if (!g->scores[k]) {
            g->scores[k] = malloc(sizeof(double) * (size_t)(want ? want : 1));
            if (!g->scores[k]) {
                bjob_task_failed(b, t, "out of memory");
                return;
            }
            memcpy(g->scores[k], r->scores, sizeof(double) * (size_t)want);
            g->len[k] = want;
            g->samples = n;
            g->received++;
        }
        if (g->received == g->parts) {
            /* all parts in: the fit goes first, the image is nearly done */
            btask *f = task_new(b, j, t->method, SM_TASK_STEP, 1);
            if (!f) {
                bjob_task_failed(b, t, "out of memory");
                return;
            }
            f->images[0] = g->image;
            f->n_images = 1;
            f->gather = g;
            btask_push_front(&j->queue, f);
        }
        btask_free(t);
        return;
    }
    if (r->n_items != t->n_images) {
        bjob_task_failed(b, t, "a result with the wrong number of images");
        return;
    }
    for (size_t k = 0; k < t->n_images; k++)
        put_item(j, t->method, t->images[k], &r->items[k]);
    if (t->kind == SM_TASK_STEP)
        gather_close(j, t->gather);
    j->dirty = 1;
    btask_free(t);
    bjob_check_done(b, j);
}

/* 1 while a leased task of j is out. */
static int has_leased(const sm_broker *b, const bjob *j)
{
    for (const btask *t = b->leased.head; t; t = t->next)
        if (t->job == j)
            return 1;
    return 0;
}

void bjob_finish(sm_broker *b, bjob *j, bjob_state s)
{
    sm_err err;
    const char **ids = malloc(sizeof(char *) * (j->count ? j->count : 1));
    int rc = -1;
    if (!ids) {
        sm_err_set(&err, "out of memory");
    } else {
        for (size_t i = 0; i < j->count; i++)
            ids[i] = sm_dataset_id(j->ds, i);
        rc = sm_explain_store_index(j->store, ids, j->count, j->spec.methods,
                                    (int)j->spec.n_methods, &err);
    }
    free(ids);
    if (rc)
        bjob_set_state(b, j, BJOB_FAILED, err.msg);
    else
        bjob_set_state(b, j, s, NULL);
    sm_broker_info(b, "job %s %s: %llu maps written or found, %llu failed, %.1f s",
                  j->id, bjob_state_name(j->state),
                  (unsigned long long)j->maps_done,
                  (unsigned long long)j->maps_failed, b->now - j->t0);
}

void bjob_check_done(sm_broker *b, bjob *j)
{
    if (j->state != BJOB_RUNNING || j->queue.n || j->cursor < j->count ||
        has_leased(b, j))
        return;
    bjob_finish(b, j, BJOB_DONE);
}
