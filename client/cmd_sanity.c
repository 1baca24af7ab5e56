/* salmap sanity: the model-randomisation sanity check (Adebayo 2018) of
 * saliency methods on a dataset's first images (explain/sanity.h,
 * docs/METRICS.md). */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config/config_model.h"
#include "data/dataset.h"
#include "explain/settings.h"
#include "explain/sanity.h"
#include "util/clock.h"
#include "util/progress.h"
#include "util/file.h"
#include "util/text.h"

#define MAX_METHODS 32
#define MAX_SETTINGS 64

static const char usage[] =
    "usage: salmap sanity --model M.onnx [--config M.yaml] --dataset D\n"
    "                     --methods sal,grad,... --out OUT [options]\n"
    "\n"
    "The model-randomisation sanity check (Adebayo et al. 2018): the model's\n"
    "learned layers (Conv, Gemm, MatMul, BatchNormalization) are re-drawn at\n"
    "random from the output down, one more at each step, and each method's\n"
    "maps of D's first images (for the class the original model predicts)\n"
    "are computed again and compared with the original maps by Spearman rank\n"
    "correlation, signed and of absolute values. A method whose maps depend\n"
    "on what the model learned decays towards 0. Writes OUT/sanity.csv\n"
    "(method, step, layer, spearman, spearman_sd, spearman_abs,\n"
    "spearman_abs_sd, images) and prints a table; docs/METRICS.md.\n"
    "\n"
    "options:\n"
    "  --model M.onnx    the classifier (docs/ONNX.md)\n"
    "  --config M.yaml   preprocessing and classes (docs/DATA.md); default:\n"
    "                    the model's input size, pixels scaled to [0,1]\n"
    "  --dataset D       ImageFolder, IDX images file or CSV manifest\n"
    "  --methods LIST    comma-separated methods with maps (salmap explain\n"
    "                    --help lists them)\n"
    "  --out OUT         output folder\n"
    "  --limit N         the first N images (default 10)\n"
    "  --seed S          the re-drawn weights and the methods' draws\n"
    "                    (0..2^64-1, default 0)\n"
    "  --set M.K=V       a method's parameter, e.g. --set intg.steps=100;\n"
    "                    repeatable\n"
    "  --threads N       threads for the model (default: the online cores,\n"
    "                    at most 16); the results do not depend on it\n"
    "  --help            this text\n";

typedef struct opts {
    const char *model, *config, *dataset, *out;
    const char *methods[MAX_METHODS], *settings[MAX_SETTINGS];
    char *mlist;
    int n_methods, n_settings, threads;
    long limit;
    uint64_t seed;
} opts;

static int bad(const char *opt, const char *val, const char *what)
{
    return sm_cli_bad("sanity", opt, val, what);
}

