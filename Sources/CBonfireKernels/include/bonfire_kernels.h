#pragma once
#include <stdint.h>
// Hot loops of BonfireMath in C, each compiled three times (AVX-512, AVX2+FMA, baseline) and chosen once at run
// time from the CPU's features (__builtin_cpu_supports). No -march flag: the binary runs on any x86-64 and builds on
// aarch64 (where only the baseline variant exists). Every kernel has a plain Swift twin in BonfireMath (Ops, Kernels)
// that tests compare it with. Shapes are written beside each pointer, as in Ops.swift.

/// Instruction-set level in use: 0 = baseline, 1 = AVX2 + FMA, 2 = AVX-512 (F, DQ, VL, BW).
int bfk_isa(void);
/// Highest level this CPU supports.
int bfk_isa_detected(void);
/// Tests: run the kernels at `isa` (clamped to the detected level). Not thread-safe; call before using the kernels.
void bfk_set_isa(int isa);

/// Bonfire's own thread count (BonfireMath's Parallel.threads); 0 = not set yet.
int bfk_threads(void);
void bfk_set_threads(int n);
/// Whether the calling thread is running a Parallel.forRanges range (nested loops then stay on their thread).
int bfk_in_parallel(void);
void bfk_set_in_parallel(int on);

/// One parallel region on Bonfire's worker pool (pool.c): runs fn(ctx, i) for i in 0 ..< parts on the caller and
/// persistent worker threads (started on first use; each part is claimed by whichever of them is free first), and
/// returns when all are done.
/// Parts must be independent. Called while the pool serves another caller, it runs every part on the caller.
typedef void (*bfk_task_fn)(void *ctx, long part);
void bfk_parallel_run(long parts, bfk_task_fn fn, void *ctx);

/// OpenBLAS 0.3.21 falls back to its SSE3 "Prescott" kernel on CPUs it does not know by model number (for example
/// Sapphire/Emerald Rapids), which is 2–4× slower than its AVX2/AVX-512 kernels. If OPENBLAS_CORETYPE is unset and the
/// library picked such a generic core while the CPU supports AVX-512 (or AVX2 + FMA), re-run OpenBLAS's own core
/// selection with OPENBLAS_CORETYPE = SkylakeX (or Haswell): exactly what setting the variable by hand does. Only for
/// DYNAMIC_ARCH builds (weak symbols: elsewhere this does nothing). Runs once; returns the core name it replaced, or
/// NULL if it changed nothing.
const char *bfk_openblas_select_core(void);

/// out (n) = GELU_tanh(inp (n)) (tanh as in Ops.fastTanh).
void bfk_gelu_forward(float *out, const float *inp, long n);
/// dinp (n) += GELU'(inp) · dout.
void bfk_gelu_backward(float *dinp, const float *inp, const float *dout, long n);
/// dinp (n) = GELU'(inp) · dout, written, not added (dinp may be dout: in place).
void bfk_gelu_backward_set(float *dinp, const float *inp, const float *dout, long n);
/// out (n) = GELU_tanh(x), then x (n) = GELU'(x) in place: bit for bit bfk_gelu_forward's out and the local derivative
/// bfk_gelu_backward_set multiplies by. out may not overlap x.
void bfk_gelu_forward_local(float *out, float *x, long n);
/// y (n) = s (n) · y, elementwise (s may not overlap y).
void bfk_mul_set(float *y, const float *s, long n);

/// out (N, C), mean (N), rstd (N) ← LayerNorm(inp (N, C); weight (C), bias (C)), eps 1e-5.
void bfk_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                           const float *bias, long n, long c);
/// dinp (N, C) += …, dweight (C) += …, dbias (C) += … (as Ops.layerNormBackward).
void bfk_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, const float *mean, const float *rstd, long n, long c);

/// bfk_layernorm_backward in two parts for threads, bit-identical to it: dinp of rows 0..<n only, and
/// dweight/dbias[j0 ..< j1] += Σ over all n rows (in row order).
void bfk_layernorm_backward_rows(float *dinp, const float *dout, const float *inp, const float *weight,
                                 const float *mean, const float *rstd, long n, long c);
