/* sm_tensor: a float32 array with a shape (row-major, images as NCHW).
 *
 * A tensor either owns its data (made by sm_tensor_new, freed by
 * sm_tensor_destroy) or borrows it (a view filled in by the caller, e.g. the
 * model engine's planned buffers; never destroyed through this API).
 * `i64` is non-NULL only for int64 constants of a model (Reshape's shape,
 * Pad's pads): the engine needs them at plan time, nothing computes on them. */
#ifndef SM_TENSOR_H
#define SM_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define SM_MAX_DIMS 8

typedef struct sm_tensor {
    int ndim;
    int64_t shape[SM_MAX_DIMS];
    float *data;
    int64_t *i64;
    int owns; /* 1: data/i64 freed by sm_tensor_destroy */
} sm_tensor;

/* A new zero-filled tensor of the given shape; NULL on a bad shape
 * (ndim outside 0..SM_MAX_DIMS, a negative dim) or out of memory. */
sm_tensor *sm_tensor_new(int ndim, const int64_t *shape);

/* A deep copy of src's shape and float data; NULL on out of memory. */
sm_tensor *sm_tensor_clone(const sm_tensor *src);

/* Frees an owning tensor (and a borrowing one's struct) and NULLs *t. */
void sm_tensor_destroy(sm_tensor **t);

/* A view of rows [r0, r0 + n) of t's first dim, borrowing its float
 * data. */
sm_tensor sm_tensor_rows(const sm_tensor *t, int64_t r0, int64_t n);

/* Number of elements; 1 for a scalar (ndim 0). */
int64_t sm_tensor_numel(const sm_tensor *t);
int64_t sm_shape_numel(int ndim, const int64_t *shape);

/* 1 when both shapes are equal. */
int sm_shape_equal(int na, const int64_t *a, int nb, const int64_t *b);

/* Writes "[2, 3, 4]" into buf and returns buf. */
const char *sm_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

/* Numpy (multidirectional) broadcasting of two shapes into out.
 * Returns 0, or -1 when the shapes do not broadcast. */
int sm_shape_broadcast(int na, const int64_t *a, int nb, const int64_t *b,
                       int *nout, int64_t *out);

#endif
