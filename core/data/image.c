#include "data/image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <vips/vips.h>

#include "data/png.h"
#include "util/file.h"

void sm_preproc_init(sm_preproc *pp, int channels, int height, int width)
{
    memset(pp, 0, sizeof *pp);
    pp->channels = channels;
    pp->height = height;
    pp->width = width;
    pp->scale = 1.0f / 255.0f;
    for (int c = 0; c < 3; c++)
        pp->std[c] = 1.0f;
}

int sm_preproc_check(const sm_preproc *pp, sm_err *err)
{
    if (pp->channels != 1 && pp->channels != 3)
        return sm_err_set(err, "preprocessing: channels must be 1 or 3, not %d",
                          pp->channels);
    if (pp->height <= 0 || pp->width <= 0 ||
        (int64_t)pp->height * pp->width > SM_IMAGE_MAX_PIXELS)
        return sm_err_set(err, "preprocessing: bad input size %dx%d",
                          pp->width, pp->height);
    if (!isfinite(pp->scale))
        return sm_err_set(err, "preprocessing: scale is not a finite number");
    for (int c = 0; c < pp->channels; c++) {
        if (!isfinite(pp->mean[c]))
            return sm_err_set(err, "preprocessing: mean[%d] is not finite", c);
        if (!isfinite(pp->std[c]) || !(pp->std[c] > 0))
            return sm_err_set(err, "preprocessing: std[%d] must be > 0", c);
    }
    return 0;
}

int sm_vips_init(const char *argv0, sm_err *err)
{
    /* vips_init returns at once when libvips already runs. */
    if (VIPS_INIT(argv0 ? argv0 : "salmap")) {
        sm_err_set(err, "libvips: cannot start: %s", vips_error_buffer());
        vips_error_clear();
        return -1;
    }
    vips_block_untrusted_set(TRUE);
    return 0;
}

/* libvips keeps its messages in one process-wide, multi-line buffer: take
 * them as one line, and clear the buffer for the next error. */
static void take_vips_error(char *msg, size_t n)
{
    size_t j = 0;
    for (const char *p = vips_error_buffer(); *p && j + 3 < n; p++) {
        if (*p != '\n')
            msg[j++] = *p;
        else if (p[1]) {
            msg[j++] = ';';
            msg[j++] = ' ';
        }
    }
    msg[j] = '\0';
    vips_error_clear();
}

static int vips_fail(sm_err *err, const char *what)
{
    char msg[SM_ERR_MAX];
    take_vips_error(msg, sizeof msg);
    return sm_err_set(err, "%s: %s", what, msg[0] ? msg : "libvips failed");
}

/* Row y of the result from its pixels' interleaved samples, 8-bit (u8)
 * or float (f): clamped to 0..255, scaled, centred. Every decoding path
 * ends here, so that the same samples give the same floats. */
static void put_row(const sm_preproc *pp, int y, const uint8_t *u8,
                    const float *f, float *dst)
{
    const int nc = pp->channels;
    const size_t plane = (size_t)pp->height * pp->width;
    for (int c = 0; c < nc; c++) {
        float *out = dst + (size_t)c * plane + (size_t)y * pp->width;
        float m = pp->mean[c], inv = 1.0f / pp->std[c];
        for (int i = 0; i < pp->width; i++) {
            int k = i * nc + c;
            float v = f ? f[k] : (float)u8[k];
            /* Lanczos overshoots; 8-bit images cannot. */
            v = v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
            out[i] = (v * pp->scale - m) * inv;
        }
    }
}

/* pixels (pp's size, pp->channels bands of 8 bits, interleaved) as
 * preprocessing leaves them: what libvips computes for such an image,
 * without it. */
static void put_u8(const sm_preproc *pp, const uint8_t *pixels, float *dst)
{
    const size_t row = (size_t)pp->width * (size_t)pp->channels;
    for (int y = 0; y < pp->height; y++)
        put_row(pp, y, pixels + (size_t)y * row, NULL, dst);
}

