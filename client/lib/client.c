/* libsalmap-client over a DEALER socket: one request, one reply (the
 * Lazy Pirate pattern: a request without a reply in time fails, and the
 * socket is replaced so a late reply cannot be taken for the next one). */
#include "client/lib/salmap_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "schemas/curve.h"
#include "schemas/msg.h"
#include "util/file.h"
#include "util/clock.h"

/* Events of a watched job come at least this often while it runs; after
 * this long without one the client asks again (the broker may have been
 * restarted and forgotten the watch). */
#define WATCH_SILENCE 5.0

struct sm_client {
    void *ctx, *sock;
    int own_ctx;
    char *endpoint;   /* as given: no fixed bound */
    double timeout;
    sm_msg_limits limits;
    sm_err err;
    char code[32]; /* the broker's ERROR code of the last failure, or "" */
    int curve;
    char server_key[SM_CURVE_KEY], secret_key[SM_CURVE_KEY];
};

static int fail(sm_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(sm_client *c, const char *fmt, ...)
{
    va_list ap;
    c->code[0] = '\0';
    va_start(ap, fmt);
    vsnprintf(c->err.msg, sizeof c->err.msg, fmt, ap);
    va_end(ap);
    return -1;
}

static int reconnect(sm_client *c)
{
    if (c->sock)
        zmq_close(c->sock);
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    int linger = 0;
    int64_t max = (int64_t)c->limits.max_body;
    if (c->sock && c->curve &&
        sm_curve_client(c->sock, c->server_key, c->secret_key, &c->err))
        return -1;
    if (!c->sock || zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &max, sizeof max) ||
        zmq_connect(c->sock, c->endpoint))
        return fail(c, "connect %s: %s", c->endpoint, zmq_strerror(errno));
    return 0;
}

sm_client *sm_client_new_ctx(void *zmq_ctx, const char *endpoint)
{
    sm_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->ctx = zmq_ctx;
    c->timeout = 30;
    sm_msg_limits_default(&c->limits);
    if (!(c->endpoint = strdup(endpoint))) {
        free(c);
        return NULL;
    }
    if (reconnect(c)) {
        fprintf(stderr, "salmap client: %s\n", c->err.msg);
        sm_client_destroy(&c);
    }
    return c;
}

sm_client *sm_client_new(const char *endpoint)
{
    void *ctx = zmq_ctx_new();
    sm_client *c = ctx ? sm_client_new_ctx(ctx, endpoint) : NULL;
    if (c)
        c->own_ctx = 1;
    else if (ctx)
        zmq_ctx_term(ctx);
    return c;
}

void sm_client_destroy(sm_client **cp)
{
    sm_client *c = *cp;
    if (!c)
        return;
    if (c->sock)
        zmq_close(c->sock);
    if (c->own_ctx)
        zmq_ctx_term(c->ctx);
    free(c->endpoint);
    free(c);
    *cp = NULL;
}

const char *sm_client_error(const sm_client *c)
{
    return c->err.msg;
}

const char *sm_client_error_code(const sm_client *c)
{
    return c->code;
}

int sm_client_set_curve(sm_client *c, const char *server_key,
                        const char *secret_key)
{
    if (sm_curve_read_key(server_key, c->server_key, &c->err) ||
        sm_curve_read_key(secret_key, c->secret_key, &c->err))
        return -1;
    c->curve = 1;
    return reconnect(c);
}

void sm_client_set_timeout(sm_client *c, double seconds)
{
    c->timeout = seconds > 0 ? seconds : 30;
}

/* Waits up to `seconds` for a message; 0 with *f filled, 1 on timeout,
 * -1 on a socket error. Malformed messages are skipped. */
