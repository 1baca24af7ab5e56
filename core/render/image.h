/* sm_render images: maps and inputs as 8-bit pixels a person looks at
 * (docs/OUTPUTS.md, "PNG images").
 *
 * Every image is drawn at its source's resolution h x w times an integer
 * zoom, nearest neighbour: each source pixel is a zoom x zoom block of
 * exactly its colour (no blur, so a pixel's colour can be read back).
 *
 * - map: each value's colour on a scale (render/colormap.h), RGB.
 * - input: the model's input on 0..255 (C x H x W floats, C 1 or 3), each
 *   value rounded half up and clamped to 0..255, C bands.
 * - grey of an input pixel: the value itself (C 1), or Rec. 601 luma
 *   (299 R + 587 G + 114 B + 500) / 1000 (integer division) of its rounded
 *   R, G, B (C 3).
 * - overlay: out = (grey + colour + 1) / 2 per channel (integer division),
 *   i.e. round(0.5 grey + 0.5 colour) with halves up: the input in grey
 *   with the map's colour blended on top at alpha 0.5, RGB.
 * - kept: the input where mask != 0 (in its own colours, grey repeated on
 *   the three bands), elsewhere faded to (grey + 3 * 128 + 2) / 4 (integer
 *   division): three quarters of the way to mid-grey, 96..160, RGB.
 * - strip: n grey tiles h x w (values on 0..255, rounded and clamped) side
 *   by side, separated by SM_RENDER_SEPARATOR_PX columns of
 *   SM_RENDER_SEPARATOR_GREY, one band.
 *
 * The drawing functions allocate out (sm_render_px_free releases it) and
 * fail only for an image too large (SM_IMAGE_MAX_PIXELS) or out of
 * memory. Inputs must be finite (maps: sm_cmap_scale_of checked them). */
#ifndef SM_RENDER_IMAGE_H
#define SM_RENDER_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "render/colormap.h"
#include "util/err.h"

/* The default zoom makes the longer side at least this many pixels. */
#define SM_RENDER_TARGET_PX 224
/* Largest zoom accepted (the default's for a 1 x 1 map). */
#define SM_RENDER_MAX_ZOOM SM_RENDER_TARGET_PX
#define SM_RENDER_SEPARATOR_PX 2
#define SM_RENDER_SEPARATOR_GREY 128
/* Faded pixels go three quarters of the way to this grey. */
#define SM_RENDER_FADE_GREY 128

/* 8-bit pixels, height x width x bands, interleaved (what
 * sm_image_save_png_u8 takes). */
typedef struct sm_render_px {
    uint8_t *px;
    int width, height, bands;
} sm_render_px;

void sm_render_px_free(sm_render_px *p);

/* Writes p as a PNG at path atomically: into a temporary file beside it
 * (path.tmpXXXXXX), renamed over path; nothing is left behind on failure.
 * 0 or -1 with a message naming path. */
int sm_render_px_save(const sm_render_px *p, const char *path, sm_err *err);

/* ceil(SM_RENDER_TARGET_PX / max(h, w)), at least 1: 8 for 28 x 28. */
int sm_render_zoom_default(int h, int w);

/* The grey (0..255) of pixel q of img (c x h x w, hw = h * w). */
uint8_t sm_render_grey_of(const float *img, int c, size_t hw, size_t q);

int sm_render_map(const float *map, int h, int w, const sm_cmap_scale *s,
                  int zoom, sm_render_px *out, sm_err *err);

int sm_render_input(const float *img, int c, int h, int w, int zoom,
                    sm_render_px *out, sm_err *err);

int sm_render_overlay(const float *img, int c, const float *map, int h, int w,
                      const sm_cmap_scale *s, int zoom, sm_render_px *out,
                      sm_err *err);

int sm_render_kept(const float *img, int c, const float *mask, int h, int w,
                   int zoom, sm_render_px *out, sm_err *err);

/* n >= 1 tiles (n x h x w). */
int sm_render_strip(const float *tiles, int n, int h, int w, int zoom,
                    sm_render_px *out, sm_err *err);

#endif
