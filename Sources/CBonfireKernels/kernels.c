// See include/bonfire_kernels.h. Each kernel body is written once as plain C (vectorisable loops, or GCC/Clang
// vector types for register blocking) and instantiated per instruction set with __attribute__((target(…))) — never
// with a global -march — then picked at run time from __builtin_cpu_supports.
// Reductions use 16 fixed lanes whatever the instruction set, so every variant sums in the same order.

#include "bonfire_kernels.h"
#include "gelu_inline.h"
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define BFK_X86 1
#define BFK_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#define BFK_AVX2 __attribute__((target("avx2,fma")))
#endif
#define BFK_INLINE static inline __attribute__((always_inline))

typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef float v4 __attribute__((vector_size(16), aligned(4)));

// MARK: dispatch

static int g_isa = -1, g_detected = -1;

static int detect(void) {
#ifdef BFK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}

int bfk_isa_detected(void) {
    int d = __atomic_load_n(&g_detected, __ATOMIC_RELAXED);
    if (d < 0) { d = detect(); __atomic_store_n(&g_detected, d, __ATOMIC_RELAXED); }
    return d;
}

int bfk_isa(void) {
    int i = __atomic_load_n(&g_isa, __ATOMIC_RELAXED);
    if (i < 0) { i = bfk_isa_detected(); __atomic_store_n(&g_isa, i, __ATOMIC_RELAXED); }
    return i;
}

void bfk_set_isa(int isa) {
    int d = bfk_isa_detected();
    __atomic_store_n(&g_isa, isa < 0 ? 0 : (isa > d ? d : isa), __ATOMIC_RELAXED);
}

static int g_threads = 0;
int bfk_threads(void) { return __atomic_load_n(&g_threads, __ATOMIC_RELAXED); }
void bfk_set_threads(int n) { __atomic_store_n(&g_threads, n, __ATOMIC_RELAXED); }
static _Thread_local int t_in_parallel = 0;
int bfk_in_parallel(void) { return t_in_parallel; }
void bfk_set_in_parallel(int on) { t_in_parallel = on; }

#ifdef BFK_X86
#define DISPATCH(name, ...) do { switch (bfk_isa()) { \
    case 2: name##_avx512(__VA_ARGS__); return; \
    case 1: name##_avx2(__VA_ARGS__); return; \
    default: name##_base(__VA_ARGS__); return; } } while (0)
#define VARIANTS(name, params, args) \
    BFK_AVX512 static void name##_avx512 params { name##_body args; } \
    BFK_AVX2 static void name##_avx2 params { name##_body args; } \
    static void name##_base params { name##_body args; }
#else
#define DISPATCH(name, ...) name##_base(__VA_ARGS__)
#define VARIANTS(name, params, args) static void name##_base params { name##_body args; }
#endif

// MARK: OpenBLAS core selection

extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));

static pthread_once_t g_core_once = PTHREAD_ONCE_INIT;
static char g_core_replaced[32];
static int g_core_changed = 0;

extern int openblas_get_num_threads(void) __attribute__((weak));
extern void openblas_set_num_threads(int) __attribute__((weak));

static void select_core(void) {
    // One thread pool, Bonfire's: its thread count starts as OpenBLAS's (OPENBLAS_NUM_THREADS, else the CPUs), and
    // OpenBLAS itself runs single-threaded inside Bonfire's split of each product (BLAS.sgemm). Two pools on the same
    // cores fight: OpenBLAS's idle workers spin for ~0.1 s after every call, through Bonfire's threaded loops.
    if (openblas_get_num_threads && openblas_set_num_threads) {
        int n = openblas_get_num_threads();
        int expected = 0;
        __atomic_compare_exchange_n(&g_threads, &expected, n < 1 ? 1 : n, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        openblas_set_num_threads(1);
    }
    if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || !openblas_get_corename) return;  // not DYNAMIC_ARCH
    if (getenv("OPENBLAS_CORETYPE")) return;   // the user chose: keep it
    int d = bfk_isa_detected();
    if (d == 0) return;
    // Cores OpenBLAS falls back to for CPUs it does not recognise (or older ones): all pre-AVX2.
    static const char *generic[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Sandybridge", "Atom",
                                    "Nano", "Banias", "Katmai", "Coppermine", "Northwood", "Athlon", "Opteron",
                                    "Opteron_SSE3", "Barcelona", "Unknown", NULL};
    const char *cur = openblas_get_corename();
    int isGeneric = 0;
    for (int i = 0; generic[i]; i++) if (cur && strcmp(cur, generic[i]) == 0) isGeneric = 1;
    if (!isGeneric) return;
    strncpy(g_core_replaced, cur, sizeof g_core_replaced - 1);
    setenv("OPENBLAS_CORETYPE", d == 2 ? "SkylakeX" : "Haswell", 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
    g_core_changed = 1;
}

const char *bfk_openblas_select_core(void) {
    pthread_once(&g_core_once, select_core);
    return g_core_changed ? g_core_replaced : NULL;
}

// MARK: helpers

// Unaligned 16-float load and a fixed-order horizontal sum (macros: v16 values never cross a call boundary).
#define ld16(p) ({ v16 ld16_x; memcpy(&ld16_x, (p), sizeof ld16_x); ld16_x; })
// The sum is a fixed tree (16 → 8 → 4 → 2 → 1 lanes): a few shuffles instead of a 15-add dependency chain.
#define hsum16(a) ({ v16 hs_a = (a);                                                                            \
    v8 hs_8 = __builtin_shufflevector(hs_a, hs_a, 0, 1, 2, 3, 4, 5, 6, 7)                                        \
            + __builtin_shufflevector(hs_a, hs_a, 8, 9, 10, 11, 12, 13, 14, 15);                                 \
    v4 hs_4 = __builtin_shufflevector(hs_8, hs_8, 0, 1, 2, 3) + __builtin_shufflevector(hs_8, hs_8, 4, 5, 6, 7);  \
    (hs_4[0] + hs_4[2]) + (hs_4[1] + hs_4[3]); })
/// Σ x[j] in 16 lanes then a fixed-order tail.
BFK_INLINE float sum_body(const float *x, long n) {
    v16 acc = {0}; long j = 0;
    for (; j + 16 <= n; j += 16) acc += ld16(x + j);
    float s = hsum16(acc);
    for (; j < n; j++) s += x[j];
    return s;
}
BFK_INLINE float dot_body(const float *a, const float *b, long n) {
    v16 acc = {0}; long j = 0;
    for (; j + 16 <= n; j += 16) acc += ld16(a + j) * ld16(b + j);
    float s = hsum16(acc);
    for (; j < n; j++) s += a[j] * b[j];
    return s;
}

