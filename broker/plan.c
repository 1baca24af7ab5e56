/* The planner: a job's images into tasks, a batch at a time as workers
 * ask (whole images, several to a task, or a lone image's neighbourhood
 * split into parts that gather.c collects), and a task into its TASK
 * message. */
#include <stdlib.h>
#include <string.h>

#include "broker/internal.h"
#include "broker/log.h"
#include "config/config_model.h"

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
    bgather *g = bgather_open(j, m, i, parts);
    if (!g)
        return -1;
    for (int k = 0; k < parts; k++) {
        btask *t = btask_new(b, j, m, SM_TASK_CHUNK, 1);
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
                if (split < 0 || !(t = btask_new(b, j, (int)m, SM_TASK_IMAGES, cap))) {
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

int bjob_encode_task(sm_broker *b, btask *t, sm_msg_buf *buf,
                     sm_err *err)
{
    bjob *j = t->job;
    sm_msg_image *im = calloc(t->n_images, sizeof *im);
    sm_dataset_raw_image *raw = calloc(t->n_images, sizeof *raw);
    double *scores = NULL;
    int rc = -1;
    if (!im || !raw) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    size_t kept = 0;
    for (size_t k = 0; k < t->n_images; k++) {
        size_t i = t->images[k], r = kept;
        sm_err ierr;
        if (sm_dataset_raw(j->ds, i, &raw[r], &ierr)) {
            if (t->n_images == 1) { /* the task is that image: it fails */
                *err = ierr;
                goto out;
            }
            /* one unreadable image fails alone, not the task's others */
            bjob_map_failed(b, j, i, t->method, ierr.msg);
            continue;
        }
        t->images[kept++] = i;
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
    if (!(t->n_images = kept)) {
        rc = 1;
        goto out;
    }
    sm_msg_task m = {
        .task = t->id, .job = j->id, .kind = t->kind, .model = j->spec.model,
        .config = j->spec.config, .method = j->spec.methods[t->method],
        .settings = j->msettings[t->method],
        .n_settings = j->n_msettings[t->method], .seed = j->spec.seed,
        .target = j->spec.target, .score = j->spec.score,
        .metrics = j->spec.metrics,
        .faithfulness_subsets = j->spec.faithfulness_subsets,
        .faithfulness_size = j->spec.faithfulness_size,
        .sensitivity_samples = j->spec.sensitivity_samples,
        .sensitivity_radius = j->spec.sensitivity_radius, .images = im, .n_images = t->n_images,
        .model_names = j->spec.model_names,
        .model_hashes = j->spec.model_hashes, .n_models = j->spec.n_models,
    };
    if (t->kind != SM_TASK_IMAGES) { /* round 1: the worker begins it */
        m.state = t->gather->state;
        m.state_len = t->gather->state_len;
    }
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
