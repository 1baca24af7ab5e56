/* sm_rng: counter-based random numbers. A draw is a pure function of
 * (key, counter), and a key is a hash of (job seed, image id, method), so a
 * neighbourhood or a noise sample is the same whatever the batching,
 * threads, chunking or retries (docs/EXPLAIN.md, "Bit-identical maps"). No state. */
#ifndef SM_RNG_H
#define SM_RNG_H

#include <stdint.h>

/* The key of a stream: seed, then the strings (NULL-terminated list) that
 * name it, e.g. sm_rng_key(seed, (const char*[]){id, "smoothgrad", NULL}). */
uint64_t sm_rng_key(uint64_t seed, const char *const *names);

/* The counter-th 64 random bits of stream key (splitmix64 finaliser of
 * key + counter * golden ratio: a bijection per key, well mixed). */
uint64_t sm_rng_u64(uint64_t key, uint64_t counter);

/* Uniform in [0, 1) with 53 random bits. */
double sm_rng_uniform(uint64_t key, uint64_t counter);

/* Standard normal (Box-Muller on draws 2*counter and 2*counter + 1). */
double sm_rng_normal(uint64_t key, uint64_t counter);

/* Standard normals of counters c0 .. c0 + n - 1 into out, from a stream of
 * their own: counters 2q and 2q + 1 are the two outputs of one
 * Box-Muller step (r cos t, r sin t) on draws 2q and 2q + 1, so that a
 * long run of noise costs half the draws and logarithms of
 * sm_rng_normal (whose values these are not). */
void sm_rng_normals(uint64_t key, uint64_t c0, int64_t n, double *out);

#endif
