/* The comparison figure (figure.h): cells drawn by render/image.h into one
 * RGB canvas written as a PNG, and the same cells as inline PNGs of an
 * SVG. Text is drawn by libvips' vips_text (pango), so it is markup-
 * escaped first. */
#include "report/figure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <vips/vips.h>

#include "data/dataset.h"
#include "data/image.h"
#include "io/npy.h"
#include "render/colormap.h"
#include "render/image.h"
#include "report/html.h"
#include "report/outdir.h"
#include "util/file.h"
#include "util/text.h"

#define FONT "DejaVu Sans"
#define TITLE_PT 11
#define CAPTION_PT 9
#define BAR_PT 9
#define RECORD_MAX ((size_t)64 << 20)

static const uint8_t black[3] = {0, 0, 0}, wrong[3] = {190, 0, 0},
                     missing_grey[3] = {235, 235, 235},
                     dim[3] = {110, 110, 110};

/* LeakSanitizer's hook (a sanitized build reads it at exit; elsewhere it
 * is never called): fontconfig, under pango under vips_text, keeps its
 * font configuration for the life of the process by design, which LSan
 * would report as leaks of every program that drew a title. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libfontconfig.so\n";
}

void sm_figure_layout_of(int rows, int cols, int map_h, int map_w,
                         sm_figure_layout *l)
{
    int big = map_h > map_w ? map_h : map_w;
    int zoom = (SM_FIGURE_CELL_PX + big - 1) / big;
    *l = (sm_figure_layout){.rows = rows, .cols = cols, .map_h = map_h,
                            .map_w = map_w, .zoom = zoom < 1 ? 1 : zoom,
                            .margin = 8, .gap = 6, .head_h = 20,
                            .caption_h = 16, .bar_h = 10, .bar_text_h = 16};
    l->cell_w = l->zoom * map_w;
    l->cell_h = l->zoom * map_h;
    l->width = 2 * l->margin + cols * l->cell_w + (cols - 1) * l->gap;
    int bx, by;
    sm_figure_bar_xy(l, 0, &bx, &by);
    l->height = by + l->bar_h + l->bar_text_h + l->margin;
}

void sm_figure_cell_xy(const sm_figure_layout *l, int row, int col, int *x,
                       int *y)
{
    *x = l->margin + col * (l->cell_w + l->gap);
    *y = l->margin + l->head_h + row * (l->caption_h + l->cell_h + l->gap) +
         l->caption_h;
}

void sm_figure_bar_xy(const sm_figure_layout *l, int col, int *x, int *y)
{
    *x = l->margin + col * (l->cell_w + l->gap);
    *y = l->margin + l->head_h + l->rows * (l->caption_h + l->cell_h + l->gap);
}

typedef struct fig {
    const char *out;
    sm_outdir *od;
    size_t *img;        /* the chosen images (outdir indices) */
    int rows;
    int *meth;          /* the chosen methods (outdir indices) */
    int n_meth;
    int h, w, c;        /* the maps' size, the inputs' channels */
    float **maps;       /* rows x n_meth, NULL where missing */
    float **inputs;     /* rows: c x h x w on 0..255 */
    sm_cmap_scale *scale; /* per chosen method */
    sm_dataset *ds;     /* opened when an input is read from it */
    sm_figure_layout l;
    uint8_t *canvas;    /* width x height x 3 */
} fig;

static void fig_free(fig *f)
{
    for (int k = 0; f->maps && k < f->rows * f->n_meth; k++)
        free(f->maps[k]);
    for (int r = 0; f->inputs && r < f->rows; r++)
        free(f->inputs[r]);
    free(f->maps);
    free(f->inputs);
    free(f->img);
    free(f->meth);
    free(f->scale);
    free(f->canvas);
    sm_dataset_destroy(&f->ds);
    sm_outdir_destroy(&f->od);
}

/* --- choosing ------------------------------------------------------- */

/* The next comma-separated item of *p into buf; 0 at the end. */
static int next_item(const char **p, char *buf, size_t cap)
{
    if (!**p)
        return 0;
    size_t n = strcspn(*p, ",");
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), *p);
    *p += n + ((*p)[n] == ',');
    return 1;
}

