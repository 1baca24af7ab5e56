/* The PNGs a person looks at (render/colormap, render/image,
 * render/render_out): every PNG is decoded back with libvips and its
 * pixels checked against colours computed here from the documented
 * control points and formulas (docs/OUTPUTS.md), not from the code
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
 * docs/OUTPUTS.md lists them. */
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
    sm_err err = {0};
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
    sm_err err = {0};
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
    cr_assert_eq(sm_render_zoom_default(1, 1), 224);
}

/* A 2 x 3 map on [0, 255] (sequential) hits levels 0, 255 and others;
 * each is a zoom x zoom block of its documented colour. */
Test(render, map_png_blocks_of_documented_colours)
{
    float map[6] = {0, 255, 32, 64, 191, 128};
    sm_cmap_scale s = {SM_CMAP_SEQUENTIAL, 0, 255};
    sm_render_px px;
    sm_err err = {0};
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
        sm_err err = {0};
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
    sm_err err = {0};
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

/* ---- render_out.c: small output folders made here ------------------------ */

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "io/npy.h"
#include "render/render_out.h"
#include "io/jobinfo.h"
#include "util/file.h"

#define H 2
#define W 3

/* OUT = dir/out with job.json (input 1 x H x W, dataset dir/ds unless
 * dataset is given) listing methods (name, signed). */
static void make_job(const char *dataset, int n, const char *const *names,
                     const int *signed_map)
{
    char out[TDATA_PATH], ds[TDATA_PATH];
    sm_jobinfo_method m[8];
    for (int k = 0; k < n; k++)
        m[k] = (sm_jobinfo_method){names[k], "{}", signed_map[k]};
    tdata_path(out, dir, "out");
    tdata_path(ds, dir, "ds");
    sm_jobinfo ji = {.id = "j1", .dataset = dataset ? dataset : ds,
                     .channels = 1, .height = H, .width = W, .methods = m,
                     .n_methods = n, .target = "predicted", .score = "logit",
                     .state = "done"};
    sm_err err = {0};
    cr_assert_eq(sm_file_mkdirs(out, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_jobinfo_write(out, &ji, &err), 0, "%s", err.msg);
}

/* dataset image dir/ds/<id>.png (H x W grey) */
static void make_input(const char *id, const uint8_t *px)
{
    char p[TDATA_PATH], name[256];
    snprintf(name, sizeof name, "ds/%s.png", id);
    tdata_png(p, dir, name, px, W, H, 1);
}

/* maps/<id>/<file> as float32 of the given shape */
static void make_npy(const char *id, const char *file, int ndim,
                     const int64_t *shape, const float *v)
{
    char p[TDATA_PATH], name[512];
    sm_err err = {0};
    snprintf(name, sizeof name, "out/maps/%s", id);
    tdata_path(p, dir, name);
    cr_assert_eq(sm_file_mkdirs(p, &err), 0);
    snprintf(name, sizeof name, "out/maps/%s/%s", id, file);
    tdata_path(p, dir, name);
    sm_tensor *t = sm_tensor_new(ndim, shape);
    memcpy(t->data, v, sizeof(float) * (size_t)sm_tensor_numel(t));
    cr_assert_eq(sm_npy_write(p, t, &err), 0, "%s", err.msg);
    sm_tensor_destroy(&t);
}

/* a complete (id, method): its map and its row */
static void make_map(const char *id, const char *method, const float *v)
{
    char file[128], p[TDATA_PATH];
    snprintf(file, sizeof file, "%s.npy", method);
    make_npy(id, file, 2, (int64_t[]){H, W}, v);
    snprintf(file, sizeof file, "out/maps/%s/%s.row", id, method);
    tdata_text(p, dir, file, "row\n");
}

typedef struct lines {
    char text[8192];
    int n;
} lines;

static void collect(const char *line, void *u)
{
    lines *l = u;
    size_t at = strlen(l->text);
    snprintf(l->text + at, sizeof l->text - at, "%s\n", line);
    l->n++;
}

static int run(sm_render_scale_mode mode, int zoom, sm_render_stats *st,
               lines *l)
{
    sm_render_opts o;
    sm_render_opts_init(&o);
    o.scale = mode;
    o.zoom = zoom;
    o.threads = 2;
    o.report = collect;
    o.u = l;
    memset(l, 0, sizeof *l);
    char out[TDATA_PATH];
    sm_err err = {0};
    int rc = sm_render_out(tdata_path(out, dir, "out"), &o, st, &err);
    if (rc)
        snprintf(l->text, sizeof l->text, "%s", err.msg);
    return rc;
}

static png read_out(const char *rel)
{
    char p[TDATA_PATH], name[512];
    snprintf(name, sizeof name, "out/%s", rel);
    return read_png(tdata_path(p, dir, name));
}

static int out_exists(const char *rel)
{
    char p[TDATA_PATH], name[512];
    struct stat sb;
    snprintf(name, sizeof name, "out/%s", rel);
    return stat(tdata_path(p, dir, name), &sb) == 0;
}

/* dir/out/<rel> as a string (malloc'd) */
static char *read_text(const char *rel)
{
    char p[TDATA_PATH], name[512];
    size_t len;
    snprintf(name, sizeof name, "out/%s", rel);
    unsigned char *t = sm_file_read(tdata_path(p, dir, name), 4096, &len,
                                    NULL);
    cr_assert_not_null(t, "%s", name);
    char *z = calloc(len + 1, 1);
    memcpy(z, t, len);
    free(t);
    return z;
}

/* dir/out/<rel> modified 5 s from now: newer than any PNG drawn before */
static void touch_later(const char *rel)
{
    char p[TDATA_PATH], name[512];
    struct timespec later[2] = {{0, UTIME_OMIT}, {time(NULL) + 5, 0}};
    snprintf(name, sizeof name, "out/%s", rel);
    cr_assert_eq(utimensat(AT_FDCWD, tdata_path(p, dir, name), later, 0), 0);
}

static const uint8_t input_a[H * W] = {0, 50, 100, 150, 200, 255};

/* A job of n methods (names, signed) with one image, "a" (input_a), and
 * its maps. */
static void job_of_a(int n, const char *const *names, const int *signed_map,
                     const float *const *maps)
{
    make_job(NULL, n, names, signed_map);
    make_input("a", input_a);
    for (int k = 0; k < n; k++)
        make_map("a", names[k], maps[k]);
}

Test(render, out_map_mode_pixels)
{
    /* s unsigned on [0, 255]: levels = values; g signed on [-255, 255]:
     * v = 2 l - 255 lands on the diverging map's control points */
    const float s[H * W] = {0, 255, 64, 128, 1, 200};
    const float g[H * W] = {-255, -153, -51, 51, 153, 255};
    job_of_a(2, (const char *[]){"s", "g"}, (int[]){0, 1},
             (const float *[]){s, g});
    sm_render_stats st;
    lines l;
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 2, &st, &l), 0, "%s", l.text);
    cr_assert_eq(l.n, 0, "%s", l.text);
    cr_assert(st.images == 1 && st.maps == 2 && st.written == 5 &&
              st.skipped == 0 && st.bad == 0 && st.failed == 0 &&
              st.zoom == 2, "written %zu", st.written);

    png in = read_out("maps/a/input.png");
    cr_assert(in.w == W * 2 && in.h == H * 2 && in.bands == 1);
    for (int y = 0; y < 2 * H; y++)
        for (int x = 0; x < 2 * W; x++)
            cr_assert_eq(*at(&in, x, y), input_a[(y / 2) * W + x / 2]);
    g_free(in.px);

    png ps = read_out("maps/a/s.png"), pg = read_out("maps/a/g.png");
    png os = read_out("maps/a/s.overlay.png");
    for (int y = 0; y < 2 * H; y++)
        for (int x = 0; x < 2 * W; x++) {
            int q = (y / 2) * W + x / 2, want[3], over[3];
            doc_rgb(SM_CMAP_SEQUENTIAL, (int)s[q], want);
            assert_rgb(at(&ps, x, y), want, "s.png");
            for (int c = 0; c < 3; c++)
                over[c] = (input_a[q] + want[c] + 1) / 2;
            assert_rgb(at(&os, x, y), over, "s.overlay.png");
            doc_rgb(SM_CMAP_DIVERGING, (int)(g[q] + 255) / 2, want);
            assert_rgb(at(&pg, x, y), want, "g.png");
        }
    cr_assert(pg.w == 2 * W && pg.h == 2 * H && pg.bands == 3);
    g_free(ps.px), g_free(pg.px), g_free(os.px);
    cr_assert(out_exists("maps/a/g.overlay.png"));
    cr_assert(out_exists("render.json"));
    cr_assert(!out_exists("scales.csv"));
}

