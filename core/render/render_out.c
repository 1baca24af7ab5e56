/* An output folder's PNGs (render_out.h). */
#include "render/render_out.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "io/npy.h"
#include "render/colormap.h"
#include "render/image.h"
#include "io/jobinfo.h"
#include "util/clock.h"
#include "util/file.h"
#include "util/pool.h"
#include "util/text.h"

#define PATH 4096
#define NOT_IN_DATASET SIZE_MAX

/* What the pass knows of an (image, method). */
enum { PAIR_NONE, PAIR_MAP, PAIR_BAD, PAIR_FAILED };

/* A PNG and what it is drawn from. */
typedef enum target_kind {
    T_MAP, T_OVERLAY, T_KEPT, T_EXEMPLARS, T_COUNTER
} target_kind;

typedef struct ctx {
    const char *out;
    const sm_jobinfo *ji;
    sm_render_scale_mode mode;
    int zoom, tiles, c, h, w, n_methods;
    sm_dataset *ds;        /* NULL: maps alone */
    char **ids;            /* sorted */
    size_t n_ids;
    size_t *ds_index;      /* per id: its index in ds, or NOT_IN_DATASET */
    sm_cmap_kind *kind;    /* per method */
    sm_cmap_scale *scale;  /* per method: the job's scale (job mode) */
    int *has_scale;        /* per method */
    uint8_t *pair;         /* n_ids x n_methods, PAIR_* */
    int fresh_ok;          /* 1: PNGs newer than their source are kept */
    sm_text *msgs;         /* per id: its report lines */
    int phase;             /* 0: the job's scales; 1: drawing */
    atomic_size_t next;
} ctx;

typedef struct task {
    ctx *c;
    sm_render_stats st;
    sm_cmap_scale *scale; /* phase 0: per method, merged over its images */
    int *has_scale;
} task;

const char *sm_render_scale_name(sm_render_scale_mode m)
{
    return m == SM_RENDER_SCALE_JOB ? "job" : "map";
}

int sm_render_scale_parse(const char *s, sm_render_scale_mode *m)
{
    if (!strcmp(s, "map"))
        *m = SM_RENDER_SCALE_MAP;
    else if (!strcmp(s, "job"))
        *m = SM_RENDER_SCALE_JOB;
    else
        return -1;
    return 0;
}

void sm_render_opts_init(sm_render_opts *o)
{
    memset(o, 0, sizeof *o);
    o->scale = SM_RENDER_SCALE_MAP;
}

/* ---- the images of OUT/maps ------------------------------------------- */

typedef struct id_list {
    char **v;
    size_t n, cap;
} id_list;

static int list_add(id_list *l, const char *s, sm_err *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return sm_err_set(err, "out of memory");
        l->v = v, l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s)))
        return sm_err_set(err, "out of memory");
    l->n++;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

/* The folders below root/rel holding a .row file, as ids (paths relative
 * to root). Symlinks are not followed; names starting with '.' skipped. */
static int walk(const char *root, const char *rel, id_list *l, sm_err *err)
{
    char dir[PATH];
    if (snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel) >=
        (int)sizeof dir)
        return sm_err_set(err, "%s/%s: path too long", root, rel);
    DIR *d = opendir(dir);
    if (!d)
        return sm_err_set(err, "%s: cannot open: %s", dir, strerror(errno));
    int rc = 0, rows = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[PATH], full[2 * PATH];
        if (snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "",
                     e->d_name) >= (int)sizeof sub) {
            rc = sm_err_set(err, "%s/%s: path too long", dir, e->d_name);
            break;
        }
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat sb;
        if (lstat(full, &sb))
            continue;
        if (S_ISDIR(sb.st_mode))
            rc = walk(root, sub, l, err);
        else if (S_ISREG(sb.st_mode) && ends_with(e->d_name, ".row"))
            rows = 1;
    }
    closedir(d);
    if (rc == 0 && rows && *rel)
        rc = list_add(l, rel, err);
    return rc;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The index in ds of each id (NOT_IN_DATASET when ds has none). */
typedef struct ds_entry {
    const char *id;
    size_t i;
} ds_entry;

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const ds_entry *)a)->id, ((const ds_entry *)b)->id);
}

