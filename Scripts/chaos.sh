#!/usr/bin/env bash
# Chaos, bounded, loopback only (issue 11; docs/reliability.md §7): `bonfire local` with 3 actors while random actors
# are SIGKILLed / SIGSTOPped, the learner and the coordinator SIGKILLed once each, hostile and forged messages
# injected; then the job is stopped, resumed and finishes. The checks are Tests/BonfireClusterTests/ChaosTests.swift
# (the test suite runs a 30-second version of it in CI).
#   Scripts/chaos.sh [SECONDS] [SEED]      defaults: 240 s of chaos, a random seed (printed; pass it to replay)
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1
export BONFIRE_CHAOS_SECONDS="${1:-240}"
[ -n "${2:-}" ] && export BONFIRE_CHAOS_SEED="$2"
swift build -c release --product bonfire >/dev/null
swift build -c release --build-tests >/dev/null
swift test -c release --skip-build --filter ChaosTests 2>&1 | grep -E "^chaos:|^  |error|Executed" | grep -v "^  *$"
