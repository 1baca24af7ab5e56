/* Direct stride-1 convolution over a zero-padded input, vectorised along
 * the padded rows and register-blocked: each accumulator tile is MB output
 * channels by XB vectors of consecutive positions, so every input vector
 * loaded serves MB channels and every weight XB vectors. Positions run
 * over the padded width (the kw - 1 columns past each output row are
 * computed and dropped), which makes every tap one contiguous load.
 * Built for AVX-512 (16 floats a vector) and AVX2 (8), chosen at each call
 * (util/isa.h). Each output is one fused multiply-add chain over (ci, ki,
 * kj) in order from zero, then the bias added: the very roundings of
 * im2col + sm_sgemm (ops/sgemm.h), on either set. Without AVX2 there is
 * no kernel (a baseline x86-64 build, 8-float vectors in SSE registers,
 * was slower than im2col + sgemm) and Conv keeps im2col. */
#include "ops/conv_direct.h"

#include <string.h>

#include "ops/conv_geom.h"
#include "ops/op_util.h"
#include "util/isa.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Output channels a block at most (the packing's, block_of), the most
 * floats a vector holds (AVX-512; 8 with AVX2), and the widest tile: the
 * most positions one tile computes (xb_of vectors). */
#define TILE 8
#define VMAX 16
#define SPAN_MAX (VMAX * 16)

typedef float v4 __attribute__((vector_size(4 * sizeof(float))));
typedef float v8 __attribute__((vector_size(8 * sizeof(float))));
typedef float v16 __attribute__((vector_size(16 * sizeof(float))));
typedef int32_t i4 __attribute__((vector_size(4 * sizeof(int32_t))));
typedef int32_t i8 __attribute__((vector_size(8 * sizeof(int32_t))));
typedef int32_t i16 __attribute__((vector_size(16 * sizeof(int32_t))));

/* Unaligned vector load and store (macros: a function taking or returning
 * a vector would change the ABI between the instruction sets). */
#define LOAD_V(v, p) memcpy(&(v), (p), sizeof(v))
#define STORE_V(p, v) memcpy((p), &(v), sizeof(v))

/* Output channels per tile: the block of least cost, the bigger on a tie,
 * where a block of mb channels costs mb + LOAD_COST: a tile step's
 * multiply-adds, and its input vectors' unaligned loads (one for all mb
 * channels, most of them split across cache lines), in multiply-adds.
 * Counting padded channels alone put 3 output channels (the input
 * gradient of an RGB stem) in blocks of one, which ran at 52 GFLOP/s;
 * in one block of 4 they run at 65 (docs/PERFORMANCE.md). Which block
 * never changes a bit: each output is one chain whatever the tile. */
#define LOAD_COST 1
static int64_t block_of(int64_t cout)
{
    int64_t best = TILE, best_cost = (cout + TILE - 1) / TILE * (TILE + LOAD_COST);
    for (int64_t mb = TILE / 2; mb >= 1; mb /= 2) {
        int64_t cost = (cout + mb - 1) / mb * (mb + LOAD_COST);
        if (cost < best_cost) {
            best = mb;
            best_cost = cost;
        }
    }
    return best;
}

/* Columns and rows of a phase block (the padded plane itself at stride
 * 1), and floats of an input channel's blocks. */
static int64_t pitch_of(const sm_conv_direct *s) { return s->ow + (s->kw - 1) / s->sw; }
static int64_t rows_of(const sm_conv_direct *s) { return s->oh + (s->kh - 1) / s->sh; }
static int64_t block_floats(const sm_conv_direct *s) { return rows_of(s) * pitch_of(s); }
static int64_t plane_of(const sm_conv_direct *s)
{
    return s->sh * s->sw * block_floats(s);
}

/* Vectors of positions a tile of mb channels computes on set isa. On
 * AVX-512 (32 registers) 16 accumulators: with 8 (as on AVX2, which has
 * 16 registers) the two FMA pipes of a Zen 5 waited on their latency,
 * and with 24 or 32 the tiles overshot the small planes' grids; 8 x 2
 * took the MNIST model's 32 -> 64 3x3 layer on 14 x 14 from 85 to 120
 * GFLOP/s (docs/PERFORMANCE.md). Any shape rounds alike: each output is
 * one chain whatever the tile. */
static int64_t xb_of(int isa, int64_t mb)
{
    if (isa == SM_ISA_AVX512)
        return 16 / mb;
    return TILE / mb;
}