static int index_ids(ctx *c, sm_err *err)
{
    size_t n = sm_dataset_count(c->ds);
    ds_entry *e = malloc((n ? n : 1) * sizeof *e);
    if (!e)
        return sm_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        e[i] = (ds_entry){sm_dataset_id(c->ds, i), i};
    qsort(e, n, sizeof *e, entry_cmp);
    for (size_t k = 0; k < c->n_ids; k++) {
        ds_entry key = {c->ids[k], 0};
        ds_entry *f = bsearch(&key, e, n, sizeof *e, entry_cmp);
        c->ds_index[k] = f ? f->i : NOT_IN_DATASET;
    }
    free(e);
    return 0;
}

/* ---- files -------------------------------------------------------------- */

/* OUT/maps/<id>/<name><suffix> into p (PATH bytes); 0 or -1. */
static int path_of(char *p, const ctx *c, size_t i, const char *name,
                   const char *suffix)
{
    return snprintf(p, PATH, "%s/maps/%s/%s%s", c->out, c->ids[i], name,
                    suffix) < PATH ? 0 : -1;
}

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* 1 when png exists and is not older than src. */
static int fresh(const char *png, const char *src)
{
    struct stat a, b;
    if (stat(png, &a) || stat(src, &b))
        return 0;
    return a.st_mtim.tv_sec > b.st_mtim.tv_sec ||
           (a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
            a.st_mtim.tv_nsec >= b.st_mtim.tv_nsec);
}

/* Adds a line to image i's report. */
__attribute__((format(printf, 3, 4)))
static void say(ctx *c, size_t i, const char *fmt, ...)
{
    char line[SM_ERR_MAX + PATH];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    sm_text_addf(&c->msgs[i], "%s\n", line);
}

/* The map of (i, m): h x w floats, or NULL (reported, counted failed). */
static sm_tensor *load_map(task *t, size_t i, const char *npy)
{
    ctx *c = t->c;
    sm_err err = {0};
    sm_tensor *x = sm_npy_read(npy, &err);
    if (x && !(x->ndim == 2 && x->shape[0] == c->h && x->shape[1] == c->w)) {
        char shape[SM_MAX_DIMS * 22 + 3];
        snprintf(err.msg, sizeof err.msg, "%s: shape %s, not the job's "
                 "input size [%d, %d]", npy,
                 sm_shape_str(x->ndim, x->shape, shape, sizeof shape), c->h,
                 c->w);
        sm_tensor_destroy(&x);
    }
    if (!x) {
        say(c, i, "%s: no PNG", err.msg);
        t->st.failed++;
    }
    return x;
}

/* The map's own scale; -1 when a value has no colour (reported, counted
 * bad, its pixel named). */
static int map_scale(task *t, size_t i, int m, const char *npy,
                     const sm_tensor *x, sm_cmap_scale *s)
{
    ctx *c = t->c;
    sm_err err = {0};
    size_t hw = (size_t)c->h * c->w;
    if (sm_cmap_scale_of(c->kind[m], x->data, hw, npy, s, &err) == 0)
        return 0;
    size_t q = 0;
    while (q < hw && isfinite(x->data[q]))
        q++;
    char where[64];
    snprintf(where, sizeof where, " (row %zu, column %zu): no PNG",
             q / (size_t)c->w, q % (size_t)c->w);
    say(c, i, "%s%s", err.msg, where);
    t->st.bad++;
    return -1;
}

/* The complete pairs of image i: PAIR_MAP where both the row and the map
 * exist. Returns how many. */
static int find_pairs(ctx *c, size_t i)
{
    int n = 0;
    for (int m = 0; m < c->n_methods; m++) {
        char row[PATH], npy[PATH];
        const char *name = c->ji->methods[m].name;
        uint8_t *p = &c->pair[i * c->n_methods + m];
        if (*p != PAIR_NONE) {
            n += *p == PAIR_MAP;
            continue;
        }
        if (path_of(row, c, i, name, ".row") == 0 &&
            path_of(npy, c, i, name, ".npy") == 0 && exists(row) &&
            exists(npy)) {
            *p = PAIR_MAP;
            n++;
        }
    }
    return n;
}

/* ---- phase 0: the job's scales ----------------------------------------- */

static void scale_image(task *t, size_t i)
{
    ctx *c = t->c;
    find_pairs(c, i);
    for (int m = 0; m < c->n_methods; m++) {
        uint8_t *p = &c->pair[i * c->n_methods + m];
        char npy[PATH];
        if (*p != PAIR_MAP)
            continue;
        path_of(npy, c, i, c->ji->methods[m].name, ".npy");
        sm_tensor *x = load_map(t, i, npy);
        sm_cmap_scale s;
        if (!x)
            *p = PAIR_FAILED;
        else if (map_scale(t, i, m, npy, x, &s))
            *p = PAIR_BAD;
        else if (t->has_scale[m])
            sm_cmap_scale_merge(&t->scale[m], &s);
        else
            t->scale[m] = s, t->has_scale[m] = 1;
        sm_tensor_destroy(&x);
    }
}

