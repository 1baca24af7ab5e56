/* The GEMM of sgemm.h. B is copied a panel of NR columns at a time into ws
 * (all k rows, zero-padded past n), or packed beforehand, and each panel
 * meets the rows of A in register tiles of MR rows by NR columns; A is
 * read in place, one broadcast element at a time, so its layout costs
 * nothing: strided, or indirect (a row's base plus a column's offset, a
 * convolution's pixel and kernel tap). A tile's accumulators run the
 * whole of k, in order, with one fused multiply-add a step: that is what
 * makes every output's bits independent of where it lies. The store
 * applies alpha, the accumulation, a bias and a Relu, and places each
 * output through the row and column maps. Written with the AVX-512 and
 * AVX2 intrinsics in functions built for those sets (chosen at each call,
 * util/isa.h) and a plain C baseline. */
#include "ops/sgemm.h"

#include <string.h>

#include "ops/op_util.h"
#include "util/isa.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* Columns of a panel: two vectors of the widest set. */
#define NR_MAX 32

size_t sm_sgemm_workspace(int64_t k)
{
    return (size_t)(k > 0 ? k : 1) * NR_MAX;
}

/* What a run needs beyond its tile (sm_sgemm_args, B aside). */
typedef struct job {
    int64_t m, k;
    int64_t bs; /* floats a row of a packed panel of B takes */
    const float *a;
    int64_t a_rs, a_cs;
    const int64_t *a_rows, *a_cols;
    float alpha;
    int accumulate;
    float *c, *relu;
    sm_sgemm_map rows, cols;
    const float *bias;
    int bias_cols;
} job;

static inline int64_t map_at(const sm_sgemm_map *mp, int64_t x)
{
    return mp->group ? x / mp->group * mp->group_stride + x % mp->group * mp->stride
                     : x * mp->stride;
}

/* Packs columns [j0, j0 + nr) of op(B) into bp as k rows of w floats. */
static void pack_b(int trans_b, const float *b, int64_t ldb, int64_t k,
                   int64_t j0, int64_t nr, int64_t w, float *bp)
{
    if (nr < w)
        memset(bp, 0, sizeof(float) * (size_t)(k * w));
    if (trans_b) {
        /* a transpose in blocks of 8 rows of the panel: each column of B
         * is read 8 values at a time and the block written stays in L1
         * (column by column, every write touched another line of a panel
         * larger than L1: a third of abele's time on its decoder) */
        for (int64_t p0 = 0; p0 < k; p0 += 8) {
            int64_t p1 = p0 + 8 < k ? p0 + 8 : k;
            for (int64_t jj = 0; jj < nr; jj++) {
                const float *src = b + (j0 + jj) * ldb;
                for (int64_t p = p0; p < p1; p++)
                    bp[p * w + jj] = src[p];
            }
        }
    } else if (nr == NR_MAX && w == NR_MAX) {
        /* a whole panel: a copy of known size, inlined (the call to
         * memcpy a row took a fifth of a 1 x 1 convolution of 16
         * channels) */
        for (int64_t p = 0; p < k; p++)
            memcpy(bp + p * NR_MAX, b + p * ldb + j0, sizeof(float) * NR_MAX);
    } else {
        for (int64_t p = 0; p < k; p++)
            memcpy(bp + p * w, b + p * ldb + j0, sizeof(float) * (size_t)nr);
    }
}

/* Whether indices [x0, x0 + len) of mp lie in one group. */
static inline int one_group(const sm_sgemm_map *mp, int64_t x0, int64_t len)
{
    return !mp->group || x0 % mp->group + len <= mp->group;
}

/* Stores the outputs of a tile one at a time: rows [i0, i0 + mr),
 * columns [j0, j0 + nr) (coff: their offsets, map_at of cols), from t
 * (alpha * acc, row stride ldt). Inlined into the vector tiles: called
 * from them as a plain SSE function, it left this CPU (Zen 5) running
 * later SSE code slowly (libm's tanhf in the next node 2.4x slower,
 * abele 35% slower). */
