/* Workers' results: the maps of whole images written to the job's store,
 * the parts of a split neighbourhood's round gathered until all are in
 * (then its step is queued), the next round of a step split into chunks
 * again, and the tasks that could not be run.
 *
 * Where the aggregator runs: a round's parts are gathered here, but the
 * step over them (update the image's state: fit its map, or propose the
 * next round) is a task of its own that a worker runs. It needs the
 * image, the method and the model (for the metrics of the map it makes),
 * which workers have and the broker does not load; and a step, even a
 * slow one on large images, then never holds up the broker's loop, whose
 * heartbeats and leases must stay on time. States live in the broker's
 * memory only: after a restart the image begins again, which gives the
 * same bits (rounds are deterministic). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/internal.h"
#include "broker/log.h"
#include "config/config_model.h"

static void gather_free(bgather *g)
{
    if (!g)
        return;
    for (int k = 0; g->scores && k < g->parts; k++)
        free(g->scores[k]);
    free(g->scores);
    free(g->len);
    free(g->state);
    free(g);
}

bgather *bgather_open(bjob *j, int method, size_t image, int parts)
{
    bgather *g = calloc(1, sizeof *g);
    if (!g || !(g->scores = calloc((size_t)parts, sizeof *g->scores)) ||
        !(g->len = calloc((size_t)parts, sizeof *g->len))) {
        gather_free(g);
        return NULL;
    }
    g->image = image;
    g->method = method;
    g->parts = parts;
    g->round = 1;
    g->next = j->gathers;
    j->gathers = g;
    return g;
}

void bgather_close(bjob *j, bgather *g)
{
    for (bgather **p = &j->gathers; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            break;
        }
    gather_free(g);
}

void bjob_note_failure(bjob *j, size_t i, int m, const char *why)
{
    if (j->n_failures >= SM_JOBINFO_FAILURES)
        return; /* counted in maps_failed all the same */
    sm_jobinfo_failure *grown = realloc(j->failures, sizeof *grown * (size_t)(j->n_failures + 1));
    if (!grown)
        return;
    j->failures = grown;
    char *id = strdup(sm_dataset_id(j->ds, i)), *method = strdup(j->spec.methods[m]),
         *error = strdup(why ? why : "");
    if (!id || !method || !error) {
        free(id);
        free(method);
        free(error);
        return;
    }
    grown[j->n_failures++] = (sm_jobinfo_failure){id, method, error};
}

void bjob_map_failed(sm_broker *b, bjob *j, size_t i, int m, const char *why)
{
    const char *file = sm_dataset_path(j->ds, i); /* the image's file, when it has one */
    sm_broker_fault(b, j->id, "%s: %s: %s", file ? file : sm_dataset_id(j->ds, i),
                    j->spec.methods[m], why);
    bjob_note_failure(j, i, m, why);
    j->maps_failed++;
    j->dirty = 1;
}

/* Writes one image's map and row: 0 (written, or counted as failed), or
 * 1 when the disk is full: nothing of it is taken as done (its row, written
 * last, is not there), and the image is to be explained again later. */
static int put_item(sm_broker *b, bjob *j, int m, size_t i,
                    const sm_msg_item *it)
{
    const char *id = sm_dataset_id(j->ds, i);
    sm_err err;
    if (!it->id || strcmp(it->id, id) != 0) {
        bjob_map_failed(b, j, i, m, "the worker answered for another image");
        return 0;
    }
    if (it->error) {
        bjob_map_failed(b, j, i, m, it->error);
        return 0;
    }
    int with_map = !sm_explainer_class_of(j->ex[m])->no_map;
    if (with_map &&
        (it->height != j->cfg->height || it->width != j->cfg->width)) {
        char why[128];
        snprintf(why, sizeof why, "a %dx%d map for a %dx%d model input", it->height,
                 it->width, j->cfg->height, j->cfg->width);
        bjob_map_failed(b, j, i, m, why);
        return 0;
    }
    sm_explain_result r = {0};
    int oom = sm_record_set_json(&r.record, it->record ? it->record : "{}");
    for (size_t k = 0; k < it->n_arrays && !oom; k++) /* checked by the codec */
        oom = sm_record_array_add(&r.record, it->arrays[k].name,
                                  it->arrays[k].ndim, it->arrays[k].shape,
                                  it->arrays[k].data);
    if (oom) {
        sm_record_free(&r.record);
        bjob_map_failed(b, j, i, m, "out of memory");
        return 0;
    }
    r.predicted = it->predicted;
    r.target = it->target;
    r.score = it->score;
    r.evals = (long)it->evals;
    r.seconds = it->seconds;
    r.map = with_map ? (float *)it->map : NULL;
    r.has_metrics = it->has_metrics;
    r.deletion_auc = it->deletion;
    r.insertion_auc = it->insertion;
    r.faithfulness = it->faithfulness;
    r.sparseness = it->sparseness;
    r.complexity = it->complexity;
    r.sensitivity = it->sensitivity;
    char pb[32], tb[32];
    int rc = sm_explain_store_put(
        j->store, id, sm_dataset_label_name(j->ds, i),
        sm_class_name(j->cfg, j->ds, it->predicted, pb, sizeof pb),
        sm_class_name(j->cfg, j->ds, it->target, tb, sizeof tb),
        j->spec.methods[m], it->params ? it->params : "{}", &r, it->height,
        it->width, &err);
    sm_record_free(&r.record);
    if (rc && sm_err_disk_full(&err))
        return 1;
    if (rc) {
        bjob_map_failed(b, j, i, m, err.msg);
        return 0;
    }
    j->maps_done++;
    return 0;
}

