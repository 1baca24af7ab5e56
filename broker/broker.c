/* The broker's loop: two ROUTER sockets (clients, workers), one thread.
 * Each turn reads what is waiting, expires silent workers (their tasks go
 * back to the front of their jobs' queues), sends heartbeats, leases
 * queued tasks to workers with credit, and reports progress to watchers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>
#include <zmq.h>

#include "broker/blobs.h"
#include "broker/internal.h"
#include "util/file.h"

/* A FETCH reply carries files up to about this many bytes. */
#define FETCH_BYTES ((size_t)8 << 20)
/* Progress events of a job go out at most this often (seconds). */
#define EVENT_EVERY 0.25

double sm_broker_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void vlog(const char *fmt, va_list ap)
{
    fprintf(stderr, "salmap-broker: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void sm_broker_info(const sm_broker *b, const char *fmt, ...)
{
    if (b->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void sm_broker_endpoint(const sm_broker *b, int which, char *buf, size_t cap)
{
    size_t len = cap;
    if (zmq_getsockopt(which ? b->workers : b->clients, ZMQ_LAST_ENDPOINT, buf,
                       &len) != 0 && cap)
        buf[0] = '\0';
}

void sm_broker_set_fetch_bytes(sm_broker *b, size_t bytes)
{
    b->fetch_bytes = bytes;
}

void sm_broker_set_quiet(sm_broker *b, int quiet)
{
    b->quiet = quiet;
}

void sm_broker_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

/* ---- replies ----------------------------------------------------------- */

static void send_client(sm_broker *b, const sm_msg_frames *f, const char *cmd,
                        const sm_msg_buf *buf)
{
    if (sm_msg_send(b->clients, f->identity, f->identity_len, SM_PROTO_CLIENT,
                    cmd, buf->data, buf->len))
        sm_broker_warn("reply %s: %s", cmd, zmq_strerror(errno));
}

static void reply_error(sm_broker *b, const sm_msg_frames *f, const char *code,
                        const char *message)
{
    sm_msg_buf buf = {0};
    sm_msg_error e = {code, message, f->command[0] ? f->command : NULL};
    if (sm_msg_encode_error(&e, &buf) == 0)
        send_client(b, f, "ERROR", &buf);
    sm_msg_buf_free(&buf);
}

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

/* ---- jobs -------------------------------------------------------------- */

static bjob *find_job(sm_broker *b, const char *id)
{
    for (bjob *j = b->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

static void append_job(sm_broker *b, bjob *j)
{
    bjob **p = &b->jobs;
    while (*p)
        p = &(*p)->next;
    *p = j;
}

static void send_event(sm_broker *b, bjob *j)
{
    sm_msg_status st;
    sm_msg_buf buf = {0};
    bjob_status(j, b->now, &st);
    if (sm_msg_encode_status(&st, &buf) == 0)
        for (bwatch *w = b->watchers; w; w = w->next)
            if (w->job == j)
                sm_msg_send(b->clients, w->id, w->id_len, SM_PROTO_CLIENT,
                            "EVENT", buf.data, buf.len);
    sm_msg_buf_free(&buf);
}

static int finished(const bjob *j)
{
    return j->state == BJOB_DONE || j->state == BJOB_FAILED ||
           j->state == BJOB_CANCELLED;
}

static void events(sm_broker *b)
{
    for (bjob *j = b->jobs; j; j = j->next) {
        if (!j->dirty || (!finished(j) && b->now - j->last_event < EVENT_EVERY))
            continue;
        send_event(b, j);
        j->dirty = 0;
        j->last_event = b->now;
        if (finished(j))
            for (bwatch **p = &b->watchers; *p;) {
                bwatch *w = *p;
                if (w->job == j) {
                    *p = w->next;
                    free(w);
                } else {
                    p = &w->next;
                }
            }
    }
}

/* ---- client commands ---------------------------------------------------- */

static void client_blob(sm_broker *b, const sm_msg_frames *f, int put)
{
    sm_msg_doc *doc = NULL;
    sm_msg_blob m;
    sm_msg_buf buf = {0};
    sm_err err;
    char path[4096];
    if (sm_msg_decode_blob(f->body, f->len, &b->limits, &doc, &m, &err)) {
        reply_error(b, f, "invalid", err.msg);
    } else if (put && !m.data) {
        reply_error(b, f, "invalid", "PUT: data: missing");
    } else if (put && sm_blobs_put(b->blob_dir, m.hash, m.data, m.len, &err)) {
        reply_error(b, f, "invalid", err.msg);
    } else {
        sm_msg_blob r = {.hash = m.hash,
                         .have = sm_blobs_path(b->blob_dir, m.hash, path, sizeof path)};
        if (sm_msg_encode_blob(&r, &buf) == 0)
            send_client(b, f, put ? "PUT" : "HAS", &buf);
    }
    sm_msg_buf_free(&buf);
    sm_msg_doc_destroy(&doc);
}

static void client_submit(sm_broker *b, const sm_msg_frames *f)
{
    sm_msg_doc *doc = NULL;
    sm_msg_job m;
    sm_msg_buf buf = {0};
    sm_err err;
    char path[4096], id[40];
    if (sm_msg_decode_job(f->body, f->len, &b->limits, &doc, &m, &err)) {
        reply_error(b, f, "invalid", err.msg);
        goto out;
    }
    if (!sm_blobs_path(b->blob_dir, m.model, path, sizeof path)) {
        reply_error(b, f, "need_blob", m.model);
        goto out;
    }
    for (bjob *j = b->jobs; j; j = j->next)
        if (!finished(j) && j->spec.out && strcmp(j->spec.out, m.out) == 0) {
            snprintf(err.msg, sizeof err.msg, "out '%s': job %s is writing "
                     "there", m.out, j->id);
            reply_error(b, f, "rejected", err.msg);
            goto out;
        }
    uint8_t rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    snprintf(id, sizeof id, "j%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    bjob *j = bjob_new(b, id, f->body, f->len, 0, &err);
    if (!j) {
        reply_error(b, f, "rejected", err.msg);
        goto out;
    }
    if (sm_journal_add(b->journal, id, f->body, f->len, &err)) {
        bjob_free(&j);
        reply_error(b, f, "busy", err.msg);
        goto out;
    }
    bjob_set_state(b, j, BJOB_RUNNING, NULL);
    append_job(b, j);
    sm_broker_info(b, "job %s: %zu images x %zu methods into %s", id, j->count,
                  j->spec.n_methods, j->spec.out);
    if (sm_msg_encode_job_id(id, &buf) == 0)
        send_client(b, f, "SUBMITTED", &buf);
    bjob_check_done(b, j); /* nothing to do (an all-done resume) */
out:
    sm_msg_buf_free(&buf);
    sm_msg_doc_destroy(&doc);
}

/* The job a {job} request names, or NULL after an ERROR reply. */
static bjob *request_job(sm_broker *b, const sm_msg_frames *f)
{
    sm_msg_doc *doc = NULL;
    const char *id;
    sm_err err;
    bjob *j = NULL;
    if (sm_msg_decode_job_id(f->body, f->len, &b->limits, &doc, &id, &err))
        reply_error(b, f, "invalid", err.msg);
    else if (!(j = find_job(b, id)))
        reply_error(b, f, "unknown_job", id);
    sm_msg_doc_destroy(&doc);
    return j;
}

static void client_status(sm_broker *b, const sm_msg_frames *f)
{
    bjob *j = request_job(b, f);
    if (!j)
        return;
    sm_msg_status st;
    sm_msg_buf buf = {0};
    bjob_status(j, b->now, &st);
    if (sm_msg_encode_status(&st, &buf) == 0)
        send_client(b, f, "STATUS", &buf);
    sm_msg_buf_free(&buf);
}

static void client_list(sm_broker *b, const sm_msg_frames *f)
{
    sm_err err;
    if (sm_msg_decode_empty(f->body, f->len, &b->limits, &err)) {
        reply_error(b, f, "invalid", err.msg);
        return;
    }
    size_t n = 0;
    for (bjob *j = b->jobs; j; j = j->next)
        n++;
    sm_msg_list l = {calloc(n ? n : 1, sizeof(sm_msg_status)), n};
    sm_msg_buf buf = {0};
    if (l.jobs) {
        size_t k = 0;
        for (bjob *j = b->jobs; j; j = j->next)
            bjob_status(j, b->now, &l.jobs[k++]);
        if (sm_msg_encode_list(&l, &buf) == 0)
            send_client(b, f, "LIST", &buf);
    }
    free(l.jobs);
    sm_msg_buf_free(&buf);
}

static void client_watch(sm_broker *b, const sm_msg_frames *f)
{
    bjob *j = request_job(b, f);
    if (!j)
        return;
    bwatch *w = calloc(1, sizeof *w);
    if (!w)
        return;
    memcpy(w->id, f->identity, f->identity_len);
    w->id_len = f->identity_len;
    w->job = j;
    w->next = b->watchers;
    b->watchers = w;
    j->dirty = 1; /* the current state goes out now */
    j->last_event = 0;
}

static void client_cancel(sm_broker *b, const sm_msg_frames *f)
{
    bjob *j = request_job(b, f);
    if (!j)
        return;
    if (!finished(j)) {
        btask *t;
        while ((t = j->queue.head)) {
            btask_unlink(&j->queue, t);
            btask_free(t);
        }
        bjob_finish(b, j, BJOB_CANCELLED); /* the index of what is done */
    }
    sm_msg_buf buf = {0};
    if (sm_msg_encode_job_id(j->id, &buf) == 0)
        send_client(b, f, "CANCELLED", &buf);
    sm_msg_buf_free(&buf);
}

/* A FILES reply being filled. */
typedef struct fetch_page {
    const bjob *j;
    size_t max_bytes, bytes;
    sm_msg_files *rep;
    uint8_t **data;
    char (*rel)[512];
    size_t cap;
} fetch_page;

/* Adds the file rel (of the job's out) to the reply when it fits (the
 * first always does): 0 to go on, 1 when the reply is full. */
static int fetch_add(fetch_page *p, const char *rel, size_t max_file)
{
    sm_msg_files *rep = p->rep;
    char path[4096];
    sm_err err;
    size_t len;
    if (rep->n == p->cap)
        return 1;
    snprintf(path, sizeof path, "%s/%s", p->j->spec.out, rel);
    uint8_t *data = sm_file_read(path, max_file, &len, &err);
    if (!data) { /* unreadable: skipped, as the protocol says */
        sm_broker_warn("fetch %s: %s", p->j->id, err.msg);
        return 0;
    }
    if (rep->n && p->bytes + len > p->max_bytes) {
        free(data);
        return 1;
    }
    snprintf(p->rel[rep->n], sizeof p->rel[rep->n], "%s", rel);
    p->data[rep->n] = data;
    rep->files[rep->n] = (sm_msg_file){p->rel[rep->n], data, len};
    rep->n++;
    p->bytes += len;
    return 0;
}

static void client_fetch(sm_broker *b, const sm_msg_frames *f)
{
    sm_msg_doc *doc = NULL;
    sm_msg_files req;
    sm_err err;
    if (sm_msg_decode_files(f->body, f->len, &b->limits, &doc, &req, &err)) {
        reply_error(b, f, "invalid", err.msg);
        sm_msg_doc_destroy(&doc);
        return;
    }
    bjob *j = find_job(b, req.job);
    if (!j || !j->store || !j->ds) {
        reply_error(b, f, "unknown_job", req.job);
        sm_msg_doc_destroy(&doc);
        return;
    }
    enum { MAX_FILES = 4096 };
    sm_msg_files rep = {.job = j->id, .files = calloc(MAX_FILES, sizeof(sm_msg_file)),
                        .next = -1};
    fetch_page p = {j, b->fetch_bytes, 0, &rep, calloc(MAX_FILES, sizeof(uint8_t *)),
                    calloc(MAX_FILES, sizeof *p.rel), MAX_FILES};
    size_t max_file = b->cfg.max_message / 2;
    sm_msg_buf buf = {0};
    if (!rep.files || !p.data || !p.rel) {
        reply_error(b, f, "busy", "out of memory");
        goto out;
    }
    /* one walk over the job's files: index.csv is file 0, then each
     * complete (image, method) in index order */
    int64_t k = 0, from = req.from < 0 ? 0 : req.from;
    int full = 0;
    if (from == 0)
        full = fetch_add(&p, "index.csv", max_file);
    k = 1;
    for (size_t i = 0; i < j->count && !full; i++)
        for (size_t m = 0; m < j->spec.n_methods && !full; m++) {
            const char *id = sm_dataset_id(j->ds, i), *method = j->spec.methods[m];
            if (!sm_explain_store_done(j->store, id, method))
                continue;
            if (k++ < from)
                continue;
            char rel[512];
            snprintf(rel, sizeof rel, "maps/%s/%s.npy", id, method);
            if ((full = fetch_add(&p, rel, max_file)))
                k--;
        }
    rep.next = full ? k : -1; /* > from: a reply holds at least one file */
    if (sm_msg_encode_files(&rep, &buf) == 0)
        send_client(b, f, "FILES", &buf);
out:
    for (size_t i = 0; p.data && i < rep.n; i++)
        free(p.data[i]);
    free(rep.files);
    free(p.data);
    free(p.rel);
    sm_msg_buf_free(&buf);
    sm_msg_doc_destroy(&doc);
}

static void on_client(sm_broker *b, const sm_msg_frames *f)
{
    if (strcmp(f->signature, SM_PROTO_CLIENT) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "protocol '%s': this broker speaks %s",
                 f->signature, SM_PROTO_CLIENT);
        reply_error(b, f, "invalid", msg);
        return;
    }
    const char *c = f->command;
    if (!strcmp(c, "HAS"))
        client_blob(b, f, 0);
    else if (!strcmp(c, "PUT"))
        client_blob(b, f, 1);
    else if (!strcmp(c, "SUBMIT"))
        client_submit(b, f);
    else if (!strcmp(c, "STATUS"))
        client_status(b, f);
    else if (!strcmp(c, "LIST"))
        client_list(b, f);
    else if (!strcmp(c, "WATCH"))
        client_watch(b, f);
    else if (!strcmp(c, "CANCEL"))
        client_cancel(b, f);
    else if (!strcmp(c, "FETCH"))
        client_fetch(b, f);
    else
        reply_error(b, f, "unknown_command", c);
}

/* ---- workers ------------------------------------------------------------ */

static bworker *find_worker(sm_broker *b, const uint8_t *id, size_t len)
{
    for (bworker *w = b->wk; w; w = w->next)
        if (w->id_len == len && memcmp(w->id, id, len) == 0)
            return w;
    return NULL;
}

/* Takes w's tasks back; `died`: they count a failure each, and a task
 * that has now killed max_task_failures workers is quarantined. */
static void release_tasks(sm_broker *b, bworker *w, int died)
{
    for (btask *t = b->leased.head, *nx; t; t = nx) {
        nx = t->next;
        if (t->lease != w)
            continue;
        btask_unlink(&b->leased, t);
        t->lease = NULL;
        bjob *j = t->job;
        if (died && ++t->failures >= b->cfg.max_task_failures) {
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
    char path[4096];
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

static void on_worker(sm_broker *b, const sm_msg_frames *f)
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
        if (w) {
            release_tasks(b, w, 0); /* it started over */
        } else if ((w = calloc(1, sizeof *w))) {
            memcpy(w->id, f->identity, f->identity_len);
            w->id_len = f->identity_len;
            w->next = b->wk;
            b->wk = w;
        }
        if (w) {
            snprintf(w->name, sizeof w->name, "%s", r.name ? r.name : "?");
            w->capacity = r.capacity;
            w->expiry = b->now + liveness(b);
            w->last_sent = b->now;
            sm_broker_info(b, "worker %s ready (capacity %u)", w->name, w->capacity);
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

static void expire_workers(sm_broker *b)
{
    for (bworker *w = b->wk, *nx; w; w = nx) {
        nx = w->next;
        if (w->expiry < b->now) {
            sm_broker_warn("worker %s silent for %.1f s: its %u task(s) go back "
                          "to the queue", w->name, liveness(b), w->inflight);
            remove_worker(b, w, 1);
        }
    }
}

static void heartbeats(sm_broker *b)
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

static void dispatch(sm_broker *b)
{
    bworker *w;
    btask *t;
    while ((w = free_worker(b)) && (t = next_task(b))) {
        sm_msg_buf buf = {0};
        sm_err err;
        if (bjob_encode_task(b, t, &buf, &err)) {
            bjob_task_failed(b, t, err.msg);
            continue;
        }
        t->lease = w;
        btask_push(&b->leased, t);
        w->inflight++;
        w->served = ++b->served;
        send_worker(b, w, "TASK", &buf);
        sm_msg_buf_free(&buf);
    }
}

/* ---- life --------------------------------------------------------------- */

static void *router(sm_broker *b, const char *endpoint, sm_err *err)
{
    void *s = zmq_socket(b->ctx, ZMQ_ROUTER);
    int64_t max = (int64_t)b->cfg.max_message;
    int linger = 100;
    if (s && b->zap && sm_curve_server(s, b->curve_secret, err)) {
        zmq_close(s);
        return NULL;
    }
    if (!s || zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max, sizeof max) ||
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_bind(s, endpoint)) {
        sm_err_set(err, "bind %s: %s", endpoint, zmq_strerror(errno));
        if (s)
            zmq_close(s);
        return NULL;
    }
    return s;
}

/* A journal row: unfinished jobs resume; finished ones are listed. */
static int resume_row(const sm_journal_row *r, void *u)
{
    sm_broker *b = u;
    sm_err err;
    int live = !strcmp(r->state, "queued") || !strcmp(r->state, "running");
    bjob *j;
    if (live) {
        j = bjob_new(b, r->id, r->body, r->len, 1, &err);
        if (j && j->state == BJOB_FAILED)
            bjob_set_state(b, j, BJOB_FAILED, j->error);
        else if (j)
            sm_broker_info(b, "job %s resumed: %zu images into %s", j->id,
                          j->count, j->spec.out);
    } else {
        j = calloc(1, sizeof *j);
        if (j) {
            snprintf(j->id, sizeof j->id, "%s", r->id);
            for (int s = BJOB_QUEUED; s <= BJOB_CANCELLED; s++)
                if (!strcmp(r->state, bjob_state_name((bjob_state)s)))
                    j->state = (bjob_state)s;
            j->error = r->error ? strdup(r->error) : NULL;
            j->maps_done = r->maps_done;
            j->maps_failed = r->maps_failed;
            j->t0 = b->now;
            /* the spec for LIST (name, out); a row that no longer decodes
             * is listed without */
            if (sm_msg_decode_job(r->body, r->len, &b->limits, &j->doc,
                                  &j->spec, &err))
                memset(&j->spec, 0, sizeof j->spec);
        }
    }
    if (!j)
        return sm_err_set(NULL, "out of memory");
    append_job(b, j);
    return 0;
}

sm_broker *sm_broker_new(void *ctx, const sm_broker_config *cfg, sm_err *err)
{
    sm_broker *b = calloc(1, sizeof *b);
    if (!b) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    if (sodium_init() < 0) {
        free(b);
        sm_err_set(err, "libsodium does not start");
        return NULL;
    }
    b->ctx = ctx;
    b->cfg = *cfg;
    b->fetch_bytes = FETCH_BYTES;
    b->now = sm_broker_now();
    sm_msg_limits_default(&b->limits);
    b->limits.max_body = cfg->max_message;
    uint32_t e;
    randombytes_buf(&e, sizeof e);
    b->epoch = (uint64_t)e << 32; /* task ids of an earlier run never match */
    char journal[2100];
    const char *jpath = NULL;
    if (cfg->state_dir[0]) {
        snprintf(b->state_dir, sizeof b->state_dir, "%.1500s", cfg->state_dir);
        snprintf(journal, sizeof journal, "%s/journal.db", b->state_dir);
        jpath = journal;
        if (sm_file_mkdirs(b->state_dir, err))
            goto fail;
    } else {
        /* nothing to keep: blobs and inline images in a temporary folder */
        const char *tmp = getenv("TMPDIR");
        snprintf(b->state_dir, sizeof b->state_dir, "%.1500s/salmap-broker-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(b->state_dir)) {
            sm_err_set(err, "%s: %s", b->state_dir, strerror(errno));
            goto fail;
        }
        b->own_state = 1;
    }
    snprintf(b->blob_dir, sizeof b->blob_dir, "%s/blobs", b->state_dir);
    if (cfg->curve_secret_key[0]) {
        /* CURVE without an allowlist would admit anyone who knows the
         * broker's public key: refused (DESIGN.md, security model) */
        if (!cfg->curve_allow_dir[0]) {
            sm_err_set(err, "curve_secret_key needs curve_allow_dir: CURVE "
                       "without an allowlist authenticates nobody");
            goto fail;
        }
        if (sm_curve_read_key(cfg->curve_secret_key, b->curve_secret, err) ||
            !(b->zap = sm_zap_new(ctx, cfg->curve_allow_dir, err)))
            goto fail;
    }
    if (!(b->journal = sm_journal_open(jpath, err)) ||
        !(b->clients = router(b, cfg->client_endpoint, err)) ||
        !(b->workers = router(b, cfg->worker_endpoint, err)) ||
        sm_journal_each(b->journal, resume_row, b, err))
        goto fail;
    return b;
fail:
    sm_broker_destroy(&b);
    return NULL;
}

void sm_broker_destroy(sm_broker **bp)
{
    sm_broker *b = *bp;
    if (!b)
        return;
    btask *t;
    while ((t = b->leased.head)) {
        btask_unlink(&b->leased, t);
        btask_free(t);
    }
    while (b->wk) {
        bworker *w = b->wk;
        b->wk = w->next;
        free(w);
    }
    while (b->watchers) {
        bwatch *w = b->watchers;
        b->watchers = w->next;
        free(w);
    }
    while (b->jobs) {
        bjob *j = b->jobs;
        b->jobs = j->next;
        bjob_free(&j);
    }
    if (b->clients)
        zmq_close(b->clients);
    if (b->workers)
        zmq_close(b->workers);
    sm_zap_destroy(&b->zap);
    sm_journal_destroy(&b->journal);
    if (b->own_state)
        sm_file_remove_tree(b->state_dir);
    free(b);
    *bp = NULL;
}

/* Reads up to max messages waiting on sock. -1 when the socket fails. */
static int drain(sm_broker *b, void *sock, int max,
                 void (*on)(sm_broker *, const sm_msg_frames *), sm_err *err)
{
    for (int k = 0; k < max; k++) {
        sm_msg_frames f;
        sm_err ferr;
        if (sm_msg_recv(sock, 1, ZMQ_DONTWAIT, &f, &ferr)) {
            if (errno == EAGAIN)
                return 0;
            if (errno == ETERM || errno == ENOTSOCK)
                return sm_err_set(err, "socket closed");
            /* a malformed message: read whole and dropped */
            sm_broker_warn("dropped: %s", ferr.msg);
            continue;
        }
        b->now = sm_broker_now();
        on(b, &f);
        sm_msg_frames_free(&f);
    }
    return 0;
}

int sm_broker_run(sm_broker *b, atomic_int *stop, sm_err *err)
{
    zmq_pollitem_t items[2] = {{b->clients, 0, ZMQ_POLLIN, 0},
                               {b->workers, 0, ZMQ_POLLIN, 0}};
    long wait = (long)(b->cfg.heartbeat_interval * 1000 / 4);
    if (wait > 100)
        wait = 100;
    if (wait < 1)
        wait = 1;
    while (!atomic_load(stop)) {
        if (zmq_poll(items, 2, wait) < 0) {
            if (errno == EINTR)
                continue;
            return sm_err_set(err, "poll: %s", zmq_strerror(errno));
        }
        b->now = sm_broker_now();
        if (((items[1].revents & ZMQ_POLLIN) &&
             drain(b, b->workers, 256, on_worker, err)) ||
            ((items[0].revents & ZMQ_POLLIN) &&
             drain(b, b->clients, 64, on_client, err)))
            return -1;
        b->now = sm_broker_now();
        expire_workers(b);
        heartbeats(b);
        dispatch(b);
        events(b);
    }
    return 0;
}
