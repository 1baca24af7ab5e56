/* What LIME and KernelSHAP share: their superpixel parameters, segmenting
 * each image, scoring the image with superpixels hidden by 0/1 masks, and
 * the explainer's rounds (explainer.h) over a method's rows and fit: the
 * masks and the predictions stay separate from the surrogate fit, so the
 * pipeline can gather the predictions from several workers. */
#ifndef SM_EXPLAIN_SUPERPIXEL_H
#define SM_EXPLAIN_SUPERPIXEL_H

#include <stddef.h>
#include <stdint.h>

#include "explain/explainer.h"
#include "segment/segment.h"

/* The first member of both methods' params structs, so one parameter
 * table (SM_SUPERPIXEL_PARAM_DEFS) serves both. */
typedef struct sm_superpixel_params {
    char segmentation[SM_PARAM_STR]; /* grid, quickshift, slic, felzenszwalb */
    double kernel_size;              /* quickshift; 0: 1 or 4 (see .c) */
    double max_dist, ratio;          /* quickshift */
    int n_segments;                  /* slic */
    double compactness;              /* slic */
    double scale;                    /* felzenszwalb */
    int min_size;                    /* felzenszwalb */
    int cells;                       /* grid */
    char hide[SM_PARAM_STR];         /* mean or constant */
    double hide_value;               /* constant */
    int internal_batch;
} sm_superpixel_params;

extern const char *const sm_superpixel_segmentations[];
extern const char *const sm_superpixel_hides[];

#define SM_SUPERPIXEL_PARAM_DEFS(T)                                          \
    {"segmentation", SM_PARAM_STRING, offsetof(T, sp.segmentation),          \
     "quickshift", 0, 0, sm_superpixel_segmentations,                        \
     "superpixels: quickshift, slic, felzenszwalb or grid"},                 \
    {"kernel_size", SM_PARAM_FLOAT, offsetof(T, sp.kernel_size), "0", 0,     \
     1000, NULL,                                                             \
     "quickshift kernel width (px); 0: 1 for grayscale images under 64x64, " \
     "else 4 (LIME's)"},                                                     \
    {"max_dist", SM_PARAM_FLOAT, offsetof(T, sp.max_dist), "200", 0, 1e9,    \
     NULL, "quickshift: cut links longer than this"},                        \
    {"ratio", SM_PARAM_FLOAT, offsetof(T, sp.ratio), "0.2", 0, 1, NULL,      \
     "quickshift: colour weight against space"},                             \
    {"n_segments", SM_PARAM_INT, offsetof(T, sp.n_segments), "100", 2,       \
     1000000, NULL, "slic: approximate number of segments"},                 \
    {"compactness", SM_PARAM_FLOAT, offsetof(T, sp.compactness), "10", 0,    \
     1e9, NULL, "slic: higher gives squarer segments"},                      \
    {"scale", SM_PARAM_FLOAT, offsetof(T, sp.scale), "1", 0, 1e9, NULL,      \
     "felzenszwalb: higher gives larger segments"},                          \
    {"min_size", SM_PARAM_INT, offsetof(T, sp.min_size), "20", 1, 1000000,   \
     NULL, "felzenszwalb: smaller segments are merged"},                     \
    {"cells", SM_PARAM_INT, offsetof(T, sp.cells), "8", 1, 10000, NULL,      \
     "grid: cells per side"},                                                \
    {"hide", SM_PARAM_STRING, offsetof(T, sp.hide), "mean", 0, 0,            \
     sm_superpixel_hides,                                                    \
     "a hidden superpixel takes its mean colour, or hide_value"},            \
    {"hide_value", SM_PARAM_FLOAT, offsetof(T, sp.hide_value), "0", -1e30,   \
     1e30, NULL, "the value of hidden pixels when hide=constant"},           \
    {"internal_batch", SM_PARAM_INT, offsetof(T, sp.internal_batch), "256",  \
     1, 1000000, NULL, "perturbed copies of one image per model run"}

