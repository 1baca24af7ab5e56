/* salmap's GEMM (ops/sgemm.c) on every instruction set this CPU has,
 * against its definition written out as plain loops: each output one
 * fused multiply-add chain over k from zero (fmaf, exact by definition),
 * or on the baseline set a multiply and an add a step, then scaled and
 * stored or added; compared bit for bit. Shapes cover every tile and
 * panel edge, both transpositions, alpha and accumulation. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/sgemm.h"
#include "util/isa.h"
#include "util/rng.h"

static float val(uint64_t i, uint64_t salt)
{
    return (float)(2.0 * sm_rng_uniform(salt, i) - 1.0);
}

/* The best set with SALMAP_ISA unset (the environment may cap it). */
static int best_isa(void)
{
    unsetenv("SALMAP_ISA");
    return sm_isa();
}

/* C (m x n) from the definition; a and b as sm_sgemm takes them. */
static void reference(int fused, int ta, int tb, int64_t m, int64_t n,
                      int64_t k, float alpha, const float *a, const float *b,
                      int accumulate, float *c)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int64_t p = 0; p < k; p++) {
                float av = ta ? a[p * m + i] : a[i * k + p];
                float bv = tb ? b[j * k + p] : b[p * n + j];
                if (fused) {
                    acc = fmaf(av, bv, acc);
                } else {
                    volatile float prod = av * bv; /* rounded apart */
                    acc = acc + prod;
                }
            }
            float t = alpha * acc;
            c[i * n + j] = accumulate ? c[i * n + j] + t : t;
        }
}

/* One case on the set now in force; returns the number of outputs that
 * differ from the reference in any bit. */
static int64_t check(int isa, int ta, int tb, int64_t m, int64_t n, int64_t k,
                     float alpha, int accumulate)
{
    float *a = malloc(sizeof(float) * (size_t)(m * k + 1));
    float *b = malloc(sizeof(float) * (size_t)(k * n + 1));
    float *c = malloc(sizeof(float) * (size_t)(m * n));
    float *r = malloc(sizeof(float) * (size_t)(m * n));
    float *ws = malloc(sizeof(float) * sm_sgemm_workspace(k));
    for (int64_t i = 0; i < m * k; i++)
        a[i] = val((uint64_t)i, 1);
    for (int64_t i = 0; i < k * n; i++)
        b[i] = val((uint64_t)i, 2);
    for (int64_t i = 0; i < m * n; i++)
        c[i] = r[i] = val((uint64_t)i, 3);
    sm_sgemm(ta, tb, m, n, k, alpha, a, ta ? m : k, b, tb ? k : n, accumulate,
             c, n, ws);
    reference(isa != SM_ISA_BASELINE, ta, tb, m, n, k, alpha, a, b, accumulate, r);
    int64_t bad = 0;
    for (int64_t i = 0; i < m * n; i++)
        bad += memcmp(&c[i], &r[i], sizeof(float)) != 0;
    free(a), free(b), free(c), free(r), free(ws);
    return bad;
}

Test(sgemm, every_instruction_set_rounds_as_its_definition)
{
    const int64_t shapes[][3] = {{1, 1, 1},   {2, 3, 5},     {3, 17, 9},
                                 {8, 32, 16}, {9, 33, 40},   {15, 16, 2},
                                 {17, 70, 300}, {33, 120, 256}, {4, 10, 0}};
    const int best = best_isa();
    int tested = 0;
    for (int isa = SM_ISA_BASELINE; isa <= best; isa++) {
        setenv("SALMAP_ISA", sm_isa_name(isa), 1);
        cr_assert_eq(sm_isa(), isa);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int t = 0; t < 8; t++) {
                int ta = t & 1, tb = (t >> 1) & 1, acc = (t >> 2) & 1;
                float alpha = acc ? -1.75f : 1.0f;
                int64_t bad = check(isa, ta, tb, shapes[s][0], shapes[s][1],
                                    shapes[s][2], alpha, acc);
                cr_assert_eq(bad, 0, "%s: %lld x %lld x %lld, transA %d transB "
                             "%d, accumulate %d: %lld outputs differ",
                             sm_isa_name(isa), (long long)shapes[s][0],
                             (long long)shapes[s][1], (long long)shapes[s][2],
                             ta, tb, acc, (long long)bad);
            }
        tested++;
    }
    cr_log_info("sets tested: %d (the CPU's best: %s)", tested, sm_isa_name(best));
}

