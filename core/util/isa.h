/* The instruction set salmap's own kernels (core/ops/sgemm.c,
 * core/ops/conv_direct.c) run on. Each kernel computes every output as the
 * same sequence of roundings on every set that has fused multiply-add, so
 * AVX2 and AVX-512 give the same bits; the baseline set (x86-64 without
 * AVX2 and FMA, or another architecture) rounds each multiply and add
 * apart, and gives other bits. docs/EXPLAIN.md says what this promises. */
#ifndef SM_ISA_H
#define SM_ISA_H

/* Ordered: each set includes the ones before it. */
enum { SM_ISA_BASELINE, SM_ISA_AVX2, SM_ISA_AVX512 };

/* The widest set this CPU has (AVX2 counts only with FMA), capped by the
 * environment variable SALMAP_ISA ("baseline", "avx2" or "avx512"; unset,
 * empty or unknown: no cap), which lets a test or a user see what a
 * smaller CPU computes. */
int sm_isa(void);

/* The set's name as SALMAP_ISA spells it. */
const char *sm_isa_name(int isa);

#endif
