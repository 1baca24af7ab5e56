/* sm_train_set: a labelled image set held in memory for training: every
 * image decoded and preprocessed once, labels as indices into the class
 * list the model's outputs follow. */
#ifndef SM_TRAIN_SET_H
#define SM_TRAIN_SET_H

#include <stddef.h>
#include <stdint.h>

#include "config/model_config.h"
#include "util/err.h"

typedef struct sm_train_set sm_train_set;

/* Loads every image of the dataset at path (data/dataset.h), preprocessed
 * as cfg says, using `threads` decoding threads. Labels are matched to the
 * classes by name: the given classes (n_classes of them), or with classes
 * NULL the config's, or when the config names none the dataset's own. An
 * image without a label, or of a class not in the list, is an error naming
 * it. */
sm_train_set *sm_train_set_load(const char *path, const sm_model_config *cfg,
                                const char *const *classes, int n_classes,
                                int threads, sm_err *err);

/* A set from memory: n images of c x h x w floats in x and their labels
 * (0..n_classes-1), both copied. For tests and callers that make their own
 * data. */
sm_train_set *sm_train_set_from_memory(const float *x, const int *labels,
                                       size_t n, int c, int h, int w,
                                       const char *const *classes,
                                       int n_classes, sm_err *err);

void sm_train_set_destroy(sm_train_set **s);

/* Where the set came from (the dataset path, or "memory"). */
const char *sm_train_set_source(const sm_train_set *s);
size_t sm_train_set_count(const sm_train_set *s);
void sm_train_set_shape(const sm_train_set *s, int *c, int *h, int *w);
int sm_train_set_n_classes(const sm_train_set *s);
/* The class names, n_classes of them. */
const char *const *sm_train_set_classes(const sm_train_set *s);
/* The order of pass `pass` over n images (epoch, or a pass of the
 * autoencoder's batches): a Fisher-Yates shuffle of 0..n-1 into order,
 * keyed by (seed, pass). */
void sm_train_shuffle(size_t *order, size_t n, uint64_t seed, int pass);

/* Image i (c x h x w floats) and its label. */
const float *sm_train_set_image(const sm_train_set *s, size_t i);
int sm_train_set_label(const sm_train_set *s, size_t i);

#endif
