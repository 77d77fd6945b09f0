#!/usr/bin/env bash
# Runs Debian's libvirtd in the foreground, as root, in a mount namespace of its own whose
# libvirt folders are DIR's: the end-to-end tests start a real libvirt this way on machines
# without systemd, and it clashes with nothing (a system libvirtd, another test run).
#
#   scripts/private-libvirtd.sh DIR        # as root; SIGTERM stops it
#
# DIR gets etc/ (libvirtd.conf, qemu.conf), run/, lib/, cache/, log/, bound over
# /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt
# inside the namespace only. So virsh and `collector --domain NAME`, run in the same namespace
# (nsenter -t PID -m, PID being this script's, which becomes libvirtd), find libvirt at its
# usual paths: /run/libvirt/libvirt-sock, /run/libvirt/qemu/NAME.pid and NAME.xml. Outside,
# the same files are in DIR/run. The domains' QEMUs run in the namespace too.
#
# qemu.conf runs QEMU as root with no security driver, no cgroups, no /dev namespace and its
# console logs written by QEMU itself (no virtlogd): what a machine without systemd,
# AppArmor or SELinux allows. libvirt's QEMU driver looks its default user up
# (libvirt-qemu, which Debian's libvirt-daemon-system package creates) before it reads
# qemu.conf, so the namespace also gets a copy of /etc/passwd and /etc/group that has it.
#
# Only empty mount points are made outside (/run/libvirt, /var/lib/libvirt, ... as
# libvirt-daemon-system would make them).
set -euo pipefail

if [ "${1:-}" = --inside ]; then
  d=$2
  mount --bind "$d/passwd" /etc/passwd
  mount --bind "$d/group" /etc/group
  mount --bind "$d/etc" /etc/libvirt
  for f in run lib cache log; do
    case $f in run) m=/run/libvirt ;; *) m=/var/$f/libvirt ;; esac
    mount --bind "$d/$f" "$m"
  done
  exec /usr/sbin/libvirtd
fi

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root (mount namespace, libvirtd's system mode)" >&2; exit 1; }
[ -x /usr/sbin/libvirtd ] || { echo "$0: no /usr/sbin/libvirtd (apt-get install libvirt-daemon libvirt-daemon-driver-qemu; scripts/testbed.sh --deps does)" >&2; exit 1; }
d=$(realpath "$1")
mkdir -p "$d/etc" "$d/run" "$d/lib" "$d/cache" "$d/log"
cat >"$d/etc/libvirtd.conf" <<'EOF'
# Only root reaches the socket (it is in a private namespace): no polkit.
auth_unix_rw = "none"
auth_unix_ro = "none"
log_level = 3
EOF
cat >"$d/etc/qemu.conf" <<'EOF'
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
EOF
cp /etc/passwd "$d/passwd"
cp /etc/group "$d/group"
getent passwd libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>"$d/passwd"
getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$d/group"
mkdir -p /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt
# unshare execs: this pid stays the daemon's, whose namespace nsenter -t PID -m enters.
exec unshare --mount --propagation private "$0" --inside "$d"
