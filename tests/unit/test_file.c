/* sm_file_read: the bytes of the file, then a NUL byte not counted in
 * len (a text file reads as a string); files over the limit refused by
 * name. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "tdata.h"
#include "util/file.h"

TDATA_SUITE(file);

Test(file, read_gives_the_bytes_then_a_nul)
{
    const char *const texts[] = {"three words here\n", ""};
    for (int k = 0; k < 2; k++) {
        char p[TDATA_PATH];
        tdata_text(p, dir, k ? "empty.txt" : "text.txt", texts[k]);
        size_t len = 99;
        sm_err err = {0};
        char *s = (char *)sm_file_read(p, 1 << 10, &len, &err);
        cr_assert_not_null(s, "%s", err.msg);
        cr_assert_eq(len, strlen(texts[k]));
        cr_assert_eq(s[len], '\0');
        cr_assert_str_eq(s, texts[k]);
        free(s);
    }
}

Test(file, read_refuses_past_the_limit)
{
    char p[TDATA_PATH];
    tdata_text(p, dir, "big.txt", "0123456789");
    size_t len = 0;
    sm_err err = {0};
    cr_assert_null(sm_file_read(p, 9, &len, &err));
    cr_assert(strstr(err.msg, p) && strstr(err.msg, "limit"), "%s", err.msg);
    char *s = (char *)sm_file_read(p, 10, &len, &err);
    cr_assert_not_null(s, "%s", err.msg);
    cr_assert_eq(len, 10);
    free(s);
}
