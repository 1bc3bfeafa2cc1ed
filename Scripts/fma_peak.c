// The single-precision FMA peak of one core, as it runs now: 24 independent chains of AVX-512 (or, without it, AVX2)
// fused multiply-adds held in registers, nothing loaded or stored; GFLOP/s = 2 × 16 (8) lanes × FMAs / wall second,
// best of 5 rounds of ≈ 0.4 s. The ceiling the products in `bonfire-bench model --gemm` can approach on this machine
// (docs/performance.md, "Eighth pass": a VM's sustained AVX-512 clock can sit well below the nominal peak):
//   clang -O2 Scripts/fma_peak.c -o /tmp/fma_peak && taskset -c 1 /tmp/fma_peak
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

#define CHAINS 24

// peak<bits>(iters): GFLOP/s of `iters` rounds of CHAINS register-held FMAs of one vector type (LANES floats).
#define PEAK(NAME, TARGET, VEC, LANES, SET1, FMADD, STORE)                                                     \
    __attribute__((target(TARGET))) static double NAME(long iters) {                                          \
        VEC c[CHAINS];                                                                                        \
        for (int i = 0; i < CHAINS; i++) c[i] = SET1(i * 1e-3f);                                               \
        const VEC a = SET1(0.999999f), b = SET1(1e-7f);                                                        \
        double t = now();                                                                                     \
        for (long it = 0; it < iters; it++) {                                                                 \
            for (int i = 0; i < CHAINS; i++) c[i] = FMADD(c[i], a, b);                                         \
            __asm__ volatile("" : "+v"(c[0]), "+v"(c[1]), "+v"(c[2]), "+v"(c[3]), "+v"(c[4]), "+v"(c[5]),      \
                             "+v"(c[6]), "+v"(c[7]), "+v"(c[8]), "+v"(c[9]), "+v"(c[10]), "+v"(c[11]));         \
        }                                                                                                     \
        t = now() - t;                                                                                        \
        float s = 0, lanes[LANES];                                                                            \
        for (int i = 0; i < CHAINS; i++) { STORE(lanes, c[i]); for (int j = 0; j < LANES; j++) s += lanes[j]; } \
        if (s == 12345.0f) printf("(unlikely)\n");   /* keeps the chains live */                             \
        return iters * (double)CHAINS * 2 * LANES / t * 1e-9;                                                 \
    }
PEAK(peak512, "avx512f,fma", __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_storeu_ps)
PEAK(peak256, "avx2,fma", __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_storeu_ps)

int main(void) {
    __builtin_cpu_init();
    const int wide = __builtin_cpu_supports("avx512f");
    if (!wide && !__builtin_cpu_supports("fma")) { printf("no FMA on this CPU\n"); return 1; }
    double best = 0;
    for (int round = 0; round < 5; round++) {
        double g = wide ? peak512(100000000 / 2) : peak256(100000000 / 2);
        if (g > best) best = g;
    }
    printf("FMA peak, one core, %s: %.1f GFLOP/s\n", wide ? "AVX-512" : "AVX2", best);
    return 0;
}
