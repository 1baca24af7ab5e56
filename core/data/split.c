#include "data/split.h"

#include <math.h>
#include <stdlib.h>

uint64_t sm_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

uint64_t sm_splitmix64_below(uint64_t *state, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do
        r = sm_splitmix64(state);
    while (r >= limit);
    return r % bound;
}

int sm_split_stratified(const int *labels, size_t n, int n_classes,
                        double test_fraction, uint64_t seed,
                        unsigned char *is_test, sm_err *err)
{
    if (n_classes < 1)
        return sm_err_set(err, "split: no classes");
    if (!(test_fraction >= 0 && test_fraction <= 1))
        return sm_err_set(err, "split: test fraction %g is not in [0, 1]",
                          test_fraction);
    size_t *count = calloc((size_t)n_classes, sizeof *count);
    size_t *quota = calloc((size_t)n_classes, sizeof *quota);
    double *rest = calloc((size_t)n_classes, sizeof *rest);
    size_t *pos = malloc((n ? n : 1) * sizeof *pos);
    int rc = -1;
    if (!count || !quota || !rest || !pos) {
        sm_err_set(err, "split: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || labels[i] >= n_classes) {
            sm_err_set(err, "split: item %zu has label %d, outside 0..%d", i,
                       labels[i], n_classes - 1);
            goto done;
        }
        count[labels[i]]++;
        is_test[i] = 0;
    }
    size_t total = (size_t)floor(test_fraction * (double)n + 0.5), given = 0;
    for (int c = 0; c < n_classes; c++) {
        double q = test_fraction * (double)count[c];
        quota[c] = (size_t)floor(q);
        rest[c] = q - floor(q);
        given += quota[c];
    }
    /* Largest remainders; at most n_classes rounds since each floor lost
     * less than one item. */
    while (given < total) {
        int best = -1;
        for (int c = 0; c < n_classes; c++)
            if (quota[c] < count[c] && (best < 0 || rest[c] > rest[best]))
                best = c;
        if (best < 0)
            break;
        quota[best]++;
        rest[best] = -1;
        given++;
    }
    uint64_t state = seed;
    for (int c = 0; c < n_classes; c++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (labels[i] == c)
                pos[m++] = i;
        for (size_t i = m; i > 1; i--) {
            size_t j = (size_t)sm_splitmix64_below(&state, i);
            size_t t = pos[i - 1];
            pos[i - 1] = pos[j];
            pos[j] = t;
        }
        for (size_t k = 0; k < quota[c]; k++)
            is_test[pos[k]] = 1;
    }
    rc = 0;
done:
    free(count);
    free(quota);
    free(rest);
    free(pos);
    return rc;
}
