// Bonfire's own single-precision GEMM (see bfk_sgemm in include/bonfire_kernels.h): row-major
//   C (m×n) = alpha · op(A) (m×k) · op(B) (k×n) + beta · C
// for the linear-layer shapes of the train step (N = B·T rows, C..4C columns, k = C..4C or N), where OpenBLAS 0.3.21's
// SkylakeX kernel runs ~1.3× slower than MKL on Emerald Rapids. AVX-512 only: below it bfk_sgemm returns 0 ("not
// handled") and BLAS.sgemm calls OpenBLAS, as it does on aarch64.
//
// Design (Goto/BLIS, transposed for row-major C): op(B) is packed into NR = 64-column panels (kc rows × 64 floats,
// zero padded; op(B) = Bᵀ through 16 × 16 in-register transposes), one kc-block of k and NC columns at a time. A is
// read in place: op(A) = A by MR row pointers lda apart (k contiguous), op(A) = Aᵀ by MR contiguous floats per k
// step, lda apart; only Aᵀ with long rows (lda > 512) is first copied into a contiguous (kc, mc) block, because a
// column of A then falls into a handful of L1 sets. Loops: column block → k-block (pack B) → MC rows → 64-column
// panel → MR = 6 rows → micro-kernel with 6 × 4 zmm accumulators (24 FMAs per k for 4 loads of B and 6 broadcasts
// of A; 98% of the FMA peak when its operands are in cache). Edge tiles: a kernel per row count (1…6) and per
// vector count (1…4), the last 16-column vector of C loaded/stored under an AVX-512 mask, never scalar code.
// In the first k-block the next C tile is prefetched for writing while the current one is computed (C is not in
// cache yet): products with k = 256 and n ≥ 768 (the forward c_attn and c_fc) 2.5–3.6% faster, others unchanged
// (harness of the seventh pass, alternating, min of 9 × 5 runs). Measured and dropped: software prefetch of the next
// blocks (slower: it stalled the FMAs more than it hid),
// 12 × 32 tiles, k-blocks of 128 (C re-read more often), packing op(A) = A (a copy that cost more than it saved).
//
// Summation order of every C element: k is cut into nb = ⌈k / KC⌉ blocks at pc_i = i·k / nb (a function of k
// alone); within a block the products are added in k order by one FMA chain; each block's sum is scaled by alpha and
// added to C (the first block: to beta·C, C not read when beta = 0). Nothing depends on the element's position, on
// m, n, the tile or the thread: a product split over threads by rows or columns of C gives the same bits.
//
// Epilogues (bfk_sgemm_ex): a linear layer's elementwise passes over C run on each 6 × 64 tile right around its
// micro-kernel call, while the tile is in L1, instead of as separate passes over all of C in memory: before the
// first k-block, the tile is set to addend + bias (then the block sum is added with beta = 1, exactly as after
// Ops.linearForward's old pass over C); after the last k-block, GELU(tile) is written to a second matrix and, for the
// model's forward, the tile becomes GELU'(tile), kept for the backward — with gelu_inline.h's functions, the code of
// bfk_gelu_forward / bfk_gelu_forward_local. Every element
// goes through the same operations in the same order as in the separate passes, so the results are the same bits.

#include "bonfire_kernels.h"
#include "gelu_inline.h"
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
// As in kernels.c: per-function instruction sets, never a global -march.
#define GEMM_X86 1
#define GEMM_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))
#endif
#define GEMM_INLINE static inline __attribute__((always_inline))

enum {
    GEMM_MR = 6,       // rows of C per micro-tile (broadcasts of A)
    GEMM_NR = 64,      // columns of C per micro-tile (4 zmm)
    GEMM_KC = 256,     // target k-block (a packed B panel is KC·NR·4 = 64 KiB, streamed from L2)
    GEMM_MC = 192,     // rows of C per block (packed op(A) = Aᵀ: kc·MC·4 = 192 KiB)
    GEMM_NC = 512,     // columns of B packed at once (kc·NC·4 = 512 KiB)
    PACK_AT_MIN_LDA = 512,   // op(A) = Aᵀ is packed only when lda > this (see sgemm_avx512)
    PACK_AHEAD = 4,    // rows of A prefetched ahead while packing it
};

