#include "broker/zap.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "broker/path.h"
#include "schemas/curve.h"

struct sm_zap {
    void *sock;          /* REP on inproc://zeromq.zap.01 */
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
    if (n == 7 && zmq_msg_size(&part[0]) == 3 &&
        !memcmp(zmq_msg_data(&part[0]), "1.0", 3) &&
        zmq_msg_size(&part[2]) == strlen(SM_CURVE_DOMAIN) &&
        !memcmp(zmq_msg_data(&part[2]), SM_CURVE_DOMAIN, strlen(SM_CURVE_DOMAIN)) &&
        zmq_msg_size(&part[5]) == 5 && !memcmp(zmq_msg_data(&part[5]), "CURVE", 5) &&
        zmq_msg_size(&part[6]) == 32 && allowed(z, zmq_msg_data(&part[6]))) {
        status = "200";
        text = "OK";
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

static void *zap_main(void *arg)
{
    sm_zap *z = arg;
    while (!atomic_load(&z->stop)) {
        zmq_pollitem_t it = {z->sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&it, 1, 100);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0)
            serve(z);
    }
    return NULL;
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
    free(z->keys);
    free(z);
    *zp = NULL;
}