/* The reference itself against double precision: the bits above are the
 * right product, not just the same mistake twice. */
Test(sgemm, the_definition_is_the_product)
{
    enum { M = 5, N = 7, K = 300 };
    float a[M * K], b[K * N], c[M * N];
    for (int i = 0; i < M * K; i++)
        a[i] = val((uint64_t)i, 4);
    for (int i = 0; i < K * N; i++)
        b[i] = val((uint64_t)i, 5);
    reference(1, 0, 0, M, N, K, 1.0f, a, b, 0, c);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double want = 0, mag = 0;
            for (int p = 0; p < K; p++) {
                want += (double)a[i * K + p] * b[p * N + j];
                mag += fabs((double)a[i * K + p] * b[p * N + j]);
            }
            cr_assert_leq(fabs(c[i * N + j] - want), K * 6e-8 * mag,
                          "C[%d][%d] = %.9g, double %.9g", i, j, c[i * N + j], want);
        }
}

/* A row's bits whatever rows and columns come with it: each row of a
 * 37 x 70 product computed alone (1 x 70), and each column alone (37 x 1). */
Test(sgemm, an_output_does_not_depend_on_its_neighbours)
{
    enum { M = 37, N = 70, K = 123 };
    static float a[M * K], b[K * N], c[M * N], one[N], col[M];
    static float ws[K * 32];
    cr_assert_geq(sizeof ws / sizeof ws[0], sm_sgemm_workspace(K));
    for (int i = 0; i < M * K; i++)
        a[i] = val((uint64_t)i, 6);
    for (int i = 0; i < K * N; i++)
        b[i] = val((uint64_t)i, 7);
    sm_sgemm(0, 0, M, N, K, 1.0f, a, K, b, N, 0, c, N, ws);
    for (int i = 0; i < M; i++) {
        sm_sgemm(0, 0, 1, N, K, 1.0f, a + i * K, K, b, N, 0, one, N, ws);
        cr_assert_eq(memcmp(one, c + i * N, sizeof one), 0, "row %d", i);
    }
    for (int j = 0; j < N; j++) {
        sm_sgemm(0, 0, M, 1, K, 1.0f, a, K, b + j, N, 0, col, 1, ws);
        for (int i = 0; i < M; i++)
            cr_assert_eq(memcmp(&col[i], &c[i * N + j], sizeof(float)), 0,
                         "column %d, row %d", j, i);
    }
}

/* SALMAP_ISA caps the set and cannot raise it; anything else leaves the
 * CPU's best. */
Test(sgemm, salmap_isa_caps_the_set)
{
    const int best = best_isa();
    setenv("SALMAP_ISA", "baseline", 1);
    cr_assert_eq(sm_isa(), SM_ISA_BASELINE);
    setenv("SALMAP_ISA", "avx512", 1);
    cr_assert_eq(sm_isa(), best);
    setenv("SALMAP_ISA", "sse9", 1);
    cr_assert_eq(sm_isa(), best);
}

/* B packed beforehand (sm_sgemm_pack, as Conv packs its weights at
 * planning) gives the bits of sm_sgemm on every set, packed under the
 * best set and run under each: a packing outlives a change of
 * SALMAP_ISA. */