/* Positions computed per output plane with vectors of vl floats in tiles
 * of xb vectors: oh padded rows, rounded up to whole tiles. */
static int64_t grid_of(const sm_conv_direct *s, int64_t span)
{
    return (s->oh * pitch_of(s) + span - 1) / span * span;
}

int64_t sm_conv_direct_input_size(const sm_conv_direct *s)
{
    /* the last tile reads up to SPAN_MAX + kw floats past the last plane */
    return s->cin * plane_of(s) + SPAN_MAX + s->kw;
}

int64_t sm_conv_direct_packed_size(const sm_conv_direct *s)
{
    int64_t mb = block_of(s->cout);
    return (s->cout + mb - 1) / mb * mb * s->cin * s->kh * s->kw;
}

int64_t sm_conv_direct_scratch_size(const sm_conv_direct *s)
{
    /* either set's grid: the workspace is planned whatever sm_isa() says */
    const int64_t mb = block_of(s->cout);
    const int64_t g512 = grid_of(s, 16 * xb_of(SM_ISA_AVX512, mb));
    const int64_t g256 = grid_of(s, 8 * xb_of(SM_ISA_AVX2, mb));
    return mb * (g512 > g256 ? g512 : g256);
}

void sm_conv_direct_pack(const sm_conv_direct *s, const float *w, int flip,
                         float *packed)
{
    const int64_t taps = s->kh * s->kw, kt = s->cin * taps;
    const int64_t mb = block_of(s->cout);
    memset(packed, 0, sizeof(float) * (size_t)sm_conv_direct_packed_size(s));
    for (int64_t co = 0; co < s->cout; co++)
        for (int64_t ci = 0; ci < s->cin; ci++)
            for (int64_t t = 0; t < taps; t++) {
                /* flip: tap t of (co, ci) is the forward w[ci][co][last - t] */
                float v = flip ? w[(ci * s->cout + co) * taps + taps - 1 - t]
                               : w[(co * s->cin + ci) * taps + t];
                packed[((co / mb) * kt + ci * taps + t) * mb + co % mb] = v;
            }
}

void sm_conv_direct_pad(const sm_conv_direct *s, const float *x, int64_t h,
                        int64_t w, int64_t r0, int64_t s0, float *xp)
{
    const int64_t rows = rows_of(s), pitch = pitch_of(s), block = block_floats(s);
    memset(xp, 0, sizeof(float) * (size_t)sm_conv_direct_input_size(s));
    for (int64_t ci = 0; ci < s->cin; ci++)
        for (int64_t i = 0; i < h; i++) {
            const int64_t r = i + r0;
            /* row r's phase and place (no divisions at stride 1) */
            const int64_t rq = s->sh == 1 ? r : r / s->sh;
            const int64_t rp = s->sh == 1 ? 0 : r % s->sh;
            if (r < 0 || rq >= rows)
                continue;
            const float *src = x + (ci * h + i) * w;
            float *dst = xp + ci * plane_of(s) + rp * s->sw * block + rq * pitch;
            sm_conv_phase_row(src, w, s->sw, s0, pitch, block, dst);
        }
}

/* One tile: MB channels of block wb by XB vectors (type V, VL floats) from
 * position q0 of every plane, into scratch rows of ng positions. The fused
 * multiply-add is explicit (FMA), not left to the compiler's contraction,
 * so that every build and every set rounds alike. K3: the kernel is 3 x 3
 * at stride 1 (the common layer), known here so that the taps unroll. */
