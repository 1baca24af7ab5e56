/* Image decoding and preprocessing: known pixels written by libvips (or
 * byte by byte) must come back as the documented floats; broken files
 * must be refused by name. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>
#include <zlib.h>

#include "data/image.h"
#include "tdata.h"
#include "util/file.h"

TDATA_SUITE(image);

static void assert_near(const float *got, const float *want, size_t n,
                        float tol)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(fabsf(got[i] - want[i]) <= tol,
                  "element %zu: got %.6f, want %.6f", i, got[i], want[i]);
}

Test(image, grey_png_exact_values)
{
    uint8_t px[4 * 5];
    for (int i = 0; i < 20; i++)
        px[i] = (uint8_t)(i * 13);
    char p[TDATA_PATH];
    tdata_png(p, dir, "g.png", px, 5, 4, 1);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 4, 5);
    float got[20], want[20];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), 0, "%s", err.msg);
    for (int i = 0; i < 20; i++)
        want[i] = px[i] / 255.0f;
    assert_near(got, want, 20, 1e-6f);
}

Test(image, grey_to_three_channels)
{
    uint8_t px[6] = {0, 50, 100, 150, 200, 255};
    char p[TDATA_PATH];
    tdata_png(p, dir, "g.png", px, 3, 2, 1);
    sm_preproc pp;
    sm_preproc_init(&pp, 3, 2, 3);
    float got[18];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), 0, "%s", err.msg);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 6; i++)
            cr_assert_float_eq(got[c * 6 + i], px[i] / 255.0f, 1e-6,
                               "channel %d pixel %d", c, i);
}

Test(image, rgb_is_channel_major)
{
    /* 2x1: pure red, then (10, 20, 30) */
    uint8_t px[6] = {255, 0, 0, 10, 20, 30};
    char p[TDATA_PATH];
    tdata_png(p, dir, "c.png", px, 2, 1, 3);
    sm_preproc pp;
    sm_preproc_init(&pp, 3, 1, 2);
    pp.scale = 1.0f;
    float got[6];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), 0, "%s", err.msg);
    const float want[6] = {255, 10, 0, 20, 0, 30}; /* R plane, G, B */
    assert_near(got, want, 6, 1e-4f);
}

Test(image, neutral_rgb_to_grey_keeps_value)
{
    uint8_t px[9] = {0, 0, 0, 128, 128, 128, 255, 255, 255};
    char p[TDATA_PATH];
    tdata_png(p, dir, "n.png", px, 3, 1, 3);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 1, 3);
    pp.scale = 1.0f;
    float got[3];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), 0, "%s", err.msg);
    const float want[3] = {0, 128, 255};
    assert_near(got, want, 3, 1.0f); /* via linear light: within a level */
}

Test(image, alpha_is_dropped_not_flattened)
{
    /* RGBA with alpha 0: the colour must survive. */
    uint8_t px[8] = {200, 100, 50, 0, 10, 20, 30, 255};
    char p[TDATA_PATH];
    tdata_png(p, dir, "a.png", px, 2, 1, 4);
    sm_preproc pp;
    sm_preproc_init(&pp, 3, 1, 2);
    pp.scale = 1.0f;
    float got[6];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), 0, "%s", err.msg);
    const float want[6] = {200, 10, 100, 20, 50, 30};
    assert_near(got, want, 6, 1e-4f);

    /* grey + alpha from memory */
    uint8_t ga[4] = {77, 0, 99, 255};
    sm_preproc_init(&pp, 1, 1, 2);
    pp.scale = 1.0f;
    cr_assert_eq(sm_image_load_u8(ga, 2, 1, 2, "mem", &pp, got, &err), 0,
                 "%s", err.msg);
    const float want_g[2] = {77, 99};
    assert_near(got, want_g, 2, 1e-4f);
}

Test(image, scale_mean_std_order)
{
    uint8_t px[6] = {0, 51, 102, 153, 204, 255};
    char p[TDATA_PATH];
    tdata_png(p, dir, "c.png", px, 2, 1, 3);
    sm_preproc pp;
    sm_preproc_init(&pp, 3, 1, 2);
    pp.scale = 0.01f;
    const float mean[3] = {0.5f, -1.0f, 2.0f}, sd[3] = {2.0f, 0.5f, 4.0f};
    memcpy(pp.mean, mean, sizeof mean);
    memcpy(pp.std, sd, sizeof sd);
    float got[6], want[6];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), 0, "%s", err.msg);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 2; i++)
            want[c * 2 + i] = (px[i * 3 + c] * 0.01f - mean[c]) / sd[c];
    assert_near(got, want, 6, 1e-5f);
}

