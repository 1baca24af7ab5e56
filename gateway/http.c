/* libmicrohttpd glue (gateway/http.h). A thread a connection: an explain
 * waits for its job without holding up other requests, and each request
 * has its own broker connection (gateway/api.c), so nothing is shared
 * between threads but the read-only configuration. */
#include "gateway/http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>
#include <sodium.h>

#include "util/text.h"

struct sm_gw_http {
    struct MHD_Daemon *d;
    sm_gw_http_config cfg;
    const sm_gw_api *api;
    unsigned port;
};

/* One request's state across libmicrohttpd's calls. */
typedef struct conn {
    sm_text body;
    int too_big, oom, done;
} conn;

static const char *query_of(void *u, const char *key)
{
    return MHD_lookup_connection_value(u, MHD_GET_ARGUMENT_KIND, key);
}

/* A stream of the API (sm_gw_reply.read) as libmicrohttpd reads content. */
typedef struct stream {
    ssize_t (*read)(void *u, char *buf, size_t max);
    void *u;
    void (*free)(void *u);
} stream;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos; /* called in order */
    stream *s = cls;
    ssize_t n = s->read(s->u, buf, max);
    return n > 0 ? n : n == 0 ? MHD_CONTENT_READER_END_OF_STREAM
                              : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
    stream *s = cls;
    if (s->free)
        s->free(s->u);
    free(s);
}

static struct MHD_Response *stream_response(sm_gw_reply *rp)
{
    stream *s = malloc(sizeof *s);
    struct MHD_Response *r = NULL;
    if (s) {
        *s = (stream){rp->read, rp->u, rp->stream_free};
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, s,
                                              stream_free);
        if (!r)
            free(s);
    }
    if (!r && rp->stream_free)
        rp->stream_free(rp->u);
    return r;
}

static enum MHD_Result send_reply(struct MHD_Connection *mc, sm_gw_reply *rp)
{
    struct MHD_Response *r = rp->read ? stream_response(rp)
                           : rp->body ? MHD_create_response_from_buffer(
                                            rp->len, rp->body, MHD_RESPMEM_MUST_FREE)
                                      : NULL;
    if (!r) {
        free(rp->body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, rp->type);
    if (rp->status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = MHD_queue_response(mc, (unsigned)rp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* 0 when the request may go on, else rp holds the 401. */
static int check_token(const sm_gw_http *h, struct MHD_Connection *mc, const char *url,
                       const char *method, sm_gw_reply *rp)
{
    if (!h->cfg.n_tokens)
        return 0; /* loopback only: sm_gw_http_new saw to it */
    if (!strcmp(url, "/") && !strcmp(method, "GET"))
        return 0; /* the status page holds no data: its requests carry the token */
    const char *a = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a || strncasecmp(a, "Bearer ", 7)) {
        sm_gw_reply_error(rp, 401, "unauthorized", "this gateway needs a bearer token "
                          "(Authorization: Bearer TOKEN)");
        return -1;
    }
    a += 7;
    size_t n = strlen(a);
    int ok = 0;
    for (size_t k = 0; k < h->cfg.n_tokens; k++) /* no early exit: constant time */
        ok |= strlen(h->cfg.tokens[k]) == n && sodium_memcmp(h->cfg.tokens[k], a, n) == 0;
    if (!ok)
        sm_gw_reply_error(rp, 401, "unauthorized", "the bearer token is not accepted");
    return ok ? 0 : -1;
}

static void too_big(const sm_gw_http *h, sm_gw_reply *rp)
{
    sm_gw_reply_error(rp, 413, "body_too_large", "the request body is over this "
                      "gateway's limit of %zu bytes (--max-body)", h->cfg.max_body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    sm_gw_http *h = cls;
    conn *k = *con_cls;
    sm_gw_reply rp = {0};
    if (!k) { /* the headers: refuse before reading any body */
        if (!(k = calloc(1, sizeof *k)))
            return MHD_NO;
        *con_cls = k;
        const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (check_token(h, mc, url, method, &rp) == 0 && !(cl && strtoull(cl, NULL, 10) > h->cfg.max_body))
            return MHD_YES;
        if (!rp.body)
            too_big(h, &rp);
        k->done = 1;
        return send_reply(mc, &rp);
    }
    if (k->done) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) { /* bodies without a length are counted as they come */
        if (k->body.len + *upload_size > h->cfg.max_body)
            k->too_big = 1;
        else if (!k->too_big && !k->oom && sm_text_add(&k->body, upload, *upload_size))
            k->oom = 1;
        *upload_size = 0;
        return MHD_YES;
    }
    k->done = 1;
    if (k->too_big)
        too_big(h, &rp);
    else if (k->oom)
        sm_gw_reply_error(&rp, 500, "internal", "out of memory");
    else {
        sm_gw_request rq = {
            .method = method, .path = url, .query = query_of, .u = mc,
            .content_type = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_CONTENT_TYPE),
            .body = (const uint8_t *)k->body.s, .len = k->body.len};
        sm_gw_api_handle(h->api, &rq, &rp);
    }
    return send_reply(mc, &rp);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)mc, (void)code;
    conn *k = *con_cls;
    if (k) {
        sm_text_free(&k->body);
        free(k);
        *con_cls = NULL;
    }
}

static int loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    return sa->sa_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

sm_gw_http *sm_gw_http_new(const sm_gw_http_config *cfg, const sm_gw_api *api,
                           sm_err *err)
{
    struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_STREAM}, *ai;
    char port[16];
    snprintf(port, sizeof port, "%u", cfg->port);
    int rc = getaddrinfo(cfg->host, port, &hints, &ai);
    if (rc) {
        sm_err_set(err, "--listen %s: %s", cfg->host, gai_strerror(rc));
        return NULL;
    }
    if (!cfg->n_tokens && !loopback(ai->ai_addr)) {
        sm_err_set(err, "--listen %s: not a loopback address, and no --token-file: "
                   "a gateway without tokens serves on loopback only", cfg->host);
        freeaddrinfo(ai);
        return NULL;
    }
    sm_gw_http *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    h->cfg = *cfg;
    h->api = api;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ERROR_LOG | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        sm_err_set(err, "--listen %s:%u: cannot listen there (in use?)", cfg->host, cfg->port);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : cfg->port;
    return h;
}

unsigned sm_gw_http_port(const sm_gw_http *h)
{
    return h->port;
}

void sm_gw_http_destroy(sm_gw_http **hp)
{
    sm_gw_http *h = *hp;
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
    *hp = NULL;
}
