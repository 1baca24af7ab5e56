/* DELETE (schemas/PROTOCOL.md 4.4.1): an ended job forgotten, and the files
 * it wrote removed by name (never a folder's whole contents: what else a
 * user keeps in the output folder stays, and so do the folders holding it). */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/internal.h"
#include "broker/log.h"
#include "broker/path.h"

static void remove_file(const char *out, const char *rel)
{
    char path[BPATH_MAX];
    sm_err err;
    if (bpath(path, &err, rel, "%s/%s", out, rel) == 0)
        unlink(path);
}

/* Removes the folder out/rel and then its parents within out, each only
 * when empty: the first that is not stops it (one missing does not). */
static void remove_dirs(const char *out, const char *rel)
{
    char path[BPATH_MAX];
    sm_err err;
    if (bpath(path, &err, rel, "%s/%s", out, rel))
        return;
    size_t base = strlen(out) + 1;
    while (strlen(path) > base && (rmdir(path) == 0 || errno == ENOENT)) {
        char *slash = strrchr(path + base, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
}

static void remove_image(const bjob *j, const char *id)
{
    const char *out = j->spec.out;
    char rel[BPATH_MAX];
    sm_err err;
    for (size_t m = 0; j->store && m < j->spec.n_methods; m++) {
        char **files;
        size_t n;
        if (sm_explain_store_files(j->store, id, j->spec.methods[m], &files, &n, &err) == 0) {
            for (size_t k = 0; k < n; k++) {
                remove_file(out, files[k]);
                free(files[k]);
            }
            free(files);
        }
        if (bpath(rel, &err, id, "maps/%s/%s.row", id, j->spec.methods[m]) == 0)
            remove_file(out, rel);
    }
    if (bpath(rel, &err, id, "maps/%s/input.png", id) == 0)
        remove_file(out, rel);
    if (bpath(rel, &err, id, "maps/%s", id) == 0)
        remove_dirs(out, rel);
    if (bpath(rel, &err, id, "report/images/%s.html", id) == 0) {
        remove_file(out, rel);
        *strrchr(rel, '/') = '\0';
        remove_dirs(out, rel);
    }
}

static void remove_outputs(const bjob *j)
{
    static const char *const own[] = {
        "index.csv", "summary.csv", "job.json", "scales.csv", "render.json",
        "figure.png", "figure.svg", "report/index.html",
    };
    for (size_t i = 0; j->ds && i < j->count; i++)
        remove_image(j, sm_dataset_id(j->ds, i));
    for (size_t k = 0; k < sizeof own / sizeof *own; k++)
        remove_file(j->spec.out, own[k]);
    remove_dirs(j->spec.out, "maps");
    remove_dirs(j->spec.out, "report/images");
    rmdir(j->spec.out);
}

int bjob_delete(sm_broker *b, bjob *j, sm_err *err)
{
    if (!bjob_ended(j) || j->finish)
        return sm_err_set(err, "job %s is %s: cancel it, or wait for its end",
                          j->id, j->finish ? "writing its pages" : bjob_state_name(j->state));
    if (sm_journal_delete(b->journal, j->id, err))
        return -1;
    /* tasks still out (a cancelled job's): their results, if they come,
     * are late results of tasks the broker no longer knows */
    for (btask *t = b->leased.head, *nx; t; t = nx) {
        nx = t->next;
        if (t->job != j)
            continue;
        btask_unlink(&b->leased, t);
        if (t->lease && t->lease->inflight)
            t->lease->inflight--;
        btask_free(t);
    }
    bclients_unwatch(b, j);
    if (b->rr == j)
        b->rr = j->next;
    for (bjob **p = &b->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    if (j->spec.out)
        remove_outputs(j);
    sm_broker_info(b, "job %s deleted", j->id);
    bjob_free(&j);
    malloc_trim(0); /* its dataset's and store's memory back to the system */
    return 0;
}
