/* The PNGs a person looks at (render/colormap, render/image,
 * render/render_out): every PNG is decoded back with libvips and its
 * pixels checked against colours computed here from the documented
 * control points and formulas (docs/OUTPUTS-png.md), not from the code
 * under test. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

#include "render/colormap.h"
#include "render/image.h"
#include "tdata.h"

TDATA_SUITE(render);

/* ---- the documented colour maps, independently -------------------------- */

/* viridis at 0, 1/8, ..., 1 and RdBu (blue first) at -1, -0.8, ..., 1, as
 * docs/OUTPUTS-png.md lists them. */
static const int doc_viridis[9][3] = {
    {68, 1, 84},    {71, 45, 123},  {59, 82, 139},
    {44, 114, 142}, {33, 145, 140}, {40, 174, 128},
    {94, 201, 98},  {173, 220, 48}, {253, 231, 37}};
static const int doc_rdbu[11][3] = {
    {5, 48, 97},     {33, 102, 172},  {67, 147, 195},  {146, 197, 222},
    {209, 229, 240}, {247, 247, 247}, {253, 219, 199}, {244, 165, 130},
    {214, 96, 77},   {178, 24, 43},   {103, 0, 31}};

/* The colour of level l: the control points' linear interpolation at
 * position l/255 along the map, rounded. */
static void doc_rgb(sm_cmap_kind k, int l, int rgb[3])
{
    const int(*pts)[3] = k == SM_CMAP_DIVERGING ? doc_rdbu : doc_viridis;
    int segs = k == SM_CMAP_DIVERGING ? 10 : 8;
    double pos = l / 255.0 * segs;
    int i = (int)floor(pos);
    if (i >= segs)
        i = segs - 1;
    double f = pos - i;
    for (int c = 0; c < 3; c++)
        rgb[c] = (int)floor(pts[i][c] + f * (pts[i + 1][c] - pts[i][c]) + 0.5);
}

/* ---- decoding PNGs with libvips ----------------------------------------- */

typedef struct png {
    uint8_t *px;
    int w, h, bands;
} png;

static png read_png(const char *path)
{
    VipsImage *im = vips_image_new_from_file(path, "access",
                                             VIPS_ACCESS_SEQUENTIAL, NULL);
    cr_assert_not_null(im, "%s: %s", path, vips_error_buffer());
    png p = {.w = vips_image_get_width(im), .h = vips_image_get_height(im),
             .bands = vips_image_get_bands(im)};
    cr_assert_eq(vips_image_get_format(im), VIPS_FORMAT_UCHAR, "%s", path);
    size_t n;
    p.px = vips_image_write_to_memory(im, &n);
    cr_assert_not_null(p.px);
    cr_assert_eq(n, (size_t)p.w * p.h * p.bands);
    g_object_unref(im);
    return p;
}

static const uint8_t *at(const png *p, int x, int y)
{
    return p->px + ((size_t)y * p->w + x) * p->bands;
}

static void assert_rgb(const uint8_t *got, const int want[3], const char *what)
{
    cr_assert(got[0] == want[0] && got[1] == want[1] && got[2] == want[2],
              "%s: got (%d,%d,%d), want (%d,%d,%d)", what, got[0], got[1],
              got[2], want[0], want[1], want[2]);
}

static void save(const sm_render_px *px, const char *name, char *path)
{
    sm_err err = {{0}};
    tdata_path(path, dir, name);
    cr_assert_eq(sm_render_px_save(px, path, &err), 0, "%s", err.msg);
}

/* ---- colormap.c ---------------------------------------------------------- */

