/* IDX files written byte by byte (plain and gzip) per the format's
 * description: what sm_idx_read returns, and what it refuses. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/idx.h"
#include "tdata.h"
#include "util/file.h"

static char *dir;

static void setup(void)
{
    dir = tdata_tmpdir();
}

static void teardown(void)
{
    tdata_rmtree(dir);
}

TestSuite(idx, .init = setup, .fini = teardown);

/* Header for type 0x08 with the given dims, then n data bytes i*3. */
static size_t make_idx(uint8_t *out, int ndim, const uint32_t *dims,
                       size_t n)
{
    out[0] = 0;
    out[1] = 0;
    out[2] = 0x08;
    out[3] = (uint8_t)ndim;
    size_t k = 4;
    for (int d = 0; d < ndim; d++) {
        out[k++] = (uint8_t)(dims[d] >> 24);
        out[k++] = (uint8_t)(dims[d] >> 16);
        out[k++] = (uint8_t)(dims[d] >> 8);
        out[k++] = (uint8_t)dims[d];
    }
    for (size_t i = 0; i < n; i++)
        out[k++] = (uint8_t)(i * 3);
    return k;
}

static void write_gz(char *path, const char *name, const void *buf,
                     size_t len)
{
    tdata_path(path, dir, name);
    gzFile f = gzopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(gzwrite(f, buf, (unsigned)len), (int)len);
    cr_assert_eq(gzclose(f), Z_OK);
}

Test(idx, plain_three_dims)
{
    uint8_t f[64];
    const uint32_t dims[3] = {2, 3, 4};
    size_t n = make_idx(f, 3, dims, 24);
    char p[TDATA_PATH];
    tdata_write(p, dir, "x-images-idx3-ubyte", f, n);
    sm_err err = {0};
    sm_idx *idx = sm_idx_read(p, &err);
    cr_assert_not_null(idx, "%s", err.msg);
    cr_assert_eq(idx->ndim, 3);
    cr_assert_eq(idx->dims[0], 2);
    cr_assert_eq(idx->dims[1], 3);
    cr_assert_eq(idx->dims[2], 4);
    cr_assert_eq(idx->size, 24);
    for (size_t i = 0; i < 24; i++)
        cr_assert_eq(idx->data[i], (uint8_t)(i * 3));
    sm_idx_destroy(&idx);
    cr_assert_null(idx);
}

Test(idx, gzip_large_dims)
{
    /* A dim above 255 checks the big-endian decoding. */
    static uint8_t f[8 + 300];
    const uint32_t dims[1] = {300};
    size_t n = make_idx(f, 1, dims, 300);
    char p[TDATA_PATH];
    write_gz(p, "l-labels-idx1-ubyte.gz", f, n);
    sm_err err = {0};
    sm_idx *idx = sm_idx_read(p, &err);
    cr_assert_not_null(idx, "%s", err.msg);
    cr_assert_eq(idx->ndim, 1);
    cr_assert_eq(idx->dims[0], 300);
    cr_assert_eq(idx->data[299], (uint8_t)(299 * 3));
    sm_idx_destroy(&idx);
}

static void refused(const char *name, const void *buf, size_t len, int gz,
                    const char *want)
{
    char p[TDATA_PATH];
    if (gz)
        write_gz(p, name, buf, len);
    else
        tdata_write(p, dir, name, buf, len);
    sm_err err = {0};
    sm_idx *idx = sm_idx_read(p, &err);
    cr_assert_null(idx, "%s should be refused", name);
    cr_assert(tdata_has(err.msg, p), "message names the file: %s", err.msg);
    cr_assert(tdata_has(err.msg, want), "'%s' not in: %s", want, err.msg);
}

Test(idx, bad_magic)
{
    uint8_t f[16] = {1, 2, 8, 1, 0, 0, 0, 1, 9};
    refused("m", f, 9, 0, "bad magic");
    refused("m.gz", f, 9, 1, "bad magic");
    refused("e", f, 0, 0, "bad magic");
}

Test(idx, other_element_type)
{
    uint8_t f[16] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0};
    refused("f", f, 12, 0, "0x0d (float)");
}

Test(idx, too_many_dims)
{
    uint8_t f[64];
    const uint32_t dims[5] = {1, 1, 1, 1, 1};
    size_t n = make_idx(f, 5, dims, 1);
    refused("d5", f, n, 0, "5 dimensions");
}

Test(idx, truncated_header_and_data)
{
    uint8_t f[64];
    const uint32_t dims[3] = {2, 3, 4};
    size_t n = make_idx(f, 3, dims, 24);
    refused("h", f, 10, 0, "truncated IDX header");
    refused("t", f, n - 1, 0, "promises 24 bytes of data, the file has 23");
    refused("t.gz", f, n - 5, 1, "the file has 19");
}

Test(idx, data_after_the_end)
{
    uint8_t f[64];
    const uint32_t dims[3] = {2, 3, 4};
    size_t n = make_idx(f, 3, dims, 25);
    refused("x", f, n, 0, "more data than the 24 bytes");
}

Test(idx, cut_gzip_stream)
{
    static uint8_t f[4 + 4 + 5000];
    const uint32_t dims[1] = {5000};
    size_t n = make_idx(f, 1, dims, 5000);
    char p[TDATA_PATH];
    write_gz(p, "whole.gz", f, n);
    size_t len;
    sm_err err = {0};
    unsigned char *gz = sm_file_read(p, 1 << 20, &len, &err);
    cr_assert_not_null(gz);
    tdata_write(p, dir, "cut.gz", gz, len - 6); /* loses the CRC trailer */
    free(gz);
    sm_idx *idx = sm_idx_read(p, &err);
    cr_assert_null(idx);
    cr_assert(tdata_has(err.msg, "cut.gz"), "%s", err.msg);
    cr_assert(tdata_has(err.msg, "truncated"), "%s", err.msg);
}

Test(idx, header_over_the_size_limit)
{
    uint8_t f[16];
    const uint32_t dims[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 2};
    size_t n = make_idx(f, 3, dims, 0);
    refused("big", f, n, 0, "limit");
}

Test(idx, missing_file)
{
    char p[TDATA_PATH];
    tdata_path(p, dir, "nothing-here");
    sm_err err = {0};
    cr_assert_null(sm_idx_read(p, &err));
    cr_assert(tdata_has(err.msg, p), "%s", err.msg);
    cr_assert(tdata_has(err.msg, "No such file"), "%s", err.msg);
}
