#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for tests/test_slurm.py (Debian, root, no systemd).
#
#   tests/slurm_cluster.sh start DIR   install slurm + munge if missing, write the configs and start
#                                      munged, slurmctld, slurmd; returns once the node is idle and a
#                                      `sbatch --gpus=1` job saw CUDA_VISIBLE_DEVICES=0
#   tests/slurm_cluster.sh stop DIR    cancel the cluster's jobs, stop the three daemons by the PIDs
#                                      recorded under DIR, remove /etc/slurm/slurm.conf if it is ours
#
# Everything (configs, pid, log, state, spool files, the munge socket) lives under DIR, which user
# `munge` must be able to traverse (e.g. a 0755 folder under /tmp). One exception:
# /etc/slurm/slurm.conf becomes a symlink to DIR/slurm.conf: inside a job, the plugin's jobstep
# executor drops the SLURM_* variables (SLURM_CONF included) before it calls srun, which then only
# finds the default path. An existing regular file there is never overwritten.
#
# The node is `hostname -s` with all CPUs, 90 % of the memory `slurmd -C` reports and one fake GPU
# per CPU (SLURM_TEST_GPUS to change; one per CPU lets every 1-CPU GPU job run at once): gres.conf
# points at DIR/fake-gpu<i>, symlinks to /dev/null (a character device, which slurmd needs to set
# CUDA_VISIBLE_DEVICES; a job given GPU i sees CUDA_VISIBLE_DEVICES=i). No slurmdbd: sacct does
# not work, so a Snakemake profile for this cluster must use `slurm-status-command: squeue`.
# MinJobAge is 3600 s, so squeue and `scontrol show job` keep every finished job of a test run.
# Ports: SLURM_TEST_CTLD_PORT (6817) and SLURM_TEST_SLURMD_PORT (6818).
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd -P)
marker="# written by fun-with-diffusion tests/slurm_cluster.sh"
etc_conf=/etc/slurm/slurm.conf

