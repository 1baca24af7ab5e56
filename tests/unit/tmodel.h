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

#endif