Test(render, out_default_zoom_and_constant_maps)
{
    const float five[H * W] = {5, 5, 5, 5, 5, 5};
    const float zero[H * W] = {0};
    job_of_a(2, (const char *[]){"s", "g"}, (int[]){0, 1},
             (const float *[]){five, zero});
    sm_render_stats st;
    lines l;
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 0, &st, &l), 0, "%s", l.text);
    cr_assert_eq(st.zoom, 75); /* ceil(224 / 3) */
    png ps = read_out("maps/a/s.png"), pg = read_out("maps/a/g.png");
    cr_assert(ps.w == 225 && ps.h == 150);
    int bottom[3], middle[3];
    doc_rgb(SM_CMAP_SEQUENTIAL, 0, bottom);
    doc_rgb(SM_CMAP_DIVERGING, 128, middle);
    assert_rgb(at(&ps, 224, 149), bottom, "constant sequential");
    assert_rgb(at(&pg, 0, 0), middle, "constant diverging");
    g_free(ps.px), g_free(pg.px);
}

/* No file of dir/out/maps/a has ".tmp" in its name. */
static void assert_no_temp(void)
{
    char p[TDATA_PATH];
    DIR *d = opendir(tdata_path(p, dir, "out/maps/a"));
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        cr_assert(!strstr(e->d_name, ".tmp"), "left behind: %s", e->d_name);
    closedir(d);
}