static int push_img(fig *f, size_t i, sm_err *err)
{
    if (f->rows >= SM_FIGURE_MAX_ROWS)
        return sm_err_set(err, "%s: more than %d images chosen: a figure "
                               "is for looking at (choose fewer)",
                          f->out, SM_FIGURE_MAX_ROWS);
    f->img[f->rows++] = i;
    return 0;
}

static int choose_images(fig *f, const sm_figure_opts *o, sm_err *err)
{
    const sm_outdir *od = f->od;
    f->img = calloc(SM_FIGURE_MAX_ROWS, sizeof *f->img);
    if (!f->img)
        return sm_err_set(err, "out of memory");
    if (o->ids) {
        char id[1024];
        for (const char *p = o->ids; next_item(&p, id, sizeof id);) {
            size_t i = sm_outdir_image_find(od, id);
            if (i == SM_OUTDIR_NONE)
                return sm_err_set(err, "image '%s' is not in %s/index.csv",
                                  id, f->out);
            if (push_img(f, i, err))
                return -1;
        }
        return f->rows ? 0 : sm_err_set(err, "--ids names no image");
    }
    int labelled = 0;
    for (size_t i = 0; i < od->n_images && !labelled; i++)
        labelled = *od->images[i].label != '\0';
    if (o->per_class || (!o->first && labelled)) {
        if (!labelled)
            return sm_err_set(err, "%s/index.csv has no labels: one image "
                                   "per class cannot be chosen",
                              f->out);
        /* classes in order of first appearance, the first K of each */
        int k = o->per_class ? o->per_class : 1;
        int max = o->per_class ? SM_FIGURE_MAX_ROWS + 1
                               : SM_FIGURE_DEFAULT_ROWS;
        char *seen = calloc(od->n_images, 1);
        if (!seen)
            return sm_err_set(err, "out of memory");
        int rc = 0;
        for (size_t i = 0; i < od->n_images && rc == 0 && f->rows < max; i++) {
            const char *lab = od->images[i].label;
            if (!*lab || seen[i])
                continue;
            int got = 0;
            for (size_t j = i; j < od->n_images && rc == 0; j++) {
                if (seen[j] || strcmp(od->images[j].label, lab))
                    continue;
                seen[j] = 1;
                if (got < k && f->rows < max)
                    got++, rc = push_img(f, j, err);
            }
        }
        free(seen);
        return rc;
    }
    size_t n = o->first ? (size_t)o->first : SM_FIGURE_DEFAULT_FIRST;
    for (size_t i = 0; i < n && i < od->n_images; i++)
        if (push_img(f, i, err))
            return -1;
    return 0;
}

static int map_path(const fig *f, char *buf, size_t row, int m,
                    const char *ext)
{
    char file[128];
    snprintf(file, sizeof file, "%s%s", f->od->methods[m].name, ext);
    return sm_outdir_path(f->od, buf, f->od->images[row].id, file);
}

/* The methods: the list given (each must be the job's and have a map in
 * some chosen row), or every method with such a map. */
static int choose_methods(fig *f, const sm_figure_opts *o, sm_err *err)
{
    const sm_outdir *od = f->od;
    char path[SM_OUTDIR_PATH];
    f->meth = calloc((size_t)od->n_methods + 64, sizeof *f->meth);
    if (!f->meth)
        return sm_err_set(err, "out of memory");
    if (o->methods) {
        char name[128];
        for (const char *p = o->methods; next_item(&p, name, sizeof name);) {
            int m = sm_outdir_method_find(od, name);
            if (m < 0) {
                sm_text t = {0};
                for (int k = 0; k < od->n_methods; k++)
                    sm_text_addf(&t, "%s%s", k ? ", " : "", od->methods[k].name);
                sm_err_set(err, "method '%s' is not in the job of %s (it has %s)",
                           name, f->out, t.s ? t.s : "none");
                sm_text_free(&t);
                return -1;
            }
            if (f->n_meth >= od->n_methods + 64)
                return sm_err_set(err, "--methods: too many");
            f->meth[f->n_meth++] = m;
        }
        if (!f->n_meth)
            return sm_err_set(err, "--methods names no method");
    } else {
        for (int m = 0; m < od->n_methods; m++)
            f->meth[f->n_meth++] = m;
    }
    /* keep the methods with a map; a named one without is an error */
    int kept = 0;
    for (int k = 0; k < f->n_meth; k++) {
        int any = 0;
        for (int r = 0; r < f->rows && !any; r++)
            any = map_path(f, path, f->img[r], f->meth[k], ".npy") == 0 &&
                  sm_outdir_exists(path);
        if (any)
            f->meth[kept++] = f->meth[k];
        else if (o->methods)
            return sm_err_set(err, "method '%s' has no map for the chosen "
                                   "images (no %s/maps/<id>/%s.npy)",
                              od->methods[f->meth[k]].name, f->out,
                              od->methods[f->meth[k]].name);
    }
    f->n_meth = kept;
    return kept ? 0
                : sm_err_set(err, "%s: no method has a map for the chosen "
                                  "images", f->out);
}

