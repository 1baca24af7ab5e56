#include "explain/job.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config_model.h"
#include "data/dataset.h"
#include "explain/explainer.h"
#include "io/npy.h"
#include "metrics/deletion.h"
#include "util/file.h"
#include "util/text.h"

static const char header[] =
    "id,label,predicted,target,score,method,seconds,evals,deletion_auc,"
    "insertion_auc,params,extras\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void skipped(const sm_err *e, void *failed)
{
    fprintf(stderr, "salmap explain: skipped: %s\n", e->msg);
    ++*(size_t *)failed;
}

/* Everything a run holds; freed by state_free. */
typedef struct state {
    const sm_explain_job *job;
    sm_model *model;
    sm_model_config *cfg;
    sm_dataset *ds;
    sm_explainer **ex;
    int out_idx;
    int model_threads;
    sm_preproc pp;
    size_t count;
} state;

static void state_free(state *s)
{
    for (int i = 0; s->ex && i < s->job->n_methods; i++)
        sm_explainer_destroy(&s->ex[i]);
    free(s->ex);
    sm_dataset_destroy(&s->ds);
    sm_model_config_destroy(&s->cfg);
    sm_model_destroy(&s->model);
}

/* "OUT/maps/<id>/<method><ext>" into buf. */
static int map_path(char *buf, size_t cap, const char *out, const char *id,
                    const char *method, const char *ext)
{
    return snprintf(buf, cap, "%s/maps/%s/%s%s", out, id, method, ext) <
                   (int)cap
               ? 0
               : -1;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int done(const state *s, const char *id, const char *method)
{
    char a[4096], b[4096];
    return map_path(a, sizeof a, s->job->out, id, method, ".npy") == 0 &&
           map_path(b, sizeof b, s->job->out, id, method, ".row") == 0 &&
           exists(a) && exists(b);
}

/* Applies "method.key=value" settings; the method must be in the job. */
static int apply_settings(state *s, sm_err *err)
{
    const sm_explain_job *j = s->job;
    for (int k = 0; k < j->n_settings; k++) {
        const char *set = j->settings[k];
        const char *dot = strchr(set, '.'), *eq = strchr(set, '=');
        if (!dot || !eq || eq < dot)
            return sm_err_set(err, "--set '%s': expected method.key=value", set);
        char method[64], key[64];
        if ((size_t)(dot - set) >= sizeof method ||
            (size_t)(eq - dot - 1) >= sizeof key)
            return sm_err_set(err, "--set '%s': name too long", set);
        memcpy(method, set, (size_t)(dot - set));
        method[dot - set] = '\0';
        memcpy(key, dot + 1, (size_t)(eq - dot - 1));
        key[eq - dot - 1] = '\0';
        int found = 0;
        for (int m = 0; m < j->n_methods; m++)
            if (strcmp(j->methods[m], method) == 0) {
                found = 1;
                if (sm_explainer_set(s->ex[m], key, eq + 1, err))
                    return sm_err_prefix(err, "--set '%s'", set);
            }
        if (!found)
            return sm_err_set(err, "--set '%s': %s is not among the methods "
                              "asked for", set, method);
    }
    return 0;
}

static int setup(state *s, sm_err *err)
{
    const sm_explain_job *j = s->job;
    if (j->n_methods < 1)
        return sm_err_set(err, "no methods to run");
    if (sm_vips_init(NULL, err))
        return -1;
    if (!(s->model = sm_model_load_file(j->model, err)))
        return -1;
    s->cfg = j->config ? sm_model_config_load(j->config, err)
                       : sm_model_config_for_model(s->model, j->model, err);
    if (!s->cfg || sm_model_config_bind(s->cfg, s->model, j->model, &s->out_idx, err))
        return -1;
    sm_model_config_preproc(s->cfg, &s->pp);
    /* The engine splits batches over the cores; OpenBLAS stays on one
     * thread (docs/PERFORMANCE.md). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    openblas_set_num_threads(1);
    s->model_threads = cores > 0 ? (int)cores : 1;
    sm_model_set_threads(s->model, s->model_threads);
    /* Fixed-shape evaluation: an image's maps are then the same bits
     * whatever --batch, the thread count or the methods' internal batches
     * (docs/EXPLAIN.md). */
    sm_model_set_quantum(s->model, SM_EXPLAIN_QUANTUM);
    s->ex = calloc((size_t)j->n_methods, sizeof *s->ex);
    if (!s->ex)
        return sm_err_set(err, "out of memory");
    for (int m = 0; m < j->n_methods; m++) {
        for (int k = 0; k < m; k++)
            if (strcmp(j->methods[k], j->methods[m]) == 0)
                return sm_err_set(err, "method '%s' is listed twice",
                                  j->methods[m]);
        if (!(s->ex[m] = sm_explainer_new(j->methods[m], err)))
            return -1;
    }
    if (apply_settings(s, err))
        return -1;
    if (!(s->ds = sm_dataset_open(j->dataset, err)))
        return -1;
    s->count = sm_dataset_count(s->ds);
    if (j->limit && j->limit < s->count)
        s->count = j->limit;
    if (j->target == SM_TARGET_INDEX &&
        (j->target_index < 0 || (s->cfg->n_classes && j->target_index >= s->cfg->n_classes)))
        return sm_err_set(err, "target class %d is not one of the model's "
                          "classes", j->target_index);
    char maps[4096];
    snprintf(maps, sizeof maps, "%s/maps", j->out);
    return sm_file_mkdirs(maps, err);
}

/* One image's row: id,label,predicted,target,score,method,... */
static int write_row(const state *s, size_t i, int pred, int target,
                     const char *method, double seconds,
                     const sm_explain_out *o, const sm_deletion_result *dr,
                     const char *params, sm_err *err)
{
    const char *id = sm_dataset_id(s->ds, i), *label = sm_dataset_label_name(s->ds, i);
    char pb[32], tb[32], path[4096];
    sm_text t = {0};
    int rc = sm_text_csv(&t, id) || sm_text_addf(&t, ",") ||
             sm_text_csv(&t, label ? label : "") || sm_text_addf(&t, ",") ||
             sm_text_csv(&t, sm_class_name(s->cfg, s->ds, pred, pb, sizeof pb)) ||
             sm_text_addf(&t, ",") ||
             sm_text_csv(&t, sm_class_name(s->cfg, s->ds, target, tb, sizeof tb)) ||
             sm_text_addf(&t, ",%.9g,%s,%.6f,%ld,", o->score, method, seconds,
                          o->evals);
    if (!rc && dr)
        rc = sm_text_addf(&t, "%.6f,%.6f,", dr->deletion_auc, dr->insertion_auc);
    else if (!rc)
        rc = sm_text_addf(&t, ",,");
    rc = rc || sm_text_csv(&t, params) || sm_text_addf(&t, ",") ||
         sm_text_csv(&t, o->extras) || sm_text_addf(&t, "\n");
    if (rc) {
        sm_text_free(&t);
        return sm_err_set(err, "out of memory");
    }
    if (map_path(path, sizeof path, s->job->out, id, method, ".row"))
        rc = sm_err_set(err, "%s: path too long", id);
    else
        rc = sm_file_write_atomic(path, t.s, t.len, err);
    sm_text_free(&t);
    return rc;
}

/* Explains images idx[0..n) (loaded in x) with method m and writes the
 * maps not already complete. The whole batch is explained even when some
 * of it is done: the engine's results can depend on the batch's size
 * (OpenBLAS picks kernels by shape), so a resumed run recomputes exactly
 * the batches of an uninterrupted one and writes the same bytes. */
static int run_method(state *s, int m, const sm_tensor *x, const size_t *idx,
                      const int *pred, const int *target, size_t n,
                      sm_explain_stats *st, sm_err *err)
{
    const sm_explain_job *j = s->job;
    const char *method = j->methods[m];
    const int64_t per = sm_tensor_numel(x) / x->shape[0];
    const int64_t hw = (int64_t)s->pp.height * s->pp.width;
    unsigned char *todo = malloc(n);
    const char **ids = malloc(sizeof(char *) * n);
    sm_explain_out *out = calloc(n, sizeof *out);
    float *maps = malloc(sizeof(float) * (size_t)hw * n);
    size_t k = 0;
    int rc = -1;
    if (!todo || !ids || !out || !maps) {
        sm_err_set(err, "out of memory");
        goto out;
    }
    for (size_t r = 0; r < n; r++) {
        ids[r] = sm_dataset_id(s->ds, idx[r]);
        out[r].map = maps + r * (size_t)hw;
        todo[r] = !done(s, ids[r], method);
        k += todo[r];
    }
    st->maps_skipped += n - k;
    if (!k) {
        rc = 0;
        goto out;
    }
    sm_explain_ctx ctx = {s->model, s->out_idx,
                          s->cfg->output_kind == SM_OUTPUT_PROBABILITIES,
                          j->score_prob, j->seed};
    sm_explain_batch b = {x, target, ids};
    double t0 = now();
    if (sm_explainer_run(s->ex[m], &ctx, &b, out, err))
        goto out;
    /* The batch's time, shared evenly: methods work on whole batches. */
    double seconds = (now() - t0) / (double)n;
    const char *params = sm_explainer_params_json(s->ex[m]);
    for (size_t r = 0; r < n; r++) {
        if (!todo[r])
            continue;
        sm_deletion_result dr, *drp = NULL;
        if (j->metrics) {
            if (sm_deletion_insertion(&ctx, x->data + (int64_t)r * per,
                                      x->shape[1], x->shape[2], x->shape[3],
                                      out[r].map, pred[r], 0, 64, &dr, err))
                goto out;
            drp = &dr;
        }
        char dir[4096], path[4096];
        snprintf(dir, sizeof dir, "%s/maps/%s", j->out, ids[r]);
        sm_tensor mt = {0};
        mt.ndim = 2;
        mt.shape[0] = s->pp.height;
        mt.shape[1] = s->pp.width;
        mt.data = out[r].map;
        if (sm_file_mkdirs(dir, err) ||
            map_path(path, sizeof path, j->out, ids[r], method, ".npy") ||
            sm_npy_write(path, &mt, err) ||
            write_row(s, idx[r], pred[r], target[r], method, seconds, &out[r],
                      drp, params, err))
            goto out;
        st->maps_written++;
    }
    rc = 0;
out:
    free(todo);
    free(ids);
    free(out);
    free(maps);
    return rc;
}

static void progress(const state *s, size_t done_n, double t0, int final)
{
    double dt = now() - t0, rate = dt > 0 ? (double)done_n / dt : 0;
    double left = rate > 0 ? (double)(s->count - done_n) / rate : 0;
    if (s->job->progress && isatty(STDERR_FILENO)) {
        int width = 30, fill = s->count ? (int)(width * done_n / s->count) : width;
        fprintf(stderr, "\r[%.*s%*s] %zu/%zu images, %.1f images/s, %.0f s left ",
                fill, "==============================", width - fill, "",
                done_n, s->count, rate, left);
        if (final)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "salmap explain: %zu/%zu images, %.1f images/s, %.0f s left\n",
                done_n, s->count, rate, left);
    }
}

