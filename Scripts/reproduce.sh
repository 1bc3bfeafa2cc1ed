#!/usr/bin/env bash
# Reproduces the BoN-aware fine-tuning comparison of docs/results.md through the real runtime (issue 13):
#   1. one SFT start per task        bonfire train --algo sft (checkpoints on a schedule; validation curve via bonfire eval)
#   2. the learned verifier (math)   bonfire train-verifier --policy <math SFT start> --trunk policy --ranking-weight 1
#                                    (held-out pooled and within-prompt AUC, Bo-N vs pass@N in its log)
#   3. every method × task × seed    bonfire train --init <SFT start> …, then bonfire eval of its final checkpoint
#   4. the table and plots           python3 Scripts/results_table.py <out> (needs matplotlib: pip install matplotlib)
# Methods: sft bon-sft rl-v rl-s bon-rl-v bon-rl-s bon-rlb bon-rlb-p. Tasks: math (learned verifier) and code (unit
# tests, the oracle verifier). Equal budgets: every method runs the same updates × prompts per update; the RL methods
# sample 8 responses per prompt (N′ = 8 for the BoN-aware ones, an 8-sample RLOO group for N′ = 1), sft and bon-sft
# train on one demonstration per prompt (bon-sft also draws M = algorithm.bonSFTSamples = 32 policy samples for its
# BoN correction). Same seed = same train prompts, same SFT start, same evaluation prompts and sampling seed.
#
# Usage: Scripts/reproduce.sh [--quick] [--out DIR] [--seeds "1 2 3"] [--methods "sft rl-s …"] [--tasks "math code"]
#                             [--start-math CKPT] [--start-code CKPT] [--verifier-math CKPT] [--kl COEF] [--dry-run]
#   --quick      the small budget (fits ~15 minutes on 2 cores; docs/results.md's quick table); default: full budget.
#   --out DIR    results directory (default runs/reproduce-quick or runs/reproduce). Rerunning with the same DIR skips
#                every finished step (a step is finished when its DONE file exists) and never overwrites a result.
#   --start-*    use an existing SFT start checkpoint instead of training one (its path is recorded).
#   --kl COEF    k3 KL-to-start coefficient for the verifier-trained N′ = 1 methods rl-v / rl-s (default 0 = off).
#   --run-steps S / --run-lr LR   override the budget's updates / learning rate per run (e.g. a medium run:
#                --quick --run-steps 150 --run-lr 2e-4 --start-code <quick start>).
#   --eval-every K  also checkpoint every K updates and evaluate each intermediate checkpoint (test split, T = 1 only,
#                the same prompts and samples as the final evaluation) for the curves against training step
#                (pass@N, Bo-N, response diversity when bonfire eval reports it). Default: 0 (off) quick, 60 full.
#   --steps-eval  after the runs, evaluate again every checkpoint of every finished run (and the SFT start) at T = 1 into
#                <run>/eval-steps/vNNNNNN/ (the start: runs/<task>/start/s<seed>/eval-steps/v000000/), skipping those
#                already there — for curves against training step with a newer bonfire eval (e.g. one that reports
#                response diversity) without touching the finished results; results_table.py prefers these.
# Environment: BONFIRE (the bonfire executable; default .build/release/bonfire), REPRODUCE_MIN_FREE_MB (free space
# required before each step; default 200 quick / 2000 full).
set -uo pipefail

ALL_METHODS="sft bon-sft rl-v rl-s bon-rl-v bon-rl-s bon-rlb bon-rlb-p"
ALL_TASKS="math code"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

die() { printf 'reproduce.sh: error: %s\n' "$*" >&2; exit 2; }
say() { printf 'reproduce.sh: %s\n' "$*"; }