Test(image, resize_gives_exact_size_and_keeps_constants)
{
    uint8_t px[8 * 8];
    memset(px, 100, sizeof px);
    char p[TDATA_PATH];
    tdata_png(p, dir, "k.png", px, 8, 8, 1);
    sm_err err = {0};
    const int sizes[][2] = {{3, 5}, {7, 7}, {13, 2}, {1, 1}, {29, 31}};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int h = sizes[k][0], w = sizes[k][1];
        sm_preproc pp;
        sm_preproc_init(&pp, 1, h, w);
        pp.scale = 1.0f;
        float *got = malloc(sizeof(float) * (size_t)(h * w + 1));
        got[h * w] = -12345.0f; /* canary: nothing written past H x W */
        cr_assert_eq(sm_image_load_file(p, &pp, got, &err), 0, "%s", err.msg);
        for (int i = 0; i < h * w; i++)
            cr_assert_float_eq(got[i], 100.0f, 0.01f, "%dx%d pixel %d", w, h,
                               i);
        cr_assert_eq(got[h * w], -12345.0f);
        free(got);
    }
}

Test(image, large_file_decoded_from_the_file_and_from_memory_alike)
{
    /* Past 16 MiB a file is decoded from the file, below from memory read
     * whole: an uncompressed TIFF of constant 123 either side of that
     * size must give 123 everywhere (resize keeps constants). */
    const int sides[] = {1024, 4200};
    float got[2][4];
    for (int k = 0; k < 2; k++) {
        const int n = sides[k];
        uint8_t *px = malloc((size_t)n * n);
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++)
                px[(size_t)y * n + x] = 123;
        VipsImage *im = vips_image_new_from_memory(px, (size_t)n * n, n, n, 1,
                                                   VIPS_FORMAT_UCHAR);
        char p[TDATA_PATH];
        snprintf(p, sizeof p, "%s/big%d.tif", dir, n);
        cr_assert(im && vips_tiffsave(im, p, "compression",
                                      VIPS_FOREIGN_TIFF_COMPRESSION_NONE, NULL) == 0,
                  "%s", vips_error_buffer());
        g_object_unref(im);
        free(px);
        FILE *f = fopen(p, "rb");
        cr_assert(f);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fclose(f);
        cr_assert(k == 0 ? size < (16L << 20) : size > (16L << 20), "%ld", size);
        sm_preproc pp;
        sm_preproc_init(&pp, 1, 2, 2);
        pp.scale = 1.0f;
        sm_err err = {0};
        cr_assert_eq(sm_image_load_file(p, &pp, got[k], &err), 0, "%s", err.msg);
        remove(p);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++)
            cr_assert_float_eq(got[k][i], 123.0f, 0.01f,
                               "side %d pixel %d: %g", sides[k], i, got[k][i]);
}

Test(image, resize_stretches_left_right_halves)
{
    /* 4x2: left half 0, right half 255, stretched to 8x3: the outer columns
     * keep their side's value. */
    uint8_t px[8] = {0, 0, 255, 255, 0, 0, 255, 255};
    char p[TDATA_PATH];
    tdata_png(p, dir, "h.png", px, 4, 2, 1);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 3, 8);
    pp.scale = 1.0f;
    float got[24];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), 0, "%s", err.msg);
    for (int y = 0; y < 3; y++) {
        cr_assert_float_eq(got[y * 8], 0.0f, 1.0f);
        cr_assert_float_eq(got[y * 8 + 7], 255.0f, 1.0f);
        for (int x = 0; x < 8; x++)
            cr_assert(got[y * 8 + x] >= 0.0f && got[y * 8 + x] <= 255.0f,
                      "clamped to 0..255");
    }
}

