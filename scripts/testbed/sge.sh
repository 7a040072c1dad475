#!/usr/bin/env bash
# A one-host Son of Grid Engine cell on loopback for xqdecl's tests:
# sge_qmaster + sge_execd, queue all.q, parallel environment smp, arrays up to 100000.
#
#   scripts/testbed/sge.sh            install what is missing, (re)start what is down
#   scripts/testbed/sge.sh --check    only say whether the cell answers (exit 0/1)
#
# Knobs: SGE_SLOTS (slots of all.q, default 32), SGE_RESET=1 (stop the daemons first).
# The cell lives where Debian's packages put it (SGE_ROOT=/var/lib/gridengine,
# spool /var/spool/gridengine); logs, pid links and info: $XQDECL_TESTBED/sge/.
set -euo pipefail
SVC=sge
. "$(dirname "$0")/lib.sh"

S=$TB/sge
mkdir -p "$S"
HOST=$(hostname -s)
SLOTS=${SGE_SLOTS:-32}
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
export SGE_QMASTER_PORT=6444 SGE_EXECD_PORT=6445
SPOOL=/var/spool/gridengine
COMMON=$SGE_ROOT/$SGE_CELL/common

# execd names its pid file after its own (unaliased) host name: find the live one
execd_pidfile() {
  local f
  for f in "$SPOOL"/execd/*/execd.pid; do
    pidfile_alive "$f" && { echo "$f"; return 0; }
  done
  return 1
}
queue_ok() {
  # the queue instance exists and is not in state u(nknown), a(larm), E(rror) or d(isabled)
  local line
  line=$(timeout 10 qstat -f -q "all.q@$HOST" 2>/dev/null | awk -v q="all.q@$HOST" '$1 == q') || return 1
  [ -n "$line" ] || return 1
  [ "$(awk '{print NF}' <<<"$line")" -le 5 ]
}
cell_ok() {
  command -v qstat >/dev/null || return 1
  pidfile_alive "$SPOOL/qmaster/qmaster.pid" && execd_pidfile >/dev/null || return 1
  queue_ok
}

if [ "${1:-}" = --check ]; then
  cell_ok && exit 0
  echo "sge: not running (or queue all.q is not usable)" >&2
  exit 1
fi

# healthy and configured by this very revision of the script: nothing to do
STAMP="rev=1 host=$HOST slots=$SLOTS"
if cell_ok && [ "$(cat "$S/configured" 2>/dev/null)" = "$STAMP" ]; then
  say "ready (already running): host=$HOST slots=$SLOTS"
  exit 0
fi

ensure_hostname_resolves
if ! dpkg-query -W -f='${Status}' gridengine-master 2>/dev/null | grep -q 'install ok installed'; then
  # answer the package's questions up front: this host is the master of cell "default"
  debconf-set-selections <<EOF
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string $SGE_CELL
gridengine-common shared/gridenginemaster string $HOST
EOF
fi
ensure_packages gridengine-master gridengine-exec gridengine-client

# the package's postinst names the master and creates the spool only on a first install
echo "$HOST" >"$COMMON/act_qmaster"
chown sgeadmin:sgeadmin "$COMMON/act_qmaster"
if [ ! -e "$SPOOL/spooldb/sge" ]; then
  install -d -o sgeadmin -g sgeadmin "$SPOOL/qmaster" "$SPOOL/qmaster/job_scripts" "$SPOOL/spooldb"
  su -s /bin/sh -c "/usr/share/gridengine/scripts/init_cluster $SGE_ROOT $SGE_CELL $SPOOL/spooldb sgeadmin" \
    sgeadmin >"$S/init_cluster.log" 2>&1 || die "init_cluster failed" "$S/init_cluster.log"
fi
install -d -o sgeadmin -g sgeadmin /var/run/gridengine "$SPOOL/execd"

# SGE checks that the name a client claims matches the reverse lookup of its
# address; on loopback 127.0.0.1 resolves to "localhost" first. Declare every
# loopback name an alias of this host.
names=$({ getent hosts 127.0.0.1; grep -E '^127\.' /etc/hosts; } | awk '{for (i = 2; i <= NF; i++) print $i}' |
  grep -vx "$HOST" | sort -u | tr '\n' ' ')
echo "$HOST $names" >"$COMMON/host_aliases"

if [ "${SGE_RESET:-0}" = 1 ]; then
  f=$(execd_pidfile) && stop_pidfile sge_execd "$f"
  stop_pidfile sge_qmaster "$SPOOL/qmaster/qmaster.pid"
fi

# ---- qmaster ------------------------------------------------------------------------
if ! pidfile_alive "$SPOOL/qmaster/qmaster.pid"; then
  setsid /usr/sbin/sge_qmaster </dev/null >>"$S/qmaster.out" 2>&1 ||
    die "sge_qmaster exited at start" "$SPOOL/qmaster/messages"
fi
retry_until 30 qconf -sh || die "qmaster does not answer 'qconf -sh'" "$SPOOL/qmaster/messages"
ln -sfn "$SPOOL/qmaster/qmaster.pid" "$S/qmaster.pid"

# ---- cell configuration, all from files (qconf -M*/-A*), no editor sessions --------
W=$(mktemp -d)
qconf -sh 2>/dev/null | grep -qx "$HOST" || qconf -ah "$HOST" >/dev/null
qconf -ss 2>/dev/null | grep -qx "$HOST" || qconf -as "$HOST" >/dev/null
# qconf -s* continues long values with a trailing backslash; join them first
join_lines() { sed -e ':again' -e '/\\$/N; s/\\\n[[:space:]]*/ /; t again'; }
qconf -sconf global | join_lines >"$W/global"
# root may run jobs; quick load reports; big arrays (max_aj_instances 0 would mean zero)
sed -i -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' \
  -e 's/^load_report_time .*/load_report_time 00:00:05/' \
  -e 's/^max_aj_tasks .*/max_aj_tasks 100001/' \
  -e 's/^max_aj_instances .*/max_aj_instances 100000/' \
  -e 's|^mailer .*|mailer /bin/true|' \
  -e 's/^reporting_params .*/reporting_params accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00/' \
  -e '/^[a-z_]*=/d' "$W/global"
