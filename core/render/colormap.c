/* The colour maps (colormap.h). */
#include "render/colormap.h"

#include <math.h>
#include <string.h>

/* viridis at 0, 1/8, ..., 1 (matplotlib's table at those points). */
static const uint8_t viridis[9][3] = {
    {0x44, 0x01, 0x54}, {0x47, 0x2d, 0x7b}, {0x3b, 0x52, 0x8b},
    {0x2c, 0x72, 0x8e}, {0x21, 0x91, 0x8c}, {0x28, 0xae, 0x80},
    {0x5e, 0xc9, 0x62}, {0xad, 0xdc, 0x30}, {0xfd, 0xe7, 0x25}};

/* ColorBrewer RdBu (11 classes) reversed, so that negative is blue:
 * from -m to m at steps of m/5. */
static const uint8_t rdbu[11][3] = {
    {0x05, 0x30, 0x61}, {0x21, 0x66, 0xac}, {0x43, 0x93, 0xc3},
    {0x92, 0xc5, 0xde}, {0xd1, 0xe5, 0xf0}, {0xf7, 0xf7, 0xf7},
    {0xfd, 0xdb, 0xc7}, {0xf4, 0xa5, 0x82}, {0xd6, 0x60, 0x4d},
    {0xb2, 0x18, 0x2b}, {0x67, 0x00, 0x1f}};

const char *sm_cmap_kind_name(sm_cmap_kind k)
{
    return k == SM_CMAP_DIVERGING ? "diverging" : "sequential";
}

int sm_cmap_kind_parse(const char *name, sm_cmap_kind *k)
{
    if (!strcmp(name, "diverging"))
        *k = SM_CMAP_DIVERGING;
    else if (!strcmp(name, "sequential"))
        *k = SM_CMAP_SEQUENTIAL;
    else
        return -1;
    return 0;
}

int sm_cmap_scale_of(sm_cmap_kind k, const float *v, size_t n,
                     const char *what, sm_cmap_scale *s, sm_err *err)
{
    double lo = 0, hi = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            return sm_err_set(err, "%s: value %zu is %s: it has no colour",
                              what, i, isnan(v[i]) ? "NaN" : "infinite");
        if (i == 0 || v[i] < lo)
            lo = v[i];
        if (i == 0 || v[i] > hi)
            hi = v[i];
    }
    if (k == SM_CMAP_DIVERGING) {
        double m = fmax(fabs(lo), fabs(hi));
        lo = -m;
        hi = m;
    }
    *s = (sm_cmap_scale){k, lo, hi};
    return 0;
}

void sm_cmap_scale_merge(sm_cmap_scale *s, const sm_cmap_scale *o)
{
    s->lo = fmin(s->lo, o->lo);
    s->hi = fmax(s->hi, o->hi);
}

int sm_cmap_level(const sm_cmap_scale *s, double v)
{
    double width = s->hi - s->lo;
    double t = width > 0 ? (v - s->lo) / width
                         : s->kind == SM_CMAP_DIVERGING ? 0.5 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return (int)lround(t * 255);
}

void sm_cmap_rgb(sm_cmap_kind k, int level, uint8_t rgb[3])
{
    const uint8_t(*pts)[3] = k == SM_CMAP_DIVERGING ? rdbu : viridis;
    int segs = k == SM_CMAP_DIVERGING ? 10 : 8;
    level = level < 0 ? 0 : level > 255 ? 255 : level;
    /* exact arithmetic: position = level * segs / 255 */
    int i = level * segs / 255;
    if (i == segs)
        i = segs - 1;
    double f = (double)(level * segs - i * 255) / 255.0;
    for (int c = 0; c < 3; c++)
        rgb[c] = (uint8_t)lround(pts[i][c] + f * (pts[i + 1][c] - pts[i][c]));
}

void sm_cmap_paint(const sm_cmap_scale *s, const float *v, size_t n,
                   uint8_t *rgb)
{
    uint8_t lut[256][3];
    for (int l = 0; l < 256; l++)
        sm_cmap_rgb(s->kind, l, lut[l]);
    for (size_t i = 0; i < n; i++)
        memcpy(rgb + 3 * i, lut[sm_cmap_level(s, v[i])], 3);
}
