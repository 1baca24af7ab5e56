/* The worker's two threads: this one owns the broker socket (a DEALER)
 * and talks to the compute thread over an inproc PAIR; the compute thread
 * runs one task at a time. So heartbeats go out on time however long a
 * task takes, and the compute thread never waits on the network: a task
 * whose model it lacks comes back "NEED" and is sent again with the bytes
 * once this thread has them (BLOB_GET). */
#include "worker/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "schemas/curve.h"
#include "schemas/msg.h"
#include "worker/compute.h"
#include "util/clock.h"

/* A task held locally, in arrival order. */
typedef struct wtask {
    uint8_t *body;
    size_t len;
    uint64_t id;
    char model[SM_HASH_HEX + 1];
    struct wtask *next;
} wtask;

struct sm_worker {
    void *ctx;
    sm_worker_config cfg;
    sm_msg_limits limits;
    char name[300];
    char pipe_ep[64];
    void *broker;          /* DEALER, NULL while waiting to reconnect */
    void *pipe;            /* PAIR to the compute thread */
    pthread_t thread;
    int thread_started;
    sm_compute *compute;
    wtask *queue, *running;
    char wanted[SM_HASH_HEX + 1]; /* a model asked for with BLOB_GET */
    uint64_t wanted_by;    /* the task that asked for it */
    double wanted_at;      /* when BLOB_GET last went out */
    uint8_t *blob;         /* the model bytes last received */
    size_t blob_len;
    char blob_hash[SM_HASH_HEX + 1];
    double broker_expiry, last_sent, backoff, reconnect_at;
    int quiet;             /* no progress lines */
    int curve;             /* CURVE keys below in use */
    char server_key[SM_CURVE_KEY], secret_key[SM_CURVE_KEY];
};

void sm_worker_set_quiet(sm_worker *w, int quiet)
{
    w->quiet = quiet;
}

static void wlog(const sm_worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void wlog(const sm_worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "salmap-worker %s: ", w->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- the compute thread ------------------------------------------------
 * in:  ["TASK", body, model bytes or empty] / ["STOP"]
 * out: ["RESULT", body] / ["NEED", hash] / ["DROP", message] */

static int send_parts(void *sock, int n, const void *const *data,
                      const size_t *len)
{
    for (int k = 0; k < n; k++)
        if (zmq_send(sock, data[k], len[k], k + 1 < n ? ZMQ_SNDMORE : 0) < 0)
            return -1;
    return 0;
}

/* Receives up to max parts into msgs (initialised here); returns the
 * count, or -1. Extra parts are dropped. */
static int recv_parts(void *sock, zmq_msg_t *msgs, int max)
{
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) < 0) {
            zmq_msg_close(&m);
            for (int k = 0; k < n; k++)
                zmq_msg_close(&msgs[k]);
            return -1;
        }
        more = zmq_msg_more(&m);
        if (n < max)
            msgs[n++] = m;
        else
            zmq_msg_close(&m);
    }
    return n;
}

static void *compute_main(void *arg)
{
    sm_worker *w = arg;
    void *pipe = zmq_socket(w->ctx, ZMQ_PAIR);
    if (!pipe || zmq_connect(pipe, w->pipe_ep)) {
        wlog(w, "compute thread: %s", zmq_strerror(errno));
        if (pipe)
            zmq_close(pipe);
        return NULL;
    }
    for (;;) {
        zmq_msg_t p[3];
        int n = recv_parts(pipe, p, 3);
        if (n < 1)
            break;
        if (n < 2 || zmq_msg_size(&p[0]) != 4 || memcmp(zmq_msg_data(&p[0]), "TASK", 4)) {
            for (int k = 0; k < n; k++)
                zmq_msg_close(&p[k]);
            break; /* STOP */
        }
        sm_msg_buf out = {0};
        sm_err err;
        char need[SM_HASH_HEX + 1];
        const void *model = n > 2 && zmq_msg_size(&p[2]) ? zmq_msg_data(&p[2]) : NULL;
        size_t model_len = n > 2 ? zmq_msg_size(&p[2]) : 0;
        switch (sm_compute_run(w->compute, zmq_msg_data(&p[1]), zmq_msg_size(&p[1]),
                               model, model_len, &out, need, &err)) {
        case SM_COMPUTE_DONE:
            send_parts(pipe, 2, (const void *[]){"RESULT", out.data},
                       (size_t[]){6, out.len});
            break;
        case SM_COMPUTE_NEED_MODEL:
            send_parts(pipe, 2, (const void *[]){"NEED", need},
                       (size_t[]){4, strlen(need)});
            break;
        case SM_COMPUTE_BAD_TASK:
            send_parts(pipe, 2, (const void *[]){"DROP", err.msg},
                       (size_t[]){4, strlen(err.msg)});
            break;
        }
        sm_msg_buf_free(&out);
        for (int k = 0; k < n; k++)
            zmq_msg_close(&p[k]);
    }
    zmq_close(pipe);
    return NULL;
}

