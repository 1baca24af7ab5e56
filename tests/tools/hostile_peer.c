/* A hostile peer of the broker, for tests/integration/hostile.sh: it
 * attacks one port and says what it saw; the script checks that the
 * broker stays up, the job's maps stay right and the log names it all.
 *
 *   hostile_peer client ENDPOINT   garbage, wrong frame counts, truncated
 *                                  and huge-length msgpack, raw TCP junk,
 *                                  then a flood of 5000 requests; exits 0
 *                                  when every 3-frame request was answered
 *                                  ERROR (the protocol, section 4.8)
 *   hostile_peer worker ENDPOINT MODE SECONDS
 *                                  the same kinds of garbage as a stranger
 *                                  (told DISCONNECT) and as a worker, then
 *                                  READY: for each TASK leased to it, RESULTs
 *                                  with zero maps for the task ids around it
 *                                  (never leased, or leased to others: the
 *                                  broker must ignore them); its own tasks it
 *                                  never answers. MODE silent: no heartbeats
 *                                  either (it dies by liveness), then one
 *                                  heartbeat once forgotten; hang: keeps
 *                                  heartbeating (task_timeout must end it).
 *                                  Exits 0 once it held a task and was then
 *                                  told DISCONNECT, within SECONDS. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "schemas/msg.h"
#include "util/clock.h"

static void send_frames(void *s, int n, const char *const *data, const size_t *len)
{
    for (int k = 0; k < n; k++)
        zmq_send(s, data[k], len[k], k + 1 < n ? ZMQ_SNDMORE : 0);
}

static void send3(void *s, const char *sig, const char *cmd, const void *body,
                  size_t len)
{
    send_frames(s, 3, (const char *[]){sig, cmd, body},
                (size_t[]){strlen(sig), strlen(cmd), len});
}

/* The next message within ms: 1 with its command in cmd (and *f kept when
 * f), else 0. */
static int next(void *s, long ms, char *cmd, sm_msg_frames *f)
{
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    sm_msg_frames g;
    sm_err err;
    if (zmq_poll(&it, 1, ms) <= 0 || sm_msg_recv(s, 0, 0, &g, &err))
        return 0;
    snprintf(cmd, 32, "%s", g.command);
    if (f)
        *f = g;
    else
        sm_msg_frames_free(&g);
    return 1;
}

/* Bodies no receiver may trust: each claims more than it holds, or
 * breaks the format. */
typedef struct bad_body {
    const char *what;
    const char *bytes;
    size_t len;
} bad_body;

/* A body written as a string literal, its length without the NUL. */
#define B(what, lit) {what, lit, sizeof lit - 1}

static const bad_body bad_bodies[] = {
    B("garbage", "\xc1\xc1\xc1\xff"),
    B("empty", ""),
    B("truncated map", "\x82\xa5model\xa4"),
    B("array of 2^32-1", "\xdd\xff\xff\xff\xff\x01"),
    B("map of 2^32-1", "\xdf\xff\xff\xff\xff\x01"),
    B("str of 2^32-1", "\x81\xa3job\xdb\xff\xff\xff\xff" "abc"),
    B("bin of 2^32-1", "\x81\xa4" "data\xc6\xff\xff\xff\xff" "abc"),
    B("ext of 2^32-1", "\x81\xa4" "data\xc9\xff\xff\xff\xff\x01" "ab"),
    B("nesting 40 deep", "\x81\xa1x\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
                        "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
                        "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\xc0"),
    B("not a map", "\x93\x01\x02\x03"),
    B("trailing bytes", "\x80\x80"),
    B("wrong types", "\x83\xa5model\x07\xa3out\xa1x\xa7methods\x91\xa3sal"),
};
#define N_BAD (sizeof bad_bodies / sizeof *bad_bodies)

/* 1-, 2- and 5-frame messages and a bad signature: frames the broker must
 * read whole and drop (a wrong signature on the client port: ERROR). */
static void bad_frames(void *s, const char *sig)
{
    send_frames(s, 1, (const char *[]){"\xff\x00junk"}, (size_t[]){6});
    send_frames(s, 2, (const char *[]){sig, "LIST"}, (size_t[]){4, 4});
    send_frames(s, 5, (const char *[]){sig, "LIST", "\x80", "x", "y"},
                (size_t[]){4, 4, 1, 1, 1});
    send_frames(s, 3, (const char *[]){sig, "lower case!", "\x80"}, (size_t[]){4, 11, 1});
    send_frames(s, 3, (const char *[]){sig, "", "\x80"}, (size_t[]){4, 0, 1});
}

