/* Winograd F(2x2, 3x3) (conv_wino.h). Per chunk of images: every tile's
 * window transformed (V: an input channel's 16 positions side by side,
 * rows of the chunk's tiles), one sm_sgemm product a position (U[ξ]
 * [m x c] by V[ξ] [c x tiles], the tiles along the GEMM's vectors), and
 * the products (an output channel's 16 positions side by side)
 * transformed back into NCHW. The transforms run four tiles of a row at
 * a time in SSE vectors (the baseline set: the same additions in the same
 * order on every CPU), reading each input plane from a zero-padded copy
 * and writing each pair of output rows through a row buffer. */
#include "ops/conv_wino.h"

#include <assert.h>
#include <string.h>

#include "ops/op_util.h"
#include "ops/sgemm.h"

/* Floats of V and of the products a chunk may hold: about 1 MiB, so that
 * they stay in L2 between the transforms and the products. */
#define WINO_BUDGET ((int64_t)1 << 18)

/* sm_op_relu1 lane by lane: 0 where v < 0, v itself otherwise. */
static inline sm_v4 relu4(sm_v4 v)
{
    const sm_v4 zero = {0, 0, 0, 0};
    return (sm_v4)((sm_v4i)v & ~(sm_v4i)(v < zero));
}

typedef struct shape {
    int64_t th, tw;        /* tiles a plane: th rows of tw */
    int64_t r0, r1;        /* the rows of tiles run */
    int64_t tiles;         /* tiles run an image */
    int64_t pitch;         /* floats of a padded row */
    int64_t rows;          /* padded rows */
    int64_t nb;            /* images a chunk */
} shape;

int64_t sm_conv_wino_rows(const sm_conv_wino *s)
{
    return (s->oh + 1) / 2;
}

/* The run of tile rows [r0, r1) of n images. */
static shape shape_of(const sm_conv_wino *s, int64_t n, int64_t r0, int64_t r1)
{
    shape q;
    q.th = (s->oh + 1) / 2, q.tw = (s->ow + 1) / 2;
    q.r0 = r0, q.r1 = r1;
    q.tiles = (r1 - r0) * q.tw;
    /* columns 0 .. 2tw + 1, and room for the 12 floats a group of four
     * tiles reads (from 2tx) past the last tile */
    q.pitch = 2 * q.tw + 12;
    q.rows = 2 * q.th + 2;
    const int64_t per = 16 * (s->c + s->m) * q.tiles;
    q.nb = per > 0 ? WINO_BUDGET / per : n;
    q.nb = q.nb < 1 ? 1 : q.nb > n ? n : q.nb;
    return q;
}

/* The columns a product runs for nt tiles: from 32 on, whole panels of
 * sm_sgemm's widest (32 columns: a narrower last panel is packed and
 * stored an output at a time), the tiles past nt zero. */
static int64_t cols_of(int64_t nt)
{
    return nt < 32 ? nt : (nt + 31) / 32 * 32;
}

int64_t sm_conv_wino_packed_size(const sm_conv_wino *s)
{
    return 16 * s->m * s->c;
}

/* The workspace, in this order: the weights (when not packed), V, the
 * products (rows of a chunk's tiles and 4 floats of slack for the vectors
 * past a row's last tile), sm_sgemm's panel, a padded plane. */
int64_t sm_conv_wino_workspace(const sm_conv_wino *s, int64_t n)
{
    /* the most tiles a chunk of any range of rows holds: the budget's
     * share, or one image's tiles when they alone exceed it, or n
     * images' when n fit */
    const shape q = shape_of(s, n, 0, sm_conv_wino_rows(s));
    const int64_t share = WINO_BUDGET / (16 * (s->c + s->m));
    int64_t most = share > q.tiles ? share : q.tiles;
    most = most < n * q.tiles ? most : n * q.tiles;
    const int64_t ld = cols_of(most) + 4;
    return sm_conv_wino_packed_size(s) + 16 * (s->c + s->m) * ld +
           (int64_t)sm_sgemm_workspace(s->c) + q.rows * q.pitch +
           2 * (q.pitch + 8);
}

void sm_conv_wino_pack(const sm_conv_wino *s, const float *w, float *packed)
{
    const int64_t mc = s->m * s->c;
    for (int64_t o = 0; o < mc; o++) {
        const float *g = w + o * 9;
        double t[4][3], u[4][4];
        for (int j = 0; j < 3; j++) { /* G g */
            t[0][j] = g[j];
            t[1][j] = 0.5 * ((double)g[j] + g[3 + j] + g[6 + j]);
            t[2][j] = 0.5 * ((double)g[j] - g[3 + j] + g[6 + j]);
            t[3][j] = g[6 + j];
        }
        for (int i = 0; i < 4; i++) { /* (G g) Gᵀ */
            u[i][0] = t[i][0];
            u[i][1] = 0.5 * (t[i][0] + t[i][1] + t[i][2]);
            u[i][2] = 0.5 * (t[i][0] - t[i][1] + t[i][2]);
            u[i][3] = t[i][2];
        }
        for (int xi = 0; xi < 16; xi++)
            packed[xi * mc + o] = (float)u[xi / 4][xi % 4];
    }
}

