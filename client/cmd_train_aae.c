/* salmap train-aae: trains the adversarial autoencoder that ABELE explains
 * a classifier with, on a dataset, and writes its three nets and its YAML
 * (docs/TRAINING.md). */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config/aae_config.h"
#include "config/config_model.h"
#include "config/model_config.h"
#include "data/image.h"
#include "train/aae.h"
#include "train/trainer.h"
#include "util/clock.h"

#define CMD "train-aae"

static const char usage[] =
    "usage: salmap train-aae --dataset D --classifier M.onnx [--config M.yaml]\n"
    "                        --latent L --steps S --seed N --out X_aae.yaml\n"
    "                        [--test T] [--batch B] [--lr LR] [--beta1 B1]\n"
    "                        [--shift P] [--noise S] [--threads N]\n"
    "\n"
    "Trains the adversarial autoencoder of ABELE for classifier M on the\n"
    "images of D (pixels scaled to [-1, 1]): a dense encoder and decoder of\n"
    "two hidden layers of 1024 (LeakyReLU 0.2, tanh output) and a\n"
    "discriminator on the latent codes (1024, 512, sigmoid) against the\n"
    "prior N(0, I); loss 0.999 MSE + 0.001 adversarial, Adam. Each step is\n"
    "one discriminator step (B encoded images against B prior draws), then\n"
    "one autoencoder step. Writes X_aae_encoder.onnx, X_aae_decoder.onnx,\n"
    "X_aae_discriminator.onnx and X_aae.yaml beside each other, each\n"
    "atomically. With --test, reports the reconstruction MSE and the\n"
    "agreement: the share of T's images whose reconstruction M labels as it\n"
    "labels the image. The same command on the same machine writes the same\n"
    "bytes. docs/TRAINING.md has the details.\n"
    "\n"
    "options:\n"
    "  --dataset D        training images: an ImageFolder directory, an IDX\n"
    "                     images file or a CSV manifest (docs/DATA.md)\n"
    "  --classifier M     the classifier the autoencoder serves (ONNX); its\n"
    "                     input size is the autoencoder's\n"
    "  --config M.yaml    M's config (default: M with .yaml for .onnx)\n"
    "  --latent L         latent dimensions (MNIST 4, Fashion-MNIST 8)\n"
    "  --steps S          training steps (a positive integer)\n"
    "  --seed N           initial weights, batch order and prior draws\n"
    "                     (0..2^64-1)\n"
    "  --out X_aae.yaml   the autoencoder's YAML; the nets go beside it\n"
    "  --test T           images for the final MSE and agreement\n"
    "  --batch B          images per step (default 256)\n"
    "  --lr LR            Adam's learning rate (default 0.0002)\n"
    "  --beta1 B1         Adam's beta1 in [0, 1) (default 0.5)\n"
    "  --shift P          moves each training image of each batch by a random\n"
    "                     whole number of pixels in -P..P in x and y, filled\n"
    "                     with black, against overfitting (0..8, default 0)\n"
    "  --noise S          denoising: the encoder reads each training value\n"
    "                     plus S times a normal draw, the reconstruction is\n"
    "                     measured against the value ([0, 1], default 0)\n"
    "  --threads N        threads for decoding and training (default: the\n"
    "                     online cores, at most 16); the result depends on it\n"
    "  --help             this text\n";