/* One image's superpixels. */
typedef struct sm_superpixel_image {
    int d;            /* superpixels */
    int32_t *label;   /* h x w, 0..d-1 */
    float *hidden;    /* c x h x w: each pixel's value when hidden */
    const float *x;   /* c x h x w, borrowed */
    int64_t c, h, w;
    sm_segment_params used; /* the segmentation actually used */
    int rescaled;     /* 1: pixels stretched min..max to segment */
} sm_superpixel_image;

/* Segments image x (c x h x w, the model input) and prepares its hidden
 * values. The segmenter wants [0, 1] pixels: an input outside that range
 * (normalised) is stretched min..max for the segmentation only. */
int sm_superpixel_segment(const sm_superpixel_params *p, const float *x,
                          int64_t c, int64_t h, int64_t w,
                          sm_superpixel_image *s, sm_err *err);
void sm_superpixel_image_free(sm_superpixel_image *s);

/* The target score (softmax probability, or the output when it holds
 * probabilities) of the image with each row of Z (n x d, 1 = shown) applied
 * into y[n]; the copies are built straight into the batch buffer, at most
 * cap a run, runs holding this image only. */
int sm_superpixel_scores(const sm_explain_ctx *ctx, const sm_superpixel_image *s,
                         int target, const uint8_t *Z, int64_t n, int cap,
                         double *y, sm_err *err);

/* The model's label (its highest class, the first of equals) of the
 * image with each row of Z (n x d, 1 = shown) applied, into label[n] (as
 * doubles), at most cap copies a run: what rule methods (anchor, lore)
 * learn from. */
int sm_superpixel_labels(const sm_explain_ctx *ctx,
                         const sm_superpixel_image *s, const uint8_t *Z,
                         int64_t n, int cap, double *label, sm_err *err);

/* s's superpixels as bytes appended to t: d (int32), then the h x w
 * labels (int32). 0 or -1. */
int sm_superpixel_image_encode(const sm_superpixel_image *s, sm_text *t,
                               sm_err *err);
/* s (to free) from the front of b (len bytes, from the wire: checked)
 * for image im, its hidden values prepared by p; *used = bytes taken. 0,
 * or -1 with a message naming the image. */
int sm_superpixel_image_decode(const sm_superpixel_params *p,
                               const sm_explain_image *im, const uint8_t *b,
                               size_t len, sm_superpixel_image *s,
                               size_t *used, sm_err *err);

/* v[d] (one value a superpixel) painted into map (h x w). */
void sm_superpixel_paint(const sm_superpixel_image *s, const double *v,
                         float *map);

/* Adds "segmentation": {the segmentation s used} to rec. 0, or -1 when
 * out of memory. */
int sm_superpixel_record(const sm_superpixel_image *s, sm_record *rec);

/* A superpixel method (LIME, KernelSHAP): its neighbourhood is n rows of
 * 0/1 over the image's d superpixels (1 = shown), each row a pure function
 * of its index, scored by the target's probability (sm_superpixel_scores)
 * and fitted after over all n scores. The method's params struct starts
 * with its sm_superpixel_params. Each function returns -1 with a message
 * on failure. */
typedef struct sm_superpixel_method {
    /* n for the segmented image s. */
    int64_t (*samples)(const void *params, const sm_explain_ctx *ctx,
                       const sm_superpixel_image *s, const char *id,
                       sm_err *err);
    /* Rows [first, first + count) into Z (count x s->d); 0 or -1. */
    int (*rows)(const void *params, const sm_explain_ctx *ctx,
                const sm_superpixel_image *s, const char *id, int64_t first,
                int64_t count, uint8_t *Z, sm_err *err);
    /* out's map, score, evals and record from y[0..n); 0 or -1. */
    int (*fit)(const void *params, const sm_explain_ctx *ctx,
               const sm_superpixel_image *s, const char *id, const double *y,
               int64_t n, sm_explain_out *out, sm_err *err);
} sm_superpixel_method;

