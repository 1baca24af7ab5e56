/* The figure and the report (report/figure, report/report and their
 * helpers) on a small output folder written here: job.json through
 * sm_jobinfo_write, maps through core/io/npy, inputs as PNGs by libvips,
 * index.csv by hand. figure.png is decoded back and its pixels checked
 * against levels computed by hand; figure.svg is parsed by GLib's strict
 * XML parser; the pages are searched for what they must (and must not)
 * hold. */
#include <criterion/criterion.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <vips/vips.h>

#include "io/npy.h"
#include "render/colormap.h"
#include "report/csvtab.h"
#include "report/figure.h"
#include "report/html.h"
#include "io/jobinfo.h"
#include "report/report.h"
#include "tdata.h"
#include "util/file.h"
#include "util/text.h"

TDATA_SUITE(report);

#define H 4
#define W 6
#define HOSTILE "</script><img src=x onerror=alert(1)>"

static const char *const ids[3] = {"a/x1", "b/x2", "a/x3 #%"};
static const char *const labels[3] = {"1", "2", "</script><b>"};
static const char *const preds[3] = {"1", "1", "7"};

/* sal of image i: q/2, 3q/2, q at pixel q (the middle row largest);
 * grad: (i + 1) (q - 12) / 4 */
static float sal_at(int i, int q) { return (float)((i == 0 ? 1 : i == 1 ? 3 : 2) * 0.5 * q); }
static float grad_at(int i, int q) { return (float)((i + 1) * 0.25 * (q - 12)); }

static void put_map(const char *out, const char *id, const char *method,
                    float (*f)(int, int), int i, int h, int w)
{
    char rel[256], path[TDATA_PATH], d[TDATA_PATH];
    float v[64];
    for (int q = 0; q < h * w; q++)
        v[q] = f(i, q);
    snprintf(rel, sizeof rel, "maps/%s", id);
    sm_err err;
    cr_assert_eq(sm_file_mkdirs(tdata_path(d, out, rel), &err), 0, "%s", err.msg);
    snprintf(rel, sizeof rel, "maps/%s/%s.npy", id, method);
    sm_tensor t = {.ndim = 2, .shape = {h, w}, .data = v};
    cr_assert_eq(sm_npy_write(tdata_path(path, out, rel), &t, &err), 0, "%s",
                 err.msg);
}

/* The folder: job.json (when job), maps, inputs, records, index.csv with
 * a metric column the code does not know (new_metric). */
static void make_out(const char *out, int job, const char *const *lab)
{
    char path[TDATA_PATH], rel[256];
    sm_err err;
    if (job) {
        sm_jobinfo_method m[2] = {{"sal", "{}", 0},
                                  {"grad", "{\"k\": 1, \"r\": 0.25}", 1}};
        const char *workers[1] = {"w<1>"};
        sm_jobinfo ji = {.id = "jtest", .name = "a <test> job",
                         .model = "m.onnx", .dataset = "nowhere",
                         .channels = 1, .height = H, .width = W,
                         .methods = m, .n_methods = 2, .seed = 7,
                         .target = "predicted", .score = "logit",
                         .metrics = 1, .images = 3, .started = 1e9,
                         .finished = 1e9 + 5, .workers = workers,
                         .n_workers = 1, .maps = 6, .state = "done"};
        cr_assert_eq(sm_jobinfo_write(out, &ji, &err), 0, "%s", err.msg);
    }
    sm_text idx = {0};
    sm_text_addf(&idx, "id,label,predicted,target,score,method,seconds,evals,"
                       "deletion_auc,insertion_auc,new_metric,params,extras\n");
    for (int i = 0; i < 3; i++) {
        put_map(out, ids[i], "sal", sal_at, i, H, W);
        put_map(out, ids[i], "grad", grad_at, i, H, W);
        uint8_t px[H * W];
        for (int q = 0; q < H * W; q++)
            px[q] = (uint8_t)(10 * q + i);
        snprintf(rel, sizeof rel, "maps/%s/input.png", ids[i]);
        tdata_png(path, out, rel, px, W, H, 1);
        snprintf(rel, sizeof rel, "maps/%s/grad.json", ids[i]);
        tdata_text(path, out, rel,
                   i == 0 ? "{\"note\": \"" HOSTILE "\", \"rule\": {"
                            "\"premises\": [{\"superpixel\": 3, \"shown\": "
                            "true}, {\"dim\": 2, \"gt\": -0.5, \"le\": 1.5}], "
                            "\"label\": \"1\"}}"
                          : "{\"scale\": {\"colormap\": \"diverging\"}}");
        for (int m = 0; m < 2; m++) {
            sm_text_csv(&idx, ids[i]);
            sm_text_addf(&idx, ",");
            sm_text_csv(&idx, lab[i]);
            sm_text_addf(&idx, ",%s,%s,1.5,%s,0.01,1,%s,0.9,%s,{},", preds[i],
                         preds[i], m ? "grad" : "sal",
                         m ? "0.1" : i == 0 ? "0.2" : i == 1 ? "0.4" : "0.6",
                         m ? (i == 0 ? "1" : i == 1 ? "2" : "3") : "");
            sm_text_csv(&idx, m == 1 && i == 0 ? "{\"note\": \"" HOSTILE "\"}"
                                               : "{}");
            sm_text_addf(&idx, "\n");
        }
    }
    tdata_write(path, out, "index.csv", idx.s, idx.len);
    sm_text_free(&idx);
}

