/* Superpixels: on synthetic images with known regions every segment must
 * lie inside one region, labels must be 0..n-1, runs must repeat; plus the
 * CIELAB conversion against known values, the grid's exact counts, the
 * single-segment error and refused parameters. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"
#include "segment/segment.h"

#define FIX "tests/fixtures/segment/"

/* A synthetic image: pixels (c x h x w) and the true region of each pixel. */
typedef struct {
    int c, h, w;
    float *px;
    int *region;
    int n_regions;
} scene;

static scene scene_new(int c, int h, int w)
{
    scene s = {c, h, w, calloc((size_t)c * h * w, sizeof(float)),
               calloc((size_t)h * w, sizeof(int)), 0};
    cr_assert(s.px && s.region);
    return s;
}

static void scene_free(scene *s)
{
    free(s->px);
    free(s->region);
}

static void paint(scene *s, int y, int x, int region, const float *colour)
{
    size_t hw = (size_t)s->h * s->w, q = (size_t)y * s->w + x;
    s->region[q] = region;
    for (int k = 0; k < s->c; k++)
        s->px[k * hw + q] = colour[k];
    if (region + 1 > s->n_regions)
        s->n_regions = region + 1;
}

static const float COLOURS[][3] = {
    {0.9f, 0.1f, 0.1f}, {0.1f, 0.8f, 0.2f}, {0.1f, 0.2f, 0.9f},
    {0.95f, 0.95f, 0.3f}, {0.05f, 0.05f, 0.05f},
};

/* Four flat quadrants of different colours. */
static scene quadrants(int h, int w)
{
    scene s = scene_new(3, h, w);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int r = (y >= h / 2) * 2 + (x >= w / 2);
            paint(&s, y, x, r, COLOURS[r]);
        }
    return s;
}

/* Two bright discs on a dark background, grayscale. */
static scene discs(int h, int w)
{
    scene s = scene_new(1, h, w);
    const float bg = 0.1f, fg[2] = {0.9f, 0.6f};
    double cy[2] = {h * 0.3, h * 0.65}, cx[2] = {w * 0.3, w * 0.68};
    double rad = (h < w ? h : w) * 0.2;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int r = 0;
            for (int d = 0; d < 2; d++)
                if ((y - cy[d]) * (y - cy[d]) + (x - cx[d]) * (x - cx[d]) <=
                    rad * rad)
                    r = d + 1;
            paint(&s, y, x, r, r ? &fg[r - 1] : &bg);
        }
    return s;
}

/* Blocks of `b` pixels, colours in a 2x2 period so that blocks that touch,
 * even at a corner, differ; every block is its own region. */
static scene checker(int blocks, int b)
{
    scene s = scene_new(3, blocks * b, blocks * b);
    for (int y = 0; y < s.h; y++)
        for (int x = 0; x < s.w; x++) {
            int by = y / b, bx = x / b;
            paint(&s, y, x, by * blocks + bx, COLOURS[(by % 2) * 2 + bx % 2]);
        }
    return s;
}

/* Labels 0..n-1, each used; every segment inside one region. */
static void check_segments(const scene *s, const int32_t *lab, int n)
{
    int hw = s->h * s->w;
    int *owner = malloc(sizeof(int) * (size_t)n);
    cr_assert(owner);
    for (int k = 0; k < n; k++)
        owner[k] = -1;
    for (int i = 0; i < hw; i++) {
        cr_assert(lab[i] >= 0 && lab[i] < n, "pixel %d label %d of %d", i,
                  lab[i], n);
        if (owner[lab[i]] < 0)
            owner[lab[i]] = s->region[i];
        cr_assert_eq(owner[lab[i]], s->region[i],
                     "segment %d crosses regions %d and %d at pixel (%d,%d)",
                     lab[i], owner[lab[i]], s->region[i], i / s->w, i % s->w);
    }
    int *covered = calloc((size_t)s->n_regions, sizeof(int));
    cr_assert(covered);
    for (int k = 0; k < n; k++) {
        cr_assert(owner[k] >= 0, "label %d of %d unused", k, n);
        covered[owner[k]] = 1;
    }
    for (int r = 0; r < s->n_regions; r++)
        cr_assert(covered[r], "region %d has no segment", r);
    free(covered);
    free(owner);
}

