/* MaxPool's kernels over 1 or 2 spatial dims (ops/pool_max.h): 2x2 with
 * stride 2, and any window as two separable passes, forward and
 * backward; and the window geometry pool.c shares with them. */
#include "ops/pool_max.h"

#include <float.h>
#include <string.h>

#include "ops/op_util.h"

/* Window along one dim for output position o: the kernel taps [*ka, *kb)
 * that fall inside the input, and the window's first input index. */
int64_t sm_pool_taps(const sm_pool_geom *g, int i, int64_t o, int64_t *ka,
                     int64_t *kb)
{
    int64_t start = o * g->s[i] - g->pb[i], d = g->d[i];
    int64_t last = g->in[i] - 1 - start; /* furthest offset still inside */
    if (d == 1) { /* no divisions in the common case: they dominated */
        *ka = start < 0 ? -start : 0;
        *kb = last < 0 ? 0 : last + 1;
    } else {
        *ka = start < 0 ? (-start + d - 1) / d : 0;
        *kb = last < 0 ? 0 : last / d + 1;
    }
    if (*kb > g->k[i])
        *kb = g->k[i];
    if (*kb < *ka)
        *kb = *ka;
    return start;
}

int sm_pool_is_2x2(const sm_pool_geom *g)
{
    return g->in[0] == 1 && g->k[1] == 2 && g->k[2] == 2 &&
           g->s[1] == 2 && g->s[2] == 2 && g->d[1] == 1 && g->d[2] == 1 &&
           g->pb[1] == 0 && g->pb[2] == 0 && 2 * g->out[1] <= g->in[1] &&
           2 * g->out[2] <= g->in[2];
}

/* a > b ? a : b lane by lane, as the scalar loop selects (NaN and -0
 * included: the second operand wins unless the first is greater). */
static inline sm_v4 max_v4(sm_v4 a, sm_v4 b)
{
    sm_v4i m = a > b;
    return (sm_v4)(((sm_v4i)a & m) | ((sm_v4i)b & ~m));
}

/* The larger of the two columns of each pair in 8 floats of a row. */
static inline sm_v4 pairs_v4(const float *r)
{
    sm_v4 lo = sm_v4_load(r), hi = sm_v4_load(r + 4);
    return max_v4(__builtin_shufflevector(lo, hi, 0, 2, 4, 6),
                  __builtin_shufflevector(lo, hi, 1, 3, 5, 7));
}

/* Four outputs a step (SSE2, which every x86-64 has; the selects are
 * exact, so it computes the scalar loop's bits), then the row's tail. */
void sm_pool_max2x2(const sm_pool_geom *g, int64_t planes, const float *x,
                    float *y)
{
    const int64_t w = g->in[2], ow = g->out[2], oh = g->out[1];
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x + c * g->in[1] * w;
        for (int64_t oy = 0; oy < oh; oy++, y += ow) {
            const float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
            int64_t o = 0;
            for (; o + 4 <= ow; o += 4) {
                sm_v4 v = max_v4(pairs_v4(r0 + 2 * o), pairs_v4(r1 + 2 * o));
                memcpy(y + o, &v, sizeof v);
            }
            for (; o < ow; o++) {
                float a = r0[2 * o] > r0[2 * o + 1] ? r0[2 * o] : r0[2 * o + 1];
                float b = r1[2 * o] > r1[2 * o + 1] ? r1[2 * o] : r1[2 * o + 1];
                y[o] = a > b ? a : b;
            }
        }
    }
}

/* The padded row's length: the last window's end, and 8 floats more for
 * the stride-2 loads of both halves of a vector. */
static int64_t sep_row_len(const sm_pool_geom *g)
{
    int64_t need = (g->out[2] - 1) * g->s[2] + (g->k[2] - 1) * g->d[2] + 1;
    return (need > g->pb[2] + g->in[2] ? need : g->pb[2] + g->in[2]) + 8;
}

size_t sm_pool_max_workspace(const sm_pool_geom *g)
{
    return (size_t)(g->in[1] * g->out[2] + sep_row_len(g));
}

size_t sm_pool_max_bwd_workspace(const sm_pool_geom *g)
{
    /* each input row's maxima over the windows' columns and their
     * columns (an int32 a float), and the padded row */
    return (size_t)(2 * g->in[1] * g->out[2] + sep_row_len(g));
}

