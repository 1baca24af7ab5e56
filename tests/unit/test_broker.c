/* The broker against bad input on both endpoints (real sockets on
 * loopback): every malformed, truncated, oversized or wrong-typed message
 * gets an ERROR reply or is dropped, the broker keeps serving, and a job
 * running meanwhile completes with every map. The fuzzer's corpus
 * (tests/fuzz/corpus/msg) goes in as message bodies too. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "broker/broker.h"
#include "broker/journal.h"
#include "client/lib/salmap_client.h"
#include "io/npy.h"
#include "schemas/msg.h"
#include "tdata.h"
#include "util/clock.h"
#include "util/file.h"
#include "worker/worker.h"

TDATA_SUITE(broker);

typedef struct rig {
    void *ctx;
    sm_broker *b;
    sm_worker *w;
    pthread_t bt, wt;
    atomic_int bstop, wstop;
    char client[256], workers[256];
} rig;

static void *broker_thread(void *arg)
{
    rig *r = arg;
    sm_err err;
    sm_broker_run(r->b, &r->bstop, &err);
    return NULL;
}

static void *worker_thread(void *arg)
{
    rig *r = arg;
    sm_err err;
    sm_worker_run(r->w, &r->wstop, &err);
    return NULL;
}

/* The defaults on ephemeral loopback ports, with nothing kept. */
static void loopback_config(sm_broker_config *bc)
{
    sm_broker_config_defaults(bc);
    snprintf(bc->client_endpoint, sizeof bc->client_endpoint, "tcp://127.0.0.1:*");
    snprintf(bc->worker_endpoint, sizeof bc->worker_endpoint, "tcp://127.0.0.1:*");
    bc->state_dir[0] = '\0';
}

/* Starts r's worker "t1" (one thread, heartbeats every hb seconds) on
 * r->workers. */
static void rig_add_worker(rig *r, double hb)
{
    sm_err err;
    sm_worker_config wc;
    sm_worker_config_defaults(&wc);
    snprintf(wc.broker, sizeof wc.broker, "%s", r->workers);
    snprintf(wc.name, sizeof wc.name, "t1");
    wc.threads = 1;
    wc.heartbeat_interval = hb;
    r->w = sm_worker_new(r->ctx, &wc, &err);
    cr_assert_not_null(r->w, "%s", err.msg);
    sm_worker_set_quiet(r->w, 1);
    pthread_create(&r->wt, NULL, worker_thread, r);
}

/* A broker with an 8 MiB message cap on ephemeral loopback ports,
 * heartbeats every hb seconds, and `workers` (0 or 1) worker; tune (or
 * NULL) changes the broker's config further. */
static void rig_start_tuned(rig *r, int workers, double hb,
                            void (*tune)(sm_broker_config *))
{
    sm_err err;
    tdata_vips();
    memset(r, 0, sizeof *r);
    r->ctx = zmq_ctx_new();
    sm_broker_config bc;
    loopback_config(&bc);
    bc.max_message = (size_t)8 << 20;
    bc.heartbeat_interval = hb;
    if (tune)
        tune(&bc);
    r->b = sm_broker_new(r->ctx, &bc, &err);
    cr_assert_not_null(r->b, "%s", err.msg);
    sm_broker_set_quiet(r->b, 1);
    sm_broker_endpoint(r->b, 0, r->client, sizeof r->client);
    sm_broker_endpoint(r->b, 1, r->workers, sizeof r->workers);
    pthread_create(&r->bt, NULL, broker_thread, r);
    if (workers)
        rig_add_worker(r, hb);
}

static void rig_start_with(rig *r, int workers, double hb)
{
    rig_start_tuned(r, workers, hb, NULL);
}

static void rig_start(rig *r)
{
    rig_start_with(r, 1, 1.0);
}

static void rig_stop(rig *r)
{
    if (r->w) {
        atomic_store(&r->wstop, 1);
        pthread_join(r->wt, NULL);
        sm_worker_destroy(&r->w);
    }
    atomic_store(&r->bstop, 1);
    pthread_join(r->bt, NULL);
    sm_broker_destroy(&r->b);
    zmq_ctx_term(r->ctx);
}

static void *dealer(rig *r, const char *ep)
{
    void *s = zmq_socket(r->ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq(zmq_connect(s, ep), 0);
    return s;
}

/* Sends frames (NULL data = empty frame). */
static void send_frames(void *s, int n, const char *const *data, const size_t *len)
{
    for (int k = 0; k < n; k++)
        zmq_send(s, data[k] ? data[k] : "", len[k], k + 1 < n ? ZMQ_SNDMORE : 0);
}

static void send3(void *s, const char *sig, const char *cmd, const void *body,
                  size_t len)
{
    send_frames(s, 3, (const char *[]){sig, cmd, body},
                (size_t[]){strlen(sig), strlen(cmd), len});
}

/* The next message within `seconds`: 1 with its command in cmd and, for
 * an EVENT, its job's state in state (else ""); 0 when none came. */
static int reply_state(void *s, double seconds, char *cmd, size_t cap,
                       char *state, size_t scap)
{
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, (long)(seconds * 1000)) <= 0)
        return 0;
    sm_msg_frames f;
    sm_err err;
    if (sm_msg_recv(s, 0, 0, &f, &err))
        return 0;
    snprintf(cmd, cap, "%s", f.command);
    state[0] = '\0';
    sm_msg_limits l;
    sm_msg_limits_default(&l);
    sm_msg_doc *doc = NULL;
    sm_msg_status st;
    if (!strcmp(f.command, "EVENT") &&
        sm_msg_decode_status(f.body, f.len, &l, &doc, &st, &err) == 0)
        snprintf(state, scap, "%s", st.state);
    sm_msg_doc_destroy(&doc);
    sm_msg_frames_free(&f);
    return 1;
}

/* The next message within `seconds`: 1 with its command in cmd, or 0. */
static int reply(void *s, double seconds, char *cmd, size_t cap)
{
    char state[32];
    return reply_state(s, seconds, cmd, cap, state, sizeof state);
}

static void expect_error(void *s, const char *what)
{
    char cmd[32] = "";
    cr_assert(reply(s, 10, cmd, sizeof cmd), "%s: no reply", what);
    cr_assert_str_eq(cmd, "ERROR", "%s: replied %s", what, cmd);
}

/* The broker still answers LIST. */
static void expect_serving(rig *r)
{
    sm_client *c = sm_client_new_ctx(r->ctx, r->client);
    sm_client_status *all;
    size_t n;
    cr_assert_eq(sm_client_list(c, &all, &n), 0, "%s", sm_client_error(c));
    free(all);
    sm_client_destroy(&c);
}

