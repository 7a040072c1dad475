#!/usr/bin/env bash
# A private sshd on 127.0.0.1 for xqdecl's tests: key-only logins for root and
# a plain user. Leaves the system's sshd (port 22, /etc/ssh) alone.
#
#   scripts/testbed/ssh.sh            install what is missing, (re)start sshd
#   scripts/testbed/ssh.sh --check    only say whether a login works (exit 0/1)
#
# Knobs: SSH_PORT (default 2222), SSH_TEST_USER (default xqtest).
# Keys, configs, log, pid file, info: $XQDECL_TESTBED/ssh/. Client config with the
# host aliases `testbed` (root) and `testbed-user`: $XQDECL_TESTBED/ssh/ssh_config,
# also Include-d from /root/.ssh/config so `ssh testbed` works without -F.
set -euo pipefail
SVC=ssh
. "$(dirname "$0")/lib.sh"

D=$TB/ssh
PORT=${SSH_PORT:-2222}
TUSER=${SSH_TEST_USER:-xqtest}
mkdir -p "$D"
chmod 700 "$D"

login_ok() {  # login_ok ALIAS: a non-multiplexed login runs `true`
  timeout 10 ssh -F "$D/ssh_config" -o ControlMaster=no -o ConnectTimeout=5 "$1" true </dev/null 2>/dev/null
}
server_ok() {
  command -v ssh >/dev/null && [ -s "$D/ssh_config" ] && pidfile_alive "$D/sshd.pid" &&
    login_ok testbed && login_ok testbed-user
}

if [ "${1:-}" = --check ]; then
  server_ok && exit 0
  echo "ssh: no working login on 127.0.0.1:$PORT" >&2
  exit 1
fi

ensure_packages openssh-server openssh-client

# ---- keys and users ---------------------------------------------------------------
changed=0 # anything sshd reads: a running sshd must reload
if [ ! -s "$D/host_ed25519" ]; then
  rm -f "$D/host_ed25519" "$D/host_ed25519.pub"
  ssh-keygen -q -t ed25519 -N '' -C xqdecl-testbed-host -f "$D/host_ed25519"
  changed=1
fi
[ -s "$D/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C xqdecl-testbed-client -f "$D/id_ed25519"
# the test user's password field must be '*' (no password), not '!' (locked): with
# UsePAM no, sshd refuses even key logins to a locked account
id "$TUSER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$TUSER"
usermod -p '*' "$TUSER"
pub=$(cut -d' ' -f1,2 "$D/id_ed25519.pub")
for u in root "$TUSER"; do
  home=$(getent passwd "$u" | cut -d: -f6)
  grp=$(id -gn "$u")
  install -d -m 700 -o "$u" -g "$grp" "$home/.ssh"
  touch "$home/.ssh/authorized_keys"
  grep -qF "$pub" "$home/.ssh/authorized_keys" || cat "$D/id_ed25519.pub" >>"$home/.ssh/authorized_keys"
  chown "$u:$grp" "$home/.ssh/authorized_keys"
  chmod 600 "$home/.ssh/authorized_keys"
done

# ---- server and client configuration -------------------------------------------------
write_if_changed "$D/sshd_config" <<EOF && changed=1
# Written by xqdecl's scripts/testbed/ssh.sh
Port $PORT
ListenAddress 127.0.0.1
HostKey $D/host_ed25519
PidFile $D/sshd.pid
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
StrictModes yes
# a multiplexed client opens many sessions on one connection; many jobs start at once
MaxSessions 200
MaxStartups 200:30:400
LogLevel INFO
AcceptEnv LANG LC_* XQDECL_*
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
write_if_changed "$D/ssh_config" <<EOF || true
# Written by xqdecl's scripts/testbed/ssh.sh: ssh -F $D/ssh_config testbed
Host testbed testbed-root
  HostName 127.0.0.1
  Port $PORT
  User root
Host testbed-user
  HostName 127.0.0.1
  Port $PORT
  User $TUSER
Host testbed testbed-root testbed-user
  IdentityFile $D/id_ed25519
  IdentitiesOnly yes
  BatchMode yes
  UserKnownHostsFile $D/known_hosts
  StrictHostKeyChecking yes
  ControlMaster auto
  ControlPath $D/cm-%C
  ControlPersist 60
EOF
hostkey=$(cut -d' ' -f1,2 "$D/host_ed25519.pub")
printf '[127.0.0.1]:%s %s\n[localhost]:%s %s\n' "$PORT" "$hostkey" "$PORT" "$hostkey" |
  write_if_changed "$D/known_hosts" || true
chmod 644 "$D/known_hosts" "$D/ssh_config"
install -d -m 700 /root/.ssh
touch /root/.ssh/config
if ! grep -qxF "Include $D/ssh_config" /root/.ssh/config; then
  { echo "Include $D/ssh_config"; cat /root/.ssh/config; } >/root/.ssh/config.xqdecl-new
  mv /root/.ssh/config.xqdecl-new /root/.ssh/config
fi
chmod 600 /root/.ssh/config

# ---- start (or reload) ------------------------------------------------------------------
install -d -m 755 /run/sshd # privilege separation directory, normally made by systemd
/usr/sbin/sshd -t -f "$D/sshd_config" 2>"$D/sshd-test.log" || die "sshd rejects its configuration" "$D/sshd-test.log"
if pidfile_alive "$D/sshd.pid"; then
  if ((changed)); then
    kill -HUP "$(cat "$D/sshd.pid")" # re-reads its config, keeps its pid
    sleep 0.3
  fi
else
  rm -f "$D/sshd.pid"
  # forks and detaches by itself; -E: log to a file instead of syslog
  /usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log" </dev/null || die "sshd exited at start" "$D/sshd.log"
fi
retry_until 10 login_ok testbed || die "root cannot log in on 127.0.0.1:$PORT" "$D/sshd.log"
retry_until 10 login_ok testbed-user || die "$TUSER cannot log in on 127.0.0.1:$PORT" "$D/sshd.log"

cat >"$D/info" <<EOF
host=127.0.0.1
port=$PORT
user=root
test_user=$TUSER
keyfile=$D/id_ed25519
known_hosts=$D/known_hosts
ssh_config=$D/ssh_config
EOF
say "ready: 127.0.0.1:$PORT pid=$(cat "$D/sshd.pid") users=root,$TUSER key=$D/id_ed25519"