Test(render, out_nan_map_gets_no_png_and_is_named)
{
    float s[H * W] = {0, 1, 2, 3, 4, 5};
    float bad[H * W] = {0, 1, 2, 3, 4, NAN};
    job_of_a(2, (const char *[]){"s", "b"}, (int[]){0, 0},
             (const float *[]){s, s});
    sm_render_stats st;
    lines l;
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 1, &st, &l), 0, "%s", l.text);
    cr_assert(out_exists("maps/a/b.png"));
    /* the map becomes NaN: its older PNGs go too */
    make_map("a", "b", bad);
    touch_later("maps/a/b.npy");
    for (int mode = 0; mode < 2; mode++) {
        cr_assert_eq(run(mode ? SM_RENDER_SCALE_JOB : SM_RENDER_SCALE_MAP, 1,
                         &st, &l), 0, "%s", l.text);
        cr_assert_eq(st.bad, 1);
        cr_assert_eq(l.n, 1, "%s", l.text);
        cr_assert(tdata_has(l.text, "out/maps/a/b.npy") &&
                  tdata_has(l.text, "row 1, column 2") &&
                  tdata_has(l.text, "NaN"), "%s", l.text);
        cr_assert(!out_exists("maps/a/b.png") &&
                  !out_exists("maps/a/b.overlay.png"));
        cr_assert(out_exists("maps/a/s.png"));
        assert_no_temp();
    }
    /* the job scale ignores the NaN map */
    char *t = read_text("scales.csv");
    cr_assert_str_eq(t, "method,colormap,min,max\ns,sequential,0,5\n");
    free(t);
}

Test(render, out_job_scale_makes_values_comparable)
{
    /* a on [0, 10], b on [0, 20]: 10 is the top of a's own scale, the
     * middle of the job's (level round(127.5) = 128) */
    const float a[H * W] = {0, 10, 10, 10, 10, 10};
    const float b[H * W] = {0, 20, 10, 10, 10, 10};
    make_job(NULL, 1, (const char *[]){"s"}, (int[]){0});
    make_input("a", input_a);
    make_input("b", input_a);
    make_map("a", "s", a);
    make_map("b", "s", b);
    sm_render_stats st;
    lines l;
    int top[3], mid[3];
    doc_rgb(SM_CMAP_SEQUENTIAL, 255, top);
    doc_rgb(SM_CMAP_SEQUENTIAL, 128, mid);

    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 1, &st, &l), 0, "%s", l.text);
    png pa = read_out("maps/a/s.png"), pb = read_out("maps/b/s.png");
    assert_rgb(at(&pa, 1, 0), top, "a's 10 on its own scale");
    assert_rgb(at(&pb, 2, 0), mid, "b's 10 on its own scale");
    g_free(pa.px), g_free(pb.px);

    cr_assert_eq(run(SM_RENDER_SCALE_JOB, 1, &st, &l), 0, "%s", l.text);
    cr_assert_eq(st.written, 6); /* job mode rewrites everything */
    pa = read_out("maps/a/s.png"), pb = read_out("maps/b/s.png");
    assert_rgb(at(&pa, 1, 0), mid, "a's 10 on the job's scale");
    assert_rgb(at(&pb, 2, 0), mid, "b's 10 on the job's scale");
    assert_rgb(at(&pb, 1, 0), top, "b's 20 on the job's scale");
    g_free(pa.px), g_free(pb.px);
    char *t = read_text("scales.csv");
    cr_assert_str_eq(t, "method,colormap,min,max\ns,sequential,0,20\n");
    free(t);

    /* back to map scales: everything redrawn, the stale legend removed */
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 1, &st, &l), 0, "%s", l.text);
    cr_assert(st.written == 6 && st.skipped == 0);
    cr_assert(!out_exists("scales.csv"));
    pa = read_out("maps/a/s.png");
    assert_rgb(at(&pa, 1, 0), top, "a's 10 on its own scale again");
    g_free(pa.px);
}

