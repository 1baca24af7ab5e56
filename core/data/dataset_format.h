/* Internal to core/data: what a dataset format (dataset_folder.c,
 * dataset_csv.c, dataset_idx.c) shares with the common part (dataset.c):
 * the dataset's fields, the format interface, and the helpers that fill a
 * dataset. The public API is data/dataset.h. */
#ifndef SM_DATASET_FORMAT_H
#define SM_DATASET_FORMAT_H

#include <stddef.h>

#include "data/dataset.h"

/* open's return when the file is not of that format at all (not merely
 * broken), so that sm_dataset_open can say which files are datasets. */
#define SM_DATASET_NOT_FORMAT (-2)

/* One format: how a dataset of it is read (sm_dataset_open picks it). */
typedef struct sm_dataset_format {
    /* Fills ds (source set, the rest empty) from path: 0, or -1 (or
     * SM_DATASET_NOT_FORMAT) with a message; ds is destroyed after. */
    int (*open)(sm_dataset *ds, const char *path, sm_err *err);
    /* sm_dataset_load and sm_dataset_raw for an index in range. */
    int (*load)(const sm_dataset *ds, size_t i, const sm_preproc *pp,
                float *dst, sm_err *err);
    int (*raw)(const sm_dataset *ds, size_t i, sm_dataset_raw_image *out,
               sm_err *err);
    /* Frees ds->data (the format's own); NULL when it keeps none. */
    void (*free_data)(void *data);
    /* 1: a file an image (paths set; ids checked for duplicates); 0:
     * records of one file, pathless, with ids distinct by construction. */
    int files;
} sm_dataset_format;

extern const sm_dataset_format sm_dataset_folder, sm_dataset_csv,
    sm_dataset_idx;

struct sm_dataset {
    char *source;     /* the path given to open, for messages */
    const sm_dataset_format *format;
    size_t n, cap;
    char **ids;
    char **paths;     /* one file per image; NULL entries without files */
    int *labels;
    char **classes;
    int n_classes;
    void *data;       /* the format's own (IDX: all pixels, an sm_idx) */
};

/* load and raw of the formats with a file an image: the file's bytes. */
int sm_dataset_file_load(const sm_dataset *ds, size_t i, const sm_preproc *pp,
                         float *dst, sm_err *err);
int sm_dataset_file_raw(const sm_dataset *ds, size_t i,
                        sm_dataset_raw_image *out, sm_err *err);

/* Appends one image (path NULL when the format has no files); takes
 * ownership of id and path even on failure, where NULL means out of
 * memory. */
int sm_dataset_push(sm_dataset *ds, char *id, char *path, int label,
                    sm_err *err);

/* "a" + "/" + "b"; just b when a is empty. NULL when out of memory. */
char *sm_dataset_join(const char *a, const char *b);

/* A copy of rel without the extension of its last component (the id of
 * an image file). */
char *sm_dataset_strip_ext(const char *rel);

/* qsort and bsearch order of char * entries: strcmp. */
int sm_dataset_cmp_str(const void *a, const void *b);

/* Frees v's n strings and v; v may be NULL. */
void sm_dataset_free_strs(char **v, size_t n);

#endif
