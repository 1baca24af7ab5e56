/* salmap explain: saliency maps for a dataset, one process. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/embedded.h"
#include "cli.h"
#include "explain/abele_aae.h"
#include "client/lib/salmap_client.h"
#include "explain/explainer.h"
#include "explain/job.h"
#include "explain/jobfile.h"
#include "report/finish.h"

#define MAX_METHODS 32
#define MAX_SETTINGS 64

static const char usage[] =
    "usage: salmap explain --model M.onnx [--config M.yaml] --dataset D\n"
    "                      --methods sal,grad,... --out OUT [options]\n"
    "       salmap explain JOB.yaml [options]   (or --job JOB.yaml)\n"
    "\n"
    "Computes a saliency map for every image of D with every method and\n"
    "writes OUT/maps/<image id>/<method>.npy (float32 H x W at the model's\n"
    "input size) and OUT/index.csv (id, label, predicted, target, score,\n"
    "method, seconds, evals, deletion_auc, insertion_auc, faithfulness,\n"
    "sparseness, complexity, sensitivity, precision, coverage, fidelity,\n"
    "rule_length, relevance, params, extras) and OUT/summary.csv.\n"
    "When the maps are complete it writes their PNGs, OUT/figure.png and\n"
    "OUT/report/index.html (docs/OUTPUTS.md).\n"
    "Started again with the same OUT, it skips what is already complete.\n"
    "It runs the pipeline of salmap-broker and salmap-worker in this\n"
    "process (docs/PIPELINE.md): the same maps as a distributed run.\n"
    "\n"
    "options:\n"
    "  --job JOB.yaml       the run described in a file (docs/EXPLAIN.md);\n"
    "                       options given with it override its values and\n"
    "                       --set entries come after its params\n"
    "  --model M.onnx       the classifier (docs/ONNX.md)\n"
    "  --config M.yaml      preprocessing and classes (docs/DATA.md); default:\n"
    "                       the model's input size, pixels scaled to [0,1]\n"
    "  --dataset D          ImageFolder, IDX images file or CSV manifest\n"
    "  --methods LIST       comma-separated methods (below)\n"
    "  --out OUT            output folder\n"
    "  --limit N            only the first N images\n"
    "  --seed S             job seed for every random draw (default 0)\n"
    "  --set M.K=V          a method's parameter, e.g. --set intg.steps=100;\n"
    "                       repeatable. --set metrics.K=V sets a metric's:\n"
    "                       faithfulness_subsets (100), faithfulness_size\n"
    "                       (0: the width), sensitivity_samples (0: off),\n"
    "                       sensitivity_radius (0.02 of the input's range)\n"
    "  --aux NAME=M.onnx    an auxiliary model a method uses, by name\n"
    "                       (a job file's models:); repeatable\n"
    "  --target T           predicted (default), label, or a class index\n"
    "  --score S            logit (default) or prob: what the map explains\n"
    "  --batch N            images per batch (default 64)\n"
    "  --no-metrics         skip every metric (deletion / insertion AUC,\n"
    "                       faithfulness, sparseness, complexity, sensitivity)\n"
    "  --no-png             no PNGs of the maps (the figure and the report\n"
    "                       are written all the same)\n"
    "  --scale map|job      the PNGs' colour scales: each map its own\n"
    "                       (default) or one a method across the job\n"
    "  --workers N          worker threads (default 1; the cores are shared\n"
    "                       out among them)\n"
    "  --direct             one plain loop instead of the pipeline (the\n"
    "                       benchmarks' baseline; same maps)\n"
    "  --help               this text\n";

static void list_methods(FILE *f)
{
    fprintf(f, "\nmethods:\n");
    for (const sm_explainer_class *const *c = sm_explainer_all(); *c; c++) {
        fprintf(f, "  %-11s %s\n", (*c)->name, (*c)->summary);
        for (const sm_param_def *d = (*c)->params; d && d->name; d++)
            fprintf(f, "      %s.%s = %s   %s\n", (*c)->name, d->name, d->def,
                    d->help ? d->help : "");
    }
}

/* The job's auxiliary models: the job file's, then --aux NAME=PATH ones
 * (a name given again takes the later path). */
