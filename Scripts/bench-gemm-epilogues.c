// A/B of the own SGEMM's fused epilogues (gemm.c, bfk_sgemm_ex) against the separate passes they replace, on the
// small config's shapes (N = B·T = 4096 rows, C = 256): c_attn + bias (768 columns), c_fc + bias + GELU (1024), the
// MLP c_proj dX product × GELU'(fch), stored by the forward or (before the seventh pass) computed by the backward
// (4096 × 1024 × 256). Thread CPU time, min of 25, the variants interleaved run by
// run so that all see the same machine load. AVX-512 only (bfk_sgemm_ex declines below it).
//   S=Sources/CBonfireKernels; clang -O2 -o /tmp/bench-epi Scripts/bench-gemm-epilogues.c $S/gemm.c $S/kernels.c \
//     $S/pool.c -I$S/include -lpthread -lm && /tmp/bench-epi
#include "bonfire_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

enum { M = 4096, K = 256, NMAX = 1024, VARIANTS = 10 };
static float *a, *b, *c, *f, *g, *bias, *dw, *sums;

static void run(int v) {
    bfk_gemm_epilogue e = {0};
    switch (v) {
    case 0: // c_attn, separate: bias rows into C, then a beta = 1 product (Ops.linearForwardSeparate)
        for (long i = 0; i < M; i++) memcpy(c + i * 768, bias, 768 * sizeof(float));
        bfk_sgemm(0, 1, M, 768, K, 1, a, K, b, K, 1, c, 768);
        break;
    case 1: // c_attn, fused bias
        e.bias = bias;
        bfk_sgemm_ex(0, 1, M, 768, K, 1, a, K, b, K, 0, c, 768, &e);
        break;
    case 2: // c_fc, separate: bias rows, product, GELU pass
        for (long i = 0; i < M; i++) memcpy(c + i * NMAX, bias, NMAX * sizeof(float));
        bfk_sgemm(0, 1, M, NMAX, K, 1, a, K, b, K, 1, c, NMAX);
        bfk_gelu_forward(g, c, (long)M * NMAX);
        break;
    case 3: // c_fc, fused bias only (the GELU pass left out: what the bias alone costs)
        e.bias = bias;
        bfk_sgemm_ex(0, 1, M, NMAX, K, 1, a, K, b, K, 0, c, NMAX, &e);
        break;
    case 4: // c_fc, fused bias + GELU
        e.bias = bias; e.gelu_out = g; e.ld_gelu_out = NMAX;
        bfk_sgemm_ex(0, 1, M, NMAX, K, 1, a, K, b, K, 0, c, NMAX, &e);
        break;
    case 5: // MLP c_proj dX, separate: product, then × GELU' (stored by the forward) in place
        bfk_sgemm(0, 0, M, NMAX, K, 1, a, K, b, NMAX, 0, c, NMAX);
        bfk_mul_set(c, f, (long)M * NMAX);
        break;
    case 6: // MLP c_proj dX before the seventh pass: product, then GELU' computed from GELU's stored input
        bfk_sgemm(0, 0, M, NMAX, K, 1, a, K, b, NMAX, 0, c, NMAX);
        bfk_gelu_backward_set(c, f, c, (long)M * NMAX);
        break;
    case 9: // c_fc, fused bias + GELU, keeping GELU' in C (what the model's forward runs)
        e.bias = bias; e.gelu_out = g; e.ld_gelu_out = NMAX; e.gelu_local_in_c = 1;
        bfk_sgemm_ex(0, 1, M, NMAX, K, 1, a, K, b, K, 0, c, NMAX, &e);
        break;
    case 7: // c_fc's dW += doutᵀ·ln2 (1024 × 256 × 4096, dout = f) and dbias as a separate loop over dout's rows
        bfk_sgemm(1, 0, NMAX, K, M, 1, f, NMAX, a, K, 1, dw, K);
        for (long i = 0; i < M; i++) { const float *r = f + i * NMAX; for (long j = 0; j < NMAX; j++) sums[j] += r[j]; }
        break;
    case 8: // the same with dbias summed while the product packs dout
        e.a_sums = sums;
        bfk_sgemm_ex(1, 0, NMAX, K, M, 1, f, NMAX, a, K, 1, dw, K, &e);
        break;
    }
}

int main(void) {
    if (!bfk_sgemm_available()) { fprintf(stderr, "bfk_sgemm needs AVX-512\n"); return 1; }
    a = malloc(sizeof(float) * M * K); b = malloc(sizeof(float) * K * NMAX); bias = malloc(sizeof(float) * NMAX);
    c = malloc(sizeof(float) * M * NMAX); f = malloc(sizeof(float) * M * NMAX); g = malloc(sizeof(float) * M * NMAX);
    for (long i = 0; i < (long)M * K; i++) a[i] = (float)(i % 7) * 0.1f - 0.3f;
    for (long i = 0; i < (long)K * NMAX; i++) b[i] = (float)(i % 5) * 0.1f - 0.2f;
    for (long i = 0; i < (long)M * NMAX; i++) { f[i] = (float)(i % 11) * 0.3f - 1.5f; c[i] = 0; g[i] = 0; }
    for (long i = 0; i < NMAX; i++) bias[i] = (float)i * 0.001f;
    dw = calloc((size_t)NMAX * K, sizeof(float)); sums = calloc(NMAX, sizeof(float));
    static const char *names[VARIANTS] = {
        "c_attn + bias, separate", "c_attn + bias, fused", "c_fc + bias + GELU, separate", "c_fc + bias, fused",
        "c_fc + bias + GELU, fused", "c_proj dX x stored GELU'", "c_proj dX then GELU' pass (old)",
        "c_fc dW + dbias, separate", "c_fc dW + dbias, fused", "c_fc + bias + GELU + GELU', fused"};
    double best[VARIANTS];
    for (int v = 0; v < VARIANTS; v++) best[v] = 1e9;
    for (int r = 0; r < 25; r++)
        for (int v = 0; v < VARIANTS; v++) {
            double t = cpu_now();
            run(v);
            t = cpu_now() - t;
            if (t < best[v]) best[v] = t;
        }
    for (int v = 0; v < VARIANTS; v++) printf("%-30s %7.2f ms CPU (min of 25, interleaved)\n", names[v], best[v] * 1e3);
    return 0;
}
