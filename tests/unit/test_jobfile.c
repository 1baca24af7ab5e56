/* Job files for salmap explain: every field into the job, params into the
 * settings --set would give, and refusals that name the file, the line and
 * the key. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain/jobfile.h"
#include "tdata.h"

static char *dir;

static void setup(void)
{
    dir = tdata_tmpdir();
}

static void teardown(void)
{
    tdata_rmtree(dir);
}

TestSuite(jobfile, .init = setup, .fini = teardown);

static const char head[] = "model: m.onnx\n"
                           "dataset: d\n"
                           "out: o\n";

static int load_text(const char *text, sm_jobfile **jf, sm_err *err)
{
    char p[TDATA_PATH];
    tdata_text(p, dir, "job.yaml", text);
    return sm_jobfile_load(p, jf, err);
}

/* The load fails and the message has "job.yaml:<line>: " and `want`. */
static void fails(const char *text, int line, const char *want)
{
    sm_err err = {0};
    sm_jobfile *jf = NULL;
    cr_assert_eq(load_text(text, &jf, &err), -1, "accepted:\n%s", text);
    cr_assert_null(jf);
    char where[64];
    snprintf(where, sizeof where, "job.yaml:%d: ", line);
    cr_assert(tdata_has(err.msg, where), "'%s' not in: %s", where, err.msg);
    cr_assert(tdata_has(err.msg, want), "'%s' not in: %s", want, err.msg);
}

Test(jobfile, full)
{
    sm_err err = {0};
    sm_jobfile *jf = NULL;
    cr_assert_eq(load_text("# a comment\n"
                           "model: models/mnist_cnn.onnx\n"
                           "config: models/mnist_cnn.yaml\n"
                           "dataset: data/mnist/test\n"
                           "out: out/mnist\n"
                           "methods: [sal, grad, intg, elrp]\n"
                           "limit: 100\n"
                           "seed: 18446744073709551615\n"
                           "batch: 16\n"
                           "target: 7\n"
                           "score: prob\n"
                           "metrics: false\n"
                           "png: false\n"
                           "scale: job\n"
                           "metric_params:\n"
                           "  faithfulness_subsets: 50\n"
                           "  faithfulness_size: 14\n"
                           "  sensitivity_samples: 10\n"
                           "  sensitivity_radius: 0.05\n",
                           &jf, &err),
                 0, "%s", err.msg);
    const sm_explain_job *j = sm_jobfile_job(jf);
    cr_assert_str_eq(j->model, "models/mnist_cnn.onnx");
    cr_assert_str_eq(j->config, "models/mnist_cnn.yaml");
    cr_assert_str_eq(j->dataset, "data/mnist/test");
    cr_assert_str_eq(j->out, "out/mnist");
    cr_assert_eq(j->n_methods, 4);
    cr_assert_str_eq(j->methods[0], "sal");
    cr_assert_str_eq(j->methods[3], "elrp");
    cr_assert_eq(j->limit, 100);
    cr_assert_eq(j->seed, UINT64_MAX);
    cr_assert_eq(j->batch, 16);
    cr_assert_eq(j->target, SM_TARGET_INDEX);
    cr_assert_eq(j->target_index, 7);
    cr_assert_eq(j->score_prob, 1);
    cr_assert_eq(j->metrics, 0);
    cr_assert_eq(j->metric.faithfulness_subsets, 50);
    cr_assert_eq(j->metric.faithfulness_size, 14);
    cr_assert_eq(j->metric.sensitivity_samples, 10);
    cr_assert_eq(j->metric.sensitivity_radius, 0.05, "kept in double");
    cr_assert_eq(j->progress, 1);
    cr_assert_eq(j->no_png, 1);
    cr_assert_eq(j->scale_job, 1);
    cr_assert_eq(j->n_settings, 0);
    sm_jobfile_destroy(&jf);
    cr_assert_null(jf);
    sm_jobfile_destroy(&jf); /* harmless twice */
}

