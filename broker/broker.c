/* The broker's loop: two ROUTER sockets (clients, workers), one thread.
 * Each turn reads what is waiting, expires silent workers (their tasks go
 * back to the front of their jobs' queues), sends heartbeats, leases
 * queued tasks to workers with credit, and reports progress to watchers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <sodium.h>
#include <zmq.h>

#include "broker/internal.h"
#include "broker/log.h"
#include "broker/path.h"
#include "util/clock.h"
#include "util/confine.h"
#include "util/file.h"

/* A FETCH reply carries files up to about this many bytes. */
#define FETCH_BYTES ((size_t)8 << 20)

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

/* ---- life --------------------------------------------------------------- */

static void *router(sm_broker *b, const char *endpoint, const char *name,
                    sm_err *err)
{
    void *s = zmq_socket(b->ctx, ZMQ_ROUTER);
    int64_t max = (int64_t)b->cfg.max_message;
    int linger = 100;
    if (s && b->zap && (sm_curve_server(s, b->curve_secret, err) ||
                        sm_zap_watch(b->zap, s, name, err))) {
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

/* Without CURVE the broker serves loopback only, unless told otherwise:
 * anyone who reaches a plaintext port can submit jobs or pose as a worker
 * (fail closed, docs/DEPLOY.md "Ports and security"). */
static int check_plaintext(const sm_broker_config *cfg, sm_err *err)
{
    if (cfg->curve_secret_key[0] || cfg->insecure_allow_plaintext)
        return 0;
    const char *key = !sm_daemon_endpoint_loopback(cfg->client_endpoint)
                          ? "client_endpoint"
                      : !sm_daemon_endpoint_loopback(cfg->worker_endpoint)
                          ? "worker_endpoint"
                          : NULL;
    if (!key)
        return 0;
    return sm_err_set(err, "%s %s is not loopback and CURVE is off: set "
                      "curve_secret_key and curve_allow_dir (salmap keygen NAME "
                      "makes a key pair; docs/DEPLOY.md, \"Ports and security\"), "
                      "or insecure_allow_plaintext: true to serve in the clear "
                      "on a trusted network", key,
                      key[0] == 'c' ? cfg->client_endpoint : cfg->worker_endpoint);
}

/* The config's dataset_roots and output_root, resolved once: a job's
 * paths are checked against them at SUBMIT (jobs.c). */
static int resolve_roots(sm_broker *b, const sm_broker_config *cfg, sm_err *err)
{
    if (cfg->n_dataset_roots &&
        !(b->dataset_roots = calloc((size_t)cfg->n_dataset_roots, sizeof(char *))))
        return sm_err_set(err, "out of memory");
    for (int k = 0; k < cfg->n_dataset_roots; k++) {
        if (sm_confine_root(cfg->dataset_roots[k], "dataset_roots",
                            &b->dataset_roots[k], err))
            return -1;
        b->n_dataset_roots++;
    }
    if (cfg->output_root[0] &&
        ((sm_file_mkdirs(cfg->output_root, err) && sm_err_prefix(err, "output_root")) ||
         sm_confine_root(cfg->output_root, "output_root", &b->output_root, err)))
        return -1;
    return 0;
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
            if (!(j->id = strdup(r->id))) {
                free(j);
                return sm_err_set(NULL, "out of memory");
            }
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
    bjob_append(b, j);
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
    if ((b->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        free(b);
        sm_err_set(err, "eventfd: %s", strerror(errno));
        return NULL;
    }
    b->ctx = ctx;
    b->cfg = *cfg;
    b->fetch_bytes = FETCH_BYTES;
    b->now = sm_clock_now();
    sm_msg_limits_default(&b->limits);
    b->limits.max_body = cfg->max_message;
    uint32_t e;
    randombytes_buf(&e, sizeof e);
    b->epoch = (uint64_t)e << 32; /* task ids of an earlier run never match */
    char *journal = NULL; /* NULL: in memory */
    if (check_plaintext(cfg, err) || resolve_roots(b, cfg, err))
        goto fail;
    const char *tmp = getenv("TMPDIR");
    b->state_dir = cfg->state_dir[0]
                       ? bpath_heap("%s", cfg->state_dir)
                       /* nothing to keep: blobs and inline images in a
                        * temporary folder */
                       : bpath_heap("%s/salmap-broker-XXXXXX",
                                    tmp && *tmp ? tmp : "/tmp");
    if (!b->state_dir || (cfg->state_dir[0] &&
                          !(journal = bpath_heap("%s/journal.db", b->state_dir)))) {
        sm_err_set(err, "out of memory");
        goto fail;
    }
    /* A blob's path goes into BPATH_MAX bytes: a state folder too long for
     * it is refused now rather than its blobs found missing later. */
    if (strlen(b->state_dir) + strlen("/blobs/") + SM_HASH_HEX >= BPATH_MAX) {
        bpath_too_long(err, "state");
        goto fail;
    }
    if (journal) {
        if (sm_file_mkdirs(b->state_dir, err))
            goto fail;
    } else if (mkdtemp(b->state_dir)) {
        b->own_state = 1;
    } else {
        sm_err_set(err, "%s: %s", b->state_dir, strerror(errno));
        goto fail;
    }
    if (!(b->blob_dir = bpath_heap("%s/blobs", b->state_dir))) {
        sm_err_set(err, "out of memory");
        goto fail;
    }
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
    if (!(b->journal = sm_journal_open(journal, err)) ||
        !(b->clients = router(b, cfg->client_endpoint, "clients", err)) ||
        !(b->workers = router(b, cfg->worker_endpoint, "workers", err)) ||
        sm_journal_each(b->journal, resume_row, b, err))
        goto fail;
    free(journal);
    return b;
fail:
    free(journal);
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
        free(w->name);
        free(w);
    }
    sm_broker_faults_free(b);
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
    close(b->wake_fd); /* after the jobs: their page threads are joined */
    if (b->own_state)
        sm_file_remove_tree(b->state_dir);
    free(b->state_dir);
    free(b->blob_dir);
    for (size_t k = 0; k < b->n_dataset_roots; k++)
        free(b->dataset_roots[k]);
    free(b->dataset_roots);
    free(b->output_root);
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
        b->now = sm_clock_now();
        on(b, &f);
        sm_msg_frames_free(&f);
    }
    return 0;
}

int sm_broker_run(sm_broker *b, atomic_int *stop, sm_err *err)
{
    zmq_pollitem_t items[3] = {{b->clients, 0, ZMQ_POLLIN, 0},
                               {b->workers, 0, ZMQ_POLLIN, 0},
                               {NULL, b->wake_fd, ZMQ_POLLIN, 0}};
    long wait = (long)(b->cfg.heartbeat_interval * 1000 / 4);
    if (wait > 100)
        wait = 100;
    if (wait < 1)
        wait = 1;
    while (!atomic_load(stop)) {
        if (zmq_poll(items, 3, wait) < 0) {
            if (errno == EINTR)
                continue;
            return sm_err_set(err, "poll: %s", zmq_strerror(errno));
        }
        b->now = sm_clock_now();
        if (((items[1].revents & ZMQ_POLLIN) &&
             drain(b, b->workers, 256, bworkers_on_message, err)) ||
            ((items[0].revents & ZMQ_POLLIN) &&
             drain(b, b->clients, 64, bclients_on_message, err)))
            return -1;
        uint64_t wakes;
        if ((items[2].revents & ZMQ_POLLIN) &&
            read(b->wake_fd, &wakes, sizeof wakes) < 0 && errno != EAGAIN)
            return sm_err_set(err, "eventfd: %s", strerror(errno));
        b->now = sm_clock_now();
        bworkers_expire(b);
        bworkers_heartbeats(b);
        bworkers_dispatch(b);
        bjobs_reap(b);
        bclients_events(b);
    }
    return 0;
}