/* Files up to this size are read whole before decoding. */
#define SM_IMAGE_READ_WHOLE ((off_t)16 << 20)

/* The common pipeline after decoding; `in` is only read. */
static int preprocess(VipsImage *in, const sm_preproc *pp, float *dst,
                      const char *what, sm_err *err)
{
    if ((int64_t)in->Xsize * in->Ysize > SM_IMAGE_MAX_PIXELS)
        return sm_err_set(err, "%s: %dx%d image is larger than the limit of "
                          "%lld pixels", what, in->Xsize, in->Ysize,
                          (long long)SM_IMAGE_MAX_PIXELS);
    if (in->Bands > 5)
        return sm_err_set(err, "%s: %d bands: only grey, RGB, CMYK and "
                          "their alpha versions are supported", what,
                          in->Bands);

    /* Every intermediate image belongs to `scope` and goes with it. */
    VipsObject *scope = VIPS_OBJECT(vips_image_new());
    VipsImage **t = (VipsImage **)vips_object_local_array(scope, 6);
    VipsImage *x = in;
    int rc = -1;

    if (vips_image_hasalpha(x)) {
        if (vips_extract_band(x, &t[0], 0, "n", x->Bands - 1, NULL))
            goto vips_error;
        x = t[0];
    }
    /* Each libvips operation costs tens of microseconds, as much as
     * decoding a small PNG: skip those that would change nothing. */
    VipsInterpretation ty = x->Type;
    int ready = x->BandFmt == VIPS_FORMAT_UCHAR &&
                ((pp->channels == 1 && x->Bands == 1) ||
                 (pp->channels == 3 && x->Bands == 3 &&
                  (ty == VIPS_INTERPRETATION_sRGB ||
                   ty == VIPS_INTERPRETATION_RGB ||
                   ty == VIPS_INTERPRETATION_MULTIBAND)));
    if (!ready) {
        /* Files may carry a missing or odd interpretation (MULTIBAND,
         * HISTOGRAM...) that vips_colourspace would refuse. */
        VipsInterpretation guess = vips_image_guess_interpretation(x);
        if (guess != x->Type) {
            if (vips_copy(x, &t[1], "interpretation", guess, NULL))
                goto vips_error;
            x = t[1];
        }
        if (!vips_colourspace_issupported(x)) {
            sm_err_set(err, "%s: cannot convert from colour space %s", what,
                       vips_enum_nick(VIPS_TYPE_INTERPRETATION, x->Type));
            goto done;
        }
        VipsInterpretation want = pp->channels == 1 ? VIPS_INTERPRETATION_B_W
                                                    : VIPS_INTERPRETATION_sRGB;
        if (vips_colourspace(x, &t[2], want, NULL))
            goto vips_error;
        x = t[2];
        if (x->BandFmt != VIPS_FORMAT_UCHAR) {
            /* e.g. a float TIFF tagged B_W: take it as 0..255 values. */
            if (vips_cast(x, &t[3], VIPS_FORMAT_UCHAR, NULL))
                goto vips_error;
            x = t[3];
        }
        if (x->Bands != pp->channels) {
            sm_err_set(err, "%s: %d bands after colour conversion, expected "
                       "%d", what, x->Bands, pp->channels);
            goto done;
        }
    }
    if (x->Xsize != pp->width || x->Ysize != pp->height) {
        /* Resize in float so that no second rounding to 8 bits happens. */
        if (vips_cast_float(x, &t[4], NULL) ||
            vips_resize(t[4], &t[5], (double)pp->width / x->Xsize, "vscale",
                        (double)pp->height / x->Ysize, NULL))
            goto vips_error;
        x = t[5];
        if (x->Xsize != pp->width || x->Ysize != pp->height) {
            sm_err_set(err, "%s: resize gave %dx%d instead of %dx%d", what,
                       x->Xsize, x->Ysize, pp->width, pp->height);
            goto done;
        }
    }
    if (x->Bands != pp->channels || (x->BandFmt != VIPS_FORMAT_UCHAR &&
                                     x->BandFmt != VIPS_FORMAT_FLOAT)) {
        sm_err_set(err, "%s: decoded %d bands of format %s, expected %d of "
                   "uchar or float", what, x->Bands,
                   vips_enum_nick(VIPS_TYPE_BAND_FORMAT, x->BandFmt),
                   pp->channels);
        goto done;
    }
    /* The whole image computed on this thread as one region: a write to
     * memory would start libvips's thread pool for every small image and
     * cost a third more. */
    VipsRegion *reg = vips_region_new(x);
    VipsRect all = {0, 0, x->Xsize, x->Ysize};
    if (!reg)
        goto vips_error;
    if (vips_region_prepare(reg, &all)) {
        g_object_unref(reg);
        goto vips_error;
    }
    const int is_float = x->BandFmt == VIPS_FORMAT_FLOAT;
    for (int y = 0; y < pp->height; y++) {
        const VipsPel *row = VIPS_REGION_ADDR(reg, 0, y);
        put_row(pp, y, is_float ? NULL : row,
                is_float ? (const float *)(const void *)row : NULL, dst);
    }
    g_object_unref(reg);
    rc = 0;
    goto done;
vips_error:
    vips_fail(err, what);
done:
    g_object_unref(scope);
    return rc;
}

