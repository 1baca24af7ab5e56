#include "broker/zap.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "broker/log.h"
#include "broker/path.h"
#include "schemas/curve.h"
#include "util/clock.h"

/* A refusal repeated within this many seconds is counted, not logged. */
#define REPEAT_EVERY 10.0

/* Sockets whose handshakes the handler's thread watches. */
#define MAX_WATCHED 2

struct sm_zap {
    void *ctx;
    void *sock;          /* REP on inproc://zeromq.zap.01 */
    /* monitor PAIRs, handed to the thread under the lock */
    pthread_mutex_t lock;
    void *mon[MAX_WATCHED];
    char mon_name[MAX_WATCHED][16];
    int n_mon;
    /* the last refusals logged, so that a peer retrying all the time
     * writes a line every REPEAT_EVERY seconds, not every retry */
    struct {
        char line[256];
        double at;
        unsigned repeats;
    } seen[4];
    uint8_t (*keys)[32];
    size_t n;
    pthread_t thread;
    int started;
    atomic_int stop;
};

static int allowed(const sm_zap *z, const uint8_t *key)
{
    for (size_t k = 0; k < z->n; k++)
        if (memcmp(z->keys[k], key, 32) == 0)
            return 1;
    return 0;
}

static void refusal(sm_zap *z, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Logs a refusal (the handler's thread only). */
static void refusal(sm_zap *z, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    double now = sm_clock_now();
    int k = 0, oldest = 0;
    while (k < 4 && strcmp(line, z->seen[k].line))
        k++;
    if (k < 4 && now - z->seen[k].at < REPEAT_EVERY) {
        z->seen[k].repeats++;
        return;
    }
    if (k == 4) {
        for (k = 1; k < 4; k++)
            if (z->seen[k].at < z->seen[oldest].at)
                oldest = k;
        k = oldest;
        snprintf(z->seen[k].line, sizeof z->seen[k].line, "%s", line);
    } else if (z->seen[k].repeats) {
        sm_broker_warn("%s (and %u more times)", line, z->seen[k].repeats);
        z->seen[k].at = now;
        z->seen[k].repeats = 0;
        return;
    }
    sm_broker_warn("%s", line);
    z->seen[k].at = now;
    z->seen[k].repeats = 0;
}

/* One request: version, id, domain, address, identity, mechanism, then
 * the mechanism's credentials (CURVE: the client's 32-byte key). */
static void serve(sm_zap *z)
{
    zmq_msg_t part[8];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, z->sock, 0) < 0) {
            zmq_msg_close(&m);
            for (int k = 0; k < n; k++)
                zmq_msg_close(&part[k]);
            return;
        }
        more = zmq_msg_more(&m);
        if (n < 8)
            part[n++] = m;
        else
            zmq_msg_close(&m);
    }
    const char *status = "400", *text = "not allowed";
    int ok_form = n == 7 && zmq_msg_size(&part[0]) == 3 &&
        !memcmp(zmq_msg_data(&part[0]), "1.0", 3) &&
        zmq_msg_size(&part[2]) == strlen(SM_CURVE_DOMAIN) &&
        !memcmp(zmq_msg_data(&part[2]), SM_CURVE_DOMAIN, strlen(SM_CURVE_DOMAIN)) &&
        zmq_msg_size(&part[5]) == 5 && !memcmp(zmq_msg_data(&part[5]), "CURVE", 5) &&
        zmq_msg_size(&part[6]) == 32;
    if (ok_form && allowed(z, zmq_msg_data(&part[6]))) {
        status = "200";
        text = "OK";
    } else {
        /* fail closed, and say so: the operator sees who knocked */
        char key[SM_CURVE_KEY] = "?", addr[64] = "?";
        if (n > 3)
            snprintf(addr, sizeof addr, "%.*s",
                     (int)(zmq_msg_size(&part[3]) < 63 ? zmq_msg_size(&part[3]) : 63),
                     (const char *)zmq_msg_data(&part[3]));
        if (ok_form)
            zmq_z85_encode(key, zmq_msg_data(&part[6]), 32);
        refusal(z, ok_form ? "refused a peer at %s: its CURVE key %s is not in "
                                 "curve_allow_dir"
                               : "refused a peer at %s: malformed ZAP request (%s)",
                       addr, key);
    }
    /* reply: version, request id, status code, text, user id, metadata */
    zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(z->sock, n > 1 ? zmq_msg_data(&part[1]) : "",
             n > 1 ? zmq_msg_size(&part[1]) : 0, ZMQ_SNDMORE);
    zmq_send(z->sock, status, 3, ZMQ_SNDMORE);
    zmq_send(z->sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(z->sock, "", 0, ZMQ_SNDMORE);
    zmq_send(z->sock, "", 0, 0);
    for (int k = 0; k < n; k++)
        zmq_msg_close(&part[k]);
}

/* One monitor event of a watched socket: a failed handshake is logged
 * (a key not allowed was logged by serve, with the peer's address). */
