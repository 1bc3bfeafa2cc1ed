#!/usr/bin/env bash
# End-to-end benchmark of the runtime on this machine: `bonfire local` (coordinator, learner and K actors as separate
# processes over tcp://127.0.0.1), math task, default tiny model, BoN-RL-S.
#
# 1. Throughput (no SFT warm-up: throughput does not depend on it), for each K in --actors: samples/s the actors
#    produced (mean of the coordinator's period lines), the learner's updates/s (its best period), the share dropped as
#    stale, and the learner's idle fraction: the share of the training window in which the learner's main thread was
#    neither running nor waiting for a core (/proc/PID/schedstat: on-CPU ns + run-queue ns; the rest is time blocked
#    in zmq_poll waiting for rollouts or sending). OpenBLAS runs on that thread (OPENBLAS_NUM_THREADS=1). "skipped":
#    updates not applied because they were not finite. Without the warm-up almost every reward is 0, so RL-S updates
#    carry no signal and are cheap: part 1's idle fraction is not a real run's; part 2's (after the warm-up) is.
#    Both parts also print each role's CPU ms per update and the idle floor they imply: with C cores, the learner's
#    main thread can be busy at most C · (its CPU per update) / (all roles' CPU per update) of the time.
# 2. Schedules, in the same run: `learner.schedule=sync` and `async` with K = --schedule-actors, the same seed and the
#    same SFT warm-up, evaluated every --eval-every versions; prints updates/s, pass@1 per evaluated version and the
#    wall time from the first RL update to the first version whose pass@1 ≥ --target, and the speed-up async/sync.
#    `async` is the default: after its share of one version an actor waits up to actors.versionWaitMs for the next
#    one, so with a fast learner it trains on the same data as `sync`. A third run, `async` with actors.versionWaitMs=1,
#    lets the actors sample ahead (bounded by learner.maxPolicyLag; older rollouts are dropped as stale). A fourth,
#    sync with liveness.heartbeatIntervalMs=20, shows whether the synchronous schedule waits about one heartbeat
#    interval per version (its updates/s would jump).
#
#   Scripts/bench-e2e.sh [--steps N] [--actors "1 2 4"] [--only throughput|schedules]
#                        [--schedule-steps N] [--schedule-actors K] [--eval-every E] [--target P] [--seed S]
#                        [--warmup N]   (SFT warm-up steps of the schedule runs; default: algorithm.sftWarmupSteps)
set -euo pipefail
cd "$(dirname "$0")/.."
steps=1500 actors="1 2 4" only="" sched_steps=1000 sched_actors=2 eval_every=100 target=0.20 seed=1 warmup=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --actors) actors=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --schedule-steps) sched_steps=$2; shift 2 ;;
    --schedule-actors) sched_actors=$2; shift 2 ;;
    --eval-every) eval_every=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    [0-9]*) steps=$1; shift ;;  # the old form: Scripts/bench-e2e.sh 1500
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
swift build -c release --product bonfire >/dev/null
bin=$PWD/.build/release/bonfire
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
echo "cores: $(nproc), load average: $(cut -d' ' -f1-3 /proc/loadavg), OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS"

# run NAME K STEPS [--set ...]: one `bonfire local` run into a fresh directory, sampling the learner's schedstat.
# Prints the directory.
run() {
  local name=$1 k=$2 n=$3; shift 3
  local dir; dir=$(mktemp -d /tmp/bonfire-bench-e2e.XXXXXX)
  "$bin" local --actors "$k" --set run.dir="$dir/run" --set learner.maxSteps="$n" --set logging.periodSeconds=1 \
    --set learner.checkpointEvery=0 --set run.seed="$seed" "$@" >"$dir/local.log" 2>&1 &
  local local_pid=$!
  # The learner is the child started as `bonfire learner --config <dir>/run/config.json`.
  # Every role's CPU time (utime + stime of all its threads, /proc/PID/stat) goes to $dir/cpu, for the CPU budget.
  local tick; tick=$(getconf CLK_TCK)
  ( while kill -0 "$local_pid" 2>/dev/null; do
      now=$(date +%s.%N)
      pid=$(pgrep -f -- "learner --config $dir/run/" | head -1 || true)
      if [[ -n "$pid" && -r /proc/$pid/schedstat ]]; then
        echo "$now $(cat /proc/$pid/schedstat 2>/dev/null)" >>"$dir/schedstat"
      fi
      for p in $(pgrep -P "$local_pid" || true); do
        role=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | awk '{print $2}') || continue
        ticks=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || continue
        [[ -n "$role" && -n "$ticks" ]] && echo "$now $p $role $ticks $tick" >>"$dir/cpu"
      done
      sleep 0.5
    done ) &
  local sampler=$!
  if ! wait "$local_pid"; then echo "$name: run failed; see $dir/local.log" >&2; wait "$sampler" || true; exit 1; fi
  wait "$sampler" || true
  echo "$dir"
}

