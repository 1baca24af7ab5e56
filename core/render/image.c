/* Maps and inputs as pixels (image.h). */
#include "render/image.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/image.h"

void sm_render_px_free(sm_render_px *p)
{
    free(p->px);
    memset(p, 0, sizeof *p);
}

int sm_render_px_save(const sm_render_px *p, const char *path, sm_err *err)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    if (!tmp)
        return sm_err_set(err, "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        sm_err_set(err, "%s: cannot create a temporary file: %s", path,
                   strerror(errno));
        free(tmp);
        return -1;
    }
    /* mkstemp makes 0600; libvips rewrites the file and keeps its mode. */
    int rc = fchmod(fd, 0644);
    close(fd);
    if (rc)
        sm_err_set(err, "%s: %s", tmp, strerror(errno));
    else if (sm_image_save_png_u8(tmp, p->px, p->width, p->height, p->bands,
                                  err))
        rc = -1;
    else if (rename(tmp, path)) {
        sm_err_set(err, "%s: cannot rename into place: %s", path,
                   strerror(errno));
        rc = -1;
    }
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}

int sm_render_zoom_default(int h, int w)
{
    int m = h > w ? h : w;
    if (m <= 0)
        return 1;
    int z = (SM_RENDER_TARGET_PX + m - 1) / m;
    return z < 1 ? 1 : z;
}

/* A float on 0..255 as a byte: rounded half up, clamped (NaN: 0). */
static uint8_t byte_of(float v)
{
    if (!(v > 0))
        return 0;
    if (v >= 255)
        return 255;
    return (uint8_t)floorf(v + 0.5f);
}

uint8_t sm_render_grey_of(const float *img, int c, size_t hw, size_t q)
{
    if (c != 3)
        return byte_of(img[q]);
    unsigned r = byte_of(img[q]), g = byte_of(img[hw + q]),
             b = byte_of(img[2 * hw + q]);
    return (uint8_t)((299 * r + 587 * g + 114 * b + 500) / 1000);
}

/* out allocated for width x height x bands, within libvips's bounds. */
static int px_alloc(sm_render_px *out, int64_t width, int64_t height,
                    int bands, sm_err *err)
{
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0 || width > INT32_MAX ||
        height > INT32_MAX || width * height > SM_IMAGE_MAX_PIXELS)
        return sm_err_set(err, "image of %lldx%lld pixels: too large (at "
                          "most %lld pixels)", (long long)width,
                          (long long)height, (long long)SM_IMAGE_MAX_PIXELS);
    out->px = malloc((size_t)(width * height * bands));
    if (!out->px)
        return sm_err_set(err, "out of memory");
    out->width = (int)width;
    out->height = (int)height;
    out->bands = bands;
    return 0;
}

static int zoom_check(int h, int w, int zoom, sm_err *err)
{
    if (h <= 0 || w <= 0)
        return sm_err_set(err, "bad image size %dx%d", w, h);
    if (zoom < 1 || zoom > SM_RENDER_MAX_ZOOM)
        return sm_err_set(err, "zoom %d: must be 1..%d", zoom,
                          SM_RENDER_MAX_ZOOM);
    return 0;
}

/* src (h x w x bands) with each pixel a zoom x zoom block, into out
 * (allocated here). */
static int zoom_blocks(const uint8_t *src, int h, int w, int bands, int zoom,
                       sm_render_px *out, sm_err *err)
{
    if (zoom_check(h, w, zoom, err) ||
        px_alloc(out, (int64_t)w * zoom, (int64_t)h * zoom, bands, err))
        return -1;
    size_t row = (size_t)out->width * bands;
    for (int y = 0; y < h; y++) {
        uint8_t *o = out->px + (size_t)y * zoom * row;
        for (int x = 0; x < w; x++)
            for (int k = 0; k < zoom; k++)
                memcpy(o + ((size_t)x * zoom + k) * bands,
                       src + ((size_t)y * w + x) * bands, (size_t)bands);
        for (int k = 1; k < zoom; k++)
            memcpy(o + k * row, o, row);
    }
    return 0;
}

/* Draws h x w x bands pixels with fill(u, q, dst) at source resolution,
 * then zooms them. */
typedef void (*fill_fn)(const void *u, size_t q, uint8_t *dst);

static int draw(int h, int w, int bands, int zoom, fill_fn fill,
                const void *u, sm_render_px *out, sm_err *err)
{
    memset(out, 0, sizeof *out);
    if (zoom_check(h, w, zoom, err))
        return -1;
    if ((int64_t)h * w > SM_IMAGE_MAX_PIXELS)
        return sm_err_set(err, "image of %dx%d pixels: too large", w, h);
    size_t hw = (size_t)h * w;
    uint8_t *src = malloc(hw * bands);
    if (!src)
        return sm_err_set(err, "out of memory");
    for (size_t q = 0; q < hw; q++)
        fill(u, q, src + q * bands);
    int rc = zoom_blocks(src, h, w, bands, zoom, out, err);
    free(src);
    return rc;
}

