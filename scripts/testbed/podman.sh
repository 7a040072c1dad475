#!/usr/bin/env bash
# Rootful podman for xqdecl's container tests, with no registry and no systemd,
# plus bubblewrap.
#
#   scripts/testbed/podman.sh            install what is missing, build the image
#   scripts/testbed/podman.sh --check    only say whether a container runs (exit 0/1)
#
# There is no registry to pull from: the image is made here from Debian's
# busybox-static and bash-static and tagged localhost/busybox:latest,
# docker.io/library/busybox:latest and docker.io/library/alpine:latest, so specs
# naming `alpine` or `busybox` resolve locally. Knob: PODMAN_RUNTIME (default runc:
# crun refuses this machine's mixed cgroup v1/v2 layout).
# Engine config: /etc/containers/; rootfs, tarball, info: $XQDECL_TESTBED/podman/.
set -euo pipefail
SVC=podman
. "$(dirname "$0")/lib.sh"

D=$TB/podman
mkdir -p "$D"
IMAGE_REV=xq1

image_ok() {
  [ "$(podman image inspect --format '{{index .Config.Labels "xqdecl.testbed"}}' localhost/busybox:latest 2>/dev/null)" = "$IMAGE_REV" ]
}
runtime_ok() {
  command -v podman >/dev/null && image_ok &&
    timeout 60 podman run --rm docker.io/library/alpine true >/dev/null 2>&1
}

if [ "${1:-}" = --check ]; then
  runtime_ok && exit 0
  echo "podman: cannot run a container from docker.io/library/alpine" >&2
  exit 1
fi

ensure_packages podman runc bubblewrap busybox-static bash-static uidmap

# ---- engine configuration -----------------------------------------------------------
# No systemd: cgroupfs and a file event log. Root here may not raise rlimits to
# podman's defaults (1M open files), so pin them under the hard limits. Host
# network by default: no bridge, no iptables changes.
cap() { local v=$1; if [ "$v" = unlimited ] || [ "$v" -gt 16384 ]; then echo 16384; else echo "$v"; fi; }
NOFILE=$(cap "$(ulimit -Hn)")
NPROC=$(cap "$(ulimit -Hu)")
mkdir -p /etc/containers
write_if_changed /etc/containers/containers.conf <<EOF || true
# Written by xqdecl's scripts/testbed/podman.sh
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
netns = "host"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "${PODMAN_RUNTIME:-runc}"
EOF
write_if_changed /etc/containers/storage.conf <<'EOF' || true
# Written by xqdecl's scripts/testbed/podman.sh
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF

# ---- the local image ----------------------------------------------------------------
if ! image_ok; then
  R=$D/rootfs
  rm -rf "$R"
  mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,var/tmp,proc,sys,dev,root}
  chmod 1777 "$R/tmp" "$R/var/tmp"
  cp /bin/busybox "$R/bin/busybox"
  cp /bin/bash-static "$R/bin/bash"
  for applet in $("$R/bin/busybox" --list); do
    [ -e "$R/bin/$applet" ] || ln -s busybox "$R/bin/$applet"
  done
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/:/bin/sh' >"$R/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$R/etc/group"
  tar -C "$R" -cf "$D/rootfs.tar" .
  podman import --quiet --change "LABEL xqdecl.testbed=$IMAGE_REV" --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' "$D/rootfs.tar" localhost/busybox:latest \
    >"$D/import.log" 2>&1 || die "podman import failed" "$D/import.log"
  podman image prune -f >/dev/null 2>&1 || true
fi
podman tag localhost/busybox:latest docker.io/library/busybox:latest docker.io/library/alpine:latest

# ---- smoke tests --------------------------------------------------------------------------
podman run --rm docker.io/library/alpine true >"$D/smoke.log" 2>&1 ||
  die "podman cannot run a container" "$D/smoke.log"
podman run --rm -v "$TB:/mnt/tb" -w /mnt/tb localhost/busybox bash -c 'test -d /mnt/tb' >"$D/smoke.log" 2>&1 ||
  die "podman cannot bind-mount a host folder" "$D/smoke.log"
bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp --unshare-all --die-with-parent true \
  >"$D/smoke.log" 2>&1 || say "warning: bubblewrap does not work here (podman does)"

cat >"$D/info" <<EOF
runtime=podman
image=docker.io/library/alpine:latest
version=$(podman --version | awk '{print $NF}')
oci_runtime=${PODMAN_RUNTIME:-runc}
EOF
say "ready: $(podman --version), runtime ${PODMAN_RUNTIME:-runc}, image docker.io/library/alpine (busybox + bash)"
