/* The broker's worker endpoint (SMW1, schemas/PROTOCOL.md section 5):
 * READY, RESULT, BLOB_GET, HEARTBEAT and DISCONNECT; leases by credit,
 * heartbeats, and the expiry of silent workers, whose tasks go back to
 * their jobs' queues. A worker's message that does not decode is dropped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "broker/blobs.h"
#include "broker/internal.h"
#include "broker/log.h"
#include "broker/path.h"
#include "util/file.h"

static void send_worker(sm_broker *b, bworker *w, const char *cmd,
                        const sm_msg_buf *buf)
{
    if (sm_msg_send(b->workers, w->id, w->id_len, SM_PROTO_WORKER, cmd,
                    buf->data, buf->len))
        sm_broker_warn("to worker %s: %s: %s", w->name, cmd, zmq_strerror(errno));
    w->last_sent = b->now;
}

static void send_worker_empty(sm_broker *b, const uint8_t *id, size_t id_len,
                              const char *cmd)
{
    sm_msg_buf buf = {0};
    if (sm_msg_encode_empty(&buf) == 0)
        sm_msg_send(b->workers, id, id_len, SM_PROTO_WORKER, cmd, buf.data,
                    buf.len);
    sm_msg_buf_free(&buf);
}

static bworker *find_worker(sm_broker *b, const uint8_t *id, size_t len)
{
    for (bworker *w = b->wk; w; w = w->next)
        if (w->id_len == len && memcmp(w->id, id, len) == 0)
            return w;
    return NULL;
}

/* A task of several images that a worker died holding goes back as one
 * task an image, each charged with the death: only the image that kills
 * workers is quarantined in the end, the others are explained. 0, or -1
 * when out of memory (t is then requeued whole). */
static int split_task(sm_broker *b, btask *t)
{
    bjob *j = t->job;
    btask **one = calloc(t->n_images, sizeof *one);
    size_t k = 0;
    for (; one && k < t->n_images; k++) {
        if (!(one[k] = btask_new(b, j, t->method, t->kind, 1)))
            break;
        one[k]->images[0] = t->images[k];
        one[k]->n_images = 1;
        one[k]->failures = t->failures;
    }
    if (!one || k < t->n_images) {
        for (size_t i = 0; one && i < k; i++)
            btask_free(one[i]);
        free(one);
        return -1;
    }
    while (k--) /* in image order at the head of the queue */
        btask_push_front(&j->queue, one[k]);
    free(one);
    btask_free(t);
    return 0;
}

/* Takes w's tasks back; `died`: the task it was running (the oldest it
 * holds: a worker runs its tasks in the order leased) counts a failure,
 * and one that has now killed max_task_failures workers is quarantined.
 * Those only waiting on the dead worker are not charged with its death. */
static void release_tasks(sm_broker *b, bworker *w, int died)
{
    int charged = 0;
    for (btask *t = b->leased.head, *nx; t; t = nx) {
        nx = t->next;
        if (t->lease != w)
            continue;
        btask_unlink(&b->leased, t);
        t->lease = NULL;
        bjob *j = t->job;
        int blame = died && !charged++;
        if (blame && t->kind == SM_TASK_IMAGES && t->n_images > 1 &&
            j->state == BJOB_RUNNING) {
            t->failures++;
            if (split_task(b, t) == 0)
                continue;
            btask_push_front(&j->queue, t);
        } else if (blame && ++t->failures >= b->cfg.max_task_failures) {
            char why[128];
            snprintf(why, sizeof why, "quarantined: %d workers died running it",
                     t->failures);
            bjob_task_failed(b, t, why);
        } else if (j->state == BJOB_RUNNING &&
                   !(t->kind == SM_TASK_CHUNK && t->gather->failed)) {
            btask_push_front(&j->queue, t);
        } else {
            btask_free(t);
            bjob_check_done(b, j);
        }
    }
    w->inflight = 0;
}

