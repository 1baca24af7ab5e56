/* sm_render_out: the PNGs of an output folder (docs/OUTPUTS.md, "PNG
 * images"), drawn beside its maps by one pass over the folder:
 *
 *   OUT/maps/<id>/input.png                    the input, zoomed
 *   OUT/maps/<id>/<method>.png                 the map on its colour scale
 *   OUT/maps/<id>/<method>.overlay.png         the map over the input
 *   OUT/maps/<id>/anchor.kept.png              the anchor's superpixels
 *   OUT/maps/<id>/lore.rule.png                lore's rule's superpixels
 *   OUT/maps/<id>/abele.exemplars.png          a strip of exemplars
 *   OUT/maps/<id>/abele.counter_exemplars.png  a strip of counter-exemplars
 *   OUT/scales.csv                             the job scales (--scale job)
 *   OUT/render.json                            how the PNGs were drawn
 *
 * The pass reads OUT/job.json (io/jobinfo.h) for the input size, the
 * dataset and which methods are signed, takes every complete (image,
 * method) with a map (its .row and .npy under OUT/maps), and loads each
 * image from the dataset at the model's input size on 0..255 (scale 1,
 * mean 0, std 1). Every PNG is written atomically (render/image.h). */
#ifndef SM_RENDER_OUT_H
#define SM_RENDER_OUT_H

#include <stddef.h>

#include "util/err.h"

typedef enum sm_render_scale_mode {
    SM_RENDER_SCALE_MAP, /* each map on its own scale (its record's) */
    SM_RENDER_SCALE_JOB  /* each method on one scale over the job's maps */
} sm_render_scale_mode;

/* Exemplars a strip shows at most, by default. */
#define SM_RENDER_TILES 10

typedef struct sm_render_opts {
    sm_render_scale_mode scale;
    int zoom;    /* 0: sm_render_zoom_default of the input size */
    int tiles;   /* tiles of a strip at most; 0: SM_RENDER_TILES */
    int threads; /* images drawn at once; 0: 1 */
    /* Each warning and each map without PNGs, one line (no newline), in
     * image order after the pass; NULL: not told. */
    void (*report)(const char *line, void *u);
    void *u;
} sm_render_opts;

void sm_render_opts_init(sm_render_opts *o);

typedef struct sm_render_stats {
    size_t images;   /* image folders with at least one complete map */
    size_t maps;     /* complete (image, method) pairs with a map */
    size_t written;  /* PNG files written */
    size_t skipped;  /* PNG files up to date, not written again */
    size_t bad;      /* maps with NaN or inf: no PNG */
    size_t failed;   /* maps whose PNGs could not be drawn (unreadable
                        .npy, wrong shape, write error) */
    size_t no_input; /* images drawn without their input (the dataset did
                        not open, or has no such id) */
    int no_dataset;  /* 1: the dataset did not open */
    int zoom;        /* the zoom used */
    double seconds;
} sm_render_stats;

/* Draws OUT's PNGs. -1 with a message when the folder cannot be drawn at
 * all (no or bad OUT/job.json, no OUT/maps, a bad option); a map that
 * cannot be drawn is reported (o->report), counted in st and skipped, and
 * the pass goes on. */
int sm_render_out(const char *out, const sm_render_opts *o,
                  sm_render_stats *st, sm_err *err);

const char *sm_render_scale_name(sm_render_scale_mode m);
/* "map" / "job": 0 or -1. */
int sm_render_scale_parse(const char *s, sm_render_scale_mode *m);

#endif
