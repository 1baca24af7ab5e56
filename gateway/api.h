/* The gateway's routes (docs/API.md): an HTTP request in, a JSON (or
 * file) answer out, each through a libsalmap-client connection of its own
 * to the broker. Knows nothing of HTTP's transport (gateway/http.c). */
#ifndef SM_GW_API_H
#define SM_GW_API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gateway/json.h"

typedef struct sm_gw_api {
    void *zmq_ctx;             /* shared by the requests' clients */
    const char *broker;        /* its client endpoint */
    const char *server_key, *secret_key; /* CURVE key files, or NULL */
    double timeout;            /* a broker request's, seconds */
    double explain_timeout;    /* POST /v1/explain's wait for its job, seconds */
    sm_gw_paths paths;
} sm_gw_api;

typedef struct sm_gw_request {
    const char *method, *path; /* "POST", "/v1/jobs" (percent-decoded) */
    const char *(*query)(void *u, const char *key); /* NULL when absent */
    void *u;
    const char *content_type;  /* or NULL */
    const uint8_t *body;
    size_t len;
} sm_gw_request;

typedef struct sm_gw_reply {
    int status;
    const char *type;          /* Content-Type */
    char *body;                /* malloc'd */
    size_t len;
    /* Or a stream of unknown length instead of body: read fills buf with
     * up to max bytes, returning their count, 0 at the end or -1 on an
     * error; stream_free (may be NULL) frees u after the last read. */
    ssize_t (*read)(void *u, char *buf, size_t max);
    void *u;
    void (*stream_free)(void *u);
} sm_gw_reply;

/* Answers rq into rp (always: errors are JSON answers too). */
void sm_gw_api_handle(const sm_gw_api *a, const sm_gw_request *rq, sm_gw_reply *rp);

/* rp becomes the JSON error {"error": {"code", "message"}} with status;
 * returns the status (so that a route can `return sm_gw_reply_error(...)`). */
int sm_gw_reply_error(sm_gw_reply *rp, int status, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