/* ---- phase 1: drawing ---------------------------------------------------- */

typedef struct target {
    target_kind kind;
    char png[PATH], src[PATH];
} target;

/* The PNGs of (i, m), with input or without: into tg (at most 4). */
static int targets_of(const ctx *c, size_t i, int m, int input, target *tg)
{
    const char *name = c->ji->methods[m].name;
    int n = 0;
    char npy[PATH];
    path_of(npy, c, i, name, ".npy");
#define ADD(k, suffix, from)                                                  \
    do {                                                                      \
        tg[n].kind = (k);                                                     \
        if (path_of(tg[n].png, c, i, name, suffix) == 0) {                    \
            snprintf(tg[n].src, PATH, "%s", (from));                          \
            n++;                                                              \
        }                                                                     \
    } while (0)
    ADD(T_MAP, ".png", npy);
    if (input)
        ADD(T_OVERLAY, ".overlay.png", npy);
    if (input && !strcmp(name, "anchor"))
        ADD(T_KEPT, ".kept.png", npy);
    if (input && !strcmp(name, "lore"))
        ADD(T_KEPT, ".rule.png", npy);
    if (!strcmp(name, "abele")) {
        char arr[PATH];
        if (path_of(arr, c, i, name, ".exemplars.npy") == 0 && exists(arr))
            ADD(T_EXEMPLARS, ".exemplars.png", arr);
        if (path_of(arr, c, i, name, ".counter_exemplars.npy") == 0 &&
            exists(arr))
            ADD(T_COUNTER, ".counter_exemplars.png", arr);
    }
#undef ADD
    return n;
}

/* An exemplar strip of the N x h x w array at path. */
static int draw_strip(const ctx *c, const char *path, sm_render_px *px,
                      sm_err *err)
{
    sm_tensor *x = sm_npy_read(path, err);
    if (!x)
        return -1;
    int rc;
    if (x->ndim != 3 || x->shape[0] < 1 || x->shape[1] != c->h ||
        x->shape[2] != c->w) {
        char shape[SM_MAX_DIMS * 22 + 3];
        rc = sm_err_set(err, "%s: shape %s, not N x %d x %d", path,
                        sm_shape_str(x->ndim, x->shape, shape, sizeof shape),
                        c->h, c->w);
    } else {
        int n = x->shape[0] < c->tiles ? (int)x->shape[0] : c->tiles;
        size_t tile = (size_t)c->h * c->w;
        for (size_t q = 0; q < (size_t)n * tile; q++)
            if (!isfinite(x->data[q])) {
                sm_tensor_destroy(&x);
                return sm_err_set(err, "%s: tile %zu, row %zu, column %zu is "
                                  "not finite", path, q / tile,
                                  q % tile / (size_t)c->w, q % (size_t)c->w);
            }
        rc = sm_render_strip(x->data, n, c->h, c->w, c->zoom, px, err);
    }
    sm_tensor_destroy(&x);
    return rc;
}

static int draw_target(const ctx *c, const target *tg, const float *map,
                       const sm_cmap_scale *s, const float *input,
                       sm_err *err)
{
    sm_render_px px;
    int rc;
    switch (tg->kind) {
    case T_MAP:
        rc = sm_render_map(map, c->h, c->w, s, c->zoom, &px, err);
        break;
    case T_OVERLAY:
        rc = sm_render_overlay(input, c->c, map, c->h, c->w, s, c->zoom, &px,
                               err);
        break;
    case T_KEPT:
        rc = sm_render_kept(input, c->c, map, c->h, c->w, c->zoom, &px, err);
        break;
    default:
        rc = draw_strip(c, tg->src, &px, err);
        break;
    }
    if (rc == 0)
        rc = sm_render_px_save(&px, tg->png, err);
    else
        sm_err_prefix(err, "%s", tg->png);
    sm_render_px_free(&px);
    return rc;
}

/* A map without PNGs has none at all, not even those of an older map. */
static void remove_pngs(const ctx *c, size_t i, int m)
{
    target tg[4];
    int n = targets_of(c, i, m, 1, tg);
    for (int k = 0; k < n; k++)
        unlink(tg[k].png);
}