analyse() {  # analyse DIR LABEL
  python3 - "$1" "$2" "$target" <<'PY'
import json, sys, os
d, label, target = sys.argv[1], sys.argv[2], float(sys.argv[3])
rows = [json.loads(l) for l in open(os.path.join(d, "run", "metrics.jsonl")) if l.strip()]
coord = [r for r in rows if r["role"] == "coordinator" and r.get("throughput/samples_per_s", 0) > 0]
learner = [r for r in rows if r["role"] == "learner" and r.get("learner/step", 0) > 0]
sps = sum(r["throughput/samples_per_s"] for r in coord) / max(1, len(coord))
ups = max((r.get("throughput/steps_per_s", 0) for r in learner), default=0)
last = learner[-1] if learner else {}
acc, drop = last.get("staleness/accepted", 0), last.get("staleness/dropped", 0)
# RL window: first to last learner period line.
t0 = learner[0]["time"] if learner else 0
t1 = learner[-1]["time"] if learner else 0
mean_ups = (last.get("learner/step", 0) - learner[0].get("learner/step", 0)) / max(1e-9, t1 - t0) if learner else 0
idle, main_cpu = float("nan"), float("nan")
path = os.path.join(d, "schedstat")
if os.path.exists(path):
    s = []
    for l in open(path):
        p = l.split()
        if len(p) >= 3: s.append((float(p[0]), int(p[1]), int(p[2])))
    s = [x for x in s if t0 <= x[0] <= t1]
    if len(s) >= 2 and s[-1][0] > s[0][0]:
        busy = (s[-1][1] - s[0][1] + s[-1][2] - s[0][2]) / 1e9
        idle = 1 - busy / (s[-1][0] - s[0][0])
        main_cpu = (s[-1][1] - s[0][1]) / 1e9
# The CPU budget of the RL window: CPU seconds per update of the learner (all its threads: the ZeroMQ I/O thread
# sends the parameters), of all actors together, and of the coordinator. With `cores` cores and nothing else running,
# updates/s ≤ cores / (sum of the three), so the learner's main thread is busy at most cores · main / sum of its
# window: idle_floor = 1 − that. A learner idle near the floor means the machine is saturated (the sampling side, not
# the pipeline, bounds it); far above it, something waits.
per_update, idle_floor = {}, float("nan")
path = os.path.join(d, "cpu")
steps = (last.get("learner/step", 0) - learner[0].get("learner/step", 0)) if learner else 0
if os.path.exists(path) and steps > 0:
    series = {}
    for l in open(path):
        p = l.split()
        if len(p) == 5 and t0 <= float(p[0]) <= t1: series.setdefault((p[1], p[2]), []).append(int(p[3]) / int(p[4]))
    for (pid, role), v in series.items():
        per_update[role] = per_update.get(role, 0) + (v[-1] - v[0]) / steps
    total = sum(per_update.values())
    if total > 0 and main_cpu == main_cpu:
        idle_floor = max(0.0, 1 - os.cpu_count() * (main_cpu / steps) / total)
# Evaluations (coordinator rows with eval/pass@1): version → pass@1; a version's time = first learner row at it.
evals = sorted({r["version"]: r["eval/pass@1"] for r in rows if "eval/pass@1" in r}.items())
vtime = {}
for r in rows:
    if r["role"] == "learner" and r["version"] not in vtime: vtime[r["version"]] = r["time"]
reach = next((v for v, p in evals if p >= target and v > 0), None)
def when(v):
    ts = [t for vv, t in vtime.items() if vv >= v]
    return min(ts) - t0 if ts else float("nan")
tt = when(reach) if reach is not None else float("nan")
curve = " ".join(f"v{v}:{p:.3f}" for v, p in evals)
skipped = 100 * last.get("learner/skipped_updates", 0) / max(1, last.get("learner/step", 0))
print(json.dumps({"label": label, "sps": sps, "ups": ups, "mean_ups": mean_ups, "stale": 100 * drop / max(1, acc + drop),
                  "skipped": skipped,
                  "idle": 100 * idle, "idle_floor": 100 * idle_floor,
                  "cpu_ms": {k: 1000 * v for k, v in sorted(per_update.items())}, "reach_version": reach, "time_to_target": tt, "curve": curve}))
PY
}

