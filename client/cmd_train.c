/* salmap train: trains one of salmap's architectures on a labelled dataset
 * and writes the ONNX model and its config (docs/TRAINING.md). */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config/model_config.h"
#include "data/image.h"
#include "train/trainer.h"
#include "util/clock.h"

static const char usage[] =
    "usage: salmap train --dataset D --config C.yaml --arch A --epochs E\n"
    "                    --seed S --out M.onnx [--test T] [--batch B]\n"
    "                    [--optimizer adam|sgd] [--lr LR] [--momentum M]\n"
    "                    [--weight-decay WD] [--schedule constant|cosine]\n"
    "                    [--threads N]\n"
    "\n"
    "Trains a classifier on the labelled images of D with cross-entropy on\n"
    "shuffled mini-batches, then writes the model M.onnx (ONNX opset 13,\n"
    "input `input` N x C x H x W, output `logits`) and its config M.yaml\n"
    "(C's preprocessing, the class names, output logits), each atomically.\n"
    "Everything random comes from the seed: the same command on the same\n"
    "machine writes the same bytes. docs/TRAINING.md has the details.\n"
    "\n"
    "options:\n"
    "  --dataset D       training images: an ImageFolder directory, an IDX\n"
    "                    images file or a CSV manifest (docs/DATA.md); every\n"
    "                    image needs a label\n"
    "  --config C.yaml   input size and preprocessing, and the classes in the\n"
    "                    model's output order (labels are matched by name);\n"
    "                    without classes, D's own classes in D's order\n"
    "  --arch A          lenet (LeNet-5-like), cnn (2 conv layers of 32 and\n"
    "                    64 3x3 filters, fc 128), mlp (fc 128) or linear\n"
    "  --epochs E        passes over D (a positive integer)\n"
    "  --seed S          initial weights and batch order (0..2^64-1)\n"
    "  --out M.onnx      the model; its config goes to M.yaml\n"
    "  --test T          labelled images to report the final accuracy on\n"
    "  --batch B         images per step (default 64)\n"
    "  --optimizer O     adam (default; beta1 0.9, beta2 0.999, eps 1e-8) or\n"
    "                    sgd (with momentum)\n"
    "  --lr LR           learning rate (default 0.001 for adam, 0.05 for sgd)\n"
    "  --momentum M      sgd momentum in [0, 1) (default 0.9)\n"
    "  --weight-decay WD L2 penalty added to the gradients (default 0)\n"
    "  --schedule S      constant (default) or cosine (annealed to 0 over\n"
    "                    the run)\n"
    "  --threads N       threads for decoding and training (default: the\n"
    "                    online cores, at most 16); the result depends on it\n"
    "  --help            this text\n";

typedef struct opts {
    const char *dataset, *config, *out, *test;
    int lr_set;
    sm_train_opts t;
} opts;

static int bad(const char *opt, const char *val, const char *what)
{
    return sm_cli_bad("train", opt, val, what);
}

