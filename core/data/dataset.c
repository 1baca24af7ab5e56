#include "data/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/idx.h"
#include "util/file.h"

#define MAX_DEPTH 32                      /* also stops symlink loops */
#define MAX_MANIFEST ((size_t)256 << 20)  /* bytes of CSV */

struct sm_dataset {
    char *source;     /* the path given to open, for messages */
    size_t n, cap;
    char **ids;
    char **paths;     /* one file per image; NULL entries for IDX */
    int *labels;
    char **classes;
    int n_classes;
    sm_idx *images;   /* IDX datasets: n x height x width bytes */
};

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}

/* "a" + "/" + "b"; just b when a is empty. */
static char *join(const char *a, const char *b)
{
    if (!*a)
        return dup_str(b);
    size_t n = strlen(a) + strlen(b) + 2;
    char *d = malloc(n);
    if (d)
        snprintf(d, n, "%s/%s", a, b);
    return d;
}

/* A copy of rel without the extension of its last component. */
static char *strip_ext(const char *rel)
{
    char *d = dup_str(rel);
    if (!d)
        return NULL;
    char *base = strrchr(d, '/');
    base = base ? base + 1 : d;
    char *dot = strrchr(base, '.');
    if (dot && dot != base)
        *dot = '\0';
    return d;
}

