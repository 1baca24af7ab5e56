/* Quickshift (Vedaldi & Soatto 2008), as scikit-image's quickshift:
 * CIELAB, optional Gaussian smoothing, colours scaled by ratio; a Parzen
 * density per pixel over a (2 ceil(3 k) + 1)^2 window in the joint
 * (colour, row, column) space; each pixel links to the nearest pixel of
 * higher density in its window; links longer than max_dist are cut; a
 * segment is a tree, labelled in order of its root pixel. */
#include <math.h>
#include <stdlib.h>

#include "segment/segment.h"
#include "util/rng.h"

/* Squared joint distance between pixels a and b of the scaled image. */
static double dist2(const double *px, int w, int ra, int ca, int rb, int cb)
{
    const double *a = px + 3 * ((size_t)ra * w + ca);
    const double *b = px + 3 * ((size_t)rb * w + cb);
    double d = 0;
    for (int k = 0; k < 3; k++)
        d += (a[k] - b[k]) * (a[k] - b[k]);
    return d + (double)(ra - rb) * (ra - rb) + (double)(ca - cb) * (ca - cb);
}

int sm_segment_quickshift(const sm_segment_params *p, const float *img,
                          int c, int h, int w, int32_t *labels, sm_err *err)
{
    size_t n = (size_t)h * (size_t)w;
    double *px = sm_segment_pixels(img, c, h, w, SM_SEGMENT_LAB);
    double *dens = malloc(sizeof(double) * n);
    int32_t *parent = malloc(sizeof(int32_t) * n);
    int rc = -1;
    if (!px || !dens || !parent ||
        sm_segment_gauss(px, h, w, p->quickshift.sigma)) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < 3 * n; i++)
        px[i] *= p->quickshift.ratio;

    double ks = p->quickshift.kernel_size;
    double inv = -0.5 / (ks * ks);
    int kw = (int)ceil(3 * ks);
    /* Flat regions give equal densities; tiny noise breaks the ties, as
     * the reference does, but from a fixed counter-based stream so that the
     * segmentation is a function of the image alone. */
    uint64_t key = sm_rng_key(42, (const char *const[]){"quickshift", NULL});
    for (size_t i = 0; i < n; i++)
        dens[i] = 1e-5 * sm_rng_normal(key, i);
    /* The kernel is symmetric and so is the window (|dr|, |dc| <= kw):
     * each pair is weighed once and counted for both pixels. */
    for (int r = 0; r < h; r++)
        for (int cc = 0; cc < w; cc++) {
            size_t i = (size_t)r * w + cc;
            dens[i] += 1; /* the pixel itself */
            for (int r2 = r; r2 <= r + kw && r2 < h; r2++) {
                int c0 = r2 == r ? cc + 1 : (cc - kw > 0 ? cc - kw : 0);
                int c1 = cc + kw + 1 < w ? cc + kw + 1 : w;
                for (int c2 = c0; c2 < c1; c2++) {
                    double e = exp(dist2(px, w, r, cc, r2, c2) * inv);
                    dens[i] += e;
                    dens[(size_t)r2 * w + c2] += e;
                }
            }
        }

    double max2 = p->quickshift.max_dist * p->quickshift.max_dist;
    for (int r = 0; r < h; r++) {
        int r0 = r - kw > 0 ? r - kw : 0, r1 = r + kw + 1 < h ? r + kw + 1 : h;
        for (int cc = 0; cc < w; cc++) {
            int c0 = cc - kw > 0 ? cc - kw : 0;
            int c1 = cc + kw + 1 < w ? cc + kw + 1 : w;
            size_t i = (size_t)r * w + cc;
            double best = INFINITY;
            int32_t link = (int32_t)i;
            for (int r2 = r0; r2 < r1; r2++)
                for (int c2 = c0; c2 < c1; c2++) {
                    size_t j = (size_t)r2 * w + c2;
                    if (!(dens[j] > dens[i]))
                        continue;
                    double d = dist2(px, w, r, cc, r2, c2);
                    if (d < best) { /* first of equals wins, as reference */
                        best = d;
                        link = (int32_t)j;
                    }
                }
            /* Compared squared: sqrt is monotonic, the cut is the same. */
            parent[i] = best > max2 ? (int32_t)i : link;
        }
    }
    /* Links go to strictly higher density, so the chains end at roots;
     * resolve each pixel's root, reusing the resolved part of the chain. */
    for (size_t i = 0; i < n; i++) {
        int32_t root = parent[i];
        while (parent[root] != root)
            root = parent[root];
        for (int32_t j = (int32_t)i; parent[j] != root;) {
            int32_t next = parent[j];
            parent[j] = root;
            j = next;
        }
    }
    rc = sm_segment_relabel(parent, (int)n, labels);
    if (rc < 0)
        sm_err_set(err, "out of memory");
out:
    free(px);
    free(dens);
    free(parent);
    return rc;
}