static void remove_worker(sm_broker *b, bworker *w, int died)
{
    release_tasks(b, w, died);
    for (bworker **p = &b->wk; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    free(w->name);
    free(w);
}

static double liveness(const sm_broker *b)
{
    return b->cfg.heartbeat_interval * b->cfg.heartbeat_liveness;
}

static void worker_result(sm_broker *b, bworker *w, const sm_msg_frames *f)
{
    sm_msg_doc *doc = NULL;
    sm_msg_result r;
    sm_err err;
    if (sm_msg_decode_result(f->body, f->len, &b->limits, &doc, &r, &err)) {
        sm_broker_warn("worker %s: dropped: %s", w->name, err.msg);
        return;
    }
    btask *t = b->leased.head;
    while (t && t->id != r.task)
        t = t->next;
    if (!t || t->lease != w) {
        /* done already, or leased again after this worker was given up */
        sm_broker_info(b, "worker %s: late result for task %llu ignored", w->name,
                      (unsigned long long)r.task);
    } else {
        btask_unlink(&b->leased, t);
        w->inflight--;
        bjob_note_worker(t->job, w->name);
        bjob_result(b, t, &r);
    }
    sm_msg_doc_destroy(&doc);
}

static void worker_blob(sm_broker *b, bworker *w, const sm_msg_frames *f)
{
    sm_msg_doc *doc = NULL;
    sm_msg_blob m;
    sm_msg_buf buf = {0};
    sm_err err;
    char path[BPATH_MAX];
    uint8_t *data = NULL;
    size_t len = 0;
    if (sm_msg_decode_blob(f->body, f->len, &b->limits, &doc, &m, &err)) {
        sm_broker_warn("worker %s: dropped: %s", w->name, err.msg);
    } else if (!sm_blobs_path(b->blob_dir, m.hash, path, sizeof path) ||
               !(data = sm_file_read(path, b->cfg.max_message - 1024, &len, &err))) {
        sm_msg_error e = {"unknown_blob", m.hash, "BLOB_GET"};
        if (sm_msg_encode_error(&e, &buf) == 0)
            send_worker(b, w, "ERROR", &buf);
    } else {
        sm_msg_blob r = {.hash = m.hash, .data = data, .len = len};
        if (sm_msg_encode_blob(&r, &buf) == 0)
            send_worker(b, w, "BLOB", &buf);
    }
    free(data);
    sm_msg_buf_free(&buf);
    sm_msg_doc_destroy(&doc);
}

void bworkers_on_message(sm_broker *b, const sm_msg_frames *f)
{
    if (strcmp(f->signature, SM_PROTO_WORKER) != 0)
        return; /* not a worker of ours: nothing to say to it */
    bworker *w = find_worker(b, f->identity, f->identity_len);
    const char *c = f->command;
    sm_err err;
    if (!strcmp(c, "READY")) {
        sm_msg_doc *doc = NULL;
        sm_msg_ready r;
        if (sm_msg_decode_ready(f->body, f->len, &b->limits, &doc, &r, &err)) {
            sm_broker_warn("a worker's READY dropped: %s", err.msg);
            return;
        }
        char *name = strdup(r.name ? r.name : "?");
        if (!name) {
            sm_broker_warn("a worker's READY dropped: out of memory");
            sm_msg_doc_destroy(&doc);
            return;
        }
        if (w) {
            release_tasks(b, w, 0); /* it started over */
        } else if ((w = calloc(1, sizeof *w))) {
            memcpy(w->id, f->identity, f->identity_len);
            w->id_len = f->identity_len;
            w->joined = b->now;
            w->next = b->wk;
            b->wk = w;
        }
        if (w) {
            free(w->name);
            w->name = name;
            w->capacity = r.capacity;
            w->expiry = b->now + liveness(b);
            w->heard = w->last_sent = b->now;
            sm_broker_info(b, "worker %s ready (capacity %u)", w->name, w->capacity);
        } else {
            free(name);
        }
        sm_msg_doc_destroy(&doc);
        return;
    }
    if (!w) {
        /* forgotten (silent too long) or from before a restart: it must
         * start over with READY; what it sends meanwhile (a late RESULT
         * included) is ignored */
        if (strcmp(c, "DISCONNECT") != 0) {
            sm_broker_info(b, "%s from an unknown worker ignored; told to "
                           "join again", c);
            send_worker_empty(b, f->identity, f->identity_len, "DISCONNECT");
        }
        return;
    }
    w->expiry = b->now + liveness(b);
    w->heard = b->now;
    if (!strcmp(c, "HEARTBEAT")) {
        return;
    } else if (!strcmp(c, "RESULT")) {
        worker_result(b, w, f);
    } else if (!strcmp(c, "BLOB_GET")) {
        worker_blob(b, w, f);
    } else if (!strcmp(c, "DISCONNECT")) {
        sm_broker_info(b, "worker %s left", w->name);
        remove_worker(b, w, 0);
    } else {
        sm_broker_warn("worker %s: unknown command '%s' dropped", w->name, c);
    }
}

/* The first task out longer than task_timeout, or NULL. */
static btask *overdue(sm_broker *b)
{
    for (btask *t = b->leased.head; b->cfg.task_timeout && t; t = t->next)
        if (b->now - t->leased_at > b->cfg.task_timeout)
            return t;
    return NULL;
}

void bworkers_expire(sm_broker *b)
{
    for (bworker *w = b->wk, *nx; w; w = nx) {
        nx = w->next;
        if (w->expiry < b->now) {
            sm_broker_fault(b, NULL, "worker %s silent for %.1f s: its %u task(s) "
                            "go back to the queue", w->name, liveness(b), w->inflight);
            remove_worker(b, w, 1);
        }
    }
    /* alive but not answering: as good as dead for its tasks */
    for (btask *t; (t = overdue(b));) {
        bworker *w = t->lease;
        sm_broker_fault(b, t->job->id, "worker %s held task %llu over task_timeout "
                        "(%d s): told to start over, its %u task(s) go back to the "
                        "queue", w->name, (unsigned long long)t->id,
                        b->cfg.task_timeout, w->inflight);
        send_worker_empty(b, w->id, w->id_len, "DISCONNECT");
        remove_worker(b, w, 1);
    }
}

void bworkers_heartbeats(sm_broker *b)
{
    sm_msg_buf buf = {0};
    if (sm_msg_encode_empty(&buf))
        return;
    for (bworker *w = b->wk; w; w = w->next)
        if (b->now - w->last_sent >= b->cfg.heartbeat_interval)
            send_worker(b, w, "HEARTBEAT", &buf);
    sm_msg_buf_free(&buf);
}

/* The worker with the most free credit (ties: the least recently served). */
static bworker *free_worker(sm_broker *b)
{
    bworker *best = NULL;
    for (bworker *w = b->wk; w; w = w->next) {
        if (w->inflight >= w->capacity)
            continue;
        uint32_t fw = w->capacity - w->inflight,
                 fb = best ? best->capacity - best->inflight : 0;
        if (!best || fw > fb || (fw == fb && w->served < best->served))
            best = w;
    }
    return best;
}

/* The next task, jobs taking turns. */
static btask *next_task(sm_broker *b)
{
    size_t n = 0;
    for (bjob *j = b->jobs; j; j = j->next)
        n++;
    for (size_t k = 0; k < n; k++) {
        bjob *j = b->rr ? b->rr : b->jobs;
        b->rr = j->next;
        if (j->paused_until > b->now)
            continue; /* its disk is full */
        bjob_plan(b, j);
        if (j->state == BJOB_RUNNING && j->queue.head) {
            btask *t = j->queue.head;
            btask_unlink(&j->queue, t);
            return t;
        }
        bjob_check_done(b, j);
    }
    return NULL;
}

void bworkers_dispatch(sm_broker *b)
{
    bworker *w;
    btask *t;
    while ((w = free_worker(b)) && (t = next_task(b))) {
        sm_msg_buf buf = {0};
        sm_err err;
        int rc = bjob_encode_task(b, t, &buf, &err);
        if (rc < 0) {
            bjob_task_failed(b, t, err.msg);
            continue;
        }
        if (rc > 0) { /* its images failed one by one */
            bjob *j = t->job;
            btask_free(t);
            bjob_check_done(b, j);
            continue;
        }
        t->lease = w;
        t->leased_at = b->now;
        btask_push(&b->leased, t);
        w->inflight++;
        w->served = ++b->served;
        send_worker(b, w, "TASK", &buf);
        sm_msg_buf_free(&buf);
    }
}