QUICK=0; OUT=""; SEEDS="1 2 3"; METHODS="$ALL_METHODS"; TASKS="$ALL_TASKS"; KL=0; DRY=0; STEPS_OVERRIDE=""; LR_OVERRIDE=""; EVAL_EVERY_OVERRIDE=""; STEPS_EVAL=0
START_math=""; START_code=""; VERIFIER_math=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --out) OUT="${2:?--out needs a directory}"; shift ;;
        --seeds) SEEDS="${2:?--seeds needs a list, e.g. --seeds \"1 2 3\"}"; shift ;;
        --methods) METHODS="${2:?--methods needs a list}"; shift ;;
        --tasks) TASKS="${2:?--tasks needs a list}"; shift ;;
        --start-math) START_math="${2:?--start-math needs a checkpoint}"; shift ;;
        --start-code) START_code="${2:?--start-code needs a checkpoint}"; shift ;;
        --verifier-math) VERIFIER_math="${2:?--verifier-math needs a checkpoint}"; shift ;;
        --kl) KL="${2:?--kl needs a number}"; shift ;;
        --run-steps) STEPS_OVERRIDE="${2:?--run-steps needs a count}"; shift ;;
        --run-lr) LR_OVERRIDE="${2:?--run-lr needs a number}"; shift ;;
        --eval-every) EVAL_EVERY_OVERRIDE="${2:?--eval-every needs a count (0 = off)}"; shift ;;
        --steps-eval) STEPS_EVAL=1 ;;
        --dry-run) DRY=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die "unknown argument '$1' (see Scripts/reproduce.sh --help)" ;;
    esac
    shift
done

# ---- Budgets ---------------------------------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
    OUT="${OUT:-runs/reproduce-quick}"; MIN_FREE_MB="${REPRODUCE_MIN_FREE_MB:-200}"
    SFT_STEPS=6000; SFT_EVERY=500; SFT_PROMPTS=16; SFT_LR=2e-3
    VER_PROMPTS=1200; VER_SAMPLES=8; VER_STEPS=1000; VER_HELD=200; VER_LR=3e-4
    RUN_STEPS=20; RUN_PROMPTS=8; RUN_LR=5e-4; EVAL_EVERY=0
    EVAL_PROMPTS=48; EVAL_SAMPLES=32; EVAL_TEMPS="0.5,1.0,1.5"; CURVE_PROMPTS=128
else
    OUT="${OUT:-runs/reproduce}"; MIN_FREE_MB="${REPRODUCE_MIN_FREE_MB:-2000}"
    SFT_STEPS=6000; SFT_EVERY=500; SFT_PROMPTS=16; SFT_LR=2e-3
    VER_PROMPTS=2000; VER_SAMPLES=8; VER_STEPS=1500; VER_HELD=200; VER_LR=3e-4
    RUN_STEPS=300; RUN_PROMPTS=8; RUN_LR=2e-4; EVAL_EVERY=60
    EVAL_PROMPTS=256; EVAL_SAMPLES=64; EVAL_TEMPS="0.25,0.5,0.75,1.0,1.25,1.5"; CURVE_PROMPTS=128
fi
case "$STEPS_OVERRIDE" in '') ;; *[!0-9]*|0) die "--run-steps '$STEPS_OVERRIDE' is not a positive integer" ;; *) RUN_STEPS=$STEPS_OVERRIDE ;; esac
case "$EVAL_EVERY_OVERRIDE" in '') ;; *[!0-9]*) die "--eval-every '$EVAL_EVERY_OVERRIDE' is not a non-negative integer (0 = off)" ;; *) EVAL_EVERY=$EVAL_EVERY_OVERRIDE ;; esac
case "$LR_OVERRIDE" in '') ;; *[!0-9.e-]*) die "--run-lr '$LR_OVERRIDE' is not a number (e.g. 2e-4)" ;; *) RUN_LR=$LR_OVERRIDE ;; esac
TRAIN_N=8; TASK_SEED=1234; EVAL_N="1,4,16,32"
# The synchronous schedule (bit-reproducible per seed). The 20 ms heartbeat worked around a runtime bug fixed since
# (in-process actors waited one heartbeat interval per version, d3d1895); it is kept so the recorded commands of the
# results in docs/results.md stay the commands that produced them (it changes no number of a synchronous run).
RUNTIME=(--schedule sync --set liveness.heartbeatIntervalMs=20 --set liveness.livenessCount=250)

