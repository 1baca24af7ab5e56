#include "schemas/curve.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

/* A draft option in zmq.h, but built into Debian's libzmq 4.3.4: a peer is
 * refused unless the ZAP handler admits it (no handler, no entry). */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

int sm_curve_read_key(const char *path, char *key, sm_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return sm_err_set(err, "%s: %s", path, strerror(errno));
    char buf[128];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *s = buf, *e = buf + n;
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    *e = '\0';
    uint8_t raw[32];
    if (e - s != 40 || !zmq_z85_decode(raw, s))
        return sm_err_set(err, "%s: not a CURVE key (40 Z85 characters)", path);
    memcpy(key, s, SM_CURVE_KEY);
    return 0;
}

int sm_curve_public(const char *secret, char *public_key, sm_err *err)
{
    if (zmq_curve_public(public_key, secret) != 0)
        return sm_err_set(err, "CURVE: %s", zmq_strerror(errno));
    return 0;
}

int sm_curve_server(void *sock, const char *secret, sm_err *err)
{
    int on = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &on, sizeof on) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, 40) ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, SM_CURVE_DOMAIN,
                       strlen(SM_CURVE_DOMAIN)) ||
        zmq_setsockopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &on, sizeof on))
        return sm_err_set(err, "CURVE server: %s", zmq_strerror(errno));
    return 0;
}

int sm_curve_client(void *sock, const char *server, const char *secret,
                    sm_err *err)
{
    char pub[SM_CURVE_KEY];
    if (sm_curve_public(secret, pub, err))
        return -1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 40) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 40) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, 40))
        return sm_err_set(err, "CURVE client: %s", zmq_strerror(errno));
    return 0;
}
