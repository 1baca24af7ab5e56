/* The broker's client endpoint (SMC1, schemas/PROTOCOL.md section 4):
 * blobs, SUBMIT, STATUS, LIST, WATCH and its EVENTs, CANCEL, FETCH. A
 * request that does not decode is answered ERROR; the broker goes on. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "broker/blobs.h"
#include "broker/internal.h"
#include "broker/log.h"
#include "broker/path.h"
#include "util/file.h"

/* Progress events of a job go out at most this often (seconds). */
#define EVENT_EVERY 0.25

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

void bclients_events(sm_broker *b)
{
    for (bjob *j = b->jobs; j; j = j->next) {
        if (!j->dirty || (!bjob_ended(j) && b->now - j->last_event < EVENT_EVERY))
            continue;
        send_event(b, j);
        j->dirty = 0;
        j->last_event = b->now;
        if (bjob_ended(j))
            bclients_unwatch(b, j);
    }
}

void bclients_unwatch(sm_broker *b, const bjob *j)
{
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

static void client_blob(sm_broker *b, const sm_msg_frames *f, int put)
{
    sm_msg_doc *doc = NULL;
    sm_msg_blob m;
    sm_msg_buf buf = {0};
    sm_err err;
    char path[BPATH_MAX];
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
    char path[BPATH_MAX], id[40];
    if (sm_msg_decode_job(f->body, f->len, &b->limits, &doc, &m, &err)) {
        reply_error(b, f, "invalid", err.msg);
        goto out;
    }
    if (!sm_blobs_path(b->blob_dir, m.model, path, sizeof path)) {
        reply_error(b, f, "need_blob", m.model);
        goto out;
    }
    for (size_t k = 0; k < m.n_models; k++)
        if (!sm_blobs_path(b->blob_dir, m.model_hashes[k], path, sizeof path)) {
            reply_error(b, f, "need_blob", m.model_hashes[k]);
            goto out;
        }
    for (bjob *j = b->jobs; j; j = j->next)
        if (!bjob_ended(j) && j->spec.out && strcmp(j->spec.out, m.out) == 0) {
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
    bjob_append(b, j);
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
    else if (!(j = bjob_find(b, id)))
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

/* WORKERS: who works on what, and the latest faults (the status page). */
static void client_workers(sm_broker *b, const sm_msg_frames *f)
{
    static const char *const kinds[] = {"images", "chunk", "step"};
    sm_err err;
    if (sm_msg_decode_empty(f->body, f->len, &b->limits, &err)) {
        reply_error(b, f, "invalid", err.msg);
        return;
    }
    size_t n = 0;
    for (bworker *w = b->wk; w; w = w->next)
        n++;
    sm_msg_workers m = {calloc(n ? n : 1, sizeof *m.workers), n,
                        calloc(BFAULTS, sizeof *m.faults), b->n_faults};
    sm_msg_lease *leases = calloc(b->leased.n ? b->leased.n : 1, sizeof *leases);
    sm_msg_buf buf = {0};
    if (!m.workers || !m.faults || !leases) {
        reply_error(b, f, "busy", "out of memory");
        goto out;
    }
    size_t k = 0, used = 0;
    for (bworker *w = b->wk; w; w = w->next, k++) {
        sm_msg_worker *o = &m.workers[k];
        *o = (sm_msg_worker){w->name, w->capacity, w->inflight, w->served,
                             b->now - w->heard, b->now - w->joined,
                             leases + used, 0};
        for (btask *t = b->leased.head; t && used < b->leased.n; t = t->next)
            if (t->lease == w)
                leases[used++] = (sm_msg_lease){
                    t->job->id, t->job->spec.methods[t->method], kinds[t->kind],
                    sm_dataset_id(t->job->ds, t->images[0]), t->n_images,
                    (uint64_t)t->failures, b->now - t->leased_at};
        o->n_tasks = (size_t)(leases + used - o->tasks);
    }
    /* oldest first: the ring starts at fault_at once it is full */
    size_t start = b->n_faults < BFAULTS ? 0 : b->fault_at;
    for (size_t i = 0; i < b->n_faults; i++) {
        const bfault *q = &b->faults[(start + i) % BFAULTS];
        m.faults[i] = (sm_msg_fault){q->at, q->job,
                                     q->message ? q->message : "(out of memory)"};
    }
    if (sm_msg_encode_workers(&m, &buf) == 0)
        send_client(b, f, "WORKERS", &buf);
    else
        reply_error(b, f, "busy", "the WORKERS reply does not encode");
out:
    free(m.workers);
    free(m.faults);
    free(leases);
    sm_msg_buf_free(&buf);
}

static void client_watch(sm_broker *b, const sm_msg_frames *f)
{
    bjob *j = request_job(b, f);
    if (!j)
        return;
    /* one watcher a client and job, and a bound on all: a client can
     * neither grow the list by repeating WATCH nor by many identities
     * (a client that went away is only forgotten when the job ends) */
    size_t n = 0;
    for (bwatch *w = b->watchers; w; w = w->next, n++)
        if (w->job == j && w->id_len == f->identity_len &&
            !memcmp(w->id, f->identity, f->identity_len)) {
            j->dirty = 1; /* the current state goes out now */
            j->last_event = 0;
            return;
        }
    if (n >= BWATCHERS_MAX) {
        char why[96];
        snprintf(why, sizeof why, "%d clients watch jobs already; poll with STATUS",
                 BWATCHERS_MAX);
        reply_error(b, f, "busy", why);
        return;
    }
    bwatch *w = calloc(1, sizeof *w);
    if (!w) {
        reply_error(b, f, "busy", "out of memory");
        return;
    }
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
    if (!bjob_ended(j) && !j->finish) { /* finishing: its maps are done */
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

static void client_delete(sm_broker *b, const sm_msg_frames *f)
{
    bjob *j = request_job(b, f);
    if (!j)
        return;
    char id[256];
    snprintf(id, sizeof id, "%s", j->id);
    sm_err err;
    sm_msg_buf buf = {0};
    if (bjob_delete(b, j, &err))
        reply_error(b, f, bjob_ended(j) ? "busy" : "invalid", err.msg);
    else if (sm_msg_encode_job_id(id, &buf) == 0)
        send_client(b, f, "DELETED", &buf);
    sm_msg_buf_free(&buf);
}

/* A FILES reply being filled. */
typedef struct fetch_page {
    const bjob *j;
    size_t max_bytes, bytes;
    sm_msg_files *rep;
    uint8_t **data;
    char **rel;       /* the files' names (any length) */
    size_t cap;
} fetch_page;

/* Adds the files rel[0..n) (of the job's out: one entry, index.csv or
 * the files of one map) to the reply when they fit together (the first
 * entry always does): 0 to go on, 1 when the reply is full. An unreadable
 * file is skipped, as the protocol says. */
static int fetch_add(fetch_page *p, char *const *rel, size_t n,
                     size_t max_file)
{
    sm_msg_files *rep = p->rep;
    size_t at = rep->n, bytes = 0;
    if (at == 0 && n > p->cap) { /* never stall a client: what fits */
        sm_broker_warn("fetch %s: %s: %zu files, %zu sent", p->j->id, rel[0],
                       n, p->cap);
        n = p->cap;
    }
    if (at + n > p->cap)
        return 1;
    for (size_t i = 0; i < n; i++) {
        char path[BPATH_MAX];
        sm_err err;
        size_t len = 0;
        uint8_t *data = NULL;
        if (bpath(path, &err, rel[i], "%s/%s", p->j->spec.out, rel[i]) == 0)
            data = sm_file_read(path, max_file, &len, &err);
        if (!data) {
            sm_broker_warn("fetch %s: %s", p->j->id, err.msg);
            continue;
        }
        if (!(p->rel[rep->n] = strdup(rel[i]))) {
            sm_broker_warn("fetch %s: %s: out of memory", p->j->id, rel[i]);
            free(data);
            continue;
        }
        p->data[rep->n] = data;
        rep->files[rep->n] = (sm_msg_file){p->rel[rep->n], data, len};
        rep->n++;
        bytes += len;
    }
    if (at && p->bytes + bytes > p->max_bytes) { /* the entry waits */
        while (rep->n > at) {
            rep->n--;
            free(p->data[rep->n]);
            free(p->rel[rep->n]);
        }
        return 1;
    }
    p->bytes += bytes;
    return 0;
}

/* 1 when m is the first of the job's methods complete for image id: its
 * entry carries the image's input.png. */
static int first_done(const bjob *j, const char *id, size_t m)
{
    for (size_t k = 0; k < m; k++)
        if (sm_explain_store_done(j->store, id, j->spec.methods[k]))
            return 0;
    return 1;
}

/* The files of (id, method m), input.png too when first (see first_done);
 * as sm_explain_store_files. */
static int entry_files(const bjob *j, const char *id, size_t m, char ***rel,
                       size_t *n, sm_err *err)
{
    if (sm_explain_store_files(j->store, id, j->spec.methods[m], rel, n, err))
        return -1;
    char path[BPATH_MAX], *in = NULL, **grown = NULL;
    if (!first_done(j, id, m) ||
        bpath(path, err, id, "%s/maps/%s/input.png", j->spec.out, id) ||
        access(path, R_OK))
        return 0;
    if (!(in = bpath_heap("maps/%s/input.png", id)) ||
        !(grown = realloc(*rel, sizeof *grown * (*n + 1)))) {
        free(in);
        return 0; /* a file less, the PNG of the input: not worth failing */
    }
    *rel = grown;
    grown[(*n)++] = in;
    return 0;
}

static void free_rel(char **rel, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(rel[i]);
    free(rel);
}

/* 1 when path names one of j's output files that FETCH lists. */
static int job_lists(const bjob *j, const char *path)
{
    if (!strcmp(path, "index.csv"))
        return 1;
    const char *slash = strrchr(path, '/');
    if (strncmp(path, "maps/", 5) || !slash || slash - path <= 5)
        return 0;
    char id[BPATH_MAX];
    size_t idlen = (size_t)(slash - path - 5);
    if (idlen >= sizeof id)
        return 0;
    memcpy(id, path + 5, idlen);
    id[idlen] = '\0';
    int found = 0;
    for (size_t m = 0; m < j->spec.n_methods && !found; m++) {
        char **rel;
        size_t n;
        sm_err err;
        if (!sm_explain_store_done(j->store, id, j->spec.methods[m]) ||
            entry_files(j, id, m, &rel, &n, &err))
            continue;
        for (size_t i = 0; i < n && !found; i++)
            found = !strcmp(rel[i], path);
        free_rel(rel, n);
    }
    return found;
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
    bjob *j = bjob_find(b, req.job);
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
    if (req.path) { /* one file, named */
        if (!job_lists(j, req.path)) {
            char msg[BPATH_MAX + 64];
            snprintf(msg, sizeof msg, "job %s has no file '%s'", j->id, req.path);
            reply_error(b, f, "not_found", msg);
            goto out;
        }
        fetch_add(&p, (char *[]){(char *)req.path}, 1, max_file);
        if (rep.n == 0) {
            reply_error(b, f, "not_found", req.path);
            goto out;
        }
        if (sm_msg_encode_files(&rep, &buf) == 0)
            send_client(b, f, "FILES", &buf);
        goto out;
    }
    /* one walk over the job's files: index.csv is file 0, then each
     * complete (image, method) in index order */
    int64_t k = 0, from = req.from < 0 ? 0 : req.from;
    int full = 0;
    if (from == 0)
        full = fetch_add(&p, (char *[]){"index.csv"}, 1, max_file);
    k = 1;
    for (size_t i = 0; i < j->count && !full; i++)
        for (size_t m = 0; m < j->spec.n_methods && !full; m++) {
            const char *id = sm_dataset_id(j->ds, i), *method = j->spec.methods[m];
            if (!sm_explain_store_done(j->store, id, method))
                continue;
            if (k++ < from)
                continue;
            char **rel;
            size_t n;
            if (entry_files(j, id, m, &rel, &n, &err)) {
                sm_broker_warn("fetch %s: %s", j->id, err.msg);
                continue;
            }
            if ((full = fetch_add(&p, rel, n, max_file)))
                k--;
            free_rel(rel, n);
        }
    rep.next = full ? k : -1; /* > from: a reply holds at least one file */
    if (sm_msg_encode_files(&rep, &buf) == 0)
        send_client(b, f, "FILES", &buf);
out:
    for (size_t i = 0; p.data && i < rep.n; i++)
        free(p.data[i]);
    for (size_t i = 0; p.rel && i < rep.n; i++)
        free(p.rel[i]);
    free(rep.files);
    free(p.data);
    free(p.rel);
    sm_msg_buf_free(&buf);
    sm_msg_doc_destroy(&doc);
}

void bclients_on_message(sm_broker *b, const sm_msg_frames *f)
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
    else if (!strcmp(c, "WORKERS"))
        client_workers(b, f);
    else if (!strcmp(c, "CANCEL"))
        client_cancel(b, f);
    else if (!strcmp(c, "DELETE"))
        client_delete(b, f);
    else if (!strcmp(c, "FETCH"))
        client_fetch(b, f);
    else
        reply_error(b, f, "unknown_command", c);
}