Test(jobfile, defaults)
{
    sm_err err = {0};
    sm_jobfile *jf = NULL;
    char text[256];
    snprintf(text, sizeof text, "%smethods: [sal]\ntarget: label\n", head);
    cr_assert_eq(load_text(text, &jf, &err), 0, "%s", err.msg);
    const sm_explain_job *j = sm_jobfile_job(jf);
    sm_explain_job d;
    sm_jobfile_defaults(&d);
    cr_assert_null(j->config);
    cr_assert_eq(j->limit, 0);
    cr_assert_eq(j->seed, 0);
    cr_assert_eq(j->batch, 64);
    cr_assert_eq(j->batch, d.batch);
    cr_assert_eq(j->target, SM_TARGET_LABEL);
    cr_assert_eq(j->score_prob, 0);
    cr_assert_eq(j->metrics, 1);
    cr_assert_eq(j->no_png, 0, "PNGs by default");
    cr_assert_eq(j->scale_job, 0, "each map on its own scale by default");
    /* zero metric parameters: their defaults (metrics.h) */
    sm_metric_params zero = {0};
    cr_assert(memcmp(&j->metric, &zero, sizeof zero) == 0);
    sm_jobfile_destroy(&jf);
}

Test(jobfile, params_become_settings)
{
    sm_err err = {0};
    sm_jobfile *jf = NULL;
    char text[512];
    snprintf(text, sizeof text,
             "%smethods: [intg, smoothgrad, sal]\n"
             "params:\n"
             "  intg: {steps: 100, method: riemann_middle}\n"
             "  smoothgrad:\n"
             "    samples: \"20\"\n"
             "  sal: {}\n",
             head);
    cr_assert_eq(load_text(text, &jf, &err), 0, "%s", err.msg);
    const sm_explain_job *j = sm_jobfile_job(jf);
    cr_assert_eq(j->n_settings, 3);
    cr_assert_str_eq(j->settings[0], "intg.steps=100");
    cr_assert_str_eq(j->settings[1], "intg.method=riemann_middle");
    cr_assert_str_eq(j->settings[2], "smoothgrad.samples=20");
    sm_jobfile_destroy(&jf);

    /* "params:" with nothing under it is no params. */
    snprintf(text, sizeof text, "%smethods: [sal]\nparams:\n", head);
    cr_assert_eq(load_text(text, &jf, &err), 0, "%s", err.msg);
    cr_assert_eq(sm_jobfile_job(jf)->n_settings, 0);
    sm_jobfile_destroy(&jf);
}

Test(jobfile, parse_from_memory)
{
    static const char text[] = "model: a\ndataset: b\nout: c\nmethods: [grad]\n"
                               "params: {grad: {}}\nbatch: x\n";
    sm_err err = {0};
    sm_jobfile *jf = NULL;
    cr_assert_eq(sm_jobfile_parse(text, sizeof text - 1, "mem", &jf, &err), -1);
    cr_assert(tdata_has(err.msg, "mem:6: batch: must be an integer in "
                                 "1..65536, not 'x'"), "%s", err.msg);
}

