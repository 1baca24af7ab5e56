/* The depthwise convolution of conv_dw.h. Each plane is laid out once,
 * zero-padded, split into sh x sw phases (padded rows r = i*sh + rph,
 * columns col = j*sw + cph: phase (rph, cph) holds (i, j) as a row-major
 * block of pl columns), so that for every tap (ki, kj) the output at
 * (oy, ox) reads its phase at (oy + ki/sh, ox + kj/sw): over a grid of
 * oh x pl positions (the columns past ow computed and dropped), each tap
 * is one run of consecutive floats whatever the stride, and a plane of
 * a few pixels a row still fills whole vectors. Each output is one fused
 * multiply-add chain over (ki, kj) in order from zero, then the bias
 * added. Built for AVX-512 and AVX2 with their intrinsics, chosen at each
 * call (util/isa.h). */
#include "ops/conv_dw.h"

#include <string.h>

#include "ops/conv_geom.h"
#include "util/isa.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

int64_t sm_conv_dw_scratch_size(const sm_conv_dw *s)
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
/* NB vectors V (VL floats) of the grid from position q0. */
#define DEFINE_STEP(NAME, ATTR, V, VL, SET1, LOADU, STOREU, FMA, NB)           \
    ATTR static inline __attribute__((always_inline)) void NAME(               \
        const sm_conv_dw *s, const float *buf, const float *w, float *grid,    \
        int64_t q0)                                                            \
    {                                                                          \
        const int64_t pl = cols_of(s), block = rows_of(s) * pl;                \
        V acc[NB];                                                             \
        _Pragma("GCC unroll 4") for (int x = 0; x < NB; x++)                   \
            acc[x] = SET1(0.0f);                                               \
        for (int64_t ki = 0; ki < s->kh; ki++)                                 \
            for (int64_t kj = 0; kj < s->kw; kj++) {                           \
                const V wv = SET1(w[ki * s->kw + kj]);                         \
                const float *t = buf +                                         \
                                 ((ki % s->sh) * s->sw + kj % s->sw) * block + \
                                 (ki / s->sh) * pl + kj / s->sw + q0;          \
                _Pragma("GCC unroll 4") for (int x = 0; x < NB; x++)           \
                    acc[x] = FMA(LOADU(t + x * VL), wv, acc[x]);               \
            }                                                                  \
        _Pragma("GCC unroll 4") for (int x = 0; x < NB; x++)                   \
            STOREU(grid + q0 + x * VL, acc[x]);                                \
    }

/* The grid of one plane: XB vectors a step, then the rest one by one (a
 * small plane's grid is a vector or two). */
#define DEFINE_GRID(NAME, ATTR, VL, STEPX, STEP1)                              \
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

#define ATTR512 __attribute__((target("avx512f,avx2,fma")))
#define ATTR256 __attribute__((target("avx2,fma")))
#define STEP512(NB)                                                            \
    DEFINE_STEP(step512_##NB, ATTR512, __m512, 16, _mm512_set1_ps,             \
                _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps, NB)
#define STEP256(NB)                                                            \
    DEFINE_STEP(step256_##NB, ATTR256, __m256, 8, _mm256_set1_ps,              \
                _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps, NB)
STEP512(4)
STEP512(1)
STEP256(4)
STEP256(1)
DEFINE_GRID(grid512, ATTR512, 16, step512_4, step512_1)
DEFINE_GRID(grid256, ATTR256, 8, step256_4, step256_1)
#endif

int sm_conv_dw_run(const sm_conv_dw *s, int64_t planes, const float *x,
                   const float *w, const float *bias, float *y,
                   float *scratch)
{
#if defined(__x86_64__)
    const int isa = sm_isa();
    if (isa == SM_ISA_BASELINE)
        return -1;
    const int64_t pl = cols_of(s);
    float *grid = scratch + plane_size(s) + STEP_MAX + s->kw;
    memset(scratch, 0, sizeof(float) * (size_t)(plane_size(s) + STEP_MAX + s->kw));
    for (int64_t c = 0; c < planes; c++) {
        lay_out(s, x + c * s->h * s->w, scratch);
        if (isa == SM_ISA_AVX512)
            grid512(s, scratch, w + c * s->kh * s->kw, grid);
        else
            grid256(s, scratch, w + c * s->kh * s->kw, grid);
        float *yc = y + c * s->oh * s->ow;
        for (int64_t oy = 0; oy < s->oh; oy++) {
            const float *src = grid + oy * pl;
            float *dst = yc + oy * s->ow;
            if (bias) {
                const float b = bias[c];
                for (int64_t ox = 0; ox < s->ow; ox++)
                    dst[ox] = src[ox] + b;
            } else { /* no bias: the chain as it is (-0 stays) */
                memcpy(dst, src, sizeof(float) * (size_t)s->ow);
            }
        }
    }
    return 0;
#else
    (void)s, (void)planes, (void)x, (void)w, (void)bias, (void)y,
        (void)scratch;
    return -1;
#endif
}
