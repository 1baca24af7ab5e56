/* OUT/job.json (jobinfo.h), through jansson. */
#define _XOPEN_SOURCE 700 /* strptime */
#include "io/jobinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "util/file.h"

#define MAX_BYTES ((size_t)16 << 20)

struct sm_jobinfo_file {
    json_t *root;
    sm_jobinfo ji;
    sm_jobinfo_method *methods;
    const char **workers;
    sm_jobinfo_failure *failures;
};

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* "2026-12-06T23:15:00Z"; null for 0 */
static json_t *time_or_null(double t)
{
    if (t <= 0)
        return json_null();
    time_t s = (time_t)t;
    struct tm tm;
    char buf[32];
    gmtime_r(&s, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static double time_of(const json_t *v)
{
    struct tm tm = {0};
    const char *s = json_string_value(v);
    if (!s)
        return 0;
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return end && !*end ? (double)timegm(&tm) : 0;
}

int sm_jobinfo_write(const char *out, const sm_jobinfo *ji, sm_err *err)
{
    json_t *methods = json_array(), *workers = json_array();
    for (int m = 0; methods && m < ji->n_methods; m++) {
        const sm_jobinfo_method *jm = &ji->methods[m];
        json_t *params = json_loads(jm->params ? jm->params : "{}", 0, NULL);
        json_array_append_new(methods,
                              json_pack("{s:s, s:b, s:o}", "name", jm->name,
                                        "signed", jm->signed_map, "params",
                                        params ? params : json_object()));
    }
    for (int k = 0; workers && k < ji->n_workers; k++)
        json_array_append_new(workers, json_string(ji->workers[k]));
    json_t *failures = json_array();
    for (int k = 0; failures && k < ji->n_failures; k++) {
        const sm_jobinfo_failure *f = &ji->failures[k];
        json_array_append_new(failures, json_pack("{s:o, s:o, s:o}", "id", str_or_null(f->id),
                                                  "method", str_or_null(f->method),
                                                  "error", str_or_null(f->error)));
    }
    json_t *root = json_pack(
        "{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:i, s:i, s:i}, s:o, s:I, "
        "s:I, s:o, s:o, s:b, s:I, s:o, s:o, s:f, s:o, s:I, s:I, s:o, s:o}",
        "salmap", 1, "id", str_or_null(ji->id), "name", str_or_null(ji->name),
        "model", str_or_null(ji->model), "model_hash",
        str_or_null(ji->model_hash), "config", str_or_null(ji->config),
        "dataset", str_or_null(ji->dataset), "input", "channels", ji->channels,
        "height", ji->height, "width", ji->width, "methods",
        methods ? methods : json_array(), "seed", (json_int_t)ji->seed,
        "limit", (json_int_t)ji->limit, "target", str_or_null(ji->target),
        "score", str_or_null(ji->score), "metrics", ji->metrics, "images",
        (json_int_t)ji->images, "started", time_or_null(ji->started),
        "finished", time_or_null(ji->finished), "seconds",
        ji->finished > 0 ? ji->finished - ji->started : 0.0, "workers",
        workers ? workers : json_array(), "maps", (json_int_t)ji->maps,
        "failed", (json_int_t)ji->failed, "state", str_or_null(ji->state),
        "failures", failures ? failures : json_array());
    char *text = root ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))
                      : NULL;
    json_decref(root);
    char path[4096];
    int rc;
    if (!text)
        rc = sm_err_set(err, "%s/job.json: out of memory", out);
    else if (snprintf(path, sizeof path, "%s/job.json", out) >= (int)sizeof path)
        rc = sm_err_set(err, "%s: path too long", out);
    else
        rc = sm_file_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

/* The string at key (NULL for null or absent); -1 for another type. */
static int get_str(const json_t *o, const char *key, const char **s)
{
    const json_t *v = json_object_get(o, key);
    *s = json_string_value(v);
    return !v || json_is_null(v) || *s ? 0 : -1;
}

static int get_u64(const json_t *o, const char *key, uint64_t *u)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *u = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_int(const json_t *o, const char *key, int *i)
{
    const json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > 1 << 30)
        return -1;
    *i = (int)json_integer_value(v);
    return 0;
}

