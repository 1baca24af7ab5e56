/* A reproducible, stratified train/test split.
 *
 * The rule (docs/DATA.md): test_total = round(test_fraction * n), rounding
 * halves up; each class c gets floor(test_fraction * n_c) test items, and
 * the test_total - sum of those left over go one each to the classes with
 * the largest fractional parts (ties: lower class first). Then, class by
 * class in label order, one splitmix64 stream seeded with `seed` drives a
 * Fisher-Yates shuffle of the class's item positions, and the first
 * test-count positions of the shuffled list are the test items. */
#ifndef SM_SPLIT_H
#define SM_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* splitmix64 (Steele, Lea, Flood 2014): returns the next value and
 * advances *state. */
uint64_t sm_splitmix64(uint64_t *state);

/* A uniform integer in [0, bound) from the stream (bound > 0), without
 * modulo bias: draws are rejected while >= the largest multiple of bound
 * that fits in 64 bits. */
uint64_t sm_splitmix64_below(uint64_t *state, uint64_t bound);

/* Sets is_test[i] to 1 for the test items and 0 for the others.
 * labels[i] must be in 0..n_classes-1; test_fraction in [0, 1]. */
int sm_split_stratified(const int *labels, size_t n, int n_classes,
                        double test_fraction, uint64_t seed,
                        unsigned char *is_test, sm_err *err);

#endif
