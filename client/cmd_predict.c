/* salmap predict: a model's predictions on a dataset (accuracy and a CSV of
 * id,label,predicted,probability), or its raw outputs on a preprocessed
 * .npy array. */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config/config_model.h"
#include "data/dataset.h"
#include "io/npy.h"
#include "model/model.h"
#include "model/score.h"
#include "util/file.h"
#include "util/text.h"
#include "util/clock.h"

static const char usage[] =
    "usage: salmap predict --model M.onnx [--config M.yaml] --dataset D\n"
    "                      [--out preds.csv] [--batch N]\n"
    "       salmap predict --model M.onnx --input X.npy --out Y.npy [--batch N]\n"
    "\n"
    "With --dataset: classifies every image of D and prints the accuracy when\n"
    "D has labels. D is an ImageFolder directory (D/<class>/<image>), an IDX\n"
    "images file (labels from the sibling labels-idx1 file) or a CSV manifest\n"
    "(path,label). Writes id,label,predicted,probability per image to --out\n"
    "(or stdout), where probability is the softmax of the model's output for\n"
    "the predicted class. An image that cannot be read is reported and\n"
    "skipped; the exit status is then 3.\n"
    "\n"
    "With --input: X.npy holds already preprocessed float32 N x C x H x W\n"
    "input; Y.npy receives the model's raw output (float32 N x K).\n"
    "\n"
    "options:\n"
    "  --model M.onnx   the classifier (ONNX, float32, supported operators:\n"
    "                   docs/ONNX.md)\n"
    "  --config M.yaml  preprocessing, class names and which output to read\n"
    "                   (docs/DATA.md); default: the model's input size, pixels\n"
    "                   scaled to [0,1], its first output as logits\n"
    "  --dataset D      images to classify\n"
    "  --input X.npy    preprocessed input array instead of a dataset\n"
    "  --out FILE       predictions CSV (--dataset) or outputs .npy (--input)\n"
    "  --batch N        images per model evaluation (default 256)\n"
    "  --help           this text\n";

