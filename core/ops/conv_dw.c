/* The depthwise convolution of conv_dw.h, two ways, built for AVX-512
 * and AVX2 with their intrinsics, chosen at each call (util/isa.h). Each
 * output is one fused multiply-add chain over (ki, kj) in order from
 * zero, then the bias added, then the Relu, whichever way runs it.
 *
 * Channel-blocked (BLOCKED_MIN_CHANNELS channels and more): a block of VL
 * channels (16 with AVX-512, 8 with AVX2) is transposed once into a
 * zero-padded buffer whose pixels are vectors of the block's VL
 * channels; each output pixel of the block is then one vector, a fused
 * multiply-add a tap against the VL channels' weights of the tap (packed
 * beforehand, sm_conv_dw_pack: CB floats a tap whatever VL), NB pixels
 * of an output row a step; a stride only spaces the reads. The
 * pixel-major result is transposed back to the block's planes, the bias
 * and Relu on the way. Lanes past the last channel compute zeros and are
 * not stored. This pays the setup (padding, lay-out, copy-out) once a
 * block rather than once a plane, and on a small plane no lane is idle.
 *
 * A plane at a time (fewer channels): each plane is laid out once,
 * zero-padded, split into sh x sw phases (padded rows r = i*sh + rph,
 * columns col = j*sw + cph: phase (rph, cph) holds (i, j) as a row-major
 * block of pl columns), so that for every tap (ki, kj) the output at
 * (oy, ox) reads its phase at (oy + ki/sh, ox + kj/sw): over a grid of
 * oh x pl positions (the columns past ow computed and dropped), each tap
 * is one run of consecutive floats whatever the stride. */
#include "ops/conv_dw.h"

#include <string.h>

#include "ops/conv_geom.h"
#include "ops/op_util.h"
#include "util/isa.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define ATTR512 __attribute__((target("avx512f,avx2,fma")))
#define ATTR256 __attribute__((target("avx2,fma")))
#endif

/* Layers of at least this many channels run channel-blocked, whatever
 * the plane (measured from 4 x 4 to 112 x 112, 3 x 3 to 7 x 7 kernels:
 * 1.3 to 12 times faster than a plane at a time); below, most of a
 * block's lanes would be idle, and a plane at a time is faster on large
 * planes (docs/PERFORMANCE.md). */
#define BLOCKED_MIN_CHANNELS 4

/* Channels a block of the packed weights (the widest vector), and output
 * pixels a step of the blocked path. */
#define CB 16
#define NB 8