# ---- Checks before any work (each says what to do) -------------------------------------------------------------
for m in $METHODS; do
    case " $ALL_METHODS " in *" $m "*) ;; *) die "unknown method '$m'; choose from: $ALL_METHODS (e.g. --methods \"sft bon-sft\")" ;; esac
done
for t in $TASKS; do
    case " $ALL_TASKS " in *" $t "*) ;; *) die "unknown task '$t'; choose from: $ALL_TASKS" ;; esac
done
for s in $SEEDS; do
    case "$s" in ''|*[!0-9]*) die "seed '$s' is not a non-negative integer (e.g. --seeds \"1 2 3\")" ;; esac
done
case "$KL" in ''|*[!0-9.e-]*) die "--kl '$KL' is not a number (e.g. --kl 0.05)" ;; esac
for t in math code; do
    v="START_$t"; ck="${!v}"
    if [ -n "$ck" ] && [ ! -f "$ck" ]; then
        die "--start-$t $ck does not exist; pass a policy checkpoint written by 'bonfire train' (…/checkpoints/v*.safetensors) or omit --start-$t to train the SFT start"
    fi
done
if [ -n "$VERIFIER_math" ] && [ ! -f "$VERIFIER_math" ]; then
    die "--verifier-math $VERIFIER_math does not exist; pass a checkpoint written by 'bonfire train-verifier' or omit it to train one"
fi
BONFIRE="${BONFIRE:-$ROOT/.build/release/bonfire}"
if [ "$DRY" = 0 ] && [ ! -x "$BONFIRE" ]; then
    die "no bonfire executable at $BONFIRE; build it with 'swift build -c release --product bonfire' (or set BONFIRE=path)"
fi
mkdir -p "$OUT" 2>/dev/null || die "cannot create the results directory $OUT; choose a writable place with --out DIR"
probe="$OUT/.write-probe.$$"
if ! ( : > "$probe" ) 2>/dev/null; then die "the results directory $OUT is not writable; fix its permissions or choose another with --out DIR"; fi
rm -f "$probe"
OUT="$(cd "$OUT" && pwd)"

check_space() {   # fail early, before a step starts, when the disk is (nearly) full
    local free_kb
    free_kb=$(df -Pk "$OUT" | awk 'NR == 2 { print $4 }')
    if [ -n "$free_kb" ] && [ "$free_kb" -lt $((MIN_FREE_MB * 1024)) ]; then
        die "only $((free_kb / 1024)) MB free on the disk of $OUT (need $MIN_FREE_MB MB); free some space (old run directories under runs/), or choose another disk with --out DIR, then rerun: finished steps are kept"
    fi
}
check_space

export OPENBLAS_NUM_THREADS=1
COMMIT="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then COMMIT="$COMMIT+dirty"; fi
LOG="$OUT/commands.log"
say "results in $OUT (commit $COMMIT, $( [ "$QUICK" = 1 ] && echo quick || echo full ) budget); commands are logged to $LOG"
{
    echo "# $(date -u +%FT%TZ) reproduce.sh $( [ "$QUICK" = 1 ] && echo --quick) commit $COMMIT seeds [$SEEDS] methods [$METHODS] tasks [$TASKS] kl $KL run-steps $RUN_STEPS run-lr $RUN_LR"
} >> "$LOG"