void bfk_layernorm_backward_cols(float *dweight, float *dbias, const float *dout, const float *inp, const float *mean,
                                 const float *rstd, long n, long c, long j0, long j1);

/// One query against `len` cached keys/values of one head: y (hd) = softmax(scale · K q) · V, K and V (len, hd)
/// contiguous rows. `scores` is scratch of ≥ len floats.
void bfk_attend_one(float *y, float *scores, const float *q, const float *k, const float *v, long len, long hd,
                    float scale);

/// All `heads` heads of one decode row: for each h, y[h·hd ..< (h+1)·hd] = softmax(scale · K_h q_h) · V_h with
/// q_h = q + h·hd, K_h = k + h·headStride and V_h = v + h·headStride ((len, hd) contiguous rows each). Bit-identical to
/// bfk_attend_one on each head (at the same instruction-set level). `scores`: scratch of ≥ heads·len floats.
void bfk_attend_heads(float *y, float *scores, const float *q, const float *k, const float *v, long heads,
                      long headStride, long len, long hd, float scale);
/// bfk_attend_heads with a shared prefix (the sampler's BoN group: one copy of the prompt's keys and values, read
/// by every sample of the group): keys/values 0 ..< plen at kp, vp, keys/values plen ..< len at k, v, both laid out
/// as above (key j of head h at h·headStride + j·hd). Bit-identical to bfk_attend_heads on a cache holding the
/// prefix's rows followed by the others (plen > len counts as len; kp = k, vp = v, plen = 0 is bfk_attend_heads).
void bfk_attend_heads_prefix(float *y, float *scores, const float *q, const float *kp, const float *vp,
                             const float *k, const float *v, long heads, long headStride, long plen, long len,
                             long hd, float scale);

/// Few-row linear layer against a transposed weight: out (N, OC) (+)= inp (N, IC) · wt (IC, OC) + bias (OC).
/// `wt` is Wᵀ of a torch-style weight W (OC, IC) (see bfk_transpose). No packing: meant for N ≲ 64 decode rows.
void bfk_linear_rows(float *out, const float *inp, const float *wt, const float *bias, long n, long ic, long oc,
                     int accumulate);
/// bfk_linear_rows on a packed weight (bfk_pack_panels), bit-identical to it: the decode fast path. Each block of
/// bfk_panel_width() output columns of Wᵀ is stored contiguously, so every strip the kernel reads is one stream.
/// `after` (NULL or the weights used next, `after_count` floats: the next layer's first panel) is prefetched into
/// L2 while the last panel is computed; each panel before the last prefetches the next one. Prefetching never changes
/// a result.
void bfk_linear_panels(float *out, const float *inp, const float *wp, const float *bias, long n, long ic, long oc,
                       int accumulate, const float *after, long after_count);
/// dst (oc·ic floats) ← W (oc, ic) in panels: columns j0 ..< j0 + w of Wᵀ (j0 a multiple of the panel width,
/// w = min(width, oc − j0)) at dst + j0·ic, as (ic, w) row-major: dst[j0·ic + k·w + (j − j0)] = W[j][k].
void bfk_pack_panels(float *dst, const float *w, long oc, long ic);
/// Columns per panel (64).
long bfk_panel_width(void);
/// dst (cols, rows) = srcᵀ, src (rows, cols).
void bfk_transpose(float *dst, const float *src, long rows, long cols);

/// exp(x) for a vector (relative error ≲ 2e-7 on [-87, 88]; exp(-inf) = 0), vectorisable: out (n) = exp(inp (n)).
void bfk_exp(float *out, const float *inp, long n);

