/* sm_report_figure: OUT/figure.png and OUT/figure.svg, the comparison
 * figure of a job (docs/OUTPUTS.md): a row per chosen image, its input
 * first (titled with its label and the model's prediction), then a column
 * per method, each map drawn on its method's colour map
 * (render/colormap.h) on one scale shared by the column's rows (the
 * merged scales of those maps), so a column compares across images; a
 * colour bar under each column gives the scale's end values.
 *
 * Both files have the same layout (sm_figure_layout); the SVG holds each
 * cell as a PNG inline (base64), its titles as <text> and its colour bars
 * as gradients: self-contained. */
#ifndef SM_REPORT_FIGURE_H
#define SM_REPORT_FIGURE_H

#include "util/err.h"

/* Rows at most (--ids, --per-class, --first): a figure is for looking at. */
#define SM_FIGURE_MAX_ROWS 100
/* Rows of the default choice (one image per class) at most. */
#define SM_FIGURE_DEFAULT_ROWS 20
/* The default first N when index.csv has no labels. */
#define SM_FIGURE_DEFAULT_FIRST 10
/* Cells are zoomed (nearest neighbour) to at least this many pixels. */
#define SM_FIGURE_CELL_PX 112

/* Which images and methods; zero/NULL fields take the defaults. At most
 * one of ids, per_class and first is set. */
typedef struct sm_figure_opts {
    const char *ids;     /* "a,b": these images, in this order */
    int per_class;       /* K: the first K images of each label */
    int first;           /* N: the first N images */
    const char *methods; /* "a,b": these columns, in this order (default:
                            every method of the job that has maps) */
} sm_figure_opts;

/* Where everything is, in pixels (the PNG's and the SVG's units). */
typedef struct sm_figure_layout {
    int rows, cols;       /* cols: the input and the methods */
    int map_h, map_w;     /* the maps' size */
    int zoom;             /* cell = zoom x map */
    int cell_w, cell_h;
    int margin, gap;      /* around the figure, between cells */
    int head_h;           /* the band of column titles */
    int caption_h;        /* above each row's cells: the input's title */
    int bar_h, bar_text_h; /* colour bars and their end values */
    int width, height;
} sm_figure_layout;

/* The layout of rows x cols cells of map_h x map_w maps. */
void sm_figure_layout_of(int rows, int cols, int map_h, int map_w,
                         sm_figure_layout *l);
/* The top left corner of cell (row, col): col 0 is the input. */
void sm_figure_cell_xy(const sm_figure_layout *l, int row, int col, int *x,
                       int *y);
/* The top left corner of column col's colour bar (cell_w x bar_h). */
void sm_figure_bar_xy(const sm_figure_layout *l, int col, int *x, int *y);

/* Writes OUT/figure.png and OUT/figure.svg (atomically) from OUT's
 * index.csv, job.json, maps and inputs (maps/<id>/input.png when the
 * render pass wrote it, else the image read from job.json's dataset).
 * -1 with a message: an empty or missing folder, an id or method not in
 * the job, a method without maps, no labels for per_class, maps of
 * different sizes, an unreadable map or input. libvips must be started
 * (sm_vips_init). */
int sm_report_figure(const char *out, const sm_figure_opts *o, sm_err *err);

#endif