static int has_image_ext(const char *name)
{
    static const char *const ext[] = {"png", "jpg", "jpeg", "jpe", "jfif",
                                      "tif", "tiff", "webp", "gif", "heic",
                                      "heif", "avif"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name)
        return 0;
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (strcasecmp(dot + 1, ext[i]) == 0)
            return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_strs(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Appends one image; takes ownership of id and path even on failure. */
static int push(sm_dataset *ds, char *id, char *path, int label, sm_err *err)
{
    if (!id || (!path && !ds->images)) {
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

/* The sorted names in a folder, without those starting with '.'. */
static char **list_dir(const char *dir, size_t *n, sm_err *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        sm_err_set(err, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    char **v = NULL;
    size_t cap = 0;
    *n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **g = realloc(v, cap * sizeof *g);
            if (!g)
                goto oom;
            v = g;
        }
        if (!(v[*n] = dup_str(e->d_name)))
            goto oom;
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(v, *n, sizeof *v, cmp_str);
    return v ? v : calloc(1, sizeof *v);
oom:
    closedir(d);
    free_strs(v, *n);
    sm_err_set(err, "%s: out of memory", dir);
    return NULL;
}

/* Adds the image files at and below root/rel (rel may be ""). */
static int walk(sm_dataset *ds, const char *root, const char *rel, int label,
                int depth, sm_err *err)
{
    char *dir = *rel ? join(root, rel) : dup_str(root);
    if (!dir)
        return sm_err_set(err, "%s: out of memory", root);
    if (depth > MAX_DEPTH) {
        sm_err_set(err, "%s: folders nested more than %d deep", dir,
                   MAX_DEPTH);
        free(dir);
        return -1;
    }
    size_t n;
    char **names = list_dir(dir, &n, err);
    int rc = names ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *path = join(dir, names[i]);
        char *sub = join(rel, names[i]);
        struct stat st;
        if (!path || !sub)
            rc = sm_err_set(err, "%s: out of memory", dir);
        else if (stat(path, &st) != 0)
            rc = sm_err_set(err, "%s: %s", path, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = walk(ds, root, sub, label, depth + 1, err);
        else if (S_ISREG(st.st_mode) && has_image_ext(names[i])) {
            rc = push(ds, strip_ext(sub), path, label, err);
            path = NULL;
        }
        free(path);
        free(sub);
    }
    free_strs(names, n);
    free(dir);
    return rc;
}

static int open_folder(sm_dataset *ds, const char *root, sm_err *err)
{
    size_t n;
    char **names = list_dir(root, &n, err);
    if (!names)
        return -1;
    /* The subfolders are the classes; with none, root holds the images. */
    char **classes = calloc(n ? n : 1, sizeof *classes);
    int nc = 0, rc = 0;
    if (!classes)
        rc = sm_err_set(err, "%s: out of memory", root);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *path = join(root, names[i]);
        struct stat st;
        if (!path)
            rc = sm_err_set(err, "%s: out of memory", root);
        else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
            classes[nc++] = names[i];
            names[i] = NULL;
        }
        free(path);
    }
    free_strs(names, n);
    if (rc) {
        free_strs(classes, (size_t)nc);
        return -1;
    }
    ds->classes = classes;
    ds->n_classes = nc;
    if (nc == 0)
        return walk(ds, root, "", -1, 0, err);
    for (int c = 0; c < nc; c++)
        if (walk(ds, root, classes[c], c, 1, err))
            return -1;
    return 0;
}

/* The labels file that goes with an IDX images file, or NULL if none. */
static char *idx_labels_path(const char *images)
{
    const char *base = strrchr(images, '/');
    base = base ? base + 1 : images;
    const char *at = strstr(base, "images-idx3");
    if (!at)
        return NULL;
    size_t n = strlen(images);
    char *p = malloc(n + 4);
    if (!p)
        return NULL;
    memcpy(p, images, n + 1);
    memcpy(p + (at - images), "labels-idx1", 11);
    struct stat st;
    if (stat(p, &st) == 0)
        return p;
    /* the other compression */
    if (n > 3 && strcmp(p + n - 3, ".gz") == 0)
        p[n - 3] = '\0';
    else
        strcpy(p + n, ".gz");
    if (stat(p, &st) == 0)
        return p;
    free(p);
    return NULL;
}

static int open_idx(sm_dataset *ds, const char *path, sm_err *err)
{
    ds->images = sm_idx_read(path, err);
    if (!ds->images)
        return -1;
    const sm_idx *im = ds->images;
    if (im->ndim != 3 || im->dims[1] == 0 || im->dims[2] == 0)
        return sm_err_set(err, "%s: IDX images must have 3 non-empty "
                          "dimensions (count, height, width), this file has "
                          "%d", path, im->ndim);
    if ((int64_t)im->dims[1] * im->dims[2] > SM_IMAGE_MAX_PIXELS)
        return sm_err_set(err, "%s: %ux%u images are larger than the limit "
                          "of %lld pixels", path, im->dims[2], im->dims[1],
                          (long long)SM_IMAGE_MAX_PIXELS);
    size_t n = im->dims[0];
    int *labels = NULL;
    char *lpath = idx_labels_path(path);
    if (lpath) {
        sm_idx *lab = sm_idx_read(lpath, err);
        if (!lab) {
            free(lpath);
            return -1;
        }
        int bad = lab->ndim != 1 || lab->dims[0] != n;
        if (bad)
            sm_err_set(err, "%s: expected %zu labels (one dimension) for %s",
                       lpath, n, path);
        else if (!(labels = malloc((n ? n : 1) * sizeof *labels)))
            bad = sm_err_set(err, "%s: out of memory", lpath);
        int max = -1;
        for (size_t i = 0; !bad && i < n; i++) {
            labels[i] = lab->data[i];
            max = labels[i] > max ? labels[i] : max;
        }
        sm_idx_destroy(&lab);
        free(lpath);
        if (bad) {
            free(labels);
            return -1;
        }
        ds->classes = calloc((size_t)max + 2, sizeof *ds->classes);
        if (!ds->classes) {
            free(labels);
            return sm_err_set(err, "%s: out of memory", path);
        }
        for (int c = 0; c <= max; c++) {
            char name[16]; /* labels are bytes */
            snprintf(name, sizeof name, "%d", c);
            if (!(ds->classes[c] = dup_str(name))) {
                free(labels);
                return sm_err_set(err, "%s: out of memory", path);
            }
            ds->n_classes = c + 1;
        }
    }
    int width = 1; /* digits of n - 1: at most 10 for a uint32 count */
    for (size_t m = n > 1 ? n - 1 : 0; m >= 10 && width < 10; m /= 10)
        width++;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char id[32];
        if (snprintf(id, sizeof id, "%0*zu", width, i) >= (int)sizeof id)
            rc = sm_err_set(err, "%s: record index too long", path);
        else
            rc = push(ds, dup_str(id), NULL, labels ? labels[i] : -1, err);
    }
    free(labels);
    return rc;
}

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
    char *path = file[0] == '/' ? dup_str(file) : join(dir, file);
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
        if (!(labels->v[labels->n] = dup_str(label))) {
            free(path);
            return sm_err_set(err, "%s: out of memory", ds->source);
        }
        label_slot = (int)labels->n++;
    }
    return push(ds, strip_ext(file), path, label_slot, err);
}

