#!/usr/bin/env bash
# A one-node Slurm cluster on loopback for xqdecl's tests: munged, slurmctld, slurmd.
#
#   scripts/testbed/slurm.sh            install what is missing, (re)start what is down
#   scripts/testbed/slurm.sh --check    only say whether the cluster answers (exit 0/1)
#
# Knobs: SLURM_CPUS (CPUs the node claims, default 32 so many tiny jobs run at
# once on a 2-core box), SLURM_RESET=1 (stop the daemons and wipe job state first).
# Config: /etc/slurm/slurm.conf (client commands read it from there).
# State, logs, pid files: $XQDECL_TESTBED/slurm/ (default /tmp/xqdecl-testbed/slurm).
set -euo pipefail
SVC=slurm
. "$(dirname "$0")/lib.sh"

S=$TB/slurm
NODE=$(hostname -s)
CONF=/etc/slurm/slurm.conf

cluster_ok() {
  command -v scontrol >/dev/null || return 1
  pidfile_alive "$S/slurmctld.pid" && pidfile_alive "$S/slurmd.pid" || return 1
  timeout 10 scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
  local st
  st=$(timeout 10 sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null) || return 1
  case $st in idle | mix | alloc | comp) return 0 ;; *) return 1 ;; esac
}

if [ "${1:-}" = --check ]; then
  cluster_ok && exit 0
  echo "slurm: not running (or the node is not usable)" >&2
  exit 1
fi

ensure_packages munge slurmctld slurmd slurm-client
ensure_hostname_resolves
mkdir -p "$S/ctld" "$S/d" /etc/slurm

if [ "${SLURM_RESET:-0}" = 1 ]; then
  stop_pidfile slurmd "$S/slurmd.pid"
  stop_pidfile slurmctld "$S/slurmctld.pid"
  rm -rf "${S:?}/ctld"/* "${S:?}/d"/*
fi

# ---- munge: the authentication every Slurm daemon and client goes through -----
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
    head -c 1024 /dev/urandom >/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge /var/lib/munge /var/log/munge
if ! pidfile_alive /run/munge/munged.pid; then
  rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
  runuser -u munge -- /usr/sbin/munged || die "munged did not start" /var/log/munge/munged.log
fi
munge_ok() { munge -n </dev/null | unmunge >/dev/null; }
retry_until 10 munge_ok || die "munge credentials do not round-trip" /var/log/munge/munged.log

# ---- slurm.conf -----------------------------------------------------------------
CPUS=${SLURM_CPUS:-32}
# whole GiB, one left out: MemTotal wobbles a little here, the config must not
MEM_MB=$((($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1048576 - 1) * 1024))
changed=0
write_if_changed "$CONF" <<EOF && changed=1
# Written by xqdecl's scripts/testbed/slurm.sh: a one-node test cluster.
ClusterName=xqdecl
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$S/ctld
SlurmdSpoolDir=$S/d
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups, no systemd here: track processes by /proc, bind no tasks
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: finished jobs are read back with 'sacct -c' from the jobcomp file
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$S/jobcomp.log
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# the default batch_sched_delay=3 holds every batch job back ~3 s
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MailProg=/bin/true
MaxArraySize=100001
MaxJobCount=1000000
MinJobAge=300
ReturnToService=2
InactiveLimit=0
KillWait=5
Waittime=0
SlurmdTimeout=300
SlurmctldTimeout=120
# the node may claim more CPUs than the machine has (SLURM_CPUS)
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF

chmod 644 "$CONF"

# ---- daemons ----------------------------------------------------------------------
if ((changed)) && pidfile_alive "$S/slurmctld.pid"; then
  say "configuration changed: restarting the daemons"
  stop_pidfile slurmd "$S/slurmd.pid"
  stop_pidfile slurmctld "$S/slurmctld.pid"
fi
if ! pidfile_alive "$S/slurmctld.pid"; then
  rm -f "$S/slurmctld.pid"
  # forks and detaches by itself; -i: skip unreadable state instead of refusing to start
  /usr/sbin/slurmctld -i </dev/null >>"$S/slurmctld.out" 2>&1 ||
    die "slurmctld exited at start" "$S/slurmctld.log"
fi
ping_ok() { scontrol ping | grep -q 'is UP'; }
wait_daemon 30 "$S/slurmctld.pid" ping_ok || die "slurmctld does not answer 'scontrol ping'" "$S/slurmctld.log"
if ! pidfile_alive "$S/slurmd.pid"; then
  rm -f "$S/slurmd.pid"
  /usr/sbin/slurmd </dev/null >>"$S/slurmd.out" 2>&1 || die "slurmd exited at start" "$S/slurmd.log"
fi
node_ok() {
  case $(sinfo -h -N -n "$NODE" -o '%t') in idle | mix | alloc | comp) return 0 ;; esac
  return 1
}
if ! retry_until 20 node_ok; then
  scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
  retry_until 10 node_ok || die "node $NODE is not usable: $(sinfo -h -N -o '%t %E')" "$S/slurmd.log"
fi
cluster_ok || die "daemons not healthy after start" "$S/slurmctld.log"

cat >"$S/info" <<EOF
node=$NODE
cpus=$CPUS
partition=debug
conf=$CONF
jobcomp=$S/jobcomp.log
EOF
say "ready: node=$NODE cpus=$CPUS mem=${MEM_MB}M slurmctld=$(cat "$S/slurmctld.pid") slurmd=$(cat "$S/slurmd.pid")"
