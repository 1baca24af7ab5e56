/* .npy files built byte by byte per NumPy's format description
 * (numpy.lib.format), files written by NumPy itself
 * (tests/fixtures/npy/make_npy.py), and the refusals. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"
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

TestSuite(npy, .init = setup, .fini = teardown);

/* magic, version, header length (2 or 4 bytes LE), the dict padded with
 * spaces to a multiple of 64 and ended by '\n', then `ndata` bytes. */
static size_t make_npy(uint8_t *out, int major, const char *dict,
                       const void *data, size_t ndata)
{
    size_t pre = major == 1 ? 10 : 12;
    size_t hlen = strlen(dict) + 1;
    hlen += 64 - (pre + hlen) % 64; /* 1..64 spaces, as NumPy pads */
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (uint8_t)major;
    out[7] = 0;
    out[8] = (uint8_t)hlen;
    out[9] = (uint8_t)(hlen >> 8);
    if (major != 1) {
        out[10] = (uint8_t)(hlen >> 16);
        out[11] = (uint8_t)(hlen >> 24);
    }
    memset(out + pre, ' ', hlen);
    memcpy(out + pre, dict, strlen(dict));
    out[pre + hlen - 1] = '\n';
    memcpy(out + pre + hlen, data, ndata);
    return pre + hlen + ndata;
}

/* 1.5 = 0x3FC00000, -2 = 0xC0000000, 0.25 = 0x3E800000: little-endian. */
static const uint8_t three[12] = {0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00,
                                  0x00, 0xC0, 0x00, 0x00, 0x80, 0x3E};

static sm_tensor *read_bytes(const char *name, int major, const char *dict,
                             const void *data, size_t n, sm_err *err)
{
    uint8_t buf[512];
    char p[TDATA_PATH];
    tdata_write(p, dir, name, buf, make_npy(buf, major, dict, data, n));
    return sm_npy_read(p, err);
}

Test(npy, version_1_by_hand)
{
    sm_err err = {0};
    sm_tensor *t = read_bytes(
        "a.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }",
        three, 12, &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(t->ndim, 2);
    cr_assert_eq(t->shape[0], 1);
    cr_assert_eq(t->shape[1], 3);
    cr_assert_eq(t->data[0], 1.5f);
    cr_assert_eq(t->data[1], -2.0f);
    cr_assert_eq(t->data[2], 0.25f);
    sm_tensor_destroy(&t);
}

Test(npy, version_2_and_key_order_and_spacing)
{
    sm_err err = {0};
    sm_tensor *t = read_bytes(
        "b.npy", 2, "{\"shape\":(3,),\"fortran_order\":False,\"descr\":\"<f4\"}",
        three, 12, &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(t->ndim, 1);
    cr_assert_eq(t->shape[0], 3);
    cr_assert_eq(t->data[2], 0.25f);
    sm_tensor_destroy(&t);
}

Test(npy, scalar_empty_and_python2_longs)
{
    sm_err err = {0};
    sm_tensor *t = read_bytes(
        "s.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
        three, 4, &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(t->ndim, 0);
    cr_assert_eq(t->data[0], 1.5f);
    sm_tensor_destroy(&t);
    t = read_bytes("e.npy", 1,
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }",
                   three, 0, &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(sm_tensor_numel(t), 0);
    sm_tensor_destroy(&t);
    t = read_bytes("l.npy", 1,
                   "{'descr': '<f4', 'fortran_order': False, 'shape': (3L,), }",
                   three, 12, &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(t->shape[0], 3);
    sm_tensor_destroy(&t);
}

static void refused(const char *name, int major, const char *dict, size_t n,
                    const char *want)
{
    sm_err err = {0};
    sm_tensor *t = read_bytes(name, major, dict, three, n, &err);
    cr_assert_null(t, "%s should be refused", name);
    cr_assert(tdata_has(err.msg, name), "message names the file: %s",
              err.msg);
    cr_assert(tdata_has(err.msg, want), "'%s' not in: %s", want, err.msg);
}

Test(npy, refusals)
{
    refused("fortran.npy", 1,
            "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", 12,
            "fortran_order True");
    refused("f8.npy", 1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", 8,
            "'<f8' is not supported");
    refused("be.npy", 1,
            "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", 12,
            "'>f4'");
    refused("short.npy", 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 12,
            "truncated");
    refused("long.npy", 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12,
            "needs 8 bytes of data, the file has 12");
    refused("noshape.npy", 1, "{'descr': '<f4', 'fortran_order': False, }", 12,
            "lacks 'shape'");
    refused("extra.npy", 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), "
            "'x': 1}", 12, "unknown key 'x'");
    refused("struct.npy", 1,
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }",
            12, "structured");
    refused("neg.npy", 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,), }", 12,
            "non-negative");
    refused("dims.npy", 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': "
            "(1,1,1,1,1,1,1,1,1), }", 4, "more than 8 dimensions");
    refused("huge.npy", 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': "
            "(4294967296, 4294967296), }", 12, "limit");
    refused("notdict.npy", 1, "[1, 2]", 12, "not a dict");
}

