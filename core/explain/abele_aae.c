/* The autoencoder of a job's abele (abele_aae.h). */
#include "explain/abele_aae.h"

#include <stdio.h>
#include <string.h>

#include "config/aae_config.h"
#include "config/config_model.h"
#include "config/model_config.h"

/* The value of setting abele.aae among the job's, the last one winning;
 * "" when none. */
static const char *aae_setting(const sm_explain_job *job)
{
    static const char key[] = "abele.aae=";
    const char *v = "";
    for (int k = 0; k < job->n_settings; k++)
        if (!strncmp(job->settings[k], key, sizeof key - 1))
            v = job->settings[k] + sizeof key - 1;
    return v;
}

/* <model's folder>/<its name up to the first '_' or '.'>_aae.yaml. */
static int default_yaml(const char *model, char *buf, size_t cap)
{
    const char *base = strrchr(model, '/');
    base = base ? base + 1 : model;
    size_t stem = strcspn(base, "_.");
    int n = snprintf(buf, cap, "%.*s%.*s_aae.yaml", (int)(base - model), model,
                     (int)stem, base);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* The model's input size: its config's, or its declared input's. */
static int model_input(const sm_explain_job *job, int *c, int *h, int *w,
                       sm_err *err)
{
    sm_model_config *cfg = NULL;
    if (job->config) {
        if (!(cfg = sm_model_config_load(job->config, err)))
            return -1;
    } else {
        sm_model *m = sm_model_load_file(job->model, err);
        if (!m)
            return -1;
        cfg = sm_model_config_for_model(m, job->model, err);
        sm_model_destroy(&m);
        if (!cfg)
            return -1;
    }
    *c = cfg->channels, *h = cfg->height, *w = cfg->width;
    sm_model_config_destroy(&cfg);
    return 0;
}

int sm_abele_job_aux(sm_explain_job *job, sm_abele_aux *a, sm_err *err)
{
    int wanted = 0;
    for (int k = 0; k < job->n_methods; k++)
        wanted |= !strcmp(job->methods[k], "abele");
    if (!wanted)
        return 0;
    const char *named = aae_setting(job);
    if (named[0])
        snprintf(a->yaml, sizeof a->yaml, "%s", named);
    else if (default_yaml(job->model, a->yaml, sizeof a->yaml))
        return sm_err_set(err, "abele: model path too long");
    FILE *f = fopen(a->yaml, "r");
    if (!f)
        return sm_err_set(err, "abele: no autoencoder for %s: %s does not "
                          "exist (train one with `salmap train-aae --dataset "
                          "D --classifier %s --latent L --steps S --seed N "
                          "--out %s`, docs/TRAINING.md, or name one with "
                          "--set abele.aae=FILE)",
                          job->model, a->yaml, job->model, a->yaml);
    fclose(f);
    sm_aae_config cfg;
    int c, h, w;
    if (model_input(job, &c, &h, &w, err))
        return sm_err_prefix(err, "abele");
    if (sm_aae_config_load(a->yaml, &cfg, err))
        return sm_err_prefix(err, "abele");
    int rc = 0;
    if (cfg.channels != c || cfg.height != h || cfg.width != w)
        rc = sm_err_set(err, "abele: %s is an autoencoder of %dx%dx%d "
                        "images, the model %s reads %dx%dx%d (train one for "
                        "it with `salmap train-aae`, docs/TRAINING.md)",
                        a->yaml, cfg.channels, cfg.height, cfg.width,
                        job->model, c, h, w);
    const char *nets[3] = {cfg.encoder, cfg.decoder, cfg.discriminator};
    for (int p = 0; p < 3 && rc == 0; p++)
        if (snprintf(a->nets[p], sizeof a->nets[p], "%s", nets[p]) >=
            (int)sizeof a->nets[p])
            rc = sm_err_set(err, "abele: %s: path too long", a->yaml);
    sm_aae_config_free(&cfg);
    if (rc)
        return -1;
    int n = job->n_aux;
    for (int k = 0; k < n; k++)
        a->names[k] = job->aux_names[k], a->paths[k] = job->aux_paths[k];
    for (int p = 0; p < 3; p++) {
        static const char *const name[3] = {"aae_encoder", "aae_decoder",
                                            "aae_discriminator"};
        int have = 0;
        for (int k = 0; k < job->n_aux; k++)
            have |= !strcmp(job->aux_names[k], name[p]);
        if (have)
            continue;
        if (n == SM_EXPLAIN_MAX_AUX)
            return sm_err_set(err, "abele: more than %d auxiliary models",
                              SM_EXPLAIN_MAX_AUX);
        a->names[n] = name[p], a->paths[n++] = a->nets[p];
    }
    job->aux_names = a->names, job->aux_paths = a->paths, job->n_aux = n;
    return 0;
}
