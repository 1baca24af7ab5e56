/* The output folder of an explain job (store.h): the direct loop (job.c)
 * and the broker both write through here, so their folders are the same
 * bytes but for the timing column. */
#include "explain/store.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "io/npy.h"
#include "util/file.h"
#include "util/grow.h"
#include "util/text.h"

#define STORE_PATH 4096
/* A row holds the method's whole record: a bound against a broken file,
 * not against any record a method writes. */
#define ROW_MAX ((size_t)256 << 20)

/* A row kept back by a batch until its files are durable. */
typedef struct pending_row {
    char *path, *text, *id, *method;
    size_t len;
} pending_row;

struct sm_explain_store {
    char *out;
    int batch; /* puts write without fsync and keep their rows */
    pending_row *rows;
    int64_t n_rows, cap_rows;
};

static void pending_free(pending_row *p)
{
    free(p->path);
    free(p->text);
    free(p->id);
    free(p->method);
}

sm_explain_store *sm_explain_store_open(const char *out, sm_err *err)
{
    char maps[STORE_PATH];
    if (snprintf(maps, sizeof maps, "%s/maps", out) >= (int)sizeof maps) {
        sm_err_set(err, "%s: path too long", out);
        return NULL;
    }
    if (sm_file_mkdirs(maps, err))
        return NULL;
    sm_explain_store *st = calloc(1, sizeof *st);
    if (!st || !(st->out = strdup(out))) {
        free(st);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    return st;
}

void sm_explain_store_destroy(sm_explain_store **st)
{
    if (!st || !*st)
        return;
    for (int64_t i = 0; i < (*st)->n_rows; i++)
        pending_free(&(*st)->rows[i]);
    free((*st)->rows);
    free((*st)->out);
    free(*st);
    *st = NULL;
}

const char *sm_explain_store_dir(const sm_explain_store *st)
{
    return st->out;
}

/* 1 when name is one safe path component: not empty, no '/', not "." or
 * "..". */
static int safe_component(const char *name, size_t len)
{
    return len > 0 && !memchr(name, '/', len) &&
           !(len == 1 && name[0] == '.') &&
           !(len == 2 && name[0] == '.' && name[1] == '.');
}

/* Ids are dataset paths, which may hold folders; but they may also come
 * from a client over the wire, or from an index.csv read back. */
int sm_explain_id_safe(const char *id)
{
    if (!*id || *id == '/')
        return 0;
    for (const char *p = id;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (!safe_component(p, len))
            return 0;
        if (!slash)
            return 1;
        p = slash + 1;
    }
}

/* "OUT/maps/<id>/<method><ext>" into buf (STORE_PATH bytes); -1 when the
 * id or method is unsafe or the path too long. */
static int map_path(const sm_explain_store *st, char *buf, const char *id,
                    const char *method, const char *ext)
{
    return sm_explain_id_safe(id) && safe_component(method, strlen(method)) &&
                   snprintf(buf, STORE_PATH, "%s/maps/%s/%s%s", st->out, id,
                            method, ext) < STORE_PATH
               ? 0
               : -1;
}

static int exists(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 && S_ISREG(s.st_mode);
}

/* 1 when method yields a pixel map (an unknown method: as most do). */
static int has_map(const char *method)
{
    const sm_explainer_class *c = sm_explainer_find(method);
    return !c || !c->no_map;
}

int sm_explain_store_done(const sm_explain_store *st, const char *id,
                          const char *method)
{
    char a[STORE_PATH], b[STORE_PATH];
    return map_path(st, a, id, method, ".npy") == 0 &&
           map_path(st, b, id, method, ".row") == 0 && exists(b) &&
           (!has_map(method) || exists(a));
}

/* Members of a method's record that index.csv gives a column of their
 * own, the ones users filter on (anchor's, lore's, abele's), empty for a
 * record without them. */
static const char *const record_columns[] = {
    "precision", "coverage", "fidelity", "rule_length", "relevance", NULL};

/* The row of index.csv (SM_EXPLAIN_INDEX_HEADER). 0, or -1 when out of
 * memory. */
static int format_row(sm_text *t, const char *id, const char *label,
                      const char *predicted, const char *target,
                      const char *method, const char *params,
                      const sm_explain_result *r)
{
    int rc = sm_text_csv(t, id) || sm_text_addf(t, ",") ||
             sm_text_csv(t, label ? label : "") || sm_text_addf(t, ",") ||
             sm_text_csv(t, predicted) || sm_text_addf(t, ",") ||
             sm_text_csv(t, target) ||
             sm_text_addf(t, ",%.9g,%s,%.6f,%ld,", r->score, method,
                          r->seconds, r->evals);
    if (!rc && r->has_metrics) {
        rc = sm_text_addf(t, "%.6f,%.6f,", r->deletion_auc, r->insertion_auc);
        const double q[] = {r->faithfulness, r->sparseness, r->complexity,
                            r->sensitivity};
        for (int k = 0; k < 4 && !rc; k++) /* NaN (undefined, off): empty */
            rc = isfinite(q[k]) ? sm_text_addf(t, "%.9g,", q[k])
                                : sm_text_addf(t, ",");
    } else if (!rc) {
        rc = sm_text_addf(t, ",,,,,,");
    }
    for (int k = 0; record_columns[k] && !rc; k++) {
        double v;
        rc = sm_record_number(&r->record, record_columns[k], &v)
                 ? sm_text_addf(t, "%.9g,", v)
                 : sm_text_addf(t, ",");
    }
    return rc || sm_text_csv(t, params) || sm_text_addf(t, ",") ||
                   sm_text_csv(t, sm_record_json(&r->record)) || sm_text_addf(t, "\n")
               ? -1
               : 0;
}

/* A file of a put: durable at once, or in a batch at its commit. */
static int write_file(const sm_explain_store *st, const char *path,
                      const void *buf, size_t len, sm_err *err)
{
    return st->batch ? sm_file_replace(path, buf, len, err)
                     : sm_file_write_atomic(path, buf, len, err);
}

static int write_npy(const sm_explain_store *st, const char *path,
                     const sm_tensor *t, sm_err *err)
{
    return st->batch ? sm_npy_replace(path, t, err) : sm_npy_write(path, t, err);
}

/* Keeps a row back until the commit; 0 or -1 (out of memory). */
static int keep_row(sm_explain_store *st, const char *row, const char *id,
                    const char *method, sm_text *t, sm_err *err)
{
    if (sm_grow((void **)&st->rows, &st->cap_rows, st->n_rows + 1,
                sizeof *st->rows))
        return sm_err_set(err, "out of memory");
    pending_row p = {strdup(row), t->s, strdup(id), strdup(method), t->len};
    if (!p.path || !p.id || !p.method) {
        p.text = NULL; /* still the caller's */
        pending_free(&p);
        return sm_err_set(err, "out of memory");
    }
    *t = (sm_text){0};
    st->rows[st->n_rows++] = p;
    return 0;
}

/* The record's arrays, each to OUT/maps/<id>/<method>.<name>.npy, then
 * its object to <method>.json. 0 or -1. */
static int put_record(const sm_explain_store *st, const char *id,
                      const char *method, const sm_record *rec, sm_err *err)
{
    char path[STORE_PATH], ext[SM_RECORD_NAME_MAX + 8];
    for (size_t i = 0; i < rec->n_arrays; i++) {
        const sm_record_array *a = &rec->arrays[i];
        snprintf(ext, sizeof ext, ".%s.npy", a->name);
        if (map_path(st, path, id, method, ext))
            return sm_err_set(err, "%s: %s: array '%s': path too long", id,
                              method, a->name);
        sm_tensor t = {0};
        t.ndim = a->ndim;
        memcpy(t.shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
        t.data = a->data;
        if (write_npy(st, path, &t, err))
            return -1;
    }
    const char *json = sm_record_json(rec);
    if (map_path(st, path, id, method, ".json"))
        return sm_err_set(err, "%s: %s: path too long", id, method);
    return write_file(st, path, json, strlen(json), err);
}

int sm_explain_store_put(sm_explain_store *st, const char *id,
                         const char *label, const char *predicted,
                         const char *target, const char *method,
                         const char *params, const sm_explain_result *r,
                         int h, int w, sm_err *err)
{
    char dir[STORE_PATH], npy[STORE_PATH], row[STORE_PATH];
    if (!sm_explain_id_safe(id))
        return sm_err_set(err, "image id '%s' would leave %s/maps", id,
                          st->out);
    if (map_path(st, npy, id, method, ".npy") ||
        map_path(st, row, id, method, ".row"))
        return sm_err_set(err, "%s: %s: bad method name or path too long",
                          id, method);
    if (r->failed)
        return sm_err_set(err, "%s: %s: a failed result has no map (%s)",
                          id, method, r->error);
    int with_map = has_map(method);
    if (!r->map && with_map)
        return sm_err_set(err, "%s: %s: the result has no map", id, method);
    snprintf(dir, sizeof dir, "%s/maps/%s", st->out, id);
    /* The row last: an (image, method) is complete once its row is there,
     * and whatever was written before it is simply written again. */
    if (sm_file_mkdirs(dir, err) || put_record(st, id, method, &r->record, err))
        return -1;
    if (with_map) {
        sm_tensor mt = {0};
        mt.ndim = 2;
        mt.shape[0] = h;
        mt.shape[1] = w;
        mt.data = r->map;
        if (write_npy(st, npy, &mt, err))
            return -1;
    }
    sm_text t = {0};
    int rc = format_row(&t, id, label, predicted, target, method, params, r)
                 ? sm_err_set(err, "out of memory")
             : st->batch ? keep_row(st, row, id, method, &t, err)
                         : sm_file_write_atomic(row, t.s, t.len, err);
    sm_text_free(&t);
    return rc;
}

void sm_explain_store_begin(sm_explain_store *st)
{
    st->batch = 1;
}

int sm_explain_store_commit(sm_explain_store *st, sm_explain_store_lost_fn lost,
                            void *u, sm_err *err)
{
    st->batch = 0;
    if (!st->n_rows)
        return 0;
    sm_err e = {0};
    int synced = sm_file_sync_fs(st->out, &e) == 0, failed = 0;
    for (int64_t i = 0; i < st->n_rows; i++) {
        pending_row *p = &st->rows[i];
        /* rows are remade when lost, so they need no fsync of their own:
         * the next commit's barrier (or the index's) covers them */
        if (!synced || sm_file_replace(p->path, p->text, p->len, &e)) {
            if (!failed++ && err)
                *err = e;
            if (lost)
                lost(u, p->id, p->method, &e);
            if (synced)
                e = (sm_err){0};
        }
        pending_free(p);
    }
    st->n_rows = 0;
    return failed ? -1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends "maps/<id>/<name>" to *rel. 0 or -1. */
static int push_rel(char ***rel, size_t *n, const char *id, const char *name)
{
    char **grown = realloc(*rel, sizeof *grown * (*n + 1));
    if (!grown)
        return -1;
    *rel = grown;
    size_t len = strlen(id) + strlen(name) + 7;
    if (!(grown[*n] = malloc(len)))
        return -1;
    snprintf(grown[*n], len, "maps/%s/%s", id, name);
    (*n)++;
    return 0;
}

int sm_explain_store_files(const sm_explain_store *st, const char *id,
                           const char *method, char ***rel, size_t *n,
                           sm_err *err)
{
    char dir[STORE_PATH], prefix[SM_PARAM_STR + 2], path[STORE_PATH];
    *rel = NULL;
    *n = 0;
    if (!sm_explain_id_safe(id) || !safe_component(method, strlen(method)) ||
        strlen(method) > SM_PARAM_STR ||
        snprintf(dir, sizeof dir, "%s/maps/%s", st->out, id) >= (int)sizeof dir)
        return sm_err_set(err, "%s: %s: not a map of %s", id, method,
                          st->out);
    snprintf(prefix, sizeof prefix, "%s.", method);
    size_t plen = strlen(prefix), first = 0;
    int rc = 0;
    if (map_path(st, path, id, method, ".npy") == 0 && exists(path))
        rc = push_rel(rel, n, id, path + strlen(dir) + 1);
    if (rc == 0 && map_path(st, path, id, method, ".json") == 0 &&
        exists(path))
        rc = push_rel(rel, n, id, path + strlen(dir) + 1);
    first = *n;
    DIR *d = rc ? NULL : opendir(dir);
    for (struct dirent *e; d && rc == 0 && (e = readdir(d));) {
        /* <method>.<name>.npy, <name> an array's name; the PNGs drawn of
         * them (core/render): <method>.png, <method>.<name>.png */
        size_t len = strlen(e->d_name);
        if (len == plen + 3 && strncmp(e->d_name, prefix, plen) == 0 &&
            strcmp(e->d_name + plen, "png") == 0) {
            rc = push_rel(rel, n, id, e->d_name);
            continue;
        }
        if (len <= plen + 4 || strncmp(e->d_name, prefix, plen) != 0 ||
            (strcmp(e->d_name + len - 4, ".npy") != 0 &&
             strcmp(e->d_name + len - 4, ".png") != 0))
            continue;
        char name[SM_RECORD_NAME_MAX + 1];
        size_t nlen = len - plen - 4;
        if (nlen > SM_RECORD_NAME_MAX)
            continue;
        memcpy(name, e->d_name + plen, nlen);
        name[nlen] = '\0';
        if (sm_record_name_valid(name))
            rc = push_rel(rel, n, id, e->d_name);
    }
    if (d)
        closedir(d);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            free((*rel)[i]);
        free(*rel);
        *rel = NULL;
        *n = 0;
        return sm_err_set(err, "out of memory");
    }
    if (*n > first) /* none: *rel may be NULL, which qsort must not get */
        qsort(*rel + first, *n - first, sizeof **rel, cmp_str);
    return 0;
}

/* index.csv's fields of a row: the first `max` into f (pointers into
 * buf, a copy of the row, quotes removed), their count returned. */
static int row_fields(char *buf, char **f, int max)
{
    int n = 0;
    char *p = buf;
    while (n < max && *p && *p != '\n') {
        if (*p == '"') { /* a quoted field: "" is a quote */
            char *w = ++p;
            f[n++] = w;
            while (*p && !(*p == '"' && p[1] != '"'))
                *w++ = *p == '"' ? (p += 2, '"') : *p++;
            if (*p)
                p++;
            *w = '\0';
            if (*p == ',')
                p++;
            continue;
        }
        f[n++] = p;
        p += strcspn(p, ",\n");
        if (*p == ',')
            *p++ = '\0';
        else
            *p = '\0';
    }
    return n;
}

#define SUMMARY_COLS 11 /* deletion_auc .. relevance: fields 8 .. 18 */

/* Per column, Welford's running mean and sum of squared deviations (the
 * rows come in dataset order: the same bits every run). */
typedef struct summary_row {
    char method[64];
    long maps, failed;
    double mean[SUMMARY_COLS], m2[SUMMARY_COLS];
    long n[SUMMARY_COLS];
} summary_row;

/* Row text (len bytes) of index.csv into the method's sums. */
static void summary_add(summary_row *s, int m, const char *method,
                        const char *row, size_t len)
{
    int k = 0;
    while (k < m && strcmp(s[k].method, method))
        k++;
    if (k == m)
        return;
    char *buf = malloc(len + 1);
    if (!buf)
        return;
    memcpy(buf, row, len);
    buf[len] = '\0';
    char *f[8 + SUMMARY_COLS];
    int n = row_fields(buf, f, 8 + SUMMARY_COLS);
    s[k].maps++;
    for (int c = 0; c < SUMMARY_COLS && 8 + c < n; c++) {
        char *end;
        double v = strtod(f[8 + c], &end);
        if (end != f[8 + c] && !*end && isfinite(v)) {
            double d = v - s[k].mean[c];
            s[k].mean[c] += d / (double)++s[k].n[c];
            s[k].m2[c] += d * (v - s[k].mean[c]);
        }
    }
    free(buf);
}

static int summary_write(const sm_explain_store *st, const summary_row *s,
                         int m, sm_err *err)
{
    sm_text t = {0};
    int rc = sm_text_addf(&t, "%s", SM_EXPLAIN_SUMMARY_HEADER);
    for (int k = 0; k < m && rc == 0; k++) {
        rc = sm_text_csv(&t, s[k].method) ||
             sm_text_addf(&t, ",%ld,%ld", s[k].maps, s[k].failed);
        for (int c = 0; c < SUMMARY_COLS && rc == 0; c++) {
            long n = s[k].n[c];
            rc = (n ? sm_text_addf(&t, ",%.6g", s[k].mean[c])
                    : sm_text_addf(&t, ",")) ||
                 (n > 1 ? sm_text_addf(&t, ",%.6g",
                                       sqrt(s[k].m2[c] / (double)(n - 1)))
                        : sm_text_addf(&t, ","));
        }
        rc = rc || sm_text_addf(&t, "\n");
    }
    char path[STORE_PATH];
    if (rc)
        rc = sm_err_set(err, "out of memory");
    else if (snprintf(path, sizeof path, "%s/summary.csv", st->out) >=
             (int)sizeof path)
        rc = sm_err_set(err, "%s: path too long", st->out);
    else
        rc = sm_file_write_atomic(path, t.s, t.len, err);
    sm_text_free(&t);
    return rc;
}

int sm_explain_store_index(sm_explain_store *st, const char *const *ids,
                           size_t n, const char *const *methods, int m,
                           sm_err *err)
{
    /* the rows of the last batch, durable before the index that lists them */
    if (sm_file_sync_fs(st->out, err))
        return -1;
    sm_text t = {0};
    summary_row *sum = calloc((size_t)(m ? m : 1), sizeof *sum);
    int rc = !sum || sm_text_addf(&t, "%s", SM_EXPLAIN_INDEX_HEADER)
                 ? sm_err_set(err, "out of memory")
                 : 0;
    for (int k = 0; k < m && rc == 0; k++)
        snprintf(sum[k].method, sizeof sum[k].method, "%s", methods[k]);
    for (size_t i = 0; i < n && rc == 0; i++)
        for (int k = 0; k < m && rc == 0; k++) {
            char path[STORE_PATH];
            if (map_path(st, path, ids[i], methods[k], ".row") ||
                !exists(path)) {
                sum[k].failed++;
                continue;
            }
            size_t len;
            unsigned char *row = sm_file_read(path, ROW_MAX, &len, err);
            if (!row)
                rc = -1;
            else if (sm_text_addf(&t, "%.*s", (int)len, (const char *)row))
                rc = sm_err_set(err, "out of memory");
            else
                summary_add(sum, m, methods[k], (const char *)row, len);
            free(row);
        }
    if (rc == 0) {
        char path[STORE_PATH];
        if (snprintf(path, sizeof path, "%s/index.csv", st->out) >=
            (int)sizeof path)
            rc = sm_err_set(err, "%s: path too long", st->out);
        else
            rc = sm_file_write_atomic(path, t.s, t.len, err);
    }
    if (rc == 0)
        rc = summary_write(st, sum, m, err);
    sm_text_free(&t);
    free(sum);
    return rc;
}