Test(npy, bad_magic_and_version)
{
    char p[TDATA_PATH];
    sm_err err = {0};
    tdata_text(p, dir, "m.npy", "\x93NUMPZ\x01\x00\x00\x00");
    cr_assert_null(sm_npy_read(p, &err));
    cr_assert(tdata_has(err.msg, "m.npy: not a .npy file"), "%s", err.msg);
    tdata_text(p, dir, "tiny.npy", "\x93NU");
    cr_assert_null(sm_npy_read(p, &err));
    cr_assert(tdata_has(err.msg, "bad magic"), "%s", err.msg);
    uint8_t buf[512];
    size_t n = make_npy(buf, 3,
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                        three, 12);
    tdata_write(p, dir, "v3.npy", buf, n);
    cr_assert_null(sm_npy_read(p, &err));
    cr_assert(tdata_has(err.msg, "version 3.0 is not supported"), "%s",
              err.msg);
    n = make_npy(buf, 1,
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                 three, 12);
    tdata_write(p, dir, "cut.npy", buf, 40); /* inside the header */
    cr_assert_null(sm_npy_read(p, &err));
    cr_assert(tdata_has(err.msg, "truncated npy header"), "%s", err.msg);
    tdata_path(p, dir, "absent.npy");
    cr_assert_null(sm_npy_read(p, &err));
    cr_assert(tdata_has(err.msg, "absent.npy: No such file"), "%s", err.msg);
}

Test(npy, write_matches_the_spec_byte_for_byte)
{
    const int64_t shape[2] = {1, 3};
    sm_tensor *t = sm_tensor_new(2, shape);
    t->data[0] = 1.5f;
    t->data[1] = -2.0f;
    t->data[2] = 0.25f;
    char p[TDATA_PATH];
    tdata_path(p, dir, "w.npy");
    sm_err err = {0};
    cr_assert_eq(sm_npy_write(p, t, &err), 0, "%s", err.msg);
    size_t len;
    unsigned char *got = sm_file_read(p, 1 << 20, &len, &err);
    cr_assert_not_null(got);
    uint8_t want[512];
    size_t n = make_npy(want, 1,
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }",
                        three, 12);
    cr_assert_eq(len, n);
    cr_assert_eq((len - 12) % 64, 0, "data starts on a 64-byte boundary");
    cr_assert_arr_eq(got, want, n);
    free(got);
    sm_tensor_destroy(&t);
}

Test(npy, write_read_round_trip_shapes)
{
    const int64_t shapes[][4] = {{0}, {5}, {2, 3}, {2, 1, 4, 3}};
    const int ndims[] = {0, 1, 2, 4};
    for (int k = 0; k < 4; k++) {
        sm_tensor *t = sm_tensor_new(ndims[k], shapes[k]);
        for (int64_t i = 0; i < sm_tensor_numel(t); i++)
            t->data[i] = (float)i * 0.37f - 1.0f;
        char p[TDATA_PATH];
        tdata_path(p, dir, "r.npy");
        sm_err err = {0};
        cr_assert_eq(sm_npy_write(p, t, &err), 0, "%s", err.msg);
        sm_tensor *back = sm_npy_read(p, &err);
        cr_assert_not_null(back, "%s", err.msg);
        cr_assert(sm_shape_equal(t->ndim, t->shape, back->ndim, back->shape));
        cr_assert_arr_eq(back->data, t->data,
                         (size_t)sm_tensor_numel(t) * sizeof(float));
        sm_tensor_destroy(&t);
        sm_tensor_destroy(&back);
    }
}

/* The reader hands out the rows of the first dimension in order, in
 * pieces of any size, the same floats as one read of the whole file, and
 * refuses a piece past the end. */