#define DEFINE_TILE(NAME, ATTR, V, VL, SET1, LOADU, STOREU, FMA, MB, XB, K3)   \
    ATTR static inline __attribute__((always_inline)) void NAME(               \
        const sm_conv_direct *s, const float *xp, const float *wb,             \
        int64_t q0, float *grid, int64_t ng)                                   \
    {                                                                          \
        const int64_t plane = plane_of(s), pitch = pitch_of(s);                \
        const int64_t block = block_floats(s);                                 \
        const int64_t kh = K3 ? 3 : s->kh, kw = K3 ? 3 : s->kw;                \
        const int64_t sh = K3 ? 1 : s->sh, sw = K3 ? 1 : s->sw;                \
        V acc[MB][XB];                                                         \
        _Pragma("GCC unroll 16") for (int m = 0; m < MB; m++)                  \
            _Pragma("GCC unroll 16") for (int x = 0; x < XB; x++)              \
                acc[m][x] = SET1(0.0f);                                        \
        for (int64_t ci = 0; ci < s->cin; ci++) {                              \
            /* tap (ki, kj) is at phase (ki % sh, kj % sw), (ki / sh, kj /   \
             * sw): offsets stepped along, no division in the loop */          \
            const float *row = xp + ci * plane + q0;                           \
            int64_t rph = 0;                                                   \
            _Pragma("GCC unroll 3") for (int64_t ki = 0; ki < kh; ki++) {      \
                const float *wk = wb + (ci * kh + ki) * kw * MB;               \
                const float *t = row;                                          \
                int64_t cph = 0;                                               \
                _Pragma("GCC unroll 3") for (int64_t kj = 0; kj < kw; kj++) {  \
                    V xv[XB];                                                  \
                    _Pragma("GCC unroll 16") for (int x = 0; x < XB; x++)      \
                        xv[x] = LOADU(t + x * VL);                             \
                    _Pragma("GCC unroll 16") for (int m = 0; m < MB; m++) {    \
                        V wm = SET1(wk[kj * MB + m]);                          \
                        _Pragma("GCC unroll 16") for (int x = 0; x < XB; x++)  \
                            acc[m][x] = FMA(wm, xv[x], acc[m][x]);             \
                    }                                                          \
                    if (++cph == sw) {                                         \
                        cph = 0;                                               \
                        t += 1 - (sw - 1) * block;                             \
                    } else {                                                   \
                        t += block;                                            \
                    }                                                          \
                }                                                              \
                if (++rph == sh) {                                             \
                    rph = 0;                                                   \
                    row += pitch - (sh - 1) * sw * block;                      \
                } else {                                                       \
                    row += sw * block;                                         \
                }                                                              \
            }                                                                  \
        }                                                                      \
        _Pragma("GCC unroll 16") for (int m = 0; m < MB; m++)                  \
            _Pragma("GCC unroll 16") for (int x = 0; x < XB; x++)              \
                STOREU(grid + m * ng + q0 + x * VL, acc[m][x]);                \
    }