Test(broker, malformed_client_messages)
{
    rig r;
    rig_start(&r);
    void *s = dealer(&r, r.client);
    const uint8_t garbage[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    const uint8_t truncated[] = {0x82, 0xa5, 'm', 'o', 'd'};
    const uint8_t notmap[] = {0x93, 1, 2, 3};
    /* {"model": 7, "out": "x", "methods": ["sal"]}: wrong type */
    const uint8_t wrongtype[] = {0x83, 0xa5, 'm', 'o', 'd', 'e', 'l', 0x07,
                                 0xa3, 'o', 'u', 't', 0xa1, 'x', 0xa7, 'm',
                                 'e', 't', 'h', 'o', 'd', 's', 0x91, 0xa3,
                                 's', 'a', 'l'};
    send3(s, "SMC9", "LIST", "\x80", 1);
    expect_error(s, "wrong signature");
    send3(s, SM_PROTO_CLIENT, "FROB", "\x80", 1);
    expect_error(s, "unknown command");
    send3(s, SM_PROTO_CLIENT, "SUBMIT", garbage, sizeof garbage);
    expect_error(s, "a huge array count");
    send3(s, SM_PROTO_CLIENT, "SUBMIT", truncated, sizeof truncated);
    expect_error(s, "truncated");
    send3(s, SM_PROTO_CLIENT, "SUBMIT", notmap, sizeof notmap);
    expect_error(s, "not a map");
    send3(s, SM_PROTO_CLIENT, "SUBMIT", wrongtype, sizeof wrongtype);
    expect_error(s, "wrong type");
    send3(s, SM_PROTO_CLIENT, "STATUS", "\x81\xa3job\xa4nope", 10);
    expect_error(s, "unknown job");
    /* a 2-frame and a 5-frame message: dropped whole, no reply */
    send_frames(s, 2, (const char *[]){SM_PROTO_CLIENT, "LIST"}, (size_t[]){4, 4});
    send_frames(s, 5, (const char *[]){SM_PROTO_CLIENT, "LIST", "\x80", "x", "y"},
                (size_t[]){4, 4, 1, 1, 1});
    send3(s, SM_PROTO_CLIENT, "LIST", "\x80", 1);
    char cmd[32] = "";
    cr_assert(reply(s, 10, cmd, sizeof cmd));
    cr_assert_str_eq(cmd, "LIST", "the bad frames were answered: %s", cmd);
    /* oversized: ZMQ_MAXMSGSIZE drops the connection, not the broker */
    size_t big = (size_t)9 << 20;
    char *blob = calloc(1, big);
    send3(s, SM_PROTO_CLIENT, "PUT", blob, big);
    free(blob);
    zmq_close(s);
    expect_serving(&r);
    rig_stop(&r);
}

/* Submits an n-image sal job in batches of 4 into out; its id into id. */
static void submit_n(sm_client *c, const char *out, int n, char *id)
{
    const char *methods[] = {"sal"};
    sm_client_job j = {.model = "models/mnist_cnn.onnx",
                       .config = "models/mnist_cnn.yaml",
                       .dataset = "data/mnist/test", .methods = methods,
                       .n_methods = 1, .out = out, .limit = (uint64_t)n, .batch = 4};
    cr_assert_eq(sm_client_submit(c, &j, id), 0, "%s", sm_client_error(c));
}

static void submit(rig *r, sm_client *c, const char *out, char *id)
{
    (void)r;
    submit_n(c, out, 16, id);
}

/* Sends every file of the fuzzer's corpus (tests/fuzz/corpus/msg) as the
 * body of each command in cmds (NULL-ended), signed sig. */
static void send_corpus(void *s, const char *sig, const char *const *cmds)
{
    DIR *d = opendir("tests/fuzz/corpus/msg");
    cr_assert_not_null(d, "tests/fuzz/corpus/msg is missing");
    struct dirent *de;
    int sent = 0;
    while ((de = readdir(d))) {
        char path[TDATA_PATH];
        size_t len;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "tests/fuzz/corpus/msg/%s", de->d_name);
        unsigned char *body = sm_file_read(path, (size_t)1 << 20, &len, NULL);
        if (!body)
            continue;
        for (size_t k = 0; cmds[k]; k++)
            send3(s, sig, cmds[k], body, len);
        free(body);
        sent++;
    }
    closedir(d);
    cr_assert_gt(sent, 5, "the corpus has %d files", sent);
}

Test(broker, job_survives_garbage_on_both_endpoints)
{
    rig r;
    rig_start(&r);
    char out[TDATA_PATH], id[SM_CLIENT_ID_MAX];
    tdata_path(out, dir, "out");
    sm_client *c = sm_client_new_ctx(r.ctx, r.client);
    submit(&r, c, out, id);
    /* a stranger on the worker endpoint: not a worker, told to start over */
    void *s = dealer(&r, r.workers);
    send3(s, SM_PROTO_WORKER, "RESULT", "\x81\xa4task\x01", 7);
    char cmd[32] = "";
    cr_assert(reply(s, 10, cmd, sizeof cmd));
    cr_assert_str_eq(cmd, "DISCONNECT");
    /* a bad READY is dropped; a good one makes a worker that then sends
     * garbage: corpus bodies as RESULT, a truncated one, a wrong type */
    send3(s, SM_PROTO_WORKER, "READY", "\x81\xa8" "capacity\xa1x", 12);
    send3(s, SM_PROTO_WORKER, "READY", "\x81\xa8" "capacity\x01", 11);
    static const char *const as_worker[] = {"RESULT", "BLOB_GET", NULL};
    send_corpus(s, SM_PROTO_WORKER, as_worker);
    send3(s, SM_PROTO_WORKER, "DISCONNECT", "\x80", 1); /* its tasks go back */
    zmq_close(s);
    sm_client_status st;
    cr_assert_eq(sm_client_wait(c, id, NULL, NULL, &st), 0, "%s", sm_client_error(c));
    cr_assert_str_eq(st.state, "done", "%s", st.error);
    cr_assert_eq(st.maps_done, 16);
    cr_assert_eq(st.maps_failed, 0);
    char index[TDATA_PATH];
    size_t len;
    char *csv = (char *)sm_file_read(tdata_path(index, out, "index.csv"), 1 << 20, &len, NULL);
    cr_assert_not_null(csv);
    int rows = 0;
    for (size_t k = 0; k < len; k++)
        rows += csv[k] == '\n';
    free(csv);
    cr_assert_eq(rows, 17, "index.csv has %d lines", rows);
    sm_client_destroy(&c);
    rig_stop(&r);
}

Test(broker, client_corpus_bodies)
{
    rig r;
    rig_start(&r);
    void *s = dealer(&r, r.client);
    static const char *const as_client[] = {"SUBMIT", "STATUS", "PUT", "HAS",
                                            "FETCH", "WATCH", "CANCEL", NULL};
    send_corpus(s, SM_PROTO_CLIENT, as_client);
    zmq_close(s);
    expect_serving(&r);
    rig_stop(&r);
}

/* {"job": id} */
static size_t job_body(uint8_t *buf, const char *id)
{
    size_t n = strlen(id);
    cr_assert(n < 32);
    memcpy(buf, "\x81\xa3job", 5);
    buf[5] = (uint8_t)(0xa0 | n);
    memcpy(buf + 6, id, n);
    return 6 + n;
}

/* A job that cannot run (no worker): WATCHed three times by one client it
 * has one watch, so its end is told once; 1,024 clients fill the broker's
 * watches, and the next WATCH is refused, not kept. */
