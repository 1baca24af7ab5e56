/* sm_explainer: the interface every saliency method implements (one file a
 * method in core/explain/, one line of core/explain/registry.c each).
 *
 * A method declares its parameters (name, type, default, range) as a table
 * over its own params struct; the generic code here fills the struct from
 * the defaults and from "key=value" settings (--set intg.steps=100, job
 * files), validates them and records them as JSON next to every map. The
 * method's run() explains a batch: the driver has already chosen each
 * image's target class. Methods built on a neighbourhood of one image
 * expose it instead as rounds (begin, propose, score, update, finish):
 * what an adaptive method samples next depends on the scores so far, and
 * the pipeline scores each round in chunks on any worker. A method whose
 * neighbourhood is fixed (lime, kernelshap, rise, occlusion) gives the
 * one-round form, samples, score and fit. Each image's outcome is its map
 * and a record (record.h): a JSON object and named arrays of any size. */
#ifndef SM_EXPLAINER_H
#define SM_EXPLAINER_H

#include <stddef.h>
#include <stdint.h>

#include "data/image.h"
#include "explain/record.h"
#include "io/jobinfo.h"
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

/* An auxiliary model a method uses beside the classifier (an
 * autoencoder...), by the name the job gives it ("aae_decoder"). */
typedef struct sm_explain_aux {
    const char *name;
    sm_model *model;  /* borrowed */
} sm_explain_aux;

#define SM_EXPLAIN_MAX_AUX 16
#define SM_EXPLAIN_AUX_NAME 64 /* names: 1..64 of [a-z0-9_] */

/* What a method may use. */
typedef struct sm_explain_ctx {
    sm_model *model;  /* borrowed; methods run it (one model per thread) */
    int output;       /* the model output holding class scores */
    int output_probs; /* 1: that output already holds probabilities */
    int score_prob;   /* 1: score = softmax probability; 0: the logit
                         (ignored when output_probs: the output itself) */
    uint64_t seed;    /* job seed: draws keyed by (seed, image id, method) */
    const sm_explain_aux *aux; /* the job's auxiliary models, n_aux */
    int n_aux;
    const sm_preproc *preproc; /* how pixels became the model input
                                  (borrowed; NULL: unknown) */
} sm_explain_ctx;

/* The job's auxiliary model called name, or NULL with a message saying
 * the job has none by that name (and which it has). */
sm_model *sm_explain_aux_model(const sm_explain_ctx *ctx, const char *name,
                               sm_err *err);

/* A batch to explain. */
typedef struct sm_explain_batch {
    const sm_tensor *x;     /* N x C x H x W, preprocessed model input */
    const int *target;      /* N target classes */
    const char *const *ids; /* N image ids */
} sm_explain_batch;

/* What a method leaves for each image of the batch. The generic code
 * empties every field but map before the method runs; the caller frees
 * the records (sm_explain_out_free). */
typedef struct sm_explain_out {
    float *map;         /* H x W, caller's buffer, written by the method
                           (NULL for a method with no_map) */
    double score;       /* the target's score on the image itself */
    long evals;         /* images the model evaluated for it (forward, or
                           forward + backward) */
    sm_record record;   /* method-specific: a JSON object, named arrays */
} sm_explain_out;

/* Frees the records of out[0..n). */
void sm_explain_out_free(sm_explain_out *out, int64_t n);


/* One image as the per-image operations see it. */
typedef struct sm_explain_image {
    const float *x;     /* c x h x w, the model input */
    int64_t c, h, w;
    int target;
    const char *id;     /* draws are keyed by it */
} sm_explain_image;

typedef struct sm_explainer_class {
    const char *name;            /* "sal" */
    const char *summary;         /* one line for --help */
    int backward;                /* 1: its evaluations include a backward
                                    pass (what an evaluation costs) */
    int no_map;                  /* 1: it yields no pixel map, only its
                                    record (out->map is NULL) */
    /* 1 when the map it gives with these parameters can be negative
     * (drawn on a diverging colour map centred on 0), 0 when it is >= 0
     * by construction. NULL: never signed; sm_explain_signed: always. */
    int (*signed_map)(const void *params);
    const sm_param_def *params;  /* ended by an entry with name NULL */
    size_t params_size;
    /* Checks across parameters (may be NULL). */
    int (*check)(const void *params, sm_err *err);
    /* Explains b; out has b->x->shape[0] entries. 0 or -1 with a message.
     * May be NULL in a class with rounds or the one-round ops: each image
     * is then explained by the generic loop of rounds. */
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

    /* Rounds (all of begin, propose, round_score, update, finish, encode,
     * decode and release, or none). One image is explained as
     *   st = begin(); while ((n = propose(st)) > 0)
     *       { y = round_score(st, 0, n); update(st, y, n); }
     *   finish(st, out)
     * update takes a round's scores and moves st on to the next round;
     * round_score must depend only on the state, the image and the range: the pipeline encodes that state, sends it with
     * the image to the workers that score chunks of the round, and runs
     * update, propose (and finish) where it gathered the scores. So
     * decode(encode(st)) must behave exactly as st. The class's
     * samples/score/fit, when it has them, are a one-round method that the
     * generic code runs as rounds. Each returns -1 (NULL) with a message. */
    void *(*begin)(const void *params, const sm_explain_ctx *ctx,
                   const sm_explain_image *im, sm_err *err);
    /* The sample count of the round st is at, 0 when done; -1 on error.
     * It may prepare the round but not change what it is: asked again of
     * the same state (or of its decoded copy) it says the same. */
    int64_t (*propose)(const void *params, const sm_explain_ctx *ctx,
                       const sm_explain_image *im, void *st, sm_err *err);
    /* Scores of samples [first, first + count) of the proposed round. */
    int (*round_score)(const void *params, const sm_explain_ctx *ctx,
                       const sm_explain_image *im, const void *st,
                       int64_t first, int64_t count, double *y, sm_err *err);
    /* Takes all n scores of the proposed round. */
    int (*update)(const void *params, const sm_explain_ctx *ctx,
                  const sm_explain_image *im, void *st, const double *y,
                  int64_t n, sm_err *err);
    /* out's map, score, evals and record. */
    int (*finish)(const void *params, const sm_explain_ctx *ctx,
                  const sm_explain_image *im, void *st, sm_explain_out *out,
                  sm_err *err);
    /* st as bytes appended to t (any bytes: t->len counts them). Asked
     * only while a round is proposed: a finished state is never sent. */
    int (*encode)(const void *params, const void *st, sm_text *t,
                  sm_err *err);
    /* A state from bytes encode wrote; bytes from the wire: checked. */
    void *(*decode)(const void *params, const sm_explain_ctx *ctx,
                    const sm_explain_image *im, const uint8_t *bytes,
                    size_t len, sm_err *err);
    void (*release)(void *st);
} sm_explainer_class;