long bfk_sgemm_kblocks(long k) { return k <= 0 ? 0 : (k + GEMM_KC - 1) / GEMM_KC; }

#ifdef GEMM_X86

// MARK: micro-kernel

// C[0 ..< MRV, 0 ..< 16·NVV] (last vector masked by `last`) = alpha · Σ_kk a(r, kk) · bp[kk][·] + beta · C.
// AROWS: a(r, kk) = a[r·lda + kk] (op(A) = A); else a[kk·lda + r] (op(A) = Aᵀ). bp: packed panel, 64 floats per kk.
// Accumulators are named registers (an array made clang zero it through memory); rows ≥ MRV and vectors ≥ NVV are
// compile-time dead.
#define ACC_ROW(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = c##r##0, c##r##2 = c##r##0, c##r##3 = c##r##0;
#define FMA_ROW(r, X)                                                                                            \
    if (MRV > r) {                                                                                               \
        const __m512 x = (X);                                                                                    \
        c##r##0 = _mm512_fmadd_ps(x, b0, c##r##0);                                                               \
        if (NVV > 1) c##r##1 = _mm512_fmadd_ps(x, b1, c##r##1);                                                  \
        if (NVV > 2) c##r##2 = _mm512_fmadd_ps(x, b2, c##r##2);                                                  \
        if (NVV > 3) c##r##3 = _mm512_fmadd_ps(x, b3, c##r##3);                                                  \
    }
#define LOAD_B()                                                                                                 \
    const __m512 b0 = _mm512_load_ps(bp);                                                                        \
    const __m512 b1 = NVV > 1 ? _mm512_load_ps(bp + 16) : b0;                                                    \
    const __m512 b2 = NVV > 2 ? _mm512_load_ps(bp + 32) : b0;                                                    \
    const __m512 b3 = NVV > 3 ? _mm512_load_ps(bp + 48) : b0;