/// Causal softmax of the first `len` rows of a (len, len) block with leading dimension `ld`, in place: row t becomes
/// softmax(a[t][0…t]) and a[t][t+1 ..< len] = 0 (Ops.attentionForward's loop).
void bfk_causal_softmax(float *a, long len, long ld);
/// Causal softmax backward in place on da (len, len; leading dimension ld), given probabilities a:
/// da[t][j] = a[t][j]·(da[t][j] − Σ_{i≤t} a[t][i]·da[t][i])·scale for j ≤ t, 0 above (Ops.attentionBackward's loop).
void bfk_causal_softmax_backward(float *da, const float *a, long len, long ld, float scale);

/// One AdamW step over n parameters (Optim.swift's update order, no FMA contraction: bit-identical to the Swift loop).
/// `mask` (n) or NULL (decay everything); bc1 = 1 − β₁ᵗ, bc2 = 1 − β₂ᵗ.
void bfk_adamw(float *p, const float *g, float *m, float *v, const float *mask, long n, float lr, float b1, float b2,
               float eps, float wd, float bc1, float bc2);

/// Causal self-attention forward of one (sequence, head) pair without BLAS: q, k, v (len, hd) with row stride `ld`
/// (3C in a packed qkv row), att (len, len; row stride lda) ← softmax_causal(scale·Q·Kᵀ) (zero above the diagonal),
/// y (len, hd; row stride ldy) = att·V. Uses the causal structure (about half the products of a full GEMM).
/// `scratch`: hd·len floats.
void bfk_attention_forward(float *y, long ldy, float *att, long lda, const float *q, const float *k, const float *v,
                           long ld, long len, long hd, float scale, float *scratch);
/// Its backward, accumulating: dq, dk, dv (len, hd; row stride ld) += … ← dy (len, hd; row stride ldy), q, k, v and
/// att from the forward. `scratch`: hd·len + len·(lda + 16) floats (dS's rows are padded by 16 floats).
void bfk_attention_backward(float *dq, float *dk, float *dv, long ld, const float *dy, long ldy, const float *q,
                            const float *k, const float *v, const float *att, long lda, long len, long hd, float scale,
                            float *scratch);
/// bfk_attention_backward writing dq, dk, dv (rows < len) instead of adding to them: spares the caller zeroing dqkv.
void bfk_attention_backward_set(float *dq, float *dk, float *dv, long ld, const float *dy, long ldy, const float *q,
                                const float *k, const float *v, const float *att, long lda, long len, long hd,
                                float scale, float *scratch);

/// bfk_attention_forward over the (sequence, head) pairs [pair0, pair1) of a batch: out (B, T, C) rows < L_b of each
/// pair's head columns, att (B, H, T, T), from qkv (B, T, 3C) laid out [q | k | v] per row; lengths (B) in 1…T;
/// scale 1/√(C/heads). Each pair is computed exactly as bfk_attention_forward would; the next pair's rows are
/// prefetched meanwhile. `scratch`: (C/heads)·T floats.
void bfk_attention_forward_pairs(float *out, float *att, const float *qkv, const long *lengths, long t, long c,
                                 long heads, long pair0, long pair1, float *scratch);
/// bfk_attention_backward (accumulate ≠ 0) or bfk_attention_backward_set over the pairs [pair0, pair1): dqkv (B, T, 3C)
/// ← dout (B, T, C), qkv, att as above, each pair exactly as the one-pair call. `scratch`: as bfk_attention_backward.
void bfk_attention_backward_pairs(float *dqkv, const float *dout, const float *qkv, const float *att,
                                  const long *lengths, long t, long c, long heads, long pair0, long pair1,
                                  float *scratch, int accumulate);

/// Σ x[i]² in double over n floats (8 fixed double lanes, then a fixed tree and a sequential tail).
double bfk_sum_squares(const float *x, long n);

/// The shared-memory parameter ring's fused pass over the first words/16·16 32-bit words of src: copies them to dst
/// (when not NULL; non-temporal stores on x86-64 when non_temporal and dst is 16-byte aligned), adds them to 16 Fletcher lanes a, b
/// (lane k: words i ≡ k mod 16, a += w, b += a, mod 2³²) and ORs bound_bits − (w & 0x7FFFFFFF) into over (negative
/// when a float is above the bound or not finite). a, b, over: 16 lanes each, read and updated.
void bfk_copy_fletcher16(void *dst, const void *src, long words, int32_t bound_bits, uint32_t a[16], uint32_t b[16],
                         int32_t over[16], int non_temporal);

