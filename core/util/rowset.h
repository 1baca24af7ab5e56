/* sm_rowset: a set of rows of a fixed number of bytes, each numbered in
 * the order it came (0, 1, ...) and kept side by side, found by hashing
 * its bytes. A search's memory of what it has asked: the caller keeps
 * what it learnt of row i at index i of an array of its own. */
#ifndef SM_ROWSET_H
#define SM_ROWSET_H

#include <stddef.h>
#include <stdint.h>

typedef struct sm_rowset sm_rowset;

/* An empty set of rows of `bytes` bytes (> 0); NULL out of memory. */
sm_rowset *sm_rowset_new(size_t bytes);
void sm_rowset_destroy(sm_rowset **s);

/* Row z's number, or -1 when it is not there. */
int64_t sm_rowset_find(const sm_rowset *s, const void *z);

/* Adds row z, which must not be there: its number (the count before), or
 * -1 out of memory (s unchanged). */
int64_t sm_rowset_add(sm_rowset *s, const void *z);

/* Rows held; the first of them (rows 0 .. count-1 follow it, borrowed
 * until the next add). */
int64_t sm_rowset_count(const sm_rowset *s);
const uint8_t *sm_rowset_rows(const sm_rowset *s);

#endif