/* Fills f->ji from f->root; the name of the first bad key, or NULL. */
static const char *convert(sm_jobinfo_file *f)
{
    const json_t *r = f->root, *in = json_object_get(r, "input");
    sm_jobinfo *ji = &f->ji;
    const json_t *ms = json_object_get(r, "methods"),
                 *ws = json_object_get(r, "workers");
    if (!json_is_object(r))
        return "(the document)";
    if (get_str(r, "id", &ji->id)) return "id";
    if (get_str(r, "name", &ji->name)) return "name";
    if (get_str(r, "model", &ji->model)) return "model";
    if (get_str(r, "model_hash", &ji->model_hash)) return "model_hash";
    if (get_str(r, "config", &ji->config)) return "config";
    if (get_str(r, "dataset", &ji->dataset) || !ji->dataset) return "dataset";
    if (get_int(in, "channels", &ji->channels) ||
        (ji->channels != 1 && ji->channels != 3))
        return "input.channels";
    if (get_int(in, "height", &ji->height) || ji->height < 1)
        return "input.height";
    if (get_int(in, "width", &ji->width) || ji->width < 1)
        return "input.width";
    if (get_u64(r, "seed", &ji->seed)) return "seed";
    if (get_u64(r, "limit", &ji->limit)) return "limit";
    if (get_str(r, "target", &ji->target)) return "target";
    if (get_str(r, "score", &ji->score)) return "score";
    if (!json_is_boolean(json_object_get(r, "metrics"))) return "metrics";
    ji->metrics = json_is_true(json_object_get(r, "metrics"));
    if (get_u64(r, "images", &ji->images)) return "images";
    ji->started = time_of(json_object_get(r, "started"));
    ji->finished = time_of(json_object_get(r, "finished"));
    if (get_u64(r, "maps", &ji->maps)) return "maps";
    if (get_u64(r, "failed", &ji->failed)) return "failed";
    if (get_str(r, "state", &ji->state)) return "state";
    if (!json_is_array(ms) || json_array_size(ms) < 1 ||
        json_array_size(ms) > 1024)
        return "methods";
    if (!json_is_array(ws) || json_array_size(ws) > 1 << 20)
        return "workers";
    f->methods = calloc(json_array_size(ms), sizeof *f->methods);
    f->workers = calloc(json_array_size(ws) + 1, sizeof *f->workers);
    if (!f->methods || !f->workers)
        return "(out of memory)";
    size_t k;
    const json_t *v;
    json_array_foreach(ms, k, v) {
        sm_jobinfo_method *m = &f->methods[k];
        const json_t *sg = json_object_get(v, "signed"),
                     *p = json_object_get(v, "params");
        if (get_str(v, "name", &m->name) || !m->name || !json_is_boolean(sg) ||
            !json_is_object(p))
            return "methods[]";
        m->signed_map = json_is_true(sg);
        /* owned by f: freed by sm_jobinfo_file_destroy */
        if (!(m->params = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER)))
            return "(out of memory)";
        ji->n_methods = (int)k + 1; /* what destroy frees, so far */
    }
    json_array_foreach(ws, k, v) {
        if (!(f->workers[k] = json_string_value(v)))
            return "workers[]";
    }
    ji->methods = f->methods;
    ji->workers = f->workers;
    ji->n_workers = (int)json_array_size(ws);
    const json_t *fs = json_object_get(r, "failures");
    if (fs && (!json_is_array(fs) || json_array_size(fs) > SM_JOBINFO_FAILURES))
        return "failures";
    if (fs && json_array_size(fs)) {
        if (!(f->failures = calloc(json_array_size(fs), sizeof *f->failures)))
            return "(out of memory)";
        json_array_foreach(fs, k, v) {
            sm_jobinfo_failure *x = &f->failures[k];
            if (!json_is_object(v) || get_str(v, "id", &x->id) || !x->id ||
                get_str(v, "method", &x->method) || !x->method ||
                get_str(v, "error", &x->error))
                return "failures[]";
        }
        ji->failures = f->failures;
        ji->n_failures = (int)json_array_size(fs);
    }
    return NULL;
}

sm_jobinfo_file *sm_jobinfo_load(const char *out, sm_err *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/job.json", out) >= (int)sizeof path) {
        sm_err_set(err, "%s: path too long", out);
        return NULL;
    }
    size_t len;
    unsigned char *buf = sm_file_read(path, MAX_BYTES, &len, err);
    if (!buf)
        return NULL;
    sm_jobinfo_file *f = calloc(1, sizeof *f);
    json_error_t je;
    const char *bad = NULL;
    if (!f)
        sm_err_set(err, "%s: out of memory", path);
    else if (!(f->root = json_loadb((const char *)buf, len, 0, &je)))
        sm_err_set(err, "%s:%d: %s", path, je.line, je.text);
    else if ((bad = convert(f)))
        sm_err_set(err, "%s: %s: missing or of the wrong type", path, bad);
    free(buf);
    if (!f || !f->root || bad)
        sm_jobinfo_file_destroy(&f);
    return f;
}

void sm_jobinfo_file_destroy(sm_jobinfo_file **fp)
{
    sm_jobinfo_file *f = *fp;
    if (!f)
        return;
    for (int m = 0; f->methods && m < f->ji.n_methods; m++)
        free((char *)f->methods[m].params);
    free(f->methods);
    free(f->workers);
    free(f->failures);
    json_decref(f->root);
    free(f);
    *fp = NULL;
}

const sm_jobinfo *sm_jobinfo_of(const sm_jobinfo_file *f)
{
    return &f->ji;
}

const sm_jobinfo_method *sm_jobinfo_method_find(const sm_jobinfo *ji,
                                                const char *name)
{
    for (int m = 0; m < ji->n_methods; m++)
        if (!strcmp(ji->methods[m].name, name))
            return &ji->methods[m];
    return NULL;
}
