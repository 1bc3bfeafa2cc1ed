#!/usr/bin/env bash
# Wire fuzzing at scale: ≥ 10⁶ random, mutated, structure-aware and hostile-valued messages per decoder (the Envelope
# through WireDecoder and every message's init(wire:)), each decoded and then validated (ValidationContext).
# Prints per decoder: decoded, rejected by the decoder (by reason), rejected by the validator (by reason), accepted.
# A trap anywhere fails the run. CI runs the same test with 10⁵ per decoder.
#
#   Scripts/fuzz.sh                       # 10⁶ per decoder
#   BONFIRE_FUZZ_COUNT=3000000 BONFIRE_FUZZ_SEED=7 Scripts/fuzz.sh
#   BONFIRE_FUZZ_REPORT=/tmp/fuzz.txt Scripts/fuzz.sh   # also write the per-decoder table to a file
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1
export BONFIRE_FUZZ_COUNT="${BONFIRE_FUZZ_COUNT:-1000000}"
export BONFIRE_FUZZ_SEED="${BONFIRE_FUZZ_SEED:-61474}"
echo "fuzz: ${BONFIRE_FUZZ_COUNT} messages per decoder, seed ${BONFIRE_FUZZ_SEED}"
swift build -c release --build-tests >/dev/null
swift test -c release --skip-build \
    --filter 'BonfireWireTests.WireFuzzTests/testEveryDecoderSurvivesRandomMutatedAndHostileMessagesAndTheValidatorRejectsTheHostileOnes' 2>&1 \
    | grep -E '^fuzz|error|passed|failed|Fatal'
