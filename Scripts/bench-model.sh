#!/usr/bin/env bash
# Model speed: Bonfire (`bonfire-bench model`) vs PyTorch CPU (Scripts/bench_pytorch.py), same configs, same machine,
# same run, at 1 and 2 threads. Prints both and the Bonfire/PyTorch speed ratios (> 1 means Bonfire is faster).
# The OpenBLAS kernel comes from the environment (OPENBLAS_CORETYPE); the Bonfire output names it.
# Usage: Scripts/bench-model.sh [extra bonfire-bench model options, e.g. --configs tiny]
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
for t in 1 2; do
  echo "== threads $t"
  OPENBLAS_NUM_THREADS=$t "$BIN" model --threads "$t" "$@" | tee -a "$OUT"
  OMP_NUM_THREADS=$t python3 Scripts/bench_pytorch.py --threads "$t" | tee -a "$OUT"
done
echo
python3 - "$OUT" <<'PY'
import sys, re
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT"):
        kv = dict(x.split("=", 1) for x in line.split()[1:])
        rows[(kv["impl"], kv["config"], kv["threads"])] = kv
print("| config | threads | Bonfire train ms | PyTorch train ms | train ratio | Bonfire sample tok/s | PyTorch sample tok/s | sample ratio |")
print("|---|---|---|---|---|---|---|---|")
for (impl, cfg, th), b in sorted(rows.items()):
    if impl != "bonfire" or ("pytorch", cfg, th) not in rows:
        continue
    p = rows[("pytorch", cfg, th)]
    tr = float(p["train_ms"]) / float(b["train_ms"])
    sr = float(b["sample_tok_s"]) / float(p["sample_tok_s"])
    print(f"| {cfg} | {th} | {float(b['train_ms']):.1f} | {float(p['train_ms']):.1f} | {tr:.2f} | "
          f"{float(b['sample_tok_s']):.0f} | {float(p['sample_tok_s']):.0f} | {sr:.2f} |")
PY