typedef struct paint {
    const float *img, *map;
    int c;
    size_t hw;
    const sm_cmap_scale *s;
    uint8_t lut[256][3];
} paint;

static void paint_init(paint *p, const float *img, int c, const float *map,
                       int h, int w, const sm_cmap_scale *s)
{
    *p = (paint){.img = img, .map = map, .c = c, .hw = (size_t)h * w, .s = s};
    if (s)
        for (int l = 0; l < 256; l++)
            sm_cmap_rgb(s->kind, l, p->lut[l]);
}

static void fill_map(const void *u, size_t q, uint8_t *dst)
{
    const paint *p = u;
    memcpy(dst, p->lut[sm_cmap_level(p->s, p->map[q])], 3);
}

static void fill_input(const void *u, size_t q, uint8_t *dst)
{
    const paint *p = u;
    for (int ch = 0; ch < p->c; ch++)
        dst[ch] = byte_of(p->img[ch * p->hw + q]);
}

static void fill_overlay(const void *u, size_t q, uint8_t *dst)
{
    const paint *p = u;
    unsigned g = sm_render_grey_of(p->img, p->c, p->hw, q);
    const uint8_t *col = p->lut[sm_cmap_level(p->s, p->map[q])];
    for (int ch = 0; ch < 3; ch++)
        dst[ch] = (uint8_t)((g + col[ch] + 1) / 2);
}

static void fill_kept(const void *u, size_t q, uint8_t *dst)
{
    const paint *p = u;
    if (p->map[q] != 0) {
        for (int ch = 0; ch < 3; ch++)
            dst[ch] = byte_of(p->img[(p->c == 3 ? ch : 0) * p->hw + q]);
        return;
    }
    unsigned g = sm_render_grey_of(p->img, p->c, p->hw, q);
    dst[0] = dst[1] = dst[2] =
        (uint8_t)((g + 3 * SM_RENDER_FADE_GREY + 2) / 4);
}

int sm_render_map(const float *map, int h, int w, const sm_cmap_scale *s,
                  int zoom, sm_render_px *out, sm_err *err)
{
    paint p;
    paint_init(&p, NULL, 0, map, h, w, s);
    return draw(h, w, 3, zoom, fill_map, &p, out, err);
}

int sm_render_input(const float *img, int c, int h, int w, int zoom,
                    sm_render_px *out, sm_err *err)
{
    paint p;
    paint_init(&p, img, c, NULL, h, w, NULL);
    return draw(h, w, c == 3 ? 3 : 1, zoom, fill_input, &p, out, err);
}

int sm_render_overlay(const float *img, int c, const float *map, int h, int w,
                      const sm_cmap_scale *s, int zoom, sm_render_px *out,
                      sm_err *err)
{
    paint p;
    paint_init(&p, img, c, map, h, w, s);
    return draw(h, w, 3, zoom, fill_overlay, &p, out, err);
}

int sm_render_kept(const float *img, int c, const float *mask, int h, int w,
                   int zoom, sm_render_px *out, sm_err *err)
{
    paint p;
    paint_init(&p, img, c, mask, h, w, NULL);
    return draw(h, w, 3, zoom, fill_kept, &p, out, err);
}

int sm_render_strip(const float *tiles, int n, int h, int w, int zoom,
                    sm_render_px *out, sm_err *err)
{
    memset(out, 0, sizeof *out);
    if (n < 1)
        return sm_err_set(err, "a strip of %d tiles: needs at least one", n);
    if (zoom_check(h, w, zoom, err))
        return -1;
    int64_t tw = (int64_t)w * zoom, sep = SM_RENDER_SEPARATOR_PX;
    if (px_alloc(out, n * tw + (n - 1) * sep, (int64_t)h * zoom, 1, err))
        return -1;
    size_t hw = (size_t)h * w, W = (size_t)out->width;
    for (int y = 0; y < out->height; y++) {
        uint8_t *o = out->px + (size_t)y * W;
        memset(o, SM_RENDER_SEPARATOR_GREY, W);
        for (int i = 0; i < n; i++)
            for (int64_t x = 0; x < tw; x++)
                o[i * (tw + sep) + x] =
                    byte_of(tiles[i * hw + (size_t)(y / zoom) * w +
                                  (size_t)(x / zoom)]);
    }
    return 0;
}