/* The floats at src, src + s, src + 2 s, src + 3 s, for s 1 or 2. */
static inline sm_v4 taps_v4(const float *src, int64_t s)
{
    return s == 1 ? sm_v4_load(src)
                  : __builtin_shufflevector(sm_v4_load(src),
                                            sm_v4_load(src + 4), 0, 2, 4, 6);
}

/* h[o] = the running maximum of row[o s + j d], j = 0 .. k - 1. */
static void max_taps(float *restrict h, const float *restrict row, int64_t n,
                     int64_t k, int64_t d, int64_t s)
{
    const sm_v4 lowest = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
    int64_t o = 0;
    if (s <= 2)
        for (; o + 4 <= n; o += 4) {
            sm_v4 acc = lowest;
            for (int64_t j = 0; j < k; j++) {
                const float *src = row + o * s + j * d;
                sm_v4 v = taps_v4(src, s);
                acc = max_v4(v, acc);
            }
            memcpy(h + o, &acc, sizeof acc);
        }
    for (; o < n; o++) {
        float acc = -FLT_MAX;
        for (int64_t j = 0; j < k; j++) {
            float v = row[o * s + j * d];
            acc = v > acc ? v : acc;
        }
        h[o] = acc;
    }
}

/* MaxPool over 1 or 2 spatial dims, any window, as two passes: each input
 * row's maximum over the window's columns (a row padded with -FLT_MAX,
 * which never wins: the running maximum starts there), then each output
 * row's maximum over its window's rows of those. A running maximum
 * `v > acc ? v : acc` keeps the first tap that reaches the window's
 * maximum in row-major order, and so does the maximum of rows' first
 * ones: the very bits of the one-pass loop (NaN never enters, of two
 * zeros the first stays). Four outputs a step for strides 1 and 2. */
void sm_pool_max_separable(const sm_pool_geom *g, int64_t planes,
                           const float *x, float *y, float *ws)
{
    const int64_t ih = g->in[1], iw = g->in[2], oh = g->out[1], ow = g->out[2];
    const int64_t len = sep_row_len(g), pl = g->pb[2];
    float *hrows = ws, *row = ws + ih * ow;
    for (int64_t e = 0; e < len; e++)
        row[e] = -FLT_MAX;
    for (int64_t c = 0; c < planes; c++, x += ih * iw) {
        for (int64_t r = 0; r < ih; r++) {
            memcpy(row + pl, x + r * iw, sizeof(float) * (size_t)iw);
            max_taps(hrows + r * ow, row, ow, g->k[2], g->d[2], g->s[2]);
        }
        for (int64_t o1 = 0; o1 < oh; o1++, y += ow) {
            int64_t a1, b1, s1 = sm_pool_taps(g, 1, o1, &a1, &b1);
            /* the window's rows inside the input (none: -FLT_MAX) */
            const int64_t step = g->d[1] * ow, nr = b1 - a1;
            const float *h0 = nr ? hrows + (s1 + a1 * g->d[1]) * ow : hrows;
            int64_t o = 0;
            for (; o + 4 <= ow; o += 4) {
                sm_v4 acc = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
                for (int64_t r = 0; r < nr; r++)
                    acc = max_v4(sm_v4_load(h0 + r * step + o), acc);
                memcpy(y + o, &acc, sizeof acc);
            }
            for (; o < ow; o++) {
                float acc = -FLT_MAX;
                for (int64_t r = 0; r < nr; r++) {
                    float v = h0[r * step + o];
                    acc = v > acc ? v : acc;
                }
                y[o] = acc;
            }
        }
    }
}

/* Lanes of m from x, the others from y: bits moved, not computed. */
static inline sm_v4 sel_v4(sm_v4i m, sm_v4 x, sm_v4 y)
{
    return (sm_v4)(((sm_v4i)x & m) | ((sm_v4i)y & ~m));
}

/* Adds g to the lanes of 8 floats at p whose pair member (even lanes:
 * we, odd: wo) is set; the other floats keep their bits (-0 stays -0).
 * fresh: p holds garbage, taken as zeros. */
static inline void add_pairs_v4(float *p, sm_v4i we, sm_v4i wo, sm_v4 g,
                                int fresh)
{
    sm_v4 lo = {0, 0, 0, 0}, hi = {0, 0, 0, 0};
    if (!fresh) {
        memcpy(&lo, p, sizeof lo);
        memcpy(&hi, p + 4, sizeof hi);
    }
    sm_v4 ev = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
    sm_v4 od = __builtin_shufflevector(lo, hi, 1, 3, 5, 7);
    ev = sel_v4(we, ev + g, ev);
    od = sel_v4(wo, od + g, od);
    lo = __builtin_shufflevector(ev, od, 0, 4, 1, 5);
    hi = __builtin_shufflevector(ev, od, 2, 6, 3, 7);
    memcpy(p, &lo, sizeof lo);
    memcpy(p + 4, &hi, sizeof hi);
}

