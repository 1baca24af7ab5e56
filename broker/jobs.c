/* Jobs on the broker, their life: setting one up from its SUBMIT body,
 * its state and status, finishing it (tasks.c holds its tasks, plan.c
 * plans them, gather.c turns workers' results into files). */
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "broker/blobs.h"
#include "broker/internal.h"
#include "broker/log.h"
#include "broker/path.h"
#include "config/config_model.h"
#include "explain/settings.h"
#include "model/model.h"
#include "report/finish.h"
#include "io/jobinfo.h"
#include "util/confine.h"
#include "util/file.h"
#include "util/text.h"

static const char *const state_names[] = {"queued", "running", "done",
                                          "failed", "cancelled"};

const char *bjob_state_name(bjob_state s)
{
    return state_names[s];
}

void bjob_free(bjob **jp)
{
    bjob *j = *jp;
    if (!j)
        return;
    btask *t;
    while ((t = j->queue.head)) {
        btask_unlink(&j->queue, t);
        btask_free(t);
    }
    while (j->gathers)
        bgather_close(j, j->gathers);
    for (size_t m = 0; j->ex && m < j->spec.n_methods; m++)
        sm_explainer_destroy(&j->ex[m]);
    for (size_t m = 0; j->msettings && m < j->spec.n_methods; m++)
        free(j->msettings[m]);
    free(j->ex);
    free(j->msettings);
    free(j->n_msettings);
    sm_err ferr;
    if (j->finish && sm_output_join(&j->finish, &ferr))
        sm_broker_warn("job %s: %s", j->id, ferr.msg);
    for (int k = 0; k < j->n_workers; k++)
        free(j->workers[k]);
    free(j->workers);
    for (int k = 0; k < j->n_failures; k++) {
        free((char *)j->failures[k].id);
        free((char *)j->failures[k].method);
        free((char *)j->failures[k].error);
    }
    free(j->failures);
    sm_explain_store_destroy(&j->store);
    sm_dataset_destroy(&j->ds);
    sm_model_config_destroy(&j->cfg);
    sm_msg_doc_destroy(&j->doc);
    free(j->body);
    free(j->error);
    free(j->id);
    free(j);
    *jp = NULL;
}

/* Inline images become a CSV-manifest dataset in the broker's state
 * folder, so that a resumed job finds them and the rest of the broker
 * sees one kind of dataset. */
static int write_inline(sm_broker *b, bjob *j, char manifest[BPATH_MAX],
                        sm_err *err)
{
    char dir[BPATH_MAX], path[BPATH_MAX];
    if (bpath(dir, err, "state", "%s/jobs/%s", b->state_dir, j->id) ||
        bpath(manifest, err, "state", "%s/images.csv", dir))
        return -1;
    sm_text csv = {0};
    int rc = sm_text_addf(&csv, "path,label\n") ? sm_err_set(err, "out of memory") : 0;
    for (size_t i = 0; rc == 0 && i < j->spec.n_images; i++) {
        const sm_msg_image *im = &j->spec.images[i];
        if (bpath(path, err, im->id, "%s/%s.img", dir, im->id)) {
            rc = sm_err_prefix(err, "image");
            break;
        }
        const char *file = path + strlen(dir) + 1; /* as the manifest says */
        char *slash = strrchr(path, '/');
        *slash = '\0';
        rc = sm_file_mkdirs(path, err);
        *slash = '/';
        if (rc == 0)
            rc = sm_file_write_atomic(path, im->data, im->len, err);
        if (rc == 0 && (sm_text_csv(&csv, file) || sm_text_addf(&csv, ",") ||
                        sm_text_csv(&csv, im->label ? im->label : "") ||
                        sm_text_addf(&csv, "\n")))
            rc = sm_err_set(err, "out of memory");
    }
    if (rc == 0)
        rc = sm_file_write_atomic(manifest, csv.s, csv.len, err);
    sm_text_free(&csv);
    return rc;
}

/* OUT/job.json as j stands (jobinfo.h); a failure is logged, not fatal:
 * the maps matter more than their description. */