Test(render, cmap_every_level_matches_the_documented_points)
{
    sm_cmap_kind kinds[2] = {SM_CMAP_SEQUENTIAL, SM_CMAP_DIVERGING};
    for (int k = 0; k < 2; k++)
        for (int l = 0; l < 256; l++) {
            uint8_t got[3];
            int want[3];
            char what[64];
            sm_cmap_rgb(kinds[k], l, got);
            doc_rgb(kinds[k], l, want);
            snprintf(what, sizeof what, "%s level %d",
                     sm_cmap_kind_name(kinds[k]), l);
            assert_rgb(got, want, what);
        }
    /* the ends and the diverging map's exact control points */
    uint8_t c[3];
    sm_cmap_rgb(SM_CMAP_SEQUENTIAL, 0, c);
    assert_rgb(c, (int[]){0x44, 0x01, 0x54}, "viridis 0");
    sm_cmap_rgb(SM_CMAP_SEQUENTIAL, 255, c);
    assert_rgb(c, (int[]){0xfd, 0xe7, 0x25}, "viridis 255");
    for (int j = 0; j <= 10; j += 2) {
        sm_cmap_rgb(SM_CMAP_DIVERGING, j * 51 / 2, c);
        assert_rgb(c, doc_rdbu[j], "rdbu control point");
    }
}

Test(render, cmap_levels_clamp_and_round)
{
    sm_cmap_scale s = {SM_CMAP_SEQUENTIAL, 10, 20};
    cr_assert_eq(sm_cmap_level(&s, 10), 0);
    cr_assert_eq(sm_cmap_level(&s, 20), 255);
    cr_assert_eq(sm_cmap_level(&s, -1e30), 0);
    cr_assert_eq(sm_cmap_level(&s, 1e30), 255);
    cr_assert_eq(sm_cmap_level(&s, 15), 128); /* 127.5 rounds up */
    cr_assert_eq(sm_cmap_level(&s, 11), 26);  /* 25.5 */
    cr_assert_eq(sm_cmap_level(&s, 10.9), 23); /* 22.95 */
    sm_cmap_scale d = {SM_CMAP_DIVERGING, -4, 4};
    cr_assert_eq(sm_cmap_level(&d, 0), 128);
    cr_assert_eq(sm_cmap_level(&d, -4), 0);
    cr_assert_eq(sm_cmap_level(&d, 2), 191); /* 191.25 */
    /* out-of-range levels clamp to the ends */
    uint8_t a[3], b[3];
    sm_cmap_rgb(SM_CMAP_SEQUENTIAL, -5, a);
    sm_cmap_rgb(SM_CMAP_SEQUENTIAL, 0, b);
    cr_assert_arr_eq(a, b, 3);
    sm_cmap_rgb(SM_CMAP_DIVERGING, 300, a);
    sm_cmap_rgb(SM_CMAP_DIVERGING, 255, b);
    cr_assert_arr_eq(a, b, 3);
}

Test(render, cmap_scales_constant_maps_and_kind_names)
{
    float v[4] = {-1, 3, 2, 0.5f};
    sm_cmap_scale s;
    sm_err err = {{0}};
    cr_assert_eq(sm_cmap_scale_of(SM_CMAP_SEQUENTIAL, v, 4, "m", &s, &err), 0);
    cr_assert(s.lo == -1 && s.hi == 3 && s.kind == SM_CMAP_SEQUENTIAL);
    cr_assert_eq(sm_cmap_scale_of(SM_CMAP_DIVERGING, v, 4, "m", &s, &err), 0);
    cr_assert(s.lo == -3 && s.hi == 3);
    sm_cmap_scale o = {SM_CMAP_DIVERGING, -5, 1};
    sm_cmap_scale_merge(&s, &o);
    cr_assert(s.lo == -5 && s.hi == 3);
    /* constant: bottom (sequential) or middle (diverging) */
    float c[3] = {7, 7, 7};
    cr_assert_eq(sm_cmap_scale_of(SM_CMAP_SEQUENTIAL, c, 3, "m", &s, &err), 0);
    cr_assert_eq(sm_cmap_level(&s, 7), 0);
    float z[2] = {0, 0};
    cr_assert_eq(sm_cmap_scale_of(SM_CMAP_DIVERGING, z, 2, "m", &s, &err), 0);
    cr_assert_eq(sm_cmap_level(&s, 0), 128);
    /* NaN and inf are named by position */
    float bad[3] = {1, NAN, INFINITY};
    cr_assert_eq(sm_cmap_scale_of(SM_CMAP_SEQUENTIAL, bad, 3, "x.npy", &s,
                                  &err), -1);
    cr_assert(tdata_has(err.msg, "x.npy") && tdata_has(err.msg, "value 1") &&
              tdata_has(err.msg, "NaN"), "%s", err.msg);
    cr_assert_eq(sm_cmap_scale_of(SM_CMAP_SEQUENTIAL, bad + 2, 1, "y", &s,
                                  &err), -1);
    cr_assert(tdata_has(err.msg, "infinite"), "%s", err.msg);
    /* names */
    sm_cmap_kind k;
    cr_assert_str_eq(sm_cmap_kind_name(SM_CMAP_SEQUENTIAL), "sequential");
    cr_assert_str_eq(sm_cmap_kind_name(SM_CMAP_DIVERGING), "diverging");
    cr_assert_eq(sm_cmap_kind_parse("diverging", &k), 0);
    cr_assert_eq(k, SM_CMAP_DIVERGING);
    cr_assert_eq(sm_cmap_kind_parse("sequential", &k), 0);
    cr_assert_eq(k, SM_CMAP_SEQUENTIAL);
    cr_assert_eq(sm_cmap_kind_parse("viridis", &k), -1);
    cr_assert_eq(sm_cmap_kind_parse("", &k), -1);
}

