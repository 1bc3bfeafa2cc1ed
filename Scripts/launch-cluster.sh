#!/usr/bin/env bash
# Starts the roles of a Cluster/ config on the hosts named in its .hosts file, over ssh, and keeps them together:
# every role's output comes back here prefixed "[role@host] ", Ctrl-C (or this script dying) stops every remote
# role, and the script exits non-zero if the coordinator or learner fails.
#
#   Scripts/launch-cluster.sh Cluster/multihost.json                  # hosts from Cluster/multihost.hosts
#   Scripts/launch-cluster.sh Cluster/multihost.json my.hosts --set learner.maxSteps=500
#   Scripts/launch-cluster.sh --dry-run Cluster/multihost.json       # print the ssh commands only
#
# Hosts file: one role per line, "<role> <ssh destination> [actor id]", '#' comments. Roles: coordinator, learner,
# actor. Each host must have the same checkout at $BONFIRE_REMOTE_DIR (default: this checkout's path) with a built
# binary at $BONFIRE_BIN (default .build/release/bonfire, relative to that dir), and passwordless ssh (BatchMode).
# Remote roles are tied to their ssh connection: when the connection closes they receive SIGTERM.
# Environment: SSH (default "ssh"), SSH_OPTS (extra options), BONFIRE_REMOTE_DIR, BONFIRE_BIN.
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then usage 0; fi
[ $# -ge 1 ] || usage
CONFIG="$1"; shift
HOSTS="${CONFIG%.json}.hosts"
if [ $# -ge 1 ] && [ "${1#--}" = "$1" ]; then HOSTS="$1"; shift; fi
SETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --set) [ $# -ge 2 ] || { echo "launch-cluster: --set needs key.path=value" >&2; exit 2; }; SETS+=(--set "$2"); shift 2 ;;
    --set=*) SETS+=(--set "${1#--set=}"); shift ;;
    *) echo "launch-cluster: unknown argument '$1'" >&2; usage ;;
  esac
done

[ -f "$CONFIG" ] || { echo "launch-cluster: config file '$CONFIG' not found" >&2; exit 2; }
[ -f "$HOSTS" ] || { echo "launch-cluster: hosts file '$HOSTS' not found (expected beside the config; see Cluster/multihost.hosts)" >&2; exit 2; }

REPO="$(cd "$(dirname "$0")/.." && pwd)"
REMOTE_DIR="${BONFIRE_REMOTE_DIR:-$REPO}"
BIN="${BONFIRE_BIN:-.build/release/bonfire}"
SSH="${SSH:-ssh}"
# Config path as seen from the repository root on the remote hosts.
case "$CONFIG" in
  /*) REMOTE_CONFIG="$CONFIG" ;;
  *) REMOTE_CONFIG="$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")"; REMOTE_CONFIG="${REMOTE_CONFIG#"$REPO"/}" ;;
esac

quote() { printf '%q ' "$@"; }

# Parse the hosts file.
ROLES=(); DESTS=(); IDS=()
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  line="${line%%#*}"
  read -r role dest id extra <<<"$line" || true
  [ -n "${role:-}" ] || continue
  case "$role" in
    coordinator|learner) id="" ;;
    actor) [[ "${id:-}" =~ ^[0-9]+$ ]] || { echo "launch-cluster: $HOSTS:$lineno: actor needs a numeric id: '$line'" >&2; exit 2; } ;;
    *) echo "launch-cluster: $HOSTS:$lineno: unknown role '$role' (coordinator, learner, actor)" >&2; exit 2 ;;
  esac
  [ -n "${dest:-}" ] || { echo "launch-cluster: $HOSTS:$lineno: missing ssh destination" >&2; exit 2; }
  [ -z "${extra:-}" ] || { echo "launch-cluster: $HOSTS:$lineno: too many fields: '$line'" >&2; exit 2; }
  ROLES+=("$role"); DESTS+=("$dest"); IDS+=("${id:-}")
done <"$HOSTS"
for need in coordinator learner actor; do
  printf '%s\n' "${ROLES[@]}" | grep -qx "$need" || { echo "launch-cluster: $HOSTS names no $need" >&2; exit 2; }
done

# The remote command: run the role in the background and SIGTERM it when ssh's stdin closes (connection gone).
remote_cmd() {
  local role="$1" id="$2" args
  args=("$BIN" "$role")
  [ -n "$id" ] && args+=(--id "$id")
  args+=(--config "$REMOTE_CONFIG" "${SETS[@]}")
  local cmd
  # (a background job's stdin is /dev/null unless redirected explicitly: keep ssh's stdin on fd 3 for the watcher)
  cmd="cd $(quote "$REMOTE_DIR") && exec 3<&0 && { $(quote "${args[@]}") </dev/null & pid=\$!; { cat <&3 >/dev/null; kill -TERM \$pid; } >/dev/null 2>&1 & w=\$!; wait \$pid; rc=\$?; kill \$w 2>/dev/null; exit \$rc; }"
  printf '%s' "$cmd"
}

if [ "$DRY" = 1 ]; then
  for i in "${!ROLES[@]}"; do
    echo "$SSH ${SSH_OPTS:+$SSH_OPTS }-o BatchMode=yes ${DESTS[$i]} bash -c $(printf '%q' "$(remote_cmd "${ROLES[$i]}" "${IDS[$i]}")")"
  done
  exit 0
fi

WORK="$(mktemp -d)"
PIDS=(); NAMES=()
cleanup() {
  trap - EXIT INT TERM
  for fd in "${FDS[@]:-}"; do [ -n "$fd" ] && eval "exec $fd>&-" 2>/dev/null || true; done
  sleep 1
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "[launch] interrupted: stopping all roles"; exit 130' INT TERM

FDS=()
start() {
  local i="$1" role="${ROLES[$1]}" dest="${DESTS[$1]}" id="${IDS[$1]}" name fifo fd
  name="$role${id:+-$id}"
  fifo="$WORK/$name.stdin"
  mkfifo "$fifo"
  # shellcheck disable=SC2086
  ( $SSH ${SSH_OPTS:-} -o BatchMode=yes "$dest" "bash -c $(printf '%q' "$(remote_cmd "$role" "$id")")" <"$fifo" 2>&1 \
      | sed -u "s/^/[$name@$dest] /"; exit "${PIPESTATUS[0]}" ) &
  PIDS+=($!); NAMES+=("$name")
  exec {fd}>"$fifo"      # held open until we exit: its EOF tells the remote side to stop
  FDS+=("$fd")
  echo "[launch] started $name on $dest"
}

# Coordinator first, then learner, then actors (each retries its connections, so order is a courtesy).
for want in coordinator learner actor; do
  for i in "${!ROLES[@]}"; do [ "${ROLES[$i]}" = "$want" ] && start "$i"; done
  [ "$want" = actor ] || sleep 1
done

# Wait: the job ends when the coordinator exits; a failed coordinator or learner fails the job.
status=0
while :; do
  for k in "${!PIDS[@]}"; do
    p="${PIDS[$k]}"; [ -n "$p" ] || continue
    if ! kill -0 "$p" 2>/dev/null; then
      set +e; wait "$p"; rc=$?; set -e
      PIDS[$k]=""
      echo "[launch] ${NAMES[$k]} exited with status $rc"
      case "${NAMES[$k]}" in
        coordinator) [ $rc -eq 0 ] || status=1; exit $status ;;
        learner) [ $rc -eq 0 ] || { status=1; echo "[launch] learner failed: stopping all roles"; exit 1; } ;;
      esac
    fi
  done
  sleep 1
done