static void draw_pair(task *t, size_t i, int m, const float *input)
{
    ctx *c = t->c;
    target tg[4];
    int n = targets_of(c, i, m, input != NULL, tg), stale = 0;
    for (int k = 0; k < n; k++)
        stale += !(c->fresh_ok && fresh(tg[k].png, tg[k].src));
    if (!stale) {
        t->st.skipped += (size_t)n;
        return;
    }
    char npy[PATH];
    sm_cmap_scale s;
    path_of(npy, c, i, c->ji->methods[m].name, ".npy");
    sm_tensor *x = load_map(t, i, npy);
    if (x && c->mode == SM_RENDER_SCALE_MAP && map_scale(t, i, m, npy, x, &s))
        sm_tensor_destroy(&x);
    if (!x) {
        remove_pngs(c, i, m);
        return;
    }
    if (c->mode == SM_RENDER_SCALE_JOB)
        s = c->scale[m];
    int failed = 0;
    for (int k = 0; k < n; k++) {
        sm_err err = {0};
        if (c->fresh_ok && fresh(tg[k].png, tg[k].src))
            t->st.skipped++;
        else if (draw_target(c, &tg[k], x->data, &s, input, &err) == 0)
            t->st.written++;
        else {
            say(c, i, "%s", err.msg);
            failed = 1;
        }
    }
    t->st.failed += (size_t)failed;
    sm_tensor_destroy(&x);
}

/* The input of image i on 0..255, or NULL (reported) when there is none. */
static float *load_input(task *t, size_t i)
{
    ctx *c = t->c;
    if (!c->ds)
        return NULL;
    if (c->ds_index[i] == NOT_IN_DATASET) {
        say(c, i, "image '%s': not in the dataset %s: drawn without its "
            "input", c->ids[i], c->ji->dataset);
        return NULL;
    }
    sm_preproc pp;
    sm_preproc_init(&pp, c->c, c->h, c->w);
    pp.scale = 1; /* 0..255, as the model sees it before normalisation */
    float *x = malloc(sizeof(float) * (size_t)c->c * c->h * c->w);
    sm_err err = {0};
    if (!x)
        sm_err_set(&err, "out of memory");
    if (!x || sm_dataset_load(c->ds, c->ds_index[i], &pp, x, &err)) {
        say(c, i, "image '%s': %s: drawn without its input", c->ids[i],
            err.msg);
        free(x);
        return NULL;
    }
    return x;
}

static void draw_image(task *t, size_t i)
{
    ctx *c = t->c;
    find_pairs(c, i);
    int any = 0;
    for (int m = 0; m < c->n_methods; m++)
        any |= c->pair[i * c->n_methods + m] != PAIR_NONE;
    if (!any)
        return;
    t->st.images++;
    for (int m = 0; m < c->n_methods; m++)
        t->st.maps += c->pair[i * c->n_methods + m] != PAIR_NONE;
    float *input = load_input(t, i);
    if (input) {
        char png[PATH];
        sm_err err = {0};
        sm_render_px px = {0};
        if (path_of(png, c, i, "input", ".png"))
            ;
        else if (c->fresh_ok && exists(png))
            t->st.skipped++;
        else if (sm_render_input(input, c->c, c->h, c->w, c->zoom, &px,
                                 &err) == 0 &&
                 sm_render_px_save(&px, png, &err) == 0) {
            t->st.written++;
            sm_render_px_free(&px);
        } else {
            sm_render_px_free(&px);
            say(c, i, "%s", err.msg);
        }
    } else
        t->st.no_input++;
    for (int m = 0; m < c->n_methods; m++)
        if (c->pair[i * c->n_methods + m] == PAIR_MAP)
            draw_pair(t, i, m, input);
        else if (c->pair[i * c->n_methods + m] != PAIR_NONE)
            remove_pngs(c, i, m);
    free(input);
}

static void run_task(void *arg)
{
    task *t = arg;
    ctx *c = t->c;
    size_t i;
    while ((i = atomic_fetch_add(&c->next, 1)) < c->n_ids) {
        if (c->phase == 0)
            scale_image(t, i);
        else
            draw_image(t, i);
    }
}

/* Runs the phase over every image on n tasks; sums their stats into st
 * and, in phase 0, merges their scales into c's. */