Test(broker, watches_are_one_a_client_and_bounded)
{
    rig r;
    rig_start_with(&r, 0, 1.0);
    sm_client *c = sm_client_new_ctx(r.ctx, r.client);
    char id[64], out[TDATA_PATH], cmd[32], state[32];
    submit(&r, c, tdata_path(out, dir, "w"), id);
    uint8_t body[64];
    size_t len = job_body(body, id);
    void *s = dealer(&r, r.client);
    for (int k = 0; k < 3; k++)
        send3(s, SM_PROTO_CLIENT, "WATCH", body, len);
    send3(s, SM_PROTO_CLIENT, "CANCEL", body, len);
    /* the cancel is answered, then the last EVENT goes to each watch in
     * one pass: a STATUS answered after the first shows whether more
     * were sent */
    int cancelled = 0, sent_status = 0, got_status = 0, ends = 0;
    double until = sm_clock_now() + 10;
    while (!got_status && sm_clock_now() < until &&
           reply_state(s, 1, cmd, sizeof cmd, state, sizeof state)) {
        cancelled |= !strcmp(cmd, "CANCELLED");
        got_status = !strcmp(cmd, "STATUS");
        if (!strcmp(state, "cancelled") && !ends++) {
            send3(s, SM_PROTO_CLIENT, "STATUS", body, len);
            sent_status = 1;
        }
    }
    cr_assert(cancelled && sent_status && got_status, "cancel %d, status %d/%d",
              cancelled, sent_status, got_status);
    cr_assert_eq(ends, 1, "the end of the job was told %d times to one client", ends);
    zmq_close(s);
    /* a second job, queued for good: the watches of 1,024 clients */
    submit(&r, c, tdata_path(out, dir, "w2"), id);
    len = job_body(body, id);
    for (int k = 0; k <= 1024; k++) {
        void *d = zmq_socket(r.ctx, ZMQ_DEALER);
        int linger = 0;
        char rid[16];
        int n = snprintf(rid, sizeof rid, "watcher%d", k);
        zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(d, ZMQ_ROUTING_ID, rid, (size_t)n);
        cr_assert_eq(zmq_connect(d, r.client), 0);
        send3(d, SM_PROTO_CLIENT, "WATCH", body, len);
        cr_assert(reply_state(d, 10, cmd, sizeof cmd, state, sizeof state),
                  "watch %d: no answer", k);
        if (k < 1024)
            cr_assert_str_eq(cmd, "EVENT", "watch %d: %s", k, cmd);
        else
            cr_assert_str_eq(cmd, "ERROR", "the 1,025th watch was kept");
        zmq_close(d);
    }
    expect_serving(&r);
    sm_client_destroy(&c);
    rig_stop(&r);
}

/* Writes a fresh CURVE pair as dir/name.key and dir/name.pub. */
static void keypair(const char *name, char *pub)
{
    char sec[41], file[256], path[TDATA_PATH], text[64];
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    snprintf(file, sizeof file, "%s.key", name);
    snprintf(text, sizeof text, "%s\n", sec);
    tdata_text(path, dir, file, text);
    snprintf(file, sizeof file, "%s.pub", name);
    snprintf(text, sizeof text, "%s\n", pub);
    tdata_text(path, dir, file, text);
}

/* LIST through a client with these key files (NULL: no CURVE); 0 or -1
 * with the client's error in msg (TDATA_PATH bytes, or NULL). */
static int list_with(void *ctx, const char *ep, const char *server,
                     const char *secret, char *msg)
{
    sm_client *c = sm_client_new_ctx(ctx, ep);
    char sp[TDATA_PATH], kp[TDATA_PATH];
    sm_client_set_timeout(c, 1.5);
    if (server)
        cr_assert_eq(sm_client_set_curve(c, tdata_path(sp, dir, server),
                                         tdata_path(kp, dir, secret)), 0,
                     "%s", sm_client_error(c));
    sm_client_status *all = NULL;
    size_t n;
    int rc = sm_client_list(c, &all, &n);
    if (rc && msg)
        snprintf(msg, TDATA_PATH, "%s", sm_client_error(c));
    free(all);
    sm_client_destroy(&c);
    return rc;
}

Test(broker, curve_admits_the_allowlist_only)
{
    char pub[41], path[TDATA_PATH], text[64], ep[256];
    keypair("broker", pub);
    keypair("good", pub);
    snprintf(text, sizeof text, "%s\n", pub);
    tdata_text(path, dir, "allow/good.pub", text);
    keypair("evil", pub);
    void *ctx = zmq_ctx_new();
    sm_broker_config bc;
    loopback_config(&bc);
    tdata_path(bc.curve_secret_key, dir, "broker.key");
    sm_err err;
    /* CURVE without an allowlist: refused, fails closed */
    cr_assert_null(sm_broker_new(ctx, &bc, &err));
    cr_assert(tdata_has(err.msg, "curve_allow_dir"), "%s", err.msg);
    tdata_path(bc.curve_allow_dir, dir, "allow");
    rig r = {.ctx = ctx};
    r.b = sm_broker_new(ctx, &bc, &err);
    cr_assert_not_null(r.b, "%s", err.msg);
    sm_broker_set_quiet(r.b, 1);
    sm_broker_endpoint(r.b, 0, ep, sizeof ep);
    pthread_create(&r.bt, NULL, broker_thread, &r);
    char msg[TDATA_PATH];
    cr_assert_eq(list_with(ctx, ep, "broker.pub", "good.key", NULL), 0, "the allowed key");
    /* refused peers get nowhere: the client says why it may be */
    cr_assert_eq(list_with(ctx, ep, "broker.pub", "evil.key", msg), -1, "a key not allowed");
    cr_assert(tdata_has(msg, "no reply to LIST within 2 s (is the broker there, and "
                        "does it admit this client's key"), "%s", msg);
    cr_assert_eq(list_with(ctx, ep, NULL, NULL, msg), -1, "no CURVE at all");
    cr_assert(tdata_has(msg, "without CURVE (else give --server-key"), "%s", msg);
    atomic_store(&r.bstop, 1);
    pthread_join(r.bt, NULL);
    sm_broker_destroy(&r.b);
    zmq_ctx_term(ctx);
}

Test(broker, jobs_take_turns_and_cancel)
{
    rig r;
    rig_start(&r);
    char big[TDATA_PATH], small[TDATA_PATH], bid[SM_CLIENT_ID_MAX], sid[SM_CLIENT_ID_MAX];
    sm_client *c = sm_client_new_ctx(r.ctx, r.client);
    submit_n(c, tdata_path(big, dir, "big"), 400, bid);
    submit_n(c, tdata_path(small, dir, "small"), 4, sid);
    sm_client_status st;
    /* the small job, behind 100 tasks of the big one, is served in turn */
    cr_assert_eq(sm_client_wait(c, sid, NULL, NULL, &st), 0, "%s", sm_client_error(c));
    cr_assert_str_eq(st.state, "done");
    cr_assert_eq(sm_client_status_of(c, bid, &st), 0);
    cr_assert_str_eq(st.state, "running", "the big job ran first: %s", st.state);
    cr_assert_lt(st.maps_done, 400);
    cr_assert_eq(sm_client_cancel(c, bid), 0, "%s", sm_client_error(c));
    cr_assert_eq(sm_client_wait(c, bid, NULL, NULL, &st), 0);
    cr_assert_str_eq(st.state, "cancelled");
    char index[TDATA_PATH];
    size_t len;
    char *csv = (char *)sm_file_read(tdata_path(index, big, "index.csv"), 1 << 20, &len, NULL);
    cr_assert_not_null(csv, "no index.csv of what the cancelled job did");
    int rows = -1; /* the header */
    for (size_t k = 0; k < len; k++)
        rows += csv[k] == '\n';
    free(csv);
    cr_assert_eq((uint64_t)rows, st.maps_done, "%d rows, %llu maps done", rows,
                 (unsigned long long)st.maps_done);
    /* a new job into the cancelled one's folder is accepted at once */
    char again[SM_CLIENT_ID_MAX];
    submit_n(c, big, 4, again);
    cr_assert_eq(sm_client_wait(c, again, NULL, NULL, &st), 0);
    cr_assert_str_eq(st.state, "done");
    sm_client_destroy(&c);
    rig_stop(&r);
}