GEMM_AVX512 GEMM_INLINE __m512 c_update(__m512 t, float *p, __mmask16 mk, float alpha, float beta) {
    if (alpha != 1.0f) t = _mm512_mul_ps(t, _mm512_set1_ps(alpha));
    if (beta == 1.0f) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(mk, p));
    else if (beta != 0.0f) t = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mk, p), t);
    return t;
}
#define STORE_ROW(r)                                                                                             \
    if (MRV > r) {                                                                                               \
        float *cr = c + r * ldc;                                                                                 \
        if (NVV == 1) _mm512_mask_storeu_ps(cr, last, c_update(c##r##0, cr, last, alpha, beta));                 \
        else _mm512_storeu_ps(cr, c_update(c##r##0, cr, 0xFFFF, alpha, beta));                                   \
        if (NVV == 2) _mm512_mask_storeu_ps(cr + 16, last, c_update(c##r##1, cr + 16, last, alpha, beta));       \
        else if (NVV > 2) _mm512_storeu_ps(cr + 16, c_update(c##r##1, cr + 16, 0xFFFF, alpha, beta));            \
        if (NVV == 3) _mm512_mask_storeu_ps(cr + 32, last, c_update(c##r##2, cr + 32, last, alpha, beta));       \
        else if (NVV > 3) _mm512_storeu_ps(cr + 32, c_update(c##r##2, cr + 32, 0xFFFF, alpha, beta));            \
        if (NVV == 4) _mm512_mask_storeu_ps(cr + 48, last, c_update(c##r##3, cr + 48, last, alpha, beta));       \
    }

GEMM_AVX512 GEMM_INLINE void micro(const int MRV, const int NVV, const int AROWS, long kc, const float *a, long lda,
                                   const float *bp, float *c, long ldc, float alpha, float beta, __mmask16 last) {
    ACC_ROW(0) ACC_ROW(1) ACC_ROW(2) ACC_ROW(3) ACC_ROW(4) ACC_ROW(5)
    if (AROWS) {
        const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda, *a4 = a + 4 * lda, *a5 = a + 5 * lda;
        for (long kk = 0; kk < kc; kk++) {
            LOAD_B()
            FMA_ROW(0, _mm512_set1_ps(a0[kk])) FMA_ROW(1, _mm512_set1_ps(a1[kk])) FMA_ROW(2, _mm512_set1_ps(a2[kk]))
            FMA_ROW(3, _mm512_set1_ps(a3[kk])) FMA_ROW(4, _mm512_set1_ps(a4[kk])) FMA_ROW(5, _mm512_set1_ps(a5[kk]))
            bp += GEMM_NR;
        }
    } else {
        for (long kk = 0; kk < kc; kk++) {
            LOAD_B()
            FMA_ROW(0, _mm512_set1_ps(a[0])) FMA_ROW(1, _mm512_set1_ps(a[1])) FMA_ROW(2, _mm512_set1_ps(a[2]))
            FMA_ROW(3, _mm512_set1_ps(a[3])) FMA_ROW(4, _mm512_set1_ps(a[4])) FMA_ROW(5, _mm512_set1_ps(a[5]))
            a += lda;
            bp += GEMM_NR;
        }
    }
    STORE_ROW(0) STORE_ROW(1) STORE_ROW(2) STORE_ROW(3) STORE_ROW(4) STORE_ROW(5)
}

typedef void (*micro_fn)(long kc, const float *a, long lda, const float *bp, float *c, long ldc, float alpha,
                         float beta, __mmask16 last);

#define MICRO(MRV, NVV, AROWS)                                                                                   \
    GEMM_AVX512 static void micro_##MRV##_##NVV##_##AROWS(long kc, const float *a, long lda, const float *bp,     \
                                                          float *c, long ldc, float alpha, float beta,          \
                                                          __mmask16 last) {                                     \
        micro(MRV, NVV, AROWS, kc, a, lda, bp, c, ldc, alpha, beta, last);                                       \
    }
#define MICRO_NV(MRV, AROWS) MICRO(MRV, 1, AROWS) MICRO(MRV, 2, AROWS) MICRO(MRV, 3, AROWS) MICRO(MRV, 4, AROWS)
#define MICRO_ALL(AROWS) MICRO_NV(1, AROWS) MICRO_NV(2, AROWS) MICRO_NV(3, AROWS) MICRO_NV(4, AROWS) \
    MICRO_NV(5, AROWS) MICRO_NV(6, AROWS)
MICRO_ALL(0)
MICRO_ALL(1)
#define ROW_FNS(MRV, AROWS) { micro_##MRV##_1_##AROWS, micro_##MRV##_2_##AROWS, micro_##MRV##_3_##AROWS, \
    micro_##MRV##_4_##AROWS }
// [AROWS][MRV − 1][NVV − 1]
static const micro_fn micro_table[2][GEMM_MR][4] = {
    {ROW_FNS(1, 0), ROW_FNS(2, 0), ROW_FNS(3, 0), ROW_FNS(4, 0), ROW_FNS(5, 0), ROW_FNS(6, 0)},
    {ROW_FNS(1, 1), ROW_FNS(2, 1), ROW_FNS(3, 1), ROW_FNS(4, 1), ROW_FNS(5, 1), ROW_FNS(6, 1)},
};

// MARK: packing

// In-register transpose of a 16 × 16 block: r[q][l] ← r[l][q].
GEMM_AVX512 GEMM_INLINE void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int q = 0; q < 16; q += 2) {
        t[q] = _mm512_unpacklo_ps(r[q], r[q + 1]);
        t[q + 1] = _mm512_unpackhi_ps(r[q], r[q + 1]);
    }
    for (int q = 0; q < 16; q += 4) {
        r[q] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[q]), _mm512_castps_pd(t[q + 2])));
        r[q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[q]), _mm512_castps_pd(t[q + 2])));
        r[q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[q + 1]), _mm512_castps_pd(t[q + 3])));
        r[q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[q + 1]), _mm512_castps_pd(t[q + 3])));
    }
    // r[4i + c] now holds, per 128-bit lane L, rows 4L..4L+3 of column (4i... ) — regroup the 128-bit lanes.
    for (int q = 0; q < 4; q++) {
        t[q] = _mm512_shuffle_f32x4(r[q], r[q + 4], 0x88);
        t[q + 4] = _mm512_shuffle_f32x4(r[q], r[q + 4], 0xDD);
        t[q + 8] = _mm512_shuffle_f32x4(r[q + 8], r[q + 12], 0x88);
        t[q + 12] = _mm512_shuffle_f32x4(r[q + 8], r[q + 12], 0xDD);
    }
    for (int q = 0; q < 4; q++) {
        r[q] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0x88);
        r[q + 8] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0xDD);
        r[q + 4] = _mm512_shuffle_f32x4(t[q + 4], t[q + 12], 0x88);
        r[q + 12] = _mm512_shuffle_f32x4(t[q + 4], t[q + 12], 0xDD);
    }
}

