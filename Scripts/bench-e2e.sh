#!/usr/bin/env bash
# End-to-end throughput of the runtime: `bonfire local` with 1, 2 and 4 actors on this machine (math task, default
# tiny model, BoN-RL-S), no SFT warm-up (throughput does not depend on it). Prints, per actor count, the samples/s the
# actors produced and the learner's updates/s, read from the run's metrics.jsonl (the coordinator's period lines).
#   Scripts/bench-e2e.sh [steps]        (default 1500 learner steps per run)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-1500}
swift build -c release --product bonfire >/dev/null
bin=.build/release/bonfire
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
echo "cores: $(nproc), OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS, learner steps per run: $steps"
printf "%-7s %14s %14s %10s\n" actors "samples/s" "updates/s" "stale%"
for k in 1 2 4; do
  dir=$(mktemp -d /tmp/bonfire-bench-e2e.XXXXXX)
  "$bin" local --actors "$k" --set run.dir="$dir" --set learner.maxSteps="$steps" \
    --set algorithm.sftWarmupSteps=0 --set eval.everyVersions=0 --set logging.periodSeconds=1 \
    --set learner.checkpointEvery=0 >"$dir/local.log" 2>&1 || { echo "run with $k actors failed; see $dir/local.log" >&2; exit 1; }
  python3 - "$dir/metrics.jsonl" "$k" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
coord = [r for r in rows if r["role"] == "coordinator" and r.get("throughput/samples_per_s", 0) > 0]
learner = [r for r in rows if r["role"] == "learner"]
sps = sum(r["throughput/samples_per_s"] for r in coord) / max(1, len(coord))
ups = max((r.get("throughput/steps_per_s", 0) for r in learner), default=0)
last = learner[-1] if learner else {}
acc, drop = last.get("staleness/accepted", 0), last.get("staleness/dropped", 0)
print(f"{sys.argv[2]:<7} {sps:14.0f} {ups:14.1f} {100*drop/max(1,acc+drop):9.1f}%")
PY
  rm -rf "$dir"
done