Test(render, out_method_images)
{
    /* anchor keeps pixels 0 and 4; lore's rule pixel 5; abele has three
     * exemplars and one counter-exemplar */
    const float anchor[H * W] = {1, 0, 0, 0, 1, 0};
    const float lore[H * W] = {0, 0, 0, 0, 0, 0.25f};
    const float abele[H * W] = {0.5f, 0.5f, 0, 0, 1, 1};
    float ex[3 * H * W], cex[H * W] = {9, 9, 9, 9, 9, 9};
    for (int k = 0; k < 3 * H * W; k++)
        ex[k] = (float)(k * 10);
    job_of_a(3, (const char *[]){"anchor", "lore", "abele"}, (int[]){0, 0, 0},
             (const float *[]){anchor, lore, abele});
    make_npy("a", "abele.exemplars.npy", 3, (int64_t[]){3, H, W}, ex);
    make_npy("a", "abele.counter_exemplars.npy", 3, (int64_t[]){1, H, W},
             cex);
    sm_render_stats st;
    lines l;
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 2, &st, &l), 0, "%s", l.text);
    cr_assert_eq(st.written, 1 + 2 * 3 + 2 + 2, "%zu", st.written);

    const char *kept[2] = {"maps/a/anchor.kept.png", "maps/a/lore.rule.png"};
    const float *mask[2] = {anchor, lore};
    for (int k = 0; k < 2; k++) {
        png p = read_out(kept[k]);
        cr_assert(p.w == 2 * W && p.h == 2 * H && p.bands == 3);
        for (int q = 0; q < H * W; q++) {
            int g = input_a[q], f = (g + 3 * 128 + 2) / 4;
            int v = mask[k][q] != 0 ? g : f;
            assert_rgb(at(&p, 2 * (q % W) + 1, 2 * (q / W) + 1),
                       (int[]){v, v, v}, kept[k]);
        }
        g_free(p.px);
    }
    png e = read_out("maps/a/abele.exemplars.png");
    cr_assert(e.w == 3 * 2 * W + 2 * SM_RENDER_SEPARATOR_PX &&
              e.h == 2 * H && e.bands == 1, "%dx%d", e.w, e.h);
    /* tile 1's pixel (1, 2) (value 10 * (6 + 5) = 110) */
    cr_assert_eq(*at(&e, 2 * W + SM_RENDER_SEPARATOR_PX + 2 * 2, 2), 110);
    cr_assert_eq(*at(&e, 2 * W, 0), SM_RENDER_SEPARATOR_GREY);
    g_free(e.px);
    png c = read_out("maps/a/abele.counter_exemplars.png");
    cr_assert(c.w == 2 * W && c.h == 2 * H && *at(&c, 0, 0) == 9);
    g_free(c.px);

    /* --tiles 2: two exemplars shown */
    sm_render_opts o;
    sm_render_opts_init(&o);
    o.zoom = 2;
    o.tiles = 2;
    char out[TDATA_PATH];
    sm_err err = {0};
    cr_assert_eq(sm_render_out(tdata_path(out, dir, "out"), &o, &st, &err),
                 0, "%s", err.msg);
    e = read_out("maps/a/abele.exemplars.png");
    cr_assert_eq(e.w, 2 * 2 * W + SM_RENDER_SEPARATOR_PX);
    g_free(e.px);
}