typedef struct aux_list {
    const char *names[SM_EXPLAIN_MAX_AUX], *paths[SM_EXPLAIN_MAX_AUX];
    char *owned[SM_EXPLAIN_MAX_AUX]; /* --aux texts, cut at '=' */
    int n, n_owned;
} aux_list;

static int aux_add(aux_list *a, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || !eq[1])
        return sm_cli_fail("explain", "--aux '%s': expected NAME=M.onnx", arg);
    if (a->n_owned == SM_EXPLAIN_MAX_AUX)
        return sm_cli_fail("explain", "more than %d --aux", SM_EXPLAIN_MAX_AUX);
    char *s = strdup(arg);
    if (!s)
        return sm_cli_fail("explain", "out of memory");
    a->owned[a->n_owned++] = s;
    s[eq - arg] = '\0';
    if (!sm_name_valid(s, SM_EXPLAIN_AUX_NAME))
        return sm_cli_fail("explain", "--aux '%s': a name is 1 to %d of a-z, "
                           "0-9 and _", arg, SM_EXPLAIN_AUX_NAME);
    int k = 0;
    while (k < a->n && strcmp(a->names[k], s))
        k++;
    if (k == SM_EXPLAIN_MAX_AUX)
        return sm_cli_fail("explain", "more than %d auxiliary models",
                           SM_EXPLAIN_MAX_AUX);
    a->names[k] = s;
    a->paths[k] = s + (eq - arg) + 1;
    a->n += k == a->n;
    return 0;
}

/* --OPT VALUE for a job field, by the job file's rules. */
static int set_field(sm_explain_job *job, const char *opt, const char *value)
{
    sm_err err = {0};
    if (sm_jobfile_set_field(job, opt, value, &err) == 0)
        return 0;
    sm_cli_fail("explain", "--%s %s", opt, err.msg);
    return -1;
}

/* --set metrics.KEY=VALUE: a metric parameter, by the job file's rules. */
static int set_metric(sm_explain_job *job, const char *arg)
{
    char key[96];
    const char *eq = strchr(arg, '=');
    sm_err err = {0};
    if (!eq || (size_t)(eq - arg) >= sizeof key) {
        sm_cli_fail("explain", "--set '%s': expected metrics.KEY=VALUE", arg);
        return -1;
    }
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = '\0';
    if (sm_jobfile_set_field(job, key, eq + 1, &err) == 0)
        return 0;
    sm_cli_fail("explain", "--set %s: %s", arg, err.msg);
    return -1;
}

/* The job file's settings for the methods in job (all of them unless
 * --methods replaced the file's list), then the command line's --set
 * entries, which thus win. NULL when out of memory. */
static const char **merge_settings(const sm_explain_job *file,
                                   const sm_explain_job *job,
                                   const char *const *cli, int n_cli, int *n)
{
    const char **all = malloc(((size_t)file->n_settings + (size_t)n_cli + 1) *
                              sizeof *all);
    if (!all)
        return NULL;
    *n = 0;
    for (int i = 0; i < file->n_settings; i++) {
        const char *s = file->settings[i];
        size_t len = strcspn(s, ".");
        for (int m = 0; m < job->n_methods; m++)
            if (strlen(job->methods[m]) == len &&
                strncmp(job->methods[m], s, len) == 0) {
                all[(*n)++] = s;
                break;
            }
    }
    for (int i = 0; i < n_cli; i++)
        all[(*n)++] = cli[i];
    return all;
}

