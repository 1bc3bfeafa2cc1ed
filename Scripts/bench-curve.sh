#!/usr/bin/env bash
# What ZeroMQ CURVE costs end to end (issue 12): `bonfire local` with 2 actors, security.mode none vs curve, run
# alternately (none, curve, none, curve) so machine drift hits both; prints samples/s, updates/s and wall time per
# run. Same job as Scripts/bench-e2e.sh (math, tiny model, BoN-RL-S, no warm-up, no eval, no checkpoints).
#   Scripts/bench-curve.sh [steps]        (default 1500 learner steps per run)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-1500}
swift build -c release --product bonfire >/dev/null
bin=.build/release/bonfire
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
keys=$(mktemp -d /tmp/bonfire-bench-keys.XXXXXX)
trap 'rm -rf "$keys"' EXIT
"$bin" keys --dir "$keys" >/dev/null
echo "cores: $(nproc), OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS, learner steps per run: $steps, load: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-6s %12s %12s %10s\n" mode "samples/s" "updates/s" "wall s"
for mode in none curve none curve; do
  dir=$(mktemp -d /tmp/bonfire-bench-curve.XXXXXX)
  sec=(--set security.mode="$mode")
  [ "$mode" = curve ] && sec+=(--set security.keysDir="$keys")
  start=$(date +%s.%N)
  "$bin" local --actors 2 --set run.dir="$dir" --set learner.maxSteps="$steps" "${sec[@]}" \
    --set algorithm.sftWarmupSteps=0 --set eval.everyVersions=0 --set logging.periodSeconds=1 \
    --set learner.checkpointEvery=0 >"$dir/local.log" 2>&1 || { echo "run ($mode) failed; see $dir/local.log" >&2; exit 1; }
  end=$(date +%s.%N)
  python3 - "$dir/metrics.jsonl" "$mode" "$start" "$end" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
coord = [r for r in rows if r["role"] == "coordinator" and r.get("throughput/samples_per_s", 0) > 0]
learner = [r for r in rows if r["role"] == "learner"]
sps = sum(r["throughput/samples_per_s"] for r in coord) / max(1, len(coord))
ups = max((r.get("throughput/steps_per_s", 0) for r in learner), default=0)
print(f"{sys.argv[2]:<6} {sps:12.0f} {ups:12.1f} {float(sys.argv[4]) - float(sys.argv[3]):10.1f}")
PY
  rm -rf "$dir"
done
