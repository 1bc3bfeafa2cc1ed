#!/usr/bin/env bash
# The project's test command (README, .ci/run): release build (the numerics are slow in debug), single BLAS thread.
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1
swift build -c release --product bonfire
swift test -c release "$@"