static void write_jobinfo(bjob *j, double finished, bjob_state state)
{
    const sm_msg_job *s = &j->spec;
    sm_jobinfo_method *m = calloc(s->n_methods, sizeof *m);
    sm_err err;
    if (!m) {
        sm_broker_warn("job %s: job.json: out of memory", j->id);
        return;
    }
    sm_explainers_describe(j->ex, (int)s->n_methods, m);
    sm_jobinfo ji = {
        .id = j->id, .name = s->name, .model = s->model_name,
        .model_hash = s->model,
        .config = s->config, .dataset = s->dataset ? s->dataset : "(inline images)",
        .channels = j->cfg->channels, .height = j->cfg->height,
        .width = j->cfg->width, .methods = m, .n_methods = (int)s->n_methods,
        .seed = s->seed, .limit = s->limit, .target = s->target,
        .score = s->score, .metrics = s->metrics, .images = j->count,
        .started = j->started, .finished = finished,
        .workers = (const char *const *)j->workers, .n_workers = j->n_workers,
        .maps = j->maps_done, .failed = j->maps_failed,
        .state = bjob_state_name(state), .failures = j->failures,
        .n_failures = j->n_failures};
    if (sm_jobinfo_write(s->out, &ji, &err))
        sm_broker_warn("job %s: %s", j->id, err.msg);
    free(m);
}

void bjob_note_worker(bjob *j, const char *name)
{
    for (int k = 0; k < j->n_workers; k++)
        if (!strcmp(j->workers[k], name))
            return;
    char **grown = realloc(j->workers, sizeof *grown * (size_t)(j->n_workers + 1));
    if (!grown)
        return; /* job.json lists one fewer: nothing else depends on it */
    j->workers = grown;
    if ((j->workers[j->n_workers] = strdup(name)))
        j->n_workers++;
}

/* The job's own paths against the config's roots (none: anywhere): its
 * dataset, before it is opened, and its out folder, which may not exist
 * yet. */
static int confine_paths(const sm_broker *b, const sm_msg_job *s, sm_err *err)
{
    if (b->n_dataset_roots && s->dataset &&
        sm_confine_check(s->dataset, b->dataset_roots, b->n_dataset_roots, 0,
                         "dataset", "dataset_roots", err))
        return -1;
    if (b->output_root && s->out &&
        sm_confine_check(s->out, (char *const *)&b->output_root, 1, 1, "out",
                         "output_root", err))
        return -1;
    return 0;
}

/* The dataset's image files, which a manifest may name anywhere or a
 * folder hold as symlinks: each must lie under a dataset root too. */
static int confine_images(const sm_broker *b, const bjob *j, sm_err *err)
{
    for (size_t i = 0; b->n_dataset_roots && j->spec.dataset && i < j->count; i++) {
        const char *p = sm_dataset_path(j->ds, i);
        if (p && sm_confine_check(p, b->dataset_roots, b->n_dataset_roots, 0,
                                  "image", "dataset_roots", err))
            return sm_err_prefix(err, "dataset '%.200s'", j->spec.dataset);
    }
    return 0;
}

/* Everything a job needs before it runs; -1 with a message that the
 * client will see. */