/* The job through sm_explain_job_run, one loop. */
static int run_direct(const sm_explain_job *job)
{
    sm_explain_stats st;
    sm_err err;
    if (sm_explain_job_run(job, &st, &err))
        return sm_cli_fail("explain", "%s", err.msg);
    /* the pipeline's broker does the same when a job's maps are complete */
    sm_output_opts o = {.png = !job->no_png, .scale_job = job->scale_job};
    if (sm_output_finish(job->out, &o, &err))
        fprintf(stderr, "salmap explain: %s\n", err.msg);
    printf("salmap explain: %zu maps written, %zu already there, %zu images "
           "skipped, %.1f s; maps in %s/maps, index in %s/index.csv\n",
           st.maps_written, st.maps_skipped, st.images_failed, st.seconds,
           job->out, job->out);
    return st.images_failed ? 3 : 0;
}

/* The job through a broker and `workers` workers in this process. */
static int run_pipeline(const sm_explain_job *job, int workers)
{
    sm_err err;
    sm_embedded *e = sm_embedded_new(workers, 0, &err);
    if (!e)
        return sm_cli_fail("explain", "%s", err.msg);
    sm_client *c = sm_client_new_ctx(sm_embedded_ctx(e), sm_embedded_endpoint(e));
    sm_client_job cj;
    sm_client_status st;
    sm_cli_progress_state ps = {-1e9};
    char target[32], id[SM_CLIENT_ID_MAX];
    int rc = 1;
    sm_cli_client_job(job, &cj, target, sizeof target);
    if (!c) {
        sm_cli_fail("explain", "out of memory");
    } else if (sm_client_submit(c, &cj, id) ||
               sm_client_wait(c, id, job->progress ? sm_cli_progress : NULL,
                              &ps, &st)) {
        sm_cli_fail("explain", "%s", sm_client_error(c));
    } else if (strcmp(st.state, "done")) {
        sm_cli_fail("explain", "job %s", st.error[0] ? st.error : st.state);
    } else {
        printf("salmap explain: %llu maps written, %llu already there, %llu "
               "failed, %.1f s; maps in %s/maps, index in %s/index.csv\n",
               (unsigned long long)(st.maps_done - st.maps_found),
               (unsigned long long)st.maps_found,
               (unsigned long long)st.maps_failed, st.seconds, job->out, job->out);
        rc = st.maps_failed ? 3 : 0;
    }
    sm_client_destroy(&c);
    sm_embedded_destroy(&e);
    return rc;
}