Test(jobfile, set_field)
{
    sm_explain_job j;
    sm_err err = {0};
    sm_jobfile_defaults(&j);
    cr_assert_eq(sm_jobfile_set_field(&j, "limit", "5", &err), 0);
    cr_assert_eq(j.limit, 5);
    cr_assert_eq(sm_jobfile_set_field(&j, "target", "predicted", &err), 0);
    cr_assert_eq(j.target, SM_TARGET_PREDICTED);
    static const char *const bad[][2] = {
        {"limit", "0"},     {"limit", "-1"},     {"limit", " 5"},
        {"limit", "5x"},    {"seed", "-1"},      {"seed", "1e3"},
        {"seed", "99999999999999999999"},        {"batch", "0"},
        {"batch", "65537"}, {"batch", "2.5"},    {"target", "-1"},
        {"target", "Label"}, {"target", "1000001"}, {"score", "logits"},
        {"metrics", "yes"}, {"nonsense", "1"}, {"png", "no"},
        {"scale", "method"}, {"scale", ""},
        {"metrics.faithfulness_subsets", "1"},
        {"metrics.faithfulness_subsets", "65537"},
        {"metrics.faithfulness_size", "-1"},
        {"metrics.sensitivity_samples", "10001"},
        {"metrics.sensitivity_samples", "2.5"},
        {"metrics.sensitivity_radius", "0"},
        {"metrics.sensitivity_radius", "1.5"},
        {"metrics.sensitivity_radius", "nan"},
        {"metrics.bogus", "1"}, {"metrics.", "1"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sm_explain_job before = j;
        cr_assert_eq(sm_jobfile_set_field(&j, bad[i][0], bad[i][1], &err), -1,
                     "%s=%s accepted", bad[i][0], bad[i][1]);
        cr_assert(memcmp(&before, &j, sizeof j) == 0, "%s changed", bad[i][0]);
    }
    cr_assert_eq(sm_jobfile_set_field(&j, "score", "prob!", &err), -1);
    cr_assert_str_eq(err.msg, "must be logit or prob, not 'prob!'");
    cr_assert_eq(sm_jobfile_set_field(&j, "metrics.sensitivity_samples", "7",
                                      &err), 0);
    cr_assert_eq(j.metric.sensitivity_samples, 7);
    cr_assert_eq(sm_jobfile_set_field(&j, "metrics.sensitivity_radius", "1",
                                      &err), 0);
    cr_assert_eq(j.metric.sensitivity_radius, 1.0);
    cr_assert_eq(sm_jobfile_set_field(&j, "metrics.faithfulness_subsets",
                                      "1", &err), -1);
    cr_assert_str_eq(err.msg, "must be an integer in 2..65536, not '1'");
}

Test(jobfile, refusals)
{
    char t[1024];
#define WITH(extra) (snprintf(t, sizeof t, "%s%s", head, extra), t)
    fails(WITH("methods: [sal]\nbogus: 1\n"), 5, "bogus: unknown key");
    fails(WITH("methods: sal\n"), 4, "methods: expected a list, found a scalar");
    fails(WITH("methods: [sal]\nlimit: [1]\n"), 5, "limit: expected a single "
                                                   "value");
    fails(WITH("methods: [sal]\nlimit: 12.7\n"), 5, "limit: must be a positive "
                                                   "integer, not '12.7'");
    fails(WITH("methods: [sal]\ntarget: best\n"), 5, "target: must be "
                                                    "predicted, label or a "
                                                    "class index");
    fails(WITH("methods: [sal]\n\nscore: logits\n"), 6, "score: must be logit "
                                                       "or prob, not 'logits'");
    fails(WITH("methods: [sal]\nmetrics: 1\n"), 5, "metrics: must be true or "
                                                  "false");
    fails(WITH("methods: [sal]\npng: 0\n"), 5, "png: must be true or false");
    fails(WITH("methods: [sal]\nscale: each\n"), 5, "scale: must be map or "
                                                    "job, not 'each'");
    fails(WITH("methods: [sal]\nmetric_params:\n  sensitivity_samples: -2\n"),
          6, "metric_params.sensitivity_samples: must be an integer in "
             "0..10000, not '-2'");
    fails(WITH("methods: [sal]\nmetric_params:\n  samples: 2\n"), 6,
          "metric_params.samples: no such metric parameter");
    fails(WITH("methods: [sal]\nmetric_params:\n  sensitivity_radius: [1]\n"),
          6, "metric_params.sensitivity_radius: expected a single value");
    fails(WITH("methods: [sal]\nmetric_params: 3\n"), 5,
          "metric_params: expected a mapping");
    fails(WITH("methods: [sal]\nmetric_params:\n  sensitivity_samples: 1\n"
               "  sensitivity_samples: 2\n"), 7,
          "metric_params.sensitivity_samples: key given twice");
    fails(WITH("methods: [sal]\nparams:\n  intg: {steps: 3}\n"), 6,
          "params.intg: intg is not among the methods");
    fails(WITH("methods: [sal, intg]\nparams:\n  intg:\n    steps: 0\n"), 7,
          "params: intg.steps: '0' is not an integer");
    fails(WITH("methods: [intg]\nparams:\n  intg:\n    stepz: 3\n"), 7,
          "params: intg has no parameter 'stepz'");
    fails(WITH("methods: [intg]\nparams:\n  intg:\n    steps: [3]\n"), 7,
          "params.intg.steps: expected a single value");
    fails(WITH("methods: [intg]\nparams:\n  intg: 3\n"), 6,
          "params.intg: expected a mapping");
    fails(WITH("methods: [intg]\nparams: [intg]\n"), 5,
          "params: expected a mapping");
    fails(WITH("methods: [intg]\nparams:\n  intg: {steps: 3, steps: 4}\n"), 6,
          "params.intg.steps: key given twice");
    fails(WITH("methods: [intg]\nparams: {intg: {}}\nparams: {}\n"), 6,
          "params: key given twice");
    fails(WITH("methods: [sal]\nlimit: 1\nlimit: 2\n"), 6,
          "limit: key given twice");
    fails(WITH("methods: [sal, salt]\n"), 4, "methods: unknown method 'salt'");
    fails(WITH("methods: [sal, sal]\n"), 4, "methods: 'sal' is listed twice");
    fails(WITH("methods: []\n"), 4, "methods");
    fails(WITH("methods: [sal]\nlimit: &a 3\nseed: *a\n"), 6, "alias");
    fails(WITH("methods: [sal\nlimit: 3\n"), 5, "YAML syntax error");
    fails("model: m.onnx\ndataset: d\nmethods: [sal]\n", 1,
          "missing required key 'out'");
    fails("", 1, "missing required key 'model'");
    fails("# only a comment\n", 1, "missing required key 'model'");
#undef WITH
}

Test(jobfile, missing_and_oversized_files)
{
    sm_err err = {0};
    sm_jobfile *jf = (sm_jobfile *)&err; /* set to NULL on failure */
    char p[TDATA_PATH];
    tdata_path(p, dir, "absent.yaml");
    cr_assert_eq(sm_jobfile_load(p, &jf, &err), -1);
    cr_assert_null(jf);
    cr_assert(tdata_has(err.msg, "absent.yaml: No such file"), "%s", err.msg);

    size_t n = SM_JOBFILE_MAX_BYTES + 1;
    char *big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, '#', n);
    big[n] = '\0';
    tdata_text(p, dir, "big.yaml", big);
    free(big);
    cr_assert_eq(sm_jobfile_load(p, &jf, &err), -1);
    cr_assert(tdata_has(err.msg, "big.yaml: "), "%s", err.msg);
    cr_assert(tdata_has(err.msg, "limit"), "%s", err.msg);
}