static int receive(sm_client *c, double seconds, sm_msg_frames *f)
{
    double end = sm_clock_now() + seconds;
    for (;;) {
        double left = end - sm_clock_now();
        if (left <= 0)
            return 1;
        zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&it, 1, (long)(left * 1000) + 1);
        if (rc < 0 && errno != EINTR)
            return fail(c, "%s: %s", c->endpoint, zmq_strerror(errno));
        if (rc <= 0)
            continue;
        sm_err err;
        if (sm_msg_recv(c->sock, 0, ZMQ_DONTWAIT, f, &err) == 0) {
            if (strcmp(f->signature, SM_PROTO_CLIENT) == 0)
                return 0;
            sm_msg_frames_free(f);
        }
    }
}

/* Sends cmd with body and waits for the reply `want` (an ERROR reply
 * fails with the broker's message; EVENTs are skipped). */
static int request(sm_client *c, const char *cmd, const sm_msg_buf *body,
                   const char *want, sm_msg_frames *f)
{
    if (!c->sock && reconnect(c))
        return -1;
    if (sm_msg_send(c->sock, NULL, 0, SM_PROTO_CLIENT, cmd, body->data, body->len))
        return fail(c, "%s: send %s: %s", c->endpoint, cmd, zmq_strerror(errno));
    double end = sm_clock_now() + c->timeout;
    for (;;) {
        int rc = receive(c, end - sm_clock_now(), f);
        if (rc < 0)
            return -1;
        if (rc > 0) {
            reconnect(c); /* a late reply must not answer the next request */
            /* a broker that refuses the connection (CURVE) says nothing:
             * name the likely causes */
            return fail(c, "%s: no reply to %s within %.0f s (is the broker "
                        "there, %s?)", c->endpoint, cmd, c->timeout,
                        c->curve ? "and does it admit this client's key "
                                   "(its curve_allow_dir)"
                                 : "and does it run without CURVE (else give "
                                   "--server-key and --secret-key)");
        }
        if (!strcmp(f->command, want))
            return 0;
        if (!strcmp(f->command, "ERROR")) {
            sm_msg_doc *doc = NULL;
            sm_msg_error e;
            sm_err err;
            if (sm_msg_decode_error(f->body, f->len, &c->limits, &doc, &e, &err))
                fail(c, "%s: %s: an ERROR that does not decode: %s", c->endpoint,
                     cmd, err.msg);
            else {
                fail(c, "%s: %s: %s: %s", c->endpoint, cmd, e.code,
                     e.message ? e.message : "");
                snprintf(c->code, sizeof c->code, "%s", e.code);
            }
            sm_msg_doc_destroy(&doc);
            sm_msg_frames_free(f);
            return -1;
        }
        sm_msg_frames_free(f); /* an EVENT of an earlier watch */
    }
}

static int encode_failed(sm_client *c)
{
    return fail(c, "out of memory");
}

/* -1 with a message when s (NULL: absent) does not fit a field of cap
 * bytes (its NUL included), so that an sm_client_status field is never
 * cut. where names the broker's reply, NULL for the job being submitted. */
static int too_long(sm_client *c, const char *where, const char *what,
                    const char *s, size_t cap)
{
    size_t len = s ? strlen(s) : 0;
    if (len < cap)
        return 0;
    if (!where)
        return fail(c, "job: the %s '%.60s...' is %zu bytes, longer than the "
                    "%zu a job's status holds", what, s, len, cap - 1);
    return fail(c, "%s: %s: the %s '%.60s...' is %zu bytes, longer than "
                "the %zu this client holds", c->endpoint, where, what, s, len,
                cap - 1);
}

/* HAS, then PUT when the broker lacks the bytes. */
int sm_client_put(sm_client *c, const void *data, size_t len, char *hash)
{
    sm_err err;
    sm_hash_hex(data, len, hash);
    sm_msg_blob m = {.hash = hash};
    sm_msg_buf b = {0};
    sm_msg_frames f;
    int rc = sm_msg_encode_blob(&m, &b) ? encode_failed(c)
                                         : request(c, "HAS", &b, "HAS", &f);
    sm_msg_buf_free(&b);
    if (rc == 0) {
        sm_msg_doc *doc = NULL;
        sm_msg_blob r;
        if (sm_msg_decode_blob(f.body, f.len, &c->limits, &doc, &r, &err))
            rc = fail(c, "%s: HAS: %s", c->endpoint, err.msg);
        else if (!r.have) {
            sm_msg_frames g;
            m.data = data;
            m.len = len;
            rc = sm_msg_encode_blob(&m, &b) ? encode_failed(c)
                                             : request(c, "PUT", &b, "PUT", &g);
            if (rc == 0)
                sm_msg_frames_free(&g);
            sm_msg_buf_free(&b);
        }
        sm_msg_doc_destroy(&doc);
        sm_msg_frames_free(&f);
    }
    return rc;
}