/* The backward of max2x2: each output's gradient to the first maximum of
 * its window in row-major order, as the general loop below decides (the
 * first tap greater than -FLT_MAX, then each later one greater than the
 * best so far; none: no gradient). Four outputs a step with the same
 * comparisons as masks, then the row's tail. fresh: gx holds garbage:
 * the vectors write their 8 floats of each row whole (zeros added to),
 * the tail zeroes its windows before adding, and the columns and rows no
 * window reaches are zeroed. */
void sm_pool_max2x2_backward(const sm_pool_geom *g, int64_t planes,
                             const float *x, const float *gy, float *gx,
                             int fresh)
{
    const int64_t w = g->in[2], ow = g->out[2], oh = g->out[1];
    const sm_v4 lowest = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
    for (int64_t c = 0; c < planes; c++) {
        const float *xp = x + c * g->in[1] * w;
        float *gp = gx + c * g->in[1] * w;
        if (fresh && 2 * oh < g->in[1])
            memset(gp + 2 * oh * w, 0,
                   sizeof(float) * (size_t)((g->in[1] - 2 * oh) * w));
        for (int64_t oy = 0; oy < oh; oy++, gy += ow) {
            const int64_t r0 = 2 * oy * w, r1 = r0 + w;
            if (fresh) /* the columns past the last window (w odd) */
                for (int64_t j = 2 * ow; j < w; j++)
                    gp[r0 + j] = gp[r1 + j] = 0.0f;
            int64_t o = 0;
            for (; o + 4 <= ow; o += 4) {
                sm_v4 lo, hi, gv;
                memcpy(&lo, xp + r0 + 2 * o, sizeof lo);
                memcpy(&hi, xp + r0 + 2 * o + 4, sizeof hi);
                sm_v4 a = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
                sm_v4 b = __builtin_shufflevector(lo, hi, 1, 3, 5, 7);
                memcpy(&lo, xp + r1 + 2 * o, sizeof lo);
                memcpy(&hi, xp + r1 + 2 * o + 4, sizeof hi);
                sm_v4 cc = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
                sm_v4 d = __builtin_shufflevector(lo, hi, 1, 3, 5, 7);
                sm_v4i m0 = a > lowest;
                sm_v4 best = sel_v4(m0, a, lowest);
                sm_v4i m1 = b > best;
                best = sel_v4(m1, b, best);
                sm_v4i m2 = cc > best;
                best = sel_v4(m2, cc, best);
                sm_v4i m3 = d > best;
                /* the last tap that beat the best so far wins */
                sm_v4i w3 = m3, w2 = m2 & ~m3, w1 = m1 & ~(m2 | m3),
                        w0 = m0 & ~(m1 | m2 | m3);
                memcpy(&gv, gy + o, sizeof gv);
                add_pairs_v4(gp + r0 + 2 * o, w0, w1, gv, fresh);
                add_pairs_v4(gp + r1 + 2 * o, w2, w3, gv, fresh);
            }
            for (; o < ow; o++) {
                const int64_t cand[4] = {r0 + 2 * o, r0 + 2 * o + 1,
                                         r1 + 2 * o, r1 + 2 * o + 1};
                float best = -FLT_MAX;
                int64_t arg = -1;
                for (int k = 0; k < 4; k++) {
                    if (fresh)
                        gp[cand[k]] = 0.0f;
                    if (xp[cand[k]] > best) {
                        best = xp[cand[k]];
                        arg = cand[k];
                    }
                }
                if (arg >= 0)
                    gp[arg] += gy[o];
            }
        }
    }
}

/* The lanes of m from x, the others from y (ints). */
static inline sm_v4i sel_v4i(sm_v4i m, sm_v4i x, sm_v4i y)
{
    return (x & m) | (y & ~m);
}

/* hv[o], hc[o]: the first maximum of row[o s + j d], j < k, and its
 * index in the row less pl (-1 when none is above -FLT_MAX: the row is
 * padded with -FLT_MAX, which never wins), for o < n; four outputs a
 * step for strides 1 and 2, as max_taps. */