if [[ "$only" != schedules ]]; then
  echo
  echo "Throughput: learner + K actors, ${steps} learner steps per run, no SFT warm-up, no evaluation"
  printf "| %-6s | %10s | %10s | %12s | %7s | %13s | %11s | %8s | %s |\n" actors "samples/s" "updates/s" "updates/s avg" "stale" "learner idle" "idle floor" "skipped" "CPU ms per update"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
  for k in $actors; do
    dir=$(run "K=$k" "$k" "$steps" --set algorithm.sftWarmupSteps=0 --set eval.everyVersions=0)
    analyse "$dir" "$k" | python3 <(cat <<'PY'
import json, sys
r = json.loads(sys.stdin.read())
cpu = " ".join("%s %.2f" % kv for kv in r["cpu_ms"].items())
print("| %-6s | %10.0f | %10.1f | %12.1f | %6.1f%% | %12.1f%% | %10.1f%% | %7.1f%% | %s |" % (r["label"], r["sps"], r["ups"], r["mean_ups"], r["stale"], r["idle"], r["idle_floor"], r["skipped"], cpu))
PY
)
    rm -rf "$dir"
  done
fi

if [[ "$only" != throughput ]]; then
  echo
  echo "Schedules: K=$sched_actors actors, $sched_steps RL steps after the default SFT warm-up, seed $seed, eval every" \
       "$eval_every versions, target pass@1 ≥ $target (time from the first RL update to the learner reaching the first" \
       "version evaluated at or above it)"
  results=()
  for spec in "async|--set learner.schedule=async" "sync|--set learner.schedule=sync" \
              "async, actors never wait|--set learner.schedule=async --set actors.versionWaitMs=1" \
              "sync, heartbeat 20 ms|--set learner.schedule=sync --set liveness.heartbeatIntervalMs=20 --set liveness.livenessCount=250"; do
    label=${spec%%|*}; sets=${spec#*|}
    # shellcheck disable=SC2086
    dir=$(run "$label" "$sched_actors" "$sched_steps" --set eval.everyVersions="$eval_every" \
          ${warmup:+--set algorithm.sftWarmupSteps=$warmup} $sets)
    results+=("$(analyse "$dir" "$label")")
    rm -rf "$dir"
  done
  printf '%s\n' "${results[@]}" | python3 <(cat <<'PY'
import json, math, sys
rs = [json.loads(l) for l in sys.stdin if l.strip()]
print("| schedule | updates/s avg | samples/s | stale | learner idle | idle floor | skipped updates | first version ≥ target | time to target s | CPU ms per update | pass@1 by version |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
for r in rs:
    v = r["reach_version"] if r["reach_version"] is not None else "not reached"
    cpu = " ".join("%s %.2f" % kv for kv in r["cpu_ms"].items())
    print("| %s | %.1f | %.0f | %.1f%% | %.1f%% | %.1f%% | %.1f%% | %s | %.1f | %s | %s |" % (r["label"], r["mean_ups"], r["sps"], r["stale"], r["idle"], r["idle_floor"], r["skipped"], v,
                                                          r["time_to_target"], cpu, r["curve"]))
sync = rs[1]
for a in [rs[0], rs[2]]:
    if not math.isnan(a["time_to_target"]) and not math.isnan(sync["time_to_target"]) and a["time_to_target"] > 0:
        t = "%.2fx" % (sync["time_to_target"] / a["time_to_target"])
    else:
        t = "not measurable (a run did not reach the target: raise --schedule-steps or lower --target)"
    print("%s vs sync: time to pass@1 >= target %s, updates/s %.2fx" % (a["label"], t, a["mean_ups"] / max(1e-9, sync["mean_ups"])))
PY
)
fi
