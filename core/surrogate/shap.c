/* KernelSHAP: the coalition plan and the constrained weighted least squares
 * of shap's KernelExplainer (explain() and solve()), with one change for
 * determinism: shap merges a re-drawn coalition into its earlier row, which
 * depends on the order of draws; here every row is a pure function of its
 * index, so a repeated coalition is a repeated row of equal weight (the same
 * least-squares problem as shap's merged row of double weight). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "surrogate/internal.h"
#include "surrogate/surrogate.h"
#include "util/rng.h"

struct sm_shap_plan {
    int M;
    long rows;       /* budget, capped at 2^M − 2 */
    long nfixed;     /* enumerated rows, first in the plan */
    int nsizes;      /* ceil((M−1)/2): sizes 1..nsizes (and their complements) */
    int npaired;     /* floor((M−1)/2): sizes whose complement differs */
    int nfull;       /* sizes enumerated */
    uint64_t key;
    double *wv;      /* shap's weight_vector: mass of each size, sums to 1 */
    long *start;     /* first row of enumerated size t+1, nfull + 1 entries */
    double w_sampled;/* the weight of each sampled row */
    double wv_left;  /* Σ wv over the sampled sizes, for drawing a size */
};

/* C(n, k) in double: exact below 2^53, only compared otherwise. */
static double binom_d(int n, int k)
{
    double c = 1;
    for (int i = 1; i <= k; i++)
        c = c * (n - k + i) / i;
    return c;
}

/* C(n, k) exactly; only called when C(n, k) ≤ rows of the plan. */
static uint64_t binom_u(int n, int k)
{
    uint64_t c = 1;
    for (int i = 1; i <= k; i++)
        c = c * (uint64_t)(n - k + i) / (uint64_t)i;
    return c;
}

double sm_shap_kernel(int M, int s)
{
    if (s <= 0 || s >= M)
        return INFINITY;
    return (M - 1.0) / (binom_d(M, s) * s * (M - s));
}

sm_shap_plan *sm_shap_plan_new(int M, long budget, uint64_t key, sm_err *err)
{
    if (M < 1) {
        sm_err_set(err, "kernelshap plan: need at least 1 feature, got %d", M);
        return NULL;
    }
    sm_shap_plan *p = calloc(1, sizeof *p);
    int nsizes = M / 2; /* == ceil((M − 1) / 2) */
    if (p) {
        p->wv = calloc((size_t)nsizes + 1, sizeof *p->wv);
        p->start = calloc((size_t)nsizes + 2, sizeof *p->start);
    }
    if (!p || !p->wv || !p->start) {
        sm_shap_plan_destroy(&p);
        sm_err_set(err, "kernelshap plan: out of memory (M = %d)", M);
        return NULL;
    }
    p->M = M, p->key = key, p->nsizes = nsizes, p->npaired = (M - 1) / 2;
    p->rows = budget > 0 ? budget : 2L * M + 2048;
    if (M <= 30 && p->rows > (1L << M) - 2)
        p->rows = (1L << M) - 2;

    double sum = 0;
    for (int t = 0; t < nsizes; t++) {
        int s = t + 1;
        p->wv[t] = (M - 1.0) / ((double)s * (M - s)) * (s <= p->npaired ? 2 : 1);
        sum += p->wv[t];
    }
    for (int t = 0; t < nsizes; t++)
        p->wv[t] /= sum;

    /* Enumerate size s while the samples left, shared out by the remaining
     * weights, give every coalition of that size at least one row. */
    double *rem = malloc(sizeof *rem * ((size_t)nsizes + 1));
    if (!rem) {
        sm_shap_plan_destroy(&p);
        sm_err_set(err, "kernelshap plan: out of memory (M = %d)", M);
        return NULL;
    }
    memcpy(rem, p->wv, sizeof *rem * (size_t)nsizes);
    double left = (double)p->rows;
    for (int t = 0; t < nsizes; t++) {
        int s = t + 1;
        double nsub = binom_d(M, s) * (s <= p->npaired ? 2 : 1);
        if (left * rem[t] / nsub < 1.0 - 1e-8)
            break;
        p->nfull++;
        left -= nsub;
        p->start[t + 1] = p->start[t] + (long)nsub;
        double scale = 1 - rem[t]; /* rescale what is left to sum to 1 */
        if (scale > 0)
            for (int u = 0; u < nsizes; u++)
                rem[u] /= scale;
    }
    free(rem);
    p->nfixed = p->start[p->nfull];
    for (int t = p->nfull; t < nsizes; t++)
        p->wv_left += p->wv[t];
    if (p->rows > p->nfixed)
        p->w_sampled = p->wv_left / (double)(p->rows - p->nfixed);
    return p;
}

void sm_shap_plan_destroy(sm_shap_plan **p)
{
    if (!p || !*p)
        return;
    free((*p)->wv);
    free((*p)->start);
    free(*p);
    *p = NULL;
}

long sm_shap_plan_rows(const sm_shap_plan *p) { return p->rows; }
long sm_shap_plan_enumerated(const sm_shap_plan *p) { return p->nfixed; }