/* Segments s with p; checks the result and that a second run repeats it. */
static int run(const sm_segment_params *p, const scene *s, int32_t **out)
{
    int hw = s->h * s->w, n = 0, n2 = 0;
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)hw);
    int32_t *lab2 = malloc(sizeof(int32_t) * (size_t)hw);
    cr_assert(lab && lab2);
    sm_err err = {0};
    cr_assert_eq(sm_segment(p, s->px, s->c, s->h, s->w, lab, &n, &err), 0,
                 "%s", err.msg);
    check_segments(s, lab, n);
    cr_assert_eq(sm_segment(p, s->px, s->c, s->h, s->w, lab2, &n2, &err), 0);
    cr_assert_eq(n, n2);
    cr_assert(memcmp(lab, lab2, sizeof(int32_t) * (size_t)hw) == 0,
              "two runs differ");
    free(lab2);
    if (out)
        *out = lab;
    else
        free(lab);
    return n;
}

static sm_segment_params params(sm_segment_method m)
{
    sm_segment_params p;
    sm_segment_params_default(&p);
    p.method = m;
    return p;
}

/* --- CIELAB ------------------------------------------------------------ */

Test(segment, lab_known_values)
{
    /* skimage.color.rgb2lab (0.19.3) of white, red, green, blue, mid grey
     * and black: white is L 100, a = b = 0 up to the matrix's rounding. */
    static const double rgb[][3] = {{1, 1, 1}, {1, 0, 0}, {0, 1, 0},
                                    {0, 0, 1}, {0.5, 0.5, 0.5}, {0, 0, 0}};
    static const double want[][3] = {
        {100.0, -0.0024549, 0.0046534},
        {53.2405879, 80.0923082, 67.2027510},
        {87.7350995, -86.1830297, 83.1797032},
        {32.2956726, 79.1855909, -107.857300},
        {53.3889647, -0.0014685, 0.0027836},
        {0.0, 0.0, 0.0}};
    for (size_t i = 0; i < sizeof rgb / sizeof *rgb; i++) {
        double lab[3];
        sm_segment_rgb2lab(rgb[i], lab);
        for (int k = 0; k < 3; k++)
            cr_assert(fabs(lab[k] - want[i][k]) < 1e-5,
                      "colour %zu channel %d: got %.4f want %.4f", i, k,
                      lab[k], want[i][k]);
    }
}

Test(segment, grayscale_is_three_equal_channels)
{
    float g[4] = {0, 0.25f, 0.5f, 1}, rgb[12];
    for (int k = 0; k < 3; k++)
        memcpy(rgb + 4 * k, g, sizeof g);
    double *a = sm_segment_pixels(g, 1, 2, 2, SM_SEGMENT_LAB);
    double *b = sm_segment_pixels(rgb, 3, 2, 2, SM_SEGMENT_LAB);
    cr_assert(a && b);
    cr_assert(memcmp(a, b, sizeof(double) * 12) == 0);
    free(a);
    free(b);
}

Test(segment, gauss_preserves_flat_and_mass)
{
    /* Flat stays flat (the kernel sums to 1, reflect adds no edge); a
     * point keeps its mass when the kernel fits inside the image. */
    double px[3 * 9 * 11];
    for (int i = 0; i < 3 * 99; i++)
        px[i] = 0.5;
    cr_assert_eq(sm_segment_gauss(px, 9, 11, 1.5), 0);
    for (int i = 0; i < 3 * 99; i++)
        cr_assert(fabs(px[i] - 0.5) < 1e-12);
    memset(px, 0, sizeof px);
    px[3 * (4 * 11 + 5)] = 1;
    cr_assert_eq(sm_segment_gauss(px, 9, 11, 0.8), 0);
    double sum = 0;
    for (int i = 0; i < 99; i++)
        sum += px[3 * i];
    cr_assert(fabs(sum - 1) < 1e-12, "mass %g", sum);
    cr_assert(px[3 * (4 * 11 + 4)] == px[3 * (4 * 11 + 6)], "symmetric");
}