static inline __attribute__((always_inline)) void store_tile(const job *jb, int64_t i0, int64_t mr, int64_t j0,
                       int64_t nr, const int64_t *coff, const float *t,
                       int64_t ldt)
{
    for (int64_t r = 0; r < mr; r++) {
        const int64_t ro = map_at(&jb->rows, i0 + r);
        for (int64_t j = 0; j < nr; j++) {
            const int64_t o = ro + coff[j];
            float v = t[r * ldt + j];
            if (jb->accumulate)
                v = jb->c[o] + v;
            if (jb->bias)
                v = v + jb->bias[jb->bias_cols ? j0 + j : i0 + r];
            jb->c[o] = v;
            if (jb->relu)
                jb->relu[o] = sm_op_relu1(v);
        }
    }
}

#if defined(__x86_64__)
#define ATTR512 __attribute__((target("avx512f,avx2,fma")))
#define ATTR256 __attribute__((target("avx2,fma")))

/* Stores a full-height AVX-512 tile (8 rows from i0, nr <= 32 columns; t:
 * alpha * acc, rows of 32) whose rows are contiguous in C and columns
 * not (a pixel-major convolution writing NCHW): transposed in 4 x 4
 * blocks (unpack and shuffle within 128-bit lanes), each column's 8
 * outputs then one 256-bit vector. */
ATTR512 static void tstore512(const job *jb, int64_t i0, int64_t j0,
                              int64_t nr, const int64_t *coff, const float *t)
{
    /* s[h][q][4L + e]: row e (q < 4) or 4 + e (q >= 4) of column
     * 16h + 4L + q % 4 */
    float s[2][8][16];
    for (int h = 0; h < 2; h++) {
        __m512 r[8], u[8];
        for (int i = 0; i < 8; i++)
            r[i] = _mm512_loadu_ps(t + i * 32 + h * 16);
        for (int i = 0; i < 8; i += 2) {
            u[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
            u[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
        }
        for (int g = 0; g < 8; g += 4) {
            _mm512_storeu_ps(s[h][g / 4 * 4 + 0],
                             _mm512_shuffle_ps(u[g], u[g + 2], 0x44));
            _mm512_storeu_ps(s[h][g / 4 * 4 + 1],
                             _mm512_shuffle_ps(u[g], u[g + 2], 0xEE));
            _mm512_storeu_ps(s[h][g / 4 * 4 + 2],
                             _mm512_shuffle_ps(u[g + 1], u[g + 3], 0x44));
            _mm512_storeu_ps(s[h][g / 4 * 4 + 3],
                             _mm512_shuffle_ps(u[g + 1], u[g + 3], 0xEE));
        }
    }
    const int64_t ro = map_at(&jb->rows, i0);
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t j = 0; j < nr; j++) {
        const float *lo = &s[j / 16][j % 4][j % 16 / 4 * 4];
        __m256 v = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)),
                                        _mm_loadu_ps(lo + 4 * 16), 1);
        const int64_t o = ro + coff[j];
        if (jb->accumulate)
            v = _mm256_add_ps(_mm256_loadu_ps(jb->c + o), v);
        if (jb->bias)
            v = _mm256_add_ps(v, jb->bias_cols ? _mm256_set1_ps(jb->bias[j0 + j])
                                               : _mm256_loadu_ps(jb->bias + i0));
        _mm256_storeu_ps(jb->c + o, v);
        if (jb->relu)
            _mm256_storeu_ps(jb->relu + o, _mm256_max_ps(zero, v));
    }
}

/* A tile of MR rows by two vectors V (VL floats each): the k loop (IND:
 * A indirect), then alpha, then the store: whole vectors straight through
 * the maps when the panel is full and a vector's columns are contiguous
 * in C (fast), else one output at a time. */