/* Plane x (h x w) into the padded plane buf, pixel (iy, ix) at row
 * iy + ph, column ix + pw: the rows q's tiles read; the rest of buf stays
 * as it is (zero: the run clears it once, and every plane writes the
 * same places). */
static void lay_out(const sm_conv_wino *s, const shape *q, const float *x,
                    float *buf)
{
    const int64_t cols = s->w < 2 * q->tw + 2 - s->pw ? s->w
                                                      : 2 * q->tw + 2 - s->pw;
    int64_t iy0 = 2 * q->r0 - s->ph, iy1 = 2 * q->r1 + 2 - s->ph;
    iy0 = iy0 < 0 ? 0 : iy0;
    iy1 = iy1 > s->h ? s->h : iy1;
    for (int64_t iy = iy0; iy < iy1; iy++)
        sm_op_copy_floats(buf + (iy + s->ph) * q->pitch + s->pw, x + iy * s->w, cols);
}

/* The windows of one padded plane's tiles transformed: position ξ of
 * tile t at v[ξ * xs + t0 + t]. Four tiles of a row at a time, stored
 * whole: past a row's last tile they write the next row's first ones
 * (written after), or the slack after the last. */
static void transform_in(const shape *q, const float *buf, float *v,
                         int64_t xs, int64_t t0)
{
    for (int64_t ty = q->r0; ty < q->r1; ty++) {
        const float *r[4];
        for (int k = 0; k < 4; k++)
            r[k] = buf + (2 * ty + k) * q->pitch;
        float *dst = v + t0 + (ty - q->r0) * q->tw;
        for (int64_t tx = 0; tx < q->tw; tx += 4) {
            sm_v4 h[4][4];
            for (int k = 0; k < 4; k++) { /* d B, a row at a time */
                /* the window's columns 2tx .. 2tx + 3 of the four tiles:
                 * a the even columns from 2tx, b the odd, cc and ee the
                 * even and odd ones from 2tx + 2 */
                const float *p = r[k] + 2 * tx;
                /* __builtin_shufflevector: GCC 12 and clang alike */
                const sm_v4 p0 = sm_v4_load(p), p1 = sm_v4_load(p + 4);
                const sm_v4 q0 = sm_v4_load(p + 2), q1 = sm_v4_load(p + 6);
                const sm_v4 a = __builtin_shufflevector(p0, p1, 0, 2, 4, 6);
                const sm_v4 b = __builtin_shufflevector(p0, p1, 1, 3, 5, 7);
                const sm_v4 cc = __builtin_shufflevector(q0, q1, 0, 2, 4, 6);
                const sm_v4 ee = __builtin_shufflevector(q0, q1, 1, 3, 5, 7);
                h[k][0] = a - cc;
                h[k][1] = b + cc;
                h[k][2] = cc - b;
                h[k][3] = b - ee;
            }
            for (int j = 0; j < 4; j++) { /* Bᵀ (d B) */
                sm_v4_store(dst + (0 + j) * xs + tx, h[0][j] - h[2][j]);
                sm_v4_store(dst + (4 + j) * xs + tx, h[1][j] + h[2][j]);
                sm_v4_store(dst + (8 + j) * xs + tx, h[2][j] - h[1][j]);
                sm_v4_store(dst + (12 + j) * xs + tx, h[1][j] - h[3][j]);
            }
        }
    }
}

/* The products of one image's tiles (position ξ of tile t, output
 * channel co at p[(co * 16 + ξ) * ld + t0 + t]: a channel's 16 rows side
 * by side) transformed back into its output planes, bias added, and
 * their Relu into ry when not NULL. Four tiles of a row at a time into
 * two rows of row (pitch floats each), then copied out. */