Test(segment, grayscale_segments_as_its_rgb_copy)
{
    scene g = discs(28, 28);
    float *rgb = malloc(sizeof(float) * 3 * 28 * 28);
    int32_t a[28 * 28], b[28 * 28];
    cr_assert(rgb);
    for (int k = 0; k < 3; k++)
        memcpy(rgb + k * 28 * 28, g.px, sizeof(float) * 28 * 28);
    for (int m = 0; m < 4; m++) {
        sm_segment_params p = params((sm_segment_method)m);
        p.quickshift.kernel_size = 1;
        int na = 0, nb = 0;
        sm_err err = {0};
        cr_assert_eq(sm_segment(&p, g.px, 1, 28, 28, a, &na, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(sm_segment(&p, rgb, 3, 28, 28, b, &nb, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(na, nb, "%s", sm_segment_method_name(m));
        cr_assert(memcmp(a, b, sizeof a) == 0, "%s",
                  sm_segment_method_name(m));
    }
    free(rgb);
    scene_free(&g);
}

/* --- grid -------------------------------------------------------------- */

Test(segment, grid_exact_counts)
{
    sm_segment_params p = params(SM_SEGMENT_GRID);
    static const int hw[][3] = {{28, 28, 4}, {28, 28, 7}, {224, 224, 8},
                                {10, 7, 7}, {5, 9, 2}};
    for (size_t t = 0; t < sizeof hw / sizeof *hw; t++) {
        int h = hw[t][0], w = hw[t][1], g = hw[t][2], n = 0;
        p.grid.cells = g;
        float *img = calloc((size_t)h * w, sizeof(float));
        int32_t *lab = malloc(sizeof(int32_t) * (size_t)h * w);
        int *count = calloc((size_t)g * g, sizeof(int));
        sm_err err = {0};
        cr_assert_eq(sm_segment(&p, img, 1, h, w, lab, &n, &err), 0, "%s",
                     err.msg);
        cr_assert_eq(n, g * g);
        for (int i = 0; i < h * w; i++)
            count[lab[i]]++;
        /* Cells of floor(h/g) or ceil(h/g) rows, likewise columns. */
        for (int k = 0; k < g * g; k++) {
            int lo = (h / g) * (w / g);
            int hi = ((h + g - 1) / g) * ((w + g - 1) / g);
            cr_assert(count[k] >= lo && count[k] <= hi, "cell %d: %d px", k,
                      count[k]);
        }
        /* Row-major cells: the first row of pixels runs through 0..g-1. */
        cr_assert_eq(lab[0], 0);
        cr_assert_eq(lab[w - 1], g - 1);
        cr_assert_eq(lab[h * w - 1], g * g - 1);
        free(img);
        free(lab);
        free(count);
    }
}

Test(segment, grid_respects_aligned_quadrants)
{
    scene s = quadrants(28, 28);
    sm_segment_params p = params(SM_SEGMENT_GRID);
    p.grid.cells = 4;
    cr_assert_eq(run(&p, &s, NULL), 16);
    scene_free(&s);
}

/* --- quickshift -------------------------------------------------------- */

Test(segment, quickshift_quadrants)
{
    scene s = quadrants(40, 40);
    sm_segment_params p = params(SM_SEGMENT_QUICKSHIFT);
    run(&p, &s, NULL);
    scene_free(&s);
}

Test(segment, quickshift_discs_mnist_settings)
{
    scene s = discs(28, 28);
    sm_segment_params p = params(SM_SEGMENT_QUICKSHIFT);
    p.quickshift.kernel_size = 1;
    run(&p, &s, NULL);
    scene_free(&s);
}

/* Blocks wider than the search window (2 ceil(3 k) + 1 = 25): the density
 * modes of equal flat blocks closer than that link to each other, since
 * max_dist 200 cuts nothing at ratio 0.2, as in the reference. */
Test(segment, quickshift_checker)
{
    scene s = checker(3, 16);
    sm_segment_params p = params(SM_SEGMENT_QUICKSHIFT);
    int n = run(&p, &s, NULL);
    cr_assert(n >= 9, "%d segments for 9 blocks", n);
    scene_free(&s);
}

/* --- SLIC -------------------------------------------------------------- */

/* Smoothing moves region edges by design (scikit-image's segments cross
 * the blurred edges too), so the region tests of SLIC and Felzenszwalb
 * run without it; the fixtures below cover the default sigma. */

Test(segment, slic_quadrants)
{
    scene s = quadrants(40, 40);
    sm_segment_params p = params(SM_SEGMENT_SLIC);
    p.slic.sigma = 0;
    int n = run(&p, &s, NULL);
    cr_assert(n >= 4);
    scene_free(&s);
}

Test(segment, slic_discs_small)
{
    scene s = discs(28, 28);
    sm_segment_params p = params(SM_SEGMENT_SLIC);
    p.slic.sigma = 0;
    p.slic.n_segments = 30;
    run(&p, &s, NULL);
    scene_free(&s);
}

Test(segment, slic_checker)
{
    scene s = checker(4, 12);
    sm_segment_params p = params(SM_SEGMENT_SLIC);
    p.slic.sigma = 0;
    p.slic.n_segments = 64;
    int n = run(&p, &s, NULL);
    cr_assert(n >= 16, "%d segments for 16 blocks", n);
    scene_free(&s);
}

Test(segment, slic_without_connectivity_is_contiguous)
{
    scene s = quadrants(28, 28);
    sm_segment_params p = params(SM_SEGMENT_SLIC);
    p.slic.enforce_connectivity = 0;
    p.slic.sigma = 0;
    run(&p, &s, NULL);
    scene_free(&s);
}

/* --- Felzenszwalb ------------------------------------------------------ */

Test(segment, felzenszwalb_quadrants)
{
    scene s = quadrants(40, 40);
    sm_segment_params p = params(SM_SEGMENT_FELZENSZWALB);
    p.felzenszwalb.sigma = 0;
    int n = run(&p, &s, NULL);
    cr_assert(n >= 4);
    scene_free(&s);
}

Test(segment, felzenszwalb_discs_small)
{
    scene s = discs(28, 28);
    sm_segment_params p = params(SM_SEGMENT_FELZENSZWALB);
    p.felzenszwalb.sigma = 0;
    run(&p, &s, NULL);
    scene_free(&s);
}

Test(segment, felzenszwalb_checker)
{
    scene s = checker(4, 12);
    sm_segment_params p = params(SM_SEGMENT_FELZENSZWALB);
    p.felzenszwalb.sigma = 0;
    int n = run(&p, &s, NULL);
    cr_assert_eq(n, 16, "%d segments for 16 blocks", n);
    scene_free(&s);
}

/* --- against scikit-image 0.19.3 (tests/fixtures/segment) ------------- */

/* Runs method with its defaults (kernel_size ks for quickshift) on the
 * fixture image `name` and compares with skimage's labels: exactly, or as
 * a partition (same pixels together, whatever the label numbers) when
 * exact is 0. */
static void against_skimage(const char *name, sm_segment_method m, double ks,
                            int exact)
{
    char path[256];
    sm_err err = {0};
    snprintf(path, sizeof path, FIX "%s_image.npy", name);
    sm_tensor *img = sm_npy_read(path, &err);
    cr_assert(img, "%s", err.msg);
    snprintf(path, sizeof path, FIX "%s_%s.npy", name,
             sm_segment_method_name(m));
    sm_tensor *ref = sm_npy_read(path, &err);
    cr_assert(ref, "%s", err.msg);
    int c = (int)img->shape[0], h = (int)img->shape[1], w = (int)img->shape[2];
    int hw = h * w, n = 0;
    sm_segment_params p = params(m);
    p.quickshift.kernel_size = ks;
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)hw);
    cr_assert(lab);
    cr_assert_eq(sm_segment(&p, img->data, c, h, w, lab, &n, &err), 0, "%s",
                 err.msg);
    int n_ref = 0;
    for (int i = 0; i < hw; i++)
        n_ref = (int)ref->data[i] + 1 > n_ref ? (int)ref->data[i] + 1 : n_ref;
    cr_assert_eq(n, n_ref, "%s %s: %d segments, skimage %d", name,
                 sm_segment_method_name(m), n, n_ref);
    /* A bijection between the labels: each of ours maps to one of theirs. */
    int *to = malloc(sizeof(int) * (size_t)n);
    cr_assert(to);
    for (int k = 0; k < n; k++)
        to[k] = -1;
    for (int i = 0; i < hw; i++) {
        int r = (int)ref->data[i];
        if (exact)
            cr_assert_eq(lab[i], r, "%s %s: pixel (%d,%d) label %d, skimage %d",
                         name, sm_segment_method_name(m), i / w, i % w, lab[i],
                         r);
        if (to[lab[i]] < 0)
            to[lab[i]] = r;
        cr_assert_eq(to[lab[i]], r,
                     "%s %s: pixel (%d,%d) joins another segment", name,
                     sm_segment_method_name(m), i / w, i % w);
    }
    free(to);
    free(lab);
    sm_tensor_destroy(&img);
    sm_tensor_destroy(&ref);
}

Test(segment, quickshift_matches_skimage)
{
    against_skimage("rgb40x56", SM_SEGMENT_QUICKSHIFT, 4, 0);
    against_skimage("gray28", SM_SEGMENT_QUICKSHIFT, 1, 0);
}

Test(segment, slic_matches_skimage)
{
    against_skimage("rgb40x56", SM_SEGMENT_SLIC, 4, 1);
    against_skimage("gray28", SM_SEGMENT_SLIC, 4, 1);
}

Test(segment, felzenszwalb_matches_skimage)
{
    against_skimage("rgb40x56", SM_SEGMENT_FELZENSZWALB, 4, 1);
    against_skimage("gray28", SM_SEGMENT_FELZENSZWALB, 4, 1);
}

/* --- errors ------------------------------------------------------------ */

Test(segment, single_segment_names_the_parameters)
{
    float img[28 * 28] = {0};
    int32_t lab[28 * 28];
    int n = 0;
    sm_err err = {0};
    sm_segment_params p = params(SM_SEGMENT_QUICKSHIFT);
    cr_assert_eq(sm_segment(&p, img, 1, 28, 28, lab, &n, &err), -1);
    cr_assert(strstr(err.msg, "quickshift (kernel_size 4, max_dist 200, "
                              "ratio 0.2") != NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "found 1 segment in a 28x28 image") != NULL,
              "%s", err.msg);
    cr_assert(strstr(err.msg, "lower kernel_size") != NULL, "%s", err.msg);
    p = params(SM_SEGMENT_GRID);
    p.grid.cells = 1;
    cr_assert_eq(sm_segment(&p, img, 1, 28, 28, lab, &n, &err), -1);
    cr_assert(strstr(err.msg, "grid (cells 1) found 1 segment") != NULL, "%s",
              err.msg);
}

Test(segment, bad_parameters_refused)
{
    float img[3 * 8 * 8] = {0};
    int32_t lab[64];
    int n = 0;
    sm_err err = {0};
    sm_segment_params p;
#define REFUSED(what, field, value)                                          \
    do {                                                                     \
        p = params(what);                                                    \
        p.field = value;                                                     \
        cr_assert_eq(sm_segment(&p, img, 3, 8, 8, lab, &n, &err), -1,        \
                     #field " = " #value " accepted");                       \
    } while (0)
    REFUSED(SM_SEGMENT_GRID, grid.cells, 0);
    REFUSED(SM_SEGMENT_GRID, grid.cells, 9);
    REFUSED(SM_SEGMENT_QUICKSHIFT, quickshift.kernel_size, 0.5);
    REFUSED(SM_SEGMENT_QUICKSHIFT, quickshift.kernel_size, NAN);
    REFUSED(SM_SEGMENT_QUICKSHIFT, quickshift.max_dist, 0);
    REFUSED(SM_SEGMENT_QUICKSHIFT, quickshift.ratio, 1.5);
    REFUSED(SM_SEGMENT_QUICKSHIFT, quickshift.sigma, -1);
    REFUSED(SM_SEGMENT_SLIC, slic.n_segments, 0);
    REFUSED(SM_SEGMENT_SLIC, slic.compactness, 0);
    REFUSED(SM_SEGMENT_SLIC, slic.max_iter, 0);
    REFUSED(SM_SEGMENT_SLIC, slic.sigma, NAN);
    REFUSED(SM_SEGMENT_FELZENSZWALB, felzenszwalb.scale, -1);
    REFUSED(SM_SEGMENT_FELZENSZWALB, felzenszwalb.sigma, INFINITY);
    REFUSED(SM_SEGMENT_FELZENSZWALB, felzenszwalb.min_size, -1);
    REFUSED(SM_SEGMENT_GRID, method, (sm_segment_method)7);
#undef REFUSED
    p = params(SM_SEGMENT_GRID);
    cr_assert_eq(sm_segment(&p, img, 2, 8, 8, lab, &n, &err), -1);
    cr_assert(strstr(err.msg, "2 channels") != NULL, "%s", err.msg);
    cr_assert_eq(sm_segment(&p, img, 3, 0, 8, lab, &n, &err), -1);
    img[5] = NAN;
    cr_assert_eq(sm_segment(&p, img, 3, 8, 8, lab, &n, &err), -1);
    cr_assert(strstr(err.msg, "not finite") != NULL, "%s", err.msg);
}

Test(segment, method_names)
{
    for (int m = 0; m < 4; m++)
        cr_assert_eq(sm_segment_method_parse(sm_segment_method_name(m)), m);
    cr_assert_eq(sm_segment_method_parse("watershed"), -1);
}