Test(jobfile, shipped_example)
{
    sm_err err = {0};
    sm_jobfile *jf = NULL;
    cr_assert_eq(sm_jobfile_load("configs/explain-mnist.yaml", &jf, &err), 0,
                 "%s", err.msg);
    const sm_explain_job *j = sm_jobfile_job(jf);
    cr_assert_str_eq(j->model, "models/mnist_cnn.onnx");
    cr_assert_eq(j->n_methods, 4);
    cr_assert_eq(j->limit, 100);
    sm_jobfile_destroy(&jf);
}

/* models: auxiliary models by name, in the file's order; bad names, a
 * value that is not a path, or too many refused with their line. */
Test(jobfile, models_by_name)
{
    sm_err err = {0};
    sm_jobfile *jf = NULL;
    char text[4096];
    snprintf(text, sizeof text, "%smethods: [sal]\nmodels:\n"
             "  aae_decoder: d.onnx\n  aae_encoder: e.onnx\n", head);
    cr_assert_eq(load_text(text, &jf, &err), 0, "%s", err.msg);
    const sm_explain_job *j = sm_jobfile_job(jf);
    cr_assert_eq(j->n_aux, 2);
    cr_assert_str_eq(j->aux_names[0], "aae_decoder");
    cr_assert_str_eq(j->aux_paths[0], "d.onnx");
    cr_assert_str_eq(j->aux_names[1], "aae_encoder");
    cr_assert_str_eq(j->aux_paths[1], "e.onnx");
    sm_jobfile_destroy(&jf);

    snprintf(text, sizeof text, "%smethods: [sal]\nmodels:\n  Bad-Name: d.onnx\n",
             head);
    fails(text, 6, "models.Bad-Name: a model's name is 1 to 64");
    snprintf(text, sizeof text, "%smethods: [sal]\nmodels:\n  a: {x: 1}\n", head);
    fails(text, 6, "models.a: expected the path of an ONNX file");
    snprintf(text, sizeof text, "%smethods: [sal]\nmodels: [a.onnx]\n", head);
    fails(text, 5, "models: expected a mapping");
    int at = snprintf(text, sizeof text, "%smethods: [sal]\nmodels:\n", head);
    for (int k = 0; k < 17; k++)
        at += snprintf(text + at, sizeof text - (size_t)at, "  m%d: m.onnx\n", k);
    fails(text, 5, "models: more than 16");
}
