/* The helpers every salmap subcommand (client/cmd_*.c) shares: failure
 * messages, option values, a job as libsalmap-client takes it and the
 * progress display of a job. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client/lib/salmap_client.h"
#include "util/clock.h"
#include "util/progress.h"
#include "explain/jobfile.h"
#include "model/model.h"

int sm_cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "salmap %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

long sm_cli_positive(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v > 0 ? v : -1;
}

int sm_cli_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s && !*end && !errno && isfinite(*v) ? 0 : -1;
}

int sm_cli_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long u = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-')
        return -1; /* strtoull takes "-1" as 2^64-1 */
    *v = u;
    return 0;
}

int sm_cli_split(char *list, const char **out, int cap)
{
    int n = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (n == cap || !*tok)
            return -1;
        out[n++] = tok;
    }
    return n;
}

int sm_cli_bad(const char *cmd, const char *opt, const char *val,
               const char *what)
{
    sm_cli_fail(cmd, "%s must be %s, not '%s'", opt, what, val);
    return 2;
}

int sm_cli_one_folder(const char *cmd, int argc, int optind_)
{
    if (optind_ == argc - 1)
        return 0;
    if (optind_ < argc)
        sm_cli_fail(cmd, "one output folder, not %d arguments (see --help)",
                    argc - optind_);
    else
        sm_cli_fail(cmd, "needs the output folder OUT (see --help)");
    return 2;
}

int sm_cli_threads(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > SM_MODEL_MAX_THREADS ? SM_MODEL_MAX_THREADS
                                                        : (int)cores;
}

int sm_cli_check_out_dir(const char *cmd, const char *opt, const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return sm_cli_fail(cmd, "out of memory");
    const char *dir = dirname(copy);
    int rc = access(dir, W_OK) ? sm_cli_fail(cmd, "%s %s: folder %s is not "
                                            "writable: %s", opt, path, dir,
                                            strerror(errno))
                               : 0;
    free(copy);
    return rc;
}

void sm_cli_progress(const sm_client_status *st, void *u)
{
    sm_cli_progress_state *ps = u;
    int final = strcmp(st->state, "running") && strcmp(st->state, "queued");
    if (!isatty(STDERR_FILENO) && !final && st->seconds - ps->last < 5 &&
        st->seconds >= ps->last)
        return; /* a log line every 5 s at most, and the last */
    ps->last = st->seconds;
    char prefix[SM_CLIENT_ID_MAX + 64];
    snprintf(prefix, sizeof prefix, "salmap: job %s %s", st->job, st->state);
    sm_progress_show(prefix, "maps", st->maps_done + st->maps_failed,
                     st->maps_total, st->rate, final, 1);
}

int sm_cli_client_job(const sm_explain_job *j, sm_client_job *cj, char *target,
                      size_t cap)
{
    *cj = (sm_client_job){
        .model = j->model, .config = j->config, .dataset = j->dataset,
        .methods = j->methods, .n_methods = (size_t)j->n_methods,
        .settings = j->settings, .n_settings = (size_t)j->n_settings,
        .seed = j->seed, .out = j->out, .limit = j->limit,
        .metrics = j->metrics, .no_png = j->no_png,
        .scale = j->scale_job ? "job" : "map",
        .faithfulness_subsets = j->metric.faithfulness_subsets,
        .faithfulness_size = j->metric.faithfulness_size,
        .sensitivity_samples = j->metric.sensitivity_samples,
        .sensitivity_radius = j->metric.sensitivity_radius, .batch = j->batch, .aux_names = j->aux_names,
        .aux_paths = j->aux_paths, .n_aux = (size_t)j->n_aux,
        .score = j->score_prob ? "prob" : "logit"};
    if (j->target == SM_TARGET_INDEX)
        snprintf(target, cap, "%d", j->target_index);
    else
        snprintf(target, cap, "%s", j->target == SM_TARGET_LABEL ? "label" : "predicted");
    cj->target = target;
    return 0;
}