/* --- reading -------------------------------------------------------- */

/* The colour map of method m: job.json says whether it is signed; else
 * the scale its record names. */
static sm_cmap_kind kind_of(const fig *f, int m, const char *record_path)
{
    int s = f->od->methods[m].signed_map;
    if (s >= 0)
        return s ? SM_CMAP_DIVERGING : SM_CMAP_SEQUENTIAL;
    sm_cmap_kind k = SM_CMAP_SEQUENTIAL;
    json_t *rec = json_load_file(record_path, 0, NULL);
    const char *name = json_string_value(
        json_object_get(json_object_get(rec, "scale"), "colormap"));
    if (name)
        sm_cmap_kind_parse(name, &k);
    json_decref(rec);
    return k;
}

static int load_maps(fig *f, sm_err *err)
{
    f->maps = calloc((size_t)(f->rows * f->n_meth), sizeof *f->maps);
    f->scale = calloc((size_t)f->n_meth, sizeof *f->scale);
    if (!f->maps || !f->scale)
        return sm_err_set(err, "out of memory");
    const sm_jobinfo *job = f->od->job;
    for (int k = 0; k < f->n_meth; k++) {
        int m = f->meth[k], have = 0;
        sm_cmap_kind kind = SM_CMAP_SEQUENTIAL;
        for (int r = 0; r < f->rows; r++) {
            char path[SM_OUTDIR_PATH];
            if (map_path(f, path, f->img[r], m, ".npy"))
                return sm_err_set(err, "%s: path too long", f->out);
            if (!sm_outdir_exists(path))
                continue;
            sm_tensor *t = sm_npy_read(path, err);
            if (!t)
                return -1;
            int h = t->ndim == 2 ? (int)t->shape[0] : 0,
                w = t->ndim == 2 ? (int)t->shape[1] : 0;
            if (!f->h && h > 0) {
                f->h = h;
                f->w = w;
            }
            int bad = h < 1 || h != f->h || w != f->w ||
                      (job && (h != job->height || w != job->width));
            if (bad) {
                char s[64];
                sm_err_set(err, "%s: shape %s, not the figure's %d x %d", path,
                           sm_shape_str(t->ndim, t->shape, s, sizeof s),
                           job ? job->height : f->h, job ? job->width : f->w);
                sm_tensor_destroy(&t);
                return -1;
            }
            if (!have) {
                char rec[SM_OUTDIR_PATH];
                map_path(f, rec, f->img[r], m, ".json");
                kind = kind_of(f, m, rec);
            }
            sm_cmap_scale s;
            if (sm_cmap_scale_of(kind, t->data, (size_t)h * (size_t)w, path,
                                 &s, err)) {
                sm_tensor_destroy(&t);
                return -1;
            }
            if (have)
                sm_cmap_scale_merge(&f->scale[k], &s);
            else
                f->scale[k] = s;
            have = 1;
            /* keep the data, not the tensor */
            f->maps[r * f->n_meth + k] = t->data;
            t->owns = 0;
            sm_tensor_destroy(&t);
        }
    }
    return 0;
}

/* maps/<id>/input.png (the render pass's: the input zoomed by an integer
 * factor, nearest neighbour) back to c x h x w values on 0..255, read at
 * the centre of each block: exactly the input it was drawn from. */
