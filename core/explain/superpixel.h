/* What LIME and KernelSHAP share: their superpixel parameters, segmenting
 * each image, and scoring the image with superpixels hidden by 0/1 masks.
 * The masks and the predictions stay separate from the surrogate fit
 * (issue 4: the pipeline will gather predictions from several workers). */
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
    char json[256];   /* the segmentation actually used, a JSON object */
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

/* v[d] (one value a superpixel) painted into map (h x w). */
void sm_superpixel_paint(const sm_superpixel_image *s, const double *v,
                         float *map);

/* Appends "key": [v0, ...] to a JSON buffer at *off (capacity cap);
 * writes null when the array does not fit (maps, not extras, are the
 * result; extras are bounded). */
void sm_superpixel_json_array(char *buf, size_t cap, size_t *off,
                              const char *key, const double *v, int d);

/* One image's explanation: params (the method's own struct), the image x
 * (c x h x w), its target and id; writes out. 0 or -1 with a message. */
typedef int (*sm_superpixel_image_fn)(const void *params,
                                      const sm_explain_ctx *ctx,
                                      const float *x, int64_t c, int64_t h,
                                      int64_t w, int target, const char *id,
                                      sm_explain_out *out, sm_err *err);

/* A method's run(): fn on each image of b in turn (each image has its own
 * superpixels and neighbourhood). */
int sm_superpixel_run_each(sm_superpixel_image_fn fn, const void *params,
                           const sm_explain_ctx *ctx,
                           const sm_explain_batch *b, sm_explain_out *out,
                           sm_err *err);

#endif
