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

/* Box-Muller's radius *r and angle *t from draws 2q and 2q + 1: its two
 * normals are r cos t and r sin t. */
static void polar(uint64_t key, uint64_t q, double *r, double *t)
{
    double u1 = sm_rng_uniform(key, 2 * q);
    double u2 = sm_rng_uniform(key, 2 * q + 1);
    if (u1 < 1e-300)
        u1 = 1e-300;
    *r = sqrt(-2.0 * log(u1));
    *t = 2.0 * M_PI * u2;
}

double sm_rng_normal(uint64_t key, uint64_t counter)
{
    double r, t;
    polar(key, counter, &r, &t);
    return r * cos(t);
}

void sm_rng_normals(uint64_t key, uint64_t c0, int64_t n, double *out)
{
    for (int64_t i = 0; i < n;) {
        const uint64_t c = c0 + (uint64_t)i;
        double r, t;
        polar(key, c / 2, &r, &t);
        const double z[2] = {r * cos(t), r * sin(t)};
        for (uint64_t h = c % 2; h < 2 && i < n; h++)
            out[i++] = z[h];
    }
}
