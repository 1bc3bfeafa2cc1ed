#!/usr/bin/env bash
# Training-attention kernels, old against new, outside Swift: builds Scripts/attention_harness.c against two copies
# of Sources/CBonfireKernels/kernels.c — OLD_REV's (default: main) and the working tree's — with SwiftPM's release
# flags, checks that they agree bit for bit at every instruction-set level, and times one small layer alternately.
# Usage: OLD_REV=main REPS=15 bash Scripts/bench-attention.sh      (needs clang, ld, objcopy; x86-64 Linux)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
old_rev=${OLD_REV:-main}
reps=${REPS:-15}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Each copy sits in its own folder beside the private headers it includes (gelu_inline.h, since the GEMM epilogues).
mkdir -p "$work/old" "$work/new"
git -C "$root" show "$old_rev:Sources/CBonfireKernels/kernels.c" > "$work/old/kernels.c"
git -C "$root" show "$old_rev:Sources/CBonfireKernels/gelu_inline.h" > "$work/old/gelu_inline.h" 2>/dev/null || true
cp "$root/Sources/CBonfireKernels/kernels.c" "$work/new/kernels.c"
cp "$root/Sources/CBonfireKernels/"*.h "$work/new/"
cat > "$work/wrap.c" <<'WRAP'
#include KFILE
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
void CAT(PFX, _set_isa)(int i) { bfk_set_isa(i); }
int CAT(PFX, _isa)(void) { return bfk_isa(); }
void CAT(PFX, _fwd)(float *y, long ldy, float *att, long lda, const float *q, const float *k, const float *v, long ld,
                    long len, long hd, float scale, float *scratch) {
    bfk_attention_forward(y, ldy, att, lda, q, k, v, ld, len, hd, scale, scratch);
}
void CAT(PFX, _bwd)(int acc, float *dq, float *dk, float *dv, long ld, const float *dy, long ldy, const float *q,
                    const float *k, const float *v, const float *att, long lda, long len, long hd, float scale,
                    float *scratch) {
    if (acc) bfk_attention_backward(dq, dk, dv, ld, dy, ldy, q, k, v, att, lda, len, hd, scale, scratch);
    else bfk_attention_backward_set(dq, dk, dv, ld, dy, ldy, q, k, v, att, lda, len, hd, scale, scratch);
}
// One layer: through the pairs entry points where the copy has them (they prefetch the next pair), else pair by pair.
void CAT(PFX, _layer_fwd)(float *out, float *att, const float *qkv, const long *lens, long B, long T, long C, long H,
                          float *scr) {
#ifdef HAVE_PAIRS
    bfk_attention_forward_pairs(out, att, qkv, lens, T, C, H, 0, B * H, scr);
#else
    long hd = C / H, c3 = 3 * C;
    for (long p = 0; p < B * H; p++) {
        long b = p / H, h = p % H;
        const float *base = qkv + b * T * c3 + h * hd;
        bfk_attention_forward(out + b * T * C + h * hd, C, att + p * T * T, T, base, base + C, base + 2 * C, c3, lens[b],
                              hd, 1.0f / sqrtf((float)hd), scr);
    }
#endif
}
void CAT(PFX, _layer_bwd)(int acc, float *dqkv, const float *dout, const float *qkv, const float *att, const long *lens,
                          long B, long T, long C, long H, float *scr) {
#ifdef HAVE_PAIRS
    bfk_attention_backward_pairs(dqkv, dout, qkv, att, lens, T, C, H, 0, B * H, scr, acc);
#else
    long hd = C / H, c3 = 3 * C;
    for (long p = 0; p < B * H; p++) {
        long b = p / H, h = p % H;
        const float *base = qkv + b * T * c3 + h * hd;
        float *db = dqkv + b * T * c3 + h * hd;
        CAT(PFX, _bwd)(acc, db, db + C, db + 2 * C, c3, dout + b * T * C + h * hd, C, base, base + C, base + 2 * C,
                       att + p * T * T, T, lens[b], hd, 1.0f / sqrtf((float)hd), scr);
    }
#endif
}
WRAP
for v in old new; do
    pairs=$(grep -q bfk_attention_forward_pairs "$work/$v/kernels.c" && echo -DHAVE_PAIRS || true)
    # SwiftPM's flags for the C target (release): -O2 -fPIC -fno-omit-frame-pointer; each copy's symbols kept local
    clang -O2 -fPIC -fno-omit-frame-pointer -Wno-psabi -I "$root/Sources/CBonfireKernels/include" \
        -DKFILE="\"$work/$v/kernels.c\"" -DPFX=$v $pairs -c "$work/wrap.c" -o "$work/w_$v.o"
    ld -r "$work/w_$v.o" -o "$work/r_$v.o"
    objcopy $(for s in set_isa isa fwd bwd layer_fwd layer_bwd; do printf -- '--keep-global-symbol=%s_%s ' $v $s; done) "$work/r_$v.o" "$work/k_$v.o"
done
clang -O2 "$root/Scripts/attention_harness.c" "$work/k_old.o" "$work/k_new.o" -lm -lpthread -o "$work/harness"
echo "old = $old_rev, new = working tree; load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$work/harness" "$reps" | grep -v '^check'
