/* Target scores of a classifier: which model output holds the class scores
 * and how a score is read from it (the logit, its softmax probability, or
 * the output itself when it holds probabilities). What explainers and the
 * deletion/insertion metrics score images by. */
#ifndef SM_MODEL_SCORE_H
#define SM_MODEL_SCORE_H

#include <stdint.h>

#include "model/model.h"
#include "tensor/tensor.h"
#include "util/err.h"

typedef struct sm_model_scoring {
    sm_model *model;  /* borrowed; run by the calls below */
    int output;       /* the model output holding class scores */
    int output_probs; /* 1: that output already holds probabilities */
    int score_prob;   /* 1: score = softmax probability; 0: the logit
                         (ignored when output_probs: the output itself) */
    int forward_only; /* 1: runs by sm_model_infer, which keep nothing
                         for a backward or relevance pass after them */
} sm_model_scoring;

/* The target score of each image of x (N x C x H x W) into score[N]. One
 * forward run. 0 or -1 with a message. */
int sm_model_target_scores(const sm_model_scoring *s, const sm_tensor *x,
                           const int *target, double *score, sm_err *err);

/* Runs x and returns the class scores output (the model's, valid until its
 * next run), checked to be N x classes with every target a class; NULL
 * with a message otherwise. */
const sm_tensor *sm_model_class_scores(const sm_model_scoring *s,
                                       const sm_tensor *x, const int *target,
                                       sm_err *err);

/* 1 when a score is the softmax probability of the output's row. */
int sm_model_scoring_softmax(const sm_model_scoring *s);

/* The index of row's (k values) largest value, the first of equals: the
 * model's prediction. */
int64_t sm_model_argmax_row(const float *row, int64_t k);

/* Softmax of row (k values) into p, in double. */
void sm_model_softmax_row(const float *row, int64_t k, double *p);

#endif
