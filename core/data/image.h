/* Image decoding and preprocessing into model input, and PNG writing,
 * through libvips (a PNG or pixels that need no conversion and no
 * resize, through libpng or nothing: data/png.h).
 *
 * Preprocessing order (docs/DATA.md): decode -> drop alpha -> convert to
 * grey or sRGB (8-bit) -> resize to exactly height x width (stretch,
 * Lanczos3, in float, clamped to 0..255) -> multiply by scale ->
 * (v - mean[c]) / std[c]. The result is float32 C x H x W. */
#ifndef SM_IMAGE_H
#define SM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Images larger than this are refused after reading their header, before
 * any pixel is decoded. */
#define SM_IMAGE_MAX_PIXELS ((int64_t)64 << 20)

/* How an image becomes model input. */
typedef struct sm_preproc {
    int channels;   /* 1: grey, 3: sRGB */
    int height;     /* output size; images of another size are resized */
    int width;
    float scale;    /* multiplies 0..255 pixel values; default 1/255 */
    float mean[3];  /* per channel, subtracted after scaling; default 0 */
    float std[3];   /* per channel, divides after the mean; default 1 */
} sm_preproc;

/* Fills pp with the given size and the defaults (scale 1/255, mean 0,
 * std 1). */
void sm_preproc_init(sm_preproc *pp, int channels, int height, int width);

/* 0 when pp is usable (channels 1 or 3, a positive size within
 * SM_IMAGE_MAX_PIXELS, finite scale/mean, finite std > 0), else -1. */
int sm_preproc_check(const sm_preproc *pp, sm_err *err);

/* Starts libvips (VIPS_INIT) and refuses libvips's untrusted loaders
 * (ImageMagick, PDF, SVG, PPM, ...; libvips's own classification) since
 * images may come from strangers. Safe to call more than once; call it
 * from the main thread (or a test) before other threads use libvips.
 * argv0 may be NULL. */
int sm_vips_init(const char *argv0, sm_err *err);

/* Decodes any image libvips reads and preprocesses it into dst
 * (pp->channels * pp->height * pp->width floats). Unreadable, corrupt,
 * truncated or oversized images are errors naming the file. Safe to call
 * from several threads, but libvips keeps one error buffer per process,
 * so a message from two failures at the same moment may mix them. */
int sm_image_load_file(const char *path, const sm_preproc *pp, float *dst,
                       sm_err *err);

/* The same for an encoded image in memory (a file's bytes: PNG, JPEG,
 * ...; buf[0..len), borrowed): the format is told by content, the
 * untrusted loaders and oversized images are refused as for files, and
 * the result is the same floats as sm_image_load_file on a file holding
 * those bytes. `what` names the image in messages. */
int sm_image_load_buffer(const void *buf, size_t len, const char *what,
                         const sm_preproc *pp, float *dst, sm_err *err);

/* Same preprocessing for 8-bit pixels already in memory (height x width x
 * bands, interleaved; bands 1 grey, 2 grey+alpha, 3 sRGB, 4 sRGBA).
 * `what` names the image in messages ("train.idx: image 12"). */
int sm_image_load_u8(const uint8_t *pixels, int width, int height, int bands,
                     const char *what, const sm_preproc *pp, float *dst,
                     sm_err *err);

/* Writes 8-bit pixels (layout as above) as a PNG, favouring speed over
 * size (zlib level 1, no filter). Not atomic: callers that need that
 * write into a temporary folder and rename it. */
int sm_image_save_png_u8(const char *path, const uint8_t *pixels, int width,
                         int height, int bands, sm_err *err);

/* The same PNG encoded into memory: *png (g_free it) of *len bytes.
 * `what` names the image in messages. */
int sm_image_png_u8(const uint8_t *pixels, int width, int height, int bands,
                    const char *what, void **png, size_t *len, sm_err *err);

#endif
