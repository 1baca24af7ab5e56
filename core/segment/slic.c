/* SLIC (Achanta et al. 2012), as scikit-image's slic on a 2-D image:
 * the image stretched to [0, 1] (min and max over all channels), CIELAB,
 * then optional Gaussian smoothing, colours divided by
 * compactness; centres on skimage's regular grid with zero colour (the
 * reference's start); k-means in (row, column, colour) with the spatial
 * term divided by step^2 and each centre searching +-2 steps; then, when
 * asked, connectivity enforced by a raster-order flood fill that splits
 * disconnected parts and merges parts under half a nominal segment into
 * the last labelled neighbour met. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "segment/segment.h"

/* skimage.util.regular_grid for the shape (1, h, w): the first point and
 * the stride of each axis. */
static void regular_grid(int h, int w, int n_points, int start[3],
                         int stride[3])
{
    double shape[3] = {1, h, w};
    if ((double)h * w <= n_points) {
        for (int d = 0; d < 3; d++) {
            start[d] = 0;
            stride[d] = 1;
        }
        return;
    }
    /* Axes by increasing length (stable, as numpy on three elements). */
    int order[3] = {0, 1, 2};
    for (int i = 1; i < 3; i++)
        for (int j = i; j > 0 && shape[order[j - 1]] > shape[order[j]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    double sorted[3], step[3];
    for (int d = 0; d < 3; d++)
        sorted[d] = shape[order[d]];
    double space = (double)h * w;
    for (int d = 0; d < 3; d++)
        step[d] = pow(space / n_points, 1.0 / 3);
    if (sorted[0] < step[0] || sorted[1] < step[1] || sorted[2] < step[2]) {
        for (int d = 0; d < 3; d++) {
            step[d] = sorted[d];
            double rest = 1;
            for (int e = d + 1; e < 3; e++)
                rest *= sorted[e];
            for (int e = d + 1; e < 3; e++)
                step[e] = pow(rest / n_points, 1.0 / (3 - d - 1));
            if (sorted[0] >= step[0] && sorted[1] >= step[1] &&
                sorted[2] >= step[2])
                break;
        }
    }
    for (int d = 0; d < 3; d++) {
        start[order[d]] = (int)floor(step[d] / 2);
        stride[order[d]] = (int)nearbyint(step[d]); /* numpy: half to even */
    }
}

/* Connectivity as the reference's _enforce_label_connectivity_cython
 * (4-neighbours in 2-D). `out` and `queue` hold h*w ints each: a part
 * never outgrows the image, even when max_size does. */
static void enforce_connectivity(const int32_t *seg, int h, int w,
                                 int min_size, int max_size, int32_t *out,
                                 int32_t *queue)
{
    static const int DY[4] = {0, 0, 1, -1}, DX[4] = {1, -1, 0, 0};
    int n = h * w;
    for (int i = 0; i < n; i++)
        out[i] = -1;
    int32_t next = 0;
    for (int i = 0; i < n; i++) {
        if (out[i] >= 0)
            continue;
        int32_t label = seg[i], adjacent = next;
        int size = 1, visited = 0;
        out[i] = next;
        queue[0] = i;
        while (visited < size && size < max_size) {
            int y = queue[visited] / w, x = queue[visited] % w;
            for (int k = 0; k < 4; k++) {
                int yy = y + DY[k], xx = x + DX[k];
                if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                    continue;
                int j = yy * w + xx;
                if (seg[j] == label && out[j] < 0) {
                    out[j] = next;
                    queue[size++] = j;
                    if (size >= max_size)
                        break;
                } else if (out[j] >= 0 && out[j] != next) {
                    adjacent = out[j];
                }
            }
            visited++;
        }
        if (size < min_size)
            for (int k = 0; k < size; k++)
                out[queue[k]] = adjacent;
        else
            next++;
    }
}

int sm_segment_slic(const sm_segment_params *p, const float *img, int c,
                    int h, int w, int32_t *labels, sm_err *err)
{
    int n = h * w, rc = -1;
    int start[3], stride[3];
    regular_grid(h, w, p->slic.n_segments, start, stride);
    int ny = (h - start[1] + stride[1] - 1) / stride[1];
    int nx = (w - start[2] + stride[2] - 1) / stride[2];
    int k_n = ny * nx;
    /* Centre k: row, column, then the 3 colour coordinates. */
    double *px = sm_segment_pixels(img, c, h, w,
                                   SM_SEGMENT_RESCALE | SM_SEGMENT_LAB);
    double *ctr = malloc(sizeof(double) * 5 * (size_t)k_n);
    double *dist = malloc(sizeof(double) * (size_t)n);
    long *count = malloc(sizeof(long) * (size_t)k_n);
    int32_t *near = malloc(sizeof(int32_t) * (size_t)n);
    int32_t *tmp = malloc(sizeof(int32_t) * (size_t)n);
    if (!px || !ctr || !dist || !count || !near || !tmp ||
        sm_segment_gauss(px, h, w, p->slic.sigma)) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    double ratio = 1.0 / p->slic.compactness;
    for (int i = 0; i < 3 * n; i++)
        px[i] *= ratio;
    for (int k = 0; k < k_n; k++) {
        double *m = ctr + 5 * k;
        m[0] = start[1] + (k / nx) * stride[1];
        m[1] = start[2] + (k % nx) * stride[2];
        m[2] = m[3] = m[4] = 0;
        count[k] = 1;
    }
    /* The reference's `step` is the largest stride (the depth stride of 1
     * never is); its window is +-2 strides per axis, strides that it
     * computes again from the number of centres actually placed. */
    double step = stride[1] > stride[2] ? stride[1] : stride[2];
    double sw = 1.0 / (step * step);
    regular_grid(h, w, k_n, start, stride);
    for (int i = 0; i < n; i++)
        near[i] = -1;
    for (int it = 0; it < p->slic.max_iter; it++) {
        int change = 0;
        for (int i = 0; i < n; i++)
            dist[i] = DBL_MAX;
        for (int k = 0; k < k_n; k++) {
            const double *m = ctr + 5 * k;
            if (count[k] == 0) /* empty: its mean is 0/0 in the reference */
                continue;
            int y0 = (int)fmax(m[0] - 2 * stride[1], 0);
            int y1 = (int)fmin(m[0] + 2 * stride[1] + 1, h);
            int x0 = (int)fmax(m[1] - 2 * stride[2], 0);
            int x1 = (int)fmin(m[1] + 2 * stride[2] + 1, w);
            for (int y = y0; y < y1; y++) {
                double dy = (m[0] - y) * (m[0] - y);
                for (int x = x0; x < x1; x++) {
                    int i = y * w + x;
                    const double *q = px + 3 * (size_t)i;
                    double d = (dy + (m[1] - x) * (m[1] - x)) * sw;
                    for (int ch = 0; ch < 3; ch++)
                        d += (q[ch] - m[2 + ch]) * (q[ch] - m[2 + ch]);
                    if (dist[i] > d) {
                        near[i] = k;
                        dist[i] = d;
                        change = 1;
                    }
                }
            }
        }
        if (!change)
            break;
        for (int k = 0; k < 5 * k_n; k++)
            ctr[k] = 0;
        for (int k = 0; k < k_n; k++)
            count[k] = 0;
        for (int i = 0; i < n; i++) {
            double *m = ctr + 5 * near[i];
            count[near[i]]++;
            m[0] += i / w;
            m[1] += i % w;
            for (int ch = 0; ch < 3; ch++)
                m[2 + ch] += px[3 * (size_t)i + ch];
        }
        for (int k = 0; k < k_n; k++)
            for (int f = 0; f < 5 && count[k]; f++)
                ctr[5 * k + f] /= count[k];
    }
    if (p->slic.enforce_connectivity) {
        double size = (double)n / k_n;
        int min_size = (int)(0.5 * size), max_size = (int)(3 * size);
        enforce_connectivity(near, h, w, min_size, max_size, tmp, labels);
        for (int i = 0; i < n; i++)
            near[i] = tmp[i];
    }
    /* Labels by increasing value, dropping unused ones (the centres that
     * lost all their pixels). */
    rc = sm_segment_relabel(near, n, labels);
    if (rc < 0)
        sm_err_set(err, "out of memory");
out:
    free(px);
    free(ctr);
    free(dist);
    free(count);
    free(near);
    free(tmp);
    return rc;
}
