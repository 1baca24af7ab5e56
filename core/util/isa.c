#include "util/isa.h"

#include <stdlib.h>
#include <string.h>

static int cpu_isa(void)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return __builtin_cpu_supports("avx512f") ? SM_ISA_AVX512 : SM_ISA_AVX2;
#endif
    return SM_ISA_BASELINE;
}

const char *sm_isa_name(int isa)
{
    return isa == SM_ISA_AVX512 ? "avx512" : isa == SM_ISA_AVX2 ? "avx2"
                                                               : "baseline";
}

int sm_isa(void)
{
    int best = cpu_isa();
    /* read at each call, not cached: no state of ours to go stale */
    const char *cap = getenv("SALMAP_ISA");
    for (int isa = SM_ISA_BASELINE; cap && isa < best; isa++)
        if (strcmp(cap, sm_isa_name(isa)) == 0)
            return isa;
    return best;
}