// op(B)[pc ..< pc + kc, jc ..< jc + nc] into ⌈nc / 64⌉ panels of kc × 64 floats at dst + p·kc·64; the columns of the
// last panel past nc up to its last 16-float vector are zero.
GEMM_AVX512 static void pack_b(float *dst, const float *b, long ldb, int transB, long pc, long kc, long jc, long nc) {
    for (long j0 = 0; j0 < nc; j0 += GEMM_NR) {
        const long w = nc - j0 < GEMM_NR ? nc - j0 : GEMM_NR;
        float *d = dst + (j0 / GEMM_NR) * kc * GEMM_NR;
        if (!transB) {
            const float *s = b + pc * ldb + jc + j0;
            const long nv = (w + 15) / 16;
            const __mmask16 last = (w & 15) ? (__mmask16)((1u << (w & 15)) - 1) : (__mmask16)0xFFFF;
            for (long kk = 0; kk < kc; kk++, s += ldb, d += GEMM_NR) {
                for (long v = 0; v < nv; v++) {
                    const __mmask16 mk = v == nv - 1 ? last : (__mmask16)0xFFFF;
                    _mm512_store_ps(d + 16 * v, _mm512_maskz_loadu_ps(mk, s + 16 * v));
                }
            }
        } else {
            // op(B)[kk][j] = B[j][kk]: 16 × 16 blocks transposed in registers (rows past w and k steps past kc are
            // masked off: zeros in, not stored).
            const float *s = b + (jc + j0) * ldb + pc;
            for (long j = 0; j < w; j += 16) {
                const long rows = w - j < 16 ? w - j : 16;
                for (long kk = 0; kk < kc; kk += 16) {
                    const long cols = kc - kk < 16 ? kc - kk : 16;
                    const __mmask16 cm = (__mmask16)((1u << cols) - 1);
                    __m512 r[16];
                    for (int q = 0; q < 16; q++)
                        r[q] = q < rows ? _mm512_maskz_loadu_ps(cm, s + (j + q) * ldb + kk) : _mm512_setzero_ps();
                    transpose16(r);
                    for (int q = 0; q < cols; q++) _mm512_store_ps(d + (kk + q) * GEMM_NR + j, r[q]);
                }
            }
        }
    }
}

// op(A) = Aᵀ (A stored k×m): the block's kc runs of mc floats (A[pc + kk][ic ..< ic + mc]) copied contiguously, at
// dst + kk·mc. The kernel then reads MR consecutive floats per k step mc·4 bytes apart instead of lda·4: for lda·4 a
// multiple of 1 KiB (every dW product of the model) A's own column falls into a few L1 sets and misses on every k.
// op(A) = A needs no packing: the kernel reads its MR rows, each kc consecutive floats.
// sums (NULL or mc floats for columns ic ..< ic + mc of A): each copied float is also added to its column's sum, one
// row after the other (the a_sums epilogue; the same order as a loop over rows).
GEMM_AVX512 static void pack_at(float *dst, const float *a, long lda, long ic, long mc, long pc, long kc,
                                float *sums) {
    const float *s = a + pc * lda + ic;
    const long nv = mc / 16;
    const __mmask16 tail = (__mmask16)((1u << (mc & 15)) - 1);
    for (long kk = 0; kk < kc; kk++, s += lda, dst += mc) {
        // Runs of mc floats lda apart are too short for the hardware prefetcher: fetch PACK_AHEAD rows ahead.
        if (kk + PACK_AHEAD < kc)
            for (long v = 0; v <= nv; v++) _mm_prefetch((const char *)(s + PACK_AHEAD * lda + 16 * v), _MM_HINT_T0);
        for (long v = 0; v < nv; v++) {
            const __m512 x = _mm512_loadu_ps(s + 16 * v);
            _mm512_storeu_ps(dst + 16 * v, x);
            if (sums) _mm512_storeu_ps(sums + 16 * v, _mm512_add_ps(_mm512_loadu_ps(sums + 16 * v), x));
        }
        if (tail) {
            const __m512 x = _mm512_maskz_loadu_ps(tail, s + 16 * nv);
            _mm512_mask_storeu_ps(dst + 16 * nv, tail, x);
            if (sums)
                _mm512_mask_storeu_ps(sums + 16 * nv, tail,
                                      _mm512_add_ps(_mm512_maskz_loadu_ps(tail, sums + 16 * nv), x));
        }
    }
}