static int blocked(int64_t channels)
{
    return channels >= BLOCKED_MIN_CHANNELS;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Rows and columns of the blocked path's padded buffer: what the taps
 * read, and the whole input (so that every pixel has its place). */
static int64_t brows(const sm_conv_dw *s)
{
    return max64((s->oh - 1) * s->sh + s->kh, s->pt + s->h);
}

static int64_t bcols(const sm_conv_dw *s)
{
    return max64((s->ow - 1) * s->sw + s->kw, s->pl + s->w);
}

/* Floats of the padded buffer (CB lanes a pixel serve either width), with
 * room for a row end's step reading up to NB pixels past the last row;
 * and of the pixel-major output, whole vectors of pixels and the last
 * step's NB pixels past the plane. */
static int64_t buf_size(const sm_conv_dw *s)
{
    return (brows(s) * bcols(s) + NB * s->sw) * CB;
}

static int64_t obuf_size(const sm_conv_dw *s)
{
    return ((s->oh * s->ow + CB - 1) / CB * CB + NB) * CB;
}

int64_t sm_conv_dw_packed_size(const sm_conv_dw *s, int64_t channels)
{
    return (channels + CB - 1) / CB * CB * s->kh * s->kw;
}

/* Block b of CB channels, tap t, lane l at [(b * taps + t) * CB + l]; the
 * last block's lanes past the channels are zeros. */
void sm_conv_dw_pack(const sm_conv_dw *s, int64_t channels, const float *w,
                     float *packed)
{
    const int64_t taps = s->kh * s->kw;
    memset(packed, 0, sizeof(float) * (size_t)sm_conv_dw_packed_size(s, channels));
    for (int64_t c = 0; c < channels; c++)
        for (int64_t t = 0; t < taps; t++)
            packed[(c / CB * taps + t) * CB + c % CB] = w[c * taps + t];
}

/* Zeroes the blocked buffer (VL floats a pixel) where no input pixel
 * goes: the padding, and the room past the last row. Every block writes
 * the same other places. */
static void zero_padding(const sm_conv_dw *s, int64_t vl, float *buf)
{
    const int64_t rows = brows(s), cols = bcols(s), row = cols * vl;
    memset(buf, 0, sizeof(float) * (size_t)(s->pt * row));
    for (int64_t r = s->pt; r < s->pt + s->h; r++) {
        memset(buf + r * row, 0, sizeof(float) * (size_t)(s->pl * vl));
        memset(buf + r * row + (s->pl + s->w) * vl, 0,
               sizeof(float) * (size_t)((cols - s->pl - s->w) * vl));
    }
    memset(buf + (s->pt + s->h) * row, 0,
           sizeof(float) * (size_t)((rows - s->pt - s->h) * row + NB * s->sw * vl));
}

/* --- a plane at a time ---------------------------------------------------- */

/* Vectors a step of the grid (independent chains, so that the
 * multiply-adds' latency overlaps), and the most floats a vector holds. */
#define XB 4
#define VMAX 16
#define STEP_MAX (XB * VMAX)

/* Columns and rows of a phase block. */
static int64_t cols_of(const sm_conv_dw *s) { return s->ow + (s->kw - 1) / s->sw; }
static int64_t rows_of(const sm_conv_dw *s) { return s->oh + (s->kh - 1) / s->sh; }

/* Floats of the laid-out plane, and of the grid. */
static int64_t plane_size(const sm_conv_dw *s)
{
    return s->sh * s->sw * rows_of(s) * cols_of(s);
}

static int64_t grid_size(const sm_conv_dw *s)
{
    return (s->oh * cols_of(s) + STEP_MAX - 1) / STEP_MAX * STEP_MAX;
}

static int64_t plane_scratch_size(const sm_conv_dw *s)
{
    /* the last step reads up to STEP_MAX + kw floats past the last block */
    return plane_size(s) + STEP_MAX + s->kw + grid_size(s);
}

/* Lays plane x out in buf, its pixel (iy, ix) at padded (iy + pt, ix +
 * pl). Every plane writes the same places, so the padding, zeroed once
 * before the first, stays zero. */
static void lay_out(const sm_conv_dw *s, const float *x, float *buf)
{
    const int64_t rows = rows_of(s), pl = cols_of(s);
    for (int64_t iy = 0; iy < s->h; iy++) {
        const int64_t r = iy + s->pt, i = r / s->sh;
        if (i >= rows)
            break;
        const float *src = x + iy * s->w;
        sm_conv_phase_row(src, s->w, s->sw, s->pl, pl, rows * pl,
                          buf + ((r % s->sh) * s->sw * rows + i) * pl);
    }
}

#if defined(__x86_64__)
/* NV vectors V (VL floats) of the grid from position q0. */
#define PLANE_STEP(NAME, ATTR, V, VL, SET1, LOADU, STOREU, FMA, NV)            \
    ATTR static inline __attribute__((always_inline)) void NAME(               \
        const sm_conv_dw *s, const float *buf, const float *w, float *grid,    \
        int64_t q0)                                                            \
    {                                                                          \
        const int64_t pl = cols_of(s), block = rows_of(s) * pl;                \
        V acc[NV];                                                             \
        _Pragma("GCC unroll 4") for (int x = 0; x < NV; x++)                   \
            acc[x] = SET1(0.0f);                                               \
        for (int64_t ki = 0; ki < s->kh; ki++)                                 \
            for (int64_t kj = 0; kj < s->kw; kj++) {                           \
                const V wv = SET1(w[ki * s->kw + kj]);                         \
                const float *t = buf +                                         \
                                 ((ki % s->sh) * s->sw + kj % s->sw) * block + \
                                 (ki / s->sh) * pl + kj / s->sw + q0;          \
                _Pragma("GCC unroll 4") for (int x = 0; x < NV; x++)           \
                    acc[x] = FMA(LOADU(t + x * VL), wv, acc[x]);               \
            }                                                                  \
        _Pragma("GCC unroll 4") for (int x = 0; x < NV; x++)                   \
            STOREU(grid + q0 + x * VL, acc[x]);                                \
    }

/* The grid of one plane: XB vectors a step, then the rest one by one (a
 * small plane's grid is a vector or two). */
#define PLANE_GRID(NAME, ATTR, VL, STEPX, STEP1)                               \
    ATTR static void NAME(const sm_conv_dw *s, const float *buf,               \
                          const float *w, float *grid)                         \
    {                                                                          \
        const int64_t n = s->oh * cols_of(s);                                  \
        int64_t q0 = 0;                                                        \
        for (; q0 + XB * VL <= n; q0 += XB * VL)                               \
            STEPX(s, buf, w, grid, q0);                                        \
        for (; q0 < n; q0 += VL)                                               \
            STEP1(s, buf, w, grid, q0);                                        \
    }

#define PLANE_STEP512(NV)                                                      \
    PLANE_STEP(step512_##NV, ATTR512, __m512, 16, _mm512_set1_ps,              \
                _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps, NV)
#define PLANE_STEP256(NV)                                                      \
    PLANE_STEP(step256_##NV, ATTR256, __m256, 8, _mm256_set1_ps,               \
                _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps, NV)
PLANE_STEP512(4)
PLANE_STEP512(1)
PLANE_STEP256(4)
PLANE_STEP256(1)
PLANE_GRID(grid512, ATTR512, 16, step512_4, step512_1)
PLANE_GRID(grid256, ATTR256, 8, step256_4, step256_1)
#endif

/* --- channel-blocked ------------------------------------------------------ */

#if defined(__x86_64__)
#define AI inline __attribute__((always_inline))

/* One instruction set's vector operations under common names, for
 * DEFINE_BLOCKED (S: 512 or 256). Masked loads and stores of n < VL lanes
 * (ldnS, stnS) leave the rest alone, the loads reading zeros there. */
#define DEFINE_OPS(S)                                                          \
    ATTR##S static AI __m##S zero##S(void) { return _mm##S##_setzero_ps(); }   \
    ATTR##S static AI __m##S ld##S(const float *p)                             \
    {                                                                          \
        return _mm##S##_loadu_ps(p);                                           \
    }                                                                          \
    ATTR##S static AI void st##S(float *p, __m##S v)                           \
    {                                                                          \
        _mm##S##_storeu_ps(p, v);                                              \
    }                                                                          \
    ATTR##S static AI __m##S fma##S(__m##S a, __m##S b, __m##S c)              \
    {                                                                          \
        return _mm##S##_fmadd_ps(a, b, c);                                     \
    }                                                                          \
    ATTR##S static AI __m##S add##S(__m##S a, __m##S b)                        \
    {                                                                          \
        return _mm##S##_add_ps(a, b);                                          \
    }                                                                          \
    /* x < 0 ? 0 : x (sm_op_relu1): MAXPS returns its second operand          \
     * unless the first is greater, so -0 and NaN pass */                     \
    ATTR##S static AI __m##S relu##S(__m##S x)                                 \
    {                                                                          \
        return _mm##S##_max_ps(_mm##S##_setzero_ps(), x);                      \
    }

/* The first two steps of a VL x VL transpose of r (t: scratch): 2 x 2
 * blocks of floats within each 128-bit lane, then 4 x 4; after them
 * r[4g + m], 128-bit lane k, holds rows 4g..4g+3 of column 4k + m. */
#define TRANSPOSE_4X4(S, VL, r, t)                                             \
    do {                                                                       \
        _Pragma("GCC unroll 16") for (int i = 0; i < VL; i += 2) {             \
            t[i] = _mm##S##_unpacklo_ps(r[i], r[i + 1]);                       \
            t[i + 1] = _mm##S##_unpackhi_ps(r[i], r[i + 1]);                   \
        }                                                                      \
        _Pragma("GCC unroll 4") for (int g = 0; g < VL; g += 4) {              \
            r[g] = _mm##S##_shuffle_ps(t[g], t[g + 2], 0x44);                  \
            r[g + 1] = _mm##S##_shuffle_ps(t[g], t[g + 2], 0xee);              \
            r[g + 2] = _mm##S##_shuffle_ps(t[g + 1], t[g + 3], 0x44);          \
            r[g + 3] = _mm##S##_shuffle_ps(t[g + 1], t[g + 3], 0xee);          \
        }                                                                      \
    } while (0)

DEFINE_OPS(512)
DEFINE_OPS(256)

ATTR512 static AI __m512 ldn512(const float *p, int64_t n)
{
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}
ATTR512 static AI void stn512(float *p, int64_t n, __m512 v)
{
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), v);
}

