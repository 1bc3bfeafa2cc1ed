// Per-phase timing of the training-attention kernels for one (sequence, head) pair of the small config (T = 128,
// hd = 32, qkv rows 3C = 768 floats apart), cache-hot, min over 30 runs of 200 calls. It includes kernels.c itself
// (the phases are static functions), so it times the working tree's kernels at the CPU's level:
//   clang -O2 -Wno-psabi -I Sources/CBonfireKernels/include -DKFILE='"'$PWD/Sources/CBonfireKernels/kernels.c'"' \
//         Scripts/attention_phases.c -lm -lpthread -o /tmp/attention_phases && /tmp/attention_phases
// Phases timed alone can mislead: the "packed" lines (B operands copied to contiguous rows first) were ≈ 0.7 µs
// faster per product alone, yet the whole backward gained nothing once the copies ran inside it (docs/performance.md,
// attn-7). Compare whole passes with Scripts/bench-attention.sh.
#include KFILE
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
static unsigned long long rs = 88172645463325252ull;
static float rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return ((rs >> 40) / (float)(1 << 24)) * 2 - 1; }
#define TIME(name, expr) do { double best = 1e9; for (int rep = 0; rep < 30; rep++) { double t0 = now(); \
    for (int it = 0; it < 200; it++) { expr; } double dt = (now() - t0) / 200; if (dt < best) best = dt; } \
    printf("%-28s %7.2f us\n", name, best * 1e6); } while (0)
int main(void) {
    const long T = 128, C = 256, hd = 32, c3 = 3 * C, len = T, lda = T, ldd = T + 16;
    float *qkv = malloc(4 * T * c3), *dy = malloc(4 * T * C), *y = malloc(4 * T * C), *att = malloc(4 * T * T);
    float *dq = malloc(4 * T * c3), *scr = malloc(4 * (4 * hd * T + T * (T + 32))), *bp = malloc(4 * T * hd);
    for (long i = 0; i < T * c3; i++) qkv[i] = rnd();
    for (long i = 0; i < T * C; i++) dy[i] = rnd();
    const float *q = qkv, *k = qkv + C, *v = qkv + 2 * C;
    const float scale = 1 / sqrtf(hd);
    float *kt = scr, *da = scr + hd * len;
    printf("ISA level %d\n", bfk_isa());
    TIME("fwd total", attention_forward(y, C, att, lda, q, k, v, c3, len, hd, scale, scr, NULL));
    TIME("fwd transpose K", transpose_ld(kt, k, len, hd, c3));
    TIME("fwd S = Q·Kᵀ", mm_rows(att, lda, q, c3, 1, kt, len, len, len, hd, MM_FULL, 1, scale, 0));
    TIME("fwd S + softmax", (mm_rows(att, lda, q, c3, 1, kt, len, len, len, hd, MM_FULL, 1, scale, 0),
                             bfk_causal_softmax(att, len, lda)));
    TIME("fwd Y = P·V", mm_rows(y, C, att, lda, 1, v, c3, len, hd, len, MM_LOWER, 0, 1, 0));
    for (long r = 0; r < T; r++) memcpy(bp + r * hd, v + r * c3, 4 * hd);
    TIME("fwd Y = P·V, V packed", mm_rows(y, C, att, lda, 1, bp, hd, len, hd, len, MM_LOWER, 0, 1, 0));
    TIME("bwd total", attention_backward(dq, dq + C, dq + 2 * C, c3, dy, C, q, k, v, att, lda, len, hd, scale, scr, 0, NULL));
    TIME("bwd transpose V", transpose_ld(kt, v, len, hd, c3));
    TIME("bwd dA = dY·Vᵀ", mm_rows(da, ldd, dy, C, 1, kt, len, len, len, hd, MM_FULL, 1, 1, 0));
    TIME("bwd dA + softmax bwd", (mm_rows(da, ldd, dy, C, 1, kt, len, len, len, hd, MM_FULL, 1, 1, 0),
                                  causal_softmax_backward_ld(da, ldd, att, lda, len, scale)));
    TIME("bwd dV = Aᵀ·dY", mm_rows(dq + 2 * C, c3, att, 1, lda, dy, C, len, hd, len, MM_UPPER, 0, 1, 0));
    TIME("bwd dQ = dS·K", mm_rows(dq, c3, da, ldd, 1, k, c3, len, hd, len, MM_LOWER, 0, 1, 0));
    TIME("bwd dK = dSᵀ·Q", mm_rows(dq + C, c3, da, 1, ldd, q, c3, len, hd, len, MM_UPPER, 0, 1, 0));
    return 0;
}