static int put_model(sm_client *c, const char *path, char *hash)
{
    sm_err err;
    size_t len;
    uint8_t *data = sm_file_read(path, SM_FILE_MAX_MODEL, &len, &err);
    if (!data)
        return fail(c, "%s", err.msg);
    int rc = sm_client_put(c, data, len, hash);
    free(data);
    return rc;
}

int sm_client_submit(sm_client *c, const sm_client_job *job, char *id)
{
    char hash[SM_HASH_HEX + 1];
    sm_err err;
    if ((!job->model && !job->model_hash) || !job->out || !job->n_methods)
        return fail(c, "a job needs a model, an output folder and methods");
    /* what sm_client_status cannot hold whole is refused here, before the
     * broker takes the job */
    if (too_long(c, NULL, "name", job->name,
                 sizeof ((sm_client_status *)0)->name) ||
        too_long(c, NULL, "output folder", job->out,
                 sizeof ((sm_client_status *)0)->out))
        return -1;
    if (job->model_hash)
        snprintf(hash, sizeof hash, "%s", job->model_hash);
    else if (put_model(c, job->model, hash))
        return -1;
    enum { MAX_AUX = 16 };
    char aux[MAX_AUX][SM_HASH_HEX + 1];
    if (job->n_aux > MAX_AUX)
        return fail(c, "job: %zu auxiliary models, more than %d", job->n_aux,
                    MAX_AUX);
    for (size_t k = 0; k < job->n_aux; k++)
        if (job->aux_hashes)
            snprintf(aux[k], sizeof aux[k], "%s", job->aux_hashes[k]);
        else if (put_model(c, job->aux_paths[k], aux[k]))
            return -1;
    const char *aux_hashes[MAX_AUX];
    for (size_t k = 0; k < job->n_aux; k++)
        aux_hashes[k] = aux[k];
    char *config = NULL;
    if (job->config_text) {
        if (!(config = strdup(job->config_text)))
            return encode_failed(c);
    } else if (job->config) {
        size_t len;
        if (!(config = (char *)sm_file_read(job->config, (size_t)1 << 20, &len, &err)))
            return fail(c, "%s", err.msg);
        char *nul = realloc(config, len + 1);
        if (!nul) {
            free(config);
            return encode_failed(c);
        }
        config = nul;
        config[len] = '\0';
    }
    sm_msg_image *im = calloc(job->n_images ? job->n_images : 1, sizeof *im);
    const char **settings = malloc(sizeof(char *) * (job->n_settings + 1));
    if (!im || !settings) {
        free(im);
        free(config);
        return encode_failed(c);
    }
    /* a setting given twice (a job file's, then an override): the last
     * wins, and the wire carries each key once */
    size_t n_settings = 0;
    for (size_t k = 0; k < job->n_settings; k++) {
        const char *s = job->settings[k], *eq = strchr(s, '=');
        size_t klen = eq ? (size_t)(eq - s) : strlen(s);
        int later = 0;
        for (size_t q = k + 1; q < job->n_settings && !later; q++)
            later = !strncmp(job->settings[q], s, klen) &&
                    (job->settings[q][klen] == '=' || job->settings[q][klen] == '\0');
        if (!later)
            settings[n_settings++] = s;
    }
    for (size_t i = 0; i < job->n_images; i++)
        im[i] = (sm_msg_image){.id = job->images[i].id, .label = job->images[i].label,
                               .label_index = -1, .format = SM_IMAGE_FILE,
                               .data = job->images[i].data, .len = job->images[i].len};
    sm_msg_job m = {
        .name = job->name, .model = hash, .model_name = job->model,
        .config = config, .dataset = job->dataset,
        .images = im, .n_images = job->n_images,
        .methods = (const char **)job->methods, .n_methods = job->n_methods,
        .settings = settings, .n_settings = n_settings,
        .seed = job->seed, .out = job->out, .limit = job->limit,
        .metrics = job->metrics,
        .faithfulness_subsets = job->faithfulness_subsets,
        .faithfulness_size = job->faithfulness_size,
        .sensitivity_samples = job->sensitivity_samples,
        .sensitivity_radius = job->sensitivity_radius,
        .png = !job->no_png, .scale = job->scale ? job->scale : "map",
        .target = job->target ? job->target : "predicted",
        .score = job->score ? job->score : "logit",
        .batch = job->batch > 0 ? job->batch : 64,
        .model_names = (const char **)job->aux_names,
        .model_hashes = aux_hashes, .n_models = job->n_aux,
    };
    sm_msg_buf b = {0};
    sm_msg_frames f;
    int rc = sm_msg_encode_job(&m, &b) ? encode_failed(c)
                                        : request(c, "SUBMIT", &b, "SUBMITTED", &f);
    sm_msg_buf_free(&b);
    free(settings);
    free(im);
    free(config);
    if (rc)
        return -1;
    sm_msg_doc *doc = NULL;
    const char *jid;
    if (sm_msg_decode_job_id(f.body, f.len, &c->limits, &doc, &jid, &err))
        rc = fail(c, "%s: SUBMITTED: %s", c->endpoint, err.msg);
    else if (too_long(c, "SUBMITTED", "job id", jid, SM_CLIENT_ID_MAX))
        rc = -1;
    else
        snprintf(id, SM_CLIENT_ID_MAX, "%s", jid);
    sm_msg_doc_destroy(&doc);
    sm_msg_frames_free(&f);
    return rc;
}