// The a_sums epilogue without packing: sums (m) += Σ over the k rows of A (k × m, leading dimension lda), row by row.
static void sum_rows(float *sums, const float *a, long lda, long m, long k) {
#pragma clang fp contract(off)
    for (long kk = 0; kk < k; kk++) {
        const float *restrict s = a + kk * lda;
        float *restrict d = sums;
        for (long i = 0; i < m; i++) d[i] += s[i];
    }
}

// MARK: epilogues (bfk_sgemm_ex)

// Each works on one tile of C (rows i ..< i + rows, columns j ..< j + w of the whole product; ct = &C[i][j]) while
// the tile is in L1, instead of a separate pass over C in memory. They run the same scalar code as the separate
// passes they replace (bfk_gelu_forward / bfk_gelu_backward_set through gelu_inline.h, Ops.linearForward's
// `residual + bias` row loop), element by element, so a fused product gives the same bits as the unfused sequence.

// Before the first k-block's micro-kernel (which then adds its block sum with beta = 1): C tile = addend + bias,
// exactly the rows Ops.linearForward used to write over the whole of C before a beta = 1 product.
GEMM_AVX512 static void epi_first(const bfk_gemm_epilogue *e, float *ct, long ldc, long i, long j, long rows, long w) {
#pragma clang fp contract(off)
    const float *restrict b = e->bias ? e->bias + j : NULL;
    for (long r = 0; r < rows; r++) {
        float *restrict cr = ct + r * ldc;
        const float *restrict x = e->addend ? e->addend + (i + r) * e->ld_addend + j : NULL;
        if (x && b) for (long q = 0; q < w; q++) cr[q] = x[q] + b[q];
        else memcpy(cr, x ? x : b, (size_t)w * sizeof(float));
    }
}

// One row of a tile (restrict parameters: the loops vectorise without overlap checks).
GEMM_AVX512 GEMM_INLINE void gelu_row(float *restrict g, const float *restrict cr, long w) {
#pragma clang fp contract(off)
    for (long q = 0; q < w; q++) g[q] = gelu_value(cr[q]);
}
GEMM_AVX512 GEMM_INLINE void gelu_local_row(float *restrict g, float *restrict cr, long w) {
#pragma clang fp contract(off)
    for (long q = 0; q < w; q++) {
        float d;
        g[q] = gelu_value_local(cr[q], &d);
        cr[q] = d;
    }
}

// After the last k-block's micro-kernel (the tile of C is final): gelu_out = GELU(C) (as bfk_gelu_forward) and, with
// gelu_local_in_c, C = GELU'(C) (as bfk_gelu_forward_local). (Until the seventh pass the backward's GELU' ran here
// too, computed from GELU's stored input: measured slower than its separate pass, so it stayed off. Now the forward
// keeps GELU' and the backward only multiplies by it, `bfk_mul_set`: fused into the dX product's tiles that multiply
// measured no faster than the separate pass — 16.4 vs 16.1 ms, Scripts/bench-gemm-epilogues.c — so it is not here.)
GEMM_AVX512 static void epi_last(const bfk_gemm_epilogue *e, float *ct, long ldc, long i, long j, long rows, long w) {
    for (long r = 0; r < rows; r++) {
        float *cr = ct + r * ldc;
        float *g = e->gelu_out + (i + r) * e->ld_gelu_out + j;
        if (e->gelu_local_in_c) gelu_local_row(g, cr, w); else gelu_row(g, cr, w);
    }
}