/* ---- the broker connection ---------------------------------------------- */

static void send_broker(sm_worker *w, const char *cmd, const sm_msg_buf *b)
{
    if (!w->broker)
        return;
    if (sm_msg_send(w->broker, NULL, 0, SM_PROTO_WORKER, cmd, b->data, b->len))
        wlog(w, "send %s: %s", cmd, zmq_strerror(errno));
    w->last_sent = sm_clock_now();
}

static void send_empty(sm_worker *w, const char *cmd)
{
    sm_msg_buf b = {0};
    if (sm_msg_encode_empty(&b) == 0)
        send_broker(w, cmd, &b);
    sm_msg_buf_free(&b);
}

static void free_tasks(wtask **q)
{
    while (*q) {
        wtask *t = *q;
        *q = t->next;
        free(t->body);
        free(t);
    }
}

static int connect_broker(sm_worker *w, sm_err *err)
{
    w->broker = zmq_socket(w->ctx, ZMQ_DEALER);
    int64_t max = (int64_t)w->cfg.max_message;
    int linger = 1000;
    if (w->broker && w->curve &&
        sm_curve_client(w->broker, w->server_key, w->secret_key, err)) {
        zmq_close(w->broker);
        w->broker = NULL;
        return -1;
    }
    if (!w->broker || zmq_setsockopt(w->broker, ZMQ_MAXMSGSIZE, &max, sizeof max) ||
        zmq_setsockopt(w->broker, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_connect(w->broker, w->cfg.broker)) {
        sm_err_set(err, "connect %s: %s", w->cfg.broker, zmq_strerror(errno));
        if (w->broker)
            zmq_close(w->broker);
        w->broker = NULL;
        return -1;
    }
    sm_msg_ready r = {(uint32_t)w->cfg.capacity, w->name};
    sm_msg_buf b = {0};
    if (sm_msg_encode_ready(&r, &b) == 0)
        send_broker(w, "READY", &b);
    sm_msg_buf_free(&b);
    w->broker_expiry = sm_clock_now() + w->cfg.heartbeat_interval * w->cfg.heartbeat_liveness;
    return 0;
}

/* Gives the connection up: the broker takes our tasks back when it misses
 * us, so the queue goes (the running task's result will be ignored). */
static void disconnect(sm_worker *w, double delay)
{
    if (w->broker)
        zmq_close(w->broker);
    w->broker = NULL;
    free_tasks(&w->queue);
    w->wanted[0] = '\0'; /* its task went with the queue */
    w->reconnect_at = sm_clock_now() + delay;
}

/* Asks the broker for the model w->wanted. */
static void ask_blob(sm_worker *w)
{
    sm_msg_blob m = {.hash = w->wanted};
    sm_msg_buf b = {0};
    if (sm_msg_encode_blob(&m, &b) == 0)
        send_broker(w, "BLOB_GET", &b);
    sm_msg_buf_free(&b);
    w->wanted_at = sm_clock_now();
}

/* Hands the next queued task to the compute thread when it is idle. */
static void feed(sm_worker *w)
{
    if (w->running || !w->queue)
        return;
    wtask *t = w->queue;
    /* a task whose model is on its way waits for the bytes: handed over
     * without them, it would only ask again, and every ask costs the
     * broker a copy of the model on the wire */
    if (w->wanted[0] && t->id == w->wanted_by)
        return;
    w->queue = t->next;
    t->next = NULL;
    w->running = t;
    /* the bytes go to the task that asked for them (its classifier or an
     * auxiliary model), which then fails if they are not what it asked */
    int with = w->blob && t->id == w->wanted_by;
    send_parts(w->pipe, 3,
               (const void *[]){"TASK", t->body, with ? (const void *)w->blob : ""},
               (size_t[]){4, t->len, with ? w->blob_len : 0});
    if (with) { /* the compute thread keeps the model loaded now */
        free(w->blob);
        w->blob = NULL;
        w->blob_len = 0;
    }
}

/* Queues a TASK; only its id and model are read here (the compute thread
 * decodes it, and answers one that does not decode). */
static void on_task(sm_worker *w, const sm_msg_frames *f)
{
    wtask *t = calloc(1, sizeof *t);
    if (!t || sm_msg_peek_task(f->body, f->len, &w->limits, &t->id, t->model)) {
        wlog(w, "a TASK without a task id dropped");
        free(t);
        return;
    }
    t->body = f->body; /* taken over from f */
    t->len = f->len;
    wtask **p = &w->queue;
    while (*p)
        p = &(*p)->next;
    *p = t;
}

static void on_broker(sm_worker *w, sm_msg_frames *f)
{
    w->broker_expiry = sm_clock_now() + w->cfg.heartbeat_interval * w->cfg.heartbeat_liveness;
    w->backoff = w->cfg.reconnect_min;
    const char *c = f->command;
    sm_err err;
    if (strcmp(f->signature, SM_PROTO_WORKER) != 0) {
        wlog(w, "dropped a message with signature '%s'", f->signature);
    } else if (!strcmp(c, "TASK")) {
        on_task(w, f);
        f->body = NULL;
    } else if (!strcmp(c, "BLOB")) {
        sm_msg_doc *doc = NULL;
        sm_msg_blob m;
        if (sm_msg_decode_blob(f->body, f->len, &w->limits, &doc, &m, &err) || !m.data) {
            wlog(w, "a BLOB dropped: %s", err.msg);
        } else if (!strcmp(m.hash, w->wanted)) {
            free(w->blob);
            if ((w->blob = malloc(m.len ? m.len : 1))) {
                memcpy(w->blob, m.data, m.len);
                w->blob_len = m.len;
                snprintf(w->blob_hash, sizeof w->blob_hash, "%s", m.hash);
            }
            w->wanted[0] = '\0';
            feed(w);
        }
        sm_msg_doc_destroy(&doc);
    } else if (!strcmp(c, "ERROR")) {
        sm_msg_doc *doc = NULL;
        sm_msg_error m;
        if (sm_msg_decode_error(f->body, f->len, &w->limits, &doc, &m, &err) == 0) {
            wlog(w, "broker: %s: %s", m.code, m.message ? m.message : "");
            wtask *t = w->queue;
            if (w->wanted[0] && t && t->id == w->wanted_by &&
                !strcmp(m.code, "unknown_blob")) {
                /* the model is gone: the task waiting for it fails, with
                 * the reason */
                char msg[200];
                snprintf(msg, sizeof msg, "model %s: the broker does not hold it",
                         w->wanted);
                sm_msg_result r = {.task = t->id, .error = msg};
                sm_msg_buf b = {0};
                if (sm_msg_encode_result(&r, &b) == 0)
                    send_broker(w, "RESULT", &b);
                sm_msg_buf_free(&b);
                w->queue = t->next;
                free(t->body);
                free(t);
                w->wanted[0] = '\0';
                feed(w);
            }
        }
        sm_msg_doc_destroy(&doc);
    } else if (!strcmp(c, "DISCONNECT")) {
        wlog(w, "the broker does not know this worker: joining again");
        disconnect(w, 0);
    } else if (strcmp(c, "HEARTBEAT") != 0) {
        wlog(w, "dropped an unknown command '%s'", c);
    }
}

/* A message from the compute thread. */
static void on_compute(sm_worker *w)
{
    zmq_msg_t p[2];
    int n = recv_parts(w->pipe, p, 2);
    if (n < 0)
        return;
    const char *kind = zmq_msg_data(&p[0]);
    size_t klen = zmq_msg_size(&p[0]);
    if (n == 2 && klen == 6 && !memcmp(kind, "RESULT", 6)) {
        sm_msg_buf b = {zmq_msg_data(&p[1]), zmq_msg_size(&p[1]), 0};
        if (w->broker)
            send_broker(w, "RESULT", &b);
        else /* the broker gave us up, and our leases with us */
            wlog(w, "task %llu finished after the connection was given up: "
                 "its result is dropped", (unsigned long long)w->running->id);
        free(w->running->body);
        free(w->running);
        w->running = NULL;
    } else if (n == 2 && klen == 4 && !memcmp(kind, "NEED", 4)) {
        /* back to the front of the queue until the bytes are here */
        snprintf(w->wanted, sizeof w->wanted, "%.*s", (int)zmq_msg_size(&p[1]),
                 (const char *)zmq_msg_data(&p[1]));
        wtask *t = w->running;
        w->wanted_by = t->id;
        w->running = NULL;
        t->next = w->queue;
        w->queue = t;
        ask_blob(w);
    } else {
        wlog(w, "task %llu dropped: %.*s",
             w->running ? (unsigned long long)w->running->id : 0ULL,
             n == 2 ? (int)zmq_msg_size(&p[1]) : 0,
             n == 2 ? (const char *)zmq_msg_data(&p[1]) : "");
        if (w->running) {
            free(w->running->body);
            free(w->running);
            w->running = NULL;
        }
    }
    for (int k = 0; k < n; k++)
        zmq_msg_close(&p[k]);
}

sm_worker *sm_worker_new(void *ctx, const sm_worker_config *cfg, sm_err *err)
{
    sm_worker *w = calloc(1, sizeof *w);
    if (!w) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    w->ctx = ctx;
    w->cfg = *cfg;
    sm_msg_limits_default(&w->limits);
    w->limits.max_body = cfg->max_message;
    if (cfg->name[0]) {
        snprintf(w->name, sizeof w->name, "%s", cfg->name);
    } else {
        char host[256] = "worker";
        gethostname(host, sizeof host - 1);
        snprintf(w->name, sizeof w->name, "%.200s-%ld", host, (long)getpid());
    }
    snprintf(w->pipe_ep, sizeof w->pipe_ep, "inproc://salmap-worker-%p", (void *)w);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cfg->threads > 0 ? cfg->threads : cores > 0 ? (int)cores : 1;
    w->backoff = cfg->reconnect_min;
    if (cfg->curve_server_key[0]) {
        if (sm_curve_read_key(cfg->curve_server_key, w->server_key, err) ||
            sm_curve_read_key(cfg->curve_secret_key, w->secret_key, err))
            goto fail;
        w->curve = 1;
    }
    if (!(w->compute = sm_compute_new(threads, cfg->model_cache, &w->limits, err)))
        goto fail;
    sm_compute_set_crash_on(w->compute, cfg->test_crash_on);
    w->pipe = zmq_socket(ctx, ZMQ_PAIR);
    if (!w->pipe || zmq_bind(w->pipe, w->pipe_ep)) {
        sm_err_set(err, "compute pipe: %s", zmq_strerror(errno));
        goto fail;
    }
    if (pthread_create(&w->thread, NULL, compute_main, w)) {
        sm_err_set(err, "cannot start the compute thread");
        goto fail;
    }
    w->thread_started = 1;
    return w;
fail:
    sm_worker_destroy(&w);
    return NULL;
}

void sm_worker_destroy(sm_worker **wp)
{
    sm_worker *w = *wp;
    if (!w)
        return;
    if (w->thread_started) {
        send_parts(w->pipe, 1, (const void *[]){"STOP"}, (size_t[]){4});
        pthread_join(w->thread, NULL);
    }
    if (w->pipe)
        zmq_close(w->pipe);
    if (w->broker)
        zmq_close(w->broker);
    free_tasks(&w->queue);
    free_tasks(&w->running);
    free(w->blob);
    sm_compute_destroy(&w->compute);
    free(w);
    *wp = NULL;
}

int sm_worker_run(sm_worker *w, atomic_int *stop, sm_err *err)
{
    if (connect_broker(w, err))
        return -1;
    if (!w->quiet)
        wlog(w, "connected to %s", w->cfg.broker);
    long wait = (long)(w->cfg.heartbeat_interval * 1000 / 4);
    wait = wait > 100 ? 100 : wait < 1 ? 1 : wait;
    for (;;) {
        int stopping = atomic_load(stop) != 0;
        if (stopping && !w->running)
            break; /* the current task is finished and sent */
        zmq_pollitem_t items[2] = {{w->pipe, 0, ZMQ_POLLIN, 0},
                                   {w->broker, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, w->broker ? 2 : 1, wait) < 0) {
            if (errno == EINTR)
                continue;
            return sm_err_set(err, "poll: %s", zmq_strerror(errno));
        }
        if (items[0].revents & ZMQ_POLLIN)
            on_compute(w);
        while (w->broker && (items[1].revents & ZMQ_POLLIN)) {
            sm_msg_frames f;
            sm_err ferr;
            if (sm_msg_recv(w->broker, 0, ZMQ_DONTWAIT, &f, &ferr)) {
                if (errno != EAGAIN)
                    wlog(w, "dropped: %s", ferr.msg);
                if (errno == EAGAIN)
                    break;
                continue;
            }
            on_broker(w, &f);
            sm_msg_frames_free(&f);
        }
        double t = sm_clock_now();
        if (w->broker && t > w->broker_expiry) {
            wlog(w, "the broker is silent: reconnecting in %.2f s", w->backoff);
            disconnect(w, w->backoff);
            w->backoff = w->backoff * 2 < w->cfg.reconnect_max ? w->backoff * 2
                                                               : w->cfg.reconnect_max;
        }
        if (!w->broker && t >= w->reconnect_at && !stopping &&
            connect_broker(w, err))
            return -1;
        if (w->broker && w->wanted[0] &&
            t - w->wanted_at >= w->cfg.heartbeat_interval * w->cfg.heartbeat_liveness)
            ask_blob(w); /* the answer was lost */
        if (w->broker && t - w->last_sent >= w->cfg.heartbeat_interval)
            send_empty(w, "HEARTBEAT");
        if (!stopping)
            feed(w);
    }
    /* what is still queued goes back to the broker */
    send_empty(w, "DISCONNECT");
    if (!w->quiet)
        wlog(w, "stopped");
    return 0;
}