typedef struct png {
    uint8_t *px;
    int w, h, bands;
} png;

static png read_png(const char *path)
{
    VipsImage *im = vips_image_new_from_file(path, NULL);
    cr_assert_not_null(im, "%s: %s", path, vips_error_buffer());
    png p = {.w = vips_image_get_width(im), .h = vips_image_get_height(im),
             .bands = vips_image_get_bands(im)};
    size_t n;
    p.px = vips_image_write_to_memory(im, &n);
    cr_assert_eq(n, (size_t)p.w * p.h * p.bands);
    g_object_unref(im);
    return p;
}

/* The canvas pixel at the centre of map pixel (y, x) of cell (row, col). */
static const uint8_t *cell_px(const png *p, const sm_figure_layout *l,
                              int row, int col, int y, int x)
{
    int cx, cy;
    sm_figure_cell_xy(l, row, col, &cx, &cy);
    cx += x * l->zoom + l->zoom / 2;
    cy += y * l->zoom + l->zoom / 2;
    return p->px + ((size_t)cy * p->w + cx) * p->bands;
}

static void assert_level(const uint8_t *got, sm_cmap_kind k, int level,
                         const char *what)
{
    uint8_t want[3];
    sm_cmap_rgb(k, level, want);
    cr_assert(!memcmp(got, want, 3), "%s: got (%d,%d,%d), level %d is "
              "(%d,%d,%d)", what, got[0], got[1], got[2], level, want[0],
              want[1], want[2]);
}

