/* The model config YAML: values, defaults, and errors that name the file,
 * the line and the key. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "config/model_config.h"
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

TestSuite(config, .init = setup, .fini = teardown);

static sm_model_config *load_text(const char *text, sm_err *err)
{
    char p[TDATA_PATH];
    tdata_text(p, dir, "m.yaml", text);
    return sm_model_config_load(p, err);
}

/* The load fails and the message has "m.yaml:<line>: " and `want`. */
static void fails(const char *text, int line, const char *want)
{
    sm_err err = {0};
    sm_model_config *cfg = load_text(text, &err);
    cr_assert_null(cfg, "accepted:\n%s", text);
    char where[64];
    snprintf(where, sizeof where, "m.yaml:%d: ", line);
    cr_assert(tdata_has(err.msg, where), "'%s' not in: %s", where, err.msg);
    cr_assert(tdata_has(err.msg, want), "'%s' not in: %s", want, err.msg);
}

Test(config, full)
{
    sm_err err = {0};
    sm_model_config *cfg = load_text(
        "# a comment\n"
        "input:\n"
        "  channels: 3\n"
        "  height: 224\n"
        "  width: 200\n"
        "scale: 0.5\n"
        "mean: [0.485, 0.456, 0.406]\n"
        "std: [0.229, 0.224, 0.225]\n"
        "classes: [cat, \"dog\", 'cow']\n"
        "output: {name: prob, kind: probabilities}\n",
        &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    cr_assert_eq(cfg->channels, 3);
    cr_assert_eq(cfg->height, 224);
    cr_assert_eq(cfg->width, 200);
    cr_assert_float_eq(cfg->scale, 0.5f, 1e-9);
    cr_assert_float_eq(cfg->mean[1], 0.456f, 1e-7);
    cr_assert_float_eq(cfg->std[2], 0.225f, 1e-7);
    cr_assert_eq(cfg->n_classes, 3);
    cr_assert_str_eq(cfg->classes[2], "cow");
    cr_assert_str_eq(cfg->output_name, "prob");
    cr_assert_eq(cfg->output_kind, SM_OUTPUT_PROBABILITIES);
    cr_assert_str_eq(sm_output_kind_name(cfg->output_kind), "probabilities");
    cr_assert(tdata_has(cfg->source, "m.yaml"));

    sm_preproc pp;
    sm_model_config_preproc(cfg, &pp);
    cr_assert_eq(pp.channels, 3);
    cr_assert_eq(pp.height, 224);
    cr_assert_eq(pp.width, 200);
    cr_assert_float_eq(pp.scale, 0.5f, 1e-9);
    cr_assert_float_eq(pp.mean[0], 0.485f, 1e-7);
    cr_assert_float_eq(pp.std[0], 0.229f, 1e-7);
    cr_assert_eq(sm_preproc_check(&pp, &err), 0, "%s", err.msg);
    sm_model_config_destroy(&cfg);
    cr_assert_null(cfg);
}

Test(config, defaults)
{
    sm_err err = {0};
    sm_model_config *cfg =
        load_text("input: {channels: 1, height: 28, width: 28}\n", &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    cr_assert_float_eq(cfg->scale, 1.0f / 255.0f, 1e-9);
    cr_assert_eq(cfg->mean[0], 0.0f);
    cr_assert_eq(cfg->std[0], 1.0f);
    cr_assert_eq(cfg->n_classes, 0);
    cr_assert_null(cfg->classes);
    cr_assert_null(cfg->output_name);
    cr_assert_eq(cfg->output_kind, SM_OUTPUT_LOGITS);
    sm_model_config_destroy(&cfg);

    cfg = load_text("input: {channels: 1, height: 2, width: 2}\n"
                    "output: {name: y}\n", &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    cr_assert_eq(cfg->output_kind, SM_OUTPUT_LOGITS);
    cr_assert_str_eq(cfg->output_name, "y");
    sm_model_config_destroy(&cfg);
}

Test(config, shipped_configs)
{
    const char *files[2] = {"configs/mnist.yaml", "configs/fashion-mnist.yaml"};
    const char *third[2] = {"2", "Pullover"};
    for (int k = 0; k < 2; k++) {
        sm_err err = {0};
        sm_model_config *cfg = sm_model_config_load(files[k], &err);
        cr_assert_not_null(cfg, "%s", err.msg);
        cr_assert_eq(cfg->channels, 1);
        cr_assert_eq(cfg->height, 28);
        cr_assert_eq(cfg->width, 28);
        cr_assert_eq(cfg->n_classes, 10);
        cr_assert_str_eq(cfg->classes[2], third[k]);
        cr_assert_float_eq(cfg->scale, 1.0f / 255.0f, 1e-9);
        sm_model_config_destroy(&cfg);
    }
}

Test(config, parse_from_memory)
{
    const char y[] = "input: {channels: 1, height: 3, width: 4}\nscale: 2\n";
    sm_err err = {0};
    sm_model_config *cfg = sm_model_config_parse(y, sizeof y - 1, "wire", &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    cr_assert_eq(cfg->width, 4);
    cr_assert_str_eq(cfg->source, "wire");
    sm_model_config_destroy(&cfg);
    const char bad[] = "input: {channels: 1, height: 3, width: 4}\nsize: 2\n";
    cr_assert_null(sm_model_config_parse(bad, sizeof bad - 1, "wire", &err));
    cr_assert(tdata_has(err.msg, "wire:2: size: unknown key"), "%s", err.msg);
}

Test(config, unknown_keys)
{
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "\n"
          "colour: red\n",
          3, "colour: unknown key");
    fails("input:\n"
          "  channels: 1\n"
          "  height: 28\n"
          "  width: 28\n"
          "  depth: 3\n",
          5, "input.depth: unknown key");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "output: {name: y, kind: logits, soft: true}\n",
          2, "output.soft: unknown key");
}

Test(config, wrong_types)
{
    fails("input: {channels: x, height: 28, width: 28}\n", 1,
          "input.channels: 'x' is not an integer");
    /* libcyaml 1.3 alone would read these as 12 and 1 */
    fails("input:\n  channels: 1\n  height: 12.7\n  width: 28\n", 3,
          "input.height: '12.7' is not an integer");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "std: [1,5]\n",
          2, "std: 2 values for 1 channel");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "std: ['1,5']\n",
          2, "std: value 1 ('1,5') is not a number");
    fails("input: {channels: 1, height: 28, width: [28]}\n", 1,
          "input.width: expected a single value, found a list");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "mean: 3\n",
          2, "mean: expected a list, found a scalar");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "scale: fast\n",
          2, "scale: 'fast' is not a number > 0");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "output: {kind: softmax}\n",
          2, "output.kind:");
    fails("- input\n", 1, "expected a mapping, found a list");
}