/* Drops the queued tasks of gather g (those out are ignored when they
 * answer). */
static void drop_queued(bjob *j, const bgather *g)
{
    for (btask *q = j->queue.head, *nx; q; q = nx) {
        nx = q->next;
        if (q->gather == g) {
            btask_unlink(&j->queue, q);
            btask_free(q);
        }
    }
}

void bjob_task_failed(sm_broker *b, btask *t, const char *why)
{
    bjob *j = t->job;
    sm_broker_fault(b, j->id, "task %llu (%s, %zu image(s), first '%s'): %s",
                    (unsigned long long)t->id, j->spec.methods[t->method],
                  t->n_images, sm_dataset_id(j->ds, t->images[0]), why);
    if (t->kind == SM_TASK_CHUNK) {
        /* the image's other parts are of no use now: drop those queued;
         * results of those out are ignored */
        bgather *g = t->gather;
        drop_queued(j, g);
        if (!g->failed) {
            j->maps_failed++;
            bjob_note_failure(j, g->image, g->method, why);
        }
        g->failed = 1;
    } else if (t->kind == SM_TASK_STEP) {
        bjob_note_failure(j, t->gather->image, t->gather->method, why);
        bgather_close(j, t->gather);
        j->maps_failed++;
    } else {
        j->maps_failed += t->n_images;
        for (size_t k = 0; k < t->n_images; k++)
            bjob_note_failure(j, t->images[k], t->method, why);
    }
    j->dirty = 1;
    btask_free(t);
    bjob_check_done(b, j);
}

/* Queues the chunk tasks of round r (a RESULT with state and samples) of
 * step t's image, in front: the image is under way. */
static void next_round(sm_broker *b, btask *t, const sm_msg_result *r)
{
    bjob *j = t->job;
    bgather *g = t->gather;
    if (r->samples < 1 || r->n_items) {
        bjob_task_failed(b, t, "a next round without samples");
        return;
    }
    uint8_t *state = malloc(r->state_len ? r->state_len : 1);
    if (!state) {
        bjob_task_failed(b, t, "out of memory");
        return;
    }
    memcpy(state, r->state, r->state_len);
    free(g->state);
    g->state = state;
    g->state_len = r->state_len;
    g->samples = r->samples;
    g->round++;
    for (int k = 0; k < g->parts; k++) {
        free(g->scores[k]);
        g->scores[k] = NULL;
        g->len[k] = 0;
    }
    g->received = 0;
    for (int k = g->parts - 1; k >= 0; k--) {
        btask *c = btask_new(b, j, t->method, SM_TASK_CHUNK, 1);
        if (!c) { /* the parts queued so far fail with the image */
            drop_queued(j, g);
            bjob_task_failed(b, t, "out of memory");
            return;
        }
        c->images[0] = g->image;
        c->n_images = 1;
        c->part = k;
        c->gather = g;
        btask_push_front(&j->queue, c);
    }
    btask_free(t);
}

/* The output folder is full: image i of method m goes back to the queue
 * as a task of its own, and the job's tasks wait DISK_FULL_WAIT seconds
 * before they are leased again, until space is freed. */
static void disk_full(sm_broker *b, bjob *j, int m, size_t i)
{
    bjob_pause(b, j, "the disk is full");
    btask *again = btask_new(b, j, m, SM_TASK_IMAGES, 1);
    if (!again) {
        bjob_map_failed(b, j, i, m, "the disk is full, and out of memory");
        return;
    }
    again->images[0] = i;
    again->n_images = 1;
    btask_push(&j->queue, again);
}

typedef struct lost_ctx {
    sm_broker *b;
    const btask *t;
} lost_ctx;

/* A map of task t whose row the commit could not write: not done after
 * all; a full disk explains it again later, as in put_item. */
static void row_lost(void *u, const char *id, const char *method, const sm_err *why)
{
    (void)method; /* the task's */
    const lost_ctx *c = u;
    bjob *j = c->t->job;
    for (size_t k = 0; k < c->t->n_images; k++) {
        size_t i = c->t->images[k];
        if (strcmp(sm_dataset_id(j->ds, i), id) != 0)
            continue;
        j->maps_done--;
        if (sm_err_disk_full(why))
            disk_full(c->b, j, c->t->method, i);
        else
            bjob_map_failed(c->b, j, i, c->t->method, why->msg);
        return;
    }
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
            btask *f = btask_new(b, j, t->method, SM_TASK_STEP, 1);
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
    if (t->kind == SM_TASK_STEP && r->state) {
        next_round(b, t, r);
        return;
    }
    if (r->n_items != t->n_images) {
        bjob_task_failed(b, t, "a result with the wrong number of images");
        return;
    }
    /* the task's maps made durable together (explain/store.h) */
    sm_explain_store_begin(j->store);
    for (size_t k = 0; k < t->n_images; k++)
        if (put_item(b, j, t->method, t->images[k], &r->items[k]))
            disk_full(b, j, t->method, t->images[k]);
    lost_ctx lc = {b, t};
    sm_explain_store_commit(j->store, row_lost, &lc, NULL);
    if (t->kind == SM_TASK_STEP)
        bgather_close(j, t->gather);
    j->dirty = 1;
    btask_free(t);
    bjob_check_done(b, j);
}
