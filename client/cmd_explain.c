/* salmap explain: saliency maps for a dataset, one process. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "explain/explainer.h"
#include "explain/job.h"

#define MAX_METHODS 32
#define MAX_SETTINGS 64

static const char usage[] =
    "usage: salmap explain --model M.onnx [--config M.yaml] --dataset D\n"
    "                      --methods sal,grad,... --out OUT [options]\n"
    "\n"
    "Computes a saliency map for every image of D with every method and\n"
    "writes OUT/maps/<image id>/<method>.npy (float32 H x W at the model's\n"
    "input size) and OUT/index.csv (id, label, predicted, target, score,\n"
    "method, seconds, evals, deletion_auc, insertion_auc, params, extras).\n"
    "Started again with the same OUT, it skips what is already complete.\n"
    "\n"
    "options:\n"
    "  --model M.onnx       the classifier (docs/ONNX.md)\n"
    "  --config M.yaml      preprocessing and classes (docs/DATA.md); default:\n"
    "                       the model's input size, pixels scaled to [0,1]\n"
    "  --dataset D          ImageFolder, IDX images file or CSV manifest\n"
    "  --methods LIST       comma-separated methods (below)\n"
    "  --out OUT            output folder\n"
    "  --limit N            only the first N images\n"
    "  --seed S             job seed for every random draw (default 0)\n"
    "  --set M.K=V          a method's parameter, e.g. --set intg.steps=100;\n"
    "                       repeatable\n"
    "  --target T           predicted (default), label, or a class index\n"
    "  --score S            logit (default) or prob: what the map explains\n"
    "  --batch N            images per batch (default 64)\n"
    "  --no-metrics         skip deletion / insertion AUC\n"
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

/* Splits a comma list in place into out (at most cap). -1 when too many or
 * an item is empty. */
static int split(char *list, const char **out, int cap)
{
    int n = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (n == cap || !*tok)
            return -1;
        out[n++] = tok;
    }
    return n;
}

int sm_cli_explain(int argc, char **argv)
{
    static const struct option longs[] = {
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
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    sm_explain_job job = {.batch = 64, .metrics = 1, .progress = 1};
    const char *methods[MAX_METHODS], *settings[MAX_SETTINGS];
    char *mlist = NULL;
    int rc = 2, c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'm': job.model = optarg; break;
        case 'c': job.config = optarg; break;
        case 'd': job.dataset = optarg; break;
        case 'o': job.out = optarg; break;
        case 'M':
            free(mlist);
            mlist = strdup(optarg);
            job.n_methods = mlist ? split(mlist, methods, MAX_METHODS) : -1;
            if (job.n_methods < 1) {
                sm_cli_fail("explain", "--methods '%s': expected a comma-"
                            "separated list of methods", optarg);
                goto out;
            }
            job.methods = methods;
            break;
        case 'l':
            if ((v = sm_cli_positive(optarg)) < 0) {
                sm_cli_fail("explain", "--limit must be a positive integer, "
                            "not '%s'", optarg);
                goto out;
            }
            job.limit = (size_t)v;
            break;
        case 's': {
            char *end;
            job.seed = strtoull(optarg, &end, 10);
            if (!*optarg || *end || *optarg == '-') {
                sm_cli_fail("explain", "--seed must be a non-negative integer, "
                            "not '%s'", optarg);
                goto out;
            }
            break;
        }
        case 'S':
            if (job.n_settings == MAX_SETTINGS) {
                sm_cli_fail("explain", "more than %d --set", MAX_SETTINGS);
                goto out;
            }
            settings[job.n_settings++] = optarg;
            job.settings = settings;
            break;
        case 't':
            if (strcmp(optarg, "predicted") == 0) {
                job.target = SM_TARGET_PREDICTED;
            } else if (strcmp(optarg, "label") == 0) {
                job.target = SM_TARGET_LABEL;
            } else {
                char *end;
                long t = strtol(optarg, &end, 10);
                if (!*optarg || *end || t < 0 || t > 1000000) {
                    sm_cli_fail("explain", "--target must be predicted, label "
                                "or a class index, not '%s'", optarg);
                    goto out;
                }
                job.target = SM_TARGET_INDEX;
                job.target_index = (int)t;
            }
            break;
        case 'p':
            if (strcmp(optarg, "logit") && strcmp(optarg, "prob")) {
                sm_cli_fail("explain", "--score must be logit or prob, not "
                            "'%s'", optarg);
                goto out;
            }
            job.score_prob = strcmp(optarg, "prob") == 0;
            break;
        case 'b':
            if ((v = sm_cli_positive(optarg)) < 0 || v > 65536) {
                sm_cli_fail("explain", "--batch must be an integer in 1..65536, "
                            "not '%s'", optarg);
                goto out;
            }
            job.batch = (int)v;
            break;
        case 'n': job.metrics = 0; break;
        case 'h':
            fputs(usage, stdout);
            list_methods(stdout);
            rc = 0;
            goto out;
        default:
            fputs(usage, stderr);
            goto out;
        }
    }
    if (optind < argc) {
        sm_cli_fail("explain", "unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!job.model || !job.dataset || !job.out || job.n_methods < 1) {
        sm_cli_fail("explain", "needs --model, --dataset, --methods and --out "
                    "(see --help)");
        goto out;
    }
    sm_err err = {{0}};
    sm_explain_stats st;
    if (sm_explain_job_run(&job, &st, &err)) {
        rc = sm_cli_fail("explain", "%s", err.msg);
        goto out;
    }
    printf("salmap explain: %zu maps written, %zu already there, %zu images "
           "skipped, %.1f s; maps in %s/maps, index in %s/index.csv\n",
           st.maps_written, st.maps_skipped, st.images_failed, st.seconds,
           job.out, job.out);
    rc = st.images_failed ? 3 : 0;
out:
    free(mlist);
    return rc;
}
