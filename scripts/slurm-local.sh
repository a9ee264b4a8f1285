#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for the tests and for trying sweeps locally:
#   scripts/slurm-local.sh start    # munged + slurmctld + slurmd; prints the SLURM_CONF to export
#   scripts/slurm-local.sh stop     # stops the three daemons by their pid files
#   scripts/slurm-local.sh status
# No systemd, no cgroups, no accounting database: proctrack/linuxproc, task/none, cons_tres with
# CR_Core_Memory (one job per core, so 1-CPU jobs run side by side). Needs root and the Debian
# packages slurmctld, slurmd, slurm-client and munge (`make install` adds them as root).
# Everything lives under $MIGA_SLURM_DIR (default /tmp/miga-slurm); /etc is not touched.
set -euo pipefail

STATE=${MIGA_SLURM_DIR:-/tmp/miga-slurm}
CONF=$STATE/slurm.conf
# munged runs as the munge user, which may not enter $STATE (e.g. a 0700 test folder): its
# own folder sits directly in /tmp, named after $STATE so that two clusters never share one.
MUNGE_DIR=/tmp/miga-munge-$(printf %s "$STATE" | md5sum | cut -c1-8)
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
export SLURM_CONF=$CONF

fail() { echo "slurm-local: $*" >&2; exit 2; }

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
  local node cpus mem
  node=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > "$CONF" <<CONF
ClusterName=miga-local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmdSpoolDir=$STATE/spool/slurmd
StateSaveLocation=$STATE/spool/slurmctld
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  [ "$(id -u)" = 0 ] || fail "needs root (it starts munged, slurmctld and slurmd)"
  for bin in munged slurmctld slurmd sbatch sinfo; do
    command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] \
      || fail "$bin not found: apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"
  done
  if running "$STATE/run/slurmctld.pid" && running "$STATE/run/slurmd.pid"; then
    echo "export SLURM_CONF=$CONF"; return 0
  fi
  mkdir -p "$STATE"/{run,log,spool/slurmd,spool/slurmctld} "$MUNGE_DIR"
  chown munge:munge "$MUNGE_DIR"
  chmod 700 "$MUNGE_DIR"
  [ -s /etc/munge/munge.key ] || { /usr/sbin/mungekey --create --keyfile /etc/munge/munge.key \
    && chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key; }
  write_conf
  if ! running "$MUNGE_DIR/munged.pid"; then
    runuser -u munge -- /usr/sbin/munged --socket="$MUNGE_SOCKET" \
      --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" \
      --seed-file="$MUNGE_DIR/munged.seed" --force
  fi
  cp "$MUNGE_DIR/munged.pid" "$STATE/run/munged.pid"
  /usr/sbin/slurmctld -f "$CONF"
  /usr/sbin/slurmd -f "$CONF"
  for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
      echo "export SLURM_CONF=$CONF"; return 0
    fi
    sleep 0.5
  done
  fail "the node did not come up idle within 30 s; logs in $STATE/log"
}

stop() {
  local pidfile
  for pidfile in "$STATE/run/slurmd.pid" "$STATE/run/slurmctld.pid" "$MUNGE_DIR/munged.pid"; do
    if running "$pidfile"; then
      local pid; pid=$(cat "$pidfile")
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidfile"
  done
  # a fresh start next time: no state of old jobs
  rm -rf "$STATE/spool" "$STATE/run/munged.pid" "$MUNGE_DIR"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 64 ;;
esac
