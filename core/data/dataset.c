/* sm_dataset: the part every format shares (data/dataset.h): opening
 * (which format a path is), the accessors, and the helpers the formats fill
 * a dataset with. The formats are dataset_folder.c, dataset_csv.c and
 * dataset_idx.c, behind data/dataset_format.h. */
#include "data/dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/dataset_format.h"
#include "util/file.h"

char *sm_dataset_join(const char *a, const char *b)
{
    if (!*a)
        return strdup(b);
    size_t n = strlen(a) + strlen(b) + 2;
    char *d = malloc(n);
    if (d)
        snprintf(d, n, "%s/%s", a, b);
    return d;
}

char *sm_dataset_strip_ext(const char *rel)
{
    char *d = strdup(rel);
    if (!d)
        return NULL;
    char *base = strrchr(d, '/');
    base = base ? base + 1 : d;
    char *dot = strrchr(base, '.');
    if (dot && dot != base)
        *dot = '\0';
    return d;
}

int sm_dataset_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void sm_dataset_free_strs(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int sm_dataset_push(sm_dataset *ds, char *id, char *path, int label,
                    sm_err *err)
{
    if (!id || (!path && ds->format->files)) {
        free(id);
        free(path);
        return sm_err_set(err, "%s: out of memory", ds->source);
    }
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 256;
        char **ids = realloc(ds->ids, cap * sizeof *ids);
        if (ids)
            ds->ids = ids;
        char **paths = realloc(ds->paths, cap * sizeof *paths);
        if (paths)
            ds->paths = paths;
        int *labels = realloc(ds->labels, cap * sizeof *labels);
        if (labels)
            ds->labels = labels;
        if (!ids || !paths || !labels) {
            free(id);
            free(path);
            return sm_err_set(err, "%s: out of memory", ds->source);
        }
        ds->cap = cap;
    }
    ds->ids[ds->n] = id;
    ds->paths[ds->n] = path;
    ds->labels[ds->n] = label;
    ds->n++;
    return 0;
}

static int check_unique_ids(const sm_dataset *ds, sm_err *err)
{
    if (!ds->format->files || ds->n < 2)
        return 0; /* record ids are distinct by construction */
    char **v = malloc(ds->n * sizeof *v);
    if (!v)
        return sm_err_set(err, "%s: out of memory", ds->source);
    memcpy(v, ds->ids, ds->n * sizeof *v);
    qsort(v, ds->n, sizeof *v, sm_dataset_cmp_str);
    int rc = 0;
    for (size_t i = 1; i < ds->n && rc == 0; i++)
        if (strcmp(v[i], v[i - 1]) == 0)
            rc = sm_err_set(err, "%s: two images have the id '%s' (ids are "
                            "paths without extension)", ds->source, v[i]);
    free(v);
    return rc;
}

sm_dataset *sm_dataset_open(const char *path, sm_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        sm_err_set(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    sm_dataset *ds = calloc(1, sizeof *ds);
    if (!ds || !(ds->source = strdup(path))) {
        free(ds);
        sm_err_set(err, "%s: out of memory", path);
        return NULL;
    }
    size_t len = strlen(path);
    int rc;
    /* A folder, a .csv manifest, and any other file is taken for IDX. */
    ds->format = S_ISDIR(st.st_mode) ? &sm_dataset_folder
                 : !S_ISREG(st.st_mode) ? NULL
                 : len > 4 && strcasecmp(path + len - 4, ".csv") == 0
                     ? &sm_dataset_csv
                     : &sm_dataset_idx;
    if (!ds->format)
        rc = sm_err_set(err, "%s: neither a folder nor a file", path);
    else if ((rc = ds->format->open(ds, path, err)) == SM_DATASET_NOT_FORMAT &&
             !strstr(path, "idx"))
        sm_err_prefix(err, "a dataset is a folder, a .csv manifest or an IDX "
                      "file");
    if (rc == 0 && ds->n == 0)
        rc = sm_err_set(err, "%s: no images found", path);
    if (rc == 0)
        rc = check_unique_ids(ds, err);
    if (rc) {
        sm_dataset_destroy(&ds);
        return NULL;
    }
    return ds;
}

void sm_dataset_destroy(sm_dataset **ds)
{
    if (!ds || !*ds)
        return;
    sm_dataset *d = *ds;
    sm_dataset_free_strs(d->ids, d->n);
    sm_dataset_free_strs(d->paths, d->n);
    free(d->labels);
    sm_dataset_free_strs(d->classes, (size_t)d->n_classes);
    if (d->format && d->format->free_data)
        d->format->free_data(d->data);
    free(d->source);
    free(d);
    *ds = NULL;
}

size_t sm_dataset_count(const sm_dataset *ds)
{
    return ds->n;
}

int sm_dataset_n_classes(const sm_dataset *ds)
{
    return ds->n_classes;
}

const char *sm_dataset_class_name(const sm_dataset *ds, int c)
{
    return c >= 0 && c < ds->n_classes ? ds->classes[c] : NULL;
}

int sm_dataset_class_index(const sm_dataset *ds, const char *name)
{
    for (int c = 0; c < ds->n_classes; c++)
        if (strcmp(ds->classes[c], name) == 0)
            return c;
    return -1;
}

const char *sm_dataset_id(const sm_dataset *ds, size_t i)
{
    return i < ds->n ? ds->ids[i] : NULL;
}

int sm_dataset_label(const sm_dataset *ds, size_t i)
{
    return i < ds->n ? ds->labels[i] : -1;
}

const char *sm_dataset_label_name(const sm_dataset *ds, size_t i)
{
    return sm_dataset_class_name(ds, sm_dataset_label(ds, i));
}

const char *sm_dataset_path(const sm_dataset *ds, size_t i)
{
    return i < ds->n ? ds->paths[i] : NULL;
}

static int no_image(const sm_dataset *ds, size_t i, sm_err *err)
{
    return sm_err_set(err, "%s: image %zu of %zu does not exist", ds->source,
                      i, ds->n);
}

int sm_dataset_load(const sm_dataset *ds, size_t i, const sm_preproc *pp,
                    float *dst, sm_err *err)
{
    if (i >= ds->n)
        return no_image(ds, i, err);
    return ds->format->load(ds, i, pp, dst, err);
}

int sm_dataset_raw(const sm_dataset *ds, size_t i, sm_dataset_raw_image *out,
                   sm_err *err)
{
    memset(out, 0, sizeof *out);
    if (i >= ds->n)
        return no_image(ds, i, err);
    return ds->format->raw(ds, i, out, err);
}

int sm_dataset_file_load(const sm_dataset *ds, size_t i, const sm_preproc *pp,
                         float *dst, sm_err *err)
{
    return sm_image_load_file(ds->paths[i], pp, dst, err);
}

int sm_dataset_file_raw(const sm_dataset *ds, size_t i,
                        sm_dataset_raw_image *out, sm_err *err)
{
    out->format = SM_DATASET_RAW_FILE;
    out->owned = sm_file_read(ds->paths[i], SM_DATASET_RAW_MAX, &out->len,
                              err);
    out->data = out->owned;
    if (out->owned && out->len == 0) { /* no image in it, whatever its name */
        sm_dataset_raw_free(out);
        return sm_err_set(err, "%s: an empty file, not an image", ds->paths[i]);
    }
    return out->owned ? 0 : -1;
}

void sm_dataset_raw_free(sm_dataset_raw_image *out)
{
    free(out->owned);
    memset(out, 0, sizeof *out);
}
