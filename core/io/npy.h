/* NumPy .npy files of float32 tensors.
 *
 * Reads format versions 1.0 and 2.0 and writes 1.0, always little-endian
 * float32 ('<f4') in C order; anything else (fortran_order True, another
 * dtype, a bad magic string, a header that does not parse, data shorter or
 * longer than the shape says) is refused with a message naming the file.
 * Spec: numpy.lib.format (NEP 1). */
#ifndef SM_NPY_H
#define SM_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/tensor.h"
#include "util/err.h"

/* Refuse files with more data than this. */
#define SM_NPY_MAX_BYTES ((size_t)4 << 30)

/* A new owning tensor with the file's shape and data; NULL on error. */
sm_tensor *sm_npy_read(const char *path, sm_err *err);

/* A .npy file read a few rows of its first dimension at a time (a large
 * input array through a batch-sized buffer), checked at open as
 * sm_npy_read checks the whole file. A 0-d file is one row of one float.
 * The reader owns its open file; sm_npy_reader_destroy closes it and
 * nulls the pointer. NULL on error. */
typedef struct sm_npy_reader sm_npy_reader;
sm_npy_reader *sm_npy_reader_open(const char *path, sm_err *err);
void sm_npy_reader_destroy(sm_npy_reader **r);

/* The array's shape into shape; returns its number of dimensions. */
int sm_npy_reader_shape(const sm_npy_reader *r, int64_t shape[SM_MAX_DIMS]);

int64_t sm_npy_reader_rows_left(const sm_npy_reader *r);

/* The next n rows (the product of shape[1:] floats each) into dst. 0, or
 * -1 when fewer than n rows are left or the file can no longer be read. */
int sm_npy_reader_next(sm_npy_reader *r, float *dst, int64_t n, sm_err *err);

/* Writes t (float data; at most SM_MAX_DIMS dims) atomically: a reader
 * never sees a partial file. */
int sm_npy_write(const char *path, const sm_tensor *t, sm_err *err);

/* The same without the fsync (sm_file_replace): for a caller that makes
 * many files durable at once (explain/store.h's batches). */
int sm_npy_replace(const char *path, const sm_tensor *t, sm_err *err);

#endif