qconf -Mconf "$W/global" >/dev/null 2>&1 || true # "not modified" is not a failure
# scheduler: run every second and right after a submit or a finish
qconf -ssconf | join_lines >"$W/sched"
sed -i -e 's/^schedule_interval .*/schedule_interval 0:0:1/' \
  -e 's/^flush_submit_sec .*/flush_submit_sec 1/' \
  -e 's/^flush_finish_sec .*/flush_finish_sec 1/' "$W/sched"
qconf -Msconf "$W/sched" >/dev/null 2>&1 || true
if ! qconf -sel 2>/dev/null | grep -qx "$HOST"; then
  printf '%s\n' "hostname $HOST" "load_scaling NONE" "complex_values NONE" "user_lists NONE" \
    "xuser_lists NONE" "projects NONE" "xprojects NONE" "usage_scaling NONE" \
    "report_variables NONE" >"$W/exechost"
  qconf -Ae "$W/exechost" >/dev/null
fi
if ! qconf -shgrpl 2>/dev/null | grep -qx '@allhosts'; then
  printf 'group_name @allhosts\nhostlist %s\n' "$HOST" >"$W/hostgroup"
  qconf -Ahgrp "$W/hostgroup" >/dev/null
fi
if ! qconf -spl 2>/dev/null | grep -qx smp; then
  printf '%s\n' "pe_name smp" "slots 9999" "user_lists NONE" "xuser_lists NONE" \
    "start_proc_args NONE" "stop_proc_args NONE" 'allocation_rule $pe_slots' \
    "control_slaves FALSE" "job_is_first_task TRUE" "urgency_slots min" \
    "accounting_summary FALSE" "qsort_args NONE" >"$W/pe"
  qconf -Ap "$W/pe" >/dev/null
fi
# all.q: qconf -aq/-mq open $EDITOR on a template; our "editor" patches it in place:
# only PE smp (the template names PEs that do not exist), no load threshold (the
# queue would go to alarm state whenever the box is busy), honour the #! line.
cat >"$W/editor" <<EOF
#!/bin/sh
sed -i -e 's/^pe_list .*/pe_list smp/' -e 's/^hostlist .*/hostlist @allhosts/' \\
  -e 's/^slots .*/slots $SLOTS/' -e 's/^load_thresholds .*/load_thresholds NONE/' \\
  -e 's/^shell_start_mode .*/shell_start_mode unix_behavior/' "\$1"
EOF
chmod +x "$W/editor"
if qconf -sql 2>/dev/null | grep -qx all.q; then
  EDITOR=$W/editor qconf -mq all.q >/dev/null 2>&1 || true
else
  EDITOR=$W/editor qconf -aq all.q >/dev/null
fi
rm -rf "$W"

# ---- execd ----------------------------------------------------------------------------
if ! execd_pidfile >/dev/null; then
  setsid /usr/sbin/sge_execd </dev/null >>"$S/execd.out" 2>&1 || die "sge_execd exited at start" "$S/execd.out"
  retry_until 30 execd_pidfile || die "sge_execd wrote no live pid file" "$S/execd.out"
fi
ln -sfn "$(execd_pidfile)" "$S/execd.pid"
qmod -c "all.q@$HOST" >/dev/null 2>&1 || true # clear an error state left by an older run
retry_until 40 queue_ok || die "queue all.q@$HOST is not usable: $(qstat -f 2>&1 | tail -n 3 | tr '\n' ' ')" \
  "$SPOOL/qmaster/messages"

echo "$STAMP" >"$S/configured"
cat >"$S/info" <<EOF
host=$HOST
queue=all.q
slots=$SLOTS
sge_root=$SGE_ROOT
sge_cell=$SGE_CELL
EOF
say "ready: host=$HOST slots=$SLOTS qmaster=$(cat "$S/qmaster.pid") execd=$(cat "$S/execd.pid")"
