#!/usr/bin/env bash
# Installs the system libraries Bonfire builds against (Debian/Ubuntu). Idempotent; works as root or via sudo.
#   libzmq3-dev        ZeroMQ transport          (pkg-config: libzmq)
#   libopenblas-dev    BLAS for all heavy maths  (pkg-config: openblas)
#   libprotobuf-c-dev  protobuf-c runtime        (pkg-config: libprotobuf-c)
#   protobuf-c-compiler protoc-c, only needed to regenerate Sources/CBonfireProto (Scripts/gen-proto.sh)
#   pkg-config         lets SwiftPM find the three libraries above
set -euo pipefail
PKGS=(libzmq3-dev libopenblas-dev libprotobuf-c-dev protobuf-c-compiler pkg-config)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system packages present (${PKGS[*]})"
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
echo "install-deps: done"