/* r[i] lane j becomes r[j] lane i: TRANSPOSE_4X4, then the 4 x 4 of
 * 128-bit lanes. */
ATTR512 static AI void tr512(__m512 r[16])
{
    __m512 t[16];
    TRANSPOSE_4X4(512, 16, r, t);
    _Pragma("GCC unroll 4") for (int m = 0; m < 4; m++) {
        const __m512 e0 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x44);
        const __m512 e1 = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xee);
        const __m512 f0 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x44);
        const __m512 f1 = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xee);
        t[m] = _mm512_shuffle_f32x4(e0, f0, 0x88);
        t[4 + m] = _mm512_shuffle_f32x4(e0, f0, 0xdd);
        t[8 + m] = _mm512_shuffle_f32x4(e1, f1, 0x88);
        t[12 + m] = _mm512_shuffle_f32x4(e1, f1, 0xdd);
    }
    _Pragma("GCC unroll 16") for (int i = 0; i < 16; i++)
        r[i] = t[i];
}

ATTR256 static AI __m256i mask256(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
ATTR256 static AI __m256 ldn256(const float *p, int64_t n)
{
    return _mm256_maskload_ps(p, mask256(n));
}
ATTR256 static AI void stn256(float *p, int64_t n, __m256 v)
{
    _mm256_maskstore_ps(p, mask256(n), v);
}

/* r[i] lane j becomes r[j] lane i: TRANSPOSE_4X4, then the 2 x 2 of
 * 128-bit lanes. */
ATTR256 static AI void tr256(__m256 r[8])
{
    __m256 t[8];
    TRANSPOSE_4X4(256, 8, r, t);
    _Pragma("GCC unroll 4") for (int m = 0; m < 4; m++) {
        t[m] = _mm256_permute2f128_ps(r[m], r[4 + m], 0x20);
        t[4 + m] = _mm256_permute2f128_ps(r[m], r[4 + m], 0x31);
    }
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)
        r[i] = t[i];
}

