/* Growing arrays (grow.h). */
#include "util/grow.h"

#include <stdlib.h>

int sm_grow(void **p, int64_t *cap, int64_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    int64_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, size * (size_t)c);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}
