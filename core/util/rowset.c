/* Open addressing with linear probing over row numbers, rehashed at half
 * full (rowset.h). */
#include "util/rowset.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "util/grow.h"

struct sm_rowset {
    size_t bytes;
    uint8_t *rows; /* n x bytes */
    int64_t n, cap;
    int64_t *slot; /* n_slot (a power of 2), -1 empty */
    int64_t n_slot;
};

sm_rowset *sm_rowset_new(size_t bytes)
{
    assert(bytes > 0);
    sm_rowset *s = calloc(1, sizeof *s);
    if (s)
        s->bytes = bytes;
    return s;
}

void sm_rowset_destroy(sm_rowset **s)
{
    if (!*s)
        return;
    free((*s)->rows);
    free((*s)->slot);
    free(*s);
    *s = NULL;
}

static uint64_t row_hash(const uint8_t *z, size_t bytes)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t j = 0; j < bytes; j++)
        h = (h ^ z[j]) * 1099511628211ull;
    return h;
}

/* Row z's number or -1; *at its slot, or the empty slot it belongs in. */
static int64_t probe(const sm_rowset *s, const uint8_t *z, int64_t *at)
{
    const int64_t mask = s->n_slot - 1;
    for (int64_t i = (int64_t)(row_hash(z, s->bytes) & (uint64_t)mask);;
         i = (i + 1) & mask)
        if (s->slot[i] < 0 ||
            memcmp(s->rows + (size_t)s->slot[i] * s->bytes, z, s->bytes) == 0) {
            *at = i;
            return s->slot[i];
        }
}

int64_t sm_rowset_find(const sm_rowset *s, const void *z)
{
    int64_t at;
    return s->n_slot ? probe(s, z, &at) : -1;
}

int64_t sm_rowset_add(sm_rowset *s, const void *z)
{
    int64_t at;
    if (2 * (s->n + 1) > s->n_slot) {
        int64_t n_slot = s->n_slot ? 2 * s->n_slot : 1024;
        int64_t *slot = malloc(sizeof(int64_t) * (size_t)n_slot);
        if (!slot)
            return -1;
        free(s->slot);
        s->slot = slot;
        s->n_slot = n_slot;
        for (int64_t i = 0; i < n_slot; i++)
            slot[i] = -1;
        for (int64_t r = 0; r < s->n; r++) {
            probe(s, s->rows + (size_t)r * s->bytes, &at);
            slot[at] = r;
        }
    }
    if (sm_grow((void **)&s->rows, &s->cap, s->n + 1, s->bytes))
        return -1;
    const int64_t there = probe(s, z, &at);
    assert(there < 0);
    (void)there;
    memcpy(s->rows + (size_t)s->n * s->bytes, z, s->bytes);
    s->slot[at] = s->n;
    return s->n++;
}

int64_t sm_rowset_count(const sm_rowset *s)
{
    return s->n;
}

const uint8_t *sm_rowset_rows(const sm_rowset *s)
{
    return s->rows;
}