/* The registry. */
const sm_explainer_class *sm_explainer_find(const char *name);
const sm_explainer_class *const *sm_explainer_all(void);

/* A method with its parameter values. */
typedef struct sm_explainer sm_explainer;

/* The methods ex[0..n) as job.json lists them (io/jobinfo.h), into
 * m[0..n): names and params borrowed from the explainers, until their
 * settings change. */
void sm_explainers_describe(sm_explainer *const *ex, int n,
                            sm_jobinfo_method *m);

/* signed_map of a method whose map is always signed. */
int sm_explain_signed(const void *params);
/* Whether e's maps are signed, with its parameters. */
int sm_explainer_map_signed(const sm_explainer *e);

/* The method with its defaults; NULL with a message naming the unknown
 * method (and listing the known ones). */
sm_explainer *sm_explainer_new(const char *name, sm_err *err);
/* The method of class c, which need not be in the registry (a test's). */
sm_explainer *sm_explainer_new_class(const sm_explainer_class *c,
                                     sm_err *err);
void sm_explainer_destroy(sm_explainer **e);

const sm_explainer_class *sm_explainer_class_of(const sm_explainer *e);

/* Sets parameter key (without the "method." prefix) from text; -1 with a
 * message naming the method, key and value when the key is unknown, the
 * text does not parse or the value is out of range. */
int sm_explainer_set(sm_explainer *e, const char *key, const char *value,
                     sm_err *err);

/* The parameters as a JSON object ({"steps": 50, ...}), borrowed from e
 * until the next call; NULL when out of memory. */
const char *sm_explainer_params_json(sm_explainer *e);

int sm_explainer_run(sm_explainer *e, const sm_explain_ctx *ctx,
                     const sm_explain_batch *b, sm_explain_out *out,
                     sm_err *err);

/* 1 when e's method explains an image in rounds (its own, or the one
 * round of samples, score and fit), so the pipeline can score each round
 * in chunks; else 0. */
int sm_explainer_chunked(const sm_explainer *e);

/* One image's rounds with e's parameters: the state as the last propose
 * left it. Borrows e, ctx's model and im's pixels and id. */
typedef struct sm_explain_rounds sm_explain_rounds;

/* Rounds of image im: begun and proposed (state NULL), or taken up from
 * the bytes sm_explain_rounds_encode wrote (a state from the wire:
 * checked). Checks e's parameters first, as run does. NULL with a message
 * prefixed by the method's name (also for a method without rounds). */
sm_explain_rounds *sm_explain_rounds_new(sm_explainer *e,
                                         const sm_explain_ctx *ctx,
                                         const sm_explain_image *im,
                                         const uint8_t *state, size_t len,
                                         sm_err *err);
void sm_explain_rounds_destroy(sm_explain_rounds **r);

/* The method's class. */
const sm_explainer_class *sm_explain_rounds_class(const sm_explain_rounds *r);
/* The method with its parameters and the image it was opened with
 * (borrowed, as sm_explain_rounds_new borrowed them). */
sm_explainer *sm_explain_rounds_explainer(const sm_explain_rounds *r);
const sm_explain_image *sm_explain_rounds_image(const sm_explain_rounds *r);

/* The proposed round's sample count; 0 when the image is done. */
int64_t sm_explain_rounds_n(const sm_explain_rounds *r);
/* Rounds proposed so far, this one included (1 after new with no state). */
int sm_explain_rounds_round(const sm_explain_rounds *r);

/* Scores of samples [first, first + count) of the proposed round into y;
 * -1 with a message when the range is not within 0..n. */
int sm_explain_rounds_score(sm_explain_rounds *r, int64_t first,
                            int64_t count, double *y, sm_err *err);
/* All n scores of the proposed round (n must be its count); then proposes
 * the next. 0 or -1. */
int sm_explain_rounds_update(sm_explain_rounds *r, const double *y,
                             int64_t n, sm_err *err);
/* When n is 0: the image's map, score, evals and record into out
 * (out->map the caller's h x w buffer). 0 or -1. */
int sm_explain_rounds_finish(sm_explain_rounds *r, sm_explain_out *out,
                             sm_err *err);
/* The state of the proposed round (with the round and its n) as bytes,
 * appended to t. 0, or -1 with a message (also when the image is done). */
int sm_explain_rounds_encode(const sm_explain_rounds *r, sm_text *t,
                             sm_err *err);

#endif
