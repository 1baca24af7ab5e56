/* Felzenszwalb & Huttenlocher (2004), as scikit-image's felzenszwalb: RGB
 * (no CIELAB), Gaussian smoothing, 8-connected edges weighted by the
 * Euclidean colour difference, taken in increasing weight; two segments
 * merge when the edge is lighter than both internal differences plus
 * scale/255 over the segment's size; then segments under min_size merge
 * along the edges in the same order. Union-find keeps the smallest pixel
 * index as the root, so labels come in order of each segment's first
 * pixel. */
#include <math.h>
#include <stdlib.h>

#include "segment/segment.h"

typedef struct {
    double cost;
    int32_t a, b; /* pixel indices */
    int32_t order; /* position before sorting: ties keep it */
} edge;

static int edge_cmp(const void *x, const void *y)
{
    const edge *p = x, *q = y;
    if (p->cost != q->cost)
        return p->cost < q->cost ? -1 : 1;
    return (p->order > q->order) - (p->order < q->order);
}

static int32_t find_root(int32_t *forest, int32_t i)
{
    int32_t root = i;
    while (forest[root] < root)
        root = forest[root];
    while (forest[i] > root) { /* path compression: same roots, faster */
        int32_t next = forest[i];
        forest[i] = root;
        i = next;
    }
    return root;
}

/* Joins the segments of roots r0 and r1 (r0 != r1); returns the new root,
 * the smaller index, as the reference's join_trees. */
static int32_t join(int32_t *forest, int32_t *size, int32_t r0, int32_t r1)
{
    int32_t root = r0 < r1 ? r0 : r1;
    forest[r0] = forest[r1] = root;
    size[root] = size[r0] + size[r1];
    return root;
}

int sm_segment_felzenszwalb(const sm_segment_params *p, const float *img,
                            int c, int h, int w, int32_t *labels, sm_err *err)
{
    int n = h * w, rc = -1;
    size_t n_edges = (size_t)h * (w - 1) + (size_t)(h - 1) * w +
                     2 * (size_t)(h - 1) * (w - 1);
    double *px = sm_segment_pixels(img, c, h, w, 0);
    edge *e = malloc(sizeof(edge) * (n_edges ? n_edges : 1));
    int32_t *forest = malloc(sizeof(int32_t) * (size_t)n);
    int32_t *size = malloc(sizeof(int32_t) * (size_t)n);
    double *cint = malloc(sizeof(double) * (size_t)n);
    if (!px || !e || !forest || !size || !cint ||
        sm_segment_gauss(px, h, w, p->felzenszwalb.sigma)) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    /* The reference's edge order: right, down, down-right, up-right, each
     * in raster order, first endpoint the later pixel. */
    static const int DY0[4] = {0, 1, 1, 0}, DX0[4] = {1, 0, 1, 1};
    static const int DY1[4] = {0, 0, 0, 1}, DX1[4] = {0, 0, 0, 0};
    size_t m = 0;
    for (int dir = 0; dir < 4; dir++) {
        int ylim = h - (dir != 0), xlim = w - (dir != 1);
        for (int y = 0; y < ylim; y++)
            for (int x = 0; x < xlim; x++) {
                int a = (y + DY0[dir]) * w + x + DX0[dir];
                int b = (y + DY1[dir]) * w + x + DX1[dir];
                double s = 0;
                for (int ch = 0; ch < 3; ch++) {
                    double d = px[3 * (size_t)a + ch] - px[3 * (size_t)b + ch];
                    s += d * d;
                }
                e[m] = (edge){sqrt(s), a, b, (int32_t)m};
                m++;
            }
    }
    qsort(e, m, sizeof *e, edge_cmp);
    for (int i = 0; i < n; i++) {
        forest[i] = i;
        size[i] = 1;
        cint[i] = 0;
    }
    double scale = p->felzenszwalb.scale / 255.0;
    for (size_t k = 0; k < m; k++) {
        int32_t r0 = find_root(forest, e[k].a), r1 = find_root(forest, e[k].b);
        if (r0 == r1)
            continue;
        /* Single precision, as the reference declares these two. */
        float t0 = (float)(cint[r0] + scale / size[r0]);
        float t1 = (float)(cint[r1] + scale / size[r1]);
        if (e[k].cost < (t0 < t1 ? t0 : t1))
            cint[join(forest, size, r0, r1)] = e[k].cost;
    }
    for (size_t k = 0; k < m; k++) {
        int32_t r0 = find_root(forest, e[k].a), r1 = find_root(forest, e[k].b);
        if (r0 != r1 && (size[r0] < p->felzenszwalb.min_size ||
                         size[r1] < p->felzenszwalb.min_size))
            join(forest, size, r0, r1);
    }
    for (int i = 0; i < n; i++)
        forest[i] = find_root(forest, i);
    rc = sm_segment_relabel(forest, n, labels);
    if (rc < 0)
        sm_err_set(err, "out of memory");
out:
    free(px);
    free(e);
    free(forest);
    free(size);
    free(cint);
    return rc;
}