/* Copies a status from the wire into st; -1 (naming the job and the
 * field) when a string does not fit st's fixed fields. */
static int copy_status(sm_client *c, const char *cmd, const sm_msg_status *m,
                       sm_client_status *st)
{
    const char *name = m->name ? m->name : "", *out = m->out ? m->out : "",
               *error = m->error ? m->error : "";
    char where[SM_CLIENT_ID_MAX + 64];
    if (too_long(c, cmd, "job id", m->job, sizeof st->job))
        return -1;
    snprintf(where, sizeof where, "%s: job %s", cmd, m->job);
    if (too_long(c, where, "name", name, sizeof st->name) ||
        too_long(c, where, "state", m->state, sizeof st->state) ||
        too_long(c, where, "output folder", out, sizeof st->out) ||
        too_long(c, where, "error", error, sizeof st->error))
        return -1;
    memset(st, 0, sizeof *st);
    memcpy(st->job, m->job, strlen(m->job) + 1);
    memcpy(st->name, name, strlen(name) + 1);
    memcpy(st->state, m->state, strlen(m->state) + 1);
    memcpy(st->out, out, strlen(out) + 1);
    memcpy(st->error, error, strlen(error) + 1);
    st->images = m->images;
    st->maps_total = m->maps_total;
    st->maps_done = m->maps_done;
    st->maps_failed = m->maps_failed;
    st->maps_found = m->maps_found;
    st->seconds = m->seconds;
    st->rate = m->rate;
    return 0;
}

/* Decodes a status body (STATUS or EVENT) into st. */
static int status_body(sm_client *c, const sm_msg_frames *f, sm_client_status *st)
{
    sm_msg_doc *doc = NULL;
    sm_msg_status m;
    sm_err err;
    int rc = 0;
    if (sm_msg_decode_status(f->body, f->len, &c->limits, &doc, &m, &err))
        rc = fail(c, "%s: %s: %s", c->endpoint, f->command, err.msg);
    else
        rc = copy_status(c, f->command, &m, st);
    sm_msg_doc_destroy(&doc);
    return rc;
}

