#include "config/config_model.h"

#include <stdio.h>
#include <string.h>

sm_model_config *sm_model_config_for_model(const sm_model *m,
                                           const char *model_name, sm_err *err)
{
    int64_t s[SM_MAX_DIMS];
    int nd = sm_model_n_inputs(m) == 1 ? sm_model_input_shape(m, 0, s) : -1;
    if (nd != 4 || s[1] < 1 || s[2] < 1 || s[3] < 1) {
        sm_err_set(err, "%s: its input does not declare N x C x H x W with "
                   "fixed C, H and W; give a model config (--config) that "
                   "names the input size", model_name);
        return NULL;
    }
    /* Through the parser, so the default obeys every rule a file does. */
    char yaml[160], name[1200];
    int n = snprintf(yaml, sizeof yaml,
                     "input: {channels: %lld, height: %lld, width: %lld}\n",
                     (long long)s[1], (long long)s[2], (long long)s[3]);
    snprintf(name, sizeof name, "%s (default config)", model_name);
    return sm_model_config_parse(yaml, (size_t)n, name, err);
}

int sm_model_config_bind(const sm_model_config *cfg, const sm_model *m,
                         const char *model_name, int *out_index, sm_err *err)
{
    int64_t s[SM_MAX_DIMS];
    if (sm_model_n_inputs(m) != 1)
        return sm_err_set(err, "%s has %d inputs; salmap explains classifiers "
                          "with one image input", model_name,
                          sm_model_n_inputs(m));
    int nd = sm_model_input_shape(m, 0, s);
    const int64_t want[3] = {cfg->channels, cfg->height, cfg->width};
    int ok = nd == 4;
    for (int d = 0; ok && d < 3; d++)
        ok = s[d + 1] < 0 || s[d + 1] == want[d];
    if (!ok) {
        char a[128];
        return sm_err_set(err, "%s: input %d x %d x %d does not fit %s's "
                          "input %s", cfg->source, cfg->channels,
                          cfg->height, cfg->width, model_name,
                          sm_shape_str(nd, s, a, sizeof a));
    }
    *out_index = 0;
    if (cfg->output_name) {
        *out_index = sm_model_output_index(m, cfg->output_name);
        if (*out_index < 0)
            return sm_err_set(err, "%s: output '%s' is not an output of %s",
                              cfg->source, cfg->output_name, model_name);
    }
    return 0;
}

const char *sm_class_name(const sm_model_config *cfg, const sm_dataset *ds,
                          int j, char *buf, size_t cap)
{
    if (j >= 0 && j < cfg->n_classes)
        return cfg->classes[j];
    const char *name = cfg->n_classes ? NULL : sm_dataset_class_name(ds, j);
    if (name)
        return name;
    snprintf(buf, cap, "%d", j);
    return buf;
}

int sm_class_index(const sm_model_config *cfg, const sm_dataset *ds,
                   const char *name)
{
    if (!name)
        return -1;
    if (!cfg->n_classes)
        return sm_dataset_class_index(ds, name);
    for (int j = 0; j < cfg->n_classes; j++)
        if (strcmp(cfg->classes[j], name) == 0)
            return j;
    return -1;
}
