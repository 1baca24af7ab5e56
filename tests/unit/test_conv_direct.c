/* The direct convolution kernel (ops/conv_direct.c) on each instruction
 * set this CPU has (AVX2, AVX-512), against plain loops: bit for bit
 * against its definition (one fmaf chain over the padded taps, then the
 * bias, as im2col + sm_sgemm computes it), and within float rounding of
 * double precision. Forward with bias, the flipped weights of the input
 * gradient, and accumulation; every block of output channels (8, 4, 2, 1)
 * and rows that are not whole vectors; the Relu written beside the
 * forward output (a fused Relu), against Relu's definition. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/conv_direct.h"
#include "util/isa.h"

static float val(uint64_t i, uint64_t salt)
{
    uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ull ^ salt * 0xbf58476d1ce4e5b9ull;
    z ^= z >> 29;
    z *= 0x94d049bb133111ebull;
    z ^= z >> 32;
    return (float)(z % 2001) / 1000.0f - 1.0f;
}

/* One case on one instruction set: y0 + conv(x) against loops, where
 * flip = 1 uses w as the forward weights of a Conv with cin and cout
 * swapped (what the input gradient needs). Returns 0, or 1 when the
 * instruction set is missing. */
static int check(int isa, int64_t cin, int64_t cout, int64_t kh, int64_t kw,
                 int64_t h, int64_t w, int64_t pt, int64_t pl, int flip)
{
    setenv("SALMAP_ISA", sm_isa_name(isa), 1);
    sm_conv_direct s = {cin, cout, kh, kw, h + 2 * pt - kh + 1,
                        w + 2 * pl - kw + 1, 1, 1};
    const int64_t taps = kh * kw, oh = s.oh, ow = s.ow;
    float *x = malloc(sizeof(float) * (size_t)(cin * h * w));
    float *wt = malloc(sizeof(float) * (size_t)(cin * cout * taps));
    float *b = malloc(sizeof(float) * (size_t)cout);
    float *y = malloc(sizeof(float) * (size_t)(cout * oh * ow));
    float *ry = malloc(sizeof(float) * (size_t)(cout * oh * ow));
    float *xp = malloc(sizeof(float) * (size_t)sm_conv_direct_input_size(&s));
    float *pk = malloc(sizeof(float) * (size_t)sm_conv_direct_packed_size(&s));
    float *sc = malloc(sizeof(float) * (size_t)sm_conv_direct_scratch_size(&s));
    for (int64_t i = 0; i < cin * h * w; i++)
        x[i] = val((uint64_t)i, 1);
    for (int64_t i = 0; i < cin * cout * taps; i++)
        wt[i] = val((uint64_t)i, 2);
    for (int64_t i = 0; i < cout; i++)
        b[i] = val((uint64_t)i, 3);
    for (int64_t i = 0; i < cout * oh * ow; i++)
        y[i] = flip ? val((uint64_t)i, 4) : 0.0f; /* flip: accumulate */
    sm_conv_direct_pack(&s, wt, flip, pk);
    sm_conv_direct_pad(&s, x, h, w, pt, pl, xp);
    int rc = sm_conv_direct_run(&s, xp, pk, flip ? NULL : b, y,
                                flip ? NULL : ry, flip, sc);
    for (int64_t co = 0; rc == 0 && co < cout; co++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t yi = (co * oh + oy) * ow + ox;
                double want = flip ? val((uint64_t)yi, 4) : b[co], mag = fabs(want);
                float acc = 0.0f; /* the definition: padding taps included */
                for (int64_t ci = 0; ci < cin; ci++)
                    for (int64_t t = 0; t < taps; t++) {
                        int64_t iy = oy + t / kw - pt, ix = ox + t % kw - pl;
                        int in = iy >= 0 && iy < h && ix >= 0 && ix < w;
                        float wv = flip ? wt[(ci * cout + co) * taps + taps - 1 - t]
                                        : wt[(co * cin + ci) * taps + t];
                        float xv = in ? x[(ci * h + iy) * w + ix] : 0.0f;
                        acc = fmaf(wv, xv, acc);
                        want += (double)wv * xv;
                        mag += fabs((double)wv * xv);
                    }
                float t = acc + (flip ? 0.0f : b[co]);
                float bits = flip ? val((uint64_t)yi, 4) + t : t;
                cr_assert_eq(memcmp(&bits, &y[yi], sizeof bits), 0,
                             "isa %d cin %lld cout %lld: y[%lld] = %.9g, the "
                             "fma chain %.9g", isa, (long long)cin,
                             (long long)cout, (long long)yi, y[yi], bits);
                /* Relu's x < 0 ? 0 : x, here with -0 kept as -0 */
                float r = bits < 0 ? 0.0f : bits;
                cr_assert(flip || memcmp(&r, &ry[yi], sizeof r) == 0,
                          "isa %d cout %lld: relu[%lld] = %.9g, want %.9g",
                          isa, (long long)cout, (long long)yi, ry[yi], r);
                cr_assert(fabs(want - y[yi]) <= 1e-5 * (mag + 1e-3),
                          "isa %d cin %lld cout %lld %lldx%lld on %lldx%lld flip %d: "
                          "y[%lld] = %g, want %g", isa, (long long)cin,
                          (long long)cout, (long long)kh, (long long)kw,
                          (long long)h, (long long)w, flip, (long long)yi,
                          y[yi], want);
            }
    free(x), free(wt), free(b), free(y), free(ry), free(xp), free(pk),
        free(sc);
    return rc ? 1 : 0;
}

Test(conv_direct, every_instruction_set_matches_loops)
{
    unsetenv("SALMAP_ISA");
    const int best = sm_isa();
    const int isas[] = {SM_ISA_AVX2, SM_ISA_AVX512};
    const int64_t couts[] = {1, 2, 3, 4, 6, 8, 9, 16, 17};
    for (int i = 0; i < 2; i++) {
        if (isas[i] > best) {
            cr_log_info("%s: not on this CPU, not tested", sm_isa_name(isas[i]));
            continue;
        }
        int missing = 0;
        for (size_t c = 0; c < sizeof couts / sizeof couts[0]; c++)
            for (int flip = 0; flip < 2; flip++) {
                missing |= check(isas[i], 2, couts[c], 3, 3, 11, 13, 1, 1, flip);
                missing |= check(isas[i], 3, couts[c], 5, 2, 9, 37, 2, 0, flip);
            }
        missing |= check(isas[i], 1, 6, 5, 5, 28, 28, 2, 2, 0);
        cr_assert_eq(missing, 0, "%s: the CPU has it, and so has the kernel",
                     sm_isa_name(isas[i]));
    }
}

/* On the baseline set there is no kernel: nothing is written and the
 * caller hears so. */
Test(conv_direct, refuses_the_baseline_set)
{
    setenv("SALMAP_ISA", "baseline", 1);
    sm_conv_direct s = {1, 1, 1, 1, 1, 1, 1, 1};
    float x[512] = {0}, pk[8] = {0}, sc[512], y = 7.0f;
    cr_assert(sm_conv_direct_input_size(&s) <= (int64_t)(sizeof x / sizeof x[0]));
    cr_assert(sm_conv_direct_scratch_size(&s) <= (int64_t)(sizeof sc / sizeof sc[0]));
    cr_assert_eq(sm_conv_direct_run(&s, x, pk, NULL, &y, NULL, 0, sc), -1);
    cr_assert_eq(y, 7.0f, "nothing written");
}
