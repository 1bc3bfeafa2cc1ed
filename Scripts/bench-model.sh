#!/usr/bin/env bash
# Model speed: Bonfire (`bonfire-bench model`) vs PyTorch CPU (Scripts/bench_pytorch.py), same configs, same machine,
# same run, at 1 and 2 threads. Prints both and the Bonfire/PyTorch speed ratios (> 1 means Bonfire is faster).
# The OpenBLAS kernel comes from the environment (OPENBLAS_CORETYPE); the Bonfire output names it. At t threads Bonfire
# runs its own pool of t threads (OpenBLAS single-threaded inside it) and PyTorch its OpenMP pool of t threads.
# ROUNDS=n repeats each Bonfire/PyTorch pair n times, alternating, and keeps each side's best (lowest train ms, highest
# tokens/s): on a machine shared with other jobs, the best of a few alternating rounds is the fairest comparison.
# Usage: [ROUNDS=3] Scripts/bench-model.sh [extra bonfire-bench model options, e.g. --configs tiny]
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${SCRATCH:-.build}
if [ -n "${BONFIRE_BENCH:-}" ]; then BIN=$BONFIRE_BENCH   # a prebuilt binary that has the `model` subcommand
else
  swift build -c release --scratch-path "$SCRATCH" --product bonfire-bench >&2
  BIN="$SCRATCH/release/bonfire-bench"
fi
python3 -c "import torch" 2>/dev/null || { echo "PyTorch missing: pip install torch (CPU) to compare" >&2; exit 1; }
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
echo "load: $(uptime)"
for t in 1 2; do
  for r in $(seq 1 "${ROUNDS:-1}"); do
    echo "== threads $t, round $r"
    OPENBLAS_NUM_THREADS=$t "$BIN" model --threads "$t" "$@" | tee -a "$OUT"
    OMP_NUM_THREADS=$t python3 Scripts/bench_pytorch.py --threads "$t" | tee -a "$OUT"
  done
done
echo "load: $(uptime)"
echo
python3 - "$OUT" <<'PY'
import sys, re
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT"):
        kv = dict(x.split("=", 1) for x in line.split()[1:])
        key = (kv["impl"], kv["config"], kv["threads"])
        if key in rows:   # best of the rounds
            old = rows[key]
            kv["train_ms"] = str(min(float(old["train_ms"]), float(kv["train_ms"])))
            kv["sample_tok_s"] = str(max(float(old["sample_tok_s"]), float(kv["sample_tok_s"])))
            if "matmul_ms" in old:
                kv["matmul_ms"] = str(min(float(old["matmul_ms"]), float(kv["matmul_ms"])))
        rows[key] = kv
print("| config | threads | Bonfire train ms | matmul-only ms | step / matmul | PyTorch train ms | train ratio | Bonfire sample tok/s | PyTorch sample tok/s | sample ratio |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (impl, cfg, th), b in sorted(rows.items()):
    if impl != "bonfire" or ("pytorch", cfg, th) not in rows:
        continue
    p = rows[("pytorch", cfg, th)]
    tr = float(p["train_ms"]) / float(b["train_ms"])
    sr = float(b["sample_tok_s"]) / float(p["sample_tok_s"])
    mm = float(b.get("matmul_ms", 0))
    print(f"| {cfg} | {th} | {float(b['train_ms']):.1f} | {mm:.1f} | {float(b['train_ms']) / mm if mm else 0:.2f} | "
          f"{float(p['train_ms']):.1f} | {tr:.2f} | "
          f"{float(b['sample_tok_s']):.0f} | {float(p['sample_tok_s']):.0f} | {sr:.2f} |")
PY