# run STEP_DIR LOGFILE -- command…: runs a command once; a finished step (DONE exists) is skipped, a failed one says why.
run() {
    local dir="$1" logf="$2"; shift 3
    if [ -f "$dir/DONE" ]; then say "skip (finished): ${dir#$OUT/}"; return 0; fi
    check_space
    echo "$(date -u +%FT%TZ) [${dir#$OUT/}] $*" >> "$LOG"
    if [ "$DRY" = 1 ]; then say "would run: $*"; return 0; fi
    mkdir -p "$(dirname "$logf")" || die "cannot create $(dirname "$logf"); check permissions and free space on $OUT"
    say "run: ${dir#$OUT/}"
    local t0=$SECONDS
    if ! "$@" > "$logf" 2>&1; then
        tail -5 "$logf" >&2
        local free_kb; free_kb=$(df -Pk "$OUT" | awk 'NR == 2 { print $4 }')
        if [ -n "$free_kb" ] && [ "$free_kb" -lt $((MIN_FREE_MB * 1024)) ]; then
            die "step ${dir#$OUT/} failed and the disk of $OUT is full ($((free_kb / 1024)) MB free); free space and rerun (finished steps are kept)"
        fi
        die "step ${dir#$OUT/} failed (log: $logf); fix the cause and rerun the same command: finished steps are skipped"
    fi
    say "  done in $((SECONDS - t0)) s"
}

# finish STEP_DIR: marks a step finished (commit, date); the marker is written last, atomically.
finish() {
    [ "$DRY" = 1 ] && return 0
    [ -f "$1/DONE" ] && return 0
    printf 'commit %s\nfinished %s\n' "$COMMIT" "$(date -u +%FT%TZ)" > "$1/DONE.tmp" && mv "$1/DONE.tmp" "$1/DONE" \
        || die "cannot write $1/DONE (disk full or not writable?); free space and rerun"
}

# fresh_dir DIR: a step directory without DONE is a leftover of an interrupted run: move it aside (never deleted).
fresh_dir() {
    [ "$DRY" = 1 ] && return 0
    if [ -d "$1" ] && [ ! -f "$1/DONE" ]; then
        mv "$1" "$1.interrupted.$(date -u +%Y%m%dT%H%M%S)" || die "cannot move the unfinished $1 aside; remove it and rerun"
        say "moved the unfinished ${1#$OUT/} aside"
    fi
}

last_checkpoint() { ls "$1"/checkpoints/v*.safetensors 2>/dev/null | sort | tail -1; }

eval_args() {   # task verifier-spec checkpoint seed out [temperatures]
    echo --checkpoint "$3" --task "$1" --task-seed "$TASK_SEED" --split test --verifier "$2" --samples "$EVAL_SAMPLES" \
         --n "$EVAL_N" --temperatures "${6:-$EVAL_TEMPS}" --prompts "$EVAL_PROMPTS" --seed "$4" --out "$5" --no-majority
}

# ---- 1. SFT starts ---------------------------------------------------------------------------------------------
# The tasks' SFT starts train side by side (one single-threaded process each: the machine has 2 cores).
sft_start() {   # task dir
    run "$2" "$2.log" -- "$BONFIRE" train "${RUNTIME[@]}" --algo sft --task "$1" --warmup 0 --steps "$SFT_STEPS" \
        --prompts-per-step "$SFT_PROMPTS" --lr "$SFT_LR" --seed 100 --out "$2" --checkpoint-every "$SFT_EVERY" \
        --eval-prompts 8 --set sampling.groupSize=1 --set algorithm.trainN=1 --set learner.keepCheckpoints=1000 \
        --set eval.everyVersions=0 --set eval.samples=8 --set task.seed="$TASK_SEED"
    finish "$2"
}
sft_pids=()
for task in $TASKS; do
    v="START_$task"; [ -n "${!v}" ] && continue
    d="$OUT/sft-start/$task"
    [ -f "$d/DONE" ] && continue
    fresh_dir "$d"
    sft_start "$task" "$d" &
    sft_pids+=($!)
done
for p in "${sft_pids[@]}"; do
    wait "$p" || die "an SFT start failed (its message is above); fix the cause and rerun the same command: finished steps are kept"
