#include "util/rng.h"

#include <math.h>

uint64_t sm_rng_key(uint64_t seed, const char *const *names)
{
    /* FNV-1a over the names, separated by a byte no name contains, mixed
     * with the seed. */
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (; names && *names; names++) {
        for (const unsigned char *p = (const unsigned char *)*names; *p; p++)
            h = (h ^ *p) * 0x100000001b3ull;
        h = (h ^ 0xffu) * 0x100000001b3ull;
    }
    return sm_rng_u64(h, seed);
}

uint64_t sm_rng_u64(uint64_t key, uint64_t counter)
{
    uint64_t z = key + (counter + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double sm_rng_uniform(uint64_t key, uint64_t counter)
{
    return (double)(sm_rng_u64(key, counter) >> 11) * (1.0 / 9007199254740992.0);
}

double sm_rng_normal(uint64_t key, uint64_t counter)
{
    double u1 = sm_rng_uniform(key, 2 * counter);
    double u2 = sm_rng_uniform(key, 2 * counter + 1);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Box-Muller's pair q of sm_rng_normals. */
static void normal_pair(uint64_t key, uint64_t q, double *z)
{
    double u1 = sm_rng_uniform(key, 2 * q);
    double u2 = sm_rng_uniform(key, 2 * q + 1);
    if (u1 < 1e-300)
        u1 = 1e-300;
    double r = sqrt(-2.0 * log(u1)), t = 2.0 * M_PI * u2;
    z[0] = r * cos(t);
    z[1] = r * sin(t);
}

void sm_rng_normals(uint64_t key, uint64_t c0, int64_t n, double *out)
{
    double z[2];
    int64_t i = 0;
    if (n > 0 && c0 % 2) { /* starts on a pair's second value */
        normal_pair(key, c0 / 2, z);
        out[i++] = z[1];
    }
    for (; i + 2 <= n; i += 2)
        normal_pair(key, (c0 + (uint64_t)i) / 2, out + i);
    if (i < n) {
        normal_pair(key, (c0 + (uint64_t)i) / 2, z);
        out[i] = z[0];
    }
}
