/* Job documents in, statuses out (gateway/json.h). */
#include "gateway/json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util/text.h"

static void *own(sm_gw_job *j, void *p)
{
    if (!p)
        return NULL;
    if (j->n_owned == j->cap_owned) {
        size_t cap = j->cap_owned ? 2 * j->cap_owned : 16;
        void **o = realloc(j->owned, cap * sizeof *o);
        if (!o) {
            free(p);
            return NULL;
        }
        j->owned = o;
        j->cap_owned = cap;
    }
    return j->owned[j->n_owned++] = p;
}

void sm_gw_job_free(sm_gw_job *j)
{
    for (size_t k = 0; k < j->n_owned; k++)
        free(j->owned[k]);
    free(j->owned);
    memset(j, 0, sizeof *j);
}

int sm_gw_path_safe(const char *s)
{
    if (!s[0] || s[0] == '/' || strstr(s, ".."))
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            return 0;
    return 1;
}

char *sm_gw_base64(const void *data, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *s = malloc(cap);
    if (s)
        sodium_bin2base64(s, cap, data, len, sodium_base64_VARIANT_ORIGINAL);
    return s;
}

/* The bytes of base64 text into *data (owned by j). */
static int unbase64(sm_gw_job *j, const char *key, const char *b64,
                    const void **data, size_t *len, sm_err *err)
{
    size_t n = strlen(b64), got = 0;
    uint8_t *bin = own(j, malloc(n / 4 * 3 + 3));
    if (!bin)
        return sm_err_set(err, "%s: out of memory", key);
    if (sodium_base642bin(bin, n / 4 * 3 + 3, b64, n, "\r\n", &got, NULL,
                          sodium_base64_VARIANT_ORIGINAL) || got == 0)
        return sm_err_set(err, "%s: not base64 of an image file", key);
    *data = bin;
    *len = got;
    return 0;
}