/* A {job} request whose reply is `want`; the reply is left in f. */
static int job_request(sm_client *c, const char *cmd, const char *job,
                       const char *want, sm_msg_frames *f)
{
    sm_msg_buf b = {0};
    int rc = sm_msg_encode_job_id(job, &b) ? encode_failed(c)
                                            : request(c, cmd, &b, want, f);
    sm_msg_buf_free(&b);
    return rc;
}

int sm_client_status_of(sm_client *c, const char *job, sm_client_status *st)
{
    sm_msg_frames f;
    if (job_request(c, "STATUS", job, "STATUS", &f))
        return -1;
    int rc = status_body(c, &f, st);
    sm_msg_frames_free(&f);
    return rc;
}

int sm_client_list(sm_client *c, sm_client_status **jobs, size_t *n)
{
    sm_msg_buf b = {0};
    sm_msg_frames f;
    *jobs = NULL;
    *n = 0;
    int rc = sm_msg_encode_empty(&b) ? encode_failed(c)
                                      : request(c, "LIST", &b, "LIST", &f);
    sm_msg_buf_free(&b);
    if (rc)
        return -1;
    sm_msg_doc *doc = NULL;
    sm_msg_list l;
    sm_err err;
    if (sm_msg_decode_list(f.body, f.len, &c->limits, &doc, &l, &err)) {
        rc = fail(c, "%s: LIST: %s", c->endpoint, err.msg);
    } else if (!(*jobs = calloc(l.n ? l.n : 1, sizeof **jobs))) {
        rc = encode_failed(c);
    } else {
        for (size_t k = 0; rc == 0 && k < l.n; k++)
            rc = copy_status(c, "LIST", &l.jobs[k], &(*jobs)[k]);
        if (rc) {
            free(*jobs);
            *jobs = NULL;
        } else {
            *n = l.n;
        }
    }
    sm_msg_doc_destroy(&doc);
    sm_msg_frames_free(&f);
    return rc;
}

static int ended(const sm_client_status *st)
{
    return strcmp(st->state, "queued") && strcmp(st->state, "running");
}

int sm_client_wait_for(sm_client *c, const char *job, double seconds,
                       void (*on_event)(const sm_client_status *st, void *u),
                       void *u, sm_client_status *final)
{
    sm_client_status st;
    double end = seconds > 0 ? sm_clock_now() + seconds : 0;
    int rc = 1;
    for (;;) {
        /* STATUS first: it fails on an unknown job, and a job that has
         * ended already sends no events */
        if (sm_client_status_of(c, job, &st))
            return -1;
        if (on_event)
            on_event(&st, u);
        if (ended(&st)) {
            rc = 0;
            break;
        }
        sm_msg_buf b = {0};
        if (sm_msg_encode_job_id(job, &b))
            return encode_failed(c);
        int sent = sm_msg_send(c->sock, NULL, 0, SM_PROTO_CLIENT, "WATCH", b.data, b.len);
        sm_msg_buf_free(&b);
        if (sent)
            return fail(c, "%s: send WATCH: %s", c->endpoint, zmq_strerror(errno));
        for (;;) {
            sm_msg_frames f;
            double left = end ? end - sm_clock_now() : WATCH_SILENCE;
            if (left <= 0) {
                reconnect(c); /* the watch's events must not answer a request */
                goto out;
            }
            int got = receive(c, left < WATCH_SILENCE ? left : WATCH_SILENCE, &f);
            if (got < 0)
                return -1;
            if (got > 0) /* silence: ask again (STATUS skips the watch's
                            EVENTs; the same identity keeps one watch) */
                break;
            int ok = !strcmp(f.command, "EVENT") && status_body(c, &f, &st) == 0 &&
                     !strcmp(st.job, job);
            sm_msg_frames_free(&f);
            if (!ok)
                continue;
            if (on_event)
                on_event(&st, u);
            if (ended(&st)) {
                rc = 0;
                goto out;
            }
        }
    }
out:
    if (final)
        *final = st;
    return rc;
}