#define DEFINE_TILE(NAME, ATTR, V, VL, SET1, LOADU, STOREU, FMA, MUL, ADD,     \
                    MAX, MR, IND, TS)                                          \
    ATTR static inline void NAME(const job *jb, int64_t i0, const float *bp,  \
                                 int64_t j0, int64_t nr, const int64_t *coff, \
                                 int fast)                                     \
    {                                                                          \
        V acc[MR][2];                                                          \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)                   \
            acc[r][0] = acc[r][1] = SET1(0.0f);                                \
        if (IND) {                                                             \
            const float *rp[MR];                                               \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)               \
                rp[r] = jb->a + jb->a_rows[i0 + r];                            \
            const int64_t *ko = jb->a_cols;                                    \
            for (int64_t p = 0; p < jb->k; p++) {                              \
                V b0 = LOADU(bp + p * jb->bs);                                 \
                V b1 = LOADU(bp + p * jb->bs + VL);                            \
                const int64_t o = ko[p];                                       \
                _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {         \
                    V av = SET1(rp[r][o]);                                     \
                    acc[r][0] = FMA(av, b0, acc[r][0]);                        \
                    acc[r][1] = FMA(av, b1, acc[r][1]);                        \
                }                                                              \
            }                                                                  \
        } else {                                                               \
            const float *ar = jb->a + i0 * jb->a_rs;                           \
            for (int64_t p = 0; p < jb->k; p++) {                              \
                V b0 = LOADU(bp + p * jb->bs);                                 \
                V b1 = LOADU(bp + p * jb->bs + VL);                            \
                const float *ap = ar + p * jb->a_cs;                           \
                _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {         \
                    V av = SET1(ap[r * jb->a_rs]);                             \
                    acc[r][0] = FMA(av, b0, acc[r][0]);                        \
                    acc[r][1] = FMA(av, b1, acc[r][1]);                        \
                }                                                              \
            }                                                                  \
        }                                                                      \
        V al = SET1(jb->alpha);                                                \
        if (fast != 1 || nr < 2 * VL) {                                        \
            float t[MR][2 * VL];                                               \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {             \
                STOREU(t[r], MUL(al, acc[r][0]));                              \
                STOREU(t[r] + VL, MUL(al, acc[r][1]));                         \
            }                                                                  \
            if (TS && fast == 2 && one_group(&jb->rows, i0, MR))               \
                tstore512(jb, i0, j0, nr, coff, t[0]);                         \
            else                                                               \
                store_tile(jb, i0, MR, j0, nr, coff, t[0], 2 * VL);            \
            return;                                                            \
        }                                                                      \
        const V zero = SET1(0.0f);                                             \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                 \
            const int64_t ro = map_at(&jb->rows, i0 + r);                      \
            _Pragma("GCC unroll 2") for (int v = 0; v < 2; v++) {               \
                const int64_t o = ro + coff[v * VL];                           \
                V t = MUL(al, acc[r][v]);                                      \
                if (jb->accumulate)                                            \
                    t = ADD(LOADU(jb->c + o), t);                              \
                if (jb->bias)                                                  \
                    t = ADD(t, jb->bias_cols ? LOADU(jb->bias + j0 + v * VL)   \
                                             : SET1(jb->bias[i0 + r]));        \
                STOREU(jb->c + o, t);                                          \
                /* max(0, t): 0 where t < 0, t itself otherwise (-0, NaN) */   \
                if (jb->relu)                                                  \
                    STOREU(jb->relu + o, MAX(zero, t));                        \
            }                                                                  \
        }                                                                      \
    }

#define TILE512(MR, IND, SUF)                                                  \
    DEFINE_TILE(tile512_##MR##SUF, ATTR512, __m512, 16, _mm512_set1_ps,        \
                _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps,            \
                _mm512_mul_ps, _mm512_add_ps, _mm512_max_ps, MR, IND,          \
                MR == 8)
#define TILE256(MR, IND, SUF)                                                  \
    DEFINE_TILE(tile256_##MR##SUF, ATTR256, __m256, 8, _mm256_set1_ps,         \
                _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps,            \
                _mm256_mul_ps, _mm256_add_ps, _mm256_max_ps, MR, IND, 0)
/* Each height with A strided and indirect (suffix i). */
#define TILES(SET, MR) SET(MR, 0, ) SET(MR, 1, i)
TILES(TILE512, 8)
TILES(TILE512, 4)
TILES(TILE512, 2)
TILES(TILE512, 1)
TILES(TILE256, 6)
TILES(TILE256, 4)
TILES(TILE256, 2)
TILES(TILE256, 1)

