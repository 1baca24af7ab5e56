/* The routes of docs/API.md over libsalmap-client (gateway/api.h). */
#include "gateway/api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/page.h"
#include "gateway/tar.h"
#include "util/clock.h"
#include "util/text.h"

/* jansson refuses text that is not UTF-8: bytes of a client's path in a
 * message become '?' rather than lose the message. */
static json_t *text_json(const char *s)
{
    json_t *v = json_string(s);
    if (v)
        return v;
    char *t = strdup(s);
    if (!t)
        return NULL;
    for (char *p = t; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = json_string(t);
    free(t);
    return v;
}

static int reply_text(sm_gw_reply *rp, int status, const char *type, char *body,
                       size_t len)
{
    free(rp->body);
    rp->status = status;
    rp->type = type;
    rp->body = body;
    rp->len = len;
    return status;
}

int sm_gw_reply_error(sm_gw_reply *rp, int status, const char *code,
                       const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:{s:s, s:o*}}", "error", "code", code, "message",
                          text_json(msg));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s) { /* out of memory: a fixed answer */
        static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        s = strdup(oom);
        status = 500;
    }
    return reply_text(rp, status, "application/json", s, s ? strlen(s) : 0);
}

/* Answers o (taken) as JSON. */
static int reply_json(sm_gw_reply *rp, int status, json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        return sm_gw_reply_error(rp, 500, "internal", "out of memory");
    return reply_text(rp, status, "application/json", s, strlen(s));
}

/* The broker's refusal as an HTTP answer: its ERROR code decides the
 * status; no answer at all is the gateway's 502. */
static int broker_error(sm_gw_reply *rp, const sm_client *c)
{
    const char *code = sm_client_error_code(c), *msg = sm_client_error(c);
    char key[48];
    snprintf(key, sizeof key, ": %s: ", code);
    const char *at = code[0] ? strstr(msg, key) : NULL;
    if (at) /* drop "endpoint: COMMAND: code: " */
        msg = at + strlen(key);
    if (!code[0])
        sm_gw_reply_error(rp, 502, "broker_unavailable", "%s", msg);
    else if (!strcmp(code, "unknown_job"))
        sm_gw_reply_error(rp, 404, "unknown_job", "no job '%s'", msg);
    else if (!strcmp(code, "need_blob"))
        sm_gw_reply_error(rp, 400, "unknown_model", "model %s: not uploaded "
                          "(POST /v1/models)", msg);
    else if (!strcmp(code, "busy"))
        sm_gw_reply_error(rp, 503, "busy", "%s", msg);
    else
        sm_gw_reply_error(rp, 400, code, "%s", msg);
    return rp->status;
}

static sm_client *connect_broker(const sm_gw_api *a, sm_gw_reply *rp)
{
    sm_client *c = sm_client_new_ctx(a->zmq_ctx, a->broker);
    if (!c) {
        sm_gw_reply_error(rp, 502, "broker_unavailable", "cannot connect to the broker");
        return NULL;
    }
    sm_client_set_timeout(c, a->timeout);
    if (a->server_key && sm_client_set_curve(c, a->server_key, a->secret_key)) {
        sm_gw_reply_error(rp, 502, "broker_unavailable", "%s", sm_client_error(c));
        sm_client_destroy(&c);
    }
    return c;
}

