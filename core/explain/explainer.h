/* sm_explainer: the interface every saliency method implements (one file a
 * method in core/explain/, one line of core/explain/registry.c each).
 *
 * A method declares its parameters (name, type, default, range) as a table
 * over its own params struct; the generic code here fills the struct from
 * the defaults and from "key=value" settings (--set intg.steps=100, job
 * files), validates them and records them as JSON next to every map. The
 * method's run() explains a batch: the driver has already chosen each
 * image's target class. Methods built on a neighbourhood of one image
 * (lime, kernelshap, rise, occlusion) may also expose it as samples,
 * score and fit (below), for scoring in chunks. */
#ifndef SM_EXPLAINER_H
#define SM_EXPLAINER_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "tensor/tensor.h"
#include "util/err.h"

typedef enum sm_param_type {
    SM_PARAM_INT,    /* int */
    SM_PARAM_FLOAT,  /* double */
    SM_PARAM_STRING, /* char[SM_PARAM_STR] */
} sm_param_type;

#define SM_PARAM_STR 64

typedef struct sm_param_def {
    const char *name;
    sm_param_type type;
    size_t offset;              /* into the method's params struct */
    const char *def;            /* default, as text */
    double min, max;            /* INT/FLOAT: inclusive range */
    const char *const *choices; /* STRING: allowed values (NULL-ended) */
    const char *help;
} sm_param_def;

/* What a method may use. */
typedef struct sm_explain_ctx {
    sm_model *model;  /* borrowed; methods run it (one model per thread) */
    int output;       /* the model output holding class scores */
    int output_probs; /* 1: that output already holds probabilities */
    int score_prob;   /* 1: score = softmax probability; 0: the logit
                         (ignored when output_probs: the output itself) */
    uint64_t seed;    /* job seed: draws keyed by (seed, image id, method) */
} sm_explain_ctx;

/* A batch to explain. */
typedef struct sm_explain_batch {
    const sm_tensor *x;     /* N x C x H x W, preprocessed model input */
    const int *target;      /* N target classes */
    const char *const *ids; /* N image ids */
} sm_explain_batch;

/* What a method leaves for each image of the batch. */
typedef struct sm_explain_out {
    float *map;         /* H x W, caller's buffer, written by the method */
    double score;       /* the target's score on the image itself */
    long evals;         /* images the model evaluated for it (forward, or
                           forward + backward) */
    char extras[2048];  /* a JSON object of method-specific extras */
} sm_explain_out;

typedef struct sm_explainer_class {
    const char *name;            /* "sal" */
    const char *summary;         /* one line for --help */
    int backward;                /* 1: its evaluations include a backward
                                    pass (what an evaluation costs) */
    const sm_param_def *params;  /* ended by an entry with name NULL */
    size_t params_size;
    /* Checks across parameters (may be NULL). */
    int (*check)(const void *params, sm_err *err);
    /* Explains b; out has b->x->shape[0] entries. 0 or -1 with a message.
     * May be NULL in a class with the neighbourhood ops: each image is
     * then explained as samples, score(0, n) and fit. */
    int (*run)(const void *params, const sm_explain_ctx *ctx,
               const sm_explain_batch *b, sm_explain_out *out, sm_err *err);

    /* Neighbourhood ops (all three, or none: NULL). A method that scores
     * a neighbourhood of perturbed copies of one image and fits its map
     * over the scores afterwards can have the neighbourhood scored in
     * chunks, in any order, on any machine (the pipeline), and fitted
     * once every score is in. Each takes one image x (c x h x w), its
     * target and id (draws are keyed by the id), and must not depend on
     * anything else: a chunk worker sees no other image. run() of such a
     * method is samples + score(0, n) + fit, so a map is the same bits
     * whole or chunked (model outputs do not depend on the batch). */
    /* The number n of samples in the image's neighbourhood; -1 with a
     * message. */
    int64_t (*samples)(const void *params, const sm_explain_ctx *ctx,
                       const float *x, int64_t c, int64_t h, int64_t w,
                       int target, const char *id, sm_err *err);
    /* The target's scores of samples [first, first + count) into
     * y[0..count). 0 or -1 with a message (also when the range is not
     * within 0..n). */
    int (*score)(const void *params, const sm_explain_ctx *ctx,
                 const float *x, int64_t c, int64_t h, int64_t w, int target,
                 const char *id, int64_t first, int64_t count, double *y,
                 sm_err *err);
    /* The image's map, score, evals and extras into out from all n scores
     * y[0..n). 0 or -1 with a message (also when n is not samples()). */
    int (*fit)(const void *params, const sm_explain_ctx *ctx, const float *x,
               int64_t c, int64_t h, int64_t w, int target, const char *id,
               const double *y, int64_t n, sm_explain_out *out, sm_err *err);
} sm_explainer_class;

/* The registry. */
const sm_explainer_class *sm_explainer_find(const char *name);
const sm_explainer_class *const *sm_explainer_all(void);

/* A method with its parameter values. */
typedef struct sm_explainer sm_explainer;

/* The method with its defaults; NULL with a message naming the unknown
 * method (and listing the known ones). */
sm_explainer *sm_explainer_new(const char *name, sm_err *err);
void sm_explainer_destroy(sm_explainer **e);

const sm_explainer_class *sm_explainer_class_of(const sm_explainer *e);

/* Sets parameter key (without the "method." prefix) from text; -1 with a
 * message naming the method, key and value when the key is unknown, the
 * text does not parse or the value is out of range. */
int sm_explainer_set(sm_explainer *e, const char *key, const char *value,
                     sm_err *err);

/* The parameters as a JSON object ({"steps": 50, ...}). */
const char *sm_explainer_params_json(sm_explainer *e);

int sm_explainer_run(sm_explainer *e, const sm_explain_ctx *ctx,
                     const sm_explain_batch *b, sm_explain_out *out,
                     sm_err *err);

/* 1 when e's method has the neighbourhood ops (samples, score, fit), so
 * an image's neighbourhood can be scored in chunks; else 0. */
int sm_explainer_chunked(const sm_explainer *e);

/* The class's ops with e's parameters (checked first, as by run); errors
 * are prefixed with the method's name, and a method without the ops is an
 * error. samples: n, or -1. score: samples [first, first + count) into
 * y[count]. fit: out (out->map is the caller's h x w buffer) from
 * y[0..n). 0 or -1 with a message. */
int64_t sm_explainer_samples(sm_explainer *e, const sm_explain_ctx *ctx,
                             const float *x, int64_t c, int64_t h, int64_t w,
                             int target, const char *id, sm_err *err);
int sm_explainer_score(sm_explainer *e, const sm_explain_ctx *ctx,
                       const float *x, int64_t c, int64_t h, int64_t w,
                       int target, const char *id, int64_t first,
                       int64_t count, double *y, sm_err *err);
int sm_explainer_fit(sm_explainer *e, const sm_explain_ctx *ctx,
                     const float *x, int64_t c, int64_t h, int64_t w,
                     int target, const char *id, const double *y, int64_t n,
                     sm_explain_out *out, sm_err *err);

#endif
