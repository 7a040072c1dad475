# Shared helpers for the testbed scripts (sourced, never run on its own).
#
# Every script keeps its state under $TB (env XQDECL_TESTBED, default
# /tmp/xqdecl-testbed): $TB/<service>/ for configs, keys and logs, and
# $TB/<service>/info for the facts tests need (KEY=VALUE lines).
# Daemons are stopped only through the PID in their pid file, never by name.

export DEBIAN_FRONTEND=noninteractive
TB=${XQDECL_TESTBED:-/tmp/xqdecl-testbed}
SVC=${SVC:-testbed}
mkdir -p "$TB"

say() { printf '%s: %s\n' "$SVC" "$*" >&2; }

# Stop with one clear line (and the tail of a log, when one is named).
die() {
  local msg=$1 log=${2:-}
  printf '%s: COULD NOT START: %s\n' "$SVC" "$msg" >&2
  if [ -n "$log" ] && [ -s "$log" ]; then
    printf -- '--- last lines of %s ---\n' "$log" >&2
    tail -n 15 "$log" >&2
  fi
  exit 1
}

# Any unexpected failing command also ends the script with a readable message.
trap 'rc=$?; printf "%s: COULD NOT START: command failed (exit %s) at %s:%s: %s\n" \
  "$SVC" "$rc" "${BASH_SOURCE[0]##*/}" "$LINENO" "$BASH_COMMAND" >&2' ERR

# A zombie is dead: `kill -0` would say otherwise, `ps -o stat=` does not.
pid_alive() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]
}

# pidfile_alive FILE: the file names a live process.
pidfile_alive() {
  [ -s "$1" ] && pid_alive "$(cat "$1" 2>/dev/null)"
}

# stop_pidfile LABEL FILE: SIGTERM, up to 15 s of grace, then SIGKILL.
stop_pidfile() {
  local label=$1 f=$2 pid
  if ! pidfile_alive "$f"; then
    rm -f "$f"
    return 0
  fi
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  if pid_alive "$pid"; then
    kill -9 "$pid" 2>/dev/null || true
    say "$label: killed $pid"
  else
    say "$label: stopped $pid"
  fi
  rm -f "$f"
}

# retry_until SECONDS CMD...: run CMD every 0.2 s until it succeeds or time is up.
retry_until() {
  local limit=$1 start=$SECONDS
  shift
  while ! "$@" >/dev/null 2>&1; do
    ((SECONDS - start < limit)) || return 1
    sleep 0.2
  done
}

# wait_daemon SECONDS PIDFILE CMD...: like retry_until, but gives up at once
# when the daemon of PIDFILE has died (after its pid file appeared).
wait_daemon() {
  local limit=$1 f=$2 start=$SECONDS
  shift 2
  while ! "$@" >/dev/null 2>&1; do
    if [ -s "$f" ] && ! pidfile_alive "$f"; then return 1; fi
    ((SECONDS - start < limit)) || return 1
    sleep 0.2
  done
}

# ensure_packages PKG...: install the Debian packages that are not installed yet.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "packages missing (${missing[*]}) and no apt-get here"
  say "installing ${missing[*]}"
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -print -quit 2>/dev/null)" ]; then
    apt-get update -qq >/dev/null || die "apt-get update failed"
  fi
  local opts=(-y -qq --no-install-recommends -o DPkg::Lock::Timeout=300)
  if ! apt-get install "${opts[@]}" "${missing[@]}" >"$TB/apt-$SVC.log" 2>&1; then
    # stale package lists give 404s: refresh once and try again
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install "${opts[@]}" "${missing[@]}" >"$TB/apt-$SVC.log" 2>&1 ||
      die "apt-get install ${missing[*]} failed" "$TB/apt-$SVC.log"
  fi
}

# write_if_changed FILE: stdin replaces FILE only when different; status 0 = changed.
write_if_changed() {
  local f=$1 tmp
  tmp=$(mktemp "$f.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$f"; then
    rm -f "$tmp"
    return 1
  fi
  mv "$tmp" "$f"
  return 0
}

# Make the short host name resolve (daemons look themselves up by it).
ensure_hostname_resolves() {
  local h
  h=$(hostname -s)
  getent hosts "$h" >/dev/null || echo "127.0.0.1 $h" >>/etc/hosts
}