/* -1 when the options are good, else the exit code. */
static int parse(int argc, char **argv, opts *o)
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
        {"threads", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    o->limit = 10;
    o->threads = sm_cli_threads();
    optind = 1;
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'c': o->config = optarg; break;
        case 'd': o->dataset = optarg; break;
        case 'o': o->out = optarg; break;
        case 'M':
            free(o->mlist);
            if (!(o->mlist = strdup(optarg)))
                return sm_cli_fail("sanity", "out of memory");
            o->n_methods = sm_cli_split(o->mlist, o->methods, MAX_METHODS);
            if (o->n_methods < 1)
                return bad("--methods", optarg, "a comma-separated list of "
                           "methods");
            break;
        case 'l':
            if ((o->limit = sm_cli_positive(optarg)) < 0)
                return bad("--limit", optarg, "a positive integer");
            break;
        case 's':
            if (sm_cli_u64(optarg, &o->seed))
                return bad("--seed", optarg, "an integer in 0..2^64-1");
            break;
        case 'S':
            if (o->n_settings == MAX_SETTINGS) {
                sm_cli_fail("sanity", "more than %d --set", MAX_SETTINGS);
                return 2;
            }
            o->settings[o->n_settings++] = optarg;
            break;
        case 'j':
            if ((v = sm_cli_positive(optarg)) < 0 || v > SM_MODEL_MAX_THREADS)
                return bad("--threads", optarg, "an integer in 1..16");
            o->threads = (int)v;
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        sm_cli_fail("sanity", "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    const char *missing = !o->model ? "--model" : !o->dataset ? "--dataset"
                        : !o->n_methods ? "--methods" : !o->out ? "--out" : NULL;
    if (missing) {
        sm_cli_fail("sanity", "missing %s (see --help)", missing);
        return 2;
    }
    return -1;
}

/* What a run holds; freed by state_free. */
typedef struct state {
    sm_model *model;
    sm_model_config *cfg;
    sm_dataset *ds;
    sm_explainer *ex[MAX_METHODS];
    sm_sanity_layers *layers;
    sm_tensor *x;
    const char **ids;
    size_t *idx;
    int n_ex;
} state;

static void state_free(state *s)
{
    for (int i = 0; i < s->n_ex; i++)
        sm_explainer_destroy(&s->ex[i]);
    sm_sanity_layers_destroy(&s->layers);
    sm_model_destroy(&s->model);
    sm_model_config_destroy(&s->cfg);
    sm_dataset_destroy(&s->ds);
    sm_tensor_destroy(&s->x);
    free(s->ids);
    free(s->idx);
}

static void skipped(const sm_err *e, void *u)
{
    (void)u;
    fprintf(stderr, "salmap sanity: skipped: %s\n", e->msg);
}

/* The model, its layers, the methods and the first images; the setup
 * into su. 0 or -1 with a message. */
static int setup(const opts *o, state *s, sm_explain_setup *su,
                 sm_preproc *pp, sm_err *err)
{
    int out_idx;
    if (!(s->model = sm_model_load_file(o->model, err)))
        return -1;
    s->cfg = o->config ? sm_model_config_load(o->config, err)
                       : sm_model_config_for_model(s->model, o->model, err);
    if (!s->cfg || sm_model_config_bind(s->cfg, s->model, o->model, &out_idx, err))
        return -1;
    sm_model_config_preproc(s->cfg, pp);
    /* The engine splits batches over the threads; OpenBLAS stays on one
     * (docs/PERFORMANCE.md), which keeps its sums in a fixed order. */
    openblas_set_num_threads(1);
    sm_model_set_threads(s->model, o->threads);
    s->n_ex = o->n_methods;
    if (sm_settings_explainers(o->methods, (size_t)o->n_methods, o->settings,
                               (size_t)o->n_settings, s->ex, err))
        return -1;
    if (!(s->layers = sm_sanity_layers_new(s->model, o->model, err)))
        return -1;
    if (!(s->ds = sm_dataset_open(o->dataset, err)))
        return -1;
    size_t n = sm_dataset_count(s->ds);
    if ((size_t)o->limit < n)
        n = (size_t)o->limit;
    s->x = sm_tensor_new(4, (int64_t[]){(int64_t)(n ? n : 1), pp->channels,
                                        pp->height, pp->width});
    s->ids = malloc(sizeof *s->ids * (n ? n : 1));
    s->idx = malloc(sizeof *s->idx * (n ? n : 1));
    if (!s->x || !s->ids || !s->idx)
        return sm_err_set(err, "out of memory");
    size_t k = sm_dataset_load_range(s->ds, 0, n, pp, s->x->data, o->threads,
                                     s->idx, skipped, NULL);
    if (!k)
        return sm_err_set(err, "%s: no image to explain", o->dataset);
    s->x->shape[0] = (int64_t)k;
    for (size_t r = 0; r < k; r++)
        s->ids[r] = sm_dataset_id(s->ds, s->idx[r]);
    *su = (sm_explain_setup){.model = s->model, .out_idx = out_idx,
                             .output_probs = s->cfg->output_kind == SM_OUTPUT_PROBABILITIES,
                             .seed = o->seed, .target = SM_TARGET_PREDICTED,
                             .preproc = pp};
    return 0;
}

typedef struct progress {
    double t0;
    int open; /* a terminal's progress line waits for its line break */
} progress;

static void on_maps(long done, long total, void *u)
{
    progress *p = u;
    double dt = sm_clock_now() - p->t0;
    p->open = isatty(STDERR_FILENO) && done < total;
    sm_progress_show("salmap sanity", "maps", (uint64_t)done,
                     (uint64_t)total, dt > 0 ? (double)done / dt : 0,
                     done == total, 1);
}

/* OUT/sanity.csv, atomically. */
static int write_csv(const opts *o, const state *s, const sm_sanity_report *r,
                     sm_err *err)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/sanity.csv", o->out) >= (int)sizeof path)
        return sm_err_set(err, "--out %s: path too long", o->out);
    sm_text t = {0};
    int rc = sm_text_addf(&t, "method,step,layer,spearman,spearman_sd,"
                          "spearman_abs,spearman_abs_sd,images\n");
    for (int m = 0; m < r->n_methods && rc == 0; m++)
        for (int k = 0; k < r->n_steps && rc == 0; k++) {
            const sm_sanity_stat *st = &r->stat[m * r->n_steps + k];
            rc = sm_text_csv(&t, o->methods[m]) ||
                 sm_text_addf(&t, ",%d,", k) ||
                 sm_text_csv(&t, k ? sm_sanity_layers_name(s->layers, k - 1) : "") ||
                 sm_text_addf(&t, ",%.6f,%.6f,%.6f,%.6f,%d\n", st->spearman,
                              st->spearman_sd, st->spearman_abs,
                              st->spearman_abs_sd, st->images);
        }
    if (rc)
        rc = sm_err_set(err, "out of memory");
    else
        rc = sm_file_write_atomic(path, t.s, t.len, err);
    sm_text_free(&t);
    return rc;
}