int sm_client_wait(sm_client *c, const char *job,
                   void (*on_event)(const sm_client_status *st, void *u),
                   void *u, sm_client_status *final)
{
    return sm_client_wait_for(c, job, 0, on_event, u, final);
}

int sm_client_cancel(sm_client *c, const char *job)
{
    sm_msg_frames f;
    if (job_request(c, "CANCEL", job, "CANCELLED", &f))
        return -1;
    sm_msg_frames_free(&f);
    return 0;
}

int sm_client_delete(sm_client *c, const char *job)
{
    sm_msg_frames f;
    if (job_request(c, "DELETE", job, "DELETED", &f))
        return -1;
    sm_msg_frames_free(&f);
    return 0;
}

/* One FETCH, of the files from `from` on or of the one named path. */
static int fetch(sm_client *c, const char *job, int64_t from, const char *path,
                 int (*fn)(const char *path, const void *data, size_t len, void *u),
                 void *u, int64_t *next)
{
    sm_msg_files req = {.job = job, .from = from, .path = path};
    sm_msg_buf b = {0};
    sm_msg_frames f;
    int rc = sm_msg_encode_files(&req, &b) ? encode_failed(c)
                                            : request(c, "FETCH", &b, "FILES", &f);
    sm_msg_buf_free(&b);
    if (rc)
        return -1;
    sm_msg_doc *doc = NULL;
    sm_msg_files rep;
    sm_err err;
    if (sm_msg_decode_files(f.body, f.len, &c->limits, &doc, &rep, &err)) {
        rc = fail(c, "%s: FILES: %s", c->endpoint, err.msg);
    } else if (rep.next >= 0 && rep.next <= from) {
        rc = fail(c, "%s: FILES: no progress (next %lld after %lld)",
                  c->endpoint, (long long)rep.next, (long long)from);
    } else {
        for (size_t k = 0; rc == 0 && k < rep.n; k++)
            if (fn(rep.files[k].path, rep.files[k].data, rep.files[k].len, u))
                rc = -1;
        *next = rep.next;
    }
    sm_msg_doc_destroy(&doc);
    sm_msg_frames_free(&f);
    return rc;
}

int sm_client_fetch_page(sm_client *c, const char *job, int64_t from,
                         int (*fn)(const char *path, const void *data,
                                   size_t len, void *u),
                         void *u, int64_t *next)
{
    return fetch(c, job, from, NULL, fn, u, next);
}

typedef struct one_file {
    const char *want;
    void *data;
    size_t len;
    int oom;
} one_file;

static int keep_file(const char *path, const void *data, size_t len, void *u)
{
    one_file *o = u;
    if (strcmp(path, o->want) || o->data)
        return 0;
    if (!(o->data = malloc(len ? len : 1)))
        return o->oom = 1, -1;
    memcpy(o->data, data, len);
    o->len = len;
    return 0;
}

int sm_client_fetch_file(sm_client *c, const char *job, const char *path,
                         void **data, size_t *len)
{
    one_file o = {.want = path};
    int64_t next;
    *data = NULL;
    *len = 0;
    if (fetch(c, job, 0, path, keep_file, &o, &next)) {
        free(o.data);
        return o.oom ? fail(c, "%s: %s: out of memory", job, path) : -1;
    }
    if (!o.data)
        return fail(c, "%s: FILES: the reply lacks %s", c->endpoint, path);
    *data = o.data;
    *len = o.len;
    return 0;
}

/* sm_client_workers with what its pointers point into. */
typedef struct workers_reply {
    sm_client_workers pub; /* first: the caller's pointer is to it */
    sm_msg_frames f;
    sm_msg_doc *doc;
    sm_client_worker *workers;
    sm_client_lease *leases;
    sm_client_fault *faults;
} workers_reply;

void sm_client_workers_destroy(sm_client_workers **wp)
{
    workers_reply *r = (workers_reply *)*wp;
    if (!r)
        return;
    sm_msg_doc_destroy(&r->doc);
    sm_msg_frames_free(&r->f);
    free(r->workers);
    free(r->leases);
    free(r->faults);
    free(r);
    *wp = NULL;
}

