/* The genetic search of LORE and ABELE (genetic.h). */
#include "explain/genetic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/rng.h"

int sm_genetic_init(sm_genetic_pop *q, int P, int d, size_t gene,
                    double halloffame, uint64_t key, const void *x)
{
    memset(q, 0, sizeof *q);
    q->key = key;
    q->P = P, q->d = d, q->gene = gene;
    q->hof_max = (int)lround(P * halloffame);
    size_t row = (size_t)d * gene, n = (size_t)(P ? P : 1);
    size_t h = (size_t)(q->hof_max + 1);
    q->ind = malloc(n * row);
    q->next = malloc(n * row);
    q->fit = malloc(sizeof(double) * n);
    q->next_fit = malloc(sizeof(double) * n);
    q->lab = malloc(sizeof(int32_t) * n);
    q->next_lab = malloc(sizeof(int32_t) * n);
    q->hof = malloc(h * row);
    q->hof_fit = malloc(sizeof(double) * h);
    q->hof_lab = malloc(sizeof(int32_t) * h);
    if (!q->ind || !q->next || !q->fit || !q->next_fit || !q->lab ||
        !q->next_lab || !q->hof || !q->hof_fit || !q->hof_lab) {
        sm_genetic_free(q);
        return -1;
    }
    for (int i = 0; i < P; i++) {
        memcpy(q->ind + (size_t)i * row, x, row);
        q->fit[i] = NAN;
    }
    return 0;
}

void sm_genetic_free(sm_genetic_pop *q)
{
    free(q->ind);
    free(q->next);
    free(q->fit);
    free(q->next_fit);
    free(q->lab);
    free(q->next_lab);
    free(q->hof);
    free(q->hof_fit);
    free(q->hof_lab);
    memset(q, 0, sizeof *q);
}

double sm_genetic_draw(sm_genetic_pop *q)
{
    return sm_rng_uniform(q->key, q->draw++);
}

int sm_genetic_draw_int(sm_genetic_pop *q, int lo, int hi)
{
    return lo + (int)(sm_genetic_draw(q) * (hi - lo + 1));
}

void sm_genetic_hof_update(sm_genetic_pop *q)
{
    size_t row = (size_t)q->d * q->gene;
    for (int i = 0; i < q->P; i++) {
        const uint8_t *z = q->ind + (size_t)i * row;
        double f = q->fit[i];
        int32_t l = q->lab[i];
        if (q->hof_max == 0 ||
            (q->n_hof == q->hof_max && !(f > q->hof_fit[q->n_hof - 1])))
            continue;
        int dup = 0;
        for (int h = 0; h < q->n_hof && !dup; h++)
            dup = memcmp(q->hof + (size_t)h * row, z, row) == 0;
        if (dup)
            continue;
        if (q->n_hof == q->hof_max)
            q->n_hof--;
        int at = q->n_hof;
        while (at > 0 && q->hof_fit[at - 1] <= f) /* before equals, as DEAP */
            at--;
        memmove(q->hof + (size_t)(at + 1) * row, q->hof + (size_t)at * row,
                (size_t)(q->n_hof - at) * row);
        memmove(q->hof_fit + at + 1, q->hof_fit + at,
                sizeof(double) * (size_t)(q->n_hof - at));
        memmove(q->hof_lab + at + 1, q->hof_lab + at,
                sizeof(int32_t) * (size_t)(q->n_hof - at));
        memcpy(q->hof + (size_t)at * row, z, row);
        q->hof_fit[at] = f;
        q->hof_lab[at] = l;
        q->n_hof++;
    }
}

void sm_genetic_breed(sm_genetic_pop *q, const sm_genetic_params *p,
                      sm_genetic_mutate_fn mutate, void *ctx)
{
    int tournament = p->tournament;
    double crossover = p->crossover, mutation = p->mutation;
    int d = q->d, P = q->P;
    size_t g = q->gene, row = (size_t)d * g;
    for (int i = 0; i < P; i++) {
        int best = sm_genetic_draw_int(q, 0, P - 1);
        for (int k = 1; k < tournament; k++) {
            int c = sm_genetic_draw_int(q, 0, P - 1);
            if (q->fit[c] > q->fit[best])
                best = c;
        }
        memcpy(q->next + (size_t)i * row, q->ind + (size_t)best * row, row);
        q->next_fit[i] = q->fit[best];
        q->next_lab[i] = q->lab[best];
    }
    for (int i = 1; i < P && d >= 2; i += 2)
        if (sm_genetic_draw(q) < crossover) {
            int c1 = sm_genetic_draw_int(q, 1, d);
            int c2 = sm_genetic_draw_int(q, 1, d - 1);
            if (c2 >= c1)
                c2++;
            else {
                int t = c1;
                c1 = c2, c2 = t;
            }
            if (c2 > d)
                c2 = d;
            uint8_t *u = q->next + (size_t)(i - 1) * row;
            uint8_t *v = q->next + (size_t)i * row;
            for (size_t b = (size_t)c1 * g; b < (size_t)c2 * g; b++) {
                uint8_t t = u[b];
                u[b] = v[b], v[b] = t;
            }
            q->next_fit[i - 1] = q->next_fit[i] = NAN;
        }
    for (int i = 0; i < P; i++)
        if (sm_genetic_draw(q) < mutation) {
            uint8_t *u = q->next + (size_t)i * row;
            for (int j = 0; j < d; j++)
                if (sm_genetic_draw(q) < mutation)
                    mutate(ctx, q, u, j);
            q->next_fit[i] = NAN;
        }
    uint8_t *t = q->ind;
    q->ind = q->next, q->next = t;
    double *f = q->fit;
    q->fit = q->next_fit, q->next_fit = f;
    int32_t *l = q->lab;
    q->lab = q->next_lab, q->next_lab = l;
}

double sm_genetic_keep_above(const sm_genetic_pop *q, double *sorted)
{
    int P = q->P;
    memcpy(sorted, q->fit, sizeof(double) * (size_t)P);
    for (int i = 1; i < P; i++) { /* insertion sort: P is small */
        double v = sorted[i];
        int j = i;
        while (j > 0 && sorted[j - 1] > v)
            sorted[j] = sorted[j - 1], j--;
        sorted[j] = v;
    }
    if (P < 2)
        return -INFINITY;
    int at = 0;
    double gap = -1;
    for (int i = 0; i + 1 < P; i++)
        if (sorted[i + 1] - sorted[i] >= gap)
            gap = sorted[i + 1] - sorted[i], at = i;
    return sorted[at];
}
