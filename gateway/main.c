/* salmap-gateway: the HTTP/JSON API of a salmap broker (docs/API.md), a
 * client of the broker over its wire protocol. Serves until SIGINT or
 * SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "config/daemon_config.h"
#include "gateway/http.h"
#include "util/file.h"

enum { MAX_TOKENS = 256, MAX_ROOTS = 16 };

static int usage(FILE *f)
{
    fprintf(f,
            "usage: salmap-gateway [--broker ENDPOINT] [--listen HOST:PORT]\n"
            "                      [--token-file FILE] [--max-body BYTES]\n"
            "                      [--out-root DIR] [--dataset-root DIR[,DIR...]]\n"
            "                      [--timeout SECONDS] [--explain-timeout SECONDS]\n"
            "                      [--curve-server-key FILE --curve-secret-key FILE]\n"
            "Serves the HTTP/JSON API of the broker at --broker (default\n"
            "tcp://127.0.0.1:5555) on --listen (default 127.0.0.1:8080; port 0:\n"
            "any free one). Without --token-file it serves on loopback only.\n"
            "Jobs write under --out-root (default out/gateway) on the broker's\n"
            "machine; datasets must lie under a --dataset-root. docs/API.md.\n");
    return f == stdout ? 0 : 2;
}

/* The tokens of file, one a line (blank lines and # comments skipped),
 * into tok[] (pointing into *text, which the caller frees). */
static int read_tokens(const char *file, char **text, const char **tok, size_t *n,
                       sm_err *err)
{
    size_t len;
    char *s = (char *)sm_file_read(file, (size_t)1 << 20, &len, err);
    if (!s)
        return -1;
    char *t = realloc(s, len + 1);
    if (!t) {
        free(s);
        return sm_err_set(err, "%s: out of memory", file);
    }
    t[len] = '\0';
    *text = t;
    *n = 0;
    int line = 0;
    for (char *save = NULL, *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        size_t k = strlen(l);
        while (k && (l[k - 1] == '\r' || l[k - 1] == ' ' || l[k - 1] == '\t'))
            l[--k] = '\0';
        if (!k || l[0] == '#')
            continue;
        if (k < 16 || strpbrk(l, " \t"))
            return sm_err_set(err, "%s: line %d: a token is 16 or more characters "
                              "without spaces", file, line);
        if (*n == MAX_TOKENS)
            return sm_err_set(err, "%s: more than %d tokens", file, MAX_TOKENS);
        tok[(*n)++] = l;
    }
    if (!*n)
        return sm_err_set(err, "%s: no token in the file", file);
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" into host (in buf) and port. */
static int parse_listen(const char *s, char *buf, size_t cap, unsigned *port, sm_err *err)
{
    const char *colon = strrchr(s, ':');
    char *end;
    if (!colon || colon == s || (size_t)(colon - s) >= cap)
        return sm_err_set(err, "--listen '%s': expected HOST:PORT", s);
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (!colon[1] || *end || p > 65535)
        return sm_err_set(err, "--listen '%s': the port must be 0..65535", s);
    size_t n = (size_t)(colon - s);
    if (s[0] == '[' && n >= 2 && s[n - 1] == ']')
        snprintf(buf, cap, "%.*s", (int)(n - 2), s + 1);
    else
        snprintf(buf, cap, "%.*s", (int)n, s);
    *port = (unsigned)p;
    return 0;
}

int main(int argc, char **argv)
{
    sm_err err;
    const char *broker = "tcp://127.0.0.1:5555", *listen = "127.0.0.1:8080",
               *token_file = NULL, *max_body = "67108864", *out_root = "out/gateway",
               *roots = NULL, *timeout = "30", *explain_timeout = "60", *server_key = NULL, *secret_key = NULL;
    const sm_daemon_opt opts[] = {
        {"--broker", &broker}, {"--listen", &listen}, {"--token-file", &token_file},
        {"--max-body", &max_body}, {"--out-root", &out_root}, {"--dataset-root", &roots},
        {"--timeout", &timeout}, {"--explain-timeout", &explain_timeout},
        {"--curve-server-key", &server_key},
        {"--curve-secret-key", &secret_key}, {NULL, NULL}};
    int rc = sm_daemon_args(argc, argv, opts, &err);
    if (rc) {
        if (rc < 0)
            fprintf(stderr, "salmap-gateway: %s\n", err.msg);
        return usage(rc > 0 ? stdout : stderr);
    }
    char host[256], endpoint[SM_ENDPOINT_MAX], *roots_text = NULL, *tok_text = NULL, *end;
    const char *tokens[MAX_TOKENS], *root[MAX_ROOTS];
    size_t n_tokens = 0, n_roots = 0;
    unsigned port = 0;
    unsigned long long body = strtoull(max_body, &end, 10);
    double secs = strtod(timeout, NULL), explain_secs = strtod(explain_timeout, NULL);
    rc = 2;
    if (parse_listen(listen, host, sizeof host, &port, &err) ||
        (sm_daemon_set_endpoint(endpoint, broker, &err) && sm_err_prefix(&err, "--broker")) ||
        (!max_body[0] || *end || body == 0 ? sm_err_set(&err, "--max-body '%s': a "
                                                        "number of bytes > 0", max_body) : 0) ||
        (secs <= 0 ? sm_err_set(&err, "--timeout '%s': seconds > 0", timeout) : 0) ||
        (explain_secs <= 0 ? sm_err_set(&err, "--explain-timeout '%s': seconds > 0",
                                        explain_timeout) : 0) ||
        (!server_key != !secret_key ? sm_err_set(&err, "--curve-server-key and "
                                                 "--curve-secret-key go together") : 0) ||
        (token_file && read_tokens(token_file, &tok_text, tokens, &n_tokens, &err)))
        goto out;
    if (roots && (roots_text = strdup(roots)))
        for (char *save = NULL, *r = strtok_r(roots_text, ",", &save); r && n_roots < MAX_ROOTS;
             r = strtok_r(NULL, ",", &save))
            root[n_roots++] = r;
    rc = 1;
    if (sodium_init() < 0) {
        fprintf(stderr, "salmap-gateway: libsodium did not start\n");
        goto out;
    }
    /* the server's threads inherit the mask: only sigwait sees the signals */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    void *ctx = zmq_ctx_new();
    sm_gw_api api = {.zmq_ctx = ctx, .broker = endpoint, .server_key = server_key,
                     .secret_key = secret_key, .timeout = secs,
                     .explain_timeout = explain_secs,
                     .paths = {.out_root = out_root, .dataset_roots = root,
                               .n_dataset_roots = n_roots}};
    sm_gw_http_config hc = {.host = host, .port = port, .tokens = tokens,
                            .n_tokens = n_tokens, .max_body = (size_t)body,
                            .max_connections = 64};
    sm_gw_http *h = ctx ? sm_gw_http_new(&hc, &api, &err) : NULL;
    if (h) {
        fprintf(stderr, "salmap-gateway: listening on http://%s%s%s:%u, broker %s%s\n",
                strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
                sm_gw_http_port(h), endpoint, n_tokens ? ", bearer tokens" : "");
        int sig;
        sigwait(&sigs, &sig);
        sm_gw_http_destroy(&h);
        rc = 0;
    } else {
        fprintf(stderr, "salmap-gateway: %s\n", ctx ? err.msg : "zmq_ctx_new failed");
    }
    if (ctx)
        zmq_ctx_term(ctx);
out:
    if (rc == 2)
        fprintf(stderr, "salmap-gateway: %s\n", err.msg);
    free(roots_text);
    free(tok_text);
    return rc;
}
