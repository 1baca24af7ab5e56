#include "data/png.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const unsigned char *bytes;
    size_t len, at;
    int warned;
} reader;

static void on_error(png_structp png, png_const_charp msg)
{
    (void)msg; /* libvips words it, when it decodes the same bytes */
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)msg;
    ((reader *)png_get_error_ptr(png))->warned = 1;
}

static void on_read(png_structp png, png_bytep out, size_t n)
{
    reader *r = png_get_io_ptr(png);
    if (n > r->len - r->at)
        png_error(png, "truncated");
    memcpy(out, r->bytes + r->at, n);
    r->at += n;
}

/* Reads header, rows and end into pixels through rows; 0 or -1. Apart
 * from its caller so that nothing this changes lives across setjmp. */
static int read_png(png_structp png, png_infop info, int width, int height,
                    int channels, png_bytep *rows)
{
    png_uint_32 w, h;
    int depth, type, interlace;
    png_read_info(png, info);
    png_get_IHDR(png, info, &w, &h, &depth, &type, &interlace, NULL, NULL);
    const int bands = (type & ~PNG_COLOR_MASK_ALPHA) == PNG_COLOR_TYPE_GRAY ? 1
                      : (type & ~PNG_COLOR_MASK_ALPHA) == PNG_COLOR_TYPE_RGB ? 3
                                                                           : 0;
    if (depth != 8 || bands != channels || w != (png_uint_32)width ||
        h != (png_uint_32)height)
        return -1;
    if (type & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    if (interlace != PNG_INTERLACE_NONE)
        (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)width * (size_t)channels)
        return -1;
    png_read_image(png, rows);
    png_read_end(png, NULL); /* the chunks after the pixels, to IEND */
    return 0;
}

int sm_png_read_u8(const void *buf, size_t len, int width, int height,
                   int channels, uint8_t *pixels)
{
    if (len < 8 || png_sig_cmp(buf, 0, 8) || width <= 0 || height <= 0)
        return -1;
    png_bytep *rows = malloc(sizeof *rows * (size_t)height);
    if (!rows)
        return -1;
    for (int y = 0; y < height; y++)
        rows[y] = pixels + (size_t)y * (size_t)width * (size_t)channels;
    reader r = {buf, len, 0, 0};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = -1;
    if (info && !setjmp(png_jmpbuf(png))) {
        png_set_read_fn(png, &r, on_read);
        rc = read_png(png, info, width, height, channels, rows);
    }
    png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    free(rows);
    return rc || r.warned ? -1 : 0;
}