static char *slurp(const char *out, const char *rel)
{
    char path[TDATA_PATH];
    size_t len;
    sm_err err;
    char *s = (char *)sm_file_read(tdata_path(path, out, rel), 64 << 20, &len,
                                   &err);
    cr_assert_not_null(s, "%s", err.msg);
    s = realloc(s, len + 1);
    s[len] = '\0';
    return s;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* --- the figure ----------------------------------------------------- */

Test(report, figure_png_cells_have_the_maps_colours)
{
    make_out(dir, 1, labels);
    sm_err err;
    cr_assert_eq(sm_report_figure(dir, NULL, &err), 0, "%s", err.msg);
    /* default: one image per label (three labels): 3 rows, input + 2 */
    sm_figure_layout l;
    sm_figure_layout_of(3, 3, H, W, &l);
    cr_assert_eq(l.zoom, 19); /* ceil(112 / 6) */
    char path[TDATA_PATH];
    png p = read_png(tdata_path(path, dir, "figure.png"));
    cr_assert_eq(p.w, l.width);
    cr_assert_eq(p.h, l.height);
    cr_assert_eq(p.bands, 3);
    /* sal's column: one scale over the three rows, [0, 34.5] (row 1's);
     * row 2 at (2, 3), q = 15: 15 / 34.5 * 255 = 110.87 -> level 111 */
    assert_level(cell_px(&p, &l, 2, 1, 2, 3), SM_CMAP_SEQUENTIAL, 111,
                 "sal, row 2, (2, 3)");
    assert_level(cell_px(&p, &l, 2, 1, 3, 5), SM_CMAP_SEQUENTIAL, 170,
                 "sal, row 2, its maximum: 23 / 34.5 * 255");
    assert_level(cell_px(&p, &l, 1, 1, 3, 5), SM_CMAP_SEQUENTIAL, 255,
                 "sal, row 1, the column's maximum");
    assert_level(cell_px(&p, &l, 0, 1, 0, 0), SM_CMAP_SEQUENTIAL, 0,
                 "sal, row 0, 0");
    /* grad's: diverging, [-9, 9]; row 0 at q = 0: -3 -> 6/18 -> 85 */
    assert_level(cell_px(&p, &l, 0, 2, 0, 0), SM_CMAP_DIVERGING, 85,
                 "grad, row 0, (0, 0)");
    /* row 1 at q = 12: 0 -> the middle, 127.5 -> 128 */
    assert_level(cell_px(&p, &l, 1, 2, 2, 0), SM_CMAP_DIVERGING, 128,
                 "grad, row 1, (2, 0)");
    /* the input: grey 10 q + i; row 2 at q = 7 (1, 1): 72 */
    const uint8_t *g = cell_px(&p, &l, 2, 0, 1, 1);
    cr_assert(g[0] == 72 && g[1] == 72 && g[2] == 72, "input: %d %d %d",
              g[0], g[1], g[2]);
    /* the colour bars: level 0 at the left, 255 at the right */
    for (int col = 1; col < 3; col++) {
        int bx, by;
        sm_figure_bar_xy(&l, col, &bx, &by);
        sm_cmap_kind k = col == 1 ? SM_CMAP_SEQUENTIAL : SM_CMAP_DIVERGING;
        assert_level(p.px + ((size_t)(by + 2) * p.w + bx) * 3, k, 0, "bar left");
        assert_level(p.px + ((size_t)(by + 2) * p.w + bx + l.cell_w - 1) * 3,
                     k, 255, "bar right");
    }
    /* titles are drawn: dark ink in row 0's caption band, red ink in
     * row 1's (label 2, predicted 1) */
    int cx, cy, dark = 0, red = 0;
    sm_figure_cell_xy(&l, 0, 0, &cx, &cy);
    for (int y = cy - l.caption_h; y < cy; y++)
        for (int x = cx; x < cx + l.cell_w; x++)
            dark += p.px[((size_t)y * p.w + x) * 3] < 100;
    sm_figure_cell_xy(&l, 1, 0, &cx, &cy);
    for (int y = cy - l.caption_h; y < cy; y++)
        for (int x = cx; x < cx + l.cell_w; x++) {
            const uint8_t *q = p.px + ((size_t)y * p.w + x) * 3;
            red += q[0] > 120 && q[1] < 60 && q[2] < 60;
        }
    cr_assert_gt(dark, 10, "no caption ink");
    cr_assert_gt(red, 10, "a wrong prediction's caption is not red");
    g_free(p.px);
}

/* GMarkup: well-formedness, and the elements counted by name. */
typedef struct svg_count {
    int image, text, gradient, data_png;
} svg_count;

static void on_start(GMarkupParseContext *c, const gchar *name,
                     const gchar **an, const gchar **av, gpointer u,
                     GError **e)
{
    (void)c;
    (void)e;
    svg_count *n = u;
    n->image += !strcmp(name, "image");
    n->text += !strcmp(name, "text");
    n->gradient += !strcmp(name, "linearGradient");
    for (int k = 0; an[k]; k++)
        n->data_png += !strcmp(an[k], "xlink:href") &&
                       !strncmp(av[k], "data:image/png;base64,", 22);
}

static svg_count parse_svg(const char *text)
{
    GMarkupParser parser = {.start_element = on_start};
    svg_count n = {0};
    GError *e = NULL;
    GMarkupParseContext *c = g_markup_parse_context_new(&parser, 0, &n, NULL);
    gboolean ok = g_markup_parse_context_parse(c, text, -1, &e) &&
                  g_markup_parse_context_end_parse(c, &e);
    cr_assert(ok, "figure.svg is not well-formed: %s", e ? e->message : "?");
    g_markup_parse_context_free(c);
    return n;
}

Test(report, figure_svg_is_well_formed_with_an_image_a_cell)
{
    make_out(dir, 1, labels);
    sm_err err;
    cr_assert_eq(sm_report_figure(dir, NULL, &err), 0, "%s", err.msg);
    char *svg = slurp(dir, "figure.svg");
    svg_count n = parse_svg(svg);
    cr_assert_eq(n.image, 9, "3 rows x 3 columns, got %d images", n.image);
    cr_assert_eq(n.data_png, 9);
    cr_assert_eq(n.gradient, 2, "a colour bar a method");
    cr_assert_geq(n.text, 3 + 3 + 4, "titles, captions, bar ends");
    cr_assert(tdata_has(svg, "label &lt;/script&gt;&lt;b&gt;"));
    cr_assert(!tdata_has(svg, "<b>"));
    cr_assert(!tdata_has(svg, "href=\"http"), "refers outside itself");
    /* an inline cell decodes to the cell's size */
    const char *b64 = strstr(svg, "base64,") + 7;
    size_t blen = strcspn(b64, "\""), bin;
    char *b64z = g_strndup(b64, blen);
    guchar *raw = g_base64_decode(b64z, &bin);
    g_free(b64z);
    VipsImage *im = vips_image_new_from_buffer(raw, bin, "", NULL);
    cr_assert_not_null(im);
    cr_assert_eq(vips_image_get_width(im), 19 * W);
    cr_assert_eq(vips_image_get_height(im), 19 * H);
    g_object_unref(im);
    g_free(raw);
    free(svg);
}

Test(report, figure_chooses_rows_and_columns)
{
    make_out(dir, 1, labels);
    sm_err err;
    char path[TDATA_PATH];
    sm_figure_layout l;
    sm_figure_opts o = {.ids = "a/x3 #%,b/x2", .methods = "grad"};
    cr_assert_eq(sm_report_figure(dir, &o, &err), 0, "%s", err.msg);
    sm_figure_layout_of(2, 2, H, W, &l);
    png p = read_png(tdata_path(path, dir, "figure.png"));
    cr_assert(p.w == l.width && p.h == l.height, "%d x %d", p.w, p.h);
    /* row 0 is image 3: grad [-9, 8.25] with image 2's [-6, 5.5]: m = 9;
     * at q = 23: 8.25 -> (8.25 + 9) / 18 * 255 = 244.4 -> 244 */
    assert_level(cell_px(&p, &l, 0, 1, 3, 5), SM_CMAP_DIVERGING, 244,
                 "grad of image 3");
    g_free(p.px);
    char *svg = slurp(dir, "figure.svg");
    cr_assert_eq(parse_svg(svg).image, 4);
    free(svg);

    o = (sm_figure_opts){.first = 2};
    cr_assert_eq(sm_report_figure(dir, &o, &err), 0, "%s", err.msg);
    svg = slurp(dir, "figure.svg");
    cr_assert_eq(parse_svg(svg).image, 2 * 3);
    free(svg);
    o = (sm_figure_opts){.per_class = 5}; /* label 1 once, 2 once, ... */
    cr_assert_eq(sm_report_figure(dir, &o, &err), 0, "%s", err.msg);
    svg = slurp(dir, "figure.svg");
    cr_assert_eq(parse_svg(svg).image, 3 * 3);
    free(svg);
}

Test(report, figure_errors_name_what_is_wrong)
{
    sm_err err;
    char sub[TDATA_PATH], path[TDATA_PATH];
    tdata_path(sub, dir, "missing");
    cr_assert_eq(sm_report_figure(sub, NULL, &err), -1);
    cr_assert(tdata_has(err.msg, "no such folder"), "%s", err.msg);
    cr_assert_eq(sm_report_figure(dir, NULL, &err), -1);
    cr_assert(tdata_has(err.msg, "no index.csv"), "%s", err.msg);
    cr_assert_eq(sm_report_write(dir, &err), -1);
    cr_assert(tdata_has(err.msg, "no index.csv"), "%s", err.msg);

    make_out(dir, 1, labels);
    sm_figure_opts o = {.ids = "a/x1,a/nope"};
    cr_assert_eq(sm_report_figure(dir, &o, &err), -1);
    cr_assert(tdata_has(err.msg, "'a/nope'") && tdata_has(err.msg, "index.csv"),
              "%s", err.msg);
    o = (sm_figure_opts){.methods = "sal,zzz"};
    cr_assert_eq(sm_report_figure(dir, &o, &err), -1);
    cr_assert(tdata_has(err.msg, "'zzz'") && tdata_has(err.msg, "sal, grad"),
              "%s", err.msg);
    o = (sm_figure_opts){.first = SM_FIGURE_MAX_ROWS + 1};
    cr_assert_eq(sm_report_figure(dir, &o, &err), 0, "%s", err.msg); /* 3 */

    /* a map of another size */
    put_map(dir, ids[1], "sal", sal_at, 1, 3, 3);
    cr_assert_eq(sm_report_figure(dir, NULL, &err), -1);
    cr_assert(tdata_has(err.msg, "b/x2/sal.npy") && tdata_has(err.msg, "4 x 6"),
              "%s", err.msg);

    /* no labels: per class is impossible; the default takes the first */
    char *unl = tdata_path(sub, dir, "unlabelled");
    const char *const none[3] = {"", "", ""};
    make_out(unl, 0, none);
    o = (sm_figure_opts){.per_class = 1};
    cr_assert_eq(sm_report_figure(unl, &o, &err), -1);
    cr_assert(tdata_has(err.msg, "no labels"), "%s", err.msg);
    cr_assert_eq(sm_report_figure(unl, NULL, &err), 0, "%s", err.msg);
    char *svg = slurp(unl, "figure.svg");
    cr_assert_eq(parse_svg(svg).image, 3 * 3);
    cr_assert(tdata_has(svg, ">pred 7<"), "unlabelled caption");
    free(svg);

    /* a header and no rows */
    tdata_text(path, unl, "index.csv", "id,method\n");
    cr_assert_eq(sm_report_figure(unl, NULL, &err), -1);
    cr_assert(tdata_has(err.msg, "no rows"), "%s", err.msg);
    /* an id that leaves the folder */
    tdata_text(path, unl, "index.csv", "id,method\n../../etc/x,sal\n");
    cr_assert_eq(sm_report_write(unl, &err), -1);
    cr_assert(tdata_has(err.msg, "row 2") && tdata_has(err.msg, "safe"), "%s",
              err.msg);
}

Test(report, figure_reads_inputs_the_render_pass_zoomed)
{
    make_out(dir, 1, labels);
    /* image 1's input.png at 3 x, each block a pixel's grey (10 q + 0),
     * and a stray value off the blocks' centres, which must not be read */
    uint8_t px[3 * H * 3 * W];
    for (int y = 0; y < 3 * H; y++)
        for (int x = 0; x < 3 * W; x++)
            px[y * 3 * W + x] = y % 3 == 1 && x % 3 == 1
                                    ? (uint8_t)(10 * ((y / 3) * W + x / 3))
                                    : 255;
    char path[TDATA_PATH];
    tdata_png(path, dir, "maps/a/x1/input.png", px, 3 * W, 3 * H, 1);
    sm_err err;
    sm_figure_opts o = {.ids = "a/x1"};
    cr_assert_eq(sm_report_figure(dir, &o, &err), 0, "%s", err.msg);
    sm_figure_layout l;
    sm_figure_layout_of(1, 3, H, W, &l);
    png p = read_png(tdata_path(path, dir, "figure.png"));
    for (int q = 0; q < H * W; q++) {
        const uint8_t *g = cell_px(&p, &l, 0, 0, q / W, q % W);
        cr_assert_eq(g[0], 10 * q, "input pixel %d: %d", q, g[0]);
    }
    g_free(p.px);
    /* not a whole zoom of the input */
    tdata_png(path, dir, "maps/a/x1/input.png", px, 3 * W - 1, 3 * H, 1);
    cr_assert_eq(sm_report_figure(dir, &o, &err), -1);
    cr_assert(tdata_has(err.msg, "a/x1/input.png") &&
              tdata_has(err.msg, "not the 4 x 6 x 1 input"), "%s", err.msg);
}

Test(report, a_missing_map_is_a_grey_cell_and_a_missing_row_said)
{
    make_out(dir, 1, labels);
    char path[TDATA_PATH];
    cr_assert_eq(remove(tdata_path(path, dir, "maps/b/x2/grad.npy")), 0);
    sm_err err;
    cr_assert_eq(sm_report_figure(dir, NULL, &err), 0, "%s", err.msg);
    sm_figure_layout l;
    sm_figure_layout_of(3, 3, H, W, &l);
    png p = read_png(tdata_path(path, dir, "figure.png"));
    const uint8_t *g = cell_px(&p, &l, 1, 2, 0, 0);
    cr_assert(g[0] == 235 && g[1] == 235 && g[2] == 235, "%d %d %d", g[0],
              g[1], g[2]);
    /* the column's scale is the other rows': m = 9 still (row 2) */
    assert_level(cell_px(&p, &l, 0, 2, 0, 0), SM_CMAP_DIVERGING, 85, "grad");
    g_free(p.px);
    /* index.csv without b/x2's grad row: its page says so */
    char *idx = slurp(dir, "index.csv"), *row = strstr(idx, "b/x2,2,1,1,1.5,grad");
    cr_assert_not_null(row);
    memmove(row, strchr(row, '\n') + 1, strlen(strchr(row, '\n') + 1) + 1);
    tdata_text(path, dir, "index.csv", idx);
    free(idx);
    cr_assert_eq(sm_report_write(dir, &err), 0, "%s", err.msg);
    char *page = slurp(dir, "report/images/b/x2.html");
    cr_assert(tdata_has(page, "No map: this (image, method) failed"));
    free(page);
}

/* --- the report ----------------------------------------------------- */

/* The text of the metrics table of method m. */
static char *metrics_table(const char *html, const char *m)
{
    char key[128];
    snprintf(key, sizeof key, "<table class=\"metrics\" data-method=\"%s\"", m);
    const char *a = strstr(html, key);
    cr_assert_not_null(a, "no metrics table for %s", m);
    const char *b = strstr(a, "</table>");
    return g_strndup(a, (gsize)(b - a));
}

Test(report, index_has_the_job_figure_metrics_and_images)
{
    make_out(dir, 1, labels);
    sm_err err;
    cr_assert_eq(sm_report_figure(dir, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_report_write(dir, &err), 0, "%s", err.msg);
    char *html = slurp(dir, "report/index.html");
    cr_assert_eq(count(html, "<table class=\"metrics\""), 2);
    /* sal's deletion AUC: 0.2, 0.4, 0.6: mean 0.4, sample sd 0.2 */
    char *sal = metrics_table(html, "sal"), *grad = metrics_table(html, "grad");
    cr_assert(tdata_has(sal, "<td>deletion_auc</td><td class=\"n\">3</td>"
                             "<td class=\"n\">0.4</td><td class=\"n\">0.2</td>"),
              "%s", sal);
    cr_assert(!tdata_has(sal, "new_metric"), "sal has no new_metric values");
    /* a column the code does not know, read by its name: 1, 2, 3 */
    cr_assert(tdata_has(grad, "<td>new_metric</td><td class=\"n\">3</td>"
                              "<td class=\"n\">2</td><td class=\"n\">1</td>"),
              "%s", grad);
    g_free(sal);
    g_free(grad);
    cr_assert(tdata_has(html, "src=\"../figure.png\""));
    cr_assert(tdata_has(html, "id=\"images\" data-images=\"3\""));
    cr_assert(tdata_has(html, "a &lt;test&gt; job"));
    cr_assert(tdata_has(html, "w&lt;1&gt;"));
    /* the label goes into the script's data escaped, and nothing ends
     * the scripts early */
    cr_assert(!tdata_has(html, "</script><b>"));
    cr_assert(tdata_has(html, "\\u003c/script\\u003e\\u003cb\\u003e"));
    cr_assert_eq(count(html, "</script>"), count(html, "<script"));
    cr_assert(!tdata_has(html, "id=\"sanity\""), "no sanity.csv, no plot");
    cr_assert(!tdata_has(html, "http://") && !tdata_has(html, "https://"));
    free(html);
}

Test(report, image_pages_escape_records_and_link_by_id)
{
    make_out(dir, 1, labels);
    sm_err err;
    cr_assert_eq(sm_report_write(dir, &err), 0, "%s", err.msg);
    char *p1 = slurp(dir, "report/images/a/x1.html");
    cr_assert(!tdata_has(p1, "<img src=x"), "the record's markup got through");
    cr_assert(tdata_has(p1, "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"));
    cr_assert(tdata_has(p1, "superpixel 3 shown <b>and</b> -0.5 &lt; "
                            "z<sub>2</sub> &#8804; 1.5"),
              "the rule");
    cr_assert(tdata_has(p1, "src=\"../../../maps/a/x1/input.png\""));
    cr_assert(tdata_has(p1, "href=\"../../index.html\""));
    free(p1);
    /* an id with a space, '#' and '%': its page, and links to it */
    char *p2 = slurp(dir, "report/images/b/x2.html");
    cr_assert(tdata_has(p2, "href=\"../../images/a/x3%20%23%25.html\""), "%s",
              p2);
    free(p2);
    char *p3 = slurp(dir, "report/images/a/x3 #%.html");
    cr_assert(tdata_has(p3, "label <b>&lt;/script&gt;&lt;b&gt;</b>"));
    cr_assert(tdata_has(p3, "maps/a/x3%20%23%25/input.png"));
    free(p3);
}

Test(report, sanity_plot_when_sanity_csv_exists)
{
    make_out(dir, 1, labels);
    char path[TDATA_PATH];
    tdata_text(path, dir, "sanity.csv",
               "method,step,layer,spearman,spearman_sd,spearman_abs,"
               "spearman_abs_sd,images\n"
               "sal,0,logits,0.5,0.1,0.6,0.1,3\nsal,1,fc1,0.2,0.1,0.3,0.1,3\n"
               "grad,0,logits,0.4,0.1,0.7,0.1,3\n"
               "grad,1,\"conv<1>\",0.1,0.1,0.2,0.1,3\n");
    sm_err err;
    cr_assert_eq(sm_report_write(dir, &err), 0, "%s", err.msg);
    char *html = slurp(dir, "report/index.html");
    cr_assert(tdata_has(html, "id=\"sanity\""));
    /* a line per method and its dashed |spearman| line, 2 points each */
    cr_assert_eq(count(html, "<polyline"), 4);
    cr_assert(tdata_has(html, "conv&lt;1&gt;"));
    free(html);
    tdata_text(path, dir, "sanity.csv", "method,layer\nsal,x\n");
    cr_assert_eq(sm_report_write(dir, &err), -1);
    cr_assert(tdata_has(err.msg, "sanity.csv") && tdata_has(err.msg, "'step'"),
              "%s", err.msg);
}

Test(report, commands_refuse_bad_arguments)
{
    char msg[TDATA_PATH], sub[TDATA_PATH];
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"figure", NULL}), 2);
    cr_assert(tdata_has(msg, "needs the output folder"), "%s", msg);
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"figure", dir, "--ids",
                                                         "a", "--first", "2",
                                                         NULL}),
                 2);
    cr_assert(tdata_has(msg, "give one of them"), "%s", msg);
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"figure", dir,
                                                         "--first", "0", NULL}),
                 2);
    tdata_path(sub, dir, "nothing");
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"report", sub, NULL}), 1);
    cr_assert(tdata_has(msg, "salmap report: ") && tdata_has(msg, "no such folder"),
              "%s", msg);
    make_out(dir, 1, labels);
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"figure", dir,
                                                         "--methods", "grad",
                                                         NULL}),
                 0, "%s", msg);
    cr_assert_eq(tdata_salmap(msg, dir, (const char *[]){"report", dir, NULL}),
                 0, "%s", msg);
}