Test(sgemm, packed_b_rounds_as_sm_sgemm_on_every_set)
{
    const int64_t shapes[][3] = {{1, 1, 1},    {4, 128, 1152}, {7, 33, 9},
                                 {64, 32, 144}, {13, 70, 40},  {3, 16, 5}};
    const int best = best_isa();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        for (int tb = 0; tb < 2; tb++) {
            float *a = malloc(sizeof(float) * (size_t)(m * k));
            float *b = malloc(sizeof(float) * (size_t)(k * n));
            float *c = malloc(sizeof(float) * (size_t)(m * n));
            float *r = malloc(sizeof(float) * (size_t)(m * n));
            float *bp = malloc(sizeof(float) * sm_sgemm_packed_size(k, n));
            for (int64_t i = 0; i < m * k; i++)
                a[i] = val((uint64_t)i, 8);
            for (int64_t i = 0; i < k * n; i++)
                b[i] = val((uint64_t)i, 9);
            setenv("SALMAP_ISA", sm_isa_name(best), 1);
            sm_sgemm_pack(tb, b, tb ? k : n, k, n, bp);
            for (int isa = SM_ISA_BASELINE; isa <= best; isa++) {
                setenv("SALMAP_ISA", sm_isa_name(isa), 1);
                /* transposed A, as Conv's pixel-major path reads columns */
                sm_sgemm_packed(1, m, n, k, 1.0f, a, m, bp, 0, c, n);
                reference(isa != SM_ISA_BASELINE, 1, tb, m, n, k, 1.0f, a, b,
                          0, r);
                int64_t bad = 0;
                for (int64_t i = 0; i < m * n; i++)
                    bad += memcmp(&c[i], &r[i], sizeof(float)) != 0;
                cr_assert_eq(bad, 0, "%s: %lld x %lld x %lld, transB %d: %lld "
                             "outputs differ", sm_isa_name(isa), (long long)m,
                             (long long)n, (long long)k, tb, (long long)bad);
            }
            free(a), free(b), free(c), free(r), free(bp);
        }
    }
    unsetenv("SALMAP_ISA");
}

/* One case of sm_sgemm_run's general form: a layout of C (row and column
 * maps over a dimension of `group` and a stride), op(A) indirect or
 * strided, B packed or not, a bias by row or by column, the Relu. */
typedef struct gcase {
    int64_t m, n, k;
    sm_sgemm_map rows, cols;
    int indirect, packed, bias_cols, accumulate;
    float alpha;
    const char *what;
} gcase;

static int64_t at(const sm_sgemm_map *mp, int64_t x)
{
    return mp->group ? x / mp->group * mp->group_stride + x % mp->group * mp->stride
                     : x * mp->stride;
}

/* Returns the number of floats of C or of the Relu's output that differ
 * from the definition, written out here: each output a chain over k of
 * A's elements where the offsets say, then alpha, C, bias, Relu; every
 * other float of both buffers untouched. */
static int64_t check_general(int isa, const gcase *g)
{
    const int64_t m = g->m, n = g->n, k = g->k;
    int64_t *rows = malloc(sizeof(int64_t) * (size_t)m);
    int64_t *cols = malloc(sizeof(int64_t) * (size_t)(k + 1));
    /* indirect: rows overlap and columns jump, as a padded image's pixels
     * and kernel taps do */
    for (int64_t i = 0; i < m; i++)
        rows[i] = i * 2 + i / 5 * 7;
    for (int64_t p = 0; p < k; p++)
        cols[p] = p * 3 + p / 3 * 11;
    const int64_t alen = g->indirect ? rows[m - 1] + cols[k > 0 ? k - 1 : 0] + 1
                                     : m * k;
    int64_t clen = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int64_t o = at(&g->rows, i) + at(&g->cols, j);
            clen = o + 1 > clen ? o + 1 : clen;
        }
    float *a = malloc(sizeof(float) * (size_t)alen);
    float *b = malloc(sizeof(float) * (size_t)(k * n + 1));
    float *bias = malloc(sizeof(float) * (size_t)(m > n ? m : n));
    float *c = malloc(sizeof(float) * (size_t)clen);
    float *relu = malloc(sizeof(float) * (size_t)clen);
    float *wc = malloc(sizeof(float) * (size_t)clen);
    float *wr = malloc(sizeof(float) * (size_t)clen);
    float *bp = malloc(sizeof(float) * sm_sgemm_packed_size(k, n));
    float *ws = malloc(sizeof(float) * sm_sgemm_workspace(k));
    for (int64_t i = 0; i < alen; i++)
        a[i] = val((uint64_t)i, 11);
    for (int64_t i = 0; i < k * n; i++)
        b[i] = val((uint64_t)i, 12);
    for (int64_t i = 0; i < (m > n ? m : n); i++)
        bias[i] = val((uint64_t)i, 13);
    for (int64_t i = 0; i < clen; i++) {
        c[i] = wc[i] = val((uint64_t)i, 14);
        relu[i] = wr[i] = val((uint64_t)i, 15);
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int64_t p = 0; p < k; p++) {
                float av = g->indirect ? a[rows[i] + cols[p]] : a[i * k + p];
                if (isa != SM_ISA_BASELINE) {
                    acc = fmaf(av, b[p * n + j], acc);
                } else {
                    volatile float prod = av * b[p * n + j];
                    acc = acc + prod;
                }
            }
            const int64_t o = at(&g->rows, i) + at(&g->cols, j);
            float v = g->alpha * acc;
            if (g->accumulate)
                v = wc[o] + v;
            v = v + bias[g->bias_cols ? j : i];
            wc[o] = v;
            wr[o] = v < 0 ? 0.0f : v;
        }
    if (g->packed)
        sm_sgemm_pack(0, b, n, k, n, bp);
    sm_sgemm_run(&(sm_sgemm_args){
        .m = m, .n = n, .k = k, .alpha = g->alpha, .a = a,
        .a_rs = k, .a_cs = 1, .a_rows = g->indirect ? rows : NULL,
        .a_cols = g->indirect ? cols : NULL, .b = g->packed ? NULL : b,
        .ldb = n, .ws = ws, .bp = bp, .c = c, .rows = g->rows,
        .cols = g->cols, .accumulate = g->accumulate, .bias = bias,
        .bias_per_col = g->bias_cols, .relu = relu});
    int64_t bad = 0;
    for (int64_t i = 0; i < clen; i++)
        bad += (memcmp(&c[i], &wc[i], sizeof(float)) != 0) +
               (memcmp(&relu[i], &wr[i], sizeof(float)) != 0);
    free(rows), free(cols), free(a), free(b), free(bias), free(c);
    free(relu), free(wc), free(wr), free(bp), free(ws);
    return bad;
}

