/* Adaptive searches over superpixels (anchor, lore): a method asks the
 * model to label a set of on/off rows over the image's superpixels, takes
 * the labels, and decides what to ask next, until it is done. Each set is
 * a round of the explainer's rounds (explainer.h), so the pipeline can
 * label it in chunks on any worker.
 *
 * A row is labelled once: the rounds hold only the rows the model never
 * labelled for this image, and rows asked again are told from memory.
 * evals counts the rows labelled (and what finish adds).
 *
 * The state sent between machines is the segmentation and the labels of
 * every row labelled so far, nothing of the method's own: taking it up
 * replays the search from the start with those labels, which brings it to
 * exactly where it was (a search is a pure function of its labels, draws
 * keyed by the job seed). So a method writes its search once, as a plain
 * machine, and no codec of its private state can disagree with it. */
#ifndef SM_EXPLAIN_ADAPTIVE_H
#define SM_EXPLAIN_ADAPTIVE_H

#include <stdint.h>

#include "explain/superpixel.h"

/* A method's search. The method's params struct starts with its
 * sm_superpixel_params. Each function returns -1 (NULL) with a message. */
typedef struct sm_adaptive_method {
    /* A search of image im over its segmentation s (borrowed until free). */
    void *(*start)(const void *params, const sm_explain_ctx *ctx,
                   const sm_explain_image *im, const sm_superpixel_image *s,
                   sm_err *err);
    /* The rows to label next: *Z (n x s->d, 1 = shown), borrowed from the
     * search until tell; n = 0 when the search is done. */
    int64_t (*ask)(void *search, const uint8_t **Z, sm_err *err);
    /* The model's labels of the n rows ask gave. */
    int (*tell)(void *search, const int32_t *label, int64_t n, sm_err *err);
    /* When done: out's map (1 x h x w, NULL for no_map), its record, and
     * in evals the model evaluations it made itself. May run the model
     * (ctx). The generic code adds the rows labelled to evals, and the
     * score, "label", "n_segments", "segmentation" and the "segments"
     * array (h x w superpixel ids) that every such method reports. */
    int (*finish)(void *search, const sm_explain_ctx *ctx,
                  sm_explain_out *out, sm_err *err);
    void (*free)(void *search);
} sm_adaptive_method;

/* A method's zeroed search struct of size bytes, for its start; NULL
 * with a message when out of memory. */
void *sm_adaptive_alloc(size_t size, sm_err *err);

/* The explainer's rounds (explainer.h) over method m; errors name the
 * image. */
void *sm_adaptive_begin(const sm_adaptive_method *m, const void *params,
                        const sm_explain_ctx *ctx, const sm_explain_image *im,
                        sm_err *err);
int64_t sm_adaptive_propose(const void *params, const sm_explain_ctx *ctx,
                            const sm_explain_image *im, void *st,
                            sm_err *err);
int sm_adaptive_round_score(const void *params, const sm_explain_ctx *ctx,
                            const sm_explain_image *im, const void *st,
                            int64_t first, int64_t count, double *y,
                            sm_err *err);
int sm_adaptive_update(const void *params, const sm_explain_ctx *ctx,
                       const sm_explain_image *im, void *st, const double *y,
                       int64_t n, sm_err *err);
int sm_adaptive_finish(const void *params, const sm_explain_ctx *ctx,
                       const sm_explain_image *im, void *st,
                       sm_explain_out *out, sm_err *err);
int sm_adaptive_encode(const void *params, const void *st, sm_text *t,
                       sm_err *err);
void *sm_adaptive_decode(const sm_adaptive_method *m, const void *params,
                         const sm_explain_ctx *ctx, const sm_explain_image *im,
                         const uint8_t *b, size_t len, sm_err *err);
void sm_adaptive_release(void *st);

/* Defines static prefix_begin and prefix_decode over method m, and
 * SM_ADAPTIVE_CLASS_OPS(prefix) names them and the shared ops in the
 * class. */
#define SM_ADAPTIVE_OPS(prefix, m)                                           \
    static void *prefix##_begin(const void *params, const sm_explain_ctx *ctx, \
                                const sm_explain_image *im, sm_err *err)     \
    {                                                                        \
        return sm_adaptive_begin(&(m), params, ctx, im, err);                \
    }                                                                        \
    static void *prefix##_decode(const void *params,                         \
                                 const sm_explain_ctx *ctx,                  \
                                 const sm_explain_image *im,                 \
                                 const uint8_t *b, size_t len, sm_err *err)  \
    {                                                                        \
        return sm_adaptive_decode(&(m), params, ctx, im, b, len, err);       \
    }

#define SM_ADAPTIVE_CLASS_OPS(prefix)                                        \
    .begin = prefix##_begin, .propose = sm_adaptive_propose,                 \
    .round_score = sm_adaptive_round_score, .update = sm_adaptive_update,    \
    .finish = sm_adaptive_finish, .encode = sm_adaptive_encode,              \
    .decode = prefix##_decode, .release = sm_adaptive_release

#endif