/* A step of K output pixels of a row (K accumulators, independent
 * chains): t0 the first one's first tap in the padded buffer, js floats
 * between two pixels' taps, pitch between two padded rows; wp the
 * block's packed weights; o the pixel-major output. */
#define DEFINE_BSTEP(S, VL, K)                                                 \
    ATTR##S static AI void bstep##S##_##K(const float *t0, int64_t js,         \
                                          int64_t pitch, int64_t kh,           \
                                          int64_t kw, const float *wp,         \
                                          float *o)                            \
    {                                                                          \
        __m##S acc[K];                                                         \
        _Pragma("GCC unroll 8") for (int x = 0; x < K; x++)                    \
            acc[x] = zero##S();                                                \
        for (int64_t ki = 0; ki < kh; ki++)                                    \
            for (int64_t kj = 0; kj < kw; kj++) {                              \
                const __m##S wv = ld##S(wp + (ki * kw + kj) * CB);             \
                const float *t = t0 + ki * pitch + kj * VL;                    \
                _Pragma("GCC unroll 8") for (int x = 0; x < K; x++)            \
                    acc[x] = fma##S(ld##S(t + x * js), wv, acc[x]);            \
            }                                                                  \
        _Pragma("GCC unroll 8") for (int x = 0; x < K; x++)                    \
            st##S(o + x * VL, acc[x]);                                         \
    }

