/* Adaptive searches (anchor, lore, abele): a method asks the model to
 * label a set of rows (on/off masks over the image's superpixels, or
 * latent vectors an autoencoder decodes), takes the labels, and decides
 * what to ask next, until it is done. Each set is a round of the
 * explainer's rounds (explainer.h), so the pipeline can label it in
 * chunks on any worker.
 *
 * A row is labelled once: the rounds hold only the rows the model never
 * labelled for this image, and rows asked again are told from memory.
 * evals counts the rows labelled (and what finish adds).
 *
 * The state sent between machines is the space (the segmentation) and
 * the labels of every row labelled so far, nothing of the method's own:
 * taking it up replays the search from the start with those labels, which brings it to
 * exactly where it was (a search is a pure function of its labels, draws
 * keyed by the job seed). So a method writes its search once, as a plain
 * machine, and no codec of its private state can disagree with it. */
#ifndef SM_EXPLAIN_ADAPTIVE_H
#define SM_EXPLAIN_ADAPTIVE_H

#include <stdint.h>

#include "explain/superpixel.h"

/* The space a search's rows live in: the superpixel on/off masks of
 * the image (sm_adaptive_superpixels: rows of d bytes, 1 = shown; the
 * method's params struct then starts with its sm_superpixel_params), or a
 * method's own (abele's latent vectors). Each function returns -1 (NULL)
 * with a message. */
typedef struct sm_adaptive_space {
    /* Image im's space (a new object) and its row size in bytes. */
    void *(*open)(const void *params, const sm_explain_ctx *ctx,
                  const sm_explain_image *im, size_t *row_bytes,
                  sm_err *err);
    /* What of the space a state carries, appended to t (nothing when a
     * space is a pure function of the image and the job). */
    int (*encode)(const void *space, sm_text *t, sm_err *err);
    /* The space from the front of b (len bytes from the wire: checked),
     * *used the bytes it took. */
    void *(*decode)(const void *params, const sm_explain_ctx *ctx,
                    const sm_explain_image *im, const uint8_t *b,
                    size_t len, size_t *used, size_t *row_bytes,
                    sm_err *err);
    /* The model's labels of n rows into label. */
    int (*labels)(const void *params, const sm_explain_ctx *ctx,
                  const void *space, const uint8_t *rows, int64_t n,
                  double *label, sm_err *err);
    /* What every method of the space reports: out->score (the target's
     * probability on the image itself, one evaluation) and its record
     * fields. */
    int (*finish)(const void *params, const sm_explain_ctx *ctx,
                  const sm_explain_image *im, const void *space,
                  sm_explain_out *out, sm_err *err);
    void (*free)(void *space);
} sm_adaptive_space;

/* Superpixel masks; the record gets "n_segments", "segmentation" and the
 * "segments" array (h x w superpixel ids). */
extern const sm_adaptive_space sm_adaptive_superpixels;

/* A method's search. Each function returns -1 (NULL) with a message. */
typedef struct sm_adaptive_method {
    const sm_adaptive_space *space;
    /* A search of image im over its space (borrowed until free: an
     * sm_superpixel_image for sm_adaptive_superpixels). */
    void *(*start)(const void *params, const sm_explain_ctx *ctx,
                   const sm_explain_image *im, const void *space,
                   sm_err *err);
    /* The rows to label next: *Z (n rows of the space's size), borrowed
     * from the search until tell; n = 0 when the search is done. */
    int64_t (*ask)(void *search, const uint8_t **Z, sm_err *err);
    /* The model's labels of the n rows ask gave. */
    int (*tell)(void *search, const int32_t *label, int64_t n, sm_err *err);
    /* When done: out's map (1 x h x w, NULL for no_map), its record, and
     * in evals the model evaluations it made itself. May run the model
     * (ctx). The generic code adds the rows labelled to evals, and the
     * space's score and record fields and "label". */
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
