/* The GEMM of sgemm.h. B is copied a panel of NR columns at a time into ws
 * (all k rows, zero-padded past n), and each panel meets the rows of A in
 * register tiles of MR rows by NR columns; A is read in place, one
 * broadcast element at a time, so its layout costs nothing. A tile's
 * accumulators run the whole of k, in order, with one fused multiply-add
 * a step: that is what makes every output's bits independent of where it
 * lies. Written with the AVX-512 and AVX2 intrinsics in functions built
 * for those sets (chosen at each call, util/isa.h) and a plain C baseline. */
#include "ops/sgemm.h"

#include <string.h>

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

/* What a run needs beyond its tile: op(A)'s element (i, p) is
 * a[i * a_rs + p * a_cs]. */
typedef struct job {
    int64_t m, k;
    int64_t bs; /* floats a row of a packed panel of B takes */
    const float *a;
    int64_t a_rs, a_cs;
    float alpha;
    int accumulate;
    float *c;
    int64_t ldc;
} job;

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
    } else {
        for (int64_t p = 0; p < k; p++)
            memcpy(bp + p * w, b + p * ldb + j0, sizeof(float) * (size_t)nr);
    }
}

/* Stores row r of a tile: C[j] = alpha*acc[j] or C[j] + alpha*acc[j] for
 * j < nr (t: the tile row, already scaled by alpha). */
static inline void store_row(const job *jb, float *crow, const float *t,
                             int64_t nr)
{
    for (int64_t j = 0; j < nr; j++)
        crow[j] = jb->accumulate ? crow[j] + t[j] : t[j];
}

#if defined(__x86_64__)
/* A tile of MR rows by two vectors V (VL floats each): the k loop, then
 * alpha, then the store (whole vectors when the panel is full). */
#define DEFINE_TILE(NAME, ATTR, V, VL, SET1, LOADU, STOREU, FMA, MUL, ADD, MR) \
    ATTR static inline void NAME(const job *jb, int64_t i0, const float *bp,  \
                                 int64_t j0, int64_t nr)                      \
    {                                                                          \
        V acc[MR][2];                                                          \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)                   \
            acc[r][0] = acc[r][1] = SET1(0.0f);                                \
        const float *ar = jb->a + i0 * jb->a_rs;                               \
        for (int64_t p = 0; p < jb->k; p++) {                                  \
            V b0 = LOADU(bp + p * jb->bs), b1 = LOADU(bp + p * jb->bs + VL);   \
            const float *ap = ar + p * jb->a_cs;                               \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {             \
                V av = SET1(ap[r * jb->a_rs]);                                 \
                acc[r][0] = FMA(av, b0, acc[r][0]);                            \
                acc[r][1] = FMA(av, b1, acc[r][1]);                            \
            }                                                                  \
        }                                                                      \
        V al = SET1(jb->alpha);                                                \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                 \
            float *crow = jb->c + (i0 + r) * jb->ldc + j0;                     \
            V t0 = MUL(al, acc[r][0]), t1 = MUL(al, acc[r][1]);                \
            if (nr == 2 * VL) {                                                \
                if (jb->accumulate) {                                          \
                    t0 = ADD(LOADU(crow), t0);                                 \
                    t1 = ADD(LOADU(crow + VL), t1);                            \
                }                                                              \
                STOREU(crow, t0);                                              \
                STOREU(crow + VL, t1);                                         \
            } else {                                                           \
                float t[2 * VL];                                               \
                STOREU(t, t0);                                                 \
                STOREU(t + VL, t1);                                            \
                store_row(jb, crow, t, nr);                                    \
            }                                                                  \
        }                                                                      \
    }

#define ATTR512 __attribute__((target("avx512f,avx2,fma")))
#define ATTR256 __attribute__((target("avx2,fma")))
#define TILE512(MR)                                                            \
    DEFINE_TILE(tile512_##MR, ATTR512, __m512, 16, _mm512_set1_ps,             \
                _mm512_loadu_ps, _mm512_storeu_ps, _mm512_fmadd_ps,            \
                _mm512_mul_ps, _mm512_add_ps, MR)
#define TILE256(MR)                                                            \
    DEFINE_TILE(tile256_##MR, ATTR256, __m256, 8, _mm256_set1_ps,              \
                _mm256_loadu_ps, _mm256_storeu_ps, _mm256_fmadd_ps,            \
                _mm256_mul_ps, _mm256_add_ps, MR)
TILE512(8)
TILE512(4)
TILE512(2)
TILE512(1)
TILE256(6)
TILE256(4)
TILE256(2)
TILE256(1)

