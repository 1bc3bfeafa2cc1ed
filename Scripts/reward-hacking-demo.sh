#!/usr/bin/env bash
# Reward hacking on math with a learned verifier, and the coordinator's alarm catching it (docs/monitoring.md).
#
#   bash Scripts/reward-hacking-demo.sh [out-dir=runs/reward-hacking]
#   WINDOW=8 bash Scripts/reward-hacking-demo.sh      # the alarm at its default window (silent on this run)
#
# 1. `bonfire train-verifier`: a learned verifier (scalar-head transformer) on math references + corrupted copies.
# 2. `bonfire train --algo rl-v` with N′ = 1 (algorithm.trainN=1), rewarded by that verifier's score r, from a fresh
#    model with the default SFT warm-up; every other setting at its default. The synchronous schedule makes the run
#    bit-reproducible for a seed, so WINDOW changes only what the alarm sees, not the training. Two liveness settings
#    are raised for busy machines (they change no result): the actor waits up to 5 minutes for the learner's first
#    parameters (liveness.peerGiveUpMs; the 1500-step warm-up took 2 minutes on a loaded 2-core machine), and the
#    liveness window is 10 s (liveness.livenessCount=20), so a slow final evaluation does not get the actor declared
#    dead and left waiting after the run finished.
# 3. Prints the alarm lines of the coordinator log, the mean verifier score r and true reward R per block of
#    versions (from metrics.jsonl), and `bonfire status` of the finished run.
# Environment: SEED (2), STEPS (300), WINDOW (monitoring.hackingWindow, 64), BONFIRE (.build/release/bonfire).
# About 2 minutes on one core.
set -euo pipefail
out=${1:-runs/reward-hacking}
seed=${SEED:-2}; steps=${STEPS:-300}; window=${WINDOW:-64}
bonfire=${BONFIRE:-.build/release/bonfire}
[ -x "$bonfire" ] || { echo "reward-hacking-demo: $bonfire not found; build it: swift build -c release --product bonfire" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
mkdir -p "$out"
rm -rf "$out/run"

echo "== 1. learned verifier (references + corrupted copies, labelled by R)"
if [ ! -f "$out/verifier.safetensors" ]; then
  "$bonfire" train-verifier --task math --policy none --out "$out/verifier.safetensors" | tee "$out/train-verifier.log"
else
  echo "using $out/verifier.safetensors (delete it to retrain)"
fi

echo "== 2. RL-V, N′ = 1, rewarded by the learned verifier (seed $seed, $steps steps, monitoring.hackingWindow=$window)"
"$bonfire" train --algo rl-v --task math --verifier learned --verifier-path "$out/verifier.safetensors" \
  --steps "$steps" --seed "$seed" --out "$out/run" \
  --set algorithm.trainN=1 --set monitoring.hackingWindow="$window" \
  --set liveness.peerGiveUpMs=300000 --set liveness.livenessCount=20 > "$out/train.log"

echo "== 3. the coordinator's alarm"
grep -E "reward hacking suspected|reward-hacking alarm cleared" "$out/train.log" \
  || echo "(no alarm in $out/train.log with monitoring.hackingWindow=$window)"

echo "== r (verifier score) and R (true reward) of the learner's batches, mean per 32 versions"
awk -v block=32 '
  function num(key,   m) { if (match($0, "\"" key "\":[-0-9.e]+")) { m = substr($0, RSTART, RLENGTH); sub(/.*:/, "", m); return m + 0 } return "" }
  /"role":"learner"/ && /"reward\/r_mean"/ {
    v = num("version"); b = int((v - 1) / block)
    r[b] += num("reward\\/r_mean"); R[b] += num("reward\\/R_mean"); pr[b] += num("reward\\/r_pick_mean"); pR[b] += num("reward\\/R_pick_mean"); n[b]++
    if (b > last) last = b
  }
  END {
    printf "%-12s %8s %8s %10s %10s\n", "versions", "r", "R", "r (picks)", "R (picks)"
    for (b = 0; b <= last; b++) if (n[b] > 0)
      printf "%4d-%-7d %8.3f %8.3f %10.3f %10.3f\n", b * block + 1, b * block + n[b], r[b] / n[b], R[b] / n[b], pr[b] / n[b], pR[b] / n[b]
  }' "$out/run/metrics.jsonl"

echo "== evaluations (pass@N and Bo-N with the learned verifier, 64 test prompts)"
grep -A6 -E "^eval v[0-9]+" "$out/train.log" | grep -vE "^--$" || true

echo "== bonfire status $out/run"
"$bonfire" status "$out/run"
