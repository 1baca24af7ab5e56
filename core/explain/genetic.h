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

#include "explain/explainer.h"

/* A method's genetic settings, LORE's defaults: its params struct holds
 * them as member `ga` (SM_GENETIC_PARAM_DEFS names them). */
typedef struct sm_genetic_params {
    int generations, tournament;
    double crossover, mutation, halloffame, alpha1, alpha2;
} sm_genetic_params;

#define SM_GENETIC_PARAM_DEFS(T)                                            \
    {"generations", SM_PARAM_INT, offsetof(T, ga.generations), "10", 0,    \
     100000, NULL, "generations of each run (each one model call)"},       \
    {"crossover", SM_PARAM_FLOAT, offsetof(T, ga.crossover), "0.5", 0, 1,  \
     NULL, "probability that a pair is crossed (two-point)"},              \
    {"mutation", SM_PARAM_FLOAT, offsetof(T, ga.mutation), "0.2", 0, 1,    \
     NULL, "probability that an individual mutates, and then each gene"},  \
    {"tournament", SM_PARAM_INT, offsetof(T, ga.tournament), "3", 1, 1000, \
     NULL, "individuals per selection tournament"},                        \
    {"halloffame", SM_PARAM_FLOAT, offsetof(T, ga.halloffame), "0.1", 0,   \
     1, NULL, "hall of fame, a share of each run"},                        \
    {"alpha1", SM_PARAM_FLOAT, offsetof(T, ga.alpha1), "0.5", 0, 1e9,      \
     NULL, "fitness weight of the similarity to x"},                       \
    {"alpha2", SM_PARAM_FLOAT, offsetof(T, ga.alpha2), "0.5", 0, 1e9,      \
     NULL, "fitness weight of the label (same, or different)"}

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
 * selection, crossover of pairs with probability p->crossover, and each
 * row mutated with probability p->mutation, then each of its genes with
 * the same probability. Changed rows lose their fitness (NAN). */
void sm_genetic_breed(sm_genetic_pop *q, const sm_genetic_params *p,
                      sm_genetic_mutate_fn mutate, void *ctx);

/* The fitness above which q's rows and hall of fame are kept: the lower
 * end of the largest gap of its sorted fitness (the last of equals), as
 * LORE's get_oversample; -INFINITY for fewer than 2 rows. sorted: room
 * for P doubles. */
double sm_genetic_keep_above(const sm_genetic_pop *q, double *sorted);

#endif