/* The tiles of each block of channels, general and 3 x 3. */
#define TILES(PFX, ATTR, V, VL, SET1, LOADU, STOREU, FMA, MB, XB)              \
    DEFINE_TILE(PFX##_##MB, ATTR, V, VL, SET1, LOADU, STOREU, FMA, MB, XB, 0)  \
    DEFINE_TILE(PFX##_##MB##_k3, ATTR, V, VL, SET1, LOADU, STOREU, FMA, MB,    \
                XB, 1)

#if defined(__x86_64__)
#define ATTR512 __attribute__((target("avx512f,avx2,fma")))
#define ATTR256 __attribute__((target("avx2,fma")))
#define TILE512(MB, XB)                                                        \
    TILES(tile16, ATTR512, __m512, 16, _mm512_set1_ps, _mm512_loadu_ps,        \
          _mm512_storeu_ps, _mm512_fmadd_ps, MB, XB)
#define TILE256(MB, XB)                                                        \
    TILES(tile8, ATTR256, __m256, 8, _mm256_set1_ps, _mm256_loadu_ps,          \
          _mm256_storeu_ps, _mm256_fmadd_ps, MB, XB)
TILE256(8, 1)
TILE256(4, 2)
TILE256(2, 4)
TILE256(1, 8)
TILE512(8, 2)
TILE512(4, 4)
TILE512(2, 8)
TILE512(1, 16)
#endif

/* dst[ox..] (+)= src[ox..] + b for one vector of type T (I: the integer
 * vector of its width), and rdst[ox..] its Relu when rdst is not NULL:
 * the copy-out's steps, narrowing towards the end of a row (rows of small
 * feature maps are mostly tail). The Relu clears the bits of the lanes
 * below zero, keeping -0 and NaN: sm_op_relu's x < 0 ? 0 : x. */
#define COPY_OUT(T, I)                                                         \
    do {                                                                       \
        T v_, d_;                                                              \
        LOAD_V(v_, src + ox);                                                  \
        v_ += b;                                                               \
        if (accumulate) {                                                      \
            LOAD_V(d_, dst + ox);                                              \
            v_ = d_ + v_;                                                      \
        }                                                                      \
        STORE_V(dst + ox, v_);                                                 \
        if (rdst) {                                                            \
            const T z_ = {0};                                                  \
            T r_ = (T)((I)v_ & ~(I)(v_ < z_));                                 \
            STORE_V(rdst + ox, r_);                                            \
        }                                                                      \
    } while (0)

/* Every tile of block wb over the grid with tile function T. */
#define TILES_AT(T)                                                            \
    for (int64_t q0 = 0; q0 < ng; q0 += span)                                  \
        T(s, xp, wb, q0, scratch, ng)

/* Tiles of mb channels: the 3 x 3 ones where they fit. */
#define BLOCK_AT(T)                                                            \
    do {                                                                       \
        if (k3)                                                                \
            TILES_AT(T##_k3);                                                  \
        else                                                                   \
            TILES_AT(T);                                                       \
    } while (0)

/* The whole problem on set ISA with vectors of type V (VL floats, I its
 * integer twin), tiles P_<mb>: every block of output channels over the
 * grid, then its planes copied out less the columns past each output row
 * (and their Relu into ry). */
#define DEFINE_RUN(NAME, ATTR, ISA, V, I, VL, P)                               \
    ATTR static void NAME(const sm_conv_direct *s, const float *xp,            \
                          const float *packed, const float *bias, float *y,    \
                          float *ry, int accumulate, float *scratch)           \
    {                                                                          \
        const int64_t mb = block_of(s->cout), span = VL * xb_of(ISA, mb);      \
        const int64_t pitch = pitch_of(s);                                     \
        const int64_t kt = s->cin * s->kh * s->kw, ng = grid_of(s, span);      \
        const int k3 = s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1;   \
        for (int64_t co0 = 0; co0 < s->cout; co0 += mb) {                      \
            const float *wb = packed + co0 * kt;                               \
            if (mb == 8)                                                       \
                BLOCK_AT(P##_8);                                               \
            else if (mb == 4)                                                  \
                BLOCK_AT(P##_4);                                               \
            else if (mb == 2)                                                  \
                BLOCK_AT(P##_2);                                               \
            else                                                               \
                BLOCK_AT(P##_1);                                               \
            const int64_t nm = s->cout - co0 < mb ? s->cout - co0 : mb;        \
            for (int64_t m = 0; m < nm; m++) {                                 \
                const float b = bias ? bias[co0 + m] : 0.0f;                   \
                float *dst = y + (co0 + m) * s->oh * s->ow;                    \
                float *rdst = ry ? ry + (co0 + m) * s->oh * s->ow : NULL;      \
                for (int64_t oy = 0; oy < s->oh; oy++) {                       \
                    const float *src = scratch + m * ng + oy * pitch;          \
                    int64_t ox = 0;                                            \
                    for (; ox + VL <= s->ow; ox += VL)                         \
                        COPY_OUT(V, I);                                        \
                    if (VL > 8 && ox + 8 <= s->ow) {                           \
                        COPY_OUT(v8, i8);                                      \
                        ox += 8;                                               \
                    }                                                          \
                    if (ox + 4 <= s->ow) {                                     \
                        COPY_OUT(v4, i4);                                      \
                        ox += 4;                                               \
                    }                                                          \
                    for (; ox < s->ow; ox++) {                                 \
                        dst[ox] = accumulate ? dst[ox] + (src[ox] + b)      \
                                             : src[ox] + b;                    \
                        if (rdst)                                              \
                            rdst[ox] = sm_op_relu1(dst[ox]);                   \
                    }                                                          \
                    dst += s->ow;                                              \
                    if (rdst)                                                  \
                        rdst += s->ow;                                         \
                }                                                              \
            }                                                                  \
        }                                                                      \
    }

#if defined(__x86_64__)
DEFINE_RUN(run_avx512, ATTR512, SM_ISA_AVX512, v16, i16, 16, tile16)
DEFINE_RUN(run_avx2, ATTR256, SM_ISA_AVX2, v8, i8, 8, tile8)
#endif

int sm_conv_direct_run(const sm_conv_direct *s, const float *xp,
                       const float *packed, const float *bias, float *y,
                       float *ry, int accumulate, float *scratch)
{
#if defined(__x86_64__)
    const int isa = sm_isa();
    if (isa == SM_ISA_AVX512) {
        run_avx512(s, xp, packed, bias, y, ry, accumulate, scratch);
        return 0;
    }
    if (isa == SM_ISA_AVX2) {
        run_avx2(s, xp, packed, bias, y, ry, accumulate, scratch);
        return 0;
    }
#endif
    (void)s, (void)xp, (void)packed, (void)bias, (void)y, (void)ry,
        (void)accumulate, (void)scratch;
    return -1;
}
