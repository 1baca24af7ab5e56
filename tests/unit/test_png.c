/* data/png.c: the PNGs it takes must give, byte for byte, the samples
 * libvips decodes from them (written by libvips's saver from known
 * pixels, decoded again by libvips in the test); every other PNG, and
 * every damaged one, must be left to libvips, whose result (floats or a
 * named error) sm_image_load_* then gives. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>
#include <zlib.h>

#include "data/image.h"
#include "data/png.h"
#include "tdata.h"

TDATA_SUITE(png);

#define W 7
#define H 5

/* bands x W x H pixels of a pattern in which every sample differs from
 * its neighbours (so that a swapped band, row or column shows). */
static void pattern(uint8_t *px, int bands)
{
    for (int i = 0; i < W * H * bands; i++)
        px[i] = (uint8_t)(i * 37 + 11);
}

/* px encoded by libvips's PNG saver with the options given (NULL-ended
 * name/value pairs as vips_pngsave_buffer takes them): g_free'd bytes. */
static void *encode(const uint8_t *px, int bands, VipsBandFormat fmt,
                    size_t *len, const char *opt, int val)
{
    VipsImage *im = vips_image_new_from_memory(
        px, (size_t)W * H * bands * (fmt == VIPS_FORMAT_USHORT ? 2 : 1), W, H,
        bands, fmt);
    cr_assert_not_null(im);
    void *buf = NULL;
    int rc = opt ? vips_pngsave_buffer(im, &buf, len, opt, val, NULL)
                 : vips_pngsave_buffer(im, &buf, len, NULL);
    cr_assert_eq(rc, 0, "pngsave: %s", vips_error_buffer());
    g_object_unref(im);
    return buf;
}

/* libvips's decoding of buf, its bands and samples into out (W x H x
 * bands). */
static int vips_samples(const void *buf, size_t len, uint8_t *out)
{
    VipsImage *im = vips_image_new_from_buffer(buf, len, "", NULL);
    cr_assert_not_null(im, "%s", vips_error_buffer());
    size_t n = 0;
    uint8_t *mem = vips_image_write_to_memory(im, &n);
    int bands = im->Bands;
    cr_assert_eq(n, (size_t)W * H * bands);
    memcpy(out, mem, n);
    g_free(mem);
    g_object_unref(im);
    return bands;
}

