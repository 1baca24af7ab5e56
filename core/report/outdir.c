/* An output folder read back (outdir.h). */
#include "report/outdir.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "explain/store.h"
#include "util/text.h"

#define INDEX_MAX ((size_t)4 << 30)

/* Image ids hashed (FNV-1a) into an open-addressed table of image
 * indices + 1 (0: empty), at most half full. */
typedef struct id_table {
    size_t *slot, mask;
} id_table;

static size_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

/* The image with that id, or where it would go (*at). */
static size_t id_lookup(const id_table *t, const sm_outdir_image *im,
                        const char *id, size_t *at)
{
    size_t k = hash_id(id) & t->mask;
    while (t->slot[k] && strcmp(im[t->slot[k] - 1].id, id))
        k = (k + 1) & t->mask;
    if (at)
        *at = k;
    return t->slot[k] ? t->slot[k] - 1 : SM_OUTDIR_NONE;
}

static int add_method(sm_outdir *od, const char *name, int signed_map)
{
    sm_outdir_method *g =
        realloc(od->methods, (size_t)(od->n_methods + 1) * sizeof *g);
    if (!g)
        return -1;
    od->methods = g;
    g[od->n_methods++] = (sm_outdir_method){name, signed_map};
    return 0;
}

/* Images and methods from index.csv's rows; -1 with a message. */
static int scan(sm_outdir *od, const char *ipath, id_table *ids,
                sm_err *err)
{
    const sm_csvtab *t = od->index;
    size_t n = sm_csvtab_rows(t), cap = 2;
    while (cap < 2 * n)
        cap *= 2;
    od->images = calloc(n, sizeof *od->images);
    ids->slot = calloc(cap, sizeof *ids->slot);
    ids->mask = cap - 1;
    size_t *img_of = calloc(n, sizeof *img_of);
    int *meth_of = calloc(n, sizeof *meth_of);
    int rc = 0;
    if (!od->images || !ids->slot || !img_of || !meth_of)
        rc = sm_err_set(err, "%s: out of memory", ipath);
    for (size_t r = 0; r < n && rc == 0; r++) {
        const char *id = sm_csvtab_get(t, r, od->c_id);
        if (!sm_explain_id_safe(id)) {
            rc = sm_err_set(err, "%s: row %zu: id '%.200s' is not a safe "
                                 "relative path", ipath, r + 2, id);
            break;
        }
        size_t at, i = id_lookup(ids, od->images, id, &at);
        if (i == SM_OUTDIR_NONE) {
            i = od->n_images++;
            od->images[i] = (sm_outdir_image){
                id, sm_csvtab_get(t, r, od->c_label),
                sm_csvtab_get(t, r, od->c_predicted),
                sm_csvtab_get(t, r, od->c_target)};
            ids->slot[at] = i + 1;
        }
        img_of[r] = i;
        const char *m = sm_csvtab_get(t, r, od->c_method);
        if (!sm_name_valid(m, 64)) {
            rc = sm_err_set(err, "%s: row %zu: method '%.200s' is not a "
                                 "method name", ipath, r + 2, m);
            break;
        }
        int k = sm_outdir_method_find(od, m);
        if (k < 0 && add_method(od, m, -1))
            rc = sm_err_set(err, "%s: out of memory", ipath);
        meth_of[r] = k < 0 ? od->n_methods - 1 : k;
    }
    if (rc == 0) {
        size_t cells = od->n_images * (size_t)od->n_methods;
        od->rows = malloc((cells ? cells : 1) * sizeof *od->rows);
        if (!od->rows)
            rc = sm_err_set(err, "%s: out of memory", ipath);
        for (size_t c = 0; rc == 0 && c < cells; c++)
            od->rows[c] = SM_OUTDIR_NONE;
        for (size_t r = 0; rc == 0 && r < n; r++)
            od->rows[img_of[r] * (size_t)od->n_methods + (size_t)meth_of[r]] = r;
    }
    free(img_of);
    free(meth_of);
    return rc;
}

/* The id table lives beside od (see open). */
typedef struct outdir_full {
    sm_outdir od;
    id_table ids;
} outdir_full;