/* One block of nc <= VL channels of one image: x its first input plane,
 * wp its packed weights, bias its first bias (or NULL), y (ry) its first
 * output (Relu) plane. Row by output row, so that what the three passes
 * pass on stays in the first-level cache: the input pixels that row's
 * taps read transposed in, its taps, then the output pixels it completes
 * transposed out. */
#define DEFINE_BLOCK(S, VL)                                                    \
    ATTR##S static void block##S(const sm_conv_dw *s, int64_t nc,              \
                                 const float *x, const float *wp,              \
                                 const float *bias, float *y, float *ry,       \
                                 float *buf, float *obuf)                      \
    {                                                                          \
        const int64_t hw = s->h * s->w, p = s->oh * s->ow;                     \
        const int64_t pitch = bcols(s) * VL, js = s->sw * VL;                  \
        const __m##S b = !bias     ? zero##S()                                 \
                         : nc == VL ? ld##S(bias)                              \
                                    : ldn##S(bias, nc);                        \
        __m##S r[VL];                                                          \
        int64_t p0 = 0, iy = 0, ix = 0, q0 = 0;                                \
        for (int64_t oy = 0; oy < s->oh; oy++) {                               \
            /* in: VL pixels of the block's planes, transposed to VL pixels */ \
            int64_t need = (oy * s->sh + s->kh - s->pt) * s->w;                \
            if (need > hw)                                                     \
                need = hw;                                                     \
            for (; p0 < need; p0 += VL) {                                      \
                const int64_t n = hw - p0 < VL ? hw - p0 : VL;                 \
                float *d = buf + (iy + s->pt) * pitch + (s->pl + ix) * VL;     \
                if (nc == VL && n == VL && ix + VL <= s->w) {                  \
                    /* the common case: whole vectors, within a row */         \
                    _Pragma("GCC unroll 16") for (int c = 0; c < VL; c++)      \
                        r[c] = ld##S(x + c * hw + p0);                         \
                    tr##S(r);                                                  \
                    _Pragma("GCC unroll 16") for (int j = 0; j < VL; j++)      \
                        st##S(d + j * VL, r[j]);                               \
                    if ((ix += VL) == s->w) {                                  \
                        ix = 0;                                                \
                        iy++;                                                  \
                    }                                                          \
                    continue;                                                  \
                }                                                              \
                _Pragma("GCC unroll 16") for (int c = 0; c < VL; c++)          \
                    r[c] = c >= nc    ? zero##S()                              \
                           : n == VL ? ld##S(x + c * hw + p0)                  \
                                     : ldn##S(x + c * hw + p0, n);             \
                tr##S(r);                                                      \
                _Pragma("GCC unroll 16") for (int j = 0; j < VL; j++) {        \
                    if (j >= n)                                                \
                        break;                                                 \
                    st##S(d, r[j]);                                            \
                    d += VL;                                                   \
                    if (++ix == s->w) {                                        \
                        ix = 0;                                                \
                        iy++;                                                  \
                        d = buf + (iy + s->pt) * pitch + s->pl * VL;           \
                    }                                                          \
                }                                                              \
            }                                                                  \
            /* the taps, NB pixels a step; the last step reads and writes     \
             * past the row's end, where the next row's steps overwrite it */ \
            const float *t0 = buf + oy * s->sh * pitch;                        \
            float *o = obuf + oy * s->ow * VL;                                 \
            int64_t ox = 0;                                                    \
            for (; ox + NB <= s->ow; ox += NB)                                 \
                bstep##S##_8(t0 + ox * js, js, pitch, s->kh, s->kw, wp,        \
                             o + ox * VL);                                     \
            if (s->ow - ox > NB / 2)                                           \
                bstep##S##_8(t0 + ox * js, js, pitch, s->kh, s->kw, wp,        \
                             o + ox * VL);                                     \
            else if (s->ow > ox)                                               \
                bstep##S##_4(t0 + ox * js, js, pitch, s->kh, s->kw, wp,        \
                             o + ox * VL);                                     \
            /* out: VL complete pixels transposed back to the planes */       \
            const int64_t done = oy + 1 < s->oh ? (oy + 1) * s->ow / VL * VL   \
                                                : p;                           \
            for (; q0 < done; q0 += VL) {                                      \
                const int64_t n = p - q0 < VL ? p - q0 : VL;                   \
                _Pragma("GCC unroll 16") for (int j = 0; j < VL; j++) {        \
                    r[j] = ld##S(obuf + (q0 + j) * VL);                        \
                    if (bias) /* none: the chain as it is (-0 stays) */        \
                        r[j] = add##S(r[j], b);                                \
                }                                                              \
                tr##S(r);                                                      \
                if (nc == VL && n == VL) {                                     \
                    _Pragma("GCC unroll 16") for (int c = 0; c < VL; c++)      \
                        st##S(y + c * p + q0, r[c]);                           \
                    continue;                                                  \
                }                                                              \
                _Pragma("GCC unroll 16") for (int c = 0; c < VL; c++) {        \
                    if (c >= nc)                                               \
                        break;                                                 \
                    stn##S(y + c * p + q0, n, r[c]);                           \
                }                                                              \
            }                                                                  \
        }                                                                      \
        /* the Relu a plane at a time, from y: in the transposes' order,      \
         * its stores would add VL lines at once to those the others keep     \
         * in flight, all in one cache set when a plane is a multiple of      \
         * 4 KiB (2x slower on 32 x 32 planes) */                             \
        for (int64_t c = 0; ry && c < nc; c++) {                               \
            const float *src = y + c * p;                                      \
            float *dst = ry + c * p;                                           \
            int64_t q = 0;                                                     \
            for (; q + VL <= p; q += VL)                                       \
                st##S(dst + q, relu##S(ld##S(src + q)));                       \
            if (q < p)                                                         \
                stn##S(dst + q, p - q, relu##S(ldn##S(src + q, p - q)));       \
        }                                                                      \
    }