static void run_phase(ctx *c, int phase, task *tasks, int n,
                      sm_render_stats *st)
{
    c->phase = phase;
    atomic_store(&c->next, 0);
    for (int k = 0; k < n; k++) {
        memset(&tasks[k].st, 0, sizeof tasks[k].st);
        memset(tasks[k].has_scale, 0, sizeof(int) * (size_t)c->n_methods);
    }
    sm_pool_run(run_task, tasks, sizeof *tasks, n);
    for (int k = 0; k < n; k++) {
        const sm_render_stats *s = &tasks[k].st;
        st->images += s->images, st->maps += s->maps;
        st->written += s->written, st->skipped += s->skipped;
        st->bad += s->bad, st->failed += s->failed;
        st->no_input += s->no_input;
        for (int m = 0; phase == 0 && m < c->n_methods; m++) {
            if (!tasks[k].has_scale[m])
                continue;
            if (c->has_scale[m])
                sm_cmap_scale_merge(&c->scale[m], &tasks[k].scale[m]);
            else
                c->scale[m] = tasks[k].scale[m], c->has_scale[m] = 1;
        }
    }
}

/* ---- OUT/scales.csv and OUT/render.json ------------------------------- */

static int write_scales(const ctx *c, sm_err *err)
{
    sm_text t = {0};
    char path[PATH];
    int rc = sm_text_addf(&t, "method,colormap,min,max\n");
    for (int m = 0; rc == 0 && m < c->n_methods; m++) {
        if (!c->has_scale[m])
            continue;
        rc = sm_text_csv(&t, c->ji->methods[m].name) ||
             sm_text_addf(&t, ",%s,%.9g,%.9g\n",
                          sm_cmap_kind_name(c->scale[m].kind),
                          c->scale[m].lo, c->scale[m].hi);
    }
    snprintf(path, sizeof path, "%s/scales.csv", c->out);
    if (rc)
        rc = sm_err_set(err, "%s: out of memory", path);
    else
        rc = sm_file_write_atomic(path, t.s, t.len, err);
    sm_text_free(&t);
    return rc;
}

/* How this pass draws, as OUT/render.json holds it. */
static void settings_text(const ctx *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "{\"zoom\": %d, \"scale\": \"%s\", \"tiles\": %d}\n",
             c->zoom, sm_render_scale_name(c->mode), c->tiles);
}

/* 1 when OUT/render.json says the PNGs there were drawn as this pass
 * draws them (then a PNG newer than its source is kept). Otherwise the
 * file is removed before anything is drawn, and written again at the end,
 * so that an interrupted pass leaves no promise about mixed PNGs. */
static int settings_match(const ctx *c, const char *path, const char *want)
{
    size_t len;
    unsigned char *had = sm_file_read(path, 4096, &len, NULL);
    int same = had && len == strlen(want) && !memcmp(had, want, len);
    free(had);
    if (!same)
        unlink(path);
    return same && c->mode == SM_RENDER_SCALE_MAP;
}

/* ---- the pass ------------------------------------------------------------ */

static void report_all(const ctx *c, const sm_render_opts *o)
{
    for (size_t i = 0; o->report && i < c->n_ids; i++) {
        char *s = c->msgs[i].s;
        for (char *nl; s && *s; s = nl + 1) {
            nl = strchr(s, '\n');
            *nl = '\0';
            o->report(s, o->u);
        }
    }
}

static int check_opts(const sm_render_opts *o, sm_err *err)
{
    if (o->zoom < 0 || o->zoom > SM_RENDER_MAX_ZOOM)
        return sm_err_set(err, "zoom %d: must be 1..%d", o->zoom,
                          SM_RENDER_MAX_ZOOM);
    if (o->tiles < 0)
        return sm_err_set(err, "tiles %d: must be >= 1", o->tiles);
    return 0;
}