/* Raw bytes at the TCP port: an HTTP request, and a ZMTP greeting that
 * announces a frame of 2^63 bytes. */
static void raw_tcp(const char *ep)
{
    const char *hp = strstr(ep, "://");
    const char *colon = strrchr(ep, ':');
    if (!hp || !colon || strncmp(ep, "tcp", 3))
        return;
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(colon - hp - 3), hp + 3);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return;
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    static const unsigned char zmtp[] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0,
                                         'N', 'U', 'L', 'L', 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0x06, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff};
    for (int k = 0; k < 2; k++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            ssize_t w = k ? write(fd, zmtp, sizeof zmtp) : write(fd, http, sizeof http - 1);
            (void)w;
        }
        close(fd);
    }
}

static int attack_client(void *ctx, const char *ep)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0, hwm = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    if (zmq_connect(s, ep))
        return 2;
    raw_tcp(ep);
    bad_frames(s, SM_PROTO_CLIENT);
    int sent = 0, errors = 0;
    char cmd[32];
    send3(s, "SMW1", "LIST", "\x80", 1); /* a worker's signature here */
    sent++;
    send3(s, SM_PROTO_CLIENT, "FROB", "\x80", 1);
    sent++;
    static const char *const cmds[] = {"SUBMIT", "STATUS", "PUT", "FETCH", "WATCH",
                                       "CANCEL", "HAS", "LIST"};
    for (size_t c = 0; c < sizeof cmds / sizeof *cmds; c++)
        for (size_t k = 0; k < N_BAD; k++) {
            /* LIST takes any map (unknown fields are ignored) */
            if (!strcmp(cmds[c], "LIST") && !strcmp(bad_bodies[k].what, "wrong types"))
                continue;
            send3(s, SM_PROTO_CLIENT, cmds[c], bad_bodies[k].bytes, bad_bodies[k].len);
            sent++;
        }
    while (errors < sent && next(s, 5000, cmd, NULL))
        errors += !strcmp(cmd, "ERROR");
    /* the flood: requests sent without reading the replies */
    for (int k = 0; k < 5000; k++)
        send3(s, SM_PROTO_CLIENT, "STATUS", "\x81\xa3job\xa4nope", 10);
    zmq_close(s);
    printf("client: %d bad requests, %d ERROR replies; 5000 flooded\n", sent, errors);
    return errors == sent ? 0 : 1;
}

/* A RESULT for task id with a zero map for each image of the TASK: were
 * it counted, the job's maps would differ from the embedded run's. */
static void forged_result(void *s, uint64_t id, const sm_msg_task *t)
{
    sm_msg_item items[64] = {{0}};
    static const float zeros[28 * 28];
    size_t n = t->n_images < 64 ? t->n_images : 64;
    for (size_t k = 0; k < n; k++)
        items[k] = (sm_msg_item){.id = t->images[k].id, .predicted = 0, .target = 0,
                                 .height = 28, .width = 28, .map = zeros};
    sm_msg_result r = {.task = id, .items = items, .n_items = n};
    sm_msg_buf buf = {0};
    if (sm_msg_encode_result(&r, &buf) == 0)
        send3(s, SM_PROTO_WORKER, "RESULT", buf.data, buf.len);
    sm_msg_buf_free(&buf);
}

