/* sm_text: a growing text buffer (CSV and JSON rows, reports), also for
 * raw bytes (explainer states). */
#ifndef SM_TEXT_H
#define SM_TEXT_H

#include <stddef.h>

typedef struct sm_text {
    char *s;          /* NUL-terminated when len > 0 */
    size_t len, cap;
} sm_text;

/* Appends formatted text. 0, or -1 when out of memory. */
int sm_text_addf(sm_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends n raw bytes (any bytes: len counts them; a NUL still follows).
 * 0, or -1 when out of memory. */
int sm_text_add(sm_text *t, const void *data, size_t n);

/* Appends s as one CSV field, quoted when it holds a comma, a quote or a
 * line break (quotes doubled). 0 or -1. */
int sm_text_csv(sm_text *t, const char *s);

/* 1 when s is 1..max characters of [a-z0-9_] (names of record arrays
 * and of auxiliary models: safe in file names, JSON and the wire). */
int sm_name_valid(const char *s, size_t max);

/* Frees the buffer and empties t. */
void sm_text_free(sm_text *t);

#endif
