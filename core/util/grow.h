/* sm_grow: a growing array's capacity, doubled as needed. */
#ifndef SM_GROW_H
#define SM_GROW_H

#include <stddef.h>
#include <stdint.h>

/* Grows *p (*cap elements of size bytes) to hold need elements, doubling
 * from 256; contents kept. 0, or -1 when out of memory (*p and *cap then
 * untouched). */
int sm_grow(void **p, int64_t *cap, int64_t need, size_t size);

#endif