static int parse(int argc, char **argv, opts *o)
{
    static const struct option longs[] = {
        {"dataset", required_argument, 0, 'd'},
        {"config", required_argument, 0, 'c'},
        {"arch", required_argument, 0, 'a'},
        {"epochs", required_argument, 0, 'e'},
        {"seed", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},
        {"test", required_argument, 0, 't'},
        {"batch", required_argument, 0, 'b'},
        {"optimizer", required_argument, 0, 'O'},
        {"lr", required_argument, 0, 'l'},
        {"momentum", required_argument, 0, 'm'},
        {"weight-decay", required_argument, 0, 'w'},
        {"schedule", required_argument, 0, 'S'},
        {"threads", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    sm_train_opts_init(&o->t);
    o->t.threads = sm_cli_threads();
    int have_seed = 0;
    long v;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'd': o->dataset = optarg; break;
        case 'c': o->config = optarg; break;
        case 'a': o->t.arch = optarg; break;
        case 'o': o->out = optarg; break;
        case 't': o->test = optarg; break;
        case 'e':
            if ((v = sm_cli_positive(optarg)) < 0 || v > 1000000)
                return bad("--epochs", optarg, "a positive integer");
            o->t.epochs = (int)v;
            break;
        case 'b':
            if ((v = sm_cli_positive(optarg)) < 0 || v > 65536)
                return bad("--batch", optarg, "an integer in 1..65536");
            o->t.batch = (int)v;
            break;
        case 'j':
            if ((v = sm_cli_positive(optarg)) < 0 || v > SM_MODEL_MAX_THREADS)
                return bad("--threads", optarg, "an integer in 1..16");
            o->t.threads = (int)v;
            break;
        case 's':
            if (sm_cli_u64(optarg, &o->t.seed))
                return bad("--seed", optarg, "an integer in 0..2^64-1");
            have_seed = 1;
            break;
        case 'O':
            if (strcmp(optarg, "adam") == 0)
                o->t.optimizer = SM_TRAIN_ADAM;
            else if (strcmp(optarg, "sgd") == 0)
                o->t.optimizer = SM_TRAIN_SGD;
            else
                return bad("--optimizer", optarg, "adam or sgd");
            break;
        case 'S':
            if (strcmp(optarg, "constant") == 0)
                o->t.schedule = SM_TRAIN_CONSTANT;
            else if (strcmp(optarg, "cosine") == 0)
                o->t.schedule = SM_TRAIN_COSINE;
            else
                return bad("--schedule", optarg, "constant or cosine");
            break;
        case 'l':
            if (sm_cli_double(optarg, &o->t.lr) || !(o->t.lr > 0))
                return bad("--lr", optarg, "a positive number");
            o->lr_set = 1;
            break;
        case 'm':
            if (sm_cli_double(optarg, &o->t.momentum) ||
                !(o->t.momentum >= 0 && o->t.momentum < 1))
                return bad("--momentum", optarg, "a number in [0, 1)");
            break;
        case 'w':
            if (sm_cli_double(optarg, &o->t.weight_decay) ||
                !(o->t.weight_decay >= 0))
                return bad("--weight-decay", optarg, "a number >= 0");
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        sm_cli_fail("train", "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    const char *missing = !o->dataset ? "--dataset" : !o->config ? "--config"
                        : !o->t.arch  ? "--arch"    : !o->t.epochs ? "--epochs"
                        : !have_seed  ? "--seed"    : !o->out ? "--out" : NULL;
    if (missing) {
        sm_cli_fail("train", "missing %s (see --help)", missing);
        return 2;
    }
    if (!o->lr_set)
        o->t.lr = sm_train_default_lr(o->t.optimizer);
    if (o->t.optimizer != SM_TRAIN_SGD && o->t.momentum != 0.9)
        fprintf(stderr, "salmap train: note: --momentum applies to sgd only\n");
    return -1;
}

typedef struct progress {
    int tty;
    double t0, last;          /* training start, last terminal update */
    size_t per_epoch;
} progress;

/* The estimated time left of the whole run, from the images done so far. */
static double time_left(const progress *pg, const sm_train_progress *p,
                        double t)
{
    double done = (double)(p->epoch - 1) * (double)pg->per_epoch + (double)p->seen;
    double all = (double)p->epochs * (double)pg->per_epoch;
    return done > 0 ? (t - pg->t0) / done * (all - done) : 0;
}

static void on_step(const sm_train_progress *p, void *ctx)
{
    progress *pg = ctx;
    double t = sm_clock_now();
    if (!pg->tty || (t - pg->last < 0.1 && p->seen < p->total))
        return;
    pg->last = t;
    char left[32];
    fprintf(stderr, "\r\033[Kepoch %d/%d %5.1f%%  loss %.4f  accuracy %.4f  "
            "%.0f images/s  %s left", p->epoch, p->epochs,
            100.0 * (double)p->seen / (double)p->total, p->loss, p->accuracy,
            ((double)(p->epoch - 1) * (double)pg->per_epoch + (double)p->seen) /
                (t - pg->t0 > 0 ? t - pg->t0 : 1e-9),
            sm_clock_duration(time_left(pg, p, t), left, sizeof left));
    fflush(stderr);
}

static int train(const opts *o, const sm_model_config *cfg)
{
    sm_err err = {0};
    double t0 = sm_clock_now();
    char yaml[4096], buf[32];
    if (sm_train_config_path(o->out, yaml, sizeof yaml))
        return sm_cli_fail("train", "--out %s: path too long", o->out);
    sm_train_set *set = sm_train_set_load(o->dataset, cfg, NULL, 0,
                                          o->t.threads, &err);
    if (!set)
        return sm_cli_fail("train", "%s", err.msg);
    sm_train_set *test = NULL;
    if (o->test && !(test = sm_train_set_load(o->test, cfg,
                                              sm_train_set_classes(set),
                                              sm_train_set_n_classes(set),
                                              o->t.threads, &err))) {
        sm_train_set_destroy(&set);
        return sm_cli_fail("train", "%s", err.msg);
    }
    char tests[64] = "";
    if (test)
        snprintf(tests, sizeof tests, " and %zu test images",
                 sm_train_set_count(test));
    fprintf(stderr, "salmap train: %zu training images%s, %d classes, loaded "
            "in %.1f s\n", sm_train_set_count(set), tests,
            sm_train_set_n_classes(set), sm_clock_now() - t0);
    sm_trainer *tr = sm_trainer_new(&o->t, cfg->channels, cfg->height,
                                    cfg->width, sm_train_set_n_classes(set),
                                    &err);
    if (!tr) {
        sm_train_set_destroy(&set);
        sm_train_set_destroy(&test);
        return sm_cli_fail("train", "%s", err.msg);
    }
    fprintf(stderr, "salmap train: %s, %d epochs of batches of %d, %s lr %g%s, "
            "seed %llu, %d threads\n", o->t.arch, o->t.epochs, o->t.batch,
            o->t.optimizer == SM_TRAIN_ADAM ? "adam" : "sgd", o->t.lr,
            o->t.schedule == SM_TRAIN_COSINE ? " (cosine)" : "",
            (unsigned long long)o->t.seed, o->t.threads);
    progress pg = {.tty = isatty(STDERR_FILENO), .t0 = sm_clock_now(),
                   .per_epoch = sm_train_set_count(set)};
    int rc = 0;
    for (int e = 0; e < o->t.epochs && rc == 0; e++) {
        double loss, acc, te = sm_clock_now();
        if (sm_trainer_epoch(tr, set, on_step, &pg, &loss, &acc, &err)) {
            if (pg.tty)
                fputc('\n', stderr);
            rc = sm_cli_fail("train", "%s", err.msg);
            break;
        }
        double t = sm_clock_now();
        sm_train_progress end = {.epoch = e + 1, .epochs = o->t.epochs,
                                 .seen = pg.per_epoch, .total = pg.per_epoch};
        fprintf(stderr, "%sepoch %d/%d: loss %.4f, accuracy %.4f, %.1f s, "
                "%s left\n", pg.tty ? "\r\033[K" : "", e + 1, o->t.epochs, loss,
                acc, t - te, sm_clock_duration(time_left(&pg, &end, t), buf, sizeof buf));
    }
    double train_s = sm_clock_now() - pg.t0;
    if (rc == 0 && sm_trainer_save(tr, o->out, cfg, sm_train_set_classes(set),
                                   &err))
        rc = sm_cli_fail("train", "%s", err.msg);
    if (rc == 0)
        fprintf(stderr, "salmap train: trained in %s (%.1f s); wrote %s and "
                "%s\n", sm_clock_duration(train_s, buf, sizeof buf), train_s, o->out,
                yaml);
    if (rc == 0 && test) {
        double loss, acc;
        if (sm_trainer_evaluate(tr, test, &loss, &acc, &err))
            rc = sm_cli_fail("train", "%s", err.msg);
        else
            printf("test accuracy: %.4f (%.0f/%zu), loss %.4f\n", acc,
                   acc * (double)sm_train_set_count(test),
                   sm_train_set_count(test), loss);
    }
    sm_trainer_destroy(&tr);
    sm_train_set_destroy(&set);
    sm_train_set_destroy(&test);
    return rc;
}

int sm_cli_train(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    sm_err err = {0};
    if (sm_cli_check_out_dir("train", "--out", o.out))
        return 1;
    /* Options the trainer refuses (an unknown arch, say) fail before the
     * data is read. */
    if (sm_train_opts_check(&o.t, &err))
        return sm_cli_fail("train", "%s", err.msg);
    if (sm_vips_init(argv[0], &err))
        return sm_cli_fail("train", "%s", err.msg);
    sm_model_config *cfg = sm_model_config_load(o.config, &err);
    if (!cfg)
        return sm_cli_fail("train", "%s", err.msg);
    sm_train_net *probe = sm_train_net_new(o.t.arch, cfg->channels, cfg->height, cfg->width,
                             cfg->n_classes ? cfg->n_classes : 2, 0, &err);
    if (!probe) {
        sm_model_config_destroy(&cfg);
        return sm_cli_fail("train", "%s: %s", o.config, err.msg);
    }
    sm_train_net_destroy(&probe);
    /* The engine splits each batch over the threads; OpenBLAS stays on one
     * (docs/PERFORMANCE.md), which also keeps its sums in a fixed order. */
    openblas_set_num_threads(1);
    rc = train(&o, cfg);
    sm_model_config_destroy(&cfg);
    return rc;
}
