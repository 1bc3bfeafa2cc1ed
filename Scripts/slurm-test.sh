#!/usr/bin/env bash
# A real Slurm on this machine, its nodes in network namespaces, running one Bonfire job with CURVE on:
#
#   ns "<p>-sw"  bridge br0 ── veth ── ns "<p>-ctl"   10.98.0.10  munged socket (shared), slurmctld; sbatch/scancel
#                          ├── veth ── ns "<p>-n1"    10.98.0.1   slurmd -N node1: coordinator + learner
#                          └── veth ── ns "<p>-n2"    10.98.0.2   slurmd -N node2: actors
#
# Debian's slurm-wlm (slurmctld, slurmd, sbatch…) and munge, a generated slurm.conf (proctrack/linuxproc, no
# cgroups, task/none), our own munged (own key and socket), every daemon and file under one work directory. Each
# slurmd runs in its own network namespace (own address) and mount namespace (own spool directory). The script
# submits Cluster/slurm/bonfire.sbatch, waits until metrics.jsonl shows policy version ≥ SLURM_MIN_VERSION, checks
# which node ran each role and that the actors on node2 hold TCP connections to 10.98.0.1, scancels the job, checks
# that every role stopped and the learner wrote its final checkpoint, and tears everything down (trap on exit).
# The host's network is never touched: every link is created inside the namespaces.
#
#   sudo Scripts/slurm-test.sh        (needs a built .build/release/bonfire; installs slurm-wlm and munge if missing)
#
# Environment: BONFIRE (default .build/release/bonfire), SLURM_MIN_VERSION (default 5), SLURM_TEST_TIMEOUT seconds
# (default 300), SLURM_TEST_KEEP=1 keeps the work directory. Exit: 0 passed, 1 failed, 2 cannot run here.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
say() { echo "[slurm-test $(date +%H:%M:%S)] $*"; }
cannot() { echo "[slurm-test] cannot run here: $*" >&2; exit 2; }
fail() { say "FAILED: $*"; exit 1; }

[ "$(uname -s)" = Linux ] || cannot "needs Linux"
[ "$(id -u)" -eq 0 ] || cannot "needs root (network namespaces, slurmd); run: sudo $0"
command -v ip >/dev/null || cannot "the 'ip' command (iproute2) is missing"
BONFIRE="${BONFIRE:-$REPO/.build/release/bonfire}"
[ -x "$BONFIRE" ] || cannot "no bonfire binary at $BONFIRE; build it: swift build -c release --product bonfire"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 slurm-wlm munge >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 slurm-wlm munge >/dev/null; } \
    || cannot "apt-get install slurm-wlm munge failed"
fi
# Debian's packages start their own daemons on install where systemd runs; there is none here. We use our own.

P="bfsl$$"
NS_SW="$P-sw"; NS_CTL="$P-ctl"; NS_N1="$P-n1"; NS_N2="$P-n2"
NSS=("$NS_CTL" "$NS_N1" "$NS_N2"); ADDRS=(10.98.0.10 10.98.0.1 10.98.0.2)
WORK="$(mktemp -d /tmp/bonfire-slurm.XXXXXX)"
chmod 755 "$WORK"
CREATED=()
DAEMON_PIDS=()
STATUS=1
START=$(date +%s)

