/* Helpers shared by the files of core/surrogate/ (not public API). */
#ifndef SM_SURROGATE_INTERNAL_H
#define SM_SURROGATE_INTERNAL_H

#include <stdint.h>

#include "util/err.h"

/* Refuses n < 2, d < 1, non-finite y and non-finite or negative weights
 * (w may be NULL), with a message that starts with `who`. */
int sm_sur_check(const char *who, int n, int d, const double *y,
                 const double *w, sm_err *err);

/* Refuses a mask entry other than 0 or 1. */
int sm_sur_check_mask(const char *who, const uint8_t *Z, long n, int d,
                      sm_err *err);

/* Solves A x = b for symmetric positive semi-definite A (p×p, upper
 * triangle read; overwritten) and b (overwritten with x): Cholesky, the
 * same bits on every CPU and BLAS, or the minimum-norm least-squares
 * solution (like numpy's pinv, LAPACK's) when A is singular. */
int sm_sur_solve_psd(double *A, double *b, int p, sm_err *err);

#endif