/* Every tile of a panel: MR rows at a time (TMR's), the rest by 4, 2, 1:
 * 8 rows on AVX-512 (16 of its 32 registers accumulate), 6 on AVX2 (12 of
 * 16). */
#define DEFINE_PANEL(NAME, ATTR, VL, TMR, MR, T4, T2, T1)                      \
    ATTR static void NAME(const job *jb, const float *bp, int64_t j0,          \
                          int64_t nr, const int64_t *coff)                     \
    {                                                                          \
        /* 1: a vector's columns are contiguous in C; 2: a column's rows  \
         * are, within a row group (a tile of 8 rows inside one, the tile \
         * checks) */                                                      \
        const int fast = jb->cols.stride == 1 && jb->cols.group % VL == 0     \
                             ? 1                                               \
                         : jb->rows.stride == 1 && jb->cols.group == 0         \
                             ? 2                                               \
                             : 0;                                              \
        int64_t i0 = 0;                                                        \
        for (; i0 + MR <= jb->m; i0 += MR)                                     \
            TMR(jb, i0, bp, j0, nr, coff, fast);                               \
        for (; i0 + 4 <= jb->m; i0 += 4)                                       \
            T4(jb, i0, bp, j0, nr, coff, fast);                                \
        for (; i0 + 2 <= jb->m; i0 += 2)                                       \
            T2(jb, i0, bp, j0, nr, coff, fast);                                \
        for (; i0 < jb->m; i0++)                                               \
            T1(jb, i0, bp, j0, nr, coff, fast);                                \
    }
DEFINE_PANEL(panel512, ATTR512, 16, tile512_8, 8, tile512_4, tile512_2,
             tile512_1)
DEFINE_PANEL(panel512i, ATTR512, 16, tile512_8i, 8, tile512_4i, tile512_2i,
             tile512_1i)
DEFINE_PANEL(panel256, ATTR256, 8, tile256_6, 6, tile256_4, tile256_2,
             tile256_1)
DEFINE_PANEL(panel256i, ATTR256, 8, tile256_6i, 6, tile256_4i, tile256_2i,
             tile256_1i)
#endif

/* op(A)'s element (i, p). */
static inline float a_at(const job *jb, int64_t i, int64_t p)
{
    return jb->a_rows ? jb->a[jb->a_rows[i] + jb->a_cols[p]]
                      : jb->a[i * jb->a_rs + p * jb->a_cs];
}

/* The baseline: the same tiles in plain C (4 rows by 8 columns), a
 * multiply and an add a step (-std=c11 keeps GCC from fusing them). */
#define BASE_MR 4
#define BASE_NR 8
static void panel_base(const job *jb, const float *bp, int64_t j0, int64_t nr,
                       const int64_t *coff)
{
    for (int64_t i0 = 0; i0 < jb->m; i0 += BASE_MR) {
        const int64_t mr = jb->m - i0 < BASE_MR ? jb->m - i0 : BASE_MR;
        float acc[BASE_MR][BASE_NR] = {{0}};
        for (int64_t p = 0; p < jb->k; p++) {
            const float *bq = bp + p * jb->bs;
            for (int64_t r = 0; r < mr; r++) {
                const float av = a_at(jb, i0 + r, p);
                for (int j = 0; j < BASE_NR; j++)
                    acc[r][j] = acc[r][j] + av * bq[j];
            }
        }
        float t[BASE_MR][BASE_NR];
        for (int64_t r = 0; r < mr; r++)
            for (int j = 0; j < BASE_NR; j++)
                t[r][j] = jb->alpha * acc[r][j];
        store_tile(jb, i0, mr, j0, nr, coff, t[0], BASE_NR);
    }
}

/* Inner dimensions up to which an untransposed B is read in place. */
#define IN_PLACE_K 256

/* Columns of a panel on this CPU's set. */
static int64_t panel_width(int isa)
{
    return isa == SM_ISA_AVX512 ? 32 : isa == SM_ISA_AVX2 ? 16 : BASE_NR;
}

