/* sm_csvtab: a CSV file with a header line, read whole, its columns found
 * by header name (OUT/index.csv, summary.csv, sanity.csv: columns are
 * added over time, so nothing reads them by position).
 *
 * Fields follow RFC 4180: a field may be double-quoted, "" inside quotes
 * is a quote, and a quoted field may hold commas and line breaks. A line
 * ending in \r\n is accepted. A row with fewer fields than the header has
 * the missing ones empty; one with more is an error naming the line. */
#ifndef SM_REPORT_CSVTAB_H
#define SM_REPORT_CSVTAB_H

#include <stddef.h>

#include "util/err.h"

typedef struct sm_csvtab sm_csvtab;

/* Reads path (at most max bytes). NULL with a message naming the file and
 * line: missing, too large, no header, an unterminated quote. */
sm_csvtab *sm_csvtab_load(const char *path, size_t max, sm_err *err);
void sm_csvtab_destroy(sm_csvtab **t);

size_t sm_csvtab_rows(const sm_csvtab *t); /* without the header */
int sm_csvtab_cols(const sm_csvtab *t);
const char *sm_csvtab_name(const sm_csvtab *t, int col);
/* The column named `name`, or -1. */
int sm_csvtab_col(const sm_csvtab *t, const char *name);
/* The field (never NULL: "" when empty or col is -1). */
const char *sm_csvtab_get(const sm_csvtab *t, size_t row, int col);
/* 1 and *v when the field is a finite number, else 0. */
int sm_csvtab_num(const sm_csvtab *t, size_t row, int col, double *v);

#endif