static void max_taps_arg(float *restrict hv, int32_t *restrict hc,
                         const float *restrict row, int64_t n, int64_t k,
                         int64_t d, int64_t s, int64_t pl)
{
    const sm_v4 lowest = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
    const sm_v4i none = {-1, -1, -1, -1}, lane = {0, 1, 2, 3};
    int64_t o = 0;
    if (s <= 2)
        for (; o + 4 <= n; o += 4) {
            sm_v4 best = lowest;
            sm_v4i col = none;
            for (int64_t j = 0; j < k; j++) {
                const float *src = row + o * s + j * d;
                sm_v4 v = taps_v4(src, s);
                sm_v4i m = v > best;
                best = sel_v4(m, v, best);
                col = sel_v4i(m, (int32_t)(o * s + j * d - pl) +
                                     lane * (int32_t)s, col);
            }
            memcpy(hv + o, &best, sizeof best);
            memcpy(hc + o, &col, sizeof col);
        }
    for (; o < n; o++) {
        float best = -FLT_MAX;
        int32_t col = -1;
        for (int64_t j = 0; j < k; j++) {
            const float v = row[o * s + j * d];
            col = v > best ? (int32_t)(o * s + j * d - pl) : col;
            best = v > best ? v : best;
        }
        hv[o] = best;
        hc[o] = col;
    }
}

/* The general backward loop below for MaxPool over 1 or 2 spatial dims,
 * as two passes like max_separable: each input row's first maximum over
 * each window's columns (value and column), then each output's first
 * maximum over its window's rows of those, which is the first maximum of
 * the window in row-major order (a later tap wins only when greater,
 * along a row and across rows alike; none above -FLT_MAX: no gradient).
 * Four outputs a step, with the comparisons as masks; the gradients are
 * then added output by output in the general loop's order, so the same
 * bits. Its branches and window bookkeeping had made ResNet's 3x3/2
 * MaxPool an eighth of its backward. */
void sm_pool_max_separable_backward(const sm_pool_geom *g, int64_t planes,
                                    const float *x, const float *gy,
                                    float *gx, float *ws)
{
    const int64_t ih = g->in[1], iw = g->in[2], oh = g->out[1], ow = g->out[2];
    const int64_t len = sep_row_len(g), pl = g->pb[2], d1 = g->d[1];
    float *hv = ws, *row = ws + 2 * ih * ow;
    int32_t *hc = (int32_t *)(void *)(ws + ih * ow);
    const sm_v4 lowest = {-FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX};
    const sm_v4i none = {-1, -1, -1, -1};
    for (int64_t e = 0; e < len; e++)
        row[e] = -FLT_MAX;
    for (int64_t c = 0; c < planes; c++, x += ih * iw, gx += ih * iw) {
        for (int64_t r = 0; r < ih; r++) {
            memcpy(row + pl, x + r * iw, sizeof(float) * (size_t)iw);
            max_taps_arg(hv + r * ow, hc + r * ow, row, ow, g->k[2], g->d[2],
                         g->s[2], pl);
        }
        for (int64_t o1 = 0; o1 < oh; o1++, gy += ow) {
            int64_t a1, b1, s1 = sm_pool_taps(g, 1, o1, &a1, &b1);
            int64_t o = 0;
            for (; o + 4 <= ow; o += 4) {
                sm_v4 best = lowest;
                sm_v4i at = none;
                for (int64_t k = a1; k < b1; k++) {
                    const int64_t r = s1 + k * d1;
                    sm_v4 v = sm_v4_load(hv + r * ow + o);
                    sm_v4i col;
                    memcpy(&col, hc + r * ow + o, sizeof col);
                    sm_v4i m = v > best;
                    best = sel_v4(m, v, best);
                    at = sel_v4i(m, (int32_t)(r * iw) + col, at);
                }
                int32_t idx[4];
                memcpy(idx, &at, sizeof idx);
                for (int t = 0; t < 4; t++)
                    if (idx[t] >= 0)
                        gx[idx[t]] += gy[o + t];
            }
            for (; o < ow; o++) {
                float best = -FLT_MAX;
                int64_t arg = -1;
                for (int64_t k = a1; k < b1; k++) {
                    const int64_t r = s1 + k * d1;
                    const float v = hv[r * ow + o];
                    arg = v > best ? r * iw + hc[r * ow + o] : arg;
                    best = v > best ? v : best;
                }
                if (arg >= 0)
                    gx[arg] += gy[o];
            }
        }
    }
}