/* Every image and block of channels: the padding zeroed once, the
 * weights packed (or prepacked) 16 channels a block whatever VL. */
#define DEFINE_BLOCKED(S, VL)                                                  \
    DEFINE_BSTEP(S, VL, 8)                                                     \
    DEFINE_BSTEP(S, VL, 4)                                                     \
    DEFINE_BLOCK(S, VL)                                                        \
    ATTR##S static void blocked##S(const sm_conv_dw *s, int64_t images,        \
                                   int64_t channels, const float *x,           \
                                   const float *packed, const float *bias,     \
                                   float *y, float *ry, float *buf,            \
                                   float *obuf)                                \
    {                                                                          \
        const int64_t taps = s->kh * s->kw, hw = s->h * s->w;                  \
        const int64_t p = s->oh * s->ow;                                       \
        zero_padding(s, VL, buf);                                              \
        for (int64_t i = 0; i < images; i++)                                   \
            for (int64_t c0 = 0; c0 < channels; c0 += VL) {                    \
                const int64_t nc = channels - c0 < VL ? channels - c0 : VL;    \
                const int64_t at = i * channels + c0;                          \
                block##S(s, nc, x + at * hw,                                   \
                         packed + (c0 / CB * taps) * CB + c0 % CB,             \
                         bias ? bias + c0 : NULL, y + at * p,                  \
                         ry ? ry + at * p : NULL, buf, obuf);                  \
            }                                                                  \
    }