static int open_csv(sm_dataset *ds, const char *path, sm_err *err)
{
    size_t len;
    unsigned char *buf = sm_file_read(path, MAX_MANIFEST, &len, err);
    if (!buf)
        return -1;
    char *dir = dup_str(path);
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
            qsort(sorted, nn, sizeof *sorted, cmp_str);
            for (size_t i = 0; rc == 0 && i < nn; i++) {
                if (i && strcmp(sorted[i], sorted[i - 1]) == 0)
                    continue;
                if (!(ds->classes[ds->n_classes] = dup_str(sorted[i])))
                    rc = sm_err_set(err, "%s: out of memory", path);
                else
                    ds->n_classes++;
            }
            for (size_t i = 0; rc == 0 && i < ds->n; i++) {
                if (ds->labels[i] < 0)
                    continue;
                char **hit = bsearch(&labels.v[ds->labels[i]], ds->classes,
                                     (size_t)ds->n_classes,
                                     sizeof *ds->classes, cmp_str);
                ds->labels[i] = (int)(hit - ds->classes);
            }
        }
        free(sorted);
    }
    free_strs(labels.v, labels.n);
    return rc;
}

static int check_unique_ids(const sm_dataset *ds, sm_err *err)
{
    if (ds->images || ds->n < 2)
        return 0; /* IDX ids are distinct by construction */
    char **v = malloc(ds->n * sizeof *v);
    if (!v)
        return sm_err_set(err, "%s: out of memory", ds->source);
    memcpy(v, ds->ids, ds->n * sizeof *v);
    qsort(v, ds->n, sizeof *v, cmp_str);
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
    if (!ds || !(ds->source = dup_str(path))) {
        free(ds);
        sm_err_set(err, "%s: out of memory", path);
        return NULL;
    }
    size_t len = strlen(path);
    int rc;
    if (S_ISDIR(st.st_mode))
        rc = open_folder(ds, path, err);
    else if (!S_ISREG(st.st_mode))
        rc = sm_err_set(err, "%s: neither a folder nor a file", path);
    else if (len > 4 && strcasecmp(path + len - 4, ".csv") == 0)
        rc = open_csv(ds, path, err);
    else if ((rc = open_idx(ds, path, err)) != 0 && !ds->images &&
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
    free_strs(d->ids, d->n);
    free_strs(d->paths, d->n);
    free(d->labels);
    free_strs(d->classes, (size_t)d->n_classes);
    sm_idx_destroy(&d->images);
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
    if (!ds->images)
        return sm_image_load_file(ds->paths[i], pp, dst, err);
    const sm_idx *im = ds->images;
    size_t plane = (size_t)im->dims[1] * im->dims[2];
    char what[SM_ERR_MAX / 2];
    snprintf(what, sizeof what, "%s: image %zu", ds->source, i);
    return sm_image_load_u8(im->data + i * plane, (int)im->dims[2],
                            (int)im->dims[1], 1, what, pp, dst, err);
}

int sm_dataset_raw(const sm_dataset *ds, size_t i, sm_dataset_raw_image *out,
                   sm_err *err)
{
    memset(out, 0, sizeof *out);
    if (i >= ds->n)
        return no_image(ds, i, err);
    if (ds->images) {
        const sm_idx *im = ds->images;
        out->format = SM_DATASET_RAW_U8;
        out->width = (int)im->dims[2];
        out->height = (int)im->dims[1];
        out->bands = 1;
        out->len = (size_t)im->dims[1] * im->dims[2];
        out->data = im->data + i * out->len;
        return 0;
    }
    out->format = SM_DATASET_RAW_FILE;
    out->owned = sm_file_read(ds->paths[i], SM_DATASET_RAW_MAX, &out->len,
                              err);
    out->data = out->owned;
    return out->owned ? 0 : -1;
}

void sm_dataset_raw_free(sm_dataset_raw_image *out)
{
    free(out->owned);
    memset(out, 0, sizeof *out);
}