static void monitor_event(sm_zap *z, void *mon, const char *name)
{
    zmq_msg_t m[2];
    zmq_msg_init(&m[0]);
    zmq_msg_init(&m[1]);
    if (zmq_msg_recv(&m[0], mon, 0) < 0 || !zmq_msg_more(&m[0]) ||
        zmq_msg_recv(&m[1], mon, 0) < 0 || zmq_msg_size(&m[0]) < 6)
        goto out;
    uint16_t event;
    uint32_t value;
    memcpy(&event, zmq_msg_data(&m[0]), 2);
    memcpy(&value, (const char *)zmq_msg_data(&m[0]) + 2, 4);
    const char *why = NULL;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        why = value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
                  ? "it does not speak CURVE (a plaintext peer)"
              : value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
                  ? "its CURVE handshake does not decrypt (not this broker's "
                    "public key?)"
                  : "its handshake broke the protocol";
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        why = "its handshake failed";
    if (why)
        refusal(z, "%s port %.*s: refused a peer: %s", name,
                       (int)zmq_msg_size(&m[1]), (const char *)zmq_msg_data(&m[1]),
                       why);
out:
    while (zmq_msg_more(&m[1])) /* never left mid-message */
        zmq_msg_recv(&m[1], mon, 0);
    zmq_msg_close(&m[0]);
    zmq_msg_close(&m[1]);
}

static void *zap_main(void *arg)
{
    sm_zap *z = arg;
    while (!atomic_load(&z->stop)) {
        zmq_pollitem_t it[1 + MAX_WATCHED] = {{z->sock, 0, ZMQ_POLLIN, 0}};
        pthread_mutex_lock(&z->lock);
        int n = z->n_mon;
        for (int k = 0; k < n; k++)
            it[1 + k] = (zmq_pollitem_t){z->mon[k], 0, ZMQ_POLLIN, 0};
        pthread_mutex_unlock(&z->lock);
        int rc = zmq_poll(it, 1 + n, 100);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && (it[0].revents & ZMQ_POLLIN))
            serve(z);
        for (int k = 0; rc > 0 && k < n; k++)
            if (it[1 + k].revents & ZMQ_POLLIN)
                monitor_event(z, z->mon[k], z->mon_name[k]);
    }
    return NULL;
}

int sm_zap_watch(sm_zap *z, void *sock, const char *name, sm_err *err)
{
    char ep[64];
    if (z->n_mon >= MAX_WATCHED)
        return sm_err_set(err, "ZAP handler: more than %d sockets", MAX_WATCHED);
    snprintf(ep, sizeof ep, "inproc://salmap-zap-monitor-%p-%d", (void *)z, z->n_mon);
    void *mon = NULL;
    if (zmq_socket_monitor(sock, ep, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                         ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) ||
        !(mon = zmq_socket(z->ctx, ZMQ_PAIR)) || zmq_connect(mon, ep)) {
        if (mon)
            zmq_close(mon);
        return sm_err_set(err, "%s: monitor: %s", name, zmq_strerror(errno));
    }
    pthread_mutex_lock(&z->lock); /* the thread takes it from here */
    snprintf(z->mon_name[z->n_mon], sizeof z->mon_name[0], "%s", name);
    z->mon[z->n_mon++] = mon;
    pthread_mutex_unlock(&z->lock);
    return 0;
}

/* Every key file of dir into z->keys. */
static int load_keys(sm_zap *z, const char *dir, sm_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return sm_err_set(err, "curve_allow_dir %s: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        char path[BPATH_MAX], key[SM_CURVE_KEY];
        if (e->d_name[0] == '.')
            continue;
        if (bpath(path, err, "curve_allow_dir", "%s/%s", dir, e->d_name) ||
            sm_curve_read_key(path, key, err)) {
            rc = -1;
            break;
        }
        void *k = realloc(z->keys, (z->n + 1) * sizeof *z->keys);
        if (!k) {
            rc = sm_err_set(err, "out of memory");
            break;
        }
        z->keys = k;
        zmq_z85_decode(z->keys[z->n++], key);
    }
    closedir(d);
    if (rc == 0 && z->n == 0)
        rc = sm_err_set(err, "curve_allow_dir %s: no keys: nobody could connect",
                        dir);
    return rc;
}

sm_zap *sm_zap_new(void *ctx, const char *allow_dir, sm_err *err)
{
    sm_zap *z = calloc(1, sizeof *z);
    if (!z) {
        sm_err_set(err, "out of memory");
        return NULL;
    }
    z->ctx = ctx;
    pthread_mutex_init(&z->lock, NULL);
    if (load_keys(z, allow_dir, err))
        goto fail;
    z->sock = zmq_socket(ctx, ZMQ_REP);
    if (!z->sock || zmq_bind(z->sock, "inproc://zeromq.zap.01")) {
        sm_err_set(err, "ZAP handler: %s", zmq_strerror(errno));
        goto fail;
    }
    if (pthread_create(&z->thread, NULL, zap_main, z)) {
        sm_err_set(err, "ZAP handler: cannot start its thread");
        goto fail;
    }
    z->started = 1;
    return z;
fail:
    sm_zap_destroy(&z);
    return NULL;
}

void sm_zap_destroy(sm_zap **zp)
{
    sm_zap *z = *zp;
    if (!z)
        return;
    if (z->started) {
        atomic_store(&z->stop, 1);
        pthread_join(z->thread, NULL);
    }
    if (z->sock)
        zmq_close(z->sock);
    for (int k = 0; k < z->n_mon; k++)
        zmq_close(z->mon[k]);
    pthread_mutex_destroy(&z->lock);
    free(z->keys);
    free(z);
    *zp = NULL;
}