static int read_input_png(const fig *f, const char *path, float *dst,
                          sm_err *err)
{
    /* through a source of the file's bytes: libvips caches loads by file
     * name, and the render pass may have rewritten the file since this
     * process read it */
    size_t n = 0, len = 0;
    unsigned char *bytes = sm_file_read(path, SM_DATASET_RAW_MAX, &n, err);
    if (!bytes)
        return -1;
    VipsSource *src = vips_source_new_from_memory(bytes, n);
    VipsImage *im = src ? vips_image_new_from_source(src, "", NULL) : NULL;
    uint8_t *px = im ? vips_image_write_to_memory(im, &len) : NULL;
    int rc = 0;
    if (!px)
        rc = sm_err_set(err, "%s: %s", path, vips_error_buffer());
    else {
        int iw = im->Xsize, ih = im->Ysize, b = im->Bands;
        int z = iw / f->w;
        if (im->BandFmt != VIPS_FORMAT_UCHAR || z < 1 || iw != z * f->w ||
            ih != z * f->h || (b != f->c && b != f->c + 1))
            rc = sm_err_set(err, "%s: %d x %d x %d, not the %d x %d x %d "
                                 "input zoomed (8-bit)",
                            path, ih, iw, b, f->h, f->w, f->c);
        for (int ch = 0; rc == 0 && ch < f->c; ch++)
            for (int y = 0; y < f->h; y++)
                for (int x = 0; x < f->w; x++)
                    dst[((size_t)ch * f->h + y) * f->w + x] =
                        px[((size_t)(y * z + z / 2) * iw + x * z + z / 2) * b + ch];
    }
    vips_error_clear();
    g_free(px);
    if (im)
        g_object_unref(im);
    if (src)
        g_object_unref(src);
    free(bytes);
    return rc;
}

/* Row r's input on 0..255: from maps/<id>/input.png when the render pass
 * wrote it, else from job.json's dataset, as the render pass reads it. */
static int load_input(fig *f, int r, sm_err *err)
{
    const sm_outdir *od = f->od;
    const char *id = od->images[f->img[r]].id;
    char path[SM_OUTDIR_PATH];
    float *dst = malloc((size_t)f->c * (size_t)f->h * (size_t)f->w * sizeof *dst);
    if (!dst)
        return sm_err_set(err, "out of memory");
    f->inputs[r] = dst;
    if (sm_outdir_path(od, path, id, "input.png") == 0 &&
        sm_outdir_exists(path))
        return read_input_png(f, path, dst, err);
    if (!od->job)
        return sm_err_set(err, "image '%s': no %s/maps/%s/input.png and no "
                               "job.json naming its dataset",
                          id, f->out, id);
    if (!f->ds && !(f->ds = sm_dataset_open(od->job->dataset, err)))
        return sm_err_prefix(err, "image '%s': no %s/maps/%s/input.png, "
                                  "and job.json's dataset",
                             id, f->out, id);
    sm_preproc pp;
    sm_preproc_init(&pp, f->c, f->h, f->w);
    pp.scale = 1; /* 0..255 */
    for (size_t i = 0; i < sm_dataset_count(f->ds); i++)
        if (!strcmp(sm_dataset_id(f->ds, i), id))
            return sm_dataset_load(f->ds, i, &pp, dst, err);
    return sm_err_set(err, "image '%s' is not in job.json's dataset %s", id,
                      od->job->dataset);
}

/* --- drawing -------------------------------------------------------- */

/* Copies p (1 or 3 bands) into the canvas at (x, y). */
static void blit(fig *f, const sm_render_px *p, int x, int y)
{
    for (int j = 0; j < p->height; j++)
        for (int i = 0; i < p->width; i++) {
            const uint8_t *s = p->px + ((size_t)j * p->width + i) * p->bands;
            uint8_t *d = f->canvas + ((size_t)(y + j) * f->l.width + x + i) * 3;
            for (int c = 0; c < 3; c++)
                d[c] = s[p->bands == 3 ? c : 0];
        }
}

static void fill(fig *f, int x, int y, int w, int h, const uint8_t rgb[3])
{
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++)
            memcpy(f->canvas + ((size_t)(y + j) * f->l.width + x + i) * 3,
                   rgb, 3);
}

/* text in colour rgb inside the box (x, y, w, h): align -1 left, 0
 * centred, 1 right; vertically centred; what does not fit is cut. */