sm_client_workers *sm_client_workers_get(sm_client *c)
{
    sm_msg_buf b = {0};
    workers_reply *r = calloc(1, sizeof *r);
    if (!r || sm_msg_encode_empty(&b)) {
        free(r);
        sm_msg_buf_free(&b);
        encode_failed(c);
        return NULL;
    }
    int rc = request(c, "WORKERS", &b, "WORKERS", &r->f);
    sm_msg_buf_free(&b);
    if (rc) {
        free(r);
        return NULL;
    }
    sm_msg_workers m;
    sm_err err;
    if (sm_msg_decode_workers(r->f.body, r->f.len, &c->limits, &r->doc, &m, &err)) {
        fail(c, "%s: WORKERS: %s", c->endpoint, err.msg);
        goto failed;
    }
    size_t n_leases = 0;
    for (size_t k = 0; k < m.n; k++)
        n_leases += m.workers[k].n_tasks;
    r->workers = calloc(m.n ? m.n : 1, sizeof *r->workers);
    r->leases = calloc(n_leases ? n_leases : 1, sizeof *r->leases);
    r->faults = calloc(m.n_faults ? m.n_faults : 1, sizeof *r->faults);
    if (!r->workers || !r->leases || !r->faults) {
        encode_failed(c);
        goto failed;
    }
    size_t used = 0;
    for (size_t k = 0; k < m.n; k++) {
        const sm_msg_worker *w = &m.workers[k];
        r->workers[k] = (sm_client_worker){w->name, w->capacity, w->inflight, w->served,
                                           w->heard, w->joined, r->leases + used,
                                           w->n_tasks};
        for (size_t t = 0; t < w->n_tasks; t++, used++) {
            const sm_msg_lease *l = &w->tasks[t];
            r->leases[used] = (sm_client_lease){l->job, l->method, l->kind,
                                                l->first ? l->first : "", l->images,
                                                l->failures, l->seconds};
        }
    }
    for (size_t k = 0; k < m.n_faults; k++)
        r->faults[k] = (sm_client_fault){m.faults[k].at, m.faults[k].job,
                                         m.faults[k].message};
    r->pub = (sm_client_workers){r->workers, m.n, r->faults, m.n_faults};
    return &r->pub;
failed:;
    sm_client_workers *pub = &r->pub;
    sm_client_workers_destroy(&pub);
    return NULL;
}

int sm_client_fetch_each(sm_client *c, const char *job,
                         int (*fn)(const char *path, const void *data,
                                   size_t len, void *u),
                         void *u)
{
    int64_t from = 0;
    while (from >= 0)
        if (sm_client_fetch_page(c, job, from, fn, u, &from))
            return -1;
    return 0;
}

typedef struct fetch_dir {
    sm_client *c;
    const char *dir;
} fetch_dir;

static int write_file(const char *path, const void *data, size_t len, void *u)
{
    fetch_dir *fd = u;
    sm_err err;
    /* paths come from the broker: never outside dir */
    if (path[0] == '/' || strstr(path, "..") || path[0] == '\0')
        return fail(fd->c, "fetch: refused the path '%.200s'", path);
    size_t cap = strlen(fd->dir) + strlen(path) + 2;
    char *full = malloc(cap); /* as long as dir and path make it */
    if (!full)
        return encode_failed(fd->c);
    snprintf(full, cap, "%s/%s", fd->dir, path);
    char *slash = strrchr(full, '/');
    *slash = '\0';
    int rc = sm_file_mkdirs(full, &err);
    *slash = '/';
    if (rc == 0)
        rc = sm_file_write_atomic(full, data, len, &err);
    free(full);
    return rc ? fail(fd->c, "%s", err.msg) : 0;
}

int sm_client_fetch(sm_client *c, const char *job, const char *dir)
{
    fetch_dir fd = {c, dir};
    return sm_client_fetch_each(c, job, write_file, &fd);
}
