#!/usr/bin/env bash
# Multi-host test without other machines: Linux network namespaces joined by veth pairs and a bridge, with real
# non-loopback addresses (10.99.0.0/24) that exist only inside the namespaces this script creates.
#
#   ns "<p>-sw"  bridge br0 ── veth ── ns "<p>-a" eth0 10.99.0.1   coordinator + learner (bind 10.99.0.1)
#                          ├── veth ── ns "<p>-b" eth0 10.99.0.2   actor 0
#                          └── veth ── ns "<p>-c" eth0 10.99.0.3   actor 1
#
# It checks TCP reachability across the bridge, runs the roles with `ip netns exec`, waits until the run's
# metrics.jsonl shows policy version ≥ $NETNS_MIN_VERSION (default 3), shows the actors' TCP connections to
# 10.99.0.1, and always removes the namespaces and stops the processes in them (trap on EXIT/INT/TERM).
# The host's own network is never touched: every link is created inside the namespaces.
#
#   sudo Scripts/netns-test.sh                 # full test (needs a built bonfire with the role commands)
#   sudo Scripts/netns-test.sh --setup-only    # namespaces + reachability + teardown only
#
# Environment: BONFIRE (default .build/release/bonfire), NETNS_TIMEOUT seconds (default 300),
# NETNS_MIN_VERSION (default 3), NETNS_KEEP=1 keeps the work directory (logs, run dir).
# Exit status: 0 passed, 1 failed, 2 cannot run here (the reason is printed).
set -euo pipefail

cd "$(dirname "$0")/.."
MODE=full
case "${1:-}" in
  --setup-only) MODE=setup ;;
  "") ;;
  -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "netns-test: unknown argument '$1' (use --setup-only or nothing)" >&2; exit 2 ;;
esac

say() { echo "[netns-test] $*"; }
cannot() { echo "[netns-test] cannot run here: $*" >&2; exit 2; }

# --- Can we run at all? -------------------------------------------------------------------------------------------
[ "$(uname -s)" = Linux ] || cannot "network namespaces need Linux (this is $(uname -s))"
[ "$(id -u)" -eq 0 ] || cannot "creating network namespaces needs root; run: sudo $0 ${1:-}"
command -v ip >/dev/null 2>&1 || cannot "the 'ip' command (iproute2) is missing; install it: apt-get install -y iproute2"
command -v python3 >/dev/null 2>&1 || cannot "python3 is needed for the reachability check"

BONFIRE="${BONFIRE:-.build/release/bonfire}"
if [ "$MODE" = full ]; then
  [ -x "$BONFIRE" ] || cannot "no bonfire binary at $BONFIRE; build it (swift build -c release --product bonfire) or set BONFIRE"
  help="$("$BONFIRE" --help 2>&1 || true)"
  for role in coordinator learner actor; do
    grep -Eq "^[[:space:]]+$role([[:space:]]|$)" <<<"$help" \
      || cannot "$BONFIRE has no '$role' subcommand (role commands not built yet?); 'Scripts/netns-test.sh --setup-only' checks the network part"
  done
fi

P="bfnt$$"
NS_SW="$P-sw"; NS_A="$P-a"; NS_B="$P-b"; NS_C="$P-c"
NODES=("$NS_A" "$NS_B" "$NS_C")
ADDRS=(10.99.0.1 10.99.0.2 10.99.0.3)
WORK="$(mktemp -d /tmp/bonfire-netns.XXXXXX)"
CREATED=()
PIDS=()
STATUS=1

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  # Stop every process running inside our namespaces (only ours can be there), then the namespaces.
  for ns in "${CREATED[@]}"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill -TERM 2>/dev/null; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local left=0
    for ns in "${CREATED[@]}"; do [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && left=1; done
    [ $left = 0 ] && break
    sleep 0.5
  done
  for ns in "${CREATED[@]}"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for ns in "${CREATED[@]}"; do ip netns del "$ns" 2>/dev/null && say "removed namespace $ns"; done
  if [ "${NETNS_KEEP:-0}" = 1 ] || [ "$STATUS" != 0 ]; then say "logs and run directory kept in $WORK"; else rm -rf "$WORK"; fi
  left="$(ip netns list 2>/dev/null | grep -c "^$P-" || true)"
  [ "$left" = 0 ] || echo "[netns-test] WARNING: $left namespace(s) $P-* still exist" >&2
  exit $rc
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# --- Namespaces, bridge, veth pairs --------------------------------------------------------------------------------
for ns in "$NS_SW" "${NODES[@]}"; do ip netns add "$ns"; CREATED+=("$ns"); done
ip -n "$NS_SW" link add br0 type bridge
ip -n "$NS_SW" link set br0 up
for i in 0 1 2; do
  ns="${NODES[$i]}"
  # Created inside the switch namespace; the peer goes straight into the node namespace as eth0.
  ip -n "$NS_SW" link add "v$i" type veth peer name eth0 netns "$ns"
  ip -n "$NS_SW" link set "v$i" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "${ADDRS[$i]}/24" dev eth0
  ip -n "$ns" link set eth0 up
done
say "namespaces ${CREATED[*]} up: ${NODES[0]}=${ADDRS[0]} ${NODES[1]}=${ADDRS[1]} ${NODES[2]}=${ADDRS[2]}"

# --- Reachability: TCP from each actor namespace to 10.99.0.1 ------------------------------------------------------
PORT=5599
ip netns exec "$NS_A" python3 -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('10.99.0.1', $PORT)); s.listen(4); s.settimeout(10)
for _ in range(2):
    c, addr = s.accept(); c.sendall(('hello ' + addr[0]).encode()); c.close()