/* index.csv from every complete row, in dataset then method order. */
static int write_index(const state *s, sm_err *err)
{
    sm_text t = {0};
    int rc = sm_text_addf(&t, "%s", header) ? sm_err_set(err, "out of memory") : 0;
    for (size_t i = 0; i < s->count && rc == 0; i++)
        for (int m = 0; m < s->job->n_methods && rc == 0; m++) {
            char path[4096];
            if (map_path(path, sizeof path, s->job->out, sm_dataset_id(s->ds, i),
                         s->job->methods[m], ".row") || !exists(path))
                continue;
            size_t len;
            unsigned char *row = sm_file_read(path, 1 << 20, &len, err);
            if (!row)
                rc = -1;
            else if (sm_text_addf(&t, "%.*s", (int)len, (const char *)row))
                rc = sm_err_set(err, "out of memory");
            free(row);
        }
    if (rc == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/index.csv", s->job->out);
        rc = sm_file_write_atomic(path, t.s, t.len, err);
    }
    sm_text_free(&t);
    return rc;
}

int sm_explain_job_run(const sm_explain_job *job, sm_explain_stats *st,
                       sm_err *err)
{
    state s = {.job = job};
    memset(st, 0, sizeof *st);
    double t0 = now();
    if (setup(&s, err)) {
        state_free(&s);
        return -1;
    }
    const int64_t per = (int64_t)s.pp.channels * s.pp.height * s.pp.width;
    const size_t bsz = job->batch > 0 ? (size_t)job->batch : 64;
    sm_tensor *x = sm_tensor_new(4, (int64_t[]){(int64_t)bsz, s.pp.channels,
                                                s.pp.height, s.pp.width});
    size_t *idx = malloc(sizeof(size_t) * bsz);
    int *pred = malloc(sizeof(int) * bsz), *target = malloc(sizeof(int) * bsz);
    int rc = 0;
    if (!x || !idx || !pred || !target)
        rc = sm_err_set(err, "out of memory");
    for (size_t i0 = 0; i0 < s.count && rc == 0; i0 += bsz) {
        size_t i1 = i0 + bsz < s.count ? i0 + bsz : s.count, n = 0;
        int all_done = 1;
        for (size_t i = i0; i < i1 && all_done; i++)
            for (int m = 0; m < job->n_methods && all_done; m++)
                all_done = done(&s, sm_dataset_id(s.ds, i), job->methods[m]);
        if (all_done) { /* a batch finished before: nothing to redo */
            st->maps_skipped += (i1 - i0) * (size_t)job->n_methods;
            st->images += i1 - i0;
            continue;
        }
        n = sm_dataset_load_range(s.ds, i0, i1, &s.pp, x->data,
                                  s.model_threads, idx, skipped,
                                  &st->images_failed);
        st->images += i1 - i0;
        if (n) {
            /* predictions: the model's argmax on each image */
            sm_tensor view = *x;
            view.owns = 0;
            view.shape[0] = (int64_t)n;
            const sm_tensor *in[1] = {&view}, *outs[64];
            if (sm_model_run(s.model, in, 1, outs, err)) {
                rc = -1;
                break;
            }
            const sm_tensor *y = outs[s.out_idx];
            int64_t k = y->shape[y->ndim - 1];
            size_t kept = 0;
            for (size_t r = 0; r < n; r++) {
                const float *row = y->data + (int64_t)r * k;
                int best = 0;
                for (int64_t c = 1; c < k; c++)
                    if (row[c] > row[best])
                        best = (int)c;
                int t = best;
                if (job->target == SM_TARGET_INDEX)
                    t = job->target_index;
                else if (job->target == SM_TARGET_LABEL)
                    t = sm_class_index(s.cfg, s.ds, sm_dataset_label_name(s.ds, idx[r]));
                if (t < 0 || t >= k) {
                    fprintf(stderr, "salmap explain: skipped %s: its label is "
                            "not one of the model's classes\n",
                            sm_dataset_id(s.ds, idx[r]));
                    st->images_failed++;
                    continue;
                }
                /* compact the kept images to the front */
                if (kept != r)
                    memmove(x->data + (int64_t)kept * per, x->data + (int64_t)r * per,
                            sizeof(float) * (size_t)per);
                idx[kept] = idx[r];
                pred[kept] = best;
                target[kept] = t;
                kept++;
            }
            view.shape[0] = (int64_t)kept;
            for (int m = 0; m < job->n_methods && rc == 0 && kept; m++)
                rc = run_method(&s, m, &view, idx, pred, target, kept, st, err);
        }
        if (rc == 0)
            progress(&s, i1, t0, i1 == s.count);
    }
    /* The index covers whatever is complete, even after an error. */
    sm_err ierr = {{0}};
    if (write_index(&s, rc ? &ierr : err) && rc == 0)
        rc = -1;
    st->seconds = now() - t0;
    sm_tensor_destroy(&x);
    free(idx);
    free(pred);
    free(target);
    state_free(&s);
    return rc;
}