/// max of x[0..<n] (n ≥ 1) in 16 lanes: the same value as a sequential max (max is exact), vectorised.
BFK_INLINE float max_body(const float *x, long n) {
    long j = 0;
    float m = -INFINITY;
#if __has_builtin(__builtin_elementwise_max)
    if (n >= 16) {
        v16 acc = ld16(x);
        for (j = 16; j + 16 <= n; j += 16) acc = __builtin_elementwise_max(acc, ld16(x + j));
        for (int l = 0; l < 16; l++) m = acc[l] > m ? acc[l] : m;
    }
#endif
    for (; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

/// Cephes expf: exp(x) = 2ⁿ·e^r, |r| ≤ ln2/2, degree-6 polynomial; exp(x < −87.3) = 0, x clamped above at 88.3.
BFK_INLINE float exp1(float x) {
    float xc = x > 88.3f ? 88.3f : (x < -87.3f ? -87.3f : x);
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   // round to nearest
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int i; float f; } e;
    e.i = ((int)n + 127) << 23;
    float y = p * e.f;
    return x < -87.3f ? 0.0f : y;
}

BFK_INLINE void exp_body(float *out, const float *inp, long n) {
    for (long i = 0; i < n; i++) out[i] = exp1(inp[i]);
}
VARIANTS(exp, (float *out, const float *inp, long n), (out, inp, n))
void bfk_exp(float *out, const float *inp, long n) { DISPATCH(exp, out, inp, n); }

// MARK: GELU

// fast_tanh, gelu_value and gelu_local live in gelu_inline.h, shared with gemm.c's GELU epilogues.
BFK_INLINE void gelu_forward_body(float *restrict out, const float *restrict inp, long n) {
#pragma clang fp contract(off)
    for (long i = 0; i < n; i++) out[i] = gelu_value(inp[i]);
}
VARIANTS(gelu_forward, (float *out, const float *inp, long n), (out, inp, n))
void bfk_gelu_forward(float *out, const float *inp, long n) { DISPATCH(gelu_forward, out, inp, n); }

BFK_INLINE void gelu_backward_body(float *restrict dinp, const float *restrict inp, const float *restrict dout, long n) {
#pragma clang fp contract(off)
    for (long i = 0; i < n; i++) dinp[i] += gelu_local(inp[i]) * dout[i];
}
VARIANTS(gelu_backward, (float *dinp, const float *inp, const float *dout, long n), (dinp, inp, dout, n))
void bfk_gelu_backward(float *dinp, const float *inp, const float *dout, long n) {
    DISPATCH(gelu_backward, dinp, inp, dout, n);
}

// The same local derivative, written instead of added. dinp may be dout itself (in place): dout is copied block by
// block into a stack buffer first, so the inner loop's pointers really are distinct (restrict) and it vectorises
// (without that, the overlap check sends an in-place call down a scalar loop).
BFK_INLINE void gelu_backward_set_block(float *restrict dinp, const float *restrict inp, const float *restrict dout,
                                        long n) {
#pragma clang fp contract(off)
    for (long i = 0; i < n; i++) dinp[i] = gelu_local(inp[i]) * dout[i];
}
BFK_INLINE void gelu_backward_set_body(float *dinp, const float *inp, const float *dout, long n) {
    float buf[512];
    for (long i0 = 0; i0 < n; i0 += 512) {
        long m = n - i0 < 512 ? n - i0 : 512;
        memcpy(buf, dout + i0, (size_t)m * sizeof(float));
        gelu_backward_set_block(dinp + i0, inp + i0, buf, m);
    }
}
VARIANTS(gelu_backward_set, (float *dinp, const float *inp, const float *dout, long n), (dinp, inp, dout, n))
void bfk_gelu_backward_set(float *dinp, const float *inp, const float *dout, long n) {
    DISPATCH(gelu_backward_set, dinp, inp, dout, n);
}

// The MLP forward that keeps GELU' for the backward: out = GELU(x), then x = GELU'(x) in place (the model stores
// GELU's local derivative instead of its input: the backward is then one multiply, `bfk_mul_set`, after the dX
// product). This is the separate-pass twin of gemm.c's epilogue (gelu_local_row). Bits: out as bfk_gelu_forward, x as
// GELU' in bfk_gelu_backward_set.
BFK_INLINE void gelu_forward_local_body(float *restrict out, float *restrict x, long n) {
#pragma clang fp contract(off)
    for (long i = 0; i < n; i++) {
        float d;
        out[i] = gelu_value_local(x[i], &d);
        x[i] = d;
    }
}
VARIANTS(gelu_forward_local, (float *out, float *x, long n), (out, x, n))
void bfk_gelu_forward_local(float *out, float *x, long n) { DISPATCH(gelu_forward_local, out, x, n); }

// y (n) = s · y, elementwise (the backward through GELU with its derivative stored: d pre-activation = GELU' · d out).
BFK_INLINE void mul_set_body(float *restrict y, const float *restrict s, long n) {
    for (long i = 0; i < n; i++) y[i] = s[i] * y[i];
}
VARIANTS(mul_set, (float *y, const float *s, long n), (y, s, n))
void bfk_mul_set(float *y, const float *s, long n) { DISPATCH(mul_set, y, s, n); }

// MARK: LayerNorm

BFK_INLINE void layernorm_forward_body(float *restrict out, float *restrict mean, float *restrict rstd,
                                       const float *restrict inp, const float *restrict w, const float *restrict b,
                                       long n, long c) {
    const float invC = 1.0f / (float)c;
    for (long i = 0; i < n; i++) {
        const float *x = inp + i * c;
        float *o = out + i * c;
        float m = sum_body(x, c) * invC;
        v16 acc = {0}; long j = 0;
        for (; j + 16 <= c; j += 16) { v16 d = ld16(x + j) - m; acc += d * d; }
        float v = hsum16(acc);
        for (; j < c; j++) { float d = x[j] - m; v += d * d; }
        v *= invC;
        float r = 1.0f / sqrtf(v + 1e-5f);
        for (j = 0; j < c; j++) o[j] = (x[j] - m) * r * w[j] + b[j];
        mean[i] = m; rstd[i] = r;
    }
}
VARIANTS(layernorm_forward, (float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                             long n, long c), (out, mean, rstd, inp, w, b, n, c))
void bfk_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                           const float *bias, long n, long c) {
    DISPATCH(layernorm_forward, out, mean, rstd, inp, weight, bias, n, c);
}

// The two row means of LayerNorm's input gradient, mean(w·g) and mean(w·g·x̂), in 16 lanes then the tail: shared by
// the fused backward and its row half (so both sum in the same order).
BFK_INLINE void layernorm_backward_row_means(const float *restrict x, const float *restrict g, const float *restrict w,
                                             float m, float r, long c, float *dnMean, float *dnNormMean) {
    v16 a1 = {0}, a2 = {0}; long j = 0;
    for (; j + 16 <= c; j += 16) {
        v16 norm = (ld16(x + j) - m) * r, dn = ld16(w + j) * ld16(g + j);
        a1 += dn; a2 += dn * norm;
    }
    float s1 = hsum16(a1), s2 = hsum16(a2);
    for (; j < c; j++) { float norm = (x[j] - m) * r, dn = w[j] * g[j]; s1 += dn; s2 += dn * norm; }
    const float invC = 1.0f / (float)c;
    *dnMean = s1 * invC; *dnNormMean = s2 * invC;
}

BFK_INLINE void layernorm_backward_body(float *restrict dinp, float *restrict dw, float *restrict db,
                                        const float *restrict dout, const float *restrict inp, const float *restrict w,
                                        const float *restrict mean, const float *restrict rstd, long n, long c) {
    for (long i = 0; i < n; i++) {
        const float *x = inp + i * c, *g = dout + i * c;
        float *dx = dinp + i * c;
        const float m = mean[i], r = rstd[i];
        float dnMean, dnNormMean;
        layernorm_backward_row_means(x, g, w, m, r, c, &dnMean, &dnNormMean);
        for (long j = 0; j < c; j++) {
            float norm = (x[j] - m) * r, dn = w[j] * g[j];
            db[j] += g[j];
            dw[j] += norm * g[j];
            dx[j] += (dn - dnMean - norm * dnNormMean) * r;
        }
    }
}
VARIANTS(layernorm_backward, (float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                              const float *mean, const float *rstd, long n, long c),
         (dinp, dw, db, dout, inp, w, mean, rstd, n, c))
void bfk_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, const float *mean, const float *rstd, long n, long c) {
    DISPATCH(layernorm_backward, dinp, dweight, dbias, dout, inp, weight, mean, rstd, n, c);
}

// The same backward split in two for threads: the input gradient over rows, the weight and bias gradients over
// columns (each column still walks the rows in order). Same expressions, same order: bit-identical to the fused one.
BFK_INLINE void layernorm_backward_rows_body(float *restrict dinp, const float *restrict dout, const float *restrict inp,
                                             const float *restrict w, const float *restrict mean,
                                             const float *restrict rstd, long n, long c) {
    for (long i = 0; i < n; i++) {
        const float *x = inp + i * c, *g = dout + i * c;
        float *dx = dinp + i * c;
        const float m = mean[i], r = rstd[i];
        float dnMean, dnNormMean;
        layernorm_backward_row_means(x, g, w, m, r, c, &dnMean, &dnNormMean);
        for (long j = 0; j < c; j++) {
            float norm = (x[j] - m) * r, dn = w[j] * g[j];
            dx[j] += (dn - dnMean - norm * dnNormMean) * r;
        }
    }
}
VARIANTS(layernorm_backward_rows, (float *dinp, const float *dout, const float *inp, const float *w, const float *mean,
                                   const float *rstd, long n, long c), (dinp, dout, inp, w, mean, rstd, n, c))
void bfk_layernorm_backward_rows(float *dinp, const float *dout, const float *inp, const float *weight,
                                 const float *mean, const float *rstd, long n, long c) {
    DISPATCH(layernorm_backward_rows, dinp, dout, inp, weight, mean, rstd, n, c);
}

BFK_INLINE void layernorm_backward_cols_body(float *restrict dw, float *restrict db, const float *restrict dout,
                                             const float *restrict inp, const float *restrict mean,
                                             const float *restrict rstd, long n, long c, long j0, long j1) {
    for (long i = 0; i < n; i++) {
        const float *x = inp + i * c, *g = dout + i * c;
        const float m = mean[i], r = rstd[i];
        for (long j = j0; j < j1; j++) {
            float norm = (x[j] - m) * r;
            db[j] += g[j];
            dw[j] += norm * g[j];
        }
    }
}
VARIANTS(layernorm_backward_cols, (float *dw, float *db, const float *dout, const float *inp, const float *mean,
                                   const float *rstd, long n, long c, long j0, long j1),
         (dw, db, dout, inp, mean, rstd, n, c, j0, j1))
void bfk_layernorm_backward_cols(float *dweight, float *dbias, const float *dout, const float *inp, const float *mean,
                                 const float *rstd, long n, long c, long j0, long j1) {
    DISPATCH(layernorm_backward_cols, dweight, dbias, dout, inp, mean, rstd, n, c, j0, j1);
}

// MARK: decode attention

BFK_INLINE void attend_one_body(float *restrict y, float *restrict sc, const float *restrict q, const float *restrict k,
                                const float *restrict v, long len, long hd, float scale) {
    float mx = -INFINITY;
    for (long j = 0; j < len; j++) {
        float s = dot_body(q, k + j * hd, hd) * scale;
        sc[j] = s;
        mx = s > mx ? s : mx;
    }
    for (long j = 0; j < len; j++) sc[j] = exp1(sc[j] - mx);
    float sum = sum_body(sc, len);
    float inv = 1.0f / sum;
    for (long i = 0; i < hd; i++) y[i] = 0;
    for (long j = 0; j < len; j++) {
        float w = sc[j] * inv;
        const float *vr = v + j * hd;
        for (long i = 0; i < hd; i++) y[i] += w * vr[i];
    }
}
VARIANTS(attend_one, (float *y, float *sc, const float *q, const float *k, const float *v, long len, long hd,
                      float scale), (y, sc, q, k, v, len, hd, scale))
void bfk_attend_one(float *y, float *scores, const float *q, const float *k, const float *v, long len, long hd,
                    float scale) {
    DISPATCH(attend_one, y, scores, q, k, v, len, hd, scale);
}

