#!/usr/bin/env bash
# A single-node Slurm cluster on this host, for trying `launcher = "slurm"` and for its tests.
#
#   bash scripts/slurm-local.sh [start]   write slurm.conf, start munged, slurmctld and slurmd;
#                                         the last line printed is the slurm.conf path: export it
#                                         as SLURM_CONF for srun, squeue and autoarch
#   bash scripts/slurm-local.sh stop      stop the daemons this script started
#   bash scripts/slurm-local.sh status    sinfo and squeue, or "not running"
#
# Needs Debian's `slurm-wlm` and `munge` (apt-get install slurm-wlm munge) and root (slurmd runs
# jobs as their user). Everything it writes lives under AUTOARCH_SLURM_HOME (default
# ~/.cache/autoarch/slurm); the munge key is Debian's /etc/munge/munge.key.
#
# Slurm 22.05 on a machine without cgroup delegation: proctrack/linuxproc tracks a step's
# processes by parentage and task/none binds nothing, so no cgroup plugin is needed.
set -euo pipefail

HOME_DIR="${AUTOARCH_SLURM_HOME:-$HOME/.cache/autoarch/slurm}"
CONF="$HOME_DIR/slurm.conf"
STATE="$HOME_DIR/state"
LOGS="$HOME_DIR/log"
MUNGE_RUN="$HOME_DIR/munge"
MUNGE_SOCKET="$MUNGE_RUN/munge.socket"
export SLURM_CONF="$CONF"

die() {
    echo "slurm-local: $*" >&2
    exit 1
}

need() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "$tool is not installed: apt-get install slurm-wlm munge"
    done
}

# The pid in FILE, if it names a live process whose command is PROGRAM.
live_pid() {
    local file="$1" program="$2" pid
    [[ -s "$file" ]] || return 1
    pid="$(cat "$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$program" || return 1
    echo "$pid"
}

write_conf() {
    local host cpus mem_mb
    host="$(hostname -s)"
    cpus="$(nproc)"
    # Leave a quarter of the memory to everything that is not a job.
    mem_mb="$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.75 }' /proc/meminfo)"
    mkdir -p "$STATE/ctld" "$STATE/slurmd" "$LOGS" "$MUNGE_RUN"
    cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: a one-node cluster on $host.
ClusterName=autoarch-local
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${AUTOARCH_SLURM_PORT:-6817}
SlurmdPort=$((${AUTOARCH_SLURM_PORT:-6817} + 1))
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
KillWait=5
MinJobAge=30
InactiveLimit=30
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    need munged slurmctld slurmd srun sinfo squeue scontrol
    [[ "$(id -u)" == 0 ]] || die "run it as root: slurmd starts jobs as their users"
    [[ -r /etc/munge/munge.key ]] || die "/etc/munge/munge.key is missing: reinstall munge"
    if live_pid "$STATE/slurmctld.pid" slurmctld >/dev/null &&
        live_pid "$STATE/slurmd.pid" slurmd >/dev/null; then
        echo "slurm-local: already running" >&2
        echo "$CONF"
        return
    fi
    write_conf
    if ! live_pid "$MUNGE_RUN/munged.pid" munged >/dev/null; then
        # munged runs as root here (with --force) so that its files can live under a home
        # directory the munge user cannot enter; the key stays Debian's.
        chmod 700 "$MUNGE_RUN"
        munged --force --socket="$MUNGE_SOCKET" \
            --pid-file="$MUNGE_RUN/munged.pid" --log-file="$MUNGE_RUN/munged.log" \
            --seed-file="$MUNGE_RUN/munged.seed" ||
            die "munged did not start: $(tail -3 "$MUNGE_RUN/munged.log" 2>/dev/null)"
    fi
    live_pid "$STATE/slurmctld.pid" slurmctld >/dev/null || slurmctld -f "$CONF"
    live_pid "$STATE/slurmd.pid" slurmd >/dev/null || slurmd -f "$CONF"
    # The node answers once slurmd has registered; bring it back if an earlier run left it down.
    local host state
    host="$(hostname -s)"
    for _ in $(seq 1 60); do
        state="$(sinfo -h -n "$host" -o %T 2>/dev/null || true)"
        case "$state" in
        idle | mixed | allocated) break ;;
        down* | drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 1
    done
    case "$state" in
    idle | mixed | allocated) ;;
    *)
        echo "--- slurmctld.log" >&2
        tail -15 "$LOGS/slurmctld.log" >&2 || true
        echo "--- slurmd.log" >&2
        tail -15 "$LOGS/slurmd.log" >&2 || true
        die "the node did not come up (state: ${state:-no answer})"
        ;;
    esac
    echo "slurm-local: node $host is $state; export SLURM_CONF=$CONF" >&2
    echo "$CONF"
}

stop() {
    local pid
    # Jobs first, so that no job step outlives the daemons that track it.
    if live_pid "$STATE/slurmctld.pid" slurmctld >/dev/null; then
        scancel --quiet --full --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 1 50); do
            [[ -z "$(squeue -h 2>/dev/null)" ]] && break
            sleep 0.2
        done
    fi
    for daemon in slurmd slurmctld; do
        if pid="$(live_pid "$STATE/$daemon.pid" "$daemon")"; then
            kill "$pid"
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
    done
    if pid="$(live_pid "$MUNGE_RUN/munged.pid" munged)"; then
        kill "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    echo "slurm-local: stopped" >&2
}

status() {
    if live_pid "$STATE/slurmctld.pid" slurmctld >/dev/null; then
        sinfo
        squeue
    else
        echo "slurm-local: not running"
    fi
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: $0 [start|stop|status]" ;;
esac