typedef struct opts {
    const char *model, *config, *dataset, *input, *out;
    long batch;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    static const struct option longs[] = {
        {"model", required_argument, 0, 'm'},
        {"config", required_argument, 0, 'c'},
        {"dataset", required_argument, 0, 'd'},
        {"input", required_argument, 0, 'i'},
        {"out", required_argument, 0, 'o'},
        {"batch", required_argument, 0, 'b'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->batch = 256;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'c': o->config = optarg; break;
        case 'd': o->dataset = optarg; break;
        case 'i': o->input = optarg; break;
        case 'o': o->out = optarg; break;
        case 'b':
            if ((o->batch = sm_cli_positive(optarg)) < 0) {
                sm_cli_fail("predict", "--batch must be a positive integer, "
                            "not '%s'", optarg);
                return 2;
            }
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind < argc) {
        sm_cli_fail("predict", "unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (!o->model || (!o->dataset == !o->input)) {
        sm_cli_fail("predict", "needs --model and exactly one of --dataset "
                    "or --input (see --help)");
        return 2;
    }
    if (o->input && !o->out) {
        sm_cli_fail("predict", "--input needs --out Y.npy");
        return 2;
    }
    return -1;
}

/* Raw outputs for a preprocessed .npy array, read and evaluated a batch
 * at a time: memory follows the batch, not the array. */
static int predict_npy(sm_model *m, const opts *o)
{
    sm_err err = {0};
    sm_npy_reader *r = sm_npy_reader_open(o->input, &err);
    if (!r)
        return sm_cli_fail("predict", "%s", err.msg);
    int64_t xs[SM_MAX_DIMS], decl[SM_MAX_DIMS];
    int xnd = sm_npy_reader_shape(r, xs);
    int nd = sm_model_input_shape(m, 0, decl);
    int ok = xnd == nd && nd >= 1;
    for (int d = 1; ok && d < nd; d++)
        ok = decl[d] < 0 || decl[d] == xs[d];
    if (!ok) {
        /* room for SM_MAX_DIMS int64s: "[", ", " and 20 digits a dim, "]" */
        char a[SM_MAX_DIMS * 22 + 3], b[SM_MAX_DIMS * 22 + 3];
        sm_cli_fail("predict", "%s: shape %s does not fit the model's input "
                    "%s", o->input, sm_shape_str(xnd, xs, a, sizeof a),
                    sm_shape_str(nd, decl, b, sizeof b));
        sm_npy_reader_destroy(&r);
        return 1;
    }
    int64_t n = xs[0], per = sm_shape_numel(nd - 1, xs + 1);
    float *x = malloc((size_t)(o->batch * per) * sizeof(float));
    sm_tensor *y = NULL;
    int rc = x ? 0 : sm_cli_fail("predict", "out of memory");
    for (int64_t i = 0; i < n && rc == 0; i += o->batch) {
        int64_t nb = n - i < o->batch ? n - i : o->batch;
        const sm_tensor *out = NULL;
        if (sm_npy_reader_next(r, x, nb, &err) ||
            !(out = sm_model_forward(m, x, nb, &err))) {
            rc = sm_cli_fail("predict", "%s", err.msg);
            break;
        }
        int64_t k = sm_tensor_numel(out) / nb;
        if (!y) {
            int64_t shape[SM_MAX_DIMS];
            memcpy(shape, out->shape, sizeof shape);
            shape[0] = n;
            y = sm_tensor_new(out->ndim, shape);
            if (!y) {
                rc = sm_cli_fail("predict", "out of memory");
                break;
            }
        }
        memcpy(y->data + i * k, out->data, (size_t)(nb * k) * sizeof(float));
    }
    if (rc == 0 && y && sm_npy_write(o->out, y, &err))
        rc = sm_cli_fail("predict", "%s", err.msg);
    if (rc == 0)
        fprintf(stderr, "salmap predict: %lld outputs written to %s\n",
                (long long)n, o->out);
    sm_npy_reader_destroy(&r);
    free(x);
    sm_tensor_destroy(&y);
    return rc;
}

/* The predicted class and its softmax probability (or the output itself
 * when the model already outputs probabilities). */
static int argmax_prob(const float *row, int64_t k, int logits, float *prob)
{
    int best = (int)sm_model_argmax_row(row, k);
    if (!logits) {
        *prob = row[best];
        return best;
    }
    double s = 0;
    for (int64_t j = 0; j < k; j++)
        s += exp((double)row[j] - row[best]);
    *prob = (float)(1.0 / s);
    return best;
}

static void skipped(const sm_err *e, void *u)
{
    fprintf(stderr, "salmap predict: skipped: %s\n", e->msg);
    ++*(size_t *)u;
}

static int predict_dataset(sm_model *m, const sm_model_config *cfg,
                           int out_idx, const opts *o)
{
    sm_err err = {0};
    sm_preproc pre;
    sm_model_config_preproc(cfg, &pre);
    const sm_preproc *pp = &pre;
    sm_dataset *ds = sm_dataset_open(o->dataset, &err);
    if (!ds)
        return sm_cli_fail("predict", "%s", err.msg);
    size_t n = sm_dataset_count(ds);
    size_t per = (size_t)pp->channels * (size_t)pp->height * (size_t)pp->width;
    float *x = malloc(per * (size_t)o->batch * sizeof(float));
    size_t *which = malloc((size_t)o->batch * sizeof(size_t));
    sm_text csv = {0};
    int rc = 0;
    size_t done = 0, labelled = 0, correct = 0, failed = 0;
    if (!x || !which || sm_text_addf(&csv, "id,label,predicted,probability\n")) {
        rc = sm_cli_fail("predict", "out of memory");
        goto out;
    }
    double t0 = sm_clock_now();
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    for (size_t i = 0; i < n && rc == 0; i += (size_t)o->batch) {
        size_t i1 = i + (size_t)o->batch < n ? i + (size_t)o->batch : n;
        size_t nb = sm_dataset_load_range(ds, i, i1, pp, x, (int)cores, which,
                                          skipped, &failed);
        if (!nb)
            continue;
        const sm_tensor *outs[64];
        sm_tensor in = {0};
        in.ndim = 4;
        in.shape[0] = (int64_t)nb;
        in.shape[1] = pp->channels;
        in.shape[2] = pp->height;
        in.shape[3] = pp->width;
        in.data = x;
        const sm_tensor *inp[1] = {&in};
        if (sm_model_infer(m, inp, 1, outs, &err)) {
            rc = sm_cli_fail("predict", "%s", err.msg);
            break;
        }
        const sm_tensor *y = outs[out_idx];
        int64_t k = sm_tensor_numel(y) / (int64_t)nb;
        for (size_t r = 0; r < nb; r++) {
            float prob;
            int pred = argmax_prob(y->data + (int64_t)r * k, k,
                                   cfg->output_kind == SM_OUTPUT_LOGITS, &prob);
            char pbuf[32];
            const char *pred_name = sm_class_name(cfg, ds, pred, pbuf, sizeof pbuf);
            const char *label = sm_dataset_label_name(ds, which[r]);
            if (label) {
                labelled++;
                correct += strcmp(label, pred_name) == 0;
            }
            if (sm_text_csv(&csv, sm_dataset_id(ds, which[r])) ||
                sm_text_addf(&csv, ",") || sm_text_csv(&csv, label ? label : "") ||
                sm_text_addf(&csv, ",") || sm_text_csv(&csv, pred_name) ||
                sm_text_addf(&csv, ",%.6f\n", (double)prob)) {
                rc = sm_cli_fail("predict", "out of memory");
                break;
            }
        }
        done += nb;
    }
    double dt = sm_clock_now() - t0;
    if (rc == 0) {
        if (o->out) {
            if (sm_file_write_atomic(o->out, csv.s, csv.len, &err))
                rc = sm_cli_fail("predict", "%s", err.msg);
        } else {
            fwrite(csv.s, 1, csv.len, stdout);
        }
    }
    if (rc == 0) {
        fprintf(stderr, "salmap predict: %zu images in %.2f s (%.0f images/s)%s%s\n",
                done, dt, dt > 0 ? (double)done / dt : 0.0,
                o->out ? ", predictions in " : "", o->out ? o->out : "");
        if (labelled)
            printf("accuracy: %.4f (%zu/%zu)\n",
                   (double)correct / (double)labelled, correct, labelled);
        if (failed) {
            fprintf(stderr, "salmap predict: %zu images could not be read\n",
                    failed);
            rc = 3;
        }
    }
out:
    sm_text_free(&csv);
    free(x);
    free(which);
    sm_dataset_destroy(&ds);
    return rc;
}

int sm_cli_predict(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    sm_err err = {0};
    if (o.dataset && sm_vips_init(argv[0], &err))
        return sm_cli_fail("predict", "%s", err.msg);
    sm_model *m = sm_model_load_file(o.model, &err);
    if (!m)
        return sm_cli_fail("predict", "%s", err.msg);
    /* The engine splits each batch over the cores and OpenBLAS stays on one
     * thread: faster than OpenBLAS threading here (docs/PERFORMANCE.md). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    openblas_set_num_threads(1);
    sm_model_set_threads(m, cores > 0 ? (int)cores : 1);
    if (sm_model_n_inputs(m) != 1) {
        rc = sm_cli_fail("predict", "%s has %d inputs; salmap explains "
                         "classifiers with one image input", o.model,
                         sm_model_n_inputs(m));
        sm_model_destroy(&m);
        return rc;
    }
    if (o.input) {
        rc = predict_npy(m, &o);
        sm_model_destroy(&m);
        return rc;
    }
    sm_model_config *cfg = o.config ? sm_model_config_load(o.config, &err)
                                    : sm_model_config_for_model(m, o.model, &err);
    if (!cfg) {
        sm_model_destroy(&m);
        return sm_cli_fail("predict", "%s", err.msg);
    }
    int out_idx;
    if (sm_model_config_bind(cfg, m, o.model, &out_idx, &err))
        rc = sm_cli_fail("predict", "%s", err.msg);
    else
        rc = predict_dataset(m, cfg, out_idx, &o);
    sm_model_config_destroy(&cfg);
    sm_model_destroy(&m);
    return rc;
}