static int attack_worker(void *ctx, const char *ep, int hang, double seconds)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(s, ep))
        return 2;
    raw_tcp(ep);
    char cmd[32] = "";
    /* a stranger: garbage, then a RESULT, which earns a DISCONNECT */
    bad_frames(s, SM_PROTO_WORKER);
    send3(s, "SMC1", "READY", "\x81\xa8" "capacity\x02", 11);
    send3(s, SM_PROTO_WORKER, "RESULT", "\x81\xa4task\x01", 7);
    int told = 0;
    while (!told && next(s, 5000, cmd, NULL))
        told = !strcmp(cmd, "DISCONNECT");
    printf("worker: a stranger's RESULT %s\n", told ? "was told DISCONNECT" : "got no DISCONNECT");
    /* bad READYs, then a good one; garbage as a known worker */
    for (size_t k = 0; k < N_BAD; k++)
        send3(s, SM_PROTO_WORKER, "READY", bad_bodies[k].bytes, bad_bodies[k].len);
    static const char ready[] = "\x82\xa8" "capacity\x02\xa4name\xa7hostile";
    send3(s, SM_PROTO_WORKER, "READY", ready, sizeof ready - 1);
    for (size_t k = 0; k < N_BAD; k++) {
        send3(s, SM_PROTO_WORKER, "RESULT", bad_bodies[k].bytes, bad_bodies[k].len);
        send3(s, SM_PROTO_WORKER, "BLOB_GET", bad_bodies[k].bytes, bad_bodies[k].len);
    }
    send3(s, SM_PROTO_WORKER, "STEAL", "\x80", 1);
    int tasks = 0, forged = 0, disconnect = 0;
    uint64_t own[64];
    double end = sm_clock_now() + seconds, beat = 0, heard = sm_clock_now();
    sm_msg_limits lim;
    sm_msg_limits_default(&lim);
    while (sm_clock_now() < end && !disconnect) {
        sm_msg_frames f;
        /* silent: no heartbeat once it holds a task, until the broker has
         * been quiet for 2 s (it forgot us); then one, which an unknown
         * worker is answered DISCONNECT for */
        int quiet = !hang && tasks && sm_clock_now() - heard < 2.0;
        if (!quiet && sm_clock_now() > beat + 0.3) {
            send3(s, SM_PROTO_WORKER, "HEARTBEAT", "\x80", 1);
            beat = sm_clock_now();
        }
        if (!next(s, 100, cmd, &f))
            continue;
        heard = sm_clock_now();
        if (!strcmp(cmd, "TASK")) {
            sm_msg_doc *doc = NULL;
            sm_msg_task t;
            sm_err err;
            if (sm_msg_decode_task(f.body, f.len, &lim, &doc, &t, &err) == 0 && tasks < 64) {
                own[tasks++] = t.task;
                /* the broker leases up to the credit at once: take every
                 * TASK in flight first, so that no forged id is its own
                 * (whose result the broker would rightly take from the
                 * lease holder) */
                sm_msg_frames g;
                char c2[32];
                while (tasks < 2 && next(s, 500, c2, &g)) {
                    sm_msg_doc *d2 = NULL;
                    sm_msg_task t2;
                    if (!strcmp(c2, "TASK") &&
                        sm_msg_decode_task(g.body, g.len, &lim, &d2, &t2, &err) == 0)
                        own[tasks++] = t2.task;
                    sm_msg_doc_destroy(&d2);
                    sm_msg_frames_free(&g);
                }
                /* ids never leased (far off), and its neighbours: leased to
                 * the real workers, or done */
                uint64_t ids[9] = {t.task ^ 0xffffffffull};
                for (uint64_t d = 1; d <= 4; d++)
                    ids[2 * d - 1] = t.task + d, ids[2 * d] = t.task - d;
                for (int k = 0; k < 9; k++) {
                    int mine = 0;
                    for (int o = 0; o < tasks; o++)
                        mine |= own[o] == ids[k];
                    if (!mine) {
                        forged_result(s, ids[k], &t);
                        forged++;
                    }
                }
            }
            sm_msg_doc_destroy(&doc);
        } else if (!strcmp(cmd, "DISCONNECT")) {
            disconnect = tasks > 0;
        }
        sm_msg_frames_free(&f);
    }
    zmq_close(s);
    printf("worker: held %d task(s) without answering, forged %d results, %s\n", tasks,
           forged, disconnect ? "told DISCONNECT" : "never told DISCONNECT");
    return tasks > 0 && told && disconnect ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "client") && strcmp(argv[1], "worker")) ||
        (!strcmp(argv[1], "worker") && argc != 5)) {
        fprintf(stderr, "usage: hostile_peer client ENDPOINT\n"
                        "       hostile_peer worker ENDPOINT silent|hang SECONDS\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    int rc = !strcmp(argv[1], "client")
                 ? attack_client(ctx, argv[2])
                 : attack_worker(ctx, argv[2], !strcmp(argv[3], "hang"), atof(argv[4]));
    zmq_ctx_term(ctx);
    return rc;
}