typedef struct opts {
    const char *dataset, *classifier, *config, *out, *test;
    sm_aae_opts a;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    static const struct option longs[] = {
        {"dataset", required_argument, 0, 'd'},
        {"classifier", required_argument, 0, 'm'},
        {"config", required_argument, 0, 'c'},
        {"latent", required_argument, 0, 'L'},
        {"steps", required_argument, 0, 'S'},
        {"seed", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},
        {"test", required_argument, 0, 't'},
        {"batch", required_argument, 0, 'b'},
        {"lr", required_argument, 0, 'l'},
        {"beta1", required_argument, 0, 'B'},
        {"threads", required_argument, 0, 'j'},
        {"shift", required_argument, 0, 'x'},
        {"noise", required_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    sm_aae_opts_init(&o->a);
    o->a.threads = sm_cli_threads();
    int have_seed = 0;
    long v;
    uint64_t u;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'd': o->dataset = optarg; break;
        case 'm': o->classifier = optarg; break;
        case 'c': o->config = optarg; break;
        case 'o': o->out = optarg; break;
        case 't': o->test = optarg; break;
        case 'L':
            if ((v = sm_cli_positive(optarg)) < 0 || v > SM_AAE_MAX_LATENT)
                return sm_cli_bad(CMD, "--latent", optarg,
                                  "an integer in 1..65536");
            o->a.latent = (int)v;
            break;
        case 'S':
            if ((v = sm_cli_positive(optarg)) < 0 || v > 100000000)
                return sm_cli_bad(CMD, "--steps", optarg, "a positive integer");
            o->a.steps = (int)v;
            break;
        case 'b':
            if ((v = sm_cli_positive(optarg)) < 0 || v > 65536)
                return sm_cli_bad(CMD, "--batch", optarg,
                                  "an integer in 1..65536");
            o->a.batch = (int)v;
            break;
        case 'j':
            if ((v = sm_cli_positive(optarg)) < 0 || v > SM_MODEL_MAX_THREADS)
                return sm_cli_bad(CMD, "--threads", optarg,
                                  "an integer in 1..16");
            o->a.threads = (int)v;
            break;
        case 'x':
            if (sm_cli_u64(optarg, &u) || u > SM_AAE_MAX_SHIFT)
                return sm_cli_bad(CMD, "--shift", optarg,
                                  "an integer in 0..8");
            o->a.shift = (int)u;
            break;
        case 'n':
            if (sm_cli_double(optarg, &o->a.noise) ||
                !(o->a.noise >= 0 && o->a.noise <= 1))
                return sm_cli_bad(CMD, "--noise", optarg, "a number in [0, 1]");
            break;
        case 's':
            if (sm_cli_u64(optarg, &o->a.seed))
                return sm_cli_bad(CMD, "--seed", optarg,
                                  "an integer in 0..2^64-1");
            have_seed = 1;
            break;
        case 'l':
            if (sm_cli_double(optarg, &o->a.lr) || !(o->a.lr > 0))
                return sm_cli_bad(CMD, "--lr", optarg, "a positive number");
            break;
        case 'B':
            if (sm_cli_double(optarg, &o->a.beta1) ||
                !(o->a.beta1 >= 0 && o->a.beta1 < 1))
                return sm_cli_bad(CMD, "--beta1", optarg, "a number in [0, 1)");
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        sm_cli_fail(CMD, "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    const char *missing = !o->dataset ? "--dataset"
                        : !o->classifier ? "--classifier"
                        : !o->a.latent ? "--latent" : !o->a.steps ? "--steps"
                        : !have_seed ? "--seed" : !o->out ? "--out" : NULL;
    if (missing) {
        sm_cli_fail(CMD, "missing %s (see --help)", missing);
        return 2;
    }
    size_t n = strlen(o->out);
    if (n < 6 || strcmp(o->out + n - 5, ".yaml") != 0) {
        sm_cli_fail(CMD, "--out must name a .yaml file (the nets go beside "
                    "it), not '%s'", o->out);
        return 2;
    }
    return -1;
}

/* The running means shown since the last log line. */
typedef struct progress {
    int tty, every;           /* every: steps between log lines */
    double t0, last;          /* training start, last terminal update */
    sm_aae_losses sum;
    int n;
} progress;

static void on_step(progress *pg, int step, int steps, const sm_aae_losses *l)
{
    pg->sum.d_loss += l->d_loss;
    pg->sum.mse += l->mse;
    pg->sum.adv += l->adv;
    pg->n++;
    double t = sm_clock_now();
    int end = step == steps;
    if (pg->tty ? t - pg->last < 0.1 && !end : step % pg->every && !end)
        return;
    pg->last = t;
    double rate = step / (t - pg->t0 > 0 ? t - pg->t0 : 1e-9);
    char left[32];
    fprintf(stderr, "%sstep %d/%d  d_loss %.4f  mse %.4f  adv %.4f  %.2f "
            "steps/s  %s left%s", pg->tty ? "\r\033[K" : "", step, steps,
            pg->sum.d_loss / pg->n, pg->sum.mse / pg->n, pg->sum.adv / pg->n,
            rate, sm_clock_duration((steps - step) / rate, left, sizeof left),
            pg->tty && !end ? "" : "\n");
    fflush(stderr);
    if (!pg->tty || end) {
        memset(&pg->sum, 0, sizeof pg->sum);
        pg->n = 0;
    }
}

static int train(const opts *o, const sm_model_config *cfg,
                 sm_model *classifier, int out)
{
    sm_err err = {0};
    double t0 = sm_clock_now();
    char buf[32];
    /* The autoencoder's pixel space: (pixel * 2/255 - 1) / 1 = [-1, 1]. */
    sm_model_config acfg = *cfg;
    acfg.scale = 2.0f / 255.0f;
    for (int ch = 0; ch < 3; ch++) {
        acfg.mean[ch] = 1.0f;
        acfg.std[ch] = 1.0f;
    }
    acfg.n_classes = 0;
    acfg.classes = NULL;
    sm_train_set *set = sm_train_set_load(o->dataset, &acfg, NULL, 0,
                                          o->a.threads, &err);
    if (!set)
        return sm_cli_fail(CMD, "%s", err.msg);
    sm_train_set *test = NULL;
    if (o->test && !(test = sm_train_set_load(o->test, &acfg, NULL, 0,
                                              o->a.threads, &err))) {
        sm_train_set_destroy(&set);
        return sm_cli_fail(CMD, "%s", err.msg);
    }
    char tests[64] = "";
    if (test)
        snprintf(tests, sizeof tests, " and %zu test images",
                 sm_train_set_count(test));
    fprintf(stderr, "salmap " CMD ": %zu training images%s of %dx%dx%d, "
            "loaded in %.1f s\n", sm_train_set_count(set), tests,
            cfg->channels, cfg->height, cfg->width, sm_clock_now() - t0);
    sm_aae_trainer *tr = sm_aae_trainer_new(&o->a, cfg->channels, cfg->height,
                                            cfg->width, &err);
    if (!tr) {
        sm_train_set_destroy(&set);
        sm_train_set_destroy(&test);
        return sm_cli_fail(CMD, "%s", err.msg);
    }
    fprintf(stderr, "salmap " CMD ": latent %d, %d steps of batches of %d, "
            "adam lr %g beta1 %g, seed %llu, shift %d, noise %g, %d threads\n",
            o->a.latent, o->a.steps, o->a.batch, o->a.lr, o->a.beta1,
            (unsigned long long)o->a.seed, o->a.shift, o->a.noise, o->a.threads);
    progress pg = {.tty = isatty(STDERR_FILENO), .t0 = sm_clock_now(),
                   .every = o->a.steps >= 20 ? o->a.steps / 20 : 1};
    int rc = 0;
    for (int s = 1; s <= o->a.steps && rc == 0; s++) {
        sm_aae_losses l;
        if (sm_aae_trainer_next(tr, set, &l, &err)) {
            if (pg.tty)
                fputc('\n', stderr);
            rc = sm_cli_fail(CMD, "%s", err.msg);
        } else {
            on_step(&pg, s, o->a.steps, &l);
        }
    }
    double train_s = sm_clock_now() - pg.t0;
    sm_aae_config meta = {.classifier = (char *)o->classifier};
    int eval_rc = 0;
    if (rc == 0 && test) {
        sm_preproc pp;
        sm_model_config_preproc(cfg, &pp);
        eval_rc = sm_aae_evaluate(sm_aae_trainer_model(tr, SM_TRAIN_AAE_ENCODER),
                                  sm_aae_trainer_model(tr, SM_TRAIN_AAE_DECODER),
                                  classifier, out, &pp, test, &meta.test.mse,
                                  &meta.test.agreement, &err);
        if (eval_rc)
            sm_cli_fail(CMD, "%s (the autoencoder is written without its test "
                        "figures)", err.msg);
        else {
            meta.has_test = 1;
            meta.test.dataset = (char *)o->test;
        }
    }
    if (rc == 0 && sm_aae_trainer_save(tr, o->out, &meta, &err))
        rc = sm_cli_fail(CMD, "%s", err.msg);
    if (rc == 0)
        fprintf(stderr, "salmap " CMD ": trained in %s (%.1f s, %.2f steps/s); "
                "wrote %s and its encoder, decoder and discriminator\n",
                sm_clock_duration(train_s, buf, sizeof buf), train_s,
                o->a.steps / (train_s > 0 ? train_s : 1e-9), o->out);
    if (rc == 0 && meta.has_test)
        printf("test reconstruction mse: %.6f; agreement: %.4f (%.0f/%zu)\n",
               meta.test.mse, meta.test.agreement,
               meta.test.agreement * (double)sm_train_set_count(test),
               sm_train_set_count(test));
    sm_aae_trainer_destroy(&tr);
    sm_train_set_destroy(&set);
    sm_train_set_destroy(&test);
    return rc ? rc : eval_rc ? 1 : 0;
}

int sm_cli_train_aae(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    sm_err err = {0};
    if (sm_cli_check_out_dir(CMD, "--out", o.out))
        return 1;
    if (sm_aae_opts_check(&o.a, &err))
        return sm_cli_fail(CMD, "%s", err.msg);
    char config[4096];
    if (o.config)
        snprintf(config, sizeof config, "%s", o.config);
    else if (sm_train_config_path(o.classifier, config, sizeof config))
        return sm_cli_fail(CMD, "--classifier %s: path too long", o.classifier);
    if (sm_vips_init(argv[0], &err))
        return sm_cli_fail(CMD, "%s", err.msg);
    /* The classifier and its config are checked before minutes of data
     * loading and training. */
    sm_model_config *cfg = sm_model_config_load(config, &err);
    if (!cfg)
        return sm_cli_fail(CMD, "%s", err.msg);
    sm_model *classifier = sm_model_load_file(o.classifier, &err);
    int out = 0;
    if (!classifier || sm_model_config_bind(cfg, classifier, o.classifier,
                                            &out, &err)) {
        sm_model_destroy(&classifier);
        sm_model_config_destroy(&cfg);
        return sm_cli_fail(CMD, "%s", err.msg);
    }
    sm_model_set_threads(classifier, o.a.threads);
    /* The engine splits each batch over the threads; OpenBLAS stays on one
     * (docs/PERFORMANCE.md), which also keeps its sums in a fixed order. */
    openblas_set_num_threads(1);
    rc = train(&o, cfg, classifier, out);
    sm_model_destroy(&classifier);
    sm_model_config_destroy(&cfg);
    return rc;
}
