/* sm_cmap: the colour maps a person sees maps through (docs/OUTPUTS.md).
 *
 * A signed map is drawn on a diverging map centred on 0 (blue below,
 * red above; the scale is symmetric, [-m, m] with m the largest |value|),
 * an unsigned one on a sequential map over [min, max] (viridis). A value
 * becomes one of 256 levels, level = round(255 t) with t its place on the
 * scale clamped to [0, 1], and a level one colour of a 256-entry table
 * interpolated linearly (in sRGB) between the control points below. A
 * scale of zero width puts every value at the middle (diverging) or the
 * bottom (sequential). */
#ifndef SM_RENDER_COLORMAP_H
#define SM_RENDER_COLORMAP_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef enum sm_cmap_kind {
    SM_CMAP_SEQUENTIAL, /* viridis */
    SM_CMAP_DIVERGING   /* ColorBrewer RdBu, blue for negative */
} sm_cmap_kind;

typedef struct sm_cmap_scale {
    sm_cmap_kind kind;
    double lo, hi; /* the values at level 0 and level 255 */
} sm_cmap_scale;

/* "sequential" / "diverging"; sm_cmap_kind_parse: 0 or -1. */
const char *sm_cmap_kind_name(sm_cmap_kind k);
int sm_cmap_kind_parse(const char *name, sm_cmap_kind *k);

/* The scale of the n values v for kind k: [min, max], or [-m, m] for a
 * diverging map. -1 with a message naming the first pixel that is NaN or
 * infinite (`what` names the map, e.g. its file). */
int sm_cmap_scale_of(sm_cmap_kind k, const float *v, size_t n,
                     const char *what, sm_cmap_scale *s, sm_err *err);

/* s widened to hold o too (a job's scale from its maps' scales). */
void sm_cmap_scale_merge(sm_cmap_scale *s, const sm_cmap_scale *o);

/* The level (0..255) of value v on scale s. */
int sm_cmap_level(const sm_cmap_scale *s, double v);

/* The colour of level (0..255) on the map of kind k. */
void sm_cmap_rgb(sm_cmap_kind k, int level, uint8_t rgb[3]);

/* The n values v as RGB triplets into rgb (3 n bytes). v must be finite
 * (sm_cmap_scale_of checked it). */
void sm_cmap_paint(const sm_cmap_scale *s, const float *v, size_t n,
                   uint8_t *rgb);

#endif
