/* sm_explain_store: a job's output folder (docs/EXPLAIN.md):
 *   OUT/maps/<image id>/<method>.npy         float32 H x W (the map)
 *   OUT/maps/<image id>/<method>.json        the method's record
 *   OUT/maps/<image id>/<method>.<name>.npy  the record's arrays
 *   OUT/maps/<image id>/<method>.row         its row of index.csv
 *   OUT/index.csv                            the rows, in dataset then
 *                                            method order
 *   OUT/summary.csv                          per method, the columns'
 *                                            means and standard
 *                                            deviations
 * Every file is written atomically (temp file, rename), the row last: an
 * (image, method) is complete when its row exists and, for a method with a
 * map, its .npy, so a run started again skips exactly what is complete. */
#ifndef SM_EXPLAIN_STORE_H
#define SM_EXPLAIN_STORE_H

#include <stddef.h>

#include "explain/task.h"
#include "util/err.h"

#define SM_EXPLAIN_INDEX_HEADER                                             \
    "id,label,predicted,target,score,method,seconds,evals,deletion_auc,"  \
    "insertion_auc,faithfulness,sparseness,complexity,sensitivity,"       \
    "precision,coverage,fidelity,rule_length,relevance,params,extras\n"

/* OUT/summary.csv: a row per method, then for each of index.csv's columns
 * deletion_auc .. relevance its mean over the maps that have a value and,
 * right after it (<column>_sd), their sample standard deviation (n - 1;
 * empty: no value, or one for the deviation). */
#define SM_EXPLAIN_SUMMARY_HEADER                                           \
    "method,maps,failed,deletion_auc,deletion_auc_sd,insertion_auc,"      \
    "insertion_auc_sd,faithfulness,faithfulness_sd,sparseness,"           \
    "sparseness_sd,complexity,complexity_sd,sensitivity,sensitivity_sd,"  \
    "precision,precision_sd,coverage,coverage_sd,fidelity,fidelity_sd,"   \
    "rule_length,rule_length_sd,relevance,relevance_sd\n"

typedef struct sm_explain_store sm_explain_store;

/* 1 when the image id stays below OUT/maps: relative, and '/'-separated
 * components that are each not empty, "." or "..". */
int sm_explain_id_safe(const char *id);

/* Opens (creating OUT/maps) the folder. NULL with a message. */
sm_explain_store *sm_explain_store_open(const char *out, sm_err *err);
void sm_explain_store_destroy(sm_explain_store **st);

const char *sm_explain_store_dir(const sm_explain_store *st);

/* 1 when (id, method) is complete. */
int sm_explain_store_done(const sm_explain_store *st, const char *id,
                          const char *method);

/* Writes the record, the map (h x w; none for a method with no_map) and
 * the row of (id, method): label, predicted and
 * target are class names (label may be NULL); params is the method's
 * parameters as JSON. 0 or -1 with a message naming the file. */
int sm_explain_store_put(sm_explain_store *st, const char *id,
                         const char *label, const char *predicted,
                         const char *target, const char *method,
                         const char *params, const sm_explain_result *r,
                         int h, int w, sm_err *err);

/* Batches: many puts, one durability barrier. Outside a batch a put
 * makes each file durable (fsync) before writing its row. After
 * sm_explain_store_begin, puts write their files without fsync and keep
 * their rows in memory (the (id, method) is not complete yet);
 * sm_explain_store_commit then makes everything written durable with one
 * syncfs and writes the rows, and ends the batch. A crash before the
 * commit leaves no row, so the maps are simply explained again. A row the
 * commit cannot write (or every row, when the barrier fails) is reported
 * to lost (may be NULL) with the reason; the commit then returns -1 with
 * the first reason in err (may be NULL), else 0. */
typedef void (*sm_explain_store_lost_fn)(void *u, const char *id,
                                         const char *method, const sm_err *why);
void sm_explain_store_begin(sm_explain_store *st);
int sm_explain_store_commit(sm_explain_store *st, sm_explain_store_lost_fn lost,
                            void *u, sm_err *err);

/* The files of a complete (id, method) but its row, relative to OUT:
 * maps/<id>/<method>.npy (when it has a map), .json (when written), then
 * its arrays by name and the PNGs drawn of them (<method>.png,
 * <method>.<name>.png), in name order. *rel (n strings) is malloc'ed:
 * free each and it.
 * 0 or -1 with a message. */
int sm_explain_store_files(const sm_explain_store *st, const char *id,
                           const char *method, char ***rel, size_t *n,
                           sm_err *err);

/* OUT/index.csv from the complete rows of ids[0..n) x methods[0..m). */
int sm_explain_store_index(sm_explain_store *st, const char *const *ids,
                           size_t n, const char *const *methods, int m,
                           sm_err *err);

#endif