log() { echo "slurm_cluster: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# kill the process whose PID is in $1 if it is still the program $2 (guards against PID reuse)
stop_pid() {
    local pidfile=$1 name=$2 pid comm
    [[ -s $pidfile ]] || return 0
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    if [[ $comm != "$name" ]]; then
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        [[ -e /proc/$pid ]] || break
        sleep 0.2
    done
    if [[ -e /proc/$pid ]]; then
        log "$name ($pid) did not stop on SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

stop() {
    if [[ -s $dir/pids/slurmctld.pid ]] && command -v scancel >/dev/null; then
        SLURM_CONF=$dir/slurm.conf timeout 20 scancel --quiet --full --user=root 2>/dev/null || true
        sleep 1
    fi
    stop_pid "$dir/pids/slurmd.pid" slurmd
    stop_pid "$dir/pids/slurmctld.pid" slurmctld
    stop_pid "$dir/munge/munged.pid" munged
    if [[ -L $etc_conf && $(readlink "$etc_conf") == "$dir/slurm.conf" ]]; then
        rm -f "$etc_conf"
    fi
    log "stopped (files kept under $dir)"
}

start() {
    [[ $(id -u) -eq 0 ]] || die "must run as root"
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
        command -v apt-get >/dev/null || die "slurm is not installed and there is no apt-get"
        log "installing slurmctld slurmd slurm-client munge"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
    fi
    if [[ -e $etc_conf && ! -L $etc_conf ]] && ! grep -qF "$marker" "$etc_conf"; then
        die "$etc_conf exists and was not written by this script: this machine has a SLURM setup of its own; not touching it"
    fi
    if [[ -L $etc_conf ]]; then
        local other pid
        other=$(dirname "$(readlink "$etc_conf")")
        pid=$(cat "$other/pids/slurmctld.pid" 2>/dev/null || true)
        if [[ $other != "$dir" && -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == slurmctld ]]; then
            die "another test cluster is running from $other: stop it first ($0 stop $other)"
        fi
    fi
    [[ -e $dir/pids/slurmctld.pid ]] && stop

    local node cpus gpus mem ctld_port slurmd_port
    node=$(hostname -s)
    cpus=$(nproc)
    gpus=${SLURM_TEST_GPUS:-$cpus}
    mem=$(/usr/sbin/slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    [[ -n $mem ]] || die "could not read RealMemory from slurmd -C"
    mem=$((mem * 9 / 10))
    ctld_port=${SLURM_TEST_CTLD_PORT:-6817}
    slurmd_port=${SLURM_TEST_SLURMD_PORT:-6818}

    mkdir -p "$dir"/{munge,state,spool,log,pids}
    runuser -u munge -- test -x "$dir" || die "user munge cannot enter $dir: use a folder whose parents are world-traversable (e.g. mode 0755 under /tmp)"

    # munge: its own socket, pid, log and seed files under DIR/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "creating /etc/munge/munge.key"
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    chown munge:munge "$dir/munge"
    chmod 0755 "$dir/munge"  # munged: the socket folder must be searchable by all, writable only by munge
    local sock=$dir/munge/munge.socket
    runuser -u munge -- /usr/sbin/munged --socket="$sock" --pid-file="$dir/munge/munged.pid" \
        --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" \
        || die "munged did not start: $(tail -5 "$dir/munge/munged.log" 2>/dev/null)"
    for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.1; done
    munge -n --socket="$sock" | unmunge --socket="$sock" >/dev/null || die "munge does not work"

    # the fake GPUs: character devices (symlinks to /dev/null)
    for ((i = 0; i < gpus; i++)); do ln -sfn /dev/null "$dir/fake-gpu$i"; done
    cat >"$dir/gres.conf" <<EOF
$marker
AutoDetect=off
NodeName=$node Name=gpu File=$dir/fake-gpu[0-$((gpus - 1))]
EOF
    cat >"$dir/slurm.conf" <<EOF
$marker
ClusterName=fundiff-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/pids/slurmctld.pid
SlurmdPidFile=$dir/pids/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=3600
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:$gpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mkdir -p /etc/slurm
    ln -sfn "$dir/slurm.conf" "$etc_conf"
    export SLURM_CONF=$dir/slurm.conf

    /usr/sbin/slurmctld -f "$SLURM_CONF" || die "slurmctld did not start: $(tail -5 "$dir/log/slurmctld.log" 2>/dev/null)"
    /usr/sbin/slurmd -f "$SLURM_CONF" || die "slurmd did not start: $(tail -5 "$dir/log/slurmd.log" 2>/dev/null)"

    local state=""
    for i in $(seq 120); do
        state=$(sinfo -h -n "$node" -o %t 2>/dev/null || true)
        case $state in
            idle) break ;;
            *drain* | *drng* | inval* | down* | fail*)
                # a node once INVAL/DRAIN stays so until resumed
                if ((i % 10 == 1)); then scontrol update nodename="$node" state=resume 2>/dev/null || true; fi ;;
        esac
        sleep 0.5
    done
    [[ $state == idle ]] || die "node $node is '$state', not idle: $(tail -5 "$dir/log/slurmd.log" "$dir/log/slurmctld.log" 2>/dev/null)"

    # self-check: a job asking for a GPU sees the first fake one
    local out=$dir/log/gpu-check.out
    timeout 60 sbatch --wait --quiet --gpus=1 --mem=100 -t 1 -o "$out" --wrap 'echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset}"' \
        || die "the GPU check job failed: $(cat "$out" 2>/dev/null)"
    grep -qx "CUDA_VISIBLE_DEVICES=0" "$out" || die "a --gpus=1 job did not get CUDA_VISIBLE_DEVICES=0: $(cat "$out")"
    log "up: node $node ($cpus CPUs, ${mem} MB, $gpus fake GPUs), partition debug, SLURM_CONF=$SLURM_CONF"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