// All heads of one decode row in one call (the fast path of the sampler's attention; attend_one is the per-head
// kernel it replaces). Same result bit for bit as bfk_attend_one on each head at the same instruction-set level:
//  - scores: for hd = 16, 32 or 64, 16 keys at a time. Each key's 16-lane accumulator is built exactly as dot_body
//    builds it; then one transposed reduction tree sums all 16 accumulators at once with exactly hsum16's pairing
//    (lanes l + l+8, then l + l+4, then (0 + 2) + (1 + 3)), leaving the 16 scores in key order in one vector, instead
//    of 16 separate horizontal sums. Other keys (len % 16) and other hd take dot_body itself.
//  - y = Σ_j p_j·v_j in key order, with the accumulators in registers (attend_one's y[i] += … loop went through
//    memory on every key) and G heads interleaved, G·hd/16 = 8 vectors, so 8 independent FMA chains overlap.
//    Each element is still the same chain of multiply-adds in key order.

/// 16 keys' 16-lane partial dot products → out[0..<16] = their hsum16 values · scale, in key order (see above).
/// (Writes through a pointer: v16 values never cross a call boundary, as for ld16.)
BFK_INLINE void hsum16x16(float *out, const v16 *a, float scale) {
    v16 x[8], y[4], z[2];
    for (int p = 0; p < 8; p++)
        x[p] = __builtin_shufflevector(a[2 * p], a[2 * p + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23)
             + __builtin_shufflevector(a[2 * p], a[2 * p + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    for (int p = 0; p < 4; p++)
        y[p] = __builtin_shufflevector(x[2 * p], x[2 * p + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27)
             + __builtin_shufflevector(x[2 * p], x[2 * p + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    for (int p = 0; p < 2; p++)
        z[p] = __builtin_shufflevector(y[2 * p], y[2 * p + 1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29)
             + __builtin_shufflevector(y[2 * p], y[2 * p + 1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    v16 w = (__builtin_shufflevector(z[0], z[1], 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
           + __builtin_shufflevector(z[0], z[1], 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)) * scale;
    memcpy(out, &w, sizeof w);
}

/// 16 keys' scores from rows of HD floats (a compile-time multiple of 16: the accumulators stay in registers).
#define ATTEND_SCORES16(HD)                                                                                      \
    do {                                                                                                         \
        v16 acc[16];                                                                                             \
        for (int t = 0; t < 16; t++) {                                                                           \
            const float *kr = k + (j + t) * (HD);                                                                \
            acc[t] = (v16){0};                                                                                   \
            for (int c = 0; c < (HD); c += 16) acc[t] += ld16(q + c) * ld16(kr + c);                             \
        }                                                                                                        \
        hsum16x16(sc + j, acc, scale);                                                                           \
    } while (0)

/// sc[j] = scale · q·k_j for j < len (K rows of hd floats), as attend_one's first loop; returns the max.
BFK_INLINE float attend_scores(float *restrict sc, const float *restrict q, const float *restrict k, long len, long hd,
                               float scale) {
    float mx = -INFINITY;
    long j = 0;
    switch (hd) {
    case 16: for (; j + 16 <= len; j += 16) ATTEND_SCORES16(16); break;
    case 32: for (; j + 16 <= len; j += 16) ATTEND_SCORES16(32); break;
    case 64: for (; j + 16 <= len; j += 16) ATTEND_SCORES16(64); break;
    default: break;
    }
    for (long t = 0; t < j; t++) mx = sc[t] > mx ? sc[t] : mx;
    for (; j < len; j++) {
        float s = dot_body(q, k + j * hd, hd) * scale;
        sc[j] = s;
        mx = s > mx ? s : mx;
    }
    return mx;
}

/// y (G heads · hd) = Σ_j p_g[j] · v_g[j] for G heads at once, NV = hd / 16 vectors per head; keys j < plen from
/// the shared prefix vp, the others from v (one loop over j in key order: the same chains as one segment).
#define ATTEND_Y(G, NV)                                                                                          \
    do {                                                                                                         \
        v16 acc[G][NV];                                                                                          \
        for (int g = 0; g < G; g++) for (int u = 0; u < NV; u++) acc[g][u] = (v16){0};                          \
        for (long j = 0; j < len; j++) {                                                                         \
            const float *vs = j < plen ? vp : v;                                                                 \
            for (int g = 0; g < G; g++) {                                                                        \
                float w = sc[(h + g) * len + j] * inv[g];                                                        \
                const float *vr = vs + (h + g) * headStride + j * hd;                                            \
                for (int u = 0; u < NV; u++) acc[g][u] += w * ld16(vr + 16 * u);                                 \
            }                                                                                                    \
        }                                                                                                        \
        for (int g = 0; g < G; g++) for (int u = 0; u < NV; u++)                                                 \
            memcpy(y + (h + g) * hd + 16 * u, &acc[g][u], sizeof(v16));                                          \
    } while (0)

// Keys 0 ..< plen come from the shared prefix (kp, vp), keys plen ..< len from (k, v), both laid out alike (key j
// of head h at h·headStride + j·hd). Each score is one key's own dot product (the 16-key tree gives each key
// hsum16 of its own accumulator), so where a 16-key block starts does not change any score; the max, the exps
// and their sum run over the contiguous scores, and y walks the keys in order: the same bits as one segment.
BFK_INLINE void attend_heads_body(float *restrict y, float *restrict sc, const float *restrict q,
                                  const float *kp, const float *vp, const float *k, const float *v, long heads,
                                  long headStride, long plen, long len, long hd, float scale) {
    float invs[heads];
    if (plen > len) plen = len;
    for (long h = 0; h < heads; h++) {
        float *s = sc + h * len;
        float mx = attend_scores(s, q + h * hd, kp + h * headStride, plen, hd, scale);
        float m2 = attend_scores(s + plen, q + h * hd, k + h * headStride + plen * hd, len - plen, hd, scale);
        mx = m2 > mx ? m2 : mx;
        for (long j = 0; j < len; j++) s[j] = exp1(s[j] - mx);
        invs[h] = 1.0f / sum_body(s, len);
    }
    long h = 0;
    const float *inv = invs;
    switch (hd) {
    // Remainders of heads still in groups (4, 2): with one head alone its chain of dependent multiply-adds sets the
    // pace (the default model, 4 heads of 16, ran 4 single-head passes before the seventh pass; grouped, one decode
    // row at len 12/24/36/48 took 3.5% less: C harness, seventh pass).
    case 16:
        for (; h + 8 <= heads; h += 8, inv += 8) ATTEND_Y(8, 1);
        for (; h + 4 <= heads; h += 4, inv += 4) ATTEND_Y(4, 1);
        for (; h + 2 <= heads; h += 2, inv += 2) ATTEND_Y(2, 1);
        for (; h < heads; h++, inv++) ATTEND_Y(1, 1);
        return;
    case 32:
        for (; h + 4 <= heads; h += 4, inv += 4) ATTEND_Y(4, 2);
        for (; h + 2 <= heads; h += 2, inv += 2) ATTEND_Y(2, 2);
        for (; h < heads; h++, inv++) ATTEND_Y(1, 2);
        return;
    case 64: for (; h + 2 <= heads; h += 2, inv += 2) ATTEND_Y(2, 4); for (; h < heads; h++, inv++) ATTEND_Y(1, 4); return;
    default: break;
    }
    for (; h < heads; h++) {   // other head sizes: attend_one's loop
        float *yh = y + h * hd;
        for (long i = 0; i < hd; i++) yh[i] = 0;
        for (long j = 0; j < len; j++) {
            float w = sc[h * len + j] * invs[h];
            const float *vr = (j < plen ? vp : v) + h * headStride + j * hd;
            for (long i = 0; i < hd; i++) yh[i] += w * vr[i];
        }
    }
}
VARIANTS(attend_heads, (float *y, float *sc, const float *q, const float *kp, const float *vp, const float *k,
                        const float *v, long heads, long headStride, long plen, long len, long hd, float scale),
         (y, sc, q, kp, vp, k, v, heads, headStride, plen, len, hd, scale))
void bfk_attend_heads(float *y, float *scores, const float *q, const float *k, const float *v, long heads,
                      long headStride, long len, long hd, float scale) {
    DISPATCH(attend_heads, y, scores, q, k, v, k, v, heads, headStride, 0, len, hd, scale);
}
void bfk_attend_heads_prefix(float *y, float *scores, const float *q, const float *kp, const float *vp,
                             const float *k, const float *v, long heads, long headStride, long plen, long len,
                             long hd, float scale) {
    DISPATCH(attend_heads, y, scores, q, kp, vp, k, v, heads, headStride, plen, len, hd, scale);
}

// MARK: few-row linear layer (decode)

// A register block of R rows × NV vectors of VW columns: acc[r][u] = Σ_k inp[r][k] · W(k, j + u·VW …), where
// W(k, j) = w[k·ldw + (j − j0)] (the weights of columns j0 ..< j1, one row of ldw floats per k).
// Every output is a sum over k in order 0, 1, …, so blocking does not change results.
// Prefetch: while computing, the strip also pulls into L2 its share of the weights that come next (`pfs`, `pfn`
// cache lines; see LINEAR_COLS), one line per k, line (i / R0)·ic + k: spread over the row blocks instead of a
// burst that would fill the line-fill buffers and stall the multiply-adds.
#define LINEAR_BLOCK(VT, VW, R, NV)                                                                              \
    do {                                                                                                         \
        VT acc[R][NV];                                                                                           \
        for (int r = 0; r < R; r++) for (int u = 0; u < NV; u++) acc[r][u] = (VT){0};                           \
        for (long kk = 0; kk < ic; kk++) {                                                                       \
            const float *wr = w + kk * ldw + (j - j0);                                                           \
            const long pl = (i / R0) * ic + kk;                                                                  \
            if (pl < pfn) __builtin_prefetch(pfs + pl * 16, 0, 2);                                               \
            VT wv[NV];                                                                                           \
            for (int u = 0; u < NV; u++) memcpy(&wv[u], wr + u * VW, sizeof(VT));                               \
            for (int r = 0; r < R; r++) {                                                                        \
                float a = inp[(i + r) * ic + kk];                                                                \
                for (int u = 0; u < NV; u++) acc[r][u] += a * wv[u];                                             \
            }                                                                                                    \
        }                                                                                                        \
        for (int r = 0; r < R; r++) for (int u = 0; u < NV; u++) {                                               \
            float *o = out + (i + r) * oc + j + u * VW;                                                          \
            VT cur;                                                                                              \
            if (accumulate) memcpy(&cur, o, sizeof(VT)); else cur = (VT){0};                                     \
            if (bias) { VT bv; memcpy(&bv, bias + j + u * VW, sizeof(VT)); cur += acc[r][u] + bv; }              \
            else cur += acc[r][u];                                                                               \
            memcpy(o, &cur, sizeof(VT));                                                                         \
        }                                                                                                        \
    } while (0)

// Output columns j0 ..< j1 of all n rows. Columns outermost, rows inside: a strip of NV·VW columns of the weights
// (ic × NV·VW floats: 32 KB for ic = 128, 256 KB for ic = 1024 at 64 columns) comes from memory once and then from
// L1/L2 for every row block. (Rows outermost, the first version, streamed all of Wᵀ once per R-row block: n/R = 8
// passes over ~19 MB of weights per decode step on `small`.) Strips of NV·VW columns (then VW, then single columns);
// within a strip, rows in blocks of R (then of 4 and 2 where R is larger, then 1: a remainder of 3 rows costs two
// passes over the strip, not three). Each output is still one sum over k in order, so the result of a row
// is the same whichever block it falls in (and whichever thread runs it).
#define LINEAR_COLS(VT, VW, R, NV)                                                                               \
    do {                                                                                                         \
        long j = j0;                                                                                             \
        for (; j + NV * VW <= j1; j += NV * VW) {                                                                \
            /* this strip's share of the region to prefetch: columns (j − j0 …) of ldw, in proportion */        \
            const long pfa = (j - j0) * pfcount / ldw, pfb = (j - j0 + NV * VW) * pfcount / ldw;                 \
            const float *pfs = pfregion + pfa;                                                                   \
            const long pfn = pfregion ? (pfb - pfa + 15) / 16 : 0;                                               \
            long i = 0;                                                                                          \
            for (; i + R <= n; i += R) LINEAR_BLOCK(VT, VW, R, NV);                                              \
            if (R > 4) for (; i + 4 <= n; i += 4) LINEAR_BLOCK(VT, VW, 4, NV);                                   \
            if (R > 2) for (; i + 2 <= n; i += 2) LINEAR_BLOCK(VT, VW, 2, NV);                                   \
            for (; i < n; i++) LINEAR_BLOCK(VT, VW, 1, NV);                                                      \
        }                                                                                                        \
        for (; j + VW <= j1; j += VW) {                                                                          \
            const float *pfs = pfregion;                                                                         \
            const long pfn = 0;                                                                                  \
            long i = 0;                                                                                          \
            for (; i + R <= n; i += R) LINEAR_BLOCK(VT, VW, R, 1);                                               \
            for (; i < n; i++) LINEAR_BLOCK(VT, VW, 1, 1);                                                       \
        }                                                                                                        \
        for (; j < j1; j++) for (long i = 0; i < n; i++) {                                                       \
            float s = 0;                                                                                         \
            for (long kk = 0; kk < ic; kk++) s += inp[i * ic + kk] * w[kk * ldw + (j - j0)];                     \
            float *o = out + i * oc + j;                                                                         \
            *o = (accumulate ? *o : 0) + (bias ? s + bias[j] : s);                                               \
        }                                                                                                        \
    } while (0)

// Wᵀ (ic, oc) row-major: one block of columns, rows of oc floats.
#define LINEAR_ROWS(NAME, ATTR, VT, VW, R, NV)                                                                   \
    ATTR static void NAME(float *out, const float *inp, const float *wt, const float *bias, long n, long ic,     \
                          long oc, int accumulate) {                                                             \
        const float *w = wt, *pfregion = NULL;                                                                   \
        const long j0 = 0, j1 = oc, ldw = oc, pfcount = 0, R0 = R;                                               \
        LINEAR_COLS(VT, VW, R, NV);                                                                              \
    }

// The same on panels (bfk_pack_panels): each block of BFK_PANEL columns is contiguous, (ic, width), so a strip is
// one sequential stream instead of ic short pieces oc floats apart (which the hardware prefetcher follows poorly and
// which, for oc·4 bytes a multiple of 4 KB, all fall into the same few L1/L2 sets). Same sums, same bits.
// While a panel is computed, the next one (after the last: `after`, the next layer's first panel) is prefetched
// into L2: a decode step streams every weight from L3 once, and the hardware prefetcher alone left the
// multiply-adds waiting (a 32-row product on L3-resident weights ran at 94–129 GFLOP/s against 163–169 with them
// in L2).
#define LINEAR_PANELS(NAME, ATTR, VT, VW, R, NV)                                                                 \
    ATTR static void NAME(float *out, const float *inp, const float *wp, const float *bias, long n, long ic,     \
                          long oc, int accumulate, const float *after, long afterCount) {                        \
        const long R0 = R;                                                                                       \
        for (long j0 = 0; j0 < oc; j0 += BFK_PANEL) {                                                            \
            const long j1 = j0 + BFK_PANEL < oc ? j0 + BFK_PANEL : oc, ldw = j1 - j0;                            \
            const float *w = wp + j0 * ic;                                                                       \
            const long nextWidth = oc - j1 < BFK_PANEL ? oc - j1 : BFK_PANEL;                                    \
            const float *pfregion = j1 < oc ? w + ic * ldw : after;                                              \
            const long pfcount = j1 < oc ? ic * nextWidth : (after ? afterCount : 0);                            \
            LINEAR_COLS(VT, VW, R, NV);                                                                          \
        }                                                                                                        \
    }
enum { BFK_PANEL = 64 };   // a multiple of every variant's NV·VW (64, 16, 8)

#ifdef BFK_X86
LINEAR_ROWS(linear_rows_avx512, BFK_AVX512, v16, 16, 4, 4)
LINEAR_ROWS(linear_rows_avx2, BFK_AVX2, v8, 8, 4, 2)
// AVX-512 decode: 6 rows × 4 vectors (24 of the 32 zmm as accumulators, as gemm.c's micro-kernel) read each 64-column
// strip of weights — 64 KiB for ic = 256, more than L1 — from L2 once per 6 rows instead of per 4: 32 rows × the
// small/tiny shapes, hot, one thread: 513–523 → 442–455 µs for the seven products of a layer (110 → 133 GFLOP/s on
// small's), n = 7: 231 → 140 µs; the same bits (C harness, seventh pass; docs/performance.md). AVX2: 6 rows × 2
// vectors (12 of the 16 ymm), the same products at the AVX2 level 1015–1023 → 857–875 µs.
LINEAR_PANELS(linear_panels_avx512, BFK_AVX512, v16, 16, 6, 4)
LINEAR_PANELS(linear_panels_avx2, BFK_AVX2, v8, 8, 6, 2)
#endif
LINEAR_ROWS(linear_rows_base, , v4, 4, 2, 2)
LINEAR_PANELS(linear_panels_base, , v4, 4, 2, 2)

void bfk_linear_rows(float *out, const float *inp, const float *wt, const float *bias, long n, long ic, long oc,
                     int accumulate) {
    DISPATCH(linear_rows, out, inp, wt, bias, n, ic, oc, accumulate);
}

void bfk_linear_panels(float *out, const float *inp, const float *wp, const float *bias, long n, long ic, long oc,
                       int accumulate, const float *after, long after_count) {
    DISPATCH(linear_panels, out, inp, wp, bias, n, ic, oc, accumulate, after, after_count);
}

long bfk_panel_width(void) { return BFK_PANEL; }

// Sixteen rows of W at a time, k ascending: the reads are 16 sequential streams (which the prefetcher follows) and
// each k fills one whole cache line of the panel (16 consecutive floats). Column by column, the first version, every
// store of a 64 KB – 256 KB panel missed L1.
void bfk_pack_panels(float *dst, const float *w, long oc, long ic) {
    for (long j0 = 0; j0 < oc; j0 += BFK_PANEL) {
        const long width = j0 + BFK_PANEL < oc ? BFK_PANEL : oc - j0;
        float *panel = dst + j0 * ic;
        for (long jb = 0; jb < width; jb += 16) {
            const long jn = jb + 16 < width ? 16 : width - jb;
            const float *rows = w + (j0 + jb) * ic;   // W's row j = column j of Wᵀ
            for (long k = 0; k < ic; k++)
                for (long t = 0; t < jn; t++) panel[k * width + jb + t] = rows[t * ic + k];
        }
    }
}

void bfk_transpose(float *dst, const float *src, long rows, long cols) {
    const long B = 16;
    for (long i0 = 0; i0 < rows; i0 += B)
        for (long j0 = 0; j0 < cols; j0 += B)
            for (long i = i0; i < i0 + B && i < rows; i++)
                for (long j = j0; j < j0 + B && j < cols; j++) dst[j * rows + i] = src[i * cols + j];
}

// MARK: causal softmax (training attention)

// Rows in whole 16-lane chunks: the chunk holding the diagonal is masked (lanes above it count as −∞ in the max and
// 0 in the sum) instead of running as a scalar tail: with a scalar tail, rows of average length T/2 spent most of
// their time in ≤ 15 scalar exps each (11 of 23 µs of a T = 128 pair). Lanes above the diagonal may hold anything
// (the products only fill the diagonal's chunk), so they are masked by selection, never by arithmetic. Only a chunk
// that would read past `len` falls back to scalar code.
typedef int v16i __attribute__((vector_size(64), aligned(4)));
typedef int v8i __attribute__((vector_size(32), aligned(4)));
typedef int v4i __attribute__((vector_size(16), aligned(4)));
static const v16 kLane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
#define SEL16(mask, x, y) ((v16)(((v16i)(x) & (mask)) | ((v16i)(y) & ~(mask))))
/// exp16 for lanes known to be ≤ 88.3 or NaN — a softmax's x − max over lanes that take part in the max is ≤ 0 —:
/// the clamp at 88.3 never applies there, so it is left out (one compare and one select fewer); every lane equals
/// exp16's (exp16 is this after that clamp).
BFK_INLINE v16 exp16_nonpos(v16 x) {
    const v16 zero = {0}, lo = zero - 87.3f;
    v16 xc = SEL16(x < lo, lo, x);
    xc = SEL16(xc == xc, xc, zero);   // NaN lanes (masked-off garbage, ∞ − ∞) → 0: float→int of NaN is undefined
    v16 n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    v16 r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    v16 p = zero + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    v16i e = (__builtin_convertvector(n, v16i) + 127) << 23;
    v16 y = p * (v16)e;
    return SEL16(x < lo, zero, y);   // exp(x < −87.3) = 0, exp(−∞) = 0 (as exp1)
}
/// exp1 on 16 lanes, written with vector operations (a per-lane call of exp1 stays scalar): the same operations in
/// the same order, so each lane equals exp1 of it. Lanes above 88.3 are clamped to it first; the rest is
/// exp16_nonpos (for x ≤ 88.3 the clamp leaves x as it is, and x < −87.3 iff the clamped value is).
BFK_INLINE v16 exp16(v16 x) {
    const v16 hi = (v16){0} + 88.3f;
    return exp16_nonpos(SEL16(x > hi, hi, x));
}
/// The max of 16 lanes as a fixed tree (max is exact: any order gives the same value).
BFK_INLINE float max16_tree(v16 vm) {
    v8 m8 = __builtin_shufflevector(vm, vm, 0, 1, 2, 3, 4, 5, 6, 7), h8 = __builtin_shufflevector(vm, vm, 8, 9, 10, 11, 12, 13, 14, 15);
    m8 = (v8)(((v8i)m8 & (m8 > h8)) | ((v8i)h8 & ~(m8 > h8)));
    v4 m4 = __builtin_shufflevector(m8, m8, 0, 1, 2, 3), h4 = __builtin_shufflevector(m8, m8, 4, 5, 6, 7);
    m4 = (v4)(((v4i)m4 & (m4 > h4)) | ((v4i)h4 & ~(m4 > h4)));
    float mx = m4[0] > m4[2] ? m4[0] : m4[2], mx2 = m4[1] > m4[3] ? m4[1] : m4[3];
    return mx > mx2 ? mx : mx2;
}
/// row[from ..< to] = 0 (whole 16-lane stores, then single floats).
BFK_INLINE void zero_tail(float *row, long from, long to) {
    const v16 zero = {0};
    long j = from;
    // The empty asm keeps the compiler from turning this loop into a memset call: a libc call per row was 3% of a
    // T = 128 pair's forward and 2.5% of its backward, hot (perf; attn-7: forward 13.9 → 13.6 µs).
    for (; j + 16 <= to; j += 16) { memcpy(row + j, &zero, sizeof zero); __asm__("" : : "r"(row + j) : "memory"); }
    for (; j < to; j++) row[j] = 0;
}
// Four rows at a time where they share their chunk count (t ≡ 0 mod 4, the rows' chunks all inside len): the same
// operations per row as the one-row loop below, interleaved, so that one row's reductions and division (serial
// latency, ~100 cycles a row) overlap the others' exps.
#define SM_RB 4
BFK_INLINE void causal_softmax_body(float *a, long len, long ld) {
    const v16 ninf = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY,
                      -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    const v16 zero = {0};
    long t = 0;
    for (; t + SM_RB <= len && (t + 16) / 16 * 16 <= len; t += SM_RB) {
        const long nv = (t + 16) / 16 * 16;   // = (n + 15) / 16 · 16 for n = t + 1 … t + SM_RB
        float *row[SM_RB];
        v16 vm[SM_RB], acc[SM_RB];
        float mx[SM_RB], inv[SM_RB];
        for (int r = 0; r < SM_RB; r++) { row[r] = a + (t + r) * ld; vm[r] = ninf; acc[r] = zero; }
        // Chunks before the diagonal's (j < nv − 16) lie wholly at or below the diagonal of all four rows: no mask
        // (all lanes kept: the same values as the masked loop), and exp16_nonpos (x − max ≤ 0 there). (attn-7: one
        // T = 128 pair's softmax, hot, 4.96 → 4.38 µs; Scripts/attention_phases.c.)
        for (long j = 0; j < nv - 16; j += 16)
            for (int r = 0; r < SM_RB; r++) { v16 x = ld16(row[r] + j); vm[r] = SEL16(x > vm[r], x, vm[r]); }
        for (int r = 0; r < SM_RB; r++) {
            v16i keep = (kLane + (float)(nv - 16)) <= (float)(t + r);
            v16 x = SEL16(keep, ld16(row[r] + nv - 16), ninf);
            vm[r] = SEL16(x > vm[r], x, vm[r]);
        }
        for (int r = 0; r < SM_RB; r++) mx[r] = max16_tree(vm[r]);
        for (long j = 0; j < nv - 16; j += 16)
            for (int r = 0; r < SM_RB; r++) {
                v16 e = exp16_nonpos(ld16(row[r] + j) - mx[r]);
                acc[r] += e;
                memcpy(row[r] + j, &e, sizeof e);
            }
        for (int r = 0; r < SM_RB; r++) {
            v16i keep = (kLane + (float)(nv - 16)) <= (float)(t + r);
            v16 e = SEL16(keep, exp16(ld16(row[r] + nv - 16) - mx[r]), zero);
            acc[r] += e;
            memcpy(row[r] + nv - 16, &e, sizeof e);
        }
        for (int r = 0; r < SM_RB; r++) inv[r] = 1.0f / hsum16(acc[r]);
        for (long j = 0; j < nv; j += 16)
            for (int r = 0; r < SM_RB; r++) { v16 e = ld16(row[r] + j) * inv[r]; memcpy(row[r] + j, &e, sizeof e); }
        for (int r = 0; r < SM_RB; r++) zero_tail(row[r], nv, len);
    }
    for (; t < len; t++) {
        float *row = a + t * ld;
        const long n = t + 1, nv = (n + 15) / 16 * 16 <= len ? (n + 15) / 16 * 16 : n / 16 * 16;
        // max over j ≤ t (exact, so the order does not matter)
        v16 vm = ninf;
        for (long j = 0; j < nv; j += 16) {
            v16i keep = (kLane + (float)j) <= (float)t;
            v16 x = SEL16(keep, ld16(row + j), ninf);
            vm = SEL16(x > vm, x, vm);
        }
        float mx = max16_tree(vm);
        for (long j = nv; j < n; j++) mx = row[j] > mx ? row[j] : mx;
        // e = exp(x − max), 0 above the diagonal; Σ e in 16 lanes (fixed tree), then the scalar tail in order
        v16 acc = zero;
        for (long j = 0; j < nv; j += 16) {
            v16i keep = (kLane + (float)j) <= (float)t;
            v16 e = SEL16(keep, exp16(ld16(row + j) - mx), zero);
            acc += e;
            memcpy(row + j, &e, sizeof e);
        }
        float s = hsum16(acc);
        for (long j = nv; j < n; j++) { row[j] = exp1(row[j] - mx); s += row[j]; }
        const float inv = 1.0f / s;
        for (long j = 0; j < nv; j += 16) { v16 e = ld16(row + j) * inv; memcpy(row + j, &e, sizeof e); }
        for (long j = nv; j < n; j++) row[j] *= inv;
        zero_tail(row, nv > n ? nv : n, len);
    }
}
VARIANTS(causal_softmax, (float *a, long len, long ld), (a, len, ld))
void bfk_causal_softmax(float *a, long len, long ld) { DISPATCH(causal_softmax, a, len, ld); }

// Same chunking as the forward: the diagonal's chunk is masked (dA above the diagonal may hold anything).
BFK_INLINE void causal_softmax_backward_ld_body(float *restrict da, long ldd, const float *restrict a, long ld, long len,
                                                float scale) {
    const v16 zero = {0};
    long t = 0;
    for (; t + SM_RB <= len && (t + 16) / 16 * 16 <= len; t += SM_RB) {   // four rows interleaved, as the forward
        const long nv = (t + 16) / 16 * 16;
        const float *ar[SM_RB];
        float *dr[SM_RB], s[SM_RB];
        v16 acc[SM_RB];
        for (int r = 0; r < SM_RB; r++) { ar[r] = a + (t + r) * ld; dr[r] = da + (t + r) * ldd; acc[r] = zero; }
        // As the forward: only the diagonal's chunk (j = nv − 16) is masked; the same values (attn-7). The product
        // and the sum stay two roundings, as when the select stood between them: contracted into an FMA, they
        // changed the bits (KernelsTests.testCausalSoftmaxIsBitIdenticalAcrossISALevels fails then).
        {
#pragma clang fp contract(off)
            for (long j = 0; j < nv - 16; j += 16)
                for (int r = 0; r < SM_RB; r++) acc[r] += ld16(ar[r] + j) * ld16(dr[r] + j);
        }
        for (int r = 0; r < SM_RB; r++) {
            v16i keep = (kLane + (float)(nv - 16)) <= (float)(t + r);
            acc[r] += SEL16(keep, ld16(ar[r] + nv - 16) * ld16(dr[r] + nv - 16), zero);
        }
        for (int r = 0; r < SM_RB; r++) s[r] = hsum16(acc[r]);
        for (long j = 0; j < nv - 16; j += 16)
            for (int r = 0; r < SM_RB; r++) {
                v16 g = ld16(ar[r] + j) * (ld16(dr[r] + j) - s[r]) * scale;
                memcpy(dr[r] + j, &g, sizeof g);
            }
        for (int r = 0; r < SM_RB; r++) {
            v16i keep = (kLane + (float)(nv - 16)) <= (float)(t + r);
            v16 g = SEL16(keep, ld16(ar[r] + nv - 16) * (ld16(dr[r] + nv - 16) - s[r]) * scale, zero);
            memcpy(dr[r] + nv - 16, &g, sizeof g);
        }
        for (int r = 0; r < SM_RB; r++) zero_tail(dr[r], nv, len);
    }
    for (; t < len; t++) {
        const float *ar = a + t * ld;
        float *dr = da + t * ldd;
        const long n = t + 1, nv = (n + 15) / 16 * 16 <= len ? (n + 15) / 16 * 16 : n / 16 * 16;
        v16 acc = zero;
        for (long j = 0; j < nv; j += 16) {
            v16i keep = (kLane + (float)j) <= (float)t;
            acc += SEL16(keep, ld16(ar + j) * ld16(dr + j), zero);
        }
        float s = hsum16(acc);
        for (long j = nv; j < n; j++) s += ar[j] * dr[j];
        for (long j = 0; j < nv; j += 16) {
            v16i keep = (kLane + (float)j) <= (float)t;
            v16 g = SEL16(keep, ld16(ar + j) * (ld16(dr + j) - s) * scale, zero);
            memcpy(dr + j, &g, sizeof g);
        }
        for (long j = nv; j < n; j++) dr[j] = ar[j] * (dr[j] - s) * scale;
        zero_tail(dr, nv > n ? nv : n, len);
    }
}
VARIANTS(causal_softmax_backward_ld, (float *da, long ldd, const float *a, long ld, long len, float scale),
         (da, ldd, a, ld, len, scale))
/// The same with dA's rows ldd apart and A's ld apart.
static void causal_softmax_backward_ld(float *da, long ldd, const float *a, long ld, long len, float scale) {
    DISPATCH(causal_softmax_backward_ld, da, ldd, a, ld, len, scale);
}
void bfk_causal_softmax_backward(float *da, const float *a, long len, long ld, float scale) {
    causal_softmax_backward_ld(da, ld, a, ld, len, scale);
}

// MARK: AdamW

// sqrt without errno (libm's sqrtf may set it, which keeps loops scalar); the same IEEE-exact square root.
#if __has_builtin(__builtin_elementwise_sqrt)
#define SQRT(x) __builtin_elementwise_sqrt(x)
#else
#define SQRT(x) sqrtf(x)
#endif
BFK_INLINE void adamw_loop(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                           const float *restrict mask, const int hasMask, long n, float lr, float b1, float b2, float eps, float wd,
                           float bc1, float bc2) {
#pragma clang fp contract(off)
    for (long i = 0; i < n; i++) {
        float decay = hasMask ? mask[i] * wd : wd;
        float x = p[i] * (1 - lr * decay);
        float gi = g[i];
        float mi = b1 * m[i] + (1 - b1) * gi;
        float vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi; v[i] = vi;
        x -= lr * (mi / bc1) / (SQRT(vi / bc2) + eps);
        p[i] = x;
    }
}
BFK_INLINE void adamw_body(float *p, const float *g, float *m, float *v, const float *mask, long n, float lr, float b1,
                           float b2, float eps, float wd, float bc1, float bc2) {
    if (mask) adamw_loop(p, g, m, v, mask, 1, n, lr, b1, b2, eps, wd, bc1, bc2);
    else adamw_loop(p, g, m, v, mask, 0, n, lr, b1, b2, eps, wd, bc1, bc2);
}
VARIANTS(adamw, (float *p, const float *g, float *m, float *v, const float *mask, long n, float lr, float b1, float b2,
                 float eps, float wd, float bc1, float bc2), (p, g, m, v, mask, n, lr, b1, b2, eps, wd, bc1, bc2))
void bfk_adamw(float *p, const float *g, float *m, float *v, const float *mask, long n, float lr, float b1, float b2,
               float eps, float wd, float bc1, float bc2) {
    DISPATCH(adamw, p, g, m, v, mask, n, lr, b1, b2, eps, wd, bc1, bc2);
}

// MARK: training attention (one (sequence, head) pair, causal, no BLAS)

// Small row-major products for attention: out (m, n; row stride ldo) (+)= alpha · Σ_k A(i, k) · B(k, ·), with
// A(i, k) = a[i·sar + k·sak] (so A may be read transposed) and B (kdim, n) rows of stride ldb. Register blocks of
// R rows × NV vectors. Causal structure is used, never assumed beyond what the callers guarantee:
//   mode MM_LOWER: a row block [i, i+R) sums k < i+R only (A(t, k) = 0 for k > t: causal probabilities / dS);
//   mode MM_UPPER: a row block sums k ≥ i only (A(j, k) = 0 for k < j: the transposed causal matrices);
//   causalCols: a row block [i, i+R) writes columns < i+R rounded up to the vector width only (columns above the
//   diagonal are never read: the causal softmax and its backward only look at j ≤ t).
// Each output is one sum over k in increasing order; the terms a block adds beyond a row's own range are exact
// zeros, so the result of a row does not depend on the block it falls in.
enum { MM_FULL = 0, MM_LOWER = 1, MM_UPPER = 2 };

#define MM_BLOCK(VT, VW, R, NV)                                                                                  \
    do {                                                                                                         \
        VT acc[R][NV];                                                                                           \
        for (int r = 0; r < R; r++) for (int u = 0; u < NV; u++) acc[r][u] = (VT){0};                           \
        for (long kk = klo; kk < khi; kk++) {                                                                    \
            const float *br = b + kk * ldb + j;                                                                  \
            VT wv[NV];                                                                                           \
            for (int u = 0; u < NV; u++) memcpy(&wv[u], br + u * VW, sizeof(VT));                               \
            for (int r = 0; r < R; r++) {                                                                        \
                float x = a[(i + r) * sar + kk * sak];                                                           \
                for (int u = 0; u < NV; u++) acc[r][u] += x * wv[u];                                             \
            }                                                                                                    \
        }                                                                                                        \
        for (int r = 0; r < R; r++) for (int u = 0; u < NV; u++) {                                               \
            float *o = out + (i + r) * ldo + j + u * VW;                                                         \
            VT cur;                                                                                              \
            if (accumulate) memcpy(&cur, o, sizeof(VT)); else cur = (VT){0};                                     \
            cur += acc[r][u] * alpha;                                                                            \
            memcpy(o, &cur, sizeof(VT));                                                                         \
        }                                                                                                        \
    } while (0)

// Wide outputs (n ≥ NVA vectors) in RA × NVA blocks, narrow ones (n = head dim) in RB × NVB blocks.
#define MM_ROWS(NAME, ATTR, VT, VW, RA, NVA, RB, NVB)                                                            \
    ATTR static void NAME(float *out, long ldo, const float *a, long sar, long sak, const float *b, long ldb,    \
                          long m, long n, long kdim, int mode, int causalCols, float alpha, int accumulate) {   \
        const int wide = n >= NVA * VW;                                                                          \
        for (long i = 0; i < m; ) {                                                                              \
            const long R0 = wide ? RA : RB;                                                                      \
            long rows = m - i >= R0 ? R0 : 1;                                                                    \
            long klo = mode == MM_UPPER ? i : 0;                                                                 \
            long khi = mode == MM_LOWER ? (i + rows < kdim ? i + rows : kdim) : kdim;                            \
            long ncols = n;                                                                                      \
            if (causalCols) { long lim = (i + rows + VW - 1) / VW * VW; ncols = lim < n ? lim : n; }            \
            long j = 0;                                                                                          \
            if (rows == RA && wide) {                                                                            \
                for (; j + NVA * VW <= ncols; j += NVA * VW) MM_BLOCK(VT, VW, RA, NVA);                          \
                if (NVA > 3 && j + 3 * VW <= ncols) { MM_BLOCK(VT, VW, RA, 3); j += 3 * VW; }                    \
                if (NVA > 2 && j + 2 * VW <= ncols) { MM_BLOCK(VT, VW, RA, 2); j += 2 * VW; }                    \
                for (; j + VW <= ncols; j += VW) MM_BLOCK(VT, VW, RA, 1);                                        \
            } else if (rows == RB && !wide) {                                                                    \
                for (; j + NVB * VW <= ncols; j += NVB * VW) MM_BLOCK(VT, VW, RB, NVB);                          \
                for (; j + VW <= ncols; j += VW) MM_BLOCK(VT, VW, RB, 1);                                        \
            } else {                                                                                             \
                for (; j + VW <= ncols; j += VW) MM_BLOCK(VT, VW, 1, 1);                                         \
            }                                                                                                    \
            for (; j < ncols; j++) for (long r = 0; r < rows; r++) {                                             \
                float s = 0;                                                                                     \
                for (long kk = klo; kk < khi; kk++) s += a[(i + r) * sar + kk * sak] * b[kk * ldb + j];         \
                float *o = out + (i + r) * ldo + j;                                                              \
                *o = (accumulate ? *o : 0) + s * alpha;                                                          \
            }                                                                                                    \
            i += rows;                                                                                           \
        }                                                                                                        \
    }

#ifdef BFK_X86
MM_ROWS(mm_rows_avx512, BFK_AVX512, v16, 16, 4, 4, 8, 2)
MM_ROWS(mm_rows_avx2, BFK_AVX2, v8, 8, 4, 2, 4, 2)
#endif
MM_ROWS(mm_rows_base, , v4, 4, 2, 2, 2, 2)

static void mm_rows(float *out, long ldo, const float *a, long sar, long sak, const float *b, long ldb, long m,
                    long n, long kdim, int mode, int causalCols, float alpha, int accumulate) {
    DISPATCH(mm_rows, out, ldo, a, sar, sak, b, ldb, m, n, kdim, mode, causalCols, alpha, accumulate);
}

/// dst (cols, rows) = src (rows, cols; row stride ld)ᵀ: 16 × 16 tiles transposed in registers (four stages, each
/// swapping one bit between the row and the column index: one two-register permute per row pair), scalar edges.
/// The scalar loop took 16% of a T = 128 pair's forward.
#define TR_STAGE(r, s, lo, hi) do { v16 x_ = t[r], y_ = t[(r) + (s)]; \
    t[r] = __builtin_shufflevector(x_, y_, lo); t[(r) + (s)] = __builtin_shufflevector(x_, y_, hi); } while (0)
#define TR_LO1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define TR_HI1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define TR_LO2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define TR_HI2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define TR_LO4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define TR_HI4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define TR_LO8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define TR_HI8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
BFK_INLINE void transpose_ld_body(float *restrict dst, const float *restrict src, long rows, long cols, long ld) {
    const long rv = rows / 16 * 16, cv = cols / 16 * 16;
    for (long i0 = 0; i0 < rv; i0 += 16)
        for (long j0 = 0; j0 < cv; j0 += 16) {
            v16 t[16];
            for (int r = 0; r < 16; r++) t[r] = ld16(src + (i0 + r) * ld + j0);
            for (int r = 0; r < 16; r += 2) TR_STAGE(r, 1, TR_LO1, TR_HI1);
            for (int r = 0; r < 16; r += 4) { TR_STAGE(r, 2, TR_LO2, TR_HI2); TR_STAGE(r + 1, 2, TR_LO2, TR_HI2); }
            for (int r = 0; r < 16; r += 8) for (int u = 0; u < 4; u++) TR_STAGE(r + u, 4, TR_LO4, TR_HI4);
            for (int u = 0; u < 8; u++) TR_STAGE(u, 8, TR_LO8, TR_HI8);
            for (int c = 0; c < 16; c++) memcpy(dst + (j0 + c) * rows + i0, &t[c], sizeof(v16));
        }
    for (long i = 0; i < rows; i++)
        for (long j = i < rv ? cv : 0; j < cols; j++) dst[j * rows + i] = src[i * ld + j];
}
VARIANTS(transpose_ld, (float *restrict dst, const float *restrict src, long rows, long cols, long ld),
         (dst, src, rows, cols, ld))
static void transpose_ld(float *restrict dst, const float *restrict src, long rows, long cols, long ld) {
    DISPATCH(transpose_ld, dst, src, rows, cols, ld);
}

// The next (sequence, head) pair's rows, prefetched into L2 a slice at a time between the phases of this pair (NULL:
// none). A pair's q, k, v, dy and output rows are 3C or C floats apart, too far for the hardware's prefetchers, so
// without this each row is a demand miss; prefetching the rows the next pair writes (for ownership) mattered most
// (Scripts/bench-attention.sh: the backward of a small layer ≈ 10% faster). No effect on any value.
typedef struct {
    const float *q;   // q rows (k at q + c, v at q + 2c; row stride 3c)
    const float *dy;  // backward: dy rows (row stride c); forward: NULL
    float *w;         // rows written: forward y (stride c); backward dq (dk at w + c, dv at w + 2c; stride 3c)
    long len, c, hd;
} att_next;

static void att_prefetch(const att_next *nx, int part, int parts) {
    if (!nx) return;
    const long c = nx->c, c3 = 3 * c, r0 = nx->len * part / parts, r1 = nx->len * (part + 1) / parts;
    for (long r = r0; r < r1; r++)
        for (long u = 0; u < nx->hd; u += 16) {
            const float *q = nx->q + r * c3 + u;
            __builtin_prefetch(q, 0, 2); __builtin_prefetch(q + c, 0, 2); __builtin_prefetch(q + 2 * c, 0, 2);
            if (nx->dy) {
                float *w = nx->w + r * c3 + u;
                __builtin_prefetch(nx->dy + r * c + u, 0, 2);
                __builtin_prefetch(w, 1, 2); __builtin_prefetch(w + c, 1, 2); __builtin_prefetch(w + 2 * c, 1, 2);
            } else {
                __builtin_prefetch(nx->w + r * c + u, 1, 2);
            }
        }
}

static void attention_forward(float *y, long ldy, float *att, long lda, const float *q, const float *k, const float *v,
                              long ld, long len, long hd, float scale, float *scratch, const att_next *nx) {
    float *kt = scratch;                                                        // (hd, len)
    transpose_ld(kt, k, len, hd, ld);
    att_prefetch(nx, 0, 3);
    mm_rows(att, lda, q, ld, 1, kt, len, len, len, hd, MM_FULL, 1, scale, 0);   // S = scale·Q·Kᵀ (j ≤ t)
    att_prefetch(nx, 1, 3);
    bfk_causal_softmax(att, len, lda);                                          // A = softmax_causal(S)
    att_prefetch(nx, 2, 3);
    mm_rows(y, ldy, att, lda, 1, v, ld, len, hd, len, MM_LOWER, 0, 1, 0);       // Y = A·V
}

void bfk_attention_forward(float *y, long ldy, float *att, long lda, const float *q, const float *k, const float *v,
                           long ld, long len, long hd, float scale, float *scratch) {
    attention_forward(y, ldy, att, lda, q, k, v, ld, len, hd, scale, scratch, NULL);
}

void bfk_attention_forward_pairs(float *out, float *att, const float *qkv, const long *lengths, long t, long c,
                                 long heads, long pair0, long pair1, float *scratch) {
    const long hd = c / heads, c3 = 3 * c;
    const float scale = 1.0f / sqrtf((float)hd);
    for (long pair = pair0; pair < pair1; pair++) {
        const long b = pair / heads, h = pair % heads;
        const float *base = qkv + b * t * c3 + h * hd;
        att_next nx;
        if (pair + 1 < pair1) {
            const long b2 = (pair + 1) / heads, h2 = (pair + 1) % heads;
            nx = (att_next){qkv + b2 * t * c3 + h2 * hd, NULL, out + b2 * t * c + h2 * hd, lengths[b2], c, hd};
        }
        attention_forward(out + b * t * c + h * hd, c, att + pair * t * t, t, base, base + c, base + 2 * c, c3,
                          lengths[b], hd, scale, scratch, pair + 1 < pair1 ? &nx : NULL);
    }
}

static void attention_backward(float *dq, float *dk, float *dv, long ld, const float *dy, long ldy, const float *q,
                               const float *k, const float *v, const float *att, long lda, long len, long hd,
                               float scale, float *scratch, int accumulate, const att_next *nx) {
    // dS is read by columns for dK: its rows are padded to ldd = lda + 16 floats so that a column walk does not keep
    // hitting the same 8 of L1's 64 sets (with lda = 128, every row starts 512 bytes after the last).
    const long ldd = lda + 16;
    float *vt = scratch, *da = scratch + hd * len;                              // (hd, len), (len, len; stride ldd)
    transpose_ld(vt, v, len, hd, ld);
    att_prefetch(nx, 0, 5);
    mm_rows(da, ldd, dy, ldy, 1, vt, len, len, len, hd, MM_FULL, 1, 1, 0);      // dA = dY·Vᵀ (j ≤ t)
    att_prefetch(nx, 1, 5);
    // The softmax backward reads A row by row (sequential: the hardware prefetcher streams it in from memory) before
    // dV reads it by columns (a 4·lda-byte stride, one demand miss per row when A comes from memory; dV alone over a
    // small layer: 4.1 ms with A in memory, 0.84 ms with A in cache). dV does not depend on dS: no bit changes.
    causal_softmax_backward_ld(da, ldd, att, lda, len, scale);                 // dS = A ⊙ (dA − rowsum)·scale
    att_prefetch(nx, 2, 5);
    mm_rows(dv, ld, att, 1, lda, dy, ldy, len, hd, len, MM_UPPER, 0, 1, accumulate);  // dV (+)= Aᵀ·dY
    att_prefetch(nx, 3, 5);
    mm_rows(dq, ld, da, ldd, 1, k, ld, len, hd, len, MM_LOWER, 0, 1, accumulate);     // dQ (+)= dS·K
    att_prefetch(nx, 4, 5);
    mm_rows(dk, ld, da, 1, ldd, q, ld, len, hd, len, MM_UPPER, 0, 1, accumulate);     // dK (+)= dSᵀ·Q
}

void bfk_attention_backward(float *dq, float *dk, float *dv, long ld, const float *dy, long ldy, const float *q,
                            const float *k, const float *v, const float *att, long lda, long len, long hd, float scale,
                            float *scratch) {
    attention_backward(dq, dk, dv, ld, dy, ldy, q, k, v, att, lda, len, hd, scale, scratch, 1, NULL);
}

void bfk_attention_backward_set(float *dq, float *dk, float *dv, long ld, const float *dy, long ldy, const float *q,
                                const float *k, const float *v, const float *att, long lda, long len, long hd,
                                float scale, float *scratch) {
    attention_backward(dq, dk, dv, ld, dy, ldy, q, k, v, att, lda, len, hd, scale, scratch, 0, NULL);
}

void bfk_attention_backward_pairs(float *dqkv, const float *dout, const float *qkv, const float *att,
                                  const long *lengths, long t, long c, long heads, long pair0, long pair1,
                                  float *scratch, int accumulate) {
    const long hd = c / heads, c3 = 3 * c;
    const float scale = 1.0f / sqrtf((float)hd);
    for (long pair = pair0; pair < pair1; pair++) {
        const long b = pair / heads, h = pair % heads;
        const float *base = qkv + b * t * c3 + h * hd;
        float *dbase = dqkv + b * t * c3 + h * hd;
        att_next nx;
        if (pair + 1 < pair1) {
            const long b2 = (pair + 1) / heads, h2 = (pair + 1) % heads;
            nx = (att_next){qkv + b2 * t * c3 + h2 * hd, dout + b2 * t * c + h2 * hd, dqkv + b2 * t * c3 + h2 * hd,
                            lengths[b2], c, hd};
        }
        attention_backward(dbase, dbase + c, dbase + 2 * c, c3, dout + b * t * c + h * hd, c, base, base + c,
                           base + 2 * c, att + pair * t * t, t, lengths[b], hd, scale, scratch, accumulate,
                           pair + 1 < pair1 ? &nx : NULL);
    }
}

// MARK: sum of squares (gradient norm)

typedef double v8d __attribute__((vector_size(64), aligned(8)));
BFK_INLINE double sum_squares_body(const float *x, long n) {
    v8d acc = {0}; long i = 0;
    for (; i + 8 <= n; i += 8) {
        v8d d = {x[i], x[i + 1], x[i + 2], x[i + 3], x[i + 4], x[i + 5], x[i + 6], x[i + 7]};
        acc += d * d;
    }
    double s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}
#ifdef BFK_X86
BFK_AVX512 static double sum_squares_avx512(const float *x, long n) { return sum_squares_body(x, n); }
BFK_AVX2 static double sum_squares_avx2(const float *x, long n) { return sum_squares_body(x, n); }
#endif
static double sum_squares_base(const float *x, long n) { return sum_squares_body(x, n); }
double bfk_sum_squares(const float *x, long n) {
#ifdef BFK_X86
    switch (bfk_isa()) { case 2: return sum_squares_avx512(x, n); case 1: return sum_squares_avx2(x, n); default: break; }
#endif
    return sum_squares_base(x, n);
}

// MARK: parameter copy with checksum (shared-memory broadcast)

#ifdef BFK_X86
#include <emmintrin.h>
#endif

// 16 Fletcher lanes over 32-bit words (lane k takes words i ≡ k mod 16: a += w, b += a, mod 2³²) and the
// magnitude check (over |= bound − (w & 0x7FFFFFFF), negative when a word's |x| is above the bound or not finite),
// over the first words/16·16 words; the caller does the tail and the final mix. With dst and non_temporal on x86-64
// the copy uses non-temporal 16-byte stores (SSE2: baseline x86-64, so no dispatch): a 40 MB copy does not read the
// destination in first nor evict the caches, 5.5 → 3.5 ms here (a copy that fits in the caches is better left
// there for its reader: the caller decides). Same lanes and order as the plain loop, so same checksum.
void bfk_copy_fletcher16(void *dst, const void *src, long words, int32_t bound_bits, uint32_t a[16], uint32_t b[16],
                         int32_t over[16], int non_temporal) {
    long body = words / 16 * 16;
    const uint32_t *s = (const uint32_t *)src;
    uint32_t *d = (uint32_t *)dst;
#ifdef BFK_X86
    __m128i va[4], vb[4], vo[4];
    for (int q = 0; q < 4; q++) {
        va[q] = _mm_loadu_si128((const __m128i *)(a + 4 * q));
        vb[q] = _mm_loadu_si128((const __m128i *)(b + 4 * q));
        vo[q] = _mm_loadu_si128((const __m128i *)(over + 4 * q));
    }
    const __m128i mask = _mm_set1_epi32(0x7FFFFFFF), limit = _mm_set1_epi32(bound_bits);
    int stream = non_temporal && d && ((uintptr_t)d & 15) == 0;
    for (long i = 0; i < body; i += 16) {
        for (int q = 0; q < 4; q++) {
            __m128i w = _mm_loadu_si128((const __m128i *)(s + i + 4 * q));
            if (stream) _mm_stream_si128((__m128i *)(d + i + 4 * q), w);
            else if (d) _mm_storeu_si128((__m128i *)(d + i + 4 * q), w);
            va[q] = _mm_add_epi32(va[q], w);
            vb[q] = _mm_add_epi32(vb[q], va[q]);
            vo[q] = _mm_or_si128(vo[q], _mm_sub_epi32(limit, _mm_and_si128(w, mask)));
        }
    }
    if (stream) _mm_sfence();
    for (int q = 0; q < 4; q++) {
        _mm_storeu_si128((__m128i *)(a + 4 * q), va[q]);
        _mm_storeu_si128((__m128i *)(b + 4 * q), vb[q]);
        _mm_storeu_si128((__m128i *)(over + 4 * q), vo[q]);
    }
#else
    for (long i = 0; i < body; i += 16)
        for (int k = 0; k < 16; k++) {
            uint32_t w = s[i + k];
            if (d) d[i + k] = w;
            a[k] += w; b[k] += a[k];
            over[k] |= (int32_t)((uint32_t)bound_bits - (w & 0x7FFFFFFFu));
        }
#endif
}

// MARK: BoN rollout decode copies (wire)

// The wire decoder's two array copies, each with the summary validation needs computed in the same pass (see
// FastCodec.swift): little-endian source bytes at any alignment (x86-64 and aarch64 are little-endian). Plain loops
// the compiler vectorises per instruction set; the OR reductions are order-free, so every variant gives the same.
BFK_INLINE int copy_in_range_body(float *restrict dst, const unsigned char *restrict src, long n, float lo, float hi) {
    int bad = 0;
    for (long i = 0; i < n; i++) {
        float x;
        memcpy(&x, src + 4 * i, 4);
        dst[i] = x;
        bad |= (x < lo) | (x > hi) | (x != x);   // NaN fails the last; ±inf one of the first two when lo, hi finite
    }
    return !bad;
}
BFK_INLINE uint32_t widen_ids_body(int64_t *restrict dst, const unsigned char *restrict src, long n) {
    uint32_t bits = 0;
    for (long i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, src + 4 * i, 4);
        bits |= v;
        dst[i] = (int64_t)v;
    }
    return bits;
}
#ifdef BFK_X86
BFK_AVX512 static int copy_in_range_avx512(float *d, const unsigned char *s, long n, float lo, float hi) { return copy_in_range_body(d, s, n, lo, hi); }
BFK_AVX2 static int copy_in_range_avx2(float *d, const unsigned char *s, long n, float lo, float hi) { return copy_in_range_body(d, s, n, lo, hi); }
BFK_AVX512 static uint32_t widen_ids_avx512(int64_t *d, const unsigned char *s, long n) { return widen_ids_body(d, s, n); }
BFK_AVX2 static uint32_t widen_ids_avx2(int64_t *d, const unsigned char *s, long n) { return widen_ids_body(d, s, n); }
#endif
static int copy_in_range_base(float *d, const unsigned char *s, long n, float lo, float hi) { return copy_in_range_body(d, s, n, lo, hi); }
static uint32_t widen_ids_base(int64_t *d, const unsigned char *s, long n) { return widen_ids_body(d, s, n); }

int bfk_copy_f32_in_range(float *dst, const void *src, long n, float lo, float hi) {
#ifdef BFK_X86
    switch (bfk_isa()) {
    case 2: return copy_in_range_avx512(dst, src, n, lo, hi);
    case 1: return copy_in_range_avx2(dst, src, n, lo, hi);
    default: break;
    }
#endif
    return copy_in_range_base(dst, src, n, lo, hi);
}

uint32_t bfk_widen_u32_ids(int64_t *dst, const void *src, long n) {
#ifdef BFK_X86
    switch (bfk_isa()) {
    case 2: return widen_ids_avx512(dst, src, n);
    case 1: return widen_ids_avx2(dst, src, n);
    default: break;
    }
#endif
    return widen_ids_base(dst, src, n);
}