/* A fake worker: READY with capacity 1, heartbeats until it gets a TASK,
 * and dies holding it. */
static void worker_dies_holding_a_task(rig *r)
{
    void *s = dealer(r, r->workers);
    send3(s, SM_PROTO_WORKER, "READY", "\x81\xa8" "capacity\x01", 11);
    char cmd[32] = "";
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        send3(s, SM_PROTO_WORKER, "HEARTBEAT", "\x80", 1);
        if (!reply(s, 0.02, cmd, sizeof cmd))
            cmd[0] = '\0';
        clock_gettime(CLOCK_MONOTONIC, &t);
        cr_assert_lt(t.tv_sec - t0.tv_sec, 20, "no TASK for the fake worker");
    } while (strcmp(cmd, "TASK") != 0);
    zmq_close(s);
}

/* Job id, of one map, ends done with that map failed. */
static void expect_one_map_failed(sm_client *c, const char *id)
{
    sm_client_status st;
    cr_assert_eq(sm_client_wait(c, id, NULL, NULL, &st), 0, "%s", sm_client_error(c));
    cr_assert_str_eq(st.state, "done", "%s", st.error);
    cr_assert_eq(st.maps_failed, 1);
    cr_assert_eq(st.maps_done, 0);
}

Test(broker, a_task_that_kills_three_workers_is_quarantined)
{
    rig r;
    rig_start_with(&r, 0, 0.05); /* no real worker; silence shows in 0.15 s */
    char out[TDATA_PATH], id[SM_CLIENT_ID_MAX];
    sm_client *c = sm_client_new_ctx(r.ctx, r.client);
    submit_n(c, tdata_path(out, dir, "poison"), 1, id);
    for (int k = 0; k < 3; k++)
        worker_dies_holding_a_task(&r);
    expect_one_map_failed(c, id);
    sm_client_destroy(&c);
    rig_stop(&r);
}

typedef struct fetched {
    char out[TDATA_PATH];
    int files, index_first;
} fetched;

/* Each file fetched must equal the broker's copy on disk. */
static int fetched_file(const char *path, const void *data, size_t len, void *u)
{
    fetched *f = u;
    char full[2 * TDATA_PATH];
    size_t n;
    snprintf(full, sizeof full, "%s/%s", f->out, path);
    unsigned char *disk = sm_file_read(full, 1 << 20, &n, NULL);
    cr_assert_not_null(disk, "%s: not on the broker's disk", path);
    cr_assert(n == len && memcmp(disk, data, n) == 0, "%s differs", path);
    free(disk);
    if (f->files++ == 0)
        f->index_first = strcmp(path, "index.csv") == 0;
    return 0;
}

Test(broker, fetch_pages_through_every_file)
{
    rig r;
    rig_start(&r);
    sm_broker_set_fetch_bytes(r.b, 10000); /* about 3 maps a reply */
    fetched f = {0};
    char id[SM_CLIENT_ID_MAX];
    sm_client *c = sm_client_new_ctx(r.ctx, r.client);
    submit_n(c, tdata_path(f.out, dir, "out"), 16, id);
    sm_client_status st;
    cr_assert_eq(sm_client_wait(c, id, NULL, NULL, &st), 0, "%s", sm_client_error(c));
    cr_assert_eq(sm_client_fetch_each(c, id, fetched_file, &f), 0, "%s",
                 sm_client_error(c));
    /* index.csv, then each map's .npy, its record's .json, the map's PNG
     * and overlay, and with the first method each image's input.png */
    cr_assert_eq(f.files, 1 + 16 * 4 + 16, "%d files", f.files);
    cr_assert(f.index_first);

    /* one file by name: what FETCH lists, nothing else of the folder */
    char rel[256], full[2 * TDATA_PATH];
    FILE *idx = fopen(tdata_path(full, f.out, "index.csv"), "r");
    cr_assert_not_null(idx);
    char line[512], first[128] = "";
    cr_assert_not_null(fgets(line, sizeof line, idx)); /* the header */
    cr_assert_not_null(fgets(line, sizeof line, idx));
    fclose(idx);
    sscanf(line, "%127[^,]", first);
    const char *named[] = {"index.csv", "maps/%s/sal.png", "maps/%s/input.png",
                           "maps/%s/sal.npy"};
    for (size_t k = 0; k < sizeof named / sizeof *named; k++) {
        snprintf(rel, sizeof rel, named[k], first);
        void *data;
        size_t len;
        cr_assert_eq(sm_client_fetch_file(c, id, rel, &data, &len), 0, "%s: %s", rel,
                     sm_client_error(c));
        fetched one = f;
        fetched_file(rel, data, len, &one);
        free(data);
    }
    const char *absent[] = {"job.json", "maps/%s/sal.row", "maps/%s/grad.npy",
                            "maps/nosuch/sal.npy"};
    for (size_t k = 0; k < sizeof absent / sizeof *absent; k++) {
        snprintf(rel, sizeof rel, absent[k], first);
        void *data;
        size_t len;
        cr_assert_eq(sm_client_fetch_file(c, id, rel, &data, &len), -1, "%s served", rel);
        cr_assert_str_eq(sm_client_error_code(c), "not_found", "%s: %s", rel,
                         sm_client_error(c));
        cr_assert_null(data);
    }
    sm_client_destroy(&c);
    rig_stop(&r);
}

static int journal_ids(const sm_journal_row *row, void *u)
{
    strcat(u, row->id);
    strcat(u, " ");
    return 0;
}

