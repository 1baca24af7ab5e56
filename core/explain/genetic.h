/* sm_genetic: the genetic search LORE and ABELE share, as DEAP's eaSimple
 * that their reference code runs: a population of rows of d genes,
 * tournament selection, two-point crossover of pairs, mutation gene by
 * gene, and a hall of fame of the best distinct rows. A row's label and
 * fitness are the method's (NAN: not yet evaluated); every draw is a
 * counter of the population's key, so a search is a pure function of
 * (key, labels). */
#ifndef SM_EXPLAIN_GENETIC_H
#define SM_EXPLAIN_GENETIC_H

#include <stddef.h>
#include <stdint.h>

typedef struct sm_genetic_pop {
    uint64_t key;   /* its draws */
    uint64_t draw;  /* the next counter */
    int P, d;       /* rows, genes a row */
    size_t gene;    /* bytes a gene */
    uint8_t *ind, *next;        /* P rows of d * gene bytes */
    int32_t *lab, *next_lab;    /* P labels */
    double *fit, *next_fit;     /* P fitness values, NAN: to evaluate */
    int hof_max, n_hof;         /* hall of fame, fitness descending */
    uint8_t *hof;
    int32_t *hof_lab;
    double *hof_fit;
} sm_genetic_pop;

/* q with P copies of row x (d genes of gene bytes), none evaluated, and a
 * hall of fame of round(P * halloffame). 0, or -1 out of memory (q is
 * then freed). */
int sm_genetic_init(sm_genetic_pop *q, int P, int d, size_t gene,
                    double halloffame, uint64_t key, const void *x);
void sm_genetic_free(sm_genetic_pop *q);

/* The next draw, uniform in [0, 1); an integer in [lo, hi]. */
double sm_genetic_draw(sm_genetic_pop *q);
int sm_genetic_draw_int(sm_genetic_pop *q, int lo, int hi);

/* DEAP's HallOfFame.update over the evaluated population: a row enters
 * when the hall has room or it beats the worst, unless it is there. */
void sm_genetic_hof_update(sm_genetic_pop *q);

/* Changes gene j of row (drawing from q). */
typedef void (*sm_genetic_mutate_fn)(void *ctx, sm_genetic_pop *q,
                                     uint8_t *row, int j);

/* The next generation into q's rows (eaSimple's varAnd): tournament
 * selection, crossover of pairs with probability crossover, and each row
 * mutated with probability mutation, then each of its genes with the same
 * probability. Changed rows lose their fitness (NAN). */
void sm_genetic_breed(sm_genetic_pop *q, int tournament, double crossover,
                      double mutation, sm_genetic_mutate_fn mutate,
                      void *ctx);

/* The fitness above which q's rows and hall of fame are kept: the lower
 * end of the largest gap of its sorted fitness (the last of equals), as
 * LORE's get_oversample; -INFINITY for fewer than 2 rows. sorted: room
 * for P doubles. */
double sm_genetic_keep_above(const sm_genetic_pop *q, double *sorted);

#endif