/// The BoN-rollout decoder's copies (little-endian bytes at any alignment): dst (n) = the float32s at src; returns 1
/// iff every one is in [lo, hi] (so finite, for finite lo and hi), else 0.
int bfk_copy_f32_in_range(float *dst, const void *src, long n, float lo, float hi);
/// dst (n) = the uint32 ids at src widened to int64; returns the OR of the ids (no id is above it).
uint32_t bfk_widen_u32_ids(int64_t *dst, const void *src, long n);

// MARK: own SGEMM (gemm.c)

/// Row-major C (m×n) = alpha · op(A) · op(B) + beta · C with op(A) m×k (A stored k×m, leading dimension lda, when
/// transA), op(B) k×n (B stored n×k when transB), as cblas_sgemm(CblasRowMajor, …). beta = 0 writes C without
/// reading it; alpha = 0 or k = 0 only scales C. Each C element is summed in the same order wherever it lies (k cut
/// into bfk_sgemm_kblocks(k) blocks at i·k / nb, products in k order within a block), so splitting C by rows or
/// columns over threads gives the same bits. Returns 1 when done, 0 when not handled (the CPU, or the level set by
/// bfk_set_isa, is below AVX-512, or aarch64; or out of memory for the packing buffer): the caller then uses OpenBLAS.
int bfk_sgemm(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda, const float *b,
              long ldb, float beta, float *c, long ldc);
/// What bfk_sgemm_ex does to C besides the product, tile by tile while the tile is in cache (instead of separate
/// passes over C in memory). Pointers are NULL when unused; matrices are row-major m × n with their own leading
/// dimension, addressed like C (element [i][j] of the whole product).
typedef struct bfk_gemm_epilogue {
    /// First k-block: when bias (n) or addend (m × n) is set, the block sum is added to Y = addend[i][j] + bias[j]
    /// (either alone when the other is NULL) instead of beta·C; C's old content is not read and beta is ignored.
    /// Bit-identical to writing Y into C first and multiplying with beta = 1.
    const float *bias;
    const float *addend;
    long ld_addend;
    /// Last k-block, after the product: gelu_out[i][j] = GELU(C[i][j]) and, with gelu_local_in_c,
    /// C[i][j] = GELU'(C[i][j]) (bfk_gelu_forward / bfk_gelu_forward_local, bit-identical). gelu_out may not overlap C.
    float *gelu_out;
    long ld_gelu_out;
    int gelu_local_in_c;
    /// a_sums (m) += Σ_k op(A)[i][k], each added to a_sums[i] one k at a time in k order (Ops.linearBackward's dbias
    /// loop over dout's rows): computed while op(A) = Aᵀ is packed (lda > 512), else in a separate loop over A.
    /// Alpha and beta do not apply. Not with op(A) = A (returns 0: not handled).
    float *a_sums;
} bfk_gemm_epilogue;
/// bfk_sgemm with an epilogue (NULL: bfk_sgemm). Same summation order, same return values; every result equals the
/// unfused sequence's bit for bit (at the AVX-512 level, where it is handled).
int bfk_sgemm_ex(int transA, int transB, long m, long n, long k, float alpha, const float *a, long lda,
                 const float *b, long ldb, float beta, float *c, long ldc, const bfk_gemm_epilogue *ep);
/// Whether bfk_sgemm handles products at the current instruction-set level (AVX-512).
int bfk_sgemm_available(void);
/// BonfireMath's switch between this kernel and OpenBLAS (BLAS.ownKernelEnabled; 1 = use it where it is faster, the
/// default). bfk_sgemm itself does not look at it.
int bfk_sgemm_enabled(void);
void bfk_sgemm_set_enabled(int on);
/// Blocks bfk_sgemm cuts k into (⌈k / 256⌉; 0 for k ≤ 0).
long bfk_sgemm_kblocks(long k);