static int is_hash(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

/* A string value; NUL bytes inside are refused (the wire cannot hold them). */
static int str_of(json_t *v, const char *key, const char **dst, sm_err *err)
{
    if (!json_is_string(v))
        return sm_err_set(err, "%s: must be a string", key);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return sm_err_set(err, "%s: holds a NUL character", key);
    *dst = json_string_value(v);
    return 0;
}

static int opt_str(json_t *doc, const char *key, const char **dst, sm_err *err)
{
    json_t *v = json_object_get(doc, key);
    return v && !json_is_null(v) ? str_of(v, key, dst, err) : 0;
}

static int opt_int(json_t *doc, const char *key, long long lo, long long hi,
                   long long *dst, sm_err *err)
{
    json_t *v = json_object_get(doc, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return sm_err_set(err, "%s: must be an integer in %lld..%lld", key, lo, hi);
    *dst = json_integer_value(v);
    return 0;
}

static int opt_bool(json_t *doc, const char *key, int *dst, sm_err *err)
{
    json_t *v = json_object_get(doc, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return sm_err_set(err, "%s: must be true or false", key);
    *dst = json_is_true(v);
    return 0;
}

static int hash_of(json_t *v, const char *key, const char **dst, sm_err *err)
{
    if (str_of(v, key, dst, err))
        return -1;
    if (!is_hash(*dst))
        return sm_err_set(err, "%s: '%.80s' is not a model hash (64 hex digits "
                          "of POST /v1/models)", key, *dst);
    return 0;
}

static int dataset_served(const char *ds, const sm_gw_paths *paths, sm_err *err)
{
    if (!paths->n_dataset_roots)
        return sm_err_set(err, "dataset: this gateway serves no datasets "
                          "(--dataset-root); send the images inline");
    int safe = ds[0] && !strstr(ds, "..") && !strchr(ds, '\\');
    for (const unsigned char *p = (const unsigned char *)ds; safe && *p; p++)
        safe = *p >= 0x20 && *p != 0x7f;
    for (size_t k = 0; safe && k < paths->n_dataset_roots; k++) {
        const char *r = paths->dataset_roots[k];
        size_t n = strlen(r);
        while (n > 1 && r[n - 1] == '/')
            n--;
        if (!strncmp(ds, r, n) && (ds[n] == '\0' || ds[n] == '/'))
            return 0;
    }
    return sm_err_set(err, "dataset: '%.200s' is not under a folder this "
                      "gateway serves", ds);
}

static int parse_images(json_t *arr, sm_gw_job *j, sm_err *err)
{
    if (!json_is_array(arr) || !json_array_size(arr))
        return sm_err_set(err, "images: must be a non-empty array");
    size_t n = json_array_size(arr);
    sm_client_image *im = own(j, calloc(n, sizeof *im));
    if (!im)
        return sm_err_set(err, "images: out of memory");
    for (size_t k = 0; k < n; k++) {
        json_t *e = json_array_get(arr, k), *v;
        char key[64];
        snprintf(key, sizeof key, "images[%zu]", k);
        if (!json_is_object(e))
            return sm_err_set(err, "%s: must be an object {id, label, data}", key);
        const char *data = NULL;
        if (!(v = json_object_get(e, "id")) || str_of(v, "id", &im[k].id, err) ||
            !sm_gw_path_safe(im[k].id))
            return sm_err_set(err, "%s.id: must be a relative path without '..'", key);
        if (opt_str(e, "label", &im[k].label, err) ||
            !(v = json_object_get(e, "data")) || str_of(v, "data", &data, err) ||
            unbase64(j, "data", data, &im[k].data, &im[k].len, err))
            return sm_err_prefix(err, "%s", key), -1;
    }
    j->job.images = im;
    j->job.n_images = n;
    return 0;
}

static int parse_methods(json_t *arr, sm_gw_job *j, sm_err *err)
{
    if (!json_is_array(arr) || !json_array_size(arr))
        return sm_err_set(err, "methods: must be a non-empty array of names");
    size_t n = json_array_size(arr);
    const char **m = own(j, calloc(n, sizeof *m));
    if (!m)
        return sm_err_set(err, "methods: out of memory");
    for (size_t k = 0; k < n; k++)
        if (str_of(json_array_get(arr, k), "methods", &m[k], err) || !m[k][0] ||
            strchr(m[k], '.') || strchr(m[k], '='))
            return sm_err_set(err, "methods[%zu]: must be a method's name", k);
    j->job.methods = m;
    j->job.n_methods = n;
    return 0;
}

/* params {method: {key: value}} into "method.key=value" settings. */
static int parse_params(json_t *obj, sm_gw_job *j, sm_err *err)
{
    if (!json_is_object(obj))
        return sm_err_set(err, "params: must be an object {method: {key: value}}");
    size_t cap = 0;
    const char *method;
    json_t *kv;
    json_object_foreach(obj, method, kv) cap += json_is_object(kv) ? json_object_size(kv) : 0;
    const char **s = own(j, calloc(cap ? cap : 1, sizeof *s));
    if (!s)
        return sm_err_set(err, "params: out of memory");
    size_t n = 0;
    json_object_foreach(obj, method, kv) {
        int listed = 0;
        for (size_t k = 0; k < j->job.n_methods; k++)
            listed |= !strcmp(j->job.methods[k], method);
        if (!listed)
            return sm_err_set(err, "params: %.64s is not in methods", method);
        if (json_is_null(kv))
            continue;
        if (!json_is_object(kv))
            return sm_err_set(err, "params.%.64s: must be an object {key: value}", method);
        const char *key;
        json_t *v;
        json_object_foreach(kv, key, v) {
            sm_text t = {0};
            if (!key[0] || strchr(key, '='))
                return sm_err_set(err, "params.%.64s: '%.64s' is not a parameter name",
                                  method, key);
            int rc = sm_text_addf(&t, "%s.%s=", method, key);
            if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v))
                rc |= sm_text_addf(&t, "%s", json_string_value(v));
            else if (json_is_integer(v))
                rc |= sm_text_addf(&t, "%lld", (long long)json_integer_value(v));
            else if (json_is_real(v))
                rc |= sm_text_addf(&t, "%.17g", json_real_value(v));
            else if (json_is_boolean(v))
                rc |= sm_text_addf(&t, "%s", json_is_true(v) ? "true" : "false");
            else {
                sm_text_free(&t);
                return sm_err_set(err, "params.%.64s.%.64s: must be a string, number "
                                  "or boolean", method, key);
            }
            if (rc || !own(j, t.s)) {
                if (rc)
                    sm_text_free(&t);
                return sm_err_set(err, "params: out of memory");
            }
            s[n++] = t.s;
        }
    }
    j->job.settings = s;
    j->job.n_settings = n;
    return 0;
}

static int parse_metric_params(json_t *obj, sm_gw_job *j, sm_err *err)
{
    if (!json_is_object(obj))
        return sm_err_set(err, "metric_params: must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        long long x = 0;
        if (!strcmp(key, "sensitivity_radius")) {
            if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1)
                return sm_err_set(err, "metric_params.sensitivity_radius: must be a "
                                  "number in 0..1");
            j->job.sensitivity_radius = json_number_value(v);
            continue;
        }
        int *dst = !strcmp(key, "faithfulness_subsets") ? &j->job.faithfulness_subsets
                 : !strcmp(key, "faithfulness_size")    ? &j->job.faithfulness_size
                 : !strcmp(key, "sensitivity_samples")  ? &j->job.sensitivity_samples
                                                        : NULL;
        if (!dst)
            return sm_err_set(err, "metric_params: unknown key '%.64s'", key);
        if (opt_int(obj, key, 0, 1 << 24, &x, err))
            return sm_err_prefix(err, "metric_params."), -1;
        *dst = (int)x;
    }
    return 0;
}