/* The table: a row a step, each method's mean spearman and of |map|. */
static void print_table(const opts *o, const state *s, const sm_sanity_report *r)
{
    printf("%-4s %-16s", "step", "randomised");
    for (int m = 0; m < r->n_methods; m++)
        printf("  %-15.15s", o->methods[m]);
    printf("\n%-4s %-16s", "", "(top down)");
    for (int m = 0; m < r->n_methods; m++)
        printf("  %7s %7s", "rho", "|rho|");
    putchar('\n');
    for (int k = 0; k < r->n_steps; k++) {
        printf("%-4d %-16.16s", k, k ? sm_sanity_layers_name(s->layers, k - 1)
                                     : "(none)");
        for (int m = 0; m < r->n_methods; m++) {
            const sm_sanity_stat *st = &r->stat[m * r->n_steps + k];
            printf("  %+7.3f %+7.3f", st->spearman, st->spearman_abs);
        }
        putchar('\n');
    }
}

int sm_cli_sanity(int argc, char **argv)
{
    opts o = {0};
    int rc = parse(argc, argv, &o);
    if (rc >= 0) {
        free(o.mlist);
        return rc;
    }
    sm_err err = {0};
    state s = {0};
    sm_explain_setup su;
    sm_preproc pp;
    sm_sanity_report *r = NULL;
    progress pg;
    rc = 1;
    /* OUT is made last: a bad run leaves nothing behind. */
    if (sm_vips_init(argv[0], &err) || setup(&o, &s, &su, &pp, &err) ||
        sm_file_mkdirs(o.out, &err)) {
        sm_cli_fail("sanity", "%s", err.msg);
        goto out;
    }
    fprintf(stderr, "salmap sanity: %lld images, %d methods, %d layers "
            "(top first:", (long long)s.x->shape[0], s.n_ex,
            sm_sanity_layers_count(s.layers));
    for (int k = 0; k < sm_sanity_layers_count(s.layers); k++)
        fprintf(stderr, " %s", sm_sanity_layers_name(s.layers, k));
    fprintf(stderr, "), seed %llu, %d threads\n", (unsigned long long)o.seed,
            o.threads);
    pg = (progress){.t0 = sm_clock_now()};
    if (!(r = sm_sanity_run(&su, s.layers, s.ex, s.n_ex, s.x, s.ids, o.seed,
                            on_maps, &pg, &err)) ||
        write_csv(&o, &s, r, &err)) {
        if (pg.open)
            fputc('\n', stderr);
        sm_cli_fail("sanity", "%s", err.msg);
        goto out;
    }
    print_table(&o, &s, r);
    double dt = sm_clock_now() - pg.t0;
    char buf[32];
    fprintf(stderr, "salmap sanity: %ld maps in %s (%.1f s); wrote %s/sanity.csv\n",
            r->maps, sm_clock_duration(dt, buf, sizeof buf), dt, o.out);
    rc = 0;
out:
    sm_sanity_report_destroy(&r);
    state_free(&s);
    free(o.mlist);
    return rc;
}