in_ctl() { ip netns exec "$NS_CTL" "$@"; }
export SLURM_CONF="$WORK/etc/slurm.conf"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [ -n "${JOB:-}" ] && in_ctl scancel "$JOB" 2>/dev/null
  # Every process in our namespaces (slurmd, slurmstepd, the roles, slurmctld), then munged, then the namespaces.
  for ns in "${CREATED[@]}"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill -TERM 2>/dev/null; done
  for _ in $(seq 20); do
    local left=0
    for ns in "${CREATED[@]}"; do [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && left=1; done
    [ $left = 0 ] && break; sleep 0.5
  done
  for ns in "${CREATED[@]}"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null; done
  for p in "${DAEMON_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.3
  for p in "${DAEMON_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for ns in "${CREATED[@]}"; do ip netns del "$ns" 2>/dev/null; done
  local left; left="$(ip netns list 2>/dev/null | grep -c "^$P-" || true)"
  [ "$left" = 0 ] || echo "[slurm-test] WARNING: $left namespace(s) $P-* still exist" >&2
  if [ "${SLURM_TEST_KEEP:-0}" = 1 ] || [ "$STATUS" != 0 ]; then say "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  say "torn down after $(( $(date +%s) - START )) s"
  exit $rc
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT TERM

# --- Network -------------------------------------------------------------------------------------------------------
for ns in "$NS_SW" "${NSS[@]}"; do ip netns add "$ns"; CREATED+=("$ns"); done
ip -n "$NS_SW" link add br0 type bridge
ip -n "$NS_SW" link set br0 up
for i in 0 1 2; do
  ns="${NSS[$i]}"
  ip -n "$NS_SW" link add "v$i" type veth peer name eth0 netns "$ns"
  ip -n "$NS_SW" link set "v$i" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "${ADDRS[$i]}/24" dev eth0
  ip -n "$ns" link set eth0 up
done
say "namespaces up: ctl=${ADDRS[0]} node1=${ADDRS[1]} node2=${ADDRS[2]}"

# --- munge ---------------------------------------------------------------------------------------------------------
mkdir -p "$WORK"/{etc,munge,state,log,spool/node1,spool/node2,run,shared}
chmod 700 "$WORK/munge"
dd if=/dev/urandom of="$WORK/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$WORK/munge/munge.key"
MUNGE_SOCK="$WORK/munge/munge.sock"
munged --foreground --force --key-file="$WORK/munge/munge.key" --socket="$MUNGE_SOCK" --pid-file="$WORK/munge/munged.pid" \
  --log-file="$WORK/log/munged.log" --seed-file="$WORK/munge/seed" >"$WORK/log/munged.out" 2>&1 &
DAEMON_PIDS+=($!)
for _ in $(seq 50); do [ -S "$MUNGE_SOCK" ] && break; sleep 0.1; done
[ -S "$MUNGE_SOCK" ] || fail "munged did not start (see $WORK/log/munged.log)"
chmod 777 "$WORK/munge"  # slurm daemons run as root here; the socket only has to be reachable

# --- slurm.conf ----------------------------------------------------------------------------------------------------
CPUS=$(nproc)
cat >"$SLURM_CONF" <<CONF
ClusterName=bonfiretest
SlurmctldHost=$(hostname -s)(${ADDRS[0]})
MailProg=/bin/true
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCK
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$WORK/state
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$WORK/run/slurmctld.pid
SlurmdPidFile=/var/spool/slurmd/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=/var/spool/slurmd/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=30
MinJobAge=300
SlurmdTimeout=60
InactiveLimit=0
LaunchParameters=use_interactive_step
NodeName=node1 NodeAddr=${ADDRS[1]} CPUs=$CPUS State=UNKNOWN
NodeName=node2 NodeAddr=${ADDRS[2]} CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=node1,node2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
# cgroups: none are used (proctrack/linuxproc, task/none), but slurmd 22.05 still initialises its cgroup plugin and
# fails without a cgroup file system, so each slurmd joins only the NETWORK namespace of its node (nsenter --net),
# keeping the machine's /sys/fs/cgroup (`ip netns exec` would remount /sys and hide it).
cat >"$WORK/etc/cgroup.conf" <<CONF
CgroupPlugin=autodetect
CgroupAutomount=no
ConstrainCores=no
ConstrainRAMSpace=no
CONF
# Node names resolve inside each node's mount namespace (bind-mounted over /etc/hosts there only).
printf '127.0.0.1 localhost\n%s $(hostname -s)\n%s node1\n%s node2\n' "${ADDRS[@]}" >"$WORK/etc/hosts"

# --- daemons --------------------------------------------------------------------------------------------------------
in_ctl slurmctld -D -i -f "$SLURM_CONF" >"$WORK/log/slurmctld.out" 2>&1 &
DAEMON_PIDS+=($!)
for n in 1 2; do
  ns="${NSS[$n]}"
  # Own mount namespace: node<n>'s spool directory appears at /var/spool/slurmd for that slurmd only.
  nsenter --net="/var/run/netns/$ns" unshare -m --propagation private sh -c \
    "mkdir -p /var/spool/slurmd && mount --bind '$WORK/spool/node$n' /var/spool/slurmd && mount --bind '$WORK/etc/hosts' /etc/hosts && exec slurmd -D -N node$n -f '$SLURM_CONF'" \
    >"$WORK/log/slurmd-node$n.out" 2>&1 &
  DAEMON_PIDS+=($!)
done
say "slurmctld and 2 slurmd started; waiting for the nodes to be idle"
for _ in $(seq 60); do
  idle="$(in_ctl timeout 5 sinfo -h -N -o '%N %t' 2>/dev/null | grep -c ' idle' || true)"
  [ "$idle" = 2 ] && break
  kill -0 "${DAEMON_PIDS[1]}" 2>/dev/null || { tail -n 20 "$WORK/log/slurmctld.log"; fail "slurmctld exited"; }
  sleep 1
done
in_ctl timeout 5 sinfo -N -o '%N %t %o' || true
[ "${idle:-0}" = 2 ] || fail "the nodes never became idle; see $WORK/log/ and $WORK/spool/node*/slurmd.log"

# --- the job --------------------------------------------------------------------------------------------------------
RUN="$WORK/shared/run"
MIN="${SLURM_MIN_VERSION:-5}"
TIMEOUT="${SLURM_TEST_TIMEOUT:-300}"
cd "$WORK/shared"
JOB="$(in_ctl sbatch --parsable -N 2 --chdir="$WORK/shared" --output="$WORK/shared/job-%j.out" \
  --export=ALL,BONFIRE_BIN="$BONFIRE",BONFIRE_RUN_DIR="$RUN",SLURM_CONF="$SLURM_CONF" \
  "$REPO/Cluster/slurm/bonfire.sbatch" \
  --set algorithm.sftWarmupSteps=5 --set learner.maxSteps=100000 --set learner.checkpointEvery=0 \
  --set eval.everyVersions=0 --set liveness.peerGiveUpMs=20000)"
say "submitted job $JOB"
t0=$(date +%s); version=-1
while :; do
  if [ -f "$RUN/metrics.jsonl" ]; then
    version="$( { grep -oE '"version" *: *[0-9]+' "$RUN/metrics.jsonl" | grep -oE '[0-9]+$' | sort -n | tail -1; } || true)"
    version="${version:--1}"
  fi
  [ "$version" -ge "$MIN" ] && break
  state="$(in_ctl timeout 5 squeue -h -j "$JOB" -o %T 2>/dev/null || echo unknown)"
  if [ -z "$state" ] && [ $(( $(date +%s) - t0 )) -gt 10 ]; then
    tail -n 30 "$WORK/shared/job-$JOB.out" "$RUN"/logs/*.log 2>/dev/null
    fail "job $JOB ended before the run reached version $MIN (version $version)"
  fi
  [ $(( $(date +%s) - t0 )) -lt "$TIMEOUT" ] || { tail -n 30 "$RUN"/logs/*.log 2>/dev/null; fail "version $version < $MIN after ${TIMEOUT}s"; }
  sleep 1
done
say "policy version $version ≥ $MIN after $(( $(date +%s) - t0 )) s"
cat "$WORK/shared/job-$JOB.out"

# Which node ran each role.
node_of() { grep -oE "^\[slurm\] $1 on node [^ ]+" "$2" | awk '{print $5}' | head -1; }
c_node="$(node_of coordinator "$RUN/logs/coordinator.log")"
l_node="$(node_of learner "$RUN/logs/learner.log")"
a_node="$(node_of actor-0 "$RUN/logs/actor-0.log")"
say "coordinator on $c_node, learner on $l_node, actor-0 on $a_node"
[ "$c_node" = node1 ] && [ "$l_node" = node1 ] && [ "$a_node" = node2 ] || fail "roles on the wrong nodes"
grep -q '"mode" : "curve"' "$RUN/config.json" || grep -q '"mode": "curve"' "$RUN/config.json" || fail "the run did not record security.mode = curve"
# Every role applies security.* through RoleSecurity and logs "CURVE on"; a role without it is a failure.
for f in coordinator learner actor-0; do
  if grep -q "CURVE on" "$RUN/logs/$f.log"; then say "$f: $(grep -m1 -o 'CURVE on.*' "$RUN/logs/$f.log")"
  else fail "$f did not log 'CURVE on': its sockets do not apply security.mode"; fi
done
# The actors on node2 talk to node1 over the bridge.
conns=""
for _ in $(seq 20); do
  conns="$(ip netns exec "$NS_N2" ss -Htn state established dst 10.98.0.1 | awk '{print $3 "->" $4}' | tr '\n' ' ')"
  [ -n "$conns" ] && break; sleep 0.5
done
say "node2 (10.98.0.2) TCP connections to node1: ${conns:-none}"
[ -n "$conns" ] || fail "no TCP connection from node2 to 10.98.0.1"

# --- More actors join as a second job ------------------------------------------------------------------------------
JOB2="$(in_ctl sbatch --parsable -N 1 -w node2 --chdir="$WORK/shared" --output="$WORK/shared/job-%j.out" \
  --export=ALL,BONFIRE_BIN="$BONFIRE",SLURM_CONF="$SLURM_CONF" "$REPO/Cluster/slurm/actors.sbatch" "$RUN")"
say "submitted extra actors as job $JOB2"
for _ in $(seq 60); do
  grep -q "actor-1000 registered" "$RUN/logs/coordinator.log" 2>/dev/null && break; sleep 1
done
grep -h "actor-1000 registered" "$RUN/logs/coordinator.log" || { tail -n 20 "$RUN"/logs/actors-*.log; fail "the extra actor (id 1000) never registered"; }
in_ctl scancel "$JOB2"

# --- Requeue: the job restarts on the same run directory, run id and ports; the learner resumes --------------------
before="$version"
say "scontrol requeue $JOB (at version $before)"
in_ctl scontrol requeue "$JOB"
# Slurm delays a requeued job's start (BeginTime = requeue time + about 2 minutes); do not wait for that here.
for _ in $(seq 60); do
  [ "$(in_ctl timeout 5 squeue -h -j "$JOB" -o %T 2>/dev/null)" = PENDING ] && break; sleep 0.5
done
# slurmd refuses a job credential created in the same second as the revocation of the job's previous run ("Killing
# non-startable batch job: Job credential revoked", seen once when the restart came 0.5 s after the requeue): let a
# full second pass before asking for the start.
sleep 2
in_ctl scontrol update JobId="$JOB" StartTime=now || true
for _ in $(seq 120); do
  grep -q "learner: resumed from" "$RUN/logs/learner.log" 2>/dev/null && break; sleep 1
done
grep -h "learner: resumed from" "$RUN/logs/learner.log" || { tail -n 30 "$WORK/shared/job-$JOB.out" "$RUN"/logs/learner.log; fail "the requeued job did not resume"; }
grep -h "restart 1" "$WORK/shared/job-$JOB.out" || fail "no restart 1 in the job output"
before="$(grep -h "learner: resumed from" "$RUN/logs/learner.log" | grep -oE 'version [0-9]+' | head -1 | awk '{print $2}')"
t0=$(date +%s)
while :; do
  version="$( { grep -oE '"version" *: *[0-9]+' "$RUN/metrics.jsonl" | grep -oE '[0-9]+$' | sort -n | tail -1; } || true)"
  [ "${version:-0}" -ge $((before + 3)) ] && break
  [ $(( $(date +%s) - t0 )) -lt 120 ] || fail "the resumed run did not advance past version $((before + 3)) (at $version)"
  sleep 1
done
say "resumed at version $before, advanced to version $version"

# --- scancel: every role stops, the learner writes its final checkpoint ---------------------------------------------
say "scancel $JOB"
in_ctl scancel "$JOB"
for _ in $(seq 90); do
  [ -z "$(in_ctl timeout 5 squeue -h -j "$JOB" 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(in_ctl timeout 5 squeue -h -j "$JOB" 2>/dev/null)" ] || fail "job $JOB still in the queue 90 s after scancel"
sleep 1
left="$(pgrep -f "$BONFIRE (coordinator|learner|actor)" || true)"
[ -z "$left" ] || fail "roles still running after scancel: $left"
ckpt="$(ls "$RUN/checkpoints/" 2>/dev/null | tail -1)"
say "checkpoints: $(ls "$RUN/checkpoints/" 2>/dev/null | tr '\n' ' ')"
[ -n "$ckpt" ] || fail "no checkpoint after scancel"
grep -h "final checkpoint" "$RUN/logs/learner.log" || fail "the learner did not write its final checkpoint"
[ "$(grep -c "final checkpoint" "$RUN/logs/learner.log")" -ge 2 ] || fail "expected a final checkpoint at the requeue and at scancel"
say "PASSED in $(( $(date +%s) - START )) s (job $JOB)"
STATUS=0
