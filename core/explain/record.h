/* sm_record: what a method says about one image besides its map: one JSON
 * object of any size (rules, weights, the segmentation used...) and named
 * float32 arrays (exemplars, masks...). The store writes the object to
 * maps/<id>/<method>.json and each array to maps/<id>/<method>.<name>.npy;
 * the result message carries both. Nothing is cut: every add grows the
 * record or fails (out of memory).
 *
 * A zeroed sm_record is an empty one; sm_record_free() empties it again.
 * The owner of the struct frees it. */
#ifndef SM_EXPLAIN_RECORD_H
#define SM_EXPLAIN_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/text.h"

#define SM_RECORD_NAME_MAX 64 /* array names: 1..64 of [a-z0-9_] */
#define SM_RECORD_MAX_DIMS 4

typedef struct sm_record_array {
    char *name;
    int ndim;
    int64_t shape[SM_RECORD_MAX_DIMS];
    float *data; /* prod(shape) floats, owned */
} sm_record_array;

typedef struct sm_record {
    sm_text json; /* "{...}" once a member was added; empty before */
    sm_record_array *arrays;
    size_t n_arrays;
    int failed;   /* an add ran out of memory: the record is incomplete */
} sm_record;

/* Every add returns 0, or -1 when out of memory, and then also marks the
 * record failed: a method may add without checking, and the generic code
 * (explainer.c) turns a failed record into the method's error. */

/* Adds member "key": <value formatted by fmt> (the caller writes valid
 * JSON: numbers, [...], {...}). */
int sm_record_addf(sm_record *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "key": "s", s escaped as a JSON string. */
int sm_record_str(sm_record *r, const char *key, const char *s);
/* "key": [v0, v1, ...] (%.9g each). */
int sm_record_nums(sm_record *r, const char *key, const double *v, size_t n);

/* Adds a copy of data (prod(shape) floats) as array `name`. A bad name or
 * shape is a programmer error (asserted): names come from the method's
 * code, and the codec checks what comes from the wire. */
int sm_record_array_add(sm_record *r, const char *name, int ndim,
                        const int64_t *shape, const float *data);
/* prod(shape) of a. */
int64_t sm_record_array_count(const sm_record_array *a);
/* 1 when name is 1..SM_RECORD_NAME_MAX characters of [a-z0-9_]. */
int sm_record_name_valid(const char *name);

/* The object's text: "{}" for an empty record. Borrowed from r. */
const char *sm_record_json(const sm_record *r);
/* The number that top-level member key holds, into *v: 1; 0 when there
 * is no such member or it holds no number. The object may come from the
 * wire: malformed text is simply not found. */
int sm_record_number(const sm_record *r, const char *key, double *v);

/* Replaces the object by text json (the wire's record, already a JSON
 * object). 0 or -1. */
int sm_record_set_json(sm_record *r, const char *json);

/* Moves src's contents into dst (dst freed first); src is left empty. */
void sm_record_move(sm_record *dst, sm_record *src);
/* Frees the contents; r is an empty record again. */
void sm_record_free(sm_record *r);

#endif
