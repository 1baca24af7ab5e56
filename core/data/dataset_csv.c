/* The CSV manifest dataset format: one image a line, `path,label` or
 * `path`, with an optional header (data/dataset.h has the rules). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/dataset_format.h"
#include "util/file.h"

#define MAX_MANIFEST ((size_t)256 << 20) /* bytes of CSV */

/* One CSV record from *p into f[0..*nf) (malloc'd, at most maxf kept,
 * *nf counts all). Returns 0, 1 at the end of the input, or -1. */
static int csv_record(const char **p, const char *end, char **f, int maxf,
                      int *nf, int *line, const char *path, sm_err *err)
{
    const char *s = *p;
    *nf = 0;
    if (s >= end)
        return 1;
    int start = *line;
    for (;;) {
        size_t cap = 64, len = 0;
        char *buf = malloc(cap);
        if (!buf)
            return sm_err_set(err, "%s:%d: out of memory", path, *line);
        while (s < end && (*s == ' ' || *s == '\t'))
            s++;
        int quoted = s < end && *s == '"';
        if (quoted)
            s++;
        for (; s < end; s++) {
            char ch = *s;
            if (quoted && ch == '"') {
                if (s + 1 < end && s[1] == '"')
                    s++;
                else {
                    quoted = 2; /* closed */
                    s++;
                    break;
                }
            } else if (!quoted && (ch == ',' || ch == '\n'))
                break;
            if (ch == '\n')
                (*line)++;
            if (len + 2 > cap) {
                char *g = realloc(buf, cap *= 2);
                if (!g) {
                    free(buf);
                    return sm_err_set(err, "%s:%d: out of memory", path,
                                      *line);
                }
                buf = g;
            }
            buf[len++] = ch;
        }
        if (quoted == 1) {
            free(buf);
            return sm_err_set(err, "%s:%d: unterminated quoted field", path,
                              start);
        }
        if (quoted == 2) {
            while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
                s++;
            if (s < end && *s != ',' && *s != '\n') {
                free(buf);
                return sm_err_set(err, "%s:%d: text after a closing quote",
                                  path, *line);
            }
        } else {
            while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t' ||
                           buf[len - 1] == '\r'))
                len--;
        }
        buf[len] = '\0';
        if (*nf < maxf)
            f[*nf] = buf;
        else
            free(buf);
        (*nf)++;
        if (s < end && *s == ',') {
            s++;
            continue;
        }
        if (s < end) { /* '\n' */
            s++;
            (*line)++;
        }
        *p = s;
        return 0;
    }
}

/* The label written on each manifest row that has one, by slot. */
typedef struct names {
    char **v;
    size_t n, cap;
} names;

static int csv_add(sm_dataset *ds, const char *dir, const char *file,
                   const char *label, int line, names *labels, sm_err *err)
{
    if (!*file)
        return sm_err_set(err, "%s:%d: empty path", ds->source, line);
    char *path = file[0] == '/' ? strdup(file) : sm_dataset_join(dir, file);
    if (!path)
        return sm_err_set(err, "%s: out of memory", ds->source);
    struct stat st;
    const char *why = stat(path, &st) != 0 ? strerror(errno)
                      : !S_ISREG(st.st_mode) ? "not a regular file" : NULL;
    if (why) {
        sm_err_set(err, "%s:%d: %s: %s", ds->source, line, path, why);
        free(path);
        return -1;
    }
    while (file[0] == '.' && file[1] == '/')
        file += 2;
    /* Labels are names for now; they become indices once all are known. */
    int label_slot = -1;
    if (*label) {
        if (labels->n == labels->cap) {
            size_t cap = labels->cap ? labels->cap * 2 : 256;
            char **g = realloc(labels->v, cap * sizeof *g);
            if (!g) {
                free(path);
                return sm_err_set(err, "%s: out of memory", ds->source);
            }
            labels->v = g;
            labels->cap = cap;
        }
        if (!(labels->v[labels->n] = strdup(label))) {
            free(path);
            return sm_err_set(err, "%s: out of memory", ds->source);
        }
        label_slot = (int)labels->n++;
    }
    return sm_dataset_push(ds, sm_dataset_strip_ext(file), path, label_slot,
                           err);
}

static int open_csv(sm_dataset *ds, const char *path, sm_err *err)
{
    size_t len;
    unsigned char *buf = sm_file_read(path, MAX_MANIFEST, &len, err);
    if (!buf)
        return -1;
    char *dir = strdup(path);
    names labels = {NULL, 0, 0};
    int rc = 0, line = 1, first = 1;
    if (!dir)
        rc = sm_err_set(err, "%s: out of memory", path);
    else {
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            strcpy(dir, ".");
    }
    const char *p = (const char *)buf, *end = p + len;
    while (rc == 0) {
        char *f[2] = {NULL, NULL};
        int nf, at = line;
        int r = csv_record(&p, end, f, 2, &nf, &line, path, err);
        if (r != 0) {
            rc = r < 0 ? -1 : 0;
            break;
        }
        if (nf == 1 && !f[0][0]) {
            /* blank line */
        } else if (nf > 2)
            rc = sm_err_set(err, "%s:%d: %d fields, expected path,label",
                            path, at, nf);
        else if (first && strcasecmp(f[0], "path") == 0) {
            /* header */
        } else
            rc = csv_add(ds, dir, f[0], nf > 1 ? f[1] : "", at, &labels, err);
        if (!(nf == 1 && !f[0][0]))
            first = 0;
        free(f[0]);
        free(f[1]);
    }
    free(buf);
    free(dir);
    /* Classes: the sorted distinct labels; then slots become indices. */
    size_t nn = labels.n;
    if (rc == 0 && nn) {
        char **sorted = malloc(nn * sizeof *sorted);
        ds->classes = malloc(nn * sizeof *ds->classes);
        if (!sorted || !ds->classes)
            rc = sm_err_set(err, "%s: out of memory", path);
        else {
            memcpy(sorted, labels.v, nn * sizeof *sorted);
            qsort(sorted, nn, sizeof *sorted, sm_dataset_cmp_str);
            for (size_t i = 0; rc == 0 && i < nn; i++) {
                if (i && strcmp(sorted[i], sorted[i - 1]) == 0)
                    continue;
                if (!(ds->classes[ds->n_classes] = strdup(sorted[i])))
                    rc = sm_err_set(err, "%s: out of memory", path);
                else
                    ds->n_classes++;
            }
            for (size_t i = 0; rc == 0 && i < ds->n; i++) {
                if (ds->labels[i] < 0)
                    continue;
                char **hit = bsearch(&labels.v[ds->labels[i]], ds->classes,
                                     (size_t)ds->n_classes,
                                     sizeof *ds->classes, sm_dataset_cmp_str);
                ds->labels[i] = (int)(hit - ds->classes);
            }
        }
        free(sorted);
    }
    sm_dataset_free_strs(labels.v, labels.n);
    return rc;
}

const sm_dataset_format sm_dataset_csv = {
    .open = open_csv,
    .load = sm_dataset_file_load,
    .raw = sm_dataset_file_raw,
    .files = 1,
};