/* ---- image.c ------------------------------------------------------------- */

Test(render, zoom_default)
{
    cr_assert_eq(sm_render_zoom_default(28, 28), 8);
    cr_assert_eq(sm_render_zoom_default(224, 100), 1);
    cr_assert_eq(sm_render_zoom_default(300, 300), 1);
    cr_assert_eq(sm_render_zoom_default(10, 32), 7);
    cr_assert_eq(sm_render_zoom_default(1, 1), SM_RENDER_MAX_ZOOM);
}

/* A 2 x 3 map on [0, 255] (sequential) hits levels 0, 255 and others;
 * each is a zoom x zoom block of its documented colour. */
Test(render, map_png_blocks_of_documented_colours)
{
    float map[6] = {0, 255, 32, 64, 191, 128};
    sm_cmap_scale s = {SM_CMAP_SEQUENTIAL, 0, 255};
    sm_render_px px;
    sm_err err = {{0}};
    cr_assert_eq(sm_render_map(map, 2, 3, &s, 3, &px, &err), 0, "%s",
                 err.msg);
    char path[TDATA_PATH];
    save(&px, "m.png", path);
    sm_render_px_free(&px);
    png p = read_png(path);
    cr_assert(p.w == 9 && p.h == 6 && p.bands == 3);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 9; x++) {
            int want[3];
            doc_rgb(SM_CMAP_SEQUENTIAL, (int)map[(y / 3) * 3 + x / 3], want);
            assert_rgb(at(&p, x, y), want, "map pixel");
        }
    g_free(p.px);
    /* diverging on [-255, 255]: v = 2 l - 255 lands on level l, the control
     * points at l = 0, 51, ..., 255 */
    float d[6] = {-255, -153, -51, 51, 153, 255};
    sm_cmap_scale ds = {SM_CMAP_DIVERGING, -255, 255};
    cr_assert_eq(sm_render_map(d, 1, 6, &ds, 1, &px, &err), 0);
    save(&px, "d.png", path);
    sm_render_px_free(&px);
    p = read_png(path);
    for (int x = 0; x < 6; x++)
        assert_rgb(at(&p, x, 0), doc_rdbu[2 * x], "rdbu point");
    g_free(p.px);
}