done
declare -A START VERIFIER_SPEC
for task in $TASKS; do
    v="START_$task"
    if [ -n "${!v}" ]; then START[$task]="$(cd "$(dirname "${!v}")" && pwd)/$(basename "${!v}")"; continue; fi
    d="$OUT/sft-start/$task"
    [ -f "$d/DONE" ] || [ "$DRY" = 1 ] || die "the SFT start of $task did not finish ($d); rerun the same command: finished steps are kept"
    # Validation curve of the SFT start (pass@1, pass@4 at T = 1 on the validation split), a step of its own.
    vd="$OUT/sft-start/$task-validation"
    if [ "$DRY" = 0 ] && [ ! -f "$vd/DONE" ]; then
        mkdir -p "$vd" || die "cannot create $vd; check permissions and free space on $OUT"
        for ck in "$d"/checkpoints/v*.safetensors; do
            e="$vd/$(basename "$ck" .safetensors)"
            [ -f "$e/eval.json" ] && continue
            check_space
            echo "$(date -u +%FT%TZ) [${e#$OUT/}] $BONFIRE eval --checkpoint $ck --split validation …" >> "$LOG"
            "$BONFIRE" eval --checkpoint "$ck" --task "$task" --task-seed "$TASK_SEED" --split validation \
                --samples 8 --n 1,4 --temperatures 1.0 --prompts "$CURVE_PROMPTS" --seed 0 --out "$e" --no-majority \
                > "$e.log" 2>&1 || die "validation eval of $ck failed (log: $e.log); fix it and rerun: finished steps are kept"
        done
        finish "$vd"
    fi
    START[$task]="$(last_checkpoint "$d")"
    [ "$DRY" = 1 ] && START[$task]="$d/checkpoints/vLAST.safetensors"
    [ -n "${START[$task]}" ] || die "the SFT start of $task wrote no checkpoint ($d); remove $d and rerun"
done

# ---- 2. Learned verifier (math) ---------------------------------------------------------------------------------
VERIFIER_SPEC[code]="oracle"
if [[ " $TASKS " == *" math "* ]]; then
    if [ -n "$VERIFIER_math" ]; then
        VPATH="$(cd "$(dirname "$VERIFIER_math")" && pwd)/$(basename "$VERIFIER_math")"
    else
        d="$OUT/verifier/math"; VPATH="$d/verifier.safetensors"
        if [ ! -f "$d/DONE" ]; then
            fresh_dir "$d"; [ "$DRY" = 0 ] && mkdir -p "$d"
            run "$d" "$d/train-verifier.log" -- "$BONFIRE" train-verifier --task math --task-seed "$TASK_SEED" \
                --policy "${START[math]}" --prompts "$VER_PROMPTS" --samples "$VER_SAMPLES" --held-out-prompts "$VER_HELD" \
                --steps "$VER_STEPS" --lr "$VER_LR" --trunk policy --ranking-weight 1 --seed 0 --out "$VPATH"
            finish "$d"
        fi
    fi
    VERIFIER_SPEC[math]="learned:$VPATH"
fi