static int setup(sm_broker *b, bjob *j, sm_err *err)
{
    const sm_msg_job *s = &j->spec;
    char path[BPATH_MAX];
    if (confine_paths(b, s, err))
        return -1;
    if (!sm_blobs_path(b->blob_dir, s->model, path, sizeof path))
        return sm_err_set(err, "model %s: the broker does not hold it (PUT it "
                          "first)", s->model);
    /* The broker loads the model once, to refuse a bad one at submission
     * and to derive its default config; workers load their own. */
    sm_model *model = sm_model_load_file(path, err);
    if (!model)
        return sm_err_prefix(err, "model %s", s->model);
    int out_idx, rc = 0;
    char name[96];
    snprintf(name, sizeof name, "model %.16s", s->model);
    j->cfg = s->config ? sm_model_config_parse(s->config, strlen(s->config),
                                               "config", err)
                       : sm_model_config_for_model(model, name, err);
    if (!j->cfg || sm_model_config_bind(j->cfg, model, name, &out_idx, err))
        rc = -1;
    sm_model_destroy(&model);
    if (rc)
        return -1;
    /* Auxiliary models: held and loading, or the job is refused now. */
    for (size_t k = 0; k < s->n_models; k++) {
        if (!sm_blobs_path(b->blob_dir, s->model_hashes[k], path, sizeof path))
            return sm_err_set(err, "model '%s' (%s): the broker does not hold "
                              "it (PUT it first)", s->model_names[k],
                              s->model_hashes[k]);
        sm_model *aux = sm_model_load_file(path, err);
        if (!aux)
            return sm_err_prefix(err, "model '%s' (%.16s)", s->model_names[k],
                                 s->model_hashes[k]);
        sm_model_destroy(&aux);
    }
    if (!!s->dataset == !!s->n_images)
        return sm_err_set(err, "a job needs either a dataset or images");
    if (s->dataset)
        j->ds = sm_dataset_open(s->dataset, err);
    else if (write_inline(b, j, path, err) == 0)
        j->ds = sm_dataset_open(path, err);
    if (!j->ds)
        return -1;
    j->count = sm_dataset_count(j->ds);
    if (s->limit && s->limit < j->count)
        j->count = (size_t)s->limit;
    if (confine_images(b, j, err))
        return -1;
    size_t nm = s->n_methods;
    j->ex = calloc(nm, sizeof *j->ex);
    j->msettings = calloc(nm, sizeof *j->msettings);
    j->n_msettings = calloc(nm, sizeof *j->n_msettings);
    if (!j->ex || !j->msettings || !j->n_msettings)
        return sm_err_set(err, "out of memory");
    if (sm_settings_explainers(s->methods, nm, s->settings, s->n_settings,
                               j->ex, err))
        return -1;
    for (size_t m = 0; m < nm; m++) {
        if (!(j->msettings[m] = malloc(sizeof(char *) * (s->n_settings + 1))))
            return sm_err_set(err, "out of memory");
        sm_settings_of(s->methods[m], s->settings, s->n_settings,
                       j->msettings[m], &j->n_msettings[m]);
    }
    if (strcmp(s->target, "predicted") && strcmp(s->target, "label")) {
        char *end;
        long t = strtol(s->target, &end, 10);
        if (!*s->target || *end || t < 0 ||
            (j->cfg->n_classes && t >= j->cfg->n_classes))
            return sm_err_set(err, "target '%s': predicted, label or a class "
                              "index of the model", s->target);
    }
    if (strcmp(s->score, "logit") && strcmp(s->score, "prob"))
        return sm_err_set(err, "score '%s': logit or prob", s->score);
    if (!(j->store = sm_explain_store_open(s->out, err)))
        return -1;
    j->maps_total = (uint64_t)j->count * nm;
    j->started = (double)time(NULL);
    write_jobinfo(j, 0, BJOB_RUNNING);
    return 0;
}

bjob *bjob_new(sm_broker *b, const char *id, const void *body, size_t len,
               int resume, sm_err *err)
{
    bjob *j = calloc(1, sizeof *j);
    if (!j || !(j->body = malloc(len ? len : 1)) || !(j->id = strdup(id))) {
        if (j)
            free(j->body);
        free(j);
        sm_err_set(err, "out of memory");
        return NULL;
    }
    memcpy(j->body, body, len);
    j->body_len = len;
    j->t0 = j->last_event = b->now;
    if (sm_msg_decode_job(j->body, len, &b->limits, &j->doc, &j->spec, err) ||
        setup(b, j, err)) {
        if (!resume) {
            sm_broker_info(b, "a job refused: %s", err->msg);
            bjob_free(&j);
            return NULL;
        }
        j->state = BJOB_FAILED;
        j->error = strdup(err->msg);
        return j;
    }
    j->state = BJOB_RUNNING;
    return j;
}