Test(render, overlay_formula)
{
    /* grey input (2 pixels) and RGB input (2 pixels), one map */
    float grey[2] = {0, 200.4f};
    float rgb[6] = {10, 250, 255, 20, 0, 100}; /* R R G G B B */
    float map[2] = {0, 255};
    sm_cmap_scale s = {SM_CMAP_SEQUENTIAL, 0, 255};
    int g_grey[2] = {0, 200};
    int g_rgb[2] = {(299 * 10 + 587 * 255 + 114 * 0 + 500) / 1000,
                    (299 * 250 + 587 * 20 + 114 * 100 + 500) / 1000};
    for (int pass = 0; pass < 2; pass++) {
        sm_render_px px;
        sm_err err = {{0}};
        cr_assert_eq(sm_render_overlay(pass ? rgb : grey, pass ? 3 : 1, map,
                                       1, 2, &s, 2, &px, &err), 0);
        char path[TDATA_PATH];
        save(&px, "o.png", path);
        sm_render_px_free(&px);
        png p = read_png(path);
        cr_assert(p.w == 4 && p.h == 2 && p.bands == 3);
        for (int x = 0; x < 4; x++) {
            int col[3], want[3];
            doc_rgb(SM_CMAP_SEQUENTIAL, x / 2 ? 255 : 0, col);
            int g = (pass ? g_rgb : g_grey)[x / 2];
            for (int c = 0; c < 3; c++) /* round(0.5 g + 0.5 col), .5 up */
                want[c] = (int)floor(0.5 * g + 0.5 * col[c] + 0.5);
            assert_rgb(at(&p, x, 1), want, "overlay");
        }
        g_free(p.px);
    }
}

Test(render, input_kept_and_strip)
{
    float img[4] = {0, 99.5f, 300, -3}; /* rounds half up, clamps */
    sm_render_px px;
    sm_err err = {{0}};
    char path[TDATA_PATH];
    cr_assert_eq(sm_render_input(img, 1, 2, 2, 2, &px, &err), 0);
    save(&px, "i.png", path);
    sm_render_px_free(&px);
    png p = read_png(path);
    cr_assert(p.w == 4 && p.h == 4 && p.bands == 1);
    cr_assert(*at(&p, 0, 0) == 0 && *at(&p, 3, 1) == 100 &&
              *at(&p, 1, 3) == 255 && *at(&p, 2, 2) == 0);
    g_free(p.px);

    float mask[4] = {1, 0, 0, 1};
    cr_assert_eq(sm_render_kept(img, 1, mask, 2, 2, 1, &px, &err), 0);
    save(&px, "k.png", path);
    sm_render_px_free(&px);
    p = read_png(path);
    cr_assert(p.w == 2 && p.h == 2 && p.bands == 3);
    assert_rgb(at(&p, 0, 0), (int[]){0, 0, 0}, "kept");
    int f1 = (int)floor((100 + 3 * 128) / 4.0 + 0.5); /* faded 100: 121 */
    assert_rgb(at(&p, 1, 0), (int[]){f1, f1, f1}, "faded");
    assert_rgb(at(&p, 0, 1), (int[]){160, 160, 160}, "faded 255");
    assert_rgb(at(&p, 1, 1), (int[]){0, 0, 0}, "kept (clamped)");
    g_free(p.px);

    float tiles[2 * 2] = {0, 255, 200, 64}; /* two 1 x 2 tiles */
    cr_assert_eq(sm_render_strip(tiles, 2, 1, 2, 2, &px, &err), 0);
    save(&px, "s.png", path);
    sm_render_px_free(&px);
    p = read_png(path);
    cr_assert(p.w == 2 * 4 + SM_RENDER_SEPARATOR_PX && p.h == 2 &&
              p.bands == 1, "%dx%dx%d", p.w, p.h, p.bands);
    uint8_t want[10] = {0, 0, 255, 255, 128, 128, 200, 200, 64, 64};
    for (int y = 0; y < 2; y++)
        cr_assert_arr_eq(p.px + y * p.w, want, 10);
    g_free(p.px);
    cr_assert_eq(sm_render_strip(tiles, 0, 1, 2, 2, &px, &err), -1);
    cr_assert_eq(sm_render_map(tiles, 1, 2, NULL, 0, &px, &err), -1);
    cr_assert(tdata_has(err.msg, "zoom 0"), "%s", err.msg);
}