# ---- 3. SFT start evaluations and the runs ----------------------------------------------------------------------
for task in $TASKS; do
    for seed in $SEEDS; do
        d="$OUT/runs/$task/start/s$seed"
        if [ ! -f "$d/DONE" ]; then
            fresh_dir "$d"; [ "$DRY" = 0 ] && mkdir -p "$d"
            run "$d" "$d/eval.log" -- "$BONFIRE" eval $(eval_args "$task" "${VERIFIER_SPEC[$task]}" "${START[$task]}" "$seed" "$d/eval-final")
            finish "$d"
        fi
    done
    for method in $METHODS; do
        for seed in $SEEDS; do
            d="$OUT/runs/$task/$method/s$seed"
            [ -f "$d/DONE" ] && { say "skip (finished): ${d#$OUT/}"; continue; }
            fresh_dir "$d"
            extra=()
            if [ "$task" = math ]; then extra+=(--verifier learned --verifier-path "${VERIFIER_SPEC[math]#learned:}"); fi
            if [ "$KL" != 0 ] && { [ "$method" = rl-v ] || [ "$method" = rl-s ]; }; then extra+=(--kl "$KL"); fi
            run "$d" "$d.train.log" -- "$BONFIRE" train "${RUNTIME[@]}" --algo "$method" --task "$task" --n "$TRAIN_N" --steps "$RUN_STEPS" \
                --prompts-per-step "$RUN_PROMPTS" --lr "$RUN_LR" --init-checkpoint "${START[$task]}" --seed "$seed" --out "$d" \
                --checkpoint-every "$EVAL_EVERY" --set learner.keepCheckpoints=1000 --eval-prompts 8 \
                --set eval.everyVersions=0 --set task.seed="$TASK_SEED" \
                "${extra[@]}"
            if [ "$DRY" = 0 ]; then
                ck="$(last_checkpoint "$d")"
                [ -n "$ck" ] || die "run ${d#$OUT/} wrote no final checkpoint (log: $d.train.log); rerun to retry it"
                mv "$d.train.log" "$d/train.log"
            else ck="$d/checkpoints/vLAST.safetensors"; fi
            if [ "$EVAL_EVERY" != 0 ] && [ "$DRY" = 0 ]; then   # intermediate checkpoints: curves against training step
                for ick in "$d"/checkpoints/v*.safetensors; do
                    [ "$ick" = "$ck" ] && continue
                    iv="$(basename "$ick" .safetensors)"
                    run "$d" "$d/eval-$iv.log" -- "$BONFIRE" eval $(eval_args "$task" "${VERIFIER_SPEC[$task]}" "$ick" "$seed" "$d/eval-$iv" 1.0)
                done
            fi
            run "$d" "$d/eval.log" -- "$BONFIRE" eval $(eval_args "$task" "${VERIFIER_SPEC[$task]}" "$ck" "$seed" "$d/eval-final")
            finish "$d"
        done
    done
done

# ---- 3b. Re-evaluation of every checkpoint against training step (--steps-eval) ----------------------------------
if [ "$STEPS_EVAL" = 1 ] && [ "$DRY" = 0 ]; then
    for task in $TASKS; do
        for seed in $SEEDS; do
            pairs=("$OUT/runs/$task/start/s$seed/eval-steps/v000000|${START[$task]}")
            for method in $METHODS; do
                d="$OUT/runs/$task/$method/s$seed"
                [ -f "$d/DONE" ] || continue
                for ck in "$d"/checkpoints/v*.safetensors; do
                    [ -f "$ck" ] && pairs+=("$d/eval-steps/$(basename "$ck" .safetensors)|$ck")
                done
            done
            for pc in "${pairs[@]}"; do
                e="${pc%%|*}"; ck="${pc#*|}"
                [ -f "$e/eval.json" ] && continue
                check_space
                mkdir -p "$(dirname "$e")" || die "cannot create $(dirname "$e"); check permissions and free space on $OUT"
                echo "$(date -u +%FT%TZ) [${e#$OUT/}] $BONFIRE eval $(eval_args "$task" "${VERIFIER_SPEC[$task]}" "$ck" "$seed" "$e" 1.0)" >> "$LOG"
                "$BONFIRE" eval $(eval_args "$task" "${VERIFIER_SPEC[$task]}" "$ck" "$seed" "$e" 1.0) > "$e.log" 2>&1 \
                    || die "evaluation of $ck failed (log: $e.log); fix it and rerun: finished evaluations are kept"
            done
            say "steps evaluated: $task seed $seed"
        done
    done
fi

# ---- 4. Table and plots ------------------------------------------------------------------------------------------
[ "$DRY" = 1 ] && { say "dry run: nothing was executed"; exit 0; }
if python3 -c 'import matplotlib' 2>/dev/null; then
    python3 "$ROOT/Scripts/results_table.py" "$OUT" --plots "$OUT/plots" --commit "$COMMIT" \
        || die "the table script failed; rerun 'python3 Scripts/results_table.py $OUT' to see why (results are kept)"
    say "table: $OUT/table.md; plots: $OUT/plots/"
else
    say "matplotlib is missing: 'pip install matplotlib', then 'python3 Scripts/results_table.py $OUT --plots $OUT/plots'"
fi