bjob *bjob_find(sm_broker *b, const char *id)
{
    for (bjob *j = b->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

void bjob_append(sm_broker *b, bjob *j)
{
    bjob **p = &b->jobs;
    while (*p)
        p = &(*p)->next;
    *p = j;
}

int bjob_ended(const bjob *j)
{
    return j->state == BJOB_DONE || j->state == BJOB_FAILED ||
           j->state == BJOB_CANCELLED;
}

void bjob_status(const bjob *j, double now, sm_msg_status *st)
{
    memset(st, 0, sizeof *st);
    st->job = j->id;
    st->name = j->spec.name;
    st->state = bjob_state_name(j->state);
    st->out = j->spec.out ? j->spec.out : "";
    st->error = j->error;
    st->images = j->count;
    st->maps_total = j->maps_total;
    st->maps_done = j->maps_done;
    st->maps_failed = j->maps_failed;
    st->maps_found = j->maps_found;
    st->seconds = now - j->t0;
    st->rate = st->seconds > 0 ? (double)j->maps_done / st->seconds : 0;
}

void bjob_set_state(sm_broker *b, bjob *j, bjob_state s, const char *error)
{
    sm_err err;
    j->state = s;
    if (error && !j->error) {
        j->error = strdup(error);
        sm_broker_fault(b, j->id, "failed: %s", error);
    }
    j->dirty = 1;
    if (sm_journal_set(b->journal, j->id, bjob_state_name(s), j->error,
                       j->maps_done, j->maps_failed, &err))
        sm_broker_warn("job %s: %s", j->id, err.msg);
}

/* 1 while a leased task of j is out. */
static int has_leased(const sm_broker *b, const bjob *j)
{
    for (const btask *t = b->leased.head; t; t = t->next)
        if (t->job == j)
            return 1;
    return 0;
}

/* j's final state s, in the journal, job.json and the log. */
static void end_job(sm_broker *b, bjob *j, bjob_state s, const char *error)
{
    bjob_set_state(b, j, s, error);
    write_jobinfo(j, j->finished ? j->finished : (double)time(NULL), j->state);
    sm_broker_info(b, "job %s %s: %llu maps written or found, %llu failed, %.1f s",
                  j->id, bjob_state_name(j->state),
                  (unsigned long long)j->maps_done,
                  (unsigned long long)j->maps_failed, b->now - j->t0);
}

/* From a job's page thread: the loop reaps the job now, not at its next
 * poll timeout (up to 100 ms: a latency of every inline explanation). */
static void wake_loop(void *u)
{
    const sm_broker *b = u;
    uint64_t one = 1;
    ssize_t n = write(b->wake_fd, &one, sizeof one);
    (void)n; /* EAGAIN: the counter is full, a wake is pending already */
}

void bjob_pause(sm_broker *b, bjob *j, const char *why)
{
    if (j->paused_until <= b->now) /* once a pause, not at every retry */
        sm_broker_fault(b, j->id, "%s: %s; the job waits for space (retrying every "
                        "%.0f s)", j->spec.out, why, BJOB_DISK_FULL_WAIT);
    j->paused_until = b->now + BJOB_DISK_FULL_WAIT;
}

void bjob_finish(sm_broker *b, bjob *j, bjob_state s)
{
    sm_err err;
    const char **ids = malloc(sizeof(char *) * (j->count ? j->count : 1));
    int rc = -1;
    if (!ids) {
        sm_err_set(&err, "out of memory");
    } else {
        for (size_t i = 0; i < j->count; i++)
            ids[i] = sm_dataset_id(j->ds, i);
        rc = sm_explain_store_index(j->store, ids, j->count, j->spec.methods,
                                    (int)j->spec.n_methods, &err);
    }
    free(ids);
    if (rc && s == BJOB_DONE && sm_err_disk_full(&err)) {
        /* the maps are safe; the index waits for space (bjob_check_done
         * tries again once the pause is over) */
        bjob_pause(b, j, err.msg);
        return;
    }
    if (rc == 0 && s == BJOB_DONE) {
        /* the pages for people, written in a thread: the job is done
         * when they are (bjobs_reap) */
        sm_output_opts o = {.png = j->spec.png,
                            .scale_job = !strcmp(j->spec.scale, "job"),
                            .on_end = wake_loop, .on_end_u = b};
        /* the report shows the job as it ends: its maps are all in */
        j->finished = (double)time(NULL);
        write_jobinfo(j, j->finished, BJOB_DONE);
        if ((j->finish = sm_output_start(j->spec.out, &o, &err))) {
            sm_broker_info(b, "job %s: maps complete; writing PNGs, figure "
                           "and report", j->id);
            return;
        }
        sm_broker_warn("job %s: %s", j->id, err.msg);
    }
    end_job(b, j, rc ? BJOB_FAILED : s, rc ? err.msg : NULL);
}

void bjobs_reap(sm_broker *b)
{
    for (bjob *j = b->jobs; j; j = j->next) {
        sm_err err;
        if (j->paused_until && j->paused_until <= b->now) { /* a full disk: again */
            j->paused_until = 0;
            bjob_check_done(b, j);
        }
        if (!j->finish || !sm_output_ended(j->finish))
            continue;
        /* the maps are complete: a page that failed is reported, the job
         * is done all the same (`salmap report` writes it again) */
        if (sm_output_join(&j->finish, &err))
            sm_broker_warn("job %s: %s", j->id, err.msg);
        end_job(b, j, BJOB_DONE, NULL);
        /* the pages of a large job took tens of MB in the page thread's
         * arena: hand them back, so that a broker that runs for months
         * holds what its jobs hold, not the peak of the largest report */
        malloc_trim(0);
    }
}

void bjob_check_done(sm_broker *b, bjob *j)
{
    if (j->state != BJOB_RUNNING || j->finish || j->queue.n ||
        j->cursor < j->count || has_leased(b, j) || j->paused_until > b->now)
        return;
    bjob_finish(b, j, BJOB_DONE);
}
