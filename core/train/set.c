#include "train/set.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "util/rng.h"


struct sm_train_set {
    char *source;
    size_t n;
    int c, h, w;
    int n_classes;
    char **classes;
    float *x;
    int *labels;
};

void sm_train_set_destroy(sm_train_set **s)
{
    if (!s || !*s)
        return;
    for (int i = 0; i < (*s)->n_classes; i++)
        free((*s)->classes[i]);
    free((*s)->classes);
    free((*s)->source);
    free((*s)->x);
    free((*s)->labels);
    free(*s);
    *s = NULL;
}

/* A set with room for n images and a copy of the class names. */
static sm_train_set *set_new(const char *source, size_t n, int c, int h, int w,
                             const char *const *classes, int n_classes,
                             sm_err *err)
{
    sm_train_set *s = calloc(1, sizeof *s);
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    if (s) {
        s->n = n;
        s->c = c;
        s->h = h;
        s->w = w;
        s->source = strdup(source);
        s->classes = calloc((size_t)n_classes + 1, sizeof(char *));
        s->x = malloc((n ? n : 1) * per * sizeof(float));
        s->labels = malloc((n ? n : 1) * sizeof(int));
    }
    if (!s || !s->source || !s->classes || !s->x || !s->labels) {
        sm_train_set_destroy(&s);
        sm_err_set(err, "%s: out of memory for %zu images of %dx%dx%d",
                   source, n, c, h, w);
        return NULL;
    }
    for (; s->n_classes < n_classes; s->n_classes++)
        if (!(s->classes[s->n_classes] = strdup(classes[s->n_classes]))) {
            sm_train_set_destroy(&s);
            sm_err_set(err, "%s: out of memory", source);
            return NULL;
        }
    return s;
}

sm_train_set *sm_train_set_from_memory(const float *x, const int *labels,
                                       size_t n, int c, int h, int w,
                                       const char *const *classes,
                                       int n_classes, sm_err *err)
{
    if (n == 0 || c < 1 || h < 1 || w < 1 || n_classes < 1) {
        sm_err_set(err, "memory: an empty set (%zu images of %dx%dx%d, %d "
                   "classes)", n, c, h, w, n_classes);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= n_classes) {
            sm_err_set(err, "memory: image %zu: label %d is not a class "
                       "index below %d", i, labels[i], n_classes);
            return NULL;
        }
    sm_train_set *s = set_new("memory", n, c, h, w, classes, n_classes, err);
    if (!s)
        return NULL;
    memcpy(s->x, x, n * (size_t)c * (size_t)h * (size_t)w * sizeof(float));
    memcpy(s->labels, labels, n * sizeof(int));
    return s;
}

/* Decodes every image; the error reported is that of the first image that
 * failed (decoded again alone for its message: keeping a message per image
 * of a 60,000-image set would cost 60 MB). */
static int load_images(const sm_dataset *ds, const sm_preproc *pp,
                       sm_train_set *s, int threads, sm_err *err)
{
    int *status = malloc(sizeof(int) * (s->n ? s->n : 1));
    if (!status)
        return sm_err_set(err, "out of memory");
    int rc = 0;
    size_t per = (size_t)s->c * (size_t)s->h * (size_t)s->w;
    if (sm_dataset_load_many(ds, NULL, 0, s->n, pp, s->x, threads, status, NULL))
        for (size_t i = 0; i < s->n; i++)
            if (status[i]) {
                rc = sm_dataset_load(ds, i, pp, s->x + i * per, err);
                if (rc == 0) /* it loaded this time: still refuse the set */
                    rc = sm_err_set(err, "%s: image %zu failed to load once",
                                    sm_dataset_id(ds, i), i);
                break;
            }
    free(status);
    return rc;
}

sm_train_set *sm_train_set_load(const char *path, const sm_model_config *cfg,
                                const char *const *classes, int n_classes,
                                int threads, sm_err *err)
{
    sm_dataset *ds = sm_dataset_open(path, err);
    if (!ds)
        return NULL;
    const char *whose = "the model";
    if (!classes && cfg->n_classes) {
        whose = cfg->source;
        classes = (const char *const *)cfg->classes;
        n_classes = cfg->n_classes;
    }
    const char **own = NULL;
    if (!classes) {
        n_classes = sm_dataset_n_classes(ds);
        own = calloc((size_t)n_classes + 1, sizeof *own);
        if (!own) {
            sm_dataset_destroy(&ds);
            sm_err_set(err, "%s: out of memory", path);
            return NULL;
        }
        for (int c = 0; c < n_classes; c++)
            own[c] = sm_dataset_class_name(ds, c);
        classes = own;
    }
    size_t n = sm_dataset_count(ds);
    sm_train_set *s = NULL;
    /* The dataset's class c is the model's class map[c]. */
    int nds = sm_dataset_n_classes(ds);
    int *map = calloc((size_t)nds + 1, sizeof(int));
    if (!map) {
        sm_err_set(err, "%s: out of memory", path);
        goto out;
    }
    for (int c = 0; c < nds; c++) {
        map[c] = -1;
        for (int k = 0; k < n_classes && map[c] < 0; k++)
            if (strcmp(classes[k], sm_dataset_class_name(ds, c)) == 0)
                map[c] = k;
    }
    if (!(s = set_new(path, n, cfg->channels, cfg->height, cfg->width, classes,
                      n_classes, err)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        int l = sm_dataset_label(ds, i);
        if (l < 0 || l >= nds || map[l] < 0) {
            if (l < 0 || l >= nds)
                sm_err_set(err, "%s: image '%s' has no label", path,
                           sm_dataset_id(ds, i));
            else
                sm_err_set(err, "%s: image '%s': class '%s' is not one of "
                           "the %d classes of %s", path, sm_dataset_id(ds, i),
                           sm_dataset_class_name(ds, l), n_classes, whose);
            sm_train_set_destroy(&s);
            goto out;
        }
        s->labels[i] = map[l];
    }
    sm_preproc pp;
    sm_model_config_preproc(cfg, &pp);
    if (load_images(ds, &pp, s, threads, err))
        sm_train_set_destroy(&s);
out:
    free(map);
    free(own);
    sm_dataset_destroy(&ds);
    return s;
}

const char *sm_train_set_source(const sm_train_set *s) { return s->source; }
size_t sm_train_set_count(const sm_train_set *s) { return s->n; }

void sm_train_set_shape(const sm_train_set *s, int *c, int *h, int *w)
{
    *c = s->c;
    *h = s->h;
    *w = s->w;
}

int sm_train_set_n_classes(const sm_train_set *s) { return s->n_classes; }

const char *const *sm_train_set_classes(const sm_train_set *s)
{
    return (const char *const *)s->classes;
}

const float *sm_train_set_image(const sm_train_set *s, size_t i)
{
    return s->x + i * (size_t)s->c * (size_t)s->h * (size_t)s->w;
}

int sm_train_set_label(const sm_train_set *s, size_t i) { return s->labels[i]; }

void sm_train_shuffle(size_t *order, size_t n, uint64_t seed, int pass)
{
    char ps[24];
    snprintf(ps, sizeof ps, "%d", pass);
    uint64_t key = sm_rng_key(seed, (const char *const[]){"train-shuffle", ps, NULL});
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n - 1; n && i > 0; i--) {
        size_t j = (size_t)(sm_rng_uniform(key, i) * (double)(i + 1));
        size_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}
