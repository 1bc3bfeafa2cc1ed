// GELU (tanh approximation) of one float, shared by kernels.c (bfk_gelu_forward, bfk_gelu_backward[_set]) and
// gemm.c (bfk_sgemm_ex's GELU epilogues): one definition, so a fused epilogue and the separate pass compute the same
// bits. Private to CBonfireKernels (not under include/).
//
// No FMA contraction in GELU: near saturation 1 ± tanh cancels, and a fused p·x²+c moves tanh off ±1 by an ulp,
// which the x³ factor of GELU' then magnifies (GELU'(1e4) would be 1.5e4, not 1). Unfused, it matches Ops' Swift.
#pragma once
#include <math.h>

#define GELU_INLINE static inline __attribute__((always_inline))

// tanh as a clamped rational polynomial (Eigen's float generic_fast_tanh, as Ops.fastTanh).
GELU_INLINE float fast_tanh(float x0) {
#pragma clang fp contract(off)
    const float lim = 7.90531110763549805f;
    float x = x0 < -lim ? -lim : (x0 > lim ? lim : x0);
    float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 - 8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return fabsf(x0) < 0.0004f ? x0 : p / q;
}
static const float kGeluScale = 0.7978845608028654f;

// GELU_tanh(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
GELU_INLINE float gelu_value(float x) {
#pragma clang fp contract(off)
    float u = kGeluScale * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1 + fast_tanh(u));
}

// GELU's local derivative at x, shared by the accumulating and the writing backward (and the dX epilogue).
GELU_INLINE float gelu_local(float x) {
#pragma clang fp contract(off)
    float u = kGeluScale * (x + 0.044715f * x * x * x);
    float th = fast_tanh(u);
    float sech2 = 1 - th * th;
    return 0.5f * (1 + th) + 0.5f * x * sech2 * kGeluScale * (1 + 3 * 0.044715f * x * x);
}

// Both at once, for the forward pass that keeps GELU' instead of GELU's input (the backward then only multiplies):
// *local = gelu_local(x), returns gelu_value(x). The same expressions as the two functions above, sharing u and
// tanh(u), so each result has the same bits as the function it stands for.
GELU_INLINE float gelu_value_local(float x, float *local) {
#pragma clang fp contract(off)
    float u = kGeluScale * (x + 0.044715f * x * x * x);
    float th = fast_tanh(u);
    float sech2 = 1 - th * th;
    *local = 0.5f * (1 + th) + 0.5f * x * sech2 * kGeluScale * (1 + 3 * 0.044715f * x * x);
    return 0.5f * x * (1 + th);
}