/* Every tile of a panel: MR rows at a time (TMR's), the rest by 4, 2, 1:
 * 8 rows on AVX-512 (16 of its 32 registers accumulate), 6 on AVX2 (12 of
 * 16). */
#define DEFINE_PANEL(NAME, ATTR, TMR, MR, T4, T2, T1)                          \
    ATTR static void NAME(const job *jb, const float *bp, int64_t j0,          \
                          int64_t nr)                                          \
    {                                                                          \
        int64_t i0 = 0;                                                        \
        for (; i0 + MR <= jb->m; i0 += MR)                                     \
            TMR(jb, i0, bp, j0, nr);                                           \
        for (; i0 + 4 <= jb->m; i0 += 4)                                       \
            T4(jb, i0, bp, j0, nr);                                            \
        for (; i0 + 2 <= jb->m; i0 += 2)                                       \
            T2(jb, i0, bp, j0, nr);                                            \
        for (; i0 < jb->m; i0++)                                               \
            T1(jb, i0, bp, j0, nr);                                            \
    }
DEFINE_PANEL(panel512, ATTR512, tile512_8, 8, tile512_4, tile512_2, tile512_1)
DEFINE_PANEL(panel256, ATTR256, tile256_6, 6, tile256_4, tile256_2, tile256_1)
#endif

/* The baseline: the same tiles in plain C (4 rows by 8 columns), a
 * multiply and an add a step (-std=c11 keeps GCC from fusing them). */
#define BASE_MR 4
#define BASE_NR 8
static void panel_base(const job *jb, const float *bp, int64_t j0, int64_t nr)
{
    for (int64_t i0 = 0; i0 < jb->m; i0 += BASE_MR) {
        const int64_t mr = jb->m - i0 < BASE_MR ? jb->m - i0 : BASE_MR;
        float acc[BASE_MR][BASE_NR] = {{0}};
        for (int64_t p = 0; p < jb->k; p++) {
            const float *bq = bp + p * jb->bs;
            for (int64_t r = 0; r < mr; r++) {
                const float av = jb->a[(i0 + r) * jb->a_rs + p * jb->a_cs];
                for (int j = 0; j < BASE_NR; j++)
                    acc[r][j] = acc[r][j] + av * bq[j];
            }
        }
        for (int64_t r = 0; r < mr; r++) {
            float t[BASE_NR];
            for (int j = 0; j < BASE_NR; j++)
                t[j] = jb->alpha * acc[r][j];
            store_row(jb, jb->c + (i0 + r) * jb->ldc + j0, t, nr);
        }
    }
}

/* Columns of a panel on this CPU's set. */
static int64_t panel_width(int isa)
{
    return isa == SM_ISA_AVX512 ? 32 : isa == SM_ISA_AVX2 ? 16 : BASE_NR;
}

/* Every tile of the panel of columns [j0, j0 + nr) of op(B), packed in bp. */
static void run_panel(int isa, const job *jb, const float *bp, int64_t j0,
                      int64_t nr)
{
#if defined(__x86_64__)
    if (isa == SM_ISA_AVX512) {
        panel512(jb, bp, j0, nr);
        return;
    }
    if (isa == SM_ISA_AVX2) {
        panel256(jb, bp, j0, nr);
        return;
    }
#endif
    panel_base(jb, bp, j0, nr);
}

void sm_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
              float alpha, const float *a, int64_t lda, const float *b,
              int64_t ldb, int accumulate, float *c, int64_t ldc, float *ws)
{
    if (m <= 0 || n <= 0)
        return;
    const int isa = sm_isa();
    const int64_t w = panel_width(isa);
    job jb = {m, k, w, a, trans_a ? 1 : lda, trans_a ? lda : 1, alpha,
              accumulate, c, ldc};
    for (int64_t j0 = 0; j0 < n; j0 += w) {
        const int64_t nr = n - j0 < w ? n - j0 : w;
        pack_b(trans_b, b, ldb, k, j0, nr, w, ws);
        run_panel(isa, &jb, ws, j0, nr);
    }
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
    if (m <= 0 || n <= 0)
        return;
    job jb = {m, k, NR_MAX, a, trans_a ? 1 : lda, trans_a ? lda : 1, alpha,
              accumulate, c, ldc};
    const int isa = sm_isa();
    const int64_t w = panel_width(isa);
    for (int64_t j0 = 0; j0 < n; j0 += w) {
        const float *panel = bp + j0 / NR_MAX * NR_MAX * k + j0 % NR_MAX;
        run_panel(isa, &jb, panel, j0, n - j0 < w ? n - j0 : w);
    }
}