/* --- helpers -------------------------------------------------------- */

Test(report, csvtab_reads_quotes_and_short_rows)
{
    char path[TDATA_PATH];
    sm_err err;
    tdata_text(path, dir, "t.csv",
               "a,b,c\r\n1,\"x,\"\"y\"\"\nz\",3\n\n4\n");
    sm_csvtab *t = sm_csvtab_load(path, 1 << 20, &err);
    cr_assert_not_null(t, "%s", err.msg);
    cr_assert_eq(sm_csvtab_rows(t), 2);
    cr_assert_eq(sm_csvtab_cols(t), 3);
    cr_assert_str_eq(sm_csvtab_name(t, 2), "c");
    cr_assert_str_eq(sm_csvtab_get(t, 0, sm_csvtab_col(t, "b")), "x,\"y\"\nz");
    cr_assert_str_eq(sm_csvtab_get(t, 1, 0), "4");
    cr_assert_str_eq(sm_csvtab_get(t, 1, 2), "");
    cr_assert_eq(sm_csvtab_col(t, "d"), -1);
    cr_assert_str_eq(sm_csvtab_get(t, 0, -1), "");
    double v;
    cr_assert(sm_csvtab_num(t, 0, 2, &v) && v == 3);
    cr_assert(!sm_csvtab_num(t, 0, 1, &v));
    cr_assert(!sm_csvtab_num(t, 1, 2, &v));
    sm_csvtab_destroy(&t);
    cr_assert_null(t);

    tdata_text(path, dir, "t.csv", "a,b\n1,2\n1,2,3\n");
    cr_assert_null(sm_csvtab_load(path, 1 << 20, &err));
    cr_assert(tdata_has(err.msg, "t.csv:3: 3 fields"), "%s", err.msg);
    tdata_text(path, dir, "t.csv", "a,b\n1,\"2\n");
    cr_assert_null(sm_csvtab_load(path, 1 << 20, &err));
    cr_assert(tdata_has(err.msg, "t.csv:2: unterminated"), "%s", err.msg);
    tdata_text(path, dir, "t.csv", "");
    cr_assert_null(sm_csvtab_load(path, 1 << 20, &err));
    cr_assert(tdata_has(err.msg, "no header"), "%s", err.msg);
}

Test(report, html_escapes_and_encodes)
{
    sm_text t = {0};
    cr_assert_eq(sm_html_esc(&t, "a<b>&\"c'"), 0);
    cr_assert_str_eq(t.s, "a&lt;b&gt;&amp;&quot;c&#39;");
    t.len = 0;
    sm_html_url(&t, "a b/c#d%e?f.g~h-_");
    cr_assert_str_eq(t.s, "a%20b/c%23d%25e%3Ff.g~h-_");
    t.len = 0;
    sm_html_script_json(&t, "[\"</script><!--&\"]");
    cr_assert_str_eq(t.s, "[\"\\u003c/script\\u003e\\u003c!--\\u0026\"]");
    t.len = 0;
    sm_html_base64(&t, "foobar", 6); /* RFC 4648's test vectors */
    sm_html_base64(&t, "fo", 2);
    cr_assert_str_eq(t.s, "Zm9vYmFyZm8=");
    sm_text_free(&t);
}