static int parse_models(json_t *obj, sm_gw_job *j, sm_err *err)
{
    enum { MAX_AUX = 16 };
    if (!json_is_object(obj) || json_object_size(obj) > MAX_AUX)
        return sm_err_set(err, "models: must be an object {name: hash} of at most %d",
                          MAX_AUX);
    size_t n = json_object_size(obj), k = 0;
    const char **names = own(j, calloc(n ? n : 1, sizeof *names));
    const char **hashes = own(j, calloc(n ? n : 1, sizeof *hashes));
    if (!names || !hashes)
        return sm_err_set(err, "models: out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (!sm_name_valid(key, 64))
            return sm_err_set(err, "models: '%.64s' is not a name ([a-z0-9_])", key);
        if (hash_of(v, "models", &hashes[k], err))
            return -1;
        names[k++] = key;
    }
    j->job.aux_names = names;
    j->job.aux_hashes = hashes;
    j->job.n_aux = n;
    return 0;
}

int sm_gw_job_parse(json_t *doc, const sm_gw_paths *paths, int inline_image,
                    sm_gw_job *j, sm_err *err)
{
    static const char *const keys[] = {
        "name", "model", "model_name", "config", "dataset", "images", "image",
        "methods", "limit", "seed", "batch", "target", "score", "metrics", "png",
        "scale", "metric_params", "params", "models", NULL};
    memset(j, 0, sizeof *j);
    if (!json_is_object(doc))
        return sm_err_set(err, "the job must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        size_t k = 0;
        while (keys[k] && strcmp(keys[k], key))
            k++;
        if (!strcmp(key, "out"))
            return sm_err_set(err, "out: the gateway chooses each job's folder");
        if (!keys[k] || (!strcmp(key, "image") && !inline_image) ||
            (inline_image && (!strcmp(key, "dataset") || !strcmp(key, "images"))))
            return sm_err_set(err, "unknown key '%.64s'", key);
    }
    sm_client_job *c = &j->job;
    long long limit = 0, seed = 0, batch = 0;
    c->metrics = !inline_image; /* explain answers fast: metrics on request */
    int png = !inline_image;
    const char *ds = NULL;
    if (!(v = json_object_get(doc, "model")))
        return sm_err_set(err, "model: required (the hash POST /v1/models answered)");
    if (hash_of(v, "model", &c->model_hash, err) ||
        opt_str(doc, "name", &c->name, err) ||
        opt_str(doc, "model_name", &c->model, err) ||
        opt_str(doc, "config", &c->config_text, err) ||
        opt_str(doc, "dataset", &ds, err) ||
        opt_str(doc, "target", &c->target, err) ||
        opt_str(doc, "score", &c->score, err) ||
        opt_str(doc, "scale", &c->scale, err) ||
        opt_int(doc, "limit", 0, INT64_MAX, &limit, err) ||
        opt_int(doc, "seed", 0, INT64_MAX, &seed, err) ||
        opt_int(doc, "batch", 1, 65536, &batch, err) ||
        opt_bool(doc, "metrics", &c->metrics, err) ||
        opt_bool(doc, "png", &png, err))
        return -1;
    c->limit = (uint64_t)limit;
    c->seed = (uint64_t)seed;
    c->batch = (int)batch;
    c->no_png = !png;
    if (!(v = json_object_get(doc, "methods")))
        return sm_err_set(err, "methods: required, e.g. [\"sal\", \"lime\"]");
    if (parse_methods(v, j, err) ||
        ((v = json_object_get(doc, "params")) && parse_params(v, j, err)) ||
        ((v = json_object_get(doc, "metric_params")) && parse_metric_params(v, j, err)) ||
        ((v = json_object_get(doc, "models")) && parse_models(v, j, err)))
        return -1;
    if (inline_image) {
        const char *b64 = NULL;
        sm_client_image *im = own(j, calloc(1, sizeof *im));
        if (!im)
            return sm_err_set(err, "image: out of memory");
        if (!(v = json_object_get(doc, "image")))
            return sm_err_set(err, "image: required (base64 of a PNG or JPEG file)");
        if (str_of(v, "image", &b64, err) || unbase64(j, "image", b64, &im->data,
                                                      &im->len, err))
            return -1;
        im->id = "image";
        c->images = im;
        c->n_images = 1;
    } else if (ds && (v = json_object_get(doc, "images"))) {
        return sm_err_set(err, "dataset and images: give one of them, not both");
    } else if (ds) {
        if (dataset_served(ds, paths, err))
            return -1;
        c->dataset = ds;
    } else if ((v = json_object_get(doc, "images"))) {
        if (parse_images(v, j, err))
            return -1;
    } else {
        return sm_err_set(err, "dataset or images: one of them is required");
    }
    uint8_t rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    int n = snprintf(j->out, sizeof j->out, "%s/", paths->out_root);
    for (size_t k = 0; k < sizeof rnd && n > 0 && (size_t)n + 3 < sizeof j->out; k++)
        n += snprintf(j->out + n, sizeof j->out - (size_t)n, "%02x", rnd[k]);
    c->out = j->out;
    return 0;
}