Test(npy, reader_rows_in_pieces)
{
    const int64_t shape[3] = {7, 2, 3};
    sm_tensor *t = sm_tensor_new(3, shape);
    for (int64_t i = 0; i < sm_tensor_numel(t); i++)
        t->data[i] = (float)i * 0.37f - 1.0f;
    char p[TDATA_PATH];
    tdata_path(p, dir, "rows.npy");
    sm_err err = {0};
    cr_assert_eq(sm_npy_write(p, t, &err), 0, "%s", err.msg);
    sm_npy_reader *r = sm_npy_reader_open(p, &err);
    cr_assert_not_null(r, "%s", err.msg);
    int64_t got[SM_MAX_DIMS];
    cr_assert_eq(sm_npy_reader_shape(r, got), 3);
    cr_assert(sm_shape_equal(3, got, 3, shape));
    float back[42];
    const int64_t pieces[] = {3, 0, 1, 3};
    int64_t at = 0;
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(sm_npy_reader_rows_left(r), 7 - at);
        cr_assert_eq(sm_npy_reader_next(r, back + at * 6, pieces[k], &err), 0,
                     "%s", err.msg);
        at += pieces[k];
    }
    cr_assert_arr_eq(back, t->data, sizeof back);
    cr_assert_eq(sm_npy_reader_next(r, back, 1, &err), -1);
    cr_assert(strstr(err.msg, "rows.npy") && strstr(err.msg, "1 rows asked "
              "for, 0 left"), "%s", err.msg);
    sm_npy_reader_destroy(&r);
    cr_assert_null(r);
    /* a 0-d array is one row of one float */
    sm_tensor *s = sm_tensor_new(0, shape);
    s->data[0] = 2.5f;
    cr_assert_eq(sm_npy_write(p, s, &err), 0, "%s", err.msg);
    r = sm_npy_reader_open(p, &err);
    cr_assert_not_null(r, "%s", err.msg);
    cr_assert_eq(sm_npy_reader_shape(r, got), 0);
    cr_assert_eq(sm_npy_reader_rows_left(r), 1);
    cr_assert_eq(sm_npy_reader_next(r, back, 1, &err), 0, "%s", err.msg);
    cr_assert_eq(back[0], 2.5f);
    sm_npy_reader_destroy(&r);
    /* a refused file: no reader, the message names it */
    cr_assert_null(sm_npy_reader_open(tdata_path(p, dir, "none.npy"), &err));
    cr_assert(strstr(err.msg, "none.npy"), "%s", err.msg);
    sm_tensor_destroy(&s);
    sm_tensor_destroy(&t);
}

Test(npy, write_into_missing_folder_fails)
{
    const int64_t shape[1] = {2};
    sm_tensor *t = sm_tensor_new(1, shape);
    char p[TDATA_PATH];
    tdata_path(p, dir, "no/such/dir/x.npy");
    sm_err err = {0};
    cr_assert_eq(sm_npy_write(p, t, &err), -1);
    cr_assert(tdata_has(err.msg, p), "%s", err.msg);
    sm_tensor_destroy(&t);
}

/* Files NumPy wrote (tests/fixtures/npy/make_npy.py):
 * values = arange(6).reshape(2, 3) * 0.5 - 1. */
Test(npy, numpy_written_files)
{
    const char *ok[] = {"tests/fixtures/npy/f4_2x3.npy",
                        "tests/fixtures/npy/f4_2x3_v2.npy"};
    for (int k = 0; k < 2; k++) {
        sm_err err = {0};
        sm_tensor *t = sm_npy_read(ok[k], &err);
        cr_assert_not_null(t, "%s", err.msg);
        cr_assert_eq(t->ndim, 2);
        cr_assert_eq(t->shape[0], 2);
        cr_assert_eq(t->shape[1], 3);
        for (int i = 0; i < 6; i++)
            cr_assert_eq(t->data[i], i * 0.5f - 1.0f, "%s[%d]", ok[k], i);
        sm_tensor_destroy(&t);
    }
    sm_err err = {0};
    cr_assert_null(sm_npy_read("tests/fixtures/npy/f4_2x3_fortran.npy", &err));
    cr_assert(tdata_has(err.msg, "fortran_order True"), "%s", err.msg);
    cr_assert_null(sm_npy_read("tests/fixtures/npy/f8_2x3.npy", &err));
    cr_assert(tdata_has(err.msg, "'<f8'"), "%s", err.msg);
    cr_assert_null(sm_npy_read("tests/fixtures/npy/i4_2x3.npy", &err));
    cr_assert(tdata_has(err.msg, "'<i4'"), "%s", err.msg);
}