/* Every tile of the panel of columns [j0, j0 + nr) of op(B), packed in bp. */
static void run_panel(int isa, const job *jb, const float *bp, int64_t j0,
                      int64_t nr)
{
    int64_t coff[NR_MAX];
    for (int64_t j = 0; j < nr; j++)
        coff[j] = map_at(&jb->cols, j0 + j);
#if defined(__x86_64__)
    if (isa == SM_ISA_AVX512) {
        if (jb->a_rows)
            panel512i(jb, bp, j0, nr, coff);
        else
            panel512(jb, bp, j0, nr, coff);
        return;
    }
    if (isa == SM_ISA_AVX2) {
        if (jb->a_rows)
            panel256i(jb, bp, j0, nr, coff);
        else
            panel256(jb, bp, j0, nr, coff);
        return;
    }
#endif
    panel_base(jb, bp, j0, nr, coff);
}

void sm_sgemm_run(const sm_sgemm_args *g)
{
    if (g->m <= 0 || g->n <= 0)
        return;
    const int isa = sm_isa();
    const int64_t w = panel_width(isa);
    job jb = {g->m, g->k, g->b ? w : NR_MAX, g->a, g->a_rs, g->a_cs,
              g->a_rows, g->a_cols, g->alpha, g->accumulate, g->c, g->relu,
              g->rows, g->cols, g->bias, g->bias_per_col};
    /* B's rows read in place (whole panels of an untransposed B): a
     * short panel stays in cache as it is, and copying it cost a sixth
     * of a pointwise convolution's time; but not rows 4 KiB apart, which
     * all fall in the same L1 sets (measured: slower) */
    job direct = jb;
    direct.bs = g->ldb;
    const int in_place = g->b && !g->trans_b && g->k <= IN_PLACE_K &&
                         g->ldb % 1024 != 0;
    for (int64_t j0 = 0; j0 < g->n; j0 += w) {
        const int64_t nr = g->n - j0 < w ? g->n - j0 : w;
        const float *panel = g->ws;
        if (in_place && nr == w) {
            run_panel(isa, &direct, g->b + j0, j0, nr);
            continue;
        }
        if (g->b)
            pack_b(g->trans_b, g->b, g->ldb, g->k, j0, nr, w, g->ws);
        else
            panel = g->bp + j0 / NR_MAX * NR_MAX * g->k + j0 % NR_MAX;
        run_panel(isa, &jb, panel, j0, nr);
    }
}

void sm_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float *a, int64_t lda, const float *b,
              int64_t ldb, int accumulate, float *c, int64_t ldc, float *ws)
{
    sm_sgemm_run(&(sm_sgemm_args){
        .m = m, .n = n, .k = k, .alpha = alpha, .a = a,
        .a_rs = trans_a ? 1 : lda, .a_cs = trans_a ? lda : 1, .b = b,
        .ldb = ldb, .trans_b = trans_b, .ws = ws, .c = c,
        .rows = {ldc, 0, 0}, .cols = {1, 0, 0}, .accumulate = accumulate});
}

size_t sm_sgemm_packed_size(int64_t k, int64_t n)
{
    return (size_t)(k > 0 ? k : 1) * (size_t)((n + NR_MAX - 1) / NR_MAX * NR_MAX);
}

/* Packed panels are NR_MAX columns wide whatever the set, so that a
 * packing outlives a change of SALMAP_ISA; a narrower set runs each in
 * slices of its own width. */
void sm_sgemm_pack(int trans_b, const float *b, int64_t ldb, int64_t k,
                   int64_t n, float *bp)
{
    for (int64_t j0 = 0; j0 < n; j0 += NR_MAX)
        pack_b(trans_b, b, ldb, k, j0, n - j0 < NR_MAX ? n - j0 : NR_MAX,
               NR_MAX, bp + j0 * k);
}

void sm_sgemm_packed(int trans_a, int64_t m, int64_t n, int64_t k,
                     float alpha, const float *a, int64_t lda,
                     const float *bp, int accumulate, float *c, int64_t ldc)
{
    sm_sgemm_run(&(sm_sgemm_args){
        .m = m, .n = n, .k = k, .alpha = alpha, .a = a,
        .a_rs = trans_a ? 1 : lda, .a_cs = trans_a ? lda : 1, .bp = bp,
        .c = c, .rows = {ldc, 0, 0}, .cols = {1, 0, 0},
        .accumulate = accumulate});
}
