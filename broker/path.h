/* Paths the broker builds from what it is given (its state folder, a
 * client's image ids and out folder, a key folder): into a buffer of
 * BPATH_MAX bytes, refused with a message naming the thing rather than
 * cut short, since a cut path names another file. */
#ifndef SM_BROKER_PATH_H
#define SM_BROKER_PATH_H

#include "util/err.h"

/* Bytes of a path, its NUL included: PATH_MAX on Linux, so that what fits
 * is what open() takes. */
#define BPATH_MAX 4096

/* Formats into buf[BPATH_MAX]. 0, or -1 with "<what>: path longer than
 * 4095 bytes" (what shown up to 80 characters). */
int bpath(char *buf, sm_err *err, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The same on the heap, of any length (for what outlives a call, such as
 * the state folder); NULL when out of memory. */
char *bpath_heap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The message bpath gives, for a length checked otherwise; -1. */
int bpath_too_long(sm_err *err, const char *what);

#endif
