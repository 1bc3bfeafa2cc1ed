#!/usr/bin/env bash
# Installs the system libraries Bonfire builds against (Debian/Ubuntu). Idempotent; works as root or via sudo.
#   libzmq3-dev        ZeroMQ transport          (pkg-config: libzmq)
#   libopenblas-dev    BLAS for all heavy maths  (pkg-config: openblas)
#   libprotobuf-c-dev  protobuf-c runtime        (pkg-config: libprotobuf-c)
#   protobuf-c-compiler protoc-c, only needed to regenerate Sources/CBonfireProto (Scripts/gen-proto.sh)
#   pkg-config         lets SwiftPM find the three libraries above
# Test-only tools (real components the monitoring tests run; Bonfire itself never needs them at runtime):
#   prometheus         `prometheus` + `promtool` (MonitoringPrometheusTests)
#   tmux               drives `bonfire status --follow` in a pseudo-terminal (MonitoringStatusTests)
#   chromium           headless rendering of `bonfire report` pages (MonitoringReportTests, Scripts/render-report.sh)
#   python3 + PyPI `tensorboard`: TensorBoard's own reader and server on our event files (MonitoringTensorBoardTests)
#   python3 + PyPI `torch transformers tokenizers safetensors`: the HF run tests build tiny random models with them
#     and check that transformers loads what Bonfire exports (HFRunTests; never used by Bonfire at runtime)
set -euo pipefail
PKGS=(libzmq3-dev libopenblas-dev libprotobuf-c-dev protobuf-c-compiler pkg-config prometheus tmux chromium)

# PyPI tensorboard for the monitoring tests (pip ≥ 24 needed: older pip trips over some installed metadata).
install_tensorboard() {
  command -v python3 >/dev/null 2>&1 || { echo "install-deps: python3 not found; the TensorBoard tests need python3 + pip install tensorboard" >&2; return 1; }
  python3 -c "import tensorboard" 2>/dev/null && return 0
  echo "install-deps: pip install tensorboard"
  python3 -m pip install -q tensorboard 2>/dev/null \
    || { python3 -m pip install -q --upgrade pip && python3 -m pip install -q tensorboard; } \
    || { echo "install-deps: 'pip install tensorboard' failed; check PyPI access" >&2; return 1; }
}

# PyPI reference libraries for the Hugging Face tests (a CPU torch wheel; pip's find-links may hold it locally).
install_hf_reference() {
  python3 -c "import torch, transformers, tokenizers, safetensors" 2>/dev/null && return 0
  echo "install-deps: pip install torch transformers tokenizers safetensors (reference libraries for the HF tests)"
  # A local CPU wheel (this machine kind's pip find-links) when there is one: PyPI's default torch pulls CUDA.
  local torch_wheel
  torch_wheel=$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | head -1 || true)
  python3 -m pip install -q "${torch_wheel:-torch}" transformers tokenizers safetensors \
    || { echo "install-deps: 'pip install torch transformers tokenizers safetensors' failed; check PyPI access" >&2; return 1; }
}

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system packages present (${PKGS[*]})"
  install_tensorboard
  install_hf_reference
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
  echo "install-deps: need root to install: ${missing[*]}" >&2
  echo "install-deps: run this script as root, or install sudo, or run: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
command -v apt-get >/dev/null 2>&1 || { echo "install-deps: apt-get not found; this script supports Debian/Ubuntu only. Install by hand: ${missing[*]}" >&2; exit 1; }

echo "install-deps: installing ${missing[*]}"
if ! $SUDO apt-get update -qq; then
  echo "install-deps: 'apt-get update' failed: check the network/apt sources (/etc/apt/sources.list*) and retry" >&2
  exit 1
fi
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  echo "install-deps: 'apt-get install ${missing[*]}' failed; see the apt output above" >&2
  exit 1
fi
for pc in libzmq openblas libprotobuf-c; do
  pkg-config --exists "$pc" || { echo "install-deps: pkg-config cannot find '$pc' after install" >&2; exit 1; }
done
install_tensorboard
install_hf_reference
echo "install-deps: done"
