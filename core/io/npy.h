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

#include "tensor/tensor.h"
#include "util/err.h"

/* Refuse files with more data than this. */
#define SM_NPY_MAX_BYTES ((size_t)4 << 30)

/* A new owning tensor with the file's shape and data; NULL on error. */
sm_tensor *sm_npy_read(const char *path, sm_err *err);

/* Writes t (float data; at most SM_MAX_DIMS dims) atomically: a reader
 * never sees a partial file. */
int sm_npy_write(const char *path, const sm_tensor *t, sm_err *err);

#endif