static int draw_text(fig *f, const char *text, int pt, const uint8_t rgb[3],
                     int x, int y, int w, int h, int align, sm_err *err)
{
    char font[64];
    snprintf(font, sizeof font, FONT " %d", pt);
    char *markup = g_markup_escape_text(text, -1);
    VipsImage *im = NULL;
    void *px = NULL;
    size_t len = 0;
    int rc = 0;
    if (!markup || vips_text(&im, markup, "font", font, "dpi", 72, NULL) ||
        !(px = vips_image_write_to_memory(im, &len)))
        rc = sm_err_set(err, "drawing the text '%s': %s", text,
                        vips_error_buffer());
    vips_error_clear();
    if (rc == 0 && im->Bands == 1 && im->BandFmt == VIPS_FORMAT_UCHAR) {
        int tw = im->Xsize, th = im->Ysize;
        int ox = align < 0 ? x : align > 0 ? x + w - tw : x + (w - tw) / 2;
        int oy = y + (h - th) / 2;
        for (int j = 0; j < th; j++)
            for (int i = 0; i < tw; i++) {
                int cx = ox + i, cy = oy + j;
                if (cx < x || cx >= x + w || cy < y || cy >= y + h)
                    continue;
                unsigned a = ((const uint8_t *)px)[(size_t)j * tw + i];
                uint8_t *d = f->canvas + ((size_t)cy * f->l.width + cx) * 3;
                for (int c = 0; c < 3; c++)
                    d[c] = (uint8_t)((d[c] * (255 - a) + rgb[c] * a + 127) / 255);
            }
    }
    g_free(markup);
    g_free(px);
    if (im)
        g_object_unref(im);
    return rc;
}

/* The input's title: "label L · pred P" (P alone when unlabelled). */
static void caption_of(const sm_outdir_image *im, char *buf, size_t cap,
                       int *is_wrong)
{
    if (*im->label)
        snprintf(buf, cap, "label %s \xc2\xb7 pred %s", im->label,
                 im->predicted);
    else
        snprintf(buf, cap, "pred %s", im->predicted);
    *is_wrong = *im->label && strcmp(im->label, im->predicted);
}

static void value_text(double v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.3g", v);
}

/* The cell's pixels: the input (row's col 0) or a map; *missing when the
 * map is not there. */
static int cell_px(const fig *f, int r, int col, sm_render_px *p,
                   int *missing, sm_err *err)
{
    *missing = 0;
    if (col == 0)
        return sm_render_input(f->inputs[r], f->c, f->h, f->w, f->l.zoom, p,
                               err);
    const float *map = f->maps[r * f->n_meth + col - 1];
    if (!map) {
        *missing = 1;
        return 0;
    }
    return sm_render_map(map, f->h, f->w, &f->scale[col - 1], f->l.zoom, p,
                         err);
}

static int draw_png(fig *f, sm_err *err)
{
    const sm_figure_layout *l = &f->l;
    f->canvas = malloc((size_t)l->width * (size_t)l->height * 3);
    if (!f->canvas)
        return sm_err_set(err, "out of memory");
    memset(f->canvas, 255, (size_t)l->width * (size_t)l->height * 3);
    int rc = 0;
    for (int col = 0; col < l->cols && rc == 0; col++) {
        int x, y;
        sm_figure_cell_xy(l, 0, col, &x, &y);
        rc = draw_text(f, col ? f->od->methods[f->meth[col - 1]].name : "input",
                       TITLE_PT, black, x, l->margin, l->cell_w, l->head_h, 0,
                       err);
    }
    for (int r = 0; r < l->rows && rc == 0; r++)
        for (int col = 0; col < l->cols && rc == 0; col++) {
            int x, y, missing;
            sm_figure_cell_xy(l, r, col, &x, &y);
            sm_render_px p = {0};
            rc = cell_px(f, r, col, &p, &missing, err);
            if (rc == 0 && missing) {
                fill(f, x, y, l->cell_w, l->cell_h, missing_grey);
                rc = draw_text(f, "no map", CAPTION_PT, dim, x, y, l->cell_w,
                               l->cell_h, 0, err);
            } else if (rc == 0)
                blit(f, &p, x, y);
            sm_render_px_free(&p);
            if (rc == 0 && col == 0) {
                char cap[512];
                int bad;
                caption_of(&f->od->images[f->img[r]], cap, sizeof cap, &bad);
                rc = draw_text(f, cap, CAPTION_PT, bad ? wrong : black, x,
                               y - l->caption_h, l->cell_w, l->caption_h, 0,
                               err);
            }
        }
    for (int col = 1; col < l->cols && rc == 0; col++) {
        int x, y;
        const sm_cmap_scale *s = &f->scale[col - 1];
        sm_figure_bar_xy(l, col, &x, &y);
        for (int i = 0; i < l->cell_w; i++) {
            uint8_t rgb[3];
            int level = l->cell_w > 1 ? (255 * i + (l->cell_w - 1) / 2) /
                                            (l->cell_w - 1)
                                      : 0;
            sm_cmap_rgb(s->kind, level, rgb);
            fill(f, x + i, y, 1, l->bar_h, rgb);
        }
        char lo[32], hi[32];
        value_text(s->lo, lo, sizeof lo);
        value_text(s->hi, hi, sizeof hi);
        rc = draw_text(f, lo, BAR_PT, black, x, y + l->bar_h, l->cell_w,
                       l->bar_text_h, -1, err) ||
             draw_text(f, hi, BAR_PT, black, x, y + l->bar_h, l->cell_w,
                       l->bar_text_h, 1, err);
    }
    if (rc)
        return -1;
    char path[SM_OUTDIR_PATH];
    snprintf(path, sizeof path, "%s/figure.png", f->out);
    sm_render_px img = {f->canvas, l->width, l->height, 3};
    return sm_render_px_save(&img, path, err);
}

