#!/usr/bin/env bash
# Stop the testbed services, each through the PID in its pid file (never by name).
#
#   scripts/testbed/teardown.sh [slurm] [sge] [ssh] [podman]    (default: all)
#
# PURGE=1 also removes their job state and the folder $XQDECL_TESTBED/<service>.
# Installed packages, users and /etc configs stay: a later set-up is then quick.
set -uo pipefail
SVC=teardown
. "$(dirname "$0")/lib.sh"
trap - ERR

services=${*:-slurm sge ssh podman}
for svc in $services; do
  case $svc in
  slurm)
    command -v scancel >/dev/null && timeout 10 scancel --user=root >/dev/null 2>&1
    stop_pidfile slurmd "$TB/slurm/slurmd.pid"
    stop_pidfile slurmctld "$TB/slurm/slurmctld.pid"
    stop_pidfile munged /run/munge/munged.pid
    [ "${PURGE:-0}" = 1 ] && rm -rf "${TB:?}/slurm"
    ;;
  sge)
    export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
    command -v qdel >/dev/null && timeout 10 qdel -u '*' >/dev/null 2>&1
    for f in /var/spool/gridengine/execd/*/execd.pid; do
      [ -e "$f" ] && stop_pidfile sge_execd "$f"
    done
    stop_pidfile sge_qmaster /var/spool/gridengine/qmaster/qmaster.pid
    rm -f "$TB/sge/configured" "$TB/sge/"*.pid
    [ "${PURGE:-0}" = 1 ] && rm -rf "${TB:?}/sge"
    ;;
  ssh)
    for sock in "$TB"/ssh/cm-*; do
      [ -S "$sock" ] && ssh -o ControlPath="$sock" -O exit placeholder >/dev/null 2>&1
    done
    stop_pidfile sshd "$TB/ssh/sshd.pid"
    if [ "${PURGE:-0}" = 1 ]; then
      sed -i "\\|^Include $TB/ssh/ssh_config\$|d" /root/.ssh/config 2>/dev/null
      rm -rf "${TB:?}/ssh"
    fi
    ;;
  podman)
    if command -v podman >/dev/null; then
      podman rm -af -t 2 >/dev/null 2>&1 && say "podman: containers removed"
    fi
    [ "${PURGE:-0}" = 1 ] && rm -rf "${TB:?}/podman"
    ;;
  *)
    say "unknown service '$svc' (known: slurm sge ssh podman)"
    exit 2
    ;;
  esac
done
exit 0