Test(png, grey_and_rgb_with_or_without_alpha_give_libvips_samples)
{
    const struct {
        int bands, channels;
    } kinds[] = {{1, 1}, {2, 1}, {3, 3}, {4, 3}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (int interlace = 0; interlace < 2; interlace++) {
            const int b = kinds[k].bands, c = kinds[k].channels;
            uint8_t px[W * H * 4], ref[W * H * 4], got[W * H * 3];
            pattern(px, b);
            size_t len = 0;
            void *buf = encode(px, b, VIPS_FORMAT_UCHAR, &len,
                               interlace ? "interlace" : NULL, 1);
            cr_assert_eq(sm_png_read_u8(buf, len, W, H, c, got), 0,
                         "%d bands, interlaced %d", b, interlace);
            cr_assert_eq(vips_samples(buf, len, ref), b);
            for (int i = 0; i < W * H; i++)
                for (int j = 0; j < c; j++) {
                    cr_assert_eq(got[i * c + j], ref[i * b + j],
                                 "%d bands, interlaced %d: pixel %d band %d",
                                 b, interlace, i, j);
                    cr_assert_eq(got[i * c + j], px[i * b + j]);
                }
            /* and the floats: the documented formula on those samples */
            sm_preproc pp;
            sm_preproc_init(&pp, c, H, W);
            pp.scale = 1.0f / 255.0f;
            pp.mean[0] = 0.25f, pp.std[0] = 0.5f;
            float f[W * H * 3];
            sm_err err = {0};
            cr_assert_eq(sm_image_load_buffer(buf, len, "mem", &pp, f, &err),
                         0, "%s", err.msg);
            for (int j = 0; j < c; j++)
                for (int i = 0; i < W * H; i++) {
                    float v = (float)px[i * b + j];
                    float want = (v * pp.scale - pp.mean[j]) * (1.0f / pp.std[j]);
                    cr_assert_eq(f[j * W * H + i], want, "band %d pixel %d",
                                 j, i);
                }
            g_free(buf);
        }
}

Test(png, what_needs_converting_is_left_to_libvips)
{
    uint8_t px[W * H * 2 * 3], got[W * H * 3];
    pattern(px, 2 * 3);
    size_t len = 0;
    /* 16 bits */
    void *buf = encode(px, 1, VIPS_FORMAT_USHORT, &len, "bitdepth", 16);
    cr_assert_eq(sm_png_read_u8(buf, len, W, H, 1, got), -1);
    g_free(buf);
    /* a palette */
    buf = encode(px, 3, VIPS_FORMAT_UCHAR, &len, "palette", 1);
    cr_assert_eq(sm_png_read_u8(buf, len, W, H, 3, got), -1);
    g_free(buf);
    /* grey asked as RGB, RGB as grey, another size */
    buf = encode(px, 1, VIPS_FORMAT_UCHAR, &len, NULL, 0);
    cr_assert_eq(sm_png_read_u8(buf, len, W, H, 3, got), -1);
    cr_assert_eq(sm_png_read_u8(buf, len, W - 1, H, 1, got), -1);
    cr_assert_eq(sm_png_read_u8(buf, len, W, H + 1, 1, got), -1);
    cr_assert_eq(sm_png_read_u8(buf, len, W, H, 1, got), 0);
    /* not a PNG: its first bytes cut */
    cr_assert_eq(sm_png_read_u8((const char *)buf + 1, len - 1, W, H, 1, got),
                 -1);
    g_free(buf);
    buf = encode(px, 3, VIPS_FORMAT_UCHAR, &len, NULL, 0);
    cr_assert_eq(sm_png_read_u8(buf, len, W, H, 1, got), -1);
    g_free(buf);
    /* an RGB image asked as grey still comes out, through libvips */
    sm_preproc pp;
    sm_preproc_init(&pp, 1, H, W);
    uint8_t grey[W * H];
    for (int i = 0; i < W * H; i++)
        grey[i] = px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = (uint8_t)(i * 5);
    buf = encode(px, 3, VIPS_FORMAT_UCHAR, &len, NULL, 0);
    float f[W * H];
    sm_err err = {0};
    cr_assert_eq(sm_image_load_buffer(buf, len, "mem", &pp, f, &err), 0, "%s",
                 err.msg);
    for (int i = 0; i < W * H; i++) /* a neutral colour keeps its value */
        cr_assert_float_eq(f[i], grey[i] / 255.0f, 1.5f / 255.0f, "pixel %d",
                           i);
    g_free(buf);
}

/* The offset of the first chunk of `type` in a PNG, or 0. */
static size_t find_chunk(const uint8_t *png, size_t len, const char *type)
{
    for (size_t at = 8; at + 12 <= len;) {
        uint32_t n = (uint32_t)png[at] << 24 | (uint32_t)png[at + 1] << 16 |
                     (uint32_t)png[at + 2] << 8 | png[at + 3];
        if (!memcmp(png + at + 4, type, 4))
            return at;
        at += 12 + (size_t)n;
    }
    return 0;
}

Test(png, damaged_files_are_left_to_libvips_and_refused_by_name)
{
    uint8_t px[W * H];
    pattern(px, 1);
    size_t len = 0;
    uint8_t *buf = encode(px, 1, VIPS_FORMAT_UCHAR, &len, NULL, 0);
    uint8_t got[W * H];
    sm_preproc pp;
    sm_preproc_init(&pp, 1, H, W);
    float f[W * H];
    const size_t idat = find_chunk(buf, len, "IDAT");
    cr_assert(idat > 0);
    /* a flipped bit in the compressed pixels: IDAT's CRC fails */
    uint8_t *bad = malloc(len);
    memcpy(bad, buf, len);
    bad[idat + 8 + 2] ^= 0x10;
    cr_assert_eq(sm_png_read_u8(bad, len, W, H, 1, got), -1);
    sm_err err = {0};
    cr_assert_eq(sm_image_load_buffer(bad, len, "flipped.png", &pp, f, &err),
                 -1);
    cr_assert(tdata_has(err.msg, "flipped.png"), "%s", err.msg);
    /* cut anywhere: in the header or the pixels, refused; after the
     * pixels (IEND cut or missing), libvips decides, and takes them */
    const size_t cuts[] = {20, idat + 10, len - 12, len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        cr_assert_eq(sm_png_read_u8(buf, cuts[k], W, H, 1, got), -1,
                     "cut at %zu of %zu", cuts[k], len);
        memset(&err, 0, sizeof err);
        int rc = sm_image_load_buffer(buf, cuts[k], "cut.png", &pp, f, &err);
        if (k < 2 || rc) {
            cr_assert_eq(rc, -1, "cut at %zu of %zu", cuts[k], len);
            cr_assert(tdata_has(err.msg, "cut.png"), "%s", err.msg);
        } else {
            for (int i = 0; i < W * H; i++)
                cr_assert_eq(f[i], (float)px[i] * (1.0f / 255.0f));
        }
    }
    /* an ancillary chunk's CRC broken: libpng only warns, and the file
     * then goes to libvips, which decides */
    const size_t iend = find_chunk(buf, len, "IEND");
    uint8_t *anc = malloc(len + 16);
    memcpy(anc, buf, iend);
    const uint8_t text[16] = {0, 0, 0, 4, 't', 'E', 'X', 't',
                              'a', 0,   'b', 'c', 0, 0, 0, 0};
    memcpy(anc + iend, text, sizeof text); /* CRC left zero */
    memcpy(anc + iend + sizeof text, buf + iend, len - iend);
    cr_assert_eq(sm_png_read_u8(anc, len + 16, W, H, 1, got), -1);
    /* and the same tEXt with its CRC right is read here */
    uLong crc = crc32(0, anc + iend + 4, 8);
    anc[iend + 12] = (uint8_t)(crc >> 24), anc[iend + 13] = (uint8_t)(crc >> 16);
    anc[iend + 14] = (uint8_t)(crc >> 8), anc[iend + 15] = (uint8_t)crc;
    cr_assert_eq(sm_png_read_u8(anc, len + 16, W, H, 1, got), 0);
    cr_assert_eq(memcmp(got, px, sizeof px), 0);
    free(anc);
    free(bad);
    g_free(buf);
}

Test(png, pixels_in_memory_at_the_models_size_give_libvips_floats)
{
    /* sm_image_load_u8 skips libvips when the pixels need nothing: the
     * floats must be those of the same pixels taken through it (given as
     * a PNG of a size that needs no resize but one band more, whose alpha
     * libvips drops) */
    for (int c = 1; c <= 3; c += 2) {
        uint8_t px[W * H * 3], pa[W * H * 4];
        pattern(px, c);
        for (int i = 0; i < W * H; i++) {
            memcpy(pa + i * (c + 1), px + i * c, (size_t)c);
            pa[i * (c + 1) + c] = (uint8_t)(255 - i);
        }
        sm_preproc pp;
        sm_preproc_init(&pp, c, H, W);
        for (int j = 0; j < c; j++)
            pp.mean[j] = 0.1f * (float)(j + 1), pp.std[j] = 0.3f;
        float fast[W * H * 3], slow[W * H * 3];
        sm_err err = {0};
        cr_assert_eq(sm_image_load_u8(px, W, H, c, "mem", &pp, fast, &err), 0,
                     "%s", err.msg);
        cr_assert_eq(sm_image_load_u8(pa, W, H, c + 1, "mem", &pp, slow, &err),
                     0, "%s", err.msg);
        cr_assert_eq(memcmp(fast, slow, sizeof(float) * (size_t)(W * H * c)), 0,
                     "%d channels", c);
    }
}
