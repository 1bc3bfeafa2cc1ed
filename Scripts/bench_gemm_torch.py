#!/usr/bin/env python3
"""The linear-layer products of one train step in PyTorch, for `bonfire-bench model --gemm` (same shapes, same order).

For each linear layer (IC -> OC) of a GPT block at N = 32 * T rows: forward x @ W.T, dX = dY @ W, dW += dY.T @ x.
CPU time of this thread (time.thread_time), min of 7, and GFLOP/s = 2*N*IC*OC / time.
Usage: OMP_NUM_THREADS=1 python3 Scripts/bench_gemm_torch.py [--threads 1] [--configs tiny,small]
"""
import argparse, time
import torch

CONFIGS = {"tiny": (64, 128, 4), "small": (128, 256, 6)}   # contextLength, dim, layers (as bench_pytorch.py)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--configs", default="tiny,small")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    clock = time.thread_time if a.threads == 1 else time.process_time
    for name in a.configs.split(","):
        T, C, L = CONFIGS[name]
        N = 32 * T
        print("%s: linear-layer matmuls at N=%d, torch %s threads %d (CPU time, min of 7)"
              % (name, N, torch.__version__, torch.get_num_threads()))
        total = 0.0
        for label, ic, oc in [("c_attn", C, 3 * C), ("attn.c_proj", C, C), ("mlp.c_fc", C, 4 * C), ("mlp.c_proj", 4 * C, C)]:
            x, w, dy, dw = torch.randn(N, ic), torch.randn(oc, ic), torch.randn(N, oc), torch.zeros(oc, ic)
            for mode, f in [("fwd x·Wᵀ (NT)", lambda: x @ w.t()), ("dX = dY·W (NN)", lambda: dy @ w),
                            ("dW += dYᵀ·x (TN)", lambda: dw.addmm_(dy.t(), x))]:
                best = float("inf")
                for _ in range(7):
                    t0 = clock(); f(); best = min(best, clock() - t0)
                total += best
                print("  %-12s IC %5d OC %5d  %-18s %8.3f ms  %6.1f GFLOP/s"
                      % (label, ic, oc, mode, best * 1e3, 2 * N * ic * oc / best * 1e-9))
        print("  one layer's linear products: %.2f ms CPU; x %d layers = %.1f ms" % (total * 1e3, L, total * 1e3 * L))


if __name__ == "__main__":
    main()