/* Decodes src (told by content, not by any name) and preprocesses it;
 * errors name `what`. Takes over the caller's reference to src. */
static int load_source(VipsSource *src, const char *what, const sm_preproc *pp,
                       float *dst, sm_err *err)
{
    /* fail_on error: a truncated or corrupt file is an error, not an
     * image padded with grey. */
    VipsImage *im = vips_image_new_from_source(
        src, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
        VIPS_FAIL_ON_ERROR, NULL);
    if (!im) {
        /* Say why in words, not in libvips's loader-internal terms. */
        char why[SM_ERR_MAX];
        take_vips_error(why, sizeof why);
        const char *loader = vips_foreign_find_load_source(src);
        vips_error_clear();
        VIPS_UNREF(src);
        if (!loader)
            return sm_err_set(err, "%s: not an image format libvips reads",
                              what);
        if (strstr(why, "blocked"))
            return sm_err_set(err, "%s: its format's loader (%s) is disabled "
                              "as untrusted (sm_vips_init)", what, loader);
        return sm_err_set(err, "%s: %s", what, why[0] ? why : "cannot load");
    }
    VIPS_UNREF(src);
    int rc = preprocess(im, pp, dst, what, err);
    g_object_unref(im);
    return rc;
}

int sm_image_load_file(const char *path, const sm_preproc *pp, float *dst,
                       sm_err *err)
{
    if (sm_preproc_check(pp, err))
        return sm_err_prefix(err, "%s", path);
    struct stat st;
    if (stat(path, &st) != 0)
        return sm_err_set(err, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return sm_err_set(err, "%s: not a regular file", path);

    if (st.st_size == 0)
        return sm_err_set(err, "%s: an empty file, not an image", path);
    if (st.st_size <= SM_IMAGE_READ_WHOLE) {
        /* Read in one go and decoded from memory: a file source opens the
         * file three to four times (libvips sniffs the format by name and
         * reopens a minimised source to decode), which costs a small
         * image as much as its decoding. */
        size_t len = 0;
        unsigned char *bytes = sm_file_read(path, SM_IMAGE_READ_WHOLE, &len,
                                            err);
        if (!bytes)
            return -1;
        int rc = sm_image_load_buffer(bytes, len, path, pp, dst, err);
        free(bytes);
        return rc;
    }
    /* A source, not vips_image_new_from_file, so that a '[' in a file name
     * is not taken for libvips load options, and the format comes from
     * the content, not the extension. */
    VipsSource *src = vips_source_new_from_file(path);
    if (!src)
        return vips_fail(err, path);
    return load_source(src, path, pp, dst, err);
}

int sm_image_load_buffer(const void *buf, size_t len, const char *what,
                         const sm_preproc *pp, float *dst, sm_err *err)
{
    what = what ? what : "image in memory";
    if (sm_preproc_check(pp, err))
        return sm_err_prefix(err, "%s", what);
    if (!buf || !len)
        return sm_err_set(err, "%s: no bytes to decode", what);
    /* The dataset's common case by libpng alone (data/png.h) */
    uint8_t *pixels = malloc((size_t)pp->height * (size_t)pp->width *
                             (size_t)pp->channels);
    if (!pixels)
        return sm_err_set(err, "%s: out of memory", what);
    int fast = sm_png_read_u8(buf, len, pp->width, pp->height, pp->channels,
                              pixels) == 0;
    if (fast)
        put_u8(pp, pixels, dst);
    free(pixels);
    if (fast)
        return 0;
    /* A source over the caller's memory (not copied; it outlives the
     * image, which is gone when this returns), decoded exactly as a file
     * with the same bytes. */
    VipsSource *src = vips_source_new_from_memory(buf, len);
    if (!src)
        return vips_fail(err, what);
    return load_source(src, what, pp, dst, err);
}

/* An image over caller memory; tagged grey or sRGB when `tag` (which
 * alpha detection needs), else left MULTIBAND, which the PNG saver takes
 * as is and which saves an operation per image. */
static VipsImage *wrap_u8(const uint8_t *pixels, int width, int height,
                          int bands, int tag, const char *what, sm_err *err)
{
    if (width <= 0 || height <= 0 || bands < 1 || bands > 4 ||
        (int64_t)width * height > SM_IMAGE_MAX_PIXELS) {
        sm_err_set(err, "%s: bad image shape %dx%dx%d", what, width, height,
                   bands);
        return NULL;
    }
    VipsImage *raw = vips_image_new_from_memory(
        pixels, (size_t)width * height * bands, width, height, bands,
        VIPS_FORMAT_UCHAR);
    if (!raw) {
        vips_fail(err, what);
        return NULL;
    }
    if (!tag)
        return raw;
    VipsImage *im = NULL;
    if (vips_copy(raw, &im, "interpretation",
                  bands <= 2 ? VIPS_INTERPRETATION_B_W
                             : VIPS_INTERPRETATION_sRGB, NULL)) {
        vips_fail(err, what);
        im = NULL;
    }
    g_object_unref(raw);
    return im;
}

int sm_image_load_u8(const uint8_t *pixels, int width, int height, int bands,
                     const char *what, const sm_preproc *pp, float *dst,
                     sm_err *err)
{
    if (sm_preproc_check(pp, err))
        return sm_err_prefix(err, "%s", what);
    if (bands == pp->channels && width == pp->width && height == pp->height) {
        /* grey or sRGB already: libvips would only copy the samples */
        put_u8(pp, pixels, dst);
        return 0;
    }
    VipsImage *im = wrap_u8(pixels, width, height, bands, 1, what, err);
    if (!im)
        return -1;
    int rc = preprocess(im, pp, dst, what, err);
    g_object_unref(im);
    return rc;
}

int sm_image_save_png_u8(const char *path, const uint8_t *pixels, int width,
                         int height, int bands, sm_err *err)
{
    VipsImage *im = wrap_u8(pixels, width, height, bands, 0, path, err);
    if (!im)
        return -1;
    /* Level 1 without filtering: about as small as the default for
     * 28x28 digits, several times faster (docs/DATA.md). */
    int rc = vips_pngsave(im, path, "compression", 1, "filter",
                          VIPS_FOREIGN_PNG_FILTER_NONE, NULL);
    g_object_unref(im);
    return rc ? vips_fail(err, path) : 0;
}

int sm_image_png_u8(const uint8_t *pixels, int width, int height, int bands,
                    const char *what, void **png, size_t *len, sm_err *err)
{
    VipsImage *im = wrap_u8(pixels, width, height, bands, 0, what, err);
    if (!im)
        return -1;
    int rc = vips_pngsave_buffer(im, png, len, "compression", 1, "filter",
                                 VIPS_FOREIGN_PNG_FILTER_NONE, NULL);
    g_object_unref(im);
    return rc ? vips_fail(err, what) : 0;
}