// Prefetches rows × w floats of a matrix (leading dimension ld) into L1: the epilogue's operands of a tile, fetched
// while a micro-kernel runs (the tile order reads them 64 floats per row, rows 4 KiB apart for the model's (N, 4C)
// matrices: a pattern the hardware prefetchers do not follow, so without this the epilogue waits on memory).
GEMM_AVX512 GEMM_INLINE void prefetch_tile(const float *p, long ld, long rows, long w, int write) {
    for (long r = 0; r < rows; r++)
        for (long q = 0; q < w; q += 16) {
            if (write) _mm_prefetch((const char *)(p + r * ld + q), _MM_HINT_ET0);
            else _mm_prefetch((const char *)(p + r * ld + q), _MM_HINT_T0);
        }
}

// MARK: driver

static _Thread_local float *t_pack[2];
static _Thread_local long t_pack_cap[2];

// This thread's packing buffer `which` (0: B, 1: A) of at least `floats` floats, 64-byte aligned; NULL if out of memory.
static float *pack_buffer(int which, long floats) {
    if (t_pack_cap[which] < floats) {
        free(t_pack[which]);
        t_pack[which] = aligned_alloc(64, (size_t)((floats + 15) / 16 * 16) * sizeof(float));
        t_pack_cap[which] = t_pack[which] ? floats : 0;
    }
    return t_pack[which];
}

static long min_l(long x, long y) { return x < y ? x : y; }
static long ceil_div(long x, long y) { return (x + y - 1) / y; }

// ep: NULL (plain bfk_sgemm) or the epilogue, which has something to do in the first (has_first) and/or the last
// (has_last) k-block; with has_first, beta·C is replaced by epi_first's tile and C's old content is not read.
GEMM_AVX512 static int sgemm_avx512(int transA, int transB, long m, long n, long k, float alpha, const float *a,
                                    long lda, const float *b, long ldb, float beta, float *c, long ldc,
                                    const bfk_gemm_epilogue *ep, int has_first, int has_last) {
    const long nb = bfk_sgemm_kblocks(k);
    const long kcmax = ceil_div(k, nb);
    const long ncmax = min_l(n, GEMM_NC), mcmax = min_l(m, GEMM_MC);
    float *bp = pack_buffer(0, kcmax * ceil_div(ncmax, GEMM_NR) * GEMM_NR);
    // op(A) = Aᵀ is packed (pack_at) only for long rows: for lda ≤ PACK_AT_MIN_LDA the kernel reading A in place
    // measured faster than copying it (the copy is ~10% of a dW product; A's column then stays in few L1 sets but L2
    // serves it), for lda = 768 and 1024 (small's 3C and 4C) slower.
    const int packA = transA && lda > PACK_AT_MIN_LDA;
    float *ap = packA ? pack_buffer(1, kcmax * mcmax) : NULL;
    if (!bp || (packA && !ap)) return 0;
    float *sums = ep ? ep->a_sums : NULL;
    if (sums && !packA) { sum_rows(sums, a, lda, m, k); sums = NULL; }
    const int arows = !transA;
    for (long jc = 0; jc < n; jc += GEMM_NC) {
        const long nc = min_l(n - jc, GEMM_NC);
        for (long bi = 0; bi < nb; bi++) {
            const long pc = bi * k / nb, kc = (bi + 1) * k / nb - pc;
            pack_b(bp, b, ldb, transB, pc, kc, jc, nc);
            const float be = bi == 0 && !has_first ? beta : 1.0f;
            const int first = bi == 0 && has_first, lastBlock = bi == nb - 1 && has_last;
            for (long ic = 0; ic < m; ic += GEMM_MC) {
                const long mc = min_l(m - ic, GEMM_MC);
                if (packA) pack_at(ap, a, lda, ic, mc, pc, kc, sums && jc == 0 ? sums + ic : NULL);
                for (long j0 = 0; j0 < nc; j0 += GEMM_NR) {
                    const long w = min_l(nc - j0, GEMM_NR);
                    const int nv = (int)((w + 15) / 16);
                    const __mmask16 last = (w & 15) ? (__mmask16)((1u << (w & 15)) - 1) : (__mmask16)0xFFFF;
                    const float *panel = bp + (j0 / GEMM_NR) * kc * GEMM_NR;
                    for (long ir = 0; ir < mc; ir += GEMM_MR) {
                        const long i = ic + ir, mr = min_l(mc - ir, GEMM_MR);
                        float *ct = c + i * ldc + jc + j0;
                        const float *at = packA ? ap + ir : transA ? a + pc * lda + i : a + i * lda + pc;
                        if (first && ep->addend && ir + GEMM_MR < mc)   // the next tile's addend
                            prefetch_tile(ep->addend + (i + GEMM_MR) * ep->ld_addend + jc + j0, ep->ld_addend,
                                          min_l(mc - ir - GEMM_MR, GEMM_MR), w, 0);
                        if (lastBlock && ep->gelu_out)
                            prefetch_tile(ep->gelu_out + i * ep->ld_gelu_out + jc + j0, ep->ld_gelu_out, mr, w, 1);
                        if (bi == 0 && ir + GEMM_MR < mc)   // the next tile of C, written next (not yet in cache)
                            prefetch_tile(ct + GEMM_MR * ldc, ldc, min_l(mc - ir - GEMM_MR, GEMM_MR), w, 1);
                        if (first) epi_first(ep, ct, ldc, i, jc + j0, mr, w);
                        micro_table[arows][mr - 1][nv - 1](kc, at, packA ? mc : lda, panel, ct, ldc, alpha, be, last);
                        if (lastBlock) epi_last(ep, ct, ldc, i, jc + j0, mr, w);
                    }
                }
            }
        }
    }
    return 1;
}
#endif

