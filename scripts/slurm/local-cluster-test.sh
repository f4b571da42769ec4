#!/usr/bin/env bash
# Brings up a single-node Slurm cluster on this machine from Debian's slurm-wlm and munge
# (slurmctld and slurmd on localhost; proctrack/linuxproc and task/none, so no cgroups; no
# accounting), scores the tiny test model in four shards as a job array through submit.sh with
# a dependent merge, and checks the merged report against an unsharded run (within 1e-6
# relative). Stops the daemons it started. Needs root (or sudo) to install the packages.
# Exit codes: 0 passed, 1 the sharded run failed or disagrees, 3 no cluster could be brought up
# here (packages, munge or the daemons; the reason is printed), 2 bad usage.
#
# usage: scripts/slurm/local-cluster-test.sh   (HEADROOM: the binary, default
#        target/release/headroom; SHARDS: the array's size, default 4; KEEP=1 keeps the
#        work directory)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
HEADROOM=${HEADROOM:-$root/target/release/headroom}
case "$HEADROOM" in /*) ;; *) HEADROOM="$root/$HEADROOM" ;; esac
SHARDS=${SHARDS:-4}
say() { echo "slurm-test: $*"; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root (or sudo) to run: $*" >&2; exit 2; fi
}
[ -x "$HEADROOM" ] || { say "$HEADROOM: no such binary (cargo build --release)" >&2; exit 2; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  { as_root apt-get update -qq && as_root apt-get install -y -qq slurm-wlm munge >/dev/null; } \
    || { say "cannot install slurm-wlm and munge" >&2; exit 3; }
fi

work=$(mktemp -d /tmp/headroom-slurm.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do as_root kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  if [ "$rc" != 0 ]; then
    say "failed; logs:" >&2
    tail -n 20 "$work"/log/*.log "$work"/shards/slurm-*.out >&2 2>/dev/null || true
  fi
  if [ -n "${KEEP:-}" ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
mkdir -p "$work"/{state,spool,log,shards}

# munge: the Debian package makes /etc/munge/munge.key; start the daemon unless one answers
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ -f /etc/munge/munge.key ] || as_root mungekey --create
  as_root mkdir -p /run/munge /var/log/munge /var/lib/munge
  as_root munged --force --pid-file="$work/munged.pid" --log-file="$work/log/munged.log"
  sleep 1
  pids+=("$(cat "$work/munged.pid")")
  munge -n | unmunge >/dev/null || { say "munge does not answer" >&2; exit 3; }
fi

export SLURM_CONF=$work/slurm.conf
user=$(id -un)
cat > "$SLURM_CONF" <<EOF
ClusterName=headroom-test
SlurmctldHost=localhost
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=600
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=localhost CPUs=$(nproc) RealMemory=$(( $(free -m | awk '/^Mem:/{print $2}') / 2 )) State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
if scontrol ping 2>/dev/null | grep -q UP; then
  say "a slurmctld already answers on this machine's port: stop it first" >&2; exit 3
fi
as_root env SLURM_CONF="$SLURM_CONF" slurmctld -c || { say "slurmctld did not start" >&2; exit 3; }
as_root env SLURM_CONF="$SLURM_CONF" slurmd -c || { say "slurmd did not start" >&2; exit 3; }
sleep 1
pids+=("$(cat "$work/slurmctld.pid")" "$(cat "$work/slurmd.pid")")
for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -qx idle && break
  sleep 1
done
sinfo -h -o %t | grep -qx idle || { say "the node never became idle" >&2; sinfo >&2; exit 3; }
say "cluster up: $(sinfo -h -o '%P %D node(s) %c CPUs %t')"

# the tiny classifier on 26 labelled sentences of varied lengths
model=$root/tests/fixtures/tiny-bert
data=$work/data.tsv
awk -F'\t' 'NR == 1 { print "sentence\tlabel"; next }
  { for (r = 0; r < 4; r++) { n = split($1, w, " "); s = w[1];
      for (i = 2; i <= (r * 3 + 1 < n ? r * 3 + 1 : n); i++) s = s " " w[i];
      print s "\t" (NR + r) % 3 } }' tests/goldens/sentences.tsv > "$data"
opts="--batch-size 4 --bootstrap 20"
# shellcheck disable=SC2086
"$HEADROOM" score --model "$model" --data "$data" --out "$work/whole" $opts >/dev/null

start=$(date +%s)
read -r array merge < <(HEADROOM=$HEADROOM SCORE_ARGS=$opts \
  scripts/slurm/submit.sh "$SHARDS" "$model" "$data" "$work/shards" "$work/merged")
say "submitted array $array ($SHARDS shards) and merge $merge (afterok)"
state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | sort -u | cut -d= -f2 | tr '\n' ' '; }
for _ in $(seq 600); do
  case "$(state "$merge")" in
    "COMPLETED ") break ;;
    *FAILED*|*CANCELLED*|*TIMEOUT*) say "merge job: $(state "$merge"); array: $(state "$array")" >&2; exit 1 ;;
  esac
  sleep 1
done
[ "$(state "$merge")" = "COMPLETED " ] || { say "the jobs did not finish in 10 minutes" >&2; exit 1; }
say "array and merge completed in $(( $(date +%s) - start )) s: $(ls "$work/shards"/*.safetensors | wc -l) shard files"
python3 scripts/slurm/compare-reports.py "$work/whole/report.json" "$work/merged/report.json" 1e-6
say "passed: the merged shards equal the unsharded run"