static json_t *parse_body(const sm_gw_request *rq, sm_gw_reply *rp)
{
    json_error_t je;
    json_t *doc = json_loadb((const char *)rq->body, rq->len, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        sm_gw_reply_error(rp, 400, "malformed_json", "line %d, column %d: %s",
                          je.line, je.column, je.text);
    return doc;
}

static int id_valid(const char *s, size_t n)
{
    if (n == 0 || n >= SM_CLIENT_ID_MAX)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (!((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
              (s[k] >= '0' && s[k] <= '9') || s[k] == '_' || s[k] == '-'))
            return 0;
    return 1;
}

/* --- POST /v1/models ------------------------------------------------------ */
static int put_model(sm_client *c, const sm_gw_request *rq, sm_gw_reply *rp)
{
    char hash[SM_CLIENT_ID_MAX + 32];
    if (rq->len == 0)
        return sm_gw_reply_error(rp, 400, "empty_body", "POST /v1/models: send the "
                                 "ONNX file's bytes as the body");
    if (sm_client_put(c, rq->body, rq->len, hash))
        return broker_error(rp, c);
    return reply_json(rp, 201, json_pack("{s:s, s:I}", "hash", hash, "bytes", (json_int_t)rq->len));
}

/* --- jobs ----------------------------------------------------------------- */
static int submit(const sm_gw_api *a, sm_client *c, json_t *doc, int inline_image,
                  char *id, sm_gw_reply *rp)
{
    sm_gw_job j;
    sm_err err;
    int rc = -1;
    if (sm_gw_job_parse(doc, &a->paths, inline_image, &j, &err))
        sm_gw_reply_error(rp, 400, "invalid_job", "%s", err.msg);
    else if (sm_client_submit(c, &j.job, id))
        broker_error(rp, c);
    else
        rc = 0;
    sm_gw_job_free(&j);
    return rc;
}

static int post_job(const sm_gw_api *a, sm_client *c, const sm_gw_request *rq,
                     sm_gw_reply *rp)
{
    char id[SM_CLIENT_ID_MAX];
    sm_client_status st;
    json_t *doc = parse_body(rq, rp);
    if (!doc)
        return rp->status;
    if (submit(a, c, doc, 0, id, rp) == 0) {
        if (sm_client_status_of(c, id, &st))
            broker_error(rp, c);
        else
            reply_json(rp, 201, sm_gw_status_json(&st));
    }
    json_decref(doc);
    return rp->status;
}

static int list_jobs(sm_client *c, sm_gw_reply *rp)
{
    sm_client_status *jobs;
    size_t n;
    if (sm_client_list(c, &jobs, &n))
        return broker_error(rp, c);
    json_t *arr = json_array();
    for (size_t k = 0; arr && k < n; k++)
        if (json_array_append_new(arr, sm_gw_status_json(&jobs[k]))) {
            json_decref(arr);
            arr = NULL;
        }
    free(jobs);
    return reply_json(rp, 200, arr ? json_pack("{s:o}", "jobs", arr) : NULL);
}

static int job_status(sm_client *c, const char *id, int cancel, sm_gw_reply *rp)
{
    sm_client_status st;
    if ((cancel && sm_client_cancel(c, id)) || sm_client_status_of(c, id, &st))
        return broker_error(rp, c);
    return reply_json(rp, 200, sm_gw_status_json(&st));
}

/* --- files over FETCH ----------------------------------------------------- */
static const char *type_of(const char *path)
{
    size_t n = strlen(path);
    return n > 4 && !strcmp(path + n - 4, ".png")   ? "image/png"
         : n > 5 && !strcmp(path + n - 5, ".json")  ? "application/json"
         : n > 4 && !strcmp(path + n - 4, ".csv")   ? "text/csv"
                                                   : "application/octet-stream";
}

static int get_file(sm_client *c, const char *id, const char *rel, sm_gw_reply *rp)
{
    void *data;
    size_t len;
    if (sm_client_fetch_file(c, id, rel, &data, &len) == 0)
        return reply_text(rp, 200, type_of(rel), data, len);
    if (!strcmp(sm_client_error_code(c), "not_found"))
        return sm_gw_reply_error(rp, 404, "no_such_file", "job %s has no file '%s' "
                                 "(GET /v1/jobs/%s/maps lists them)", id, rel, id);
    return broker_error(rp, c);
}

static int list_file(const char *path, const void *data, size_t len, void *u)
{
    (void)data;
    json_t *arr = u;
    if (strncmp(path, "maps/", 5))
        return 0; /* index.csv has its own route */
    return json_array_append_new(arr, json_pack("{s:s, s:I}", "path", path + 5,
                                                "bytes", (json_int_t)len)) ? -1 : 0;
}

static int list_maps(sm_client *c, const char *id, sm_gw_reply *rp)
{
    json_t *arr = json_array();
    if (!arr)
        return sm_gw_reply_error(rp, 500, "internal", "out of memory");
    if (sm_client_fetch_each(c, id, list_file, arr)) {
        json_decref(arr);
        return broker_error(rp, c);
    }
    return reply_json(rp, 200, json_pack("{s:s, s:o}", "job", id, "files", arr));
}

/* --- GET /v1/jobs/{id}/output.tar: the job's files as they are fetched --- */
typedef struct tar_stream {
    sm_client *c;
    char job[SM_CLIENT_ID_MAX];
    int64_t next;     /* the next FETCH's from; -1: every file fetched */
    sm_text pending;  /* bytes ready to send, from at on */
    size_t at;
    int ended;        /* the closing blocks are in pending */
} tar_stream;

static int tar_add(const char *path, const void *data, size_t len, void *u)
{
    static const uint8_t zero[SM_GW_TAR_BLOCK];
    tar_stream *t = u;
    uint8_t hdr[SM_GW_TAR_BLOCK];
    if (!sm_gw_path_safe(path) || sm_gw_tar_header(hdr, path, len))
        return 0; /* the broker's paths are checked, never unpacked outside */
    return sm_text_add(&t->pending, hdr, sizeof hdr) || sm_text_add(&t->pending, data, len) ||
                   sm_text_add(&t->pending, zero, sm_gw_tar_pad(len))
               ? -1 : 0;
}

static ssize_t tar_read(void *u, char *buf, size_t max)
{
    static const uint8_t end[2 * SM_GW_TAR_BLOCK];
    tar_stream *t = u;
    while (t->at == t->pending.len) {
        sm_text_free(&t->pending);
        t->at = 0;
        if (t->ended)
            return 0;
        if (t->next < 0) {
            if (sm_text_add(&t->pending, end, sizeof end))
                return -1;
            t->ended = 1;
        } else if (sm_client_fetch_page(t->c, t->job, t->next, tar_add, t, &t->next)) {
            return -1; /* the client sees a cut stream: the status went out */
        }
    }
    size_t n = t->pending.len - t->at < max ? t->pending.len - t->at : max;
    memcpy(buf, t->pending.s + t->at, n);
    t->at += n;
    return (ssize_t)n;
}

static void tar_free(void *u)
{
    tar_stream *t = u;
    sm_client_destroy(&t->c);
    sm_text_free(&t->pending);
    free(t);
}

static int get_tar(const sm_gw_api *a, const char *id, sm_gw_reply *rp)
{
    tar_stream *t = calloc(1, sizeof *t);
    if (!t)
        return sm_gw_reply_error(rp, 500, "internal", "out of memory");
    snprintf(t->job, sizeof t->job, "%s", id);
    /* the first page now: an unknown job is still a JSON 404 */
    if (!(t->c = connect_broker(a, rp)) ||
        sm_client_fetch_page(t->c, id, 0, tar_add, t, &t->next)) {
        if (t->c)
            broker_error(rp, t->c);
        tar_free(t);
        return rp->status;
    }
    free(rp->body);
    *rp = (sm_gw_reply){.status = 200, .type = "application/x-tar", .read = tar_read,
                        .u = t, .stream_free = tar_free};
    return 200;
}

/* An inline explanation's job, answered: the broker forgets it and
 * removes its files, so that a service's requests leave nothing behind. */
static void forget(sm_client *c, const char *id)
{
    if (sm_client_delete(c, id))
        fprintf(stderr, "salmap-gateway: job %s stays: %s\n", id, sm_client_error(c));
}

static int delete_job(sm_client *c, const char *id, sm_gw_reply *rp)
{
    if (sm_client_delete(c, id))
        return !strcmp(sm_client_error_code(c), "invalid")
                   ? sm_gw_reply_error(rp, 409, "job_running", "job %s has not ended: "
                                       "POST /v1/jobs/%s/cancel first", id, id)
                   : broker_error(rp, c);
    return reply_json(rp, 200, json_pack("{s:s, s:b}", "job", id, "deleted", 1));
}

/* --- POST /v1/explain ------------------------------------------------------- */
typedef struct explained {
    json_t *maps, *records, *arrays;
    char *index;
} explained;

static int take_result(const char *path, const void *data, size_t len, void *u)
{
    explained *e = u;
    if (!strcmp(path, "index.csv")) {
        free(e->index);
        if (!(e->index = malloc(len + 1)))
            return -1;
        memcpy(e->index, data, len);
        e->index[len] = '\0';
        return 0;
    }
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    size_t n = strlen(name);
    char key[256];
    if (n >= sizeof key || n < 5)
        return 0;
    if (!strcmp(name + n - 5, ".json")) {
        snprintf(key, sizeof key, "%.*s", (int)(n - 5), name);
        json_t *rec = json_loadb(data, len, 0, NULL);
        return rec && json_object_set_new(e->records, key, rec) == 0 ? 0 : -1;
    }
    if (strcmp(name + n - 4, ".npy"))
        return 0;
    snprintf(key, sizeof key, "%.*s", (int)(n - 4), name);
    char *b64 = sm_gw_base64(data, len);
    json_t *v = b64 ? json_string(b64) : NULL;
    free(b64);
    return v && !json_object_set_new(strchr(key, '.') ? e->arrays : e->maps, key, v)
               ? 0 : -1;
}

/* The raw-image form: the job from the query, the image from the body. */
static json_t *explain_query(const sm_gw_request *rq, sm_gw_reply *rp)
{
    const char *model = rq->query(rq->u, "model"), *methods = rq->query(rq->u, "methods");
    if (!model || !methods) {
        sm_gw_reply_error(rp, 400, "invalid_job", "POST /v1/explain with an image body "
                          "needs ?model=HASH&methods=a,b in the query");
        return NULL;
    }
    char *b64 = sm_gw_base64(rq->body, rq->len);
    json_t *doc = json_pack("{s:s, s:s*, s:[]}", "model", model, "image", b64, "methods");
    free(b64);
    char *list = strdup(methods);
    for (char *save = NULL, *m = list ? strtok_r(list, ",", &save) : NULL; doc && m;
         m = strtok_r(NULL, ",", &save))
        json_array_append_new(json_object_get(doc, "methods"), json_string(m));
    free(list);
    static const char *const strs[] = {"target", "score", NULL};
    for (size_t k = 0; doc && strs[k]; k++)
        if (rq->query(rq->u, strs[k]))
            json_object_set_new(doc, strs[k], json_string(rq->query(rq->u, strs[k])));
    const char *seed = rq->query(rq->u, "seed");
    if (doc && seed) {
        char *end;
        long long s = strtoll(seed, &end, 10);
        json_object_set_new(doc, "seed", *end || !*seed ? json_string(seed) : json_integer(s));
    }
    if (!doc)
        sm_gw_reply_error(rp, 400, "invalid_job", "model or methods: not UTF-8 text");
    return doc;
}

static int explain(const sm_gw_api *a, sm_client *c, const sm_gw_request *rq,
                    sm_gw_reply *rp)
{
    double t0 = sm_clock_now();
    int is_json = rq->content_type && !strncmp(rq->content_type, "application/json", 16);
    if (rq->len == 0)
        return sm_gw_reply_error(rp, 400, "empty_body", "POST /v1/explain: send an "
                                 "image file, or JSON {model, methods, image}");
    json_t *doc = is_json ? parse_body(rq, rp) : explain_query(rq, rp);
    char id[SM_CLIENT_ID_MAX];
    int rc = doc ? submit(a, c, doc, 1, id, rp) : -1;
    json_decref(doc);
    if (rc)
        return rp->status;
    sm_client_status st;
    rc = sm_client_wait_for(c, id, a->explain_timeout, NULL, NULL, &st);
    if (rc < 0)
        return broker_error(rp, c);
    if (rc > 0) { /* no one waits for it any more */
        sm_client_cancel(c, id);
        forget(c, id);
        return sm_gw_reply_error(rp, 504, "explain_timeout", "job %s: not done within "
                                 "%g s (--explain-timeout); cancelled", id, a->explain_timeout);
    }
    explained e = {json_object(), json_object(), json_object(), NULL};
    if (strcmp(st.state, "done"))
        sm_gw_reply_error(rp, 422, "explain_failed", "job %s %s: %s", id, st.state, st.error);
    else if (!e.maps || !e.records || !e.arrays)
        sm_gw_reply_error(rp, 500, "internal", "out of memory");
    else if (sm_client_fetch_each(c, id, take_result, &e))
        broker_error(rp, c);
    else if (st.maps_failed || json_object_size(e.maps) + json_object_size(e.records) == 0)
        sm_gw_reply_error(rp, 422, "explain_failed", "job %s: the image could not be "
                          "explained: %s", id, e.index ? e.index : "no index");
    else
        reply_json(rp, 200, json_pack("{s:s, s:s, s:f, s:s?, s:O, s:O, s:O}", "job", id,
                                      "state", st.state, "seconds", sm_clock_now() - t0,
                                      "index_csv", e.index, "maps", e.maps,
                                      "records", e.records, "arrays", e.arrays));
    json_decref(e.maps);
    json_decref(e.records);
    json_decref(e.arrays);
    free(e.index);
    forget(c, id);
    return rp->status;
}

/* --- GET /v1/workers ------------------------------------------------------- */
static int list_workers(sm_client *c, sm_gw_reply *rp)
{
    sm_client_workers *w = sm_client_workers_get(c);
    if (!w)
        return broker_error(rp, c);
    json_t *j = sm_gw_workers_json(w);
    sm_client_workers_destroy(&w);
    return reply_json(rp, 200, j);
}

/* --- routing ---------------------------------------------------------------- */
static int is(const sm_gw_request *rq, const char *method)
{
    return !strcmp(rq->method, method);
}

static int route(const sm_gw_api *a, sm_client *c, const sm_gw_request *rq,
                  sm_gw_reply *rp)
{
    const char *p = rq->path;
    if (!strcmp(p, "/v1/models"))
        return is(rq, "POST") ? put_model(c, rq, rp) : sm_gw_reply_error(rp, 405,
               "method_not_allowed", "%s /v1/models: use POST", rq->method);
    if (!strcmp(p, "/v1/explain"))
        return is(rq, "POST") ? explain(a, c, rq, rp) : sm_gw_reply_error(rp, 405,
               "method_not_allowed", "%s /v1/explain: use POST", rq->method);
    if (!strcmp(p, "/v1/workers"))
        return is(rq, "GET") ? list_workers(c, rp) : sm_gw_reply_error(rp, 405,
               "method_not_allowed", "%s /v1/workers: use GET", rq->method);
    if (!strcmp(p, "/v1/jobs"))
        return is(rq, "POST") ? post_job(a, c, rq, rp)
             : is(rq, "GET")  ? list_jobs(c, rp)
                              : sm_gw_reply_error(rp, 405, "method_not_allowed",
                                                  "%s /v1/jobs: use GET or POST", rq->method);
    /* /v1/jobs/{id}[/cancel | /maps[/...] | /index.csv] */
    const char *id = p + 9, *rest = strchr(id, '/');
    size_t n = rest ? (size_t)(rest - id) : strlen(id);
    char jid[SM_CLIENT_ID_MAX];
    if (strncmp(p, "/v1/jobs/", 9) || !id_valid(id, n))
        return sm_gw_reply_error(rp, 404, "not_found", "no route '%.200s' (docs/API.md)", p);
    snprintf(jid, sizeof jid, "%.*s", (int)n, id);
    rest = rest ? rest : "";
    const char *want = !*rest || !strcmp(rest, "/maps") || !strncmp(rest, "/maps/", 6) ||
                       !strcmp(rest, "/index.csv") || !strcmp(rest, "/output.tar") ? "GET"
                     : !strcmp(rest, "/cancel") ? "POST" : NULL;
    if (!want)
        return sm_gw_reply_error(rp, 404, "not_found", "no route '%.200s' (docs/API.md)", p);
    if (!*rest && is(rq, "DELETE"))
        return delete_job(c, jid, rp);
    if (!is(rq, want))
        return sm_gw_reply_error(rp, 405, "method_not_allowed", "%s %.200s: use %s",
                                 rq->method, p, want);
    if (!*rest || !strcmp(rest, "/cancel"))
        return job_status(c, jid, *rest != '\0', rp);
    if (!strcmp(rest, "/maps"))
        return list_maps(c, jid, rp);
    if (!strcmp(rest, "/index.csv"))
        return get_file(c, jid, "index.csv", rp);
    if (!strcmp(rest, "/output.tar"))
        return get_tar(a, jid, rp);
    /* a client names a file inside the job's maps/ folder, nothing else */
    if (!sm_gw_path_safe(rest + 6))
        return sm_gw_reply_error(rp, 400, "bad_path", "'%.200s': a map's path is "
                                 "<image id>/<method>.npy, relative, without '..'", rest + 6);
    char rel[2048];
    if ((size_t)snprintf(rel, sizeof rel, "maps/%s", rest + 6) >= sizeof rel)
        return sm_gw_reply_error(rp, 400, "bad_path", "the path is too long");
    return get_file(c, jid, rel, rp);
}

static int handle(const sm_gw_api *a, const sm_gw_request *rq, sm_gw_reply *rp)
{
    if (!strcmp(rq->path, "/")) { /* the status page: static, it asks the API */
        size_t len;
        const char *page = sm_gw_page(&len);
        char *copy = is(rq, "GET") ? malloc(len) : NULL;
        if (!is(rq, "GET"))
            return sm_gw_reply_error(rp, 405, "method_not_allowed", "%s /: use GET",
                                     rq->method);
        if (!copy)
            return sm_gw_reply_error(rp, 500, "internal", "out of memory");
        memcpy(copy, page, len);
        return reply_text(rp, 200, "text/html; charset=utf-8", copy, len);
    }
    if (strncmp(rq->path, "/v1/", 4))
        return sm_gw_reply_error(rp, 404, "not_found", "no route '%.200s' (docs/API.md)",
                                 rq->path);
    sm_client *c = connect_broker(a, rp);
    if (!c)
        return rp->status;
    route(a, c, rq, rp);
    sm_client_destroy(&c);
    return rp->status;
}

void sm_gw_api_handle(const sm_gw_api *a, const sm_gw_request *rq, sm_gw_reply *rp)
{
    memset(rp, 0, sizeof *rp);
    handle(a, rq, rp);
}