int sm_cli_explain(int argc, char **argv)
{
    static const struct option longs[] = {
        {"job", required_argument, 0, 'j'},
        {"model", required_argument, 0, 'm'},
        {"config", required_argument, 0, 'c'},
        {"dataset", required_argument, 0, 'd'},
        {"methods", required_argument, 0, 'M'},
        {"out", required_argument, 0, 'o'},
        {"limit", required_argument, 0, 'l'},
        {"seed", required_argument, 0, 's'},
        {"set", required_argument, 0, 'S'},
        {"target", required_argument, 0, 't'},
        {"score", required_argument, 0, 'p'},
        {"batch", required_argument, 0, 'b'},
        {"no-metrics", no_argument, 0, 'n'},
        {"no-png", no_argument, 0, 'P'},
        {"scale", required_argument, 0, 'C'},
        {"workers", required_argument, 0, 'w'},
        {"aux", required_argument, 0, 'a'},
        {"direct", no_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    sm_explain_job job;
    const char *methods[MAX_METHODS], *settings[MAX_SETTINGS];
    const char *job_path = NULL, **all_settings = NULL;
    sm_jobfile *jf = NULL;
    char *mlist = NULL;
    int rc = 2, c, n_settings = 0, workers = 1, direct = 0;
    sm_err err = {0};
    aux_list aux = {0};
    static sm_abele_aux abele; /* large; the command runs once */
    /* Two passes: the job file first, then every other option over it, so
     * that the command line wins wherever it is written. */
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (c == 'j') {
            job_path = optarg;
        } else if (c == 'h') {
            fputs(usage, stdout);
            list_methods(stdout);
            rc = 0;
            goto out;
        } else if (c == '?' || c == ':') {
            fputs(usage, stderr);
            goto out;
        }
    }
    if (!job_path && optind == argc - 1)
        job_path = argv[optind]; /* salmap explain JOB.yaml */
    if (job_path && sm_jobfile_load(job_path, &jf, &err)) {
        rc = sm_cli_fail("explain", "%s", err.msg);
        goto out;
    }
    if (jf)
        job = *sm_jobfile_job(jf);
    else
        sm_jobfile_defaults(&job);
    job.settings = NULL; /* merged below */
    job.n_settings = 0;
    for (int k = 0; k < job.n_aux; k++) {
        aux.names[k] = job.aux_names[k];
        aux.paths[k] = job.aux_paths[k];
    }
    aux.n = job.n_aux;
    job.aux_names = aux.names;
    job.aux_paths = aux.paths;
    optind = 0; /* 0, not 1: glibc then rescans from scratch */
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'm': job.model = optarg; break;
        case 'c': job.config = optarg; break;
        case 'd': job.dataset = optarg; break;
        case 'o': job.out = optarg; break;
        case 'M':
            free(mlist);
            mlist = strdup(optarg);
            job.n_methods = mlist ? sm_cli_split(mlist, methods, MAX_METHODS) : -1;
            if (job.n_methods < 1) {
                sm_cli_fail("explain", "--methods '%s': expected a comma-"
                            "separated list of methods", optarg);
                goto out;
            }
            job.methods = methods;
            break;
        case 'l': if (set_field(&job, "limit", optarg)) goto out; break;
        case 's': if (set_field(&job, "seed", optarg)) goto out; break;
        case 't': if (set_field(&job, "target", optarg)) goto out; break;
        case 'p': if (set_field(&job, "score", optarg)) goto out; break;
        case 'b': if (set_field(&job, "batch", optarg)) goto out; break;
        case 'S':
            if (strncmp(optarg, "metrics.", 8) == 0) {
                if (set_metric(&job, optarg))
                    goto out;
                break;
            }
            if (n_settings == MAX_SETTINGS) {
                sm_cli_fail("explain", "more than %d --set", MAX_SETTINGS);
                goto out;
            }
            settings[n_settings++] = optarg;
            break;
        case 'n': job.metrics = 0; break;
        case 'P': job.no_png = 1; break;
        case 'C': if (set_field(&job, "scale", optarg)) goto out; break;
        case 'a':
            if (aux_add(&aux, optarg))
                goto out;
            job.n_aux = aux.n;
            break;
        case 'D': direct = 1; break;
        case 'w': {
            long n = sm_cli_positive(optarg);
            if (n < 1 || n > 256) {
                sm_cli_fail("explain", "--workers '%s': a count from 1 to 256", optarg);
                goto out;
            }
            workers = (int)n;
            break;
        }
        default: break; /* --job, done above */
        }
    }
    if (optind < argc && !(optind == argc - 1 && job_path == argv[optind])) {
        sm_cli_fail("explain", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!job.model || !job.dataset || !job.out || job.n_methods < 1) {
        sm_cli_fail("explain", "needs --model, --dataset, --methods and --out "
                    "(or --job FILE; see --help)");
        goto out;
    }
    sm_explain_job none = {0};
    if (!(all_settings = merge_settings(jf ? sm_jobfile_job(jf) : &none, &job,
                                        settings, n_settings,
                                        &job.n_settings))) {
        rc = sm_cli_fail("explain", "out of memory");
        goto out;
    }
    job.settings = all_settings;
    if (sm_abele_job_aux(&job, &abele, &err)) {
        rc = sm_cli_fail("explain", "%s", err.msg);
        goto out;
    }
    rc = direct ? run_direct(&job) : run_pipeline(&job, workers);
out:
    for (int k = 0; k < aux.n_owned; k++)
        free(aux.owned[k]);
    free(all_settings);
    free(mlist);
    sm_jobfile_destroy(&jf);
    return rc;
}
