/* sm_dataset: a read-only, ordered list of images with optional labels.
 *
 * sm_dataset_open takes one of three kinds of path (docs/DATA.md):
 *
 * - a folder in ImageFolder layout, root/<class>/<...>/<file>: classes are
 *   the sorted names of root's subfolders and a label is the index of its
 *   class in that order; image files are found at any depth below a class
 *   folder. A root without subfolders holds unlabelled images directly.
 *   Image files are told by extension (png, jpg, jpeg, jpe, jfif, tif,
 *   tiff, webp, gif, heic, heif, avif; any case); other files and names
 *   starting with '.' are skipped. Order: classes in order, then each
 *   folder's entries sorted by name (byte order).
 * - an IDX images file (any other file, e.g. t10k-images-idx3-ubyte.gz):
 *   labels come from the sibling file with "labels-idx1" in its place
 *   (plain or .gz) when there is one; classes are "0".."max label".
 *   Order: the file's; ids are the zero-padded record index.
 * - a CSV manifest (*.csv): one image a line, `path,label` or `path`; the
 *   first line is a header when its first field is "path" (any case);
 *   relative paths resolve against the CSV's folder; a label is a class
 *   name or empty (unknown); classes are the sorted distinct labels.
 *   Fields may be double-quoted ("" escapes a quote). Order: the file's.
 *
 * Ids are the image path relative to the dataset root (the folder, or the
 * CSV's path field as written) without its extension; they are unique. */
#ifndef SM_DATASET_H
#define SM_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "data/image.h"
#include "util/err.h"

typedef struct sm_dataset sm_dataset;

/* Opens a dataset; NULL with a message naming the path (and the line of a
 * manifest) on failure. An empty dataset is an error. */
sm_dataset *sm_dataset_open(const char *path, sm_err *err);

void sm_dataset_destroy(sm_dataset **ds);

size_t sm_dataset_count(const sm_dataset *ds);

/* 0 for unlabelled datasets. */
int sm_dataset_n_classes(const sm_dataset *ds);

/* NULL when c is out of range. */
const char *sm_dataset_class_name(const sm_dataset *ds, int c);

/* The index of the class with that name, or -1. */
int sm_dataset_class_index(const sm_dataset *ds, const char *name);

/* NULL when i is out of range. */
const char *sm_dataset_id(const sm_dataset *ds, size_t i);

/* The class index of image i, -1 when unknown (or i out of range). */
int sm_dataset_label(const sm_dataset *ds, size_t i);

/* The class name of image i, NULL when unknown. */
const char *sm_dataset_label_name(const sm_dataset *ds, size_t i);

/* The file of image i; NULL for IDX datasets (no file per image). */
const char *sm_dataset_path(const sm_dataset *ds, size_t i);

/* Decodes and preprocesses image i into dst (pp->channels * pp->height *
 * pp->width floats, C x H x W); see data/image.h. Errors name the image's
 * file (or the IDX file and record). */
int sm_dataset_load(const sm_dataset *ds, size_t i, const sm_preproc *pp,
                    float *dst, sm_err *err);

/* What a process without the dataset needs to decode image i (a remote
 * worker): the bytes as stored, undecoded. */
typedef enum sm_dataset_raw_format {
    SM_DATASET_RAW_FILE, /* an image file's bytes: sm_image_load_buffer */
    SM_DATASET_RAW_U8,   /* 8-bit pixels, height x width x bands:
                            sm_image_load_u8 */
} sm_dataset_raw_format;

/* Files larger than this are refused by sm_dataset_raw. */
#define SM_DATASET_RAW_MAX ((size_t)256 << 20)

typedef struct sm_dataset_raw_image {
    sm_dataset_raw_format format;
    const uint8_t *data;    /* len bytes */
    size_t len;
    int width, height, bands; /* U8; 0 for FILE */
    uint8_t *owned;         /* what sm_dataset_raw_free frees (FILE: data) */
} sm_dataset_raw_image;

/* Image i's bytes into out. A file-based dataset's image is its file,
 * read whole (at most SM_DATASET_RAW_MAX bytes) into memory that out owns;
 * an IDX record is its pixels (bands 1), pointing into the dataset's
 * memory: valid while ds is open, not copied. Either way release out with
 * sm_dataset_raw_free. Decoding them (sm_image_load_buffer, or
 * sm_image_load_u8 with out's shape) gives exactly sm_dataset_load's
 * floats. 0, or -1 with a message naming the image (nothing to free). */
int sm_dataset_raw(const sm_dataset *ds, size_t i, sm_dataset_raw_image *out,
                   sm_err *err);

/* Frees what out owns and empties it; safe on an emptied or zeroed out. */
void sm_dataset_raw_free(sm_dataset_raw_image *out);

/* Decodes n images into dst on `threads` threads, row r holding image
 * idx[r] (or first + r when idx is NULL). status[r] is 0 when it
 * loaded, -1 when not, with the message in errs[r] when errs is not NULL.
 * Returns how many failed. (libvips keeps one error buffer per process, so
 * two failing at once may mix their libvips details.) */
size_t sm_dataset_load_many(const sm_dataset *ds, const size_t *idx,
                            size_t first, size_t n, const sm_preproc *pp,
                            float *dst, int threads, int *status, sm_err *errs);

/* Loads images [i0, i1) into dst on `threads` threads, compacted: the k
 * that loaded fill rows 0..k-1, their dataset indices in loaded[0..k).
 * Each one that failed is passed to on_error (may be NULL). Returns k. */
size_t sm_dataset_load_range(const sm_dataset *ds, size_t i0, size_t i1,
                             const sm_preproc *pp, float *dst, int threads,
                             size_t *loaded,
                             void (*on_error)(const sm_err *e, void *u),
                             void *u);

#endif