" &
PIDS+=($!)
sleep 0.5
for i in 1 2; do
  got="$(ip netns exec "${NODES[$i]}" python3 -c "
import socket
s = socket.create_connection(('10.99.0.1', $PORT), timeout=5); print(s.recv(64).decode())
")" || { say "FAILED: ${NODES[$i]} cannot reach 10.99.0.1:$PORT over the bridge"; exit 1; }
  [ "$got" = "hello ${ADDRS[$i]}" ] || { say "FAILED: unexpected reply '$got'"; exit 1; }
  say "${ADDRS[$i]} -> 10.99.0.1:$PORT ok ($got)"
done
# The namespaces must not see the host's loopback services: 127.0.0.1 inside is their own.
if [ "$MODE" = setup ]; then
  say "setup check passed"
  STATUS=0
  exit 0
fi

# --- Run the roles --------------------------------------------------------------------------------------------------
RUN="$WORK/run"
CONFIG="$WORK/netns.json"
# 10.99.0.1 is not loopback, so the roles refuse to start without CURVE: make keys and turn it on.
"$BONFIRE" keys --dir "$WORK/keys" >/dev/null
cat >"$CONFIG" <<EOF
{
  "run": { "dir": "$RUN" },
  "actors": { "count": 2 },
  "endpoints": { "host": "10.99.0.1", "bindHost": "10.99.0.1" },
  "algorithm": { "sftWarmupSteps": 5 },
  "learner": { "maxSteps": 1000, "checkpointEvery": 0 },
  "eval": { "everyVersions": 0 },
  "security": { "mode": "curve", "keysDir": "$WORK/keys" }
}
EOF
# Every role must agree on the run id: one random id for this run.
RUN_ID="netns-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

start() {  # start <name> <namespace> <args...>
  local name="$1" ns="$2"; shift 2
  ( ip netns exec "$ns" "$BONFIRE" "$@" 2>&1 | tee "$WORK/$name.log" | sed -u "s/^/[$name] /" ) &
  PIDS+=($!)
  say "started $name in $ns: bonfire $*"
}
start coordinator "$NS_A" coordinator --config "$CONFIG" --set "run.id=$RUN_ID"
sleep 1
start learner "$NS_A" learner --config "$CONFIG" --set "run.id=$RUN_ID"
sleep 1
# The namespaces share this machine's boot id, host name and /dev/shm, so these actors could read the learner's
# shared-memory parameter ring: turn that off for them, so parameters cross the bridge as they would between hosts
# (and the learner's fallback to full broadcasts, docs/cluster.md "Parameter broadcast", is exercised).
start actor-0 "$NS_B" actor --id 0 --config "$CONFIG" --set "run.id=$RUN_ID" --set endpoints.sharedMemoryParameters=false
start actor-1 "$NS_C" actor --id 1 --config "$CONFIG" --set "run.id=$RUN_ID" --set endpoints.sharedMemoryParameters=false

MIN="${NETNS_MIN_VERSION:-3}"
TIMEOUT="${NETNS_TIMEOUT:-300}"
start_time=$(date +%s)
version=-1
while :; do
  if [ -f "$RUN/metrics.jsonl" ]; then
    # (|| true: an empty or still-partial metrics.jsonl must not end the script under set -e/pipefail)
    version="$( { grep -oE '"version" *: *[0-9]+' "$RUN/metrics.jsonl" | grep -oE '[0-9]+$' | sort -n | tail -1; } || true)"
    version="${version:--1}"
  fi
  [ "$version" -ge "$MIN" ] && break
  for ns in "$NS_A" "$NS_B" "$NS_C"; do
    [ -n "$(ip netns pids "$ns")" ] || { say "FAILED: every process in $ns has exited (version $version); see $WORK/*.log"; exit 1; }
  done
  if [ $(( $(date +%s) - start_time )) -ge "$TIMEOUT" ]; then
    say "FAILED: version $version < $MIN after ${TIMEOUT}s; see $WORK/*.log"; exit 1
  fi
  sleep 1
done
say "policy version $version ≥ $MIN after $(( $(date +%s) - start_time ))s"
for i in 1 2; do
  conns=""
  for _ in $(seq 20); do   # the actors are connected by now in a real run; allow a few seconds anyway
    conns="$(ip netns exec "${NODES[$i]}" ss -Htn state established dst 10.99.0.1 | awk '{print $3 "->" $4}' | tr '\n' ' ')"
    [ -n "$conns" ] && break
    sleep 0.5
  done
  say "${NODES[$i]} (${ADDRS[$i]}) established: ${conns:-none}"
  [ -n "$conns" ] || { say "FAILED: actor namespace ${NODES[$i]} has no TCP connection to 10.99.0.1"; exit 1; }
done
say "PASSED: training advanced across namespaces"
STATUS=0