int sm_render_out(const char *out, const sm_render_opts *o,
                  sm_render_stats *st, sm_err *err)
{
    double t0 = sm_clock_now();
    memset(st, 0, sizeof *st);
    if (check_opts(o, err))
        return -1;
    sm_jobinfo_file *jf = sm_jobinfo_load(out, err);
    if (!jf)
        return -1;
    const sm_jobinfo *ji = sm_jobinfo_of(jf);
    ctx c = {.out = out, .ji = ji, .mode = o->scale, .c = ji->channels,
             .h = ji->height, .w = ji->width, .n_methods = ji->n_methods};
    c.zoom = o->zoom ? o->zoom : sm_render_zoom_default(c.h, c.w);
    c.tiles = o->tiles ? o->tiles : SM_RENDER_TILES;
    st->zoom = c.zoom;
    int threads = o->threads < 1 ? 1 : o->threads > SM_POOL_MAX
                                           ? SM_POOL_MAX : o->threads;
    id_list ids = {0};
    task *tasks = NULL;
    int rc = -1;
    char maps[PATH], marker[PATH], want[128], line[PATH + 256];
    snprintf(maps, sizeof maps, "%s/maps", out);
    snprintf(marker, sizeof marker, "%s/render.json", out);
    if ((c.c != 1 && c.c != 3) || c.h < 1 || c.w < 1) {
        sm_err_set(err, "%s/job.json: input %d x %d x %d: cannot be drawn",
                   out, c.c, c.h, c.w);
        goto done;
    }
    if (walk(maps, "", &ids, err))
        goto done;
    if (ids.n) /* qsort wants an array, even of none */
        qsort(ids.v, ids.n, sizeof *ids.v, str_cmp);
    c.ids = ids.v, c.n_ids = ids.n;
    size_t nm = (size_t)(c.n_methods ? c.n_methods : 1);
    c.ds_index = calloc(ids.n ? ids.n : 1, sizeof *c.ds_index);
    c.kind = calloc(nm, sizeof *c.kind);
    c.scale = calloc(nm, sizeof *c.scale);
    c.has_scale = calloc(nm, sizeof *c.has_scale);
    c.pair = calloc((ids.n ? ids.n : 1) * nm, 1);
    c.msgs = calloc(ids.n ? ids.n : 1, sizeof *c.msgs);
    tasks = calloc((size_t)threads, sizeof *tasks);
    if (!c.ds_index || !c.kind || !c.scale || !c.has_scale || !c.pair ||
        !c.msgs || !tasks) {
        sm_err_set(err, "%s: out of memory", out);
        goto done;
    }
    for (int k = 0; k < threads; k++) {
        tasks[k].c = &c;
        tasks[k].scale = calloc(nm, sizeof *tasks[k].scale);
        tasks[k].has_scale = calloc(nm, sizeof *tasks[k].has_scale);
        if (!tasks[k].scale || !tasks[k].has_scale) {
            sm_err_set(err, "%s: out of memory", out);
            goto done;
        }
    }
    for (int m = 0; m < c.n_methods; m++) {
        /* names become file names: nothing that leaves the folder */
        if (!sm_name_valid(ji->methods[m].name, 64)) {
            sm_err_set(err, "%s/job.json: methods[%d]: '%s' is not a method "
                       "name ([a-z0-9_])", out, m, ji->methods[m].name);
            goto done;
        }
        c.kind[m] = ji->methods[m].signed_map ? SM_CMAP_DIVERGING
                                              : SM_CMAP_SEQUENTIAL;
    }
    sm_err dserr = {0};
    if (ids.n && !(c.ds = sm_dataset_open(ji->dataset, &dserr))) {
        st->no_dataset = 1;
        snprintf(line, sizeof line, "warning: the dataset '%s' of %s/job.json "
                 "cannot be opened (%s): drawing the maps alone, without "
                 "input.png, overlays, anchor.kept.png or lore.rule.png",
                 ji->dataset, out, dserr.msg);
        if (o->report)
            o->report(line, o->u);
    }
    if (c.ds && index_ids(&c, err))
        goto done;
    settings_text(&c, want, sizeof want);
    c.fresh_ok = settings_match(&c, marker, want);
    if (c.mode == SM_RENDER_SCALE_JOB) {
        run_phase(&c, 0, tasks, threads, st);
        if (write_scales(&c, err))
            goto done;
    } else {
        char scales[PATH];
        snprintf(scales, sizeof scales, "%s/scales.csv", out);
        unlink(scales); /* the legend of job scales no PNG has any more */
    }
    run_phase(&c, 1, tasks, threads, st);
    report_all(&c, o);
    rc = sm_file_write_atomic(marker, want, strlen(want), err);
done:
    for (size_t i = 0; c.msgs && i < ids.n; i++)
        sm_text_free(&c.msgs[i]);
    for (int k = 0; tasks && k < threads; k++)
        free(tasks[k].scale), free(tasks[k].has_scale);
    for (size_t i = 0; i < ids.n; i++)
        free(ids.v[i]);
    free(ids.v);
    free(tasks), free(c.ds_index), free(c.kind), free(c.scale);
    free(c.has_scale), free(c.pair), free(c.msgs);
    sm_dataset_destroy(&c.ds);
    sm_jobinfo_file_destroy(&jf);
    st->seconds = sm_clock_now() - t0;
    return rc;
}