json_t *sm_gw_status_json(const sm_client_status *st)
{
    uint64_t left = st->maps_total > st->maps_done + st->maps_failed
                        ? st->maps_total - st->maps_done - st->maps_failed : 0;
    json_t *eta = !strcmp(st->state, "done")   ? json_real(0)
                  : st->rate > 0 && (!strcmp(st->state, "running"))
                      ? json_real((double)left / st->rate)
                      : json_null();
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:{s:I, s:I, s:I, s:I}, s:f, s:f, s:o}",
                          "id", st->job, "name", st->name, "state", st->state,
                          "images", (json_int_t)st->images,
                          "maps", "total", (json_int_t)st->maps_total,
                          "done", (json_int_t)st->maps_done,
                          "failed", (json_int_t)st->maps_failed,
                          "found", (json_int_t)st->maps_found,
                          "seconds", st->seconds, "rate", st->rate, "eta_seconds", eta);
    if (o && st->error[0])
        json_object_set_new(o, "error", json_string(st->error));
    return o;
}

json_t *sm_gw_workers_json(const sm_client_workers *w)
{
    json_t *ws = json_array(), *fs = json_array();
    int oom = !ws || !fs;
    for (size_t k = 0; k < w->n && !oom; k++) {
        const sm_client_worker *x = &w->workers[k];
        json_t *ts = json_array();
        for (size_t t = 0; ts && t < x->n_tasks && !oom; t++) {
            const sm_client_lease *l = &x->tasks[t];
            oom = json_array_append_new(ts, json_pack(
                "{s:s, s:s, s:s, s:s, s:I, s:I, s:f}", "job", l->job, "method",
                l->method, "kind", l->kind, "first", l->first, "images",
                (json_int_t)l->images, "failures", (json_int_t)l->failures,
                "seconds", l->seconds));
        }
        oom = oom || json_array_append_new(ws, json_pack(
            "{s:s, s:I, s:I, s:I, s:f, s:f, s:o}", "name", x->name, "capacity",
            (json_int_t)x->capacity, "inflight", (json_int_t)x->inflight, "served",
            (json_int_t)x->served, "heard_seconds", x->heard, "joined_seconds",
            x->joined, "tasks", ts)); /* "o" takes ts, on failure too */
    }
    for (size_t k = 0; k < w->n_faults && !oom; k++) {
        const sm_client_fault *f = &w->faults[k];
        oom = json_array_append_new(fs, json_pack("{s:f, s:s?, s:s}", "at", f->at,
                                                  "job", f->job, "message",
                                                  f->message));
    }
    if (oom) {
        json_decref(ws);
        json_decref(fs);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "workers", ws, "faults", fs);
}
