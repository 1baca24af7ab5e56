/* Helpers for the explainer tests: small models built with the ONNX writer
 * (independent of what they test) and deterministic test images. */
#ifndef TMODEL_H
#define TMODEL_H

#include <stdint.h>

#include "explain/explainer.h"
#include "model/model.h"

/* logits = W flatten(x) + b for x [N, c, h, w]: W [k, c*h*w] and b [k]
 * (b NULL: no bias) are copied into the model. Asserts on failure. */
sm_model *tmodel_linear(const sm_tensor *w, const sm_tensor *b, int64_t c,
                        int64_t h, int64_t wd);

/* The same model as ONNX bytes (*len of them; the caller frees). */
unsigned char *tmodel_linear_bytes(const sm_tensor *w, const sm_tensor *b,
                                   int64_t c, int64_t h, int64_t wd,
                                   size_t *len);

/* A linear model of k classes over a 1 x s x s image cut into a
 * cells x cells grid of squares numbered row by row (s a multiple of
 * cells): logit i = bias[i] (NULL: 0) + the sum over cells j of
 * weight[i * cells^2 + j] times the sum of cell j's pixels. */
sm_model *tmodel_cells(int64_t s, int cells, int k, const float *weight,
                       const float *bias);

/* An n x c x h x w tensor of ones. */
sm_tensor *tmodel_ones(int64_t n, int64_t c, int64_t h, int64_t w);

/* n images of c x h x w values uniform in [0, 1) from rng stream key. */
sm_tensor *tmodel_images(int64_t n, int64_t c, int64_t h, int64_t w,
                         uint64_t key);

/* Runs method name with "key=value" settings (NULL-ended) on x with ctx
 * and image ids, maps N x H x W into maps (out[i].map set here; out's
 * records, zeroed or from an earlier run, are freed first: the caller
 * frees the last ones). Returns
 * sm_explainer_run's result, the message in err. */
int tmodel_explain(const char *name, const char *const *set,
                   const sm_explain_ctx *ctx, const sm_tensor *x,
                   const int *target, const char *const *ids, float *maps,
                   sm_explain_out *out, sm_err *err);

/* The lists a and b (NULL-ended, either NULL) one after the other into
 * set, NULL-ended; asserts they fit in cap entries with the NULL. */
void tmodel_concat(const char **set, int cap, const char *const *a,
                   const char *const *b);

/* Explainer name with "key=value" settings (NULL-ended), each asserted
 * to be taken. */
sm_explainer *tmodel_explainer(const char *name, const char *const *set);

/* Record r's array called name, or NULL. */
const sm_record_array *tmodel_array(const sm_record *r, const char *name);

/* The number after "key": in json; asserts it is there. */
double tmodel_jnum(const char *json, const char *key);

/* Asserts that r's "segments" array is an h x w grid of cells x cells
 * superpixels numbered row by row (h and w multiples of cells). */
void tmodel_grid_segments(const sm_record *r, int h, int w, int cells);

/* Asserts that a and b are the same bits: maps (hw floats), evals,
 * score, record JSON and arrays; what names the comparison. */
void tmodel_same_out(const sm_explain_out *a, const float *amap,
                     const sm_explain_out *b, const float *bmap, int64_t hw,
                     const char *what);

/* Image im explained by e round by round as the pipeline does: each
 * round's state encoded, its scores (labels of a method with `classes`
 * classes, checked to be classes) computed in two chunks (the second
 * first), each on rounds taken up from the bytes, and the update on
 * rounds taken up from them again; finished into out. Returns its
 * rounds; *rows (NULL: not wanted) the rows scored over all of them. */
int tmodel_by_rounds(sm_explainer *e, const sm_explain_ctx *ctx,
                     const sm_explain_image *im, int classes,
                     sm_explain_out *out, int64_t *rows);

/* Image x (1 x c x h x w) explained by method for target with settings
 * set (NULL-ended) and ctx, as image id: run twice whole (tmodel_explain)
 * and by rounds (tmodel_by_rounds, labels of `classes` classes), all
 * three the same bits. Returns the rounds; *rows the rows the rounds
 * scored and *evals the run's evals (NULL: not wanted). */
int tmodel_runs_equal_rounds(const char *method, const char *const *set,
                             const sm_explain_ctx *ctx, const sm_tensor *x,
                             int target, const char *id, int classes,
                             int64_t *rows, int64_t *evals);

/* Asserts that method refuses key=value with a message naming both. */
void tmodel_bad_setting(const char *method, const char *key,
                        const char *value);

/* An adaptive method's (adaptive.h) corrupt states refused: e (method
 * `method`, over d superpixels) is run `rounds` rounds on im (the last
 * of more than one row) and its state encoded; that state, cut or
 * extended, with a count not its own, a negative count or label, labels
 * that do not end a round, or a superpixel id out of range, is refused
 * with a message naming the method, the image and the fault; the state
 * itself is taken up. */
void tmodel_corrupt_states(sm_explainer *e, const char *method,
                           const sm_explain_ctx *ctx,
                           const sm_explain_image *im, int rounds, int d);

#endif