/* The c-th coalition of size s in lexicographic order (itertools'). */
static void unrank(int M, int s, uint64_t c, uint8_t *z)
{
    int r = s;
    for (int i = 0; i < M; i++) {
        z[i] = 0;
        if (r == 0)
            continue;
        uint64_t with_i = binom_u(M - i - 1, r - 1);
        if (c < with_i)
            z[i] = 1, r--;
        else
            c -= with_i;
    }
}

/* Sampled pair j: its size, drawn by the size masses left, then a uniform
 * coalition of that size by a partial Fisher-Yates shuffle. */
static void draw(const sm_shap_plan *p, uint64_t j, int *perm, uint8_t *z)
{
    uint64_t sub = sm_rng_u64(p->key, j);
    double u = sm_rng_uniform(sub, 0) * p->wv_left, acc = 0;
    int t = p->nfull;
    for (; t < p->nsizes - 1; t++)
        if (u < (acc += p->wv[t]))
            break;
    int s = t + 1, M = p->M;
    for (int i = 0; i < M; i++)
        perm[i] = i, z[i] = 0;
    for (int i = 0; i < s; i++) {
        int k = i + (int)(sm_rng_u64(sub, 1 + (uint64_t)i) % (uint64_t)(M - i));
        int tmp = perm[i];
        perm[i] = perm[k], perm[k] = tmp;
        z[perm[i]] = 1;
    }
}

int sm_shap_plan_fill(const sm_shap_plan *p, long k0, long count, uint8_t *z,
                      double *w, sm_err *err)
{
    if (k0 < 0 || count < 0 || k0 + count > p->rows)
        return sm_err_set(err, "kernelshap plan: rows %ld..%ld out of 0..%ld",
                          k0, k0 + count - 1, p->rows - 1);
    int M = p->M;
    int *perm = malloc(sizeof *perm * (size_t)M);
    if (!perm)
        return sm_err_set(err, "kernelshap plan: out of memory (M = %d)", M);
    for (long r = 0; r < count; r++) {
        long k = k0 + r;
        uint8_t *row = z + (size_t)r * M;
        int flip;
        double wk;
        if (k < p->nfixed) {
            int t = 0;
            while (k >= p->start[t + 1])
                t++;
            int s = t + 1, paired = s <= p->npaired;
            long idx = k - p->start[t];
            /* Each coalition is followed by its complement, as shap. */
            unrank(M, s, (uint64_t)(paired ? idx / 2 : idx), row);
            flip = paired && idx % 2;
            wk = p->wv[t] / binom_d(M, s) / (paired ? 2 : 1);
        } else {
            draw(p, (uint64_t)(k - p->nfixed) / 2, perm, row);
            flip = (k - p->nfixed) % 2;
            wk = p->w_sampled;
        }
        if (flip)
            for (int i = 0; i < M; i++)
                row[i] ^= 1;
        if (w)
            w[r] = wk;
    }
    free(perm);
    return 0;
}

int sm_shap_solve(const uint8_t *Z, int n, int M, const double *y,
                  const double *w, double fx, double f0, double *phi,
                  sm_err *err)
{
    if (!isfinite(fx) || !isfinite(f0))
        return sm_err_set(err, "kernelshap: f(x) = %g, f(empty) = %g (must be"
                          " finite)", fx, f0);
    double delta = fx - f0;
    if (M == 1) { /* nothing to share out */
        phi[0] = delta;
        return 0;
    }
    if (sm_sur_check("kernelshap", n, M, y, w, err) < 0 ||
        sm_sur_check_mask("kernelshap", Z, n, M, err) < 0)
        return -1;
    /* φ_last = Δ − Σ_{j<last} φ_j turns the constrained problem into an
     * unconstrained one in (z_j − z_last) with target y − f0 − z_last Δ. */
    int q = M - 1;
    double *A = calloc((size_t)q * q, sizeof *A);
    double *e = malloc(sizeof *e * (size_t)q);
    if (!A || !e) {
        free(A), free(e);
        return sm_err_set(err, "kernelshap: out of memory (M = %d)", M);
    }
    for (int j = 0; j < q; j++)
        phi[j] = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *z = Z + (size_t)i * M;
        if (w[i] == 0)
            continue;
        double t = w[i] * (y[i] - f0 - z[q] * delta);
        for (int a = 0; a < q; a++)
            e[a] = (double)z[a] - z[q];
        for (int a = 0; a < q; a++) {
            if (e[a] == 0)
                continue;
            double wa = w[i] * e[a];
            for (int b = a; b < q; b++)
                A[a * q + b] += wa * e[b];
            phi[a] += e[a] * t;
        }
    }
    for (int a = 0; a < q; a++)
        for (int b = 0; b < a; b++)
            A[a * q + b] = A[b * q + a];
    int rc = sm_sur_solve_psd(A, phi, q, err);
    free(A), free(e);
    if (rc < 0)
        return sm_err_prefix(err, "kernelshap");
    double sum = 0;
    for (int j = 0; j < q; j++)
        sum += phi[j];
    phi[q] = delta - sum;
    return 0;
}