sm_outdir *sm_outdir_open(const char *out, sm_err *err)
{
    struct stat st;
    char ipath[SM_OUTDIR_PATH], jpath[SM_OUTDIR_PATH];
    if (stat(out, &st)) {
        sm_err_set(err, "%s: %s", out,
                   errno == ENOENT ? "no such folder" : strerror(errno));
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        sm_err_set(err, "%s: not a folder", out);
        return NULL;
    }
    if (snprintf(ipath, sizeof ipath, "%s/index.csv", out) >= (int)sizeof ipath ||
        snprintf(jpath, sizeof jpath, "%s/job.json", out) >= (int)sizeof jpath) {
        sm_err_set(err, "%s: path too long", out);
        return NULL;
    }
    if (!sm_outdir_exists(ipath)) {
        sm_err_set(err, "%s: no index.csv: not a salmap output folder, or "
                        "its job has written no maps yet", out);
        return NULL;
    }
    outdir_full *f = calloc(1, sizeof *f);
    if (!f) {
        sm_err_set(err, "%s: out of memory", out);
        return NULL;
    }
    sm_outdir *od = &f->od;
    od->out = out;
    int rc = 0;
    if (sm_outdir_exists(jpath)) {
        if (!(od->jobfile = sm_jobinfo_load(out, err)))
            rc = -1;
        else
            od->job = sm_jobinfo_of(od->jobfile);
    }
    if (rc == 0 && !(od->index = sm_csvtab_load(ipath, INDEX_MAX, err)))
        rc = -1;
    if (rc == 0) {
        od->c_id = sm_csvtab_col(od->index, "id");
        od->c_method = sm_csvtab_col(od->index, "method");
        od->c_label = sm_csvtab_col(od->index, "label");
        od->c_predicted = sm_csvtab_col(od->index, "predicted");
        od->c_target = sm_csvtab_col(od->index, "target");
        if (od->c_id < 0 || od->c_method < 0)
            rc = sm_err_set(err, "%s: no '%s' column in its header", ipath,
                            od->c_id < 0 ? "id" : "method");
        else if (sm_csvtab_rows(od->index) == 0)
            rc = sm_err_set(err, "%s: no rows: the job wrote no maps", ipath);
    }
    for (int m = 0; rc == 0 && od->job && m < od->job->n_methods; m++)
        if (add_method(od, od->job->methods[m].name,
                       od->job->methods[m].signed_map))
            rc = sm_err_set(err, "%s: out of memory", out);
    if (rc == 0)
        rc = scan(od, ipath, &f->ids, err);
    if (rc) {
        sm_outdir_destroy(&od);
        return NULL;
    }
    return od;
}

void sm_outdir_destroy(sm_outdir **odp)
{
    sm_outdir *od = *odp;
    if (!od)
        return;
    outdir_full *f = (outdir_full *)od;
    sm_jobinfo_file_destroy(&od->jobfile);
    sm_csvtab_destroy(&od->index);
    free(od->images);
    free(od->methods);
    free(od->rows);
    free(f->ids.slot);
    free(f);
    *odp = NULL;
}

size_t sm_outdir_image_find(const sm_outdir *od, const char *id)
{
    const outdir_full *f = (const outdir_full *)od;
    return f->ids.slot ? id_lookup(&f->ids, od->images, id, NULL)
                       : SM_OUTDIR_NONE;
}

int sm_outdir_method_find(const sm_outdir *od, const char *name)
{
    for (int m = 0; m < od->n_methods; m++)
        if (!strcmp(od->methods[m].name, name))
            return m;
    return -1;
}

size_t sm_outdir_row(const sm_outdir *od, size_t i, int m)
{
    if (i >= od->n_images || m < 0 || m >= od->n_methods)
        return SM_OUTDIR_NONE;
    return od->rows[i * (size_t)od->n_methods + (size_t)m];
}

int sm_outdir_path(const sm_outdir *od, char *buf, const char *id,
                   const char *file)
{
    return snprintf(buf, SM_OUTDIR_PATH, "%s/maps/%s/%s", od->out, id,
                    file) < SM_OUTDIR_PATH
               ? 0
               : -1;
}

int sm_outdir_exists(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 && S_ISREG(s.st_mode);
}

int sm_outdir_numeric(const sm_outdir *od, int c)
{
    static const char *const names[] = {"id",     "label",  "predicted",
                                        "target", "method", "params",
                                        "extras"};
    const char *name = sm_csvtab_name(od->index, c);
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        if (!strcmp(name, names[k]))
            return 0;
    int any = 0;
    for (size_t r = 0; r < sm_csvtab_rows(od->index); r++) {
        double v;
        if (!*sm_csvtab_get(od->index, r, c))
            continue;
        if (!sm_csvtab_num(od->index, r, c, &v))
            return 0;
        any = 1;
    }
    return any;
}