Test(config, values_out_of_range)
{
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "input2: 1\n", 2, "input2");
    fails("input:\n  channels: 2\n  height: 28\n  width: 28\n", 2,
          "input.channels: must be 1 or 3, not 2");
    fails("input: {channels: 1, height: 0, width: 28}\n", 1,
          "input.height: must be positive");
    fails("input: {channels: 1, height: 28, width: -4}\n", 1,
          "input.width: must be positive");
    fails("input: {channels: 3, height: 28, width: 28}\n"
          "mean: [0.5]\n",
          2, "mean: 1 values for 3 channels");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "mean: [0.5]\n"
          "std: [0]\n",
          3, "std: value 1 must be > 0");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "scale: -1\n",
          2, "scale: '-1' is not a number > 0");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "scale: 1e99\n",
          2, "scale: '1e99' is not a number > 0");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "mean: [1, 2, 3, 4]\n",
          2, "mean:");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "classes:\n  - a\n  - b\n  - a\n",
          2, "classes: 'a' is listed twice");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "classes: [a, \"\"]\n",
          2, "classes:");
}

Test(config, missing_keys)
{
    fails("scale: 1\n", 1, "missing required key 'input'");
    fails("# nothing but a comment\n", 1, "missing required key 'input'");
    fails("scale: 1\ninput: {channels: 1, height: 28}\n", 2,
          "input: missing required key 'width'");
    fails("input: {}\n", 1, "input: missing required key 'channels'");
}

Test(config, syntax_and_structure)
{
    fails("input: {channels: 1,\n  height: 28\n", 3, "YAML syntax error");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "\tscale: 2\n",
          2, "YAML syntax error");
    fails("scale: 1\n"
          "input: {channels: 1, height: 28, width: 28}\n"
          "scale: 2\n",
          3, "scale: key given twice");
    fails("input: {channels: 1, height: 28, width: 28}\n"
          "---\n"
          "scale: 2\n",
          2, "only one YAML document");
    fails("input: &a {channels: 1, height: 28, width: 28}\n"
          "output: *a\n",
          2, "output");
    /* A sequence or a mapping as a key (found by fuzz_yaml: indexing its
     * keys read before the key array). */
    fails("input: {[channels: 1, height: 28]: 2}\n", 1,
          "a mapping key must be a plain value, not a sequence");
    fails("scale: 1\n"
          "? {a: 1}\n"
          ": 2\n",
          2, "a mapping key must be a plain value, not a mapping");
}

Test(config, missing_file)
{
    sm_err err = {0};
    cr_assert_null(sm_model_config_load("/nonexistent/m.yaml", &err));
    cr_assert(tdata_has(err.msg, "/nonexistent/m.yaml"), "%s", err.msg);
}