Test(image, sixteen_bit_png_maps_to_eight_bit_range)
{
    uint16_t px[2] = {0, 65535};
    char p[TDATA_PATH];
    tdata_path(p, dir, "w.png");
    VipsImage *im = vips_image_new_from_memory(px, sizeof px, 2, 1, 1,
                                               VIPS_FORMAT_USHORT);
    VipsImage *t;
    cr_assert_eq(vips_copy(im, &t, "interpretation",
                           VIPS_INTERPRETATION_GREY16, NULL), 0);
    cr_assert_eq(vips_pngsave(t, p, NULL), 0, "%s", vips_error_buffer());
    g_object_unref(t);
    g_object_unref(im);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 1, 2);
    float got[2];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), 0, "%s", err.msg);
    cr_assert_float_eq(got[0], 0.0f, 1e-6);
    cr_assert_float_eq(got[1], 1.0f, 1e-6);
}

Test(image, bracket_in_file_name_is_not_an_option)
{
    uint8_t px[1] = {42};
    char p[TDATA_PATH];
    tdata_png(p, dir, "odd[name].png", px, 1, 1, 1);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 1, 1);
    pp.scale = 1.0f;
    float got[1];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), 0, "%s", err.msg);
    cr_assert_float_eq(got[0], 42.0f, 1e-6);
}

Test(image, save_png_round_trip)
{
    uint8_t px[3 * 2 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 17 + 3);
    char p[TDATA_PATH];
    tdata_path(p, dir, "s.png");
    sm_err err = {0};
    cr_assert_eq(sm_image_save_png_u8(p, px, 3, 2, 3, &err), 0, "%s",
                 err.msg);
    VipsImage *im = vips_image_new_from_file(p, NULL);
    cr_assert_not_null(im);
    cr_assert_eq(im->Xsize, 3);
    cr_assert_eq(im->Ysize, 2);
    cr_assert_eq(im->Bands, 3);
    cr_assert_eq(im->BandFmt, VIPS_FORMAT_UCHAR);
    size_t len;
    uint8_t *back = vips_image_write_to_memory(im, &len);
    cr_assert_eq(len, sizeof px);
    cr_assert_arr_eq(back, px, sizeof px);
    g_free(back);
    g_object_unref(im);

    cr_assert_neq(sm_image_save_png_u8("/nonexistent-dir/x.png", px, 3, 2, 3,
                                       &err), 0);
    cr_assert(tdata_has(err.msg, "/nonexistent-dir/x.png"), "%s", err.msg);
}

Test(image, missing_file_is_named)
{
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 2, 2);
    float got[4];
    sm_err err = {0};
    char p[TDATA_PATH];
    tdata_path(p, dir, "none.png");
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), -1);
    cr_assert(tdata_has(err.msg, p), "%s", err.msg);
    cr_assert(tdata_has(err.msg, "No such file"), "%s", err.msg);
    cr_assert_eq(sm_image_load_file(dir, &pp, got, &err), -1);
    cr_assert(tdata_has(err.msg, "not a regular file"), "%s", err.msg);
}

Test(image, not_an_image_is_refused)
{
    /* a file of text, and an empty one: each named, with why */
    const char *const names[] = {"fake.png", "empty.png"};
    const char *const texts[] = {"this is not a picture at all\n", ""};
    const char *const why[] = {"not an image format",
                               "an empty file, not an image"};
    for (int k = 0; k < 2; k++) {
        char p[TDATA_PATH];
        tdata_text(p, dir, names[k], texts[k]);
        sm_preproc pp;
        sm_preproc_init(&pp, 1, 2, 2);
        float got[4];
        sm_err err = {0};
        cr_assert_eq(sm_image_load_file(p, &pp, got, &err), -1);
        cr_assert(tdata_has(err.msg, p), "%s", err.msg);
        cr_assert(tdata_has(err.msg, why[k]), "%s", err.msg);
    }
}

Test(image, untrusted_loader_is_disabled)
{
    /* A valid PGM: libvips's PPM loader is flagged untrusted. */
    char p[TDATA_PATH];
    tdata_text(p, dir, "x.pgm", "P2\n2 1\n255\n0 255\n");
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 1, 2);
    float got[2];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), -1);
    cr_assert(tdata_has(err.msg, "untrusted"), "%s", err.msg);
}

