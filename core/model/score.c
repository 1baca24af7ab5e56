/* Target scores: one forward run, the class scores output checked, each
 * image's score read as a logit, a softmax probability or as is. */
#include "model/score.h"

#include <math.h>
#include <stdlib.h>

const sm_tensor *sm_model_class_scores(const sm_model_scoring *s,
                                       const sm_tensor *x, const int *target,
                                       sm_err *err)
{
    const sm_tensor *in[1] = {x}, *outs[64];
    if (sm_model_n_outputs(s->model) > 64)
        return sm_err_set(err, "too many model outputs"), NULL;
    if ((s->forward_only ? sm_model_infer : sm_model_run)(s->model, in, 1,
                                                          outs, err))
        return NULL;
    const sm_tensor *y = outs[s->output];
    int64_t n = x->shape[0];
    if (y->ndim != 2 || y->shape[0] != n) {
        char b[96];
        sm_err_set(err, "the model's output %s is not N x classes",
                   sm_shape_str(y->ndim, y->shape, b, sizeof b));
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (target[i] < 0 || target[i] >= y->shape[1]) {
            sm_err_set(err, "target class %d is not among the model's %lld "
                       "outputs", target[i], (long long)y->shape[1]);
            return NULL;
        }
    return y;
}

void sm_model_softmax_row(const float *row, int64_t k, double *p)
{
    double mx = row[0], s = 0;
    for (int64_t j = 1; j < k; j++)
        mx = row[j] > mx ? row[j] : mx;
    for (int64_t j = 0; j < k; j++)
        s += p[j] = exp((double)row[j] - mx);
    for (int64_t j = 0; j < k; j++)
        p[j] /= s;
}

int sm_model_scoring_softmax(const sm_model_scoring *s)
{
    return s->score_prob && !s->output_probs;
}

int sm_model_target_scores(const sm_model_scoring *s, const sm_tensor *x,
                           const int *target, double *score, sm_err *err)
{
    const sm_tensor *y = sm_model_class_scores(s, x, target, err);
    if (!y)
        return -1;
    int64_t n = y->shape[0], k = y->shape[1];
    int soft = sm_model_scoring_softmax(s);
    double *p = soft ? malloc(sizeof(double) * (size_t)k) : NULL;
    if (soft && !p)
        return sm_err_set(err, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        const float *row = y->data + i * k;
        if (p) {
            sm_model_softmax_row(row, k, p);
            score[i] = p[target[i]];
        } else {
            score[i] = row[target[i]];
        }
    }
    free(p);
    return 0;
}

int64_t sm_model_argmax_row(const float *row, int64_t k)
{
    int64_t best = 0;
    for (int64_t c = 1; c < k; c++)
        if (row[c] > row[best])
            best = c;
    return best;
}