/* The paths under dir, sorted, joined by spaces ("" when dir is gone). */
static void tree(const char *dir, char *buf, size_t cap)
{
    char cmd[2 * TDATA_PATH];
    snprintf(cmd, sizeof cmd, "cd '%s' 2>/dev/null && find . | sort | tr '\\n' ' '", dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = '\0';
    pclose(p);
}

/* DELETE: refused while the job runs; then the job is forgotten and every
 * file it wrote is gone, a user's kept. */
Test(broker, delete_forgets_a_job_and_removes_its_files)
{
    rig r;
    rig_start(&r);
    char out[TDATA_PATH], big[TDATA_PATH], id[SM_CLIENT_ID_MAX], bid[SM_CLIENT_ID_MAX];
    char notes[2 * TDATA_PATH], left[4096];
    sm_client *c = sm_client_new_ctx(r.ctx, r.client);
    submit_n(c, tdata_path(big, dir, "big"), 2000, bid);
    cr_assert_eq(sm_client_delete(c, bid), -1, "a running job deleted");
    cr_assert_str_eq(sm_client_error_code(c), "invalid", "%s", sm_client_error(c));
    cr_assert(tdata_has(sm_client_error(c), "cancel it"), "%s", sm_client_error(c));
    cr_assert_eq(sm_client_cancel(c, bid), 0, "%s", sm_client_error(c));

    submit_n(c, tdata_path(out, dir, "del"), 4, id);
    sm_client_status st;
    cr_assert_eq(sm_client_wait(c, id, NULL, NULL, &st), 0, "%s", sm_client_error(c));
    cr_assert_str_eq(st.state, "done");
    tdata_path(notes, out, "notes.txt");
    cr_assert_eq(sm_file_write_atomic(notes, "mine\n", 5, NULL), 0);
    tree(out, left, sizeof left);
    cr_assert(tdata_has(left, "sal.png") && tdata_has(left, "report/index.html"), "%s", left);
    cr_assert_eq(sm_client_delete(c, id), 0, "%s", sm_client_error(c));
    tree(out, left, sizeof left);
    cr_assert_str_eq(left, ". ./notes.txt ");
    cr_assert_eq(sm_client_status_of(c, id, &st), -1);
    cr_assert_str_eq(sm_client_error_code(c), "unknown_job");
    cr_assert_eq(sm_client_delete(c, id), -1);
    cr_assert_str_eq(sm_client_error_code(c), "unknown_job");
    /* the cancelled job, once its pages are written; tasks it had out with
     * the worker are dropped with it */
    double deadline = sm_clock_now() + 60;
    int rc;
    while ((rc = sm_client_delete(c, bid)) && !strcmp(sm_client_error_code(c), "busy") &&
           sm_clock_now() < deadline)
        nanosleep(&(struct timespec){0, 10000000}, NULL); /* a poll's pace */
    cr_assert_eq(rc, 0, "%s", sm_client_error(c));
    tree(big, left, sizeof left);
    cr_assert_str_eq(left, "");
    sm_client_destroy(&c);
    rig_stop(&r);
}

/* A deleted job is gone from the journal: a restarted broker does not
 * resume it. */
Test(broker, journal_delete)
{
    sm_err err = {0};
    sm_journal *jr = sm_journal_open(NULL, &err);
    cr_assert_not_null(jr, "%s", err.msg);
    cr_assert_eq(sm_journal_add(jr, "ja", "a", 1, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_journal_add(jr, "jb", "b", 1, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_journal_delete(jr, "ja", &err), 0, "%s", err.msg);
    cr_assert_eq(sm_journal_delete(jr, "jz", &err), 0, "%s", err.msg); /* none: no-op */
    char seen[64] = "";
    cr_assert_eq(sm_journal_each(jr, journal_ids, seen, &err), 0, "%s", err.msg);
    cr_assert_str_eq(seen, "jb ");
    sm_journal_destroy(&jr);
}

/* A state folder too long for a blob's path (here a TMPDIR of about 4040
 * bytes) is refused at start, not cut into another folder. */
Test(broker, a_state_folder_too_long_is_refused)
{
    char deep[5000];
    int n = snprintf(deep, sizeof deep, "%s", dir);
    while (n < 4040) /* folders of 200 bytes: each within NAME_MAX */
        n += snprintf(deep + n, sizeof deep - (size_t)n, "/%0200d", 0);
    sm_err err = {0};
    cr_assert_eq(sm_file_mkdirs(deep, &err), 0, "%s", err.msg);
    setenv("TMPDIR", deep, 1);
    void *ctx = zmq_ctx_new();
    sm_broker_config bc;
    loopback_config(&bc);
    sm_broker *b = sm_broker_new(ctx, &bc, &err);
    cr_assert_null(b, "a state folder of %d bytes was taken", n);
    cr_assert(tdata_has(err.msg, "state: path longer than 4095 bytes"), "%s",
              err.msg);
    zmq_ctx_term(ctx);
}

/* An inline image whose id makes a path longer than the system takes is
 * refused at SUBMIT, naming the image, not stored under a cut name. */
Test(broker, an_image_id_too_long_for_a_path_is_refused)
{
    rig r;
    rig_start_with(&r, 0, 1.0);
    char id[4300], out[TDATA_PATH], jid[SM_CLIENT_ID_MAX];
    int n = 0;
    while (n < 4200) /* folders of 100 bytes */
        n += snprintf(id + n, sizeof id - (size_t)n, "%s%0100d", n ? "/" : "", 0);
    const char *methods[] = {"sal"};
    sm_client_image im = {.id = id, .label = "0", .data = "x", .len = 1};
    sm_client_job j = {.model = "models/mnist_cnn.onnx",
                       .config = "models/mnist_cnn.yaml", .images = &im,
                       .n_images = 1, .methods = methods, .n_methods = 1,
                       .out = tdata_path(out, dir, "out")};
    sm_client *c = sm_client_new_ctx(r.ctx, r.client);
    cr_assert_eq(sm_client_submit(c, &j, jid), -1, "a %d-byte image id was taken", n);
    cr_assert(tdata_has(sm_client_error(c), "image: 00000"), "%s", sm_client_error(c));
    cr_assert(tdata_has(sm_client_error(c), "path longer than 4095 bytes"), "%s",
              sm_client_error(c));
    sm_client_destroy(&c);
    expect_serving(&r);
    rig_stop(&r);
}

/* The next TASK on any of n (1 or 2) fake workers within 10 s: its
 * socket's index, the frames (caller frees) and the task decoded from
 * them into *t. */
static int next_task(void *const *s, int n, sm_msg_frames *f,
                     sm_msg_doc **doc, sm_msg_task *t)
{
    sm_err err;
    for (;;) {
        zmq_pollitem_t it[2] = {{s[0], 0, ZMQ_POLLIN, 0},
                                {n > 1 ? s[1] : NULL, 0, ZMQ_POLLIN, 0}};
        cr_assert_gt(zmq_poll(it, n, 10000), 0, "no TASK for the workers");
        int w = it[0].revents & ZMQ_POLLIN ? 0 : 1;
        cr_assert_eq(sm_msg_recv(s[w], 0, 0, f, &err), 0, "%s", err.msg);
        if (strcmp(f->command, "TASK") != 0) {
            sm_msg_frames_free(f);
            continue;
        }
        sm_msg_limits lim;
        sm_msg_limits_default(&lim);
        lim.max_body = f->len;
        cr_assert_eq(sm_msg_decode_task(f->body, f->len, &lim, doc, t, &err),
                     0, "%s", err.msg);
        return w;
    }
}

static void send_result(void *s, const sm_msg_result *r)
{
    sm_msg_buf buf = {0};
    cr_assert_eq(sm_msg_encode_result(r, &buf), 0);
    send3(s, SM_PROTO_WORKER, "RESULT", (const char *)buf.data, buf.len);
    sm_msg_buf_free(&buf);
}

/* A fake worker's RESULT with a record far beyond any fixed buffer and a
 * named array: the map is written with its record whole, in
 * <method>.json and its row, and the array as <method>.<name>.npy. */
Test(broker, a_long_record_is_kept_whole)
{
    rig r;
    rig_start_with(&r, 0, 1.0);
    char out[TDATA_PATH], jid[SM_CLIENT_ID_MAX];
    sm_client *c = sm_client_new_ctx(r.ctx, r.client);
    submit_n(c, tdata_path(out, dir, "out"), 1, jid);
    void *s = dealer(&r, r.workers);
    send3(s, SM_PROTO_WORKER, "READY", "\x81\xa8" "capacity\x01", 11);
    sm_msg_frames f;
    sm_err err;
    sm_msg_doc *doc = NULL;
    sm_msg_task t;
    next_task(&s, 1, &f, &doc, &t);
    static float map[28 * 28];
    static char record[100000];
    memset(record, ' ', sizeof record - 1); /* JSON whitespace, then {} */
    memcpy(record + sizeof record - 3, "{}", 3);
    static const float ex[2][3] = {{1, 2, 3}, {-4, 5.5f, 6}};
    sm_msg_array arr = {.name = "exemplars", .ndim = 2, .shape = {2, 3},
                        .data = &ex[0][0]};
    sm_msg_item item = {.id = t.images[0].id, .height = 28, .width = 28,
                        .map = map, .params = "{}", .record = record,
                        .arrays = &arr, .n_arrays = 1};
    send_result(s, &(sm_msg_result){.task = t.task, .items = &item,
                                    .n_items = 1});
    sm_client_status st;
    cr_assert_eq(sm_client_wait(c, jid, NULL, NULL, &st), 0, "%s",
                 sm_client_error(c));
    cr_assert_str_eq(st.state, "done", "%s", st.error);
    cr_assert_eq(st.maps_done, 1);
    char path[TDATA_PATH], rel[TDATA_PATH + 64];
    snprintf(rel, sizeof rel, "maps/%s/sal.json", t.images[0].id);
    size_t len;
    unsigned char *json = sm_file_read(tdata_path(path, out, rel), 1 << 20,
                                       &len, &err);
    cr_assert_not_null(json, "%s", err.msg);
    cr_assert_eq(len, sizeof record - 1);
    cr_assert(memcmp(json, record, len) == 0);
    free(json);
    snprintf(rel, sizeof rel, "maps/%s/sal.exemplars.npy", t.images[0].id);
    sm_tensor *a = sm_npy_read(tdata_path(path, out, rel), &err);
    cr_assert_not_null(a, "%s", err.msg);
    cr_assert(a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3);
    cr_assert(memcmp(a->data, ex, sizeof ex) == 0);
    sm_tensor_destroy(&a);
    sm_msg_doc_destroy(&doc);
    sm_msg_frames_free(&f);
    zmq_close(s);
    sm_client_destroy(&c);
    rig_stop(&r);
}

/* Two fake workers take a neighbourhood method's image split in 2 parts
 * through two rounds: the chunks of round 1 carry no state (the workers
 * begin it), the step's answer {state, samples} comes back as chunks of
 * round 2 carrying that state, whose scores reach the second step in part
 * order with the state; its item is written. */
Test(broker, rounds_go_through_chunks_and_steps)
{
    rig r;
    rig_start_with(&r, 0, 1.0);
    char out[TDATA_PATH], jid[SM_CLIENT_ID_MAX];
    sm_client *c = sm_client_new_ctx(r.ctx, r.client);
    const char *methods[] = {"occlusion"};
    sm_client_job j = {.model = "models/mnist_cnn.onnx",
                       .config = "models/mnist_cnn.yaml",
                       .dataset = "data/mnist/test", .methods = methods,
                       .n_methods = 1, .out = tdata_path(out, dir, "rounds"),
                       .limit = 1, .batch = 4};
    void *s[2] = {dealer(&r, r.workers), dealer(&r, r.workers)};
    for (int w = 0; w < 2; w++) {
        send3(s[w], SM_PROTO_WORKER, "READY", "\x81\xa8" "capacity\x01", 11);
        /* a HEARTBEAT shows the broker knows the worker: both are idle
         * when the job is planned, so its image is split in 2 */
        char cmd[32] = "";
        while (strcmp(cmd, "HEARTBEAT") != 0)
            cr_assert(reply(s[w], 10, cmd, sizeof cmd), "no HEARTBEAT");
    }
    cr_assert_eq(sm_client_submit(c, &j, jid), 0, "%s", sm_client_error(c));
    const char state[] = "the image's state after round 1";
    const int64_t n[2] = {10, 6};
    for (int round = 0; round < 2; round++) {
        for (int k = 0; k < 2; k++) {
            sm_msg_frames f;
            sm_msg_doc *doc = NULL;
            sm_msg_task t;
            int w = next_task(s, 2, &f, &doc, &t);
            cr_assert_eq(t.kind, SM_TASK_CHUNK, "round %d", round + 1);
            cr_assert_eq(t.parts, 2);
            if (round == 0)
                cr_assert_null(t.state);
            else
                cr_assert(t.state_len == sizeof state &&
                          memcmp(t.state, state, sizeof state) == 0);
            int64_t a = t.part * n[round] / 2, b = (t.part + 1) * n[round] / 2;
            double y[10];
            for (int64_t q = a; q < b; q++)
                y[q - a] = 100.0 * round + (double)q;
            send_result(s[w], &(sm_msg_result){.task = t.task, .scores = y,
                                               .n_scores = b - a,
                                               .samples = n[round]});
            sm_msg_doc_destroy(&doc);
            sm_msg_frames_free(&f);
        }
        sm_msg_frames f;
        sm_msg_doc *doc = NULL;
        sm_msg_task t;
        int w = next_task(s, 2, &f, &doc, &t);
        cr_assert_eq(t.kind, SM_TASK_STEP);
        cr_assert_eq(t.n_scores, n[round]);
        for (int64_t q = 0; q < n[round]; q++)
            cr_assert_eq(t.scores[q], 100.0 * round + (double)q);
        if (round == 0) {
            cr_assert_null(t.state);
            send_result(s[w], &(sm_msg_result){
                                  .task = t.task,
                                  .state = (const uint8_t *)state,
                                  .state_len = sizeof state,
                                  .samples = n[1]});
        } else {
            cr_assert(t.state_len == sizeof state);
            static float map[28 * 28];
            sm_msg_item item = {.id = t.images[0].id, .height = 28,
                                .width = 28, .map = map, .params = "{}",
                                .record = "{\"rounds\": 2}"};
            send_result(s[w], &(sm_msg_result){.task = t.task,
                                               .items = &item,
                                               .n_items = 1});
        }
        sm_msg_doc_destroy(&doc);
        sm_msg_frames_free(&f);
    }
    sm_client_status st;
    cr_assert_eq(sm_client_wait(c, jid, NULL, NULL, &st), 0, "%s",
                 sm_client_error(c));
    cr_assert_str_eq(st.state, "done", "%s", st.error);
    cr_assert_eq(st.maps_done, 1);
    cr_assert_eq(st.maps_failed, 0);
    for (int w = 0; w < 2; w++)
        zmq_close(s[w]);
    sm_client_destroy(&c);
    rig_stop(&r);
}

/* Auxiliary models: uploaded by the client, required by the broker, sent
 * by hash with every task and loaded by the worker beside the classifier
 * (the job completes); one that is not an ONNX model refuses the job,
 * named. */
Test(broker, auxiliary_models_travel_with_the_job)
{
    rig r;
    rig_start(&r);
    char out[TDATA_PATH], bad[TDATA_PATH], jid[SM_CLIENT_ID_MAX];
    sm_client *c = sm_client_new_ctx(r.ctx, r.client);
    const char *methods[] = {"sal"};
    const char *names[] = {"aae_decoder", "other"};
    const char *paths[] = {"tests/fixtures/misc.onnx",
                           "tests/fixtures/lenet.onnx"};
    sm_client_job j = {.model = "models/mnist_cnn.onnx",
                       .config = "models/mnist_cnn.yaml",
                       .dataset = "data/mnist/test", .methods = methods,
                       .n_methods = 1, .out = tdata_path(out, dir, "aux"),
                       .limit = 2, .batch = 4, .aux_names = names,
                       .aux_paths = paths, .n_aux = 2};
    cr_assert_eq(sm_client_submit(c, &j, jid), 0, "%s", sm_client_error(c));
    sm_client_status st;
    cr_assert_eq(sm_client_wait(c, jid, NULL, NULL, &st), 0, "%s",
                 sm_client_error(c));
    cr_assert_str_eq(st.state, "done", "%s", st.error);
    cr_assert_eq(st.maps_done, 2);
    tdata_text(bad, dir, "not.onnx", "not a model");
    paths[1] = bad;
    j.out = tdata_path(out, dir, "aux2");
    cr_assert_eq(sm_client_submit(c, &j, jid), -1);
    cr_assert(tdata_has(sm_client_error(c), "model 'other'"), "%s",
              sm_client_error(c));
    sm_client_destroy(&c);
    rig_stop(&r);
}

/* The next message on fake broker socket s (a ROUTER) within 10 s that is
 * not a HEARTBEAT, into f (caller frees). */
static void next_from_worker(void *s, sm_msg_frames *f)
{
    sm_err err;
    for (;;) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        cr_assert_gt(zmq_poll(&it, 1, 10000), 0, "the worker said nothing");
        cr_assert_eq(sm_msg_recv(s, 1, 0, f, &err), 0, "%s", err.msg);
        if (strcmp(f->command, "HEARTBEAT"))
            return;
        sm_msg_frames_free(f);
    }
}

/* A real worker against a fake broker: a task whose model it lacks asks
 * for the model once and waits for the answer (it used to ask again each
 * time round its loop, and the broker sent a copy of the model for every
 * ask); a model the broker does not hold fails the task, named. */
Test(broker, a_worker_asks_for_a_missing_model_once)
{
    sm_err err;
    rig r;
    memset(&r, 0, sizeof r);
    r.ctx = zmq_ctx_new();
    void *fb = zmq_socket(r.ctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(fb, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq(zmq_bind(fb, "tcp://127.0.0.1:*"), 0);
    size_t eplen = sizeof r.workers;
    zmq_getsockopt(fb, ZMQ_LAST_ENDPOINT, r.workers, &eplen);
    rig_add_worker(&r, 1.0);

    sm_msg_frames f;
    next_from_worker(fb, &f);
    cr_assert_str_eq(f.command, "READY");
    uint8_t id[256];
    size_t id_len = f.identity_len;
    memcpy(id, f.identity, id_len);
    sm_msg_frames_free(&f);
    char hash[SM_HASH_HEX + 1];
    sm_hash_hex("no such model", 13, hash);
    uint8_t px[4] = {0, 64, 128, 255};
    sm_msg_image im = {.id = "p", .label_index = -1, .format = SM_IMAGE_U8,
                       .width = 2, .height = 2, .bands = 1, .data = px,
                       .len = 4};
    sm_msg_task t = {.task = 7, .job = "j", .kind = SM_TASK_IMAGES,
                     .model = hash, .method = "sal", .target = "predicted",
                     .score = "logit", .images = &im, .n_images = 1};
    sm_msg_buf b = {0};
    cr_assert_eq(sm_msg_encode_task(&t, &b), 0);
    cr_assert_eq(sm_msg_send(fb, id, id_len, SM_PROTO_WORKER, "TASK", b.data,
                             b.len), 0);
    sm_msg_buf_free(&b);
    next_from_worker(fb, &f);
    cr_assert_str_eq(f.command, "BLOB_GET");
    sm_msg_frames_free(&f);
    sm_msg_error e = {"unknown_blob", hash, "BLOB_GET"};
    cr_assert_eq(sm_msg_encode_error(&e, &b), 0);
    cr_assert_eq(sm_msg_send(fb, id, id_len, SM_PROTO_WORKER, "ERROR", b.data,
                             b.len), 0);
    sm_msg_buf_free(&b);
    int asks = 0;
    for (;;) {
        next_from_worker(fb, &f);
        if (!strcmp(f.command, "RESULT"))
            break;
        asks += !strcmp(f.command, "BLOB_GET");
        sm_msg_frames_free(&f);
        cr_assert_lt(asks, 100, "the worker keeps asking for the model");
    }
    cr_assert_eq(asks, 0, "the worker asked %d more times", asks);
    sm_msg_limits lim;
    sm_msg_limits_default(&lim);
    sm_msg_doc *doc = NULL;
    sm_msg_result res;
    cr_assert_eq(sm_msg_decode_result(f.body, f.len, &lim, &doc, &res, &err),
                 0, "%s", err.msg);
    cr_assert_eq(res.task, 7);
    cr_assert_not_null(res.error);
    cr_assert(tdata_has(res.error, "the broker does not hold it"), "%s",
              res.error);
    cr_assert(tdata_has(res.error, hash), "%s", res.error);
    sm_msg_doc_destroy(&doc);
    sm_msg_frames_free(&f);
    atomic_store(&r.wstop, 1);
    pthread_join(r.wt, NULL);
    sm_worker_destroy(&r.w);
    zmq_close(fb);
    zmq_ctx_term(r.ctx);
}

Test(broker, plaintext_beyond_loopback_is_refused)
{
    void *ctx = zmq_ctx_new();
    sm_broker_config bc;
    sm_err err;
    loopback_config(&bc);
    snprintf(bc.client_endpoint, sizeof bc.client_endpoint, "tcp://*:*");
    cr_assert_null(sm_broker_new(ctx, &bc, &err));
    cr_assert(tdata_has(err.msg, "client_endpoint tcp://*:* is not loopback and "
                        "CURVE is off: set curve_secret_key and curve_allow_dir "
                        "(salmap keygen NAME"), "%s", err.msg);
    cr_assert(tdata_has(err.msg, "insecure_allow_plaintext: true"), "%s", err.msg);
    loopback_config(&bc);
    snprintf(bc.worker_endpoint, sizeof bc.worker_endpoint, "tcp://0.0.0.0:*");
    cr_assert_null(sm_broker_new(ctx, &bc, &err));
    cr_assert(tdata_has(err.msg, "worker_endpoint tcp://0.0.0.0:* is not loopback"),
              "%s", err.msg);
    /* the explicit opt-out binds it */
    bc.insecure_allow_plaintext = 1;
    sm_broker *b = sm_broker_new(ctx, &bc, &err);
    cr_assert_not_null(b, "%s", err.msg);
    sm_broker_destroy(&b);
    /* and so does CURVE */
    char pub[41], path[TDATA_PATH], text[64];
    keypair("broker", pub);
    keypair("peer", pub);
    snprintf(text, sizeof text, "%s\n", pub);
    tdata_text(path, dir, "allow/peer.pub", text);
    bc.insecure_allow_plaintext = 0;
    tdata_path(bc.curve_secret_key, dir, "broker.key");
    tdata_path(bc.curve_allow_dir, dir, "allow");
    b = sm_broker_new(ctx, &bc, &err);
    cr_assert_not_null(b, "%s", err.msg);
    sm_broker_destroy(&b);
    zmq_ctx_term(ctx);
}

/* Jobs may read under data/mnist/test/1 and the test's folder/ds, and
 * write under its folder/out only. */
static void confined(sm_broker_config *bc)
{
    char path[TDATA_PATH];
    snprintf(bc->dataset_roots[0], sizeof bc->dataset_roots[0], "data/mnist/test/1");
    snprintf(bc->dataset_roots[1], sizeof bc->dataset_roots[1], "%s",
             tdata_path(path, dir, "ds"));
    bc->n_dataset_roots = 2;
    tdata_text(path, dir, "ds/.keep", "");
    snprintf(bc->output_root, sizeof bc->output_root, "%s", tdata_path(path, dir, "out"));
}

/* SUBMIT of a sal job reading ds into out: 0, or -1 with the client's
 * error (the broker's ERROR message) in msg. */
static int submit_paths(rig *r, const char *ds, const char *out, char *msg)
{
    sm_client *c = sm_client_new_ctx(r->ctx, r->client);
    const char *methods[] = {"sal"};
    char id[SM_CLIENT_ID_MAX];
    sm_client_job j = {.model = "models/mnist_cnn.onnx",
                       .config = "models/mnist_cnn.yaml", .dataset = ds,
                       .methods = methods, .n_methods = 1, .out = out, .limit = 2};
    int rc = sm_client_submit(c, &j, id);
    snprintf(msg, TDATA_PATH, "%s", rc ? sm_client_error(c) : "");
    sm_client_destroy(&c);
    return rc;
}

/* dir/ds/list.csv (path into csv) naming, by absolute path, the first
 * image of data/mnist/test/<digit>. */
static void manifest(char *csv, const char *digit)
{
    char folder[TDATA_PATH], abs_ds[TDATA_PATH], text[3 * TDATA_PATH];
    snprintf(folder, sizeof folder, "data/mnist/test/%s", digit);
    DIR *d = opendir(folder);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) && e->d_name[0] == '.')
        ;
    cr_assert_not_null(e);
    cr_assert_not_null(realpath(folder, abs_ds));
    snprintf(text, sizeof text, "path,label\n%s/%s,%s\n", abs_ds, e->d_name, digit);
    closedir(d);
    tdata_text(csv, dir, "ds/list.csv", text);
}

Test(broker, paths_outside_the_roots_are_refused)
{
    rig r;
    rig_start_tuned(&r, 0, 1.0, confined);
    char out[TDATA_PATH], elsewhere[TDATA_PATH], link[TDATA_PATH], msg[TDATA_PATH],
        abs_ds[TDATA_PATH], csv[TDATA_PATH], text[TDATA_PATH];
    tdata_path(out, dir, "out/job");
    tdata_path(elsewhere, dir, "elsewhere");
    /* the good job, the root's own folder and a relative path into it */
    cr_assert_eq(submit_paths(&r, "data/mnist/test/1", out, msg), 0, "%s", msg);
    /* '..' out of the dataset root, an absolute path elsewhere */
    cr_assert_eq(submit_paths(&r, "data/mnist/test/1/../7", elsewhere, msg), -1);
    cr_assert(tdata_has(msg, "dataset 'data/mnist/test/1/../7' resolves to "), "%s", msg);
    cr_assert(tdata_has(msg, "outside dataset_roots"), "%s", msg);
    cr_assert_not_null(realpath("data/mnist/test/7", abs_ds));
    cr_assert_eq(submit_paths(&r, abs_ds, tdata_path(link, dir, "out/b"), msg), -1);
    cr_assert(tdata_has(msg, "outside dataset_roots"), "%s", msg);
    /* out elsewhere, and out through '..' */
    cr_assert_eq(submit_paths(&r, "data/mnist/test/1", elsewhere, msg), -1);
    cr_assert(tdata_has(msg, "out '"), "%s", msg);
    cr_assert(tdata_has(msg, "outside output_root"), "%s", msg);
    snprintf(link, sizeof link, "%s/out/../elsewhere2", dir);
    cr_assert_eq(submit_paths(&r, "data/mnist/test/1", link, msg), -1);
    cr_assert(tdata_has(msg, "outside output_root"), "%s", msg);
    /* a symlink in the output root that leads out */
    tdata_text(text, dir, "other/.keep", "");
    cr_assert_eq(symlink(tdata_path(text, dir, "other"), tdata_path(link, dir, "out/escape")),
                 0);
    cr_assert_eq(submit_paths(&r, "data/mnist/test/1", tdata_path(link, dir,
                                                                "out/escape/j"), msg), -1);
    cr_assert(tdata_has(msg, "outside output_root"), "%s", msg);
    /* a manifest inside a root naming an image outside it: refused; the
     * same manifest naming an image inside: taken */
    manifest(csv, "7");
    cr_assert_eq(submit_paths(&r, csv, tdata_path(link, dir, "out/c"), msg), -1);
    cr_assert(tdata_has(msg, "image '"), "%s", msg);
    cr_assert(tdata_has(msg, "outside dataset_roots"), "%s", msg);
    manifest(csv, "1");
    cr_assert_eq(submit_paths(&r, csv, tdata_path(link, dir, "out/d"), msg), 0, "%s", msg);
    /* nothing was made outside, and the broker serves on */
    cr_assert_eq(access(elsewhere, F_OK), -1, "the refused out folder was made");
    expect_serving(&r);
    rig_stop(&r);
}

static void short_timeout(sm_broker_config *bc)
{
    bc->task_timeout = 2;
}

Test(broker, a_worker_that_heartbeats_but_never_answers_loses_its_tasks)
{
    rig r;
    rig_start_tuned(&r, 0, 0.5, short_timeout);
    /* the stranger joins first and takes every task it can */
    void *s = dealer(&r, r.workers);
    send3(s, SM_PROTO_WORKER, "READY", "\x81\xa8" "capacity\x04", 11);
    char out[TDATA_PATH], id[SM_CLIENT_ID_MAX], cmd[32] = "";
    tdata_path(out, dir, "out");
    sm_client *c = sm_client_new_ctx(r.ctx, r.client);
    submit(&r, c, out, id);
    int tasks = 0, told = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (double left = 20; left > 0 && !told;) {
        if (reply(s, 0.2, cmd, sizeof cmd)) {
            tasks += !strcmp(cmd, "TASK");
            told = !strcmp(cmd, "DISCONNECT");
        }
        send3(s, SM_PROTO_WORKER, "HEARTBEAT", "\x80", 1); /* alive, never answering */
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        left = 20 - (double)(t.tv_sec - t0.tv_sec);
    }
    cr_assert_gt(tasks, 0, "the stranger got no task");
    cr_assert(told, "the stranger was never told to start over");
    zmq_close(s);
    /* a real worker then does everything: every map, none failed */
    rig_add_worker(&r, 0.5);
    sm_client_status st;
    cr_assert_eq(sm_client_wait(c, id, NULL, NULL, &st), 0, "%s", sm_client_error(c));
    cr_assert_str_eq(st.state, "done", "%s", st.error);
    cr_assert_eq(st.maps_done, 16);
    cr_assert_eq(st.maps_failed, 0);
    sm_client_destroy(&c);
    rig_stop(&r);
}
