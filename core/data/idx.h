/* IDX files (the MNIST / Fashion-MNIST container), plain or gzip.
 *
 * Layout: bytes 0,0, a type code (0x08 = unsigned byte, the only one
 * supported), the number of dimensions, then each dimension as a
 * big-endian uint32, then the data in C order. */
#ifndef SM_IDX_H
#define SM_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define SM_IDX_MAX_DIMS 4
/* Refuse more data than this (decompressed), whatever the header says. */
#define SM_IDX_MAX_BYTES ((size_t)4 << 30)

typedef struct sm_idx {
    int ndim;
    uint32_t dims[SM_IDX_MAX_DIMS];
    size_t size; /* bytes of data: the product of dims */
    uint8_t *data;
} sm_idx;

/* Reads a whole IDX file of unsigned bytes, gzip-compressed or not (told
 * by content). Wrong magic, another element type, more than
 * SM_IDX_MAX_DIMS dimensions, truncated data or data after the end the
 * header promises are errors naming the file. */
sm_idx *sm_idx_read(const char *path, sm_err *err);

void sm_idx_destroy(sm_idx **idx);

#endif
