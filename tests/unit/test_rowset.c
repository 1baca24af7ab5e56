/* sm_rowset: rows numbered in the order added, found by their bytes
 * whatever the table's growth, kept side by side; rows that differ in one
 * byte (or in the sign of a zero) are different rows. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "util/rowset.h"

/* Row i: 4 floats (no padding) that tell it apart from every other. */
typedef struct row {
    float v[4];
} row;

static row row_of(int i)
{
    return (row){{(float)(i / 7), (float)(i % 7), 0.5f, (float)(i % 251)}};
}

Test(rowset, numbers_rows_in_order_and_finds_them_after_growth)
{
    sm_rowset *s = sm_rowset_new(sizeof(row));
    cr_assert_not_null(s);
    cr_assert_eq(sm_rowset_count(s), 0);
    row r0 = row_of(0);
    cr_assert_eq(sm_rowset_find(s, &r0), -1, "an empty set holds nothing");
    /* past several rehashes (the table starts at 1,024 slots) */
    const int n = 5000;
    for (int i = 0; i < n; i++) {
        row r = row_of(i);
        cr_assert_eq(sm_rowset_find(s, &r), -1, "row %d before it is added", i);
        cr_assert_eq(sm_rowset_add(s, &r), i);
    }
    cr_assert_eq(sm_rowset_count(s), n);
    const row *all = (const row *)(const void *)sm_rowset_rows(s);
    for (int i = 0; i < n; i++) {
        row r = row_of(i);
        cr_assert_eq(sm_rowset_find(s, &r), i, "row %d", i);
        cr_assert_eq(memcmp(&all[i], &r, sizeof r), 0, "row %d kept", i);
    }
    /* one byte apart, or +0 against -0: not there */
    row r = row_of(17);
    uint8_t *b = (uint8_t *)&r.v[3];
    b[0] ^= 1;
    cr_assert_eq(sm_rowset_find(s, &r), -1);
    row z = row_of(0), mz = z;
    mz.v[0] = -0.0f;
    cr_assert_eq(sm_rowset_find(s, &z), 0);
    cr_assert_eq(sm_rowset_find(s, &mz), -1);
    sm_rowset_destroy(&s);
    cr_assert_null(s);
    sm_rowset_destroy(&s); /* twice: nothing */
}
