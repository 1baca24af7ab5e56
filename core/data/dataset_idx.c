/* The IDX dataset format: an IDX images file (count x height x width
 * bytes), labelled by its sibling labels-idx1 file when there is one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset_format.h"
#include "data/idx.h"

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
    const sm_idx *im = ds->data = sm_idx_read(path, err);
    if (!im)
        return SM_DATASET_NOT_FORMAT;
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
            if (!(ds->classes[c] = strdup(name))) {
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
            rc = sm_dataset_push(ds, strdup(id), NULL,
                                 labels ? labels[i] : -1, err);
    }
    free(labels);
    return rc;
}

static int load_idx(const sm_dataset *ds, size_t i, const sm_preproc *pp,
                    float *dst, sm_err *err)
{
    const sm_idx *im = ds->data;
    size_t plane = (size_t)im->dims[1] * im->dims[2];
    /* "<source>: image <i>" without a fixed buffer for the source path */
    char what[32];
    snprintf(what, sizeof what, "image %zu", i);
    if (sm_image_load_u8(im->data + i * plane, (int)im->dims[2],
                         (int)im->dims[1], 1, what, pp, dst, err))
        return sm_err_prefix(err, "%s", ds->source);
    return 0;
}

/* The record's pixels, in place: valid while ds is open. */
static int raw_idx(const sm_dataset *ds, size_t i, sm_dataset_raw_image *out,
                   sm_err *err)
{
    (void)err;
    const sm_idx *im = ds->data;
    out->format = SM_DATASET_RAW_U8;
    out->width = (int)im->dims[2];
    out->height = (int)im->dims[1];
    out->bands = 1;
    out->len = (size_t)im->dims[1] * im->dims[2];
    out->data = im->data + i * out->len;
    return 0;
}

static void free_idx(void *data)
{
    sm_idx *im = data;
    sm_idx_destroy(&im);
}

const sm_dataset_format sm_dataset_idx = {
    .open = open_idx,
    .load = load_idx,
    .raw = raw_idx,
    .free_data = free_idx,
    .files = 0,
};
