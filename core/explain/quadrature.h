/* Gauss-Legendre quadrature: the nodes and weights of integrated gradients'
 * default path rule (intg.c). */
#ifndef SM_EXPLAIN_QUADRATURE_H
#define SM_EXPLAIN_QUADRATURE_H

/* Gauss-Legendre quadrature on [-1, 1]: n nodes in increasing order and
 * their weights, by Newton's method on the Legendre polynomial P_n.
 * 0, or -1 when n < 1. */
int sm_gauss_legendre(int n, double *node, double *weight);

#endif