/* The rounds of method m (explainer.h), one round each: begin segments
 * the image and counts its n samples; the state carries the labels, so
 * the chunk workers of the pipeline do not segment again; finish fits m
 * over the n scores. run() is the generic loop: whole and chunked give
 * the same maps. Errors name the image. */
void *sm_superpixel_begin(const sm_superpixel_method *m, const void *params,
                          const sm_explain_ctx *ctx,
                          const sm_explain_image *im, sm_err *err);
int64_t sm_superpixel_propose(const void *params, const sm_explain_ctx *ctx,
                              const sm_explain_image *im, void *st,
                              sm_err *err);
int sm_superpixel_round_score(const sm_superpixel_method *m,
                              const void *params, const sm_explain_ctx *ctx,
                              const sm_explain_image *im, const void *st,
                              int64_t first, int64_t count, double *y,
                              sm_err *err);
int sm_superpixel_update(const void *params, const sm_explain_ctx *ctx,
                         const sm_explain_image *im, void *st,
                         const double *y, int64_t n, sm_err *err);
int sm_superpixel_finish(const sm_superpixel_method *m, const void *params,
                         const sm_explain_ctx *ctx,
                         const sm_explain_image *im, void *st,
                         sm_explain_out *out, sm_err *err);
int sm_superpixel_encode(const void *params, const void *st, sm_text *t,
                         sm_err *err);
void *sm_superpixel_decode(const sm_superpixel_method *m, const void *params,
                           const sm_explain_ctx *ctx,
                           const sm_explain_image *im, const uint8_t *b,
                           size_t len, sm_err *err);
void sm_superpixel_release(void *st);

/* Defines static prefix_begin, prefix_round_score, prefix_finish and
 * prefix_decode over method m with the signatures of sm_explainer_class's
 * members, and SM_SUPERPIXEL_CLASS_OPS(prefix) names them (and the shared
 * ops) in the class: the two methods differ only in m. */
#define SM_SUPERPIXEL_OPS(prefix, m)                                         \
    static void *prefix##_begin(const void *params, const sm_explain_ctx *ctx, \
                                const sm_explain_image *im, sm_err *err)     \
    {                                                                        \
        return sm_superpixel_begin(&(m), params, ctx, im, err);              \
    }                                                                        \
    static int prefix##_round_score(                                         \
        const void *params, const sm_explain_ctx *ctx,                       \
        const sm_explain_image *im, const void *st, int64_t first,           \
        int64_t count, double *y, sm_err *err)                               \
    {                                                                        \
        return sm_superpixel_round_score(&(m), params, ctx, im, st, first,   \
                                         count, y, err);                     \
    }                                                                        \
    static int prefix##_finish(const void *params, const sm_explain_ctx *ctx, \
                               const sm_explain_image *im, void *st,         \
                               sm_explain_out *out, sm_err *err)             \
    {                                                                        \
        return sm_superpixel_finish(&(m), params, ctx, im, st, out, err);    \
    }                                                                        \
    static void *prefix##_decode(const void *params,                         \
                                 const sm_explain_ctx *ctx,                  \
                                 const sm_explain_image *im,                 \
                                 const uint8_t *b, size_t len, sm_err *err)  \
    {                                                                        \
        return sm_superpixel_decode(&(m), params, ctx, im, b, len, err);     \
    }

#define SM_SUPERPIXEL_CLASS_OPS(prefix)                                      \
    .begin = prefix##_begin, .propose = sm_superpixel_propose,               \
    .round_score = prefix##_round_score, .update = sm_superpixel_update,     \
    .finish = prefix##_finish, .encode = sm_superpixel_encode,               \
    .decode = prefix##_decode, .release = sm_superpixel_release

#endif