/* Conv's layouts (NCHW from pixel-major and channel-major products over
 * several images) and the plain one, on every set: tiles of 8 rows
 * stored by columns (planes of 16 pixels), one output at a time (planes
 * of 4 and 20), whole vectors through column groups. */
Test(sgemm, the_general_form_rounds_as_its_definition)
{
    const gcase cases[] = {
        {48, 70, 37, {1, 16, 70 * 16}, {16, 0, 0}, 1, 1, 1, 0, 1.0f,
         "pixel-major, planes of 16, 3 images, 70 channels"},
        {64, 32, 5, {1, 64, 40 * 64}, {64, 0, 0}, 1, 0, 1, 1, -0.5f,
         "pixel-major, plane of 64, accumulate"},
        {20, 40, 300, {1, 4, 40 * 4}, {4, 0, 0}, 1, 1, 1, 0, 1.0f,
         "pixel-major, planes of 4, 5 images"},
        {21, 33, 19, {1, 7, 33 * 7}, {7, 0, 0}, 1, 1, 1, 0, 1.0f,
         "pixel-major, planes of 7, 3 images"},
        {19, 48, 9, {16, 0, 0}, {1, 16, 19 * 16}, 0, 0, 0, 0, 1.0f,
         "channel-major, planes of 16, 3 images"},
        {8, 60, 16, {20, 0, 0}, {1, 20, 8 * 20}, 0, 1, 0, 0, 1.0f,
         "channel-major, planes of 20, 3 images"},
        {33, 50, 129, {53, 0, 0}, {1, 0, 0}, 0, 0, 0, 1, -1.75f,
         "plain, accumulate, alpha"},
        {17, 64, 8, {64, 0, 0}, {1, 0, 0}, 1, 1, 1, 1, 2.0f,
         "plain, indirect, accumulate, bias by column"},
    };
    const int best = best_isa();
    for (int isa = SM_ISA_BASELINE; isa <= best; isa++) {
        setenv("SALMAP_ISA", sm_isa_name(isa), 1);
        for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
            int64_t bad = check_general(isa, &cases[s]);
            cr_assert_eq(bad, 0, "%s: %s: %lld floats differ", sm_isa_name(isa),
                         cases[s].what, (long long)bad);
        }
    }
    unsetenv("SALMAP_ISA");
}