static void transform_out(const sm_conv_wino *s, const shape *q,
                          const float *p, int64_t ld, int64_t t0,
                          const float *bias, float *y, float *ry, float *row)
{
    const int64_t plane = s->oh * s->ow;
    float *r2[2] = {row, row + q->pitch};
    for (int64_t co = 0; co < s->m; co++) {
        const float *pc = p + co * 16 * ld + t0;
        const float bv = bias ? bias[co] : 0.0f;
        const sm_v4 b4 = {bv, bv, bv, bv};
        float *yc = y + co * plane, *rc = ry ? ry + co * plane : NULL;
        for (int64_t ty = q->r0; ty < q->r1; ty++) {
            for (int64_t tx = 0; tx < q->tw; tx += 4) {
                const float *pt = pc + (ty - q->r0) * q->tw + tx;
                sm_v4 m[16];
                for (int xi = 0; xi < 16; xi++)
                    m[xi] = sm_v4_load(pt + xi * ld);
                sm_v4 u[4][2];
                for (int i = 0; i < 4; i++) { /* M A, a row at a time */
                    u[i][0] = m[4 * i] + m[4 * i + 1] + m[4 * i + 2];
                    u[i][1] = m[4 * i + 1] - m[4 * i + 2] - m[4 * i + 3];
                }
                /* Aᵀ (M A): its rows 2ty and 2ty + 1, pixels 2tx, 2tx +
                 * 1, ... interleaved */
                const sm_v4 y00 = u[0][0] + u[1][0] + u[2][0];
                const sm_v4 y01 = u[0][1] + u[1][1] + u[2][1];
                const sm_v4 y10 = u[1][0] - u[2][0] - u[3][0];
                const sm_v4 y11 = u[1][1] - u[2][1] - u[3][1];
                sm_v4 o0 = __builtin_shufflevector(y00, y01, 0, 4, 1, 5);
                sm_v4 o1 = __builtin_shufflevector(y00, y01, 2, 6, 3, 7);
                sm_v4 o2 = __builtin_shufflevector(y10, y11, 0, 4, 1, 5);
                sm_v4 o3 = __builtin_shufflevector(y10, y11, 2, 6, 3, 7);
                if (bias)
                    o0 += b4, o1 += b4, o2 += b4, o3 += b4;
                sm_v4_store(r2[0] + 2 * tx, o0), sm_v4_store(r2[0] + 2 * tx + 4, o1);
                sm_v4_store(r2[1] + 2 * tx, o2), sm_v4_store(r2[1] + 2 * tx + 4, o3);
            }
            for (int a = 0; a < 2 && 2 * ty + a < s->oh; a++) {
                const int64_t o = (2 * ty + a) * s->ow;
                sm_op_copy_floats(yc + o, r2[a], s->ow);
                if (!rc)
                    continue;
                for (int64_t e = 0; e < s->ow; e += 4)
                    sm_v4_store(r2[a] + e, relu4(sm_v4_load(r2[a] + e)));
                sm_op_copy_floats(rc + o, r2[a], s->ow);
            }
        }
    }
}

void sm_conv_wino_run(const sm_conv_wino *s, int64_t n, const float *x,
                      const float *w, const float *packed, const float *bias,
                      float *y, float *ry, int64_t r0, int64_t r1, float *ws)
{
    const shape q = shape_of(s, n, r0, r1);
    const int64_t ld = cols_of(q.nb * q.tiles) + 4;
    const int64_t mc = s->m * s->c;
    float *u = ws, *v = u + sm_conv_wino_packed_size(s);
    float *prod = v + 16 * s->c * ld;
    float *gws = prod + 16 * s->m * ld;
    float *buf = gws + sm_sgemm_workspace(s->c);
    float *row = buf + q.rows * q.pitch;
    assert(row + 2 * (q.pitch + 8) <= ws + sm_conv_wino_workspace(s, n));
    memset(buf, 0, sizeof(float) * (size_t)(q.rows * q.pitch));
    if (!packed) {
        sm_conv_wino_pack(s, w, u);
        packed = u;
    }
    const int64_t in_img = s->c * s->h * s->w, out_img = s->m * s->oh * s->ow;
    for (int64_t n0 = 0; n0 < n; n0 += q.nb) {
        const int64_t nb = n - n0 < q.nb ? n - n0 : q.nb, nt = nb * q.tiles;
        const int64_t nc = cols_of(nt);
        for (int64_t i = 0; i < nb; i++)
            for (int64_t ci = 0; ci < s->c; ci++) {
                lay_out(s, &q, x + (n0 + i) * in_img + ci * s->h * s->w, buf);
                transform_in(&q, buf, v + ci * 16 * ld, ld, i * q.tiles);
            }
        for (int64_t r = 0; r < 16 * s->c && nc > nt; r++)
            memset(v + r * ld + nt, 0, sizeof(float) * (size_t)(nc - nt));
        for (int xi = 0; xi < 16; xi++)
            sm_sgemm_run(&(sm_sgemm_args){
                .m = s->m, .n = nc, .k = s->c, .alpha = 1.0f,
                .a = packed + xi * mc, .a_rs = s->c, .a_cs = 1,
                .b = v + xi * ld, .ldb = 16 * ld, .ws = gws,
                .c = prod + xi * ld, .rows = {16 * ld, 0, 0},
                .cols = {1, 0, 0}});
        for (int64_t i = 0; i < nb; i++)
            transform_out(s, &q, prod, ld, i * q.tiles, bias,
                          y + (n0 + i) * out_img,
                          ry ? ry + (n0 + i) * out_img : NULL, row);
    }
}
