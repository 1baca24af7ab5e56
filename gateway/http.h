/* The gateway's HTTP server (libmicrohttpd, a thread a connection):
 * bearer tokens, the body size limit, then gateway/api.c. */
#ifndef SM_GW_HTTP_H
#define SM_GW_HTTP_H

#include <stddef.h>

#include "gateway/api.h"
#include "util/err.h"

typedef struct sm_gw_http sm_gw_http;

typedef struct sm_gw_http_config {
    const char *host;            /* address to bind: "127.0.0.1", "::1", "0.0.0.0" */
    unsigned port;               /* 0: any free port (sm_gw_http_port) */
    const char *const *tokens;   /* accepted bearer tokens; none: loopback only */
    size_t n_tokens;
    size_t max_body;             /* bytes; larger bodies are refused (413) */
    unsigned max_connections;
} sm_gw_http_config;

/* Starts serving api (borrowed, as cfg's strings). NULL with a message
 * when the address does not resolve or bind, or when it is not a loopback
 * address and no token is configured. */
sm_gw_http *sm_gw_http_new(const sm_gw_http_config *cfg, const sm_gw_api *api,
                           sm_err *err);

/* The port it listens on. */
unsigned sm_gw_http_port(const sm_gw_http *h);

void sm_gw_http_destroy(sm_gw_http **h);

#endif