/* p as PNG bytes (caller g_free's *buf). */
static int png_bytes(const sm_render_px *p, void **buf, size_t *len,
                     sm_err *err)
{
    VipsImage *im = vips_image_new_from_memory(
        p->px, (size_t)p->width * p->height * p->bands, p->width, p->height,
        p->bands, VIPS_FORMAT_UCHAR);
    int rc = !im || vips_pngsave_buffer(im, buf, len, "compression", 6,
                                        "strip", TRUE, NULL);
    if (rc)
        sm_err_set(err, "encoding a cell as PNG: %s", vips_error_buffer());
    vips_error_clear();
    if (im)
        g_object_unref(im);
    return rc ? -1 : 0;
}

static int svg_text(sm_text *t, const char *text, int pt, const uint8_t rgb[3],
                    int x, int y, const char *anchor)
{
    return sm_text_addf(t,
                        "<text x=\"%d\" y=\"%d\" font-size=\"%d\" "
                        "text-anchor=\"%s\" fill=\"#%02x%02x%02x\">",
                        x, y, pt, anchor, rgb[0], rgb[1], rgb[2]) ||
           sm_html_esc(t, text) || sm_text_addf(t, "</text>\n");
}

static int draw_svg(fig *f, sm_err *err)
{
    const sm_figure_layout *l = &f->l;
    sm_text t = {0};
    int rc = sm_text_addf(
        &t,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<svg xmlns=\"http://www.w3.org/2000/svg\" "
        "xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"%d\" "
        "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"" FONT
        ", sans-serif\">\n<defs>\n",
        l->width, l->height, l->width, l->height);
    /* the colour bars: 33 stops of the 256 levels */
    for (int col = 1; col < l->cols && rc == 0; col++) {
        rc = sm_text_addf(&t, "<linearGradient id=\"bar%d\">", col);
        for (int s = 0; s <= 32 && rc == 0; s++) {
            uint8_t rgb[3];
            sm_cmap_rgb(f->scale[col - 1].kind, (255 * s + 16) / 32, rgb);
            rc = sm_text_addf(&t,
                              "<stop offset=\"%g\" stop-color=\"#%02x%02x%02x\"/>",
                              s / 32.0, rgb[0], rgb[1], rgb[2]);
        }
        rc = rc || sm_text_addf(&t, "</linearGradient>\n");
    }
    rc = rc || sm_text_addf(&t, "</defs>\n<rect width=\"%d\" height=\"%d\" "
                                "fill=\"#ffffff\"/>\n",
                            l->width, l->height);
    for (int col = 0; col < l->cols && rc == 0; col++) {
        int x, y;
        sm_figure_cell_xy(l, 0, col, &x, &y);
        rc = svg_text(&t, col ? f->od->methods[f->meth[col - 1]].name : "input",
                      TITLE_PT, black, x + l->cell_w / 2,
                      l->margin + l->head_h / 2 + TITLE_PT / 2 - 1, "middle");
    }
    if (rc)
        rc = sm_err_set(err, "out of memory");
    for (int r = 0; r < l->rows && rc == 0; r++)
        for (int col = 0; col < l->cols && rc == 0; col++) {
            int x, y, missing;
            sm_figure_cell_xy(l, r, col, &x, &y);
            sm_render_px p = {0};
            void *png = NULL;
            size_t len = 0;
            rc = cell_px(f, r, col, &p, &missing, err);
            if (rc == 0 && missing)
                rc = sm_text_addf(&t, "<rect x=\"%d\" y=\"%d\" width=\"%d\" "
                                      "height=\"%d\" fill=\"#ebebeb\"/>\n",
                                  x, y, l->cell_w, l->cell_h) ||
                     svg_text(&t, "no map", CAPTION_PT, dim, x + l->cell_w / 2,
                              y + l->cell_h / 2, "middle");
            else if (rc == 0 && (rc = png_bytes(&p, &png, &len, err)) == 0)
                rc = sm_text_addf(&t, "<image x=\"%d\" y=\"%d\" width=\"%d\" "
                                      "height=\"%d\" xlink:href=\"data:image/"
                                      "png;base64,",
                                  x, y, l->cell_w, l->cell_h) ||
                     sm_html_base64(&t, png, len) ||
                     sm_text_addf(&t, "\"/>\n");
            g_free(png);
            sm_render_px_free(&p);
            if (rc == 0 && col == 0) {
                char cap[512];
                int bad;
                caption_of(&f->od->images[f->img[r]], cap, sizeof cap, &bad);
                rc = svg_text(&t, cap, CAPTION_PT, bad ? wrong : black,
                              x + l->cell_w / 2, y - 4, "middle");
            }
        }
    for (int col = 1; col < l->cols && rc == 0; col++) {
        int x, y;
        const sm_cmap_scale *s = &f->scale[col - 1];
        char lo[32], hi[32];
        sm_figure_bar_xy(l, col, &x, &y);
        value_text(s->lo, lo, sizeof lo);
        value_text(s->hi, hi, sizeof hi);
        int ty = y + l->bar_h + l->bar_text_h / 2 + BAR_PT / 2;
        rc = sm_text_addf(&t, "<rect x=\"%d\" y=\"%d\" width=\"%d\" "
                              "height=\"%d\" fill=\"url(#bar%d)\"/>\n",
                          x, y, l->cell_w, l->bar_h, col) ||
             svg_text(&t, lo, BAR_PT, black, x, ty, "start") ||
             svg_text(&t, hi, BAR_PT, black, x + l->cell_w, ty, "end");
    }
    rc = rc || sm_text_addf(&t, "</svg>\n");
    char path[SM_OUTDIR_PATH];
    snprintf(path, sizeof path, "%s/figure.svg", f->out);
    if (rc == 0)
        rc = sm_file_write_atomic(path, t.s, t.len, err);
    else if (!err || !err->msg[0])
        rc = sm_err_set(err, "%s: out of memory", path);
    sm_text_free(&t);
    return rc;
}

int sm_report_figure(const char *out, const sm_figure_opts *o, sm_err *err)
{
    static const sm_figure_opts none;
    fig f = {.out = out};
    if (!o)
        o = &none;
    if (err)
        sm_err_clear(err);
    int rc = (f.od = sm_outdir_open(out, err)) ? 0 : -1;
    if (rc == 0 && (choose_images(&f, o, err) || choose_methods(&f, o, err) ||
                    load_maps(&f, err)))
        rc = -1;
    if (rc == 0) {
        f.c = f.od->job ? f.od->job->channels : 1;
        f.inputs = calloc((size_t)f.rows, sizeof *f.inputs);
        if (!f.inputs)
            rc = sm_err_set(err, "out of memory");
    }
    for (int r = 0; r < f.rows && rc == 0; r++)
        rc = load_input(&f, r, err);
    if (rc == 0) {
        sm_figure_layout_of(f.rows, 1 + f.n_meth, f.h, f.w, &f.l);
        rc = draw_png(&f, err) || draw_svg(&f, err) ? -1 : 0;
    }
    fig_free(&f);
    return rc;
}