Test(render, out_idempotent_in_map_mode)
{
    const float s[H * W] = {0, 1, 2, 3, 4, 5};
    make_job(NULL, 2, (const char *[]){"s", "t"}, (int[]){0, 1});
    make_input("a", input_a);
    make_input("b", input_a);
    make_map("a", "s", s);
    make_map("a", "t", s);
    make_map("b", "s", s);
    sm_render_stats st;
    lines l;
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 1, &st, &l), 0, "%s", l.text);
    cr_assert_eq(st.written, 8);
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 1, &st, &l), 0, "%s", l.text);
    cr_assert(st.written == 0 && st.skipped == 8, "%zu %zu", st.written,
              st.skipped);
    /* a newer map is drawn again, alone */
    touch_later("maps/b/s.npy");
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 1, &st, &l), 0, "%s", l.text);
    cr_assert(st.written == 2 && st.skipped == 6);
    /* another zoom draws everything again */
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 2, &st, &l), 0, "%s", l.text);
    cr_assert(st.written == 8 && st.skipped == 0);
    png ps = read_out("maps/a/s.png");
    cr_assert_eq(ps.w, 2 * W);
    g_free(ps.px);
}

Test(render, out_without_dataset_draws_maps_alone)
{
    const float s[H * W] = {0, 1, 2, 3, 4, 5};
    make_job("(inline images)", 2, (const char *[]){"s", "anchor"},
             (int[]){0, 0});
    make_map("a", "s", s);
    make_map("b", "s", s);
    make_map("b", "anchor", s);
    sm_render_stats st;
    lines l;
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 1, &st, &l), 0, "%s", l.text);
    cr_assert_eq(l.n, 1, "one warning: %s", l.text);
    cr_assert(tdata_has(l.text, "(inline images)") &&
              tdata_has(l.text, "maps alone"), "%s", l.text);
    cr_assert(st.no_dataset == 1 && st.no_input == 2 && st.written == 3);
    cr_assert(out_exists("maps/b/anchor.png"));
    cr_assert(!out_exists("maps/a/input.png") &&
              !out_exists("maps/a/s.overlay.png") &&
              !out_exists("maps/b/anchor.kept.png"));
}

Test(render, out_bad_folders_and_maps)
{
    sm_render_stats st;
    lines l;
    /* no job.json */
    char p[TDATA_PATH];
    sm_err err = {0};
    cr_assert_eq(sm_file_mkdirs(tdata_path(p, dir, "out/maps"), &err), 0);
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 1, &st, &l), -1);
    cr_assert(tdata_has(l.text, "job.json"), "%s", l.text);
    /* a map of the wrong shape, an unreadable one, a bad method name */
    const float v[8] = {0};
    make_job(NULL, 2, (const char *[]){"s", "t"}, (int[]){0, 0});
    make_input("a", input_a);
    make_npy("a", "s.npy", 2, (int64_t[]){2, 4}, v);
    tdata_text(p, dir, "out/maps/a/s.row", "row\n");
    tdata_text(p, dir, "out/maps/a/t.npy", "not an npy");
    tdata_text(p, dir, "out/maps/a/t.row", "row\n");
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 1, &st, &l), 0, "%s", l.text);
    cr_assert(st.failed == 2 && l.n == 2, "%s", l.text);
    cr_assert(tdata_has(l.text, "out/maps/a/s.npy: shape [2, 4], not the "
                        "job's input size [2, 3]"), "%s", l.text);
    cr_assert(tdata_has(l.text, "out/maps/a/t.npy"), "%s", l.text);
    make_job(NULL, 1, (const char *[]){"../x"}, (int[]){0});
    cr_assert_eq(run(SM_RENDER_SCALE_MAP, 1, &st, &l), -1);
    cr_assert(tdata_has(l.text, "'../x' is not a method name"), "%s", l.text);
}

Test(render, cli_errors)
{
    char msg[TDATA_PATH], out[TDATA_PATH], p[TDATA_PATH];
    tdata_path(out, dir, "nothing");
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"render", NULL}), 2);
    cr_assert(tdata_has(msg, "needs the output folder"), "%s", msg);
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"render", out,
                                                         NULL}), 1);
    cr_assert(tdata_has(msg, "no such folder"), "%s", msg);
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"render", dir,
                                                         NULL}), 1);
    cr_assert(tdata_has(msg, "no job.json"), "%s", msg);
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"render", dir,
                                         "--scale", "global", NULL}), 2);
    cr_assert(tdata_has(msg, "--scale must be map or job"), "%s", msg);
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"render", dir,
                                         "--zoom", "0", NULL}), 2);
    /* a NaN map: exit 3, the file named */
    const float s[H * W] = {0, 1, 2, 3, 4, NAN};
    job_of_a(1, (const char *[]){"s"}, (int[]){0}, (const float *[]){s});
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"render",
                 tdata_path(p, dir, "out"), "--zoom", "1", NULL}), 3);
    cr_assert(tdata_has(msg, "maps/a/s.npy: value 5 is NaN"), "%s", msg);
}