Test(image, truncated_png_is_refused)
{
    uint8_t px[64 * 64];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7919 >> 3);
    char p[TDATA_PATH];
    tdata_png(p, dir, "t.png", px, 64, 64, 1);
    size_t len;
    sm_err err = {0};
    unsigned char *buf = sm_file_read(p, 1 << 20, &len, &err);
    cr_assert_not_null(buf);
    tdata_write(p, dir, "cut.png", buf, len / 2);
    free(buf);
    sm_preproc pp;
    sm_preproc_init(&pp, 1, 64, 64);
    float *got = malloc(sizeof(float) * 64 * 64);
    cr_assert_eq(sm_image_load_file(p, &pp, got, &err), -1);
    cr_assert(tdata_has(err.msg, "cut.png"), "%s", err.msg);
    free(got);
}

/* A PNG chunk: length, type, data, CRC over type + data. */
static size_t chunk(uint8_t *out, const char *type, const uint8_t *data,
                    uint32_t n)
{
    out[0] = (uint8_t)(n >> 24);
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    memcpy(out + 4, type, 4);
    if (n)
        memcpy(out + 8, data, n);
    uLong crc = crc32(0, out + 4, 4 + n);
    out[8 + n] = (uint8_t)(crc >> 24);
    out[9 + n] = (uint8_t)(crc >> 16);
    out[10 + n] = (uint8_t)(crc >> 8);
    out[11 + n] = (uint8_t)crc;
    return 12 + n;
}

Test(image, huge_image_refused_from_its_header)
{
    /* IHDR says 10000 x 10000 grey (100 Mpixel), then 100000 x 100000
     * (10 Gpixel: libpng's own limit is 1000000 a side); the pixel data
     * is a few bytes, so only a header check can refuse it cleanly. */
    static const uint8_t sides[2][4] = {{0, 0, 0x27, 0x10},
                                        {0, 0x01, 0x86, 0xa0}};
    for (int s = 0; s < 2; s++) {
        uint8_t f[128];
        size_t n = 0;
        memcpy(f, "\x89PNG\r\n\x1a\n", 8);
        n = 8;
        uint8_t ihdr[13] = {0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0};
        memcpy(ihdr, sides[s], 4);
        memcpy(ihdr + 4, sides[s], 4);
        n += chunk(f + n, "IHDR", ihdr, 13);
        const uint8_t idat[4] = {0x78, 0x9c, 0x03, 0x00};
        n += chunk(f + n, "IDAT", idat, 4);
        n += chunk(f + n, "IEND", NULL, 0);
        char p[TDATA_PATH];
        tdata_write(p, dir, "huge.png", f, n);
        sm_preproc pp;
        sm_preproc_init(&pp, 1, 2, 2);
        float got[4];
        sm_err err = {0};
        cr_assert_eq(sm_image_load_file(p, &pp, got, &err), -1);
        cr_assert(tdata_has(err.msg, "huge.png"), "%s", err.msg);
        cr_assert(tdata_has(err.msg, "larger than the limit"), "%s", err.msg);
        cr_assert(tdata_has(err.msg, s ? "100000x100000" : "10000x10000"),
                  "%s", err.msg);
        cr_assert_eq(sm_image_load_buffer(f, n, "huge", &pp, got, &err), -1);
        cr_assert(tdata_has(err.msg, "larger than the limit"), "%s", err.msg);
    }
}

Test(image, bad_preprocessing_refused)
{
    uint8_t px[1] = {0};
    float got[4];
    sm_err err = {0};
    sm_preproc pp;
    sm_preproc_init(&pp, 2, 1, 1);
    cr_assert_eq(sm_image_load_u8(px, 1, 1, 1, "mem", &pp, got, &err), -1);
    cr_assert(tdata_has(err.msg, "channels must be 1 or 3"), "%s", err.msg);
    sm_preproc_init(&pp, 1, 1, 1);
    pp.std[0] = 0;
    cr_assert_eq(sm_preproc_check(&pp, &err), -1);
    cr_assert(tdata_has(err.msg, "std[0]"), "%s", err.msg);
    sm_preproc_init(&pp, 1, 0, 1);
    cr_assert_eq(sm_preproc_check(&pp, &err), -1);
    sm_preproc_init(&pp, 3, 224, 224);
    cr_assert_eq(sm_preproc_check(&pp, &err), 0);
    cr_assert_float_eq(pp.scale, 1.0f / 255.0f, 1e-9);
}

Test(image, vips_init_twice)
{
    sm_err err = {0};
    cr_assert_eq(sm_vips_init(NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_vips_init("again", &err), 0, "%s", err.msg);
}