// C = beta · C over m × n (beta = 0 writes zeros without reading C): the alpha = 0 or k = 0 case.
static void scale_c(long m, long n, float beta, float *c, long ldc) {
    for (long i = 0; i < m; i++) {
        float *cr = c + i * ldc;
        if (beta == 0.0f) memset(cr, 0, (size_t)n * sizeof(float));
        else if (beta != 1.0f) for (long j = 0; j < n; j++) cr[j] *= beta;
    }
}

int bfk_sgemm_available(void) {
#ifdef GEMM_X86
    return bfk_isa() >= 2;
#else
    return 0;
#endif
}

static int g_enabled = 1;
int bfk_sgemm_enabled(void) { return __atomic_load_n(&g_enabled, __ATOMIC_RELAXED); }
void bfk_sgemm_set_enabled(int on) { __atomic_store_n(&g_enabled, on ? 1 : 0, __ATOMIC_RELAXED); }

int bfk_sgemm(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda, const float *b,
              long ldb, float beta, float *c, long ldc) {
    return bfk_sgemm_ex(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
}

int bfk_sgemm_ex(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                 const float *b, long ldb, float beta, float *c, long ldc, const bfk_gemm_epilogue *ep) {
    if (!bfk_sgemm_available()) return 0;
    if (m <= 0 || n <= 0) return 1;
    const int has_first = ep && (ep->bias || ep->addend), has_last = ep && ep->gelu_out;
    if (ep && ep->a_sums && !transA) return 0;
#ifdef GEMM_X86
    if (k <= 0 || alpha == 0.0f) {   // no product: C = the first block's addend (or beta·C), then the last epilogue
        if (ep && ep->a_sums) sum_rows(ep->a_sums, a, lda, m, k);
        if (has_first) epi_first(ep, c, ldc, 0, 0, m, n); else scale_c(m, n, beta, c, ldc);
        if (has_last) epi_last(ep, c, ldc, 0, 0, m, n);
        return 1;
    }
    return sgemm_avx512(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ep, has_first, has_last);
#else
    (void)transA; (void)transB; (void)k; (void)alpha; (void)a; (void)lda; (void)b; (void)ldb; (void)beta; (void)c;
    (void)ldc; (void)has_first; (void)has_last; (void)scale_c;
    return 0;
#endif
}