DEFINE_BLOCKED(512, 16)
DEFINE_BLOCKED(256, 8)
#endif

/* --- either --------------------------------------------------------------- */

int64_t sm_conv_dw_scratch_size(const sm_conv_dw *s, int64_t channels)
{
    if (!blocked(channels))
        return plane_scratch_size(s);
    return buf_size(s) + obuf_size(s) + sm_conv_dw_packed_size(s, channels);
}

/* A plane at a time, for each of images x channels planes. */
static void planes(const sm_conv_dw *s, int isa, int64_t images,
                   int64_t channels, const float *x, const float *w,
                   const float *bias, float *y, float *ry, float *scratch)
{
#if defined(__x86_64__)
    const int64_t pl = cols_of(s), p = s->oh * s->ow;
    float *grid = scratch + plane_size(s) + STEP_MAX + s->kw;
    memset(scratch, 0, sizeof(float) * (size_t)(plane_size(s) + STEP_MAX + s->kw));
    for (int64_t c = 0; c < images * channels; c++) {
        const int64_t ci = c % channels;
        lay_out(s, x + c * s->h * s->w, scratch);
        if (isa == SM_ISA_AVX512)
            grid512(s, scratch, w + ci * s->kh * s->kw, grid);
        else
            grid256(s, scratch, w + ci * s->kh * s->kw, grid);
        const float b = bias ? bias[ci] : 0.0f;
        for (int64_t oy = 0; oy < s->oh; oy++) {
            const float *src = grid + oy * pl;
            float *dst = y + c * p + oy * s->ow;
            if (bias) {
                for (int64_t ox = 0; ox < s->ow; ox++)
                    dst[ox] = src[ox] + b;
            } else { /* no bias: the chain as it is (-0 stays) */
                memcpy(dst, src, sizeof(float) * (size_t)s->ow);
            }
            if (ry) {
                float *rdst = ry + c * p + oy * s->ow;
                for (int64_t ox = 0; ox < s->ow; ox++)
                    rdst[ox] = sm_op_relu1(dst[ox]);
            }
        }
    }
#else
    (void)s, (void)isa, (void)images, (void)channels, (void)x, (void)w,
        (void)bias, (void)y, (void)ry, (void)scratch;
#endif
}

int sm_conv_dw_run(const sm_conv_dw *s, int64_t images, int64_t channels,
                   const float *x, const float *w, const float *packed,
                   const float *bias, float *y, float *ry, float *scratch)
{
#if defined(__x86_64__)
    const int isa = sm_isa();
    if (isa == SM_ISA_BASELINE)
        return -1;
    if (!blocked(channels)) {
        planes(s, isa, images, channels, x, w, bias, y, ry, scratch);
        return 0;
    }
    float *buf = scratch, *obuf = buf + buf_size(s);
    if (!packed) {
        float *wp = obuf + obuf_size(s);
        sm_conv_dw_pack(s, channels, w, wp);
        packed = wp;
    }
    if (isa == SM_ISA_AVX512)
        blocked512(s, images, channels, x, packed, bias, y, ry, buf, obuf);
    else
        blocked256(s, images, channels, x, packed, bias, y, ry, buf, obuf);
    return 0;
#else
    (void)s, (void)images, (void)channels, (void)x, (void)w, (void)packed,
        (void)bias, (void)y, (void)ry, (void)scratch;
    return -1;
#endif
}
