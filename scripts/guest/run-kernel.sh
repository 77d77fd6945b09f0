#!/usr/bin/env bash
# Boots one of Debian's kernels (a folder made by scripts/testbed.sh: .testbed/kernels/SUITE)
# under TCG with an initramfs holding the collector, the testbed's qemu-io and qemu-img,
# strace and their libraries, and runs scripts/guest/kernel-init.sh there: each scenario
# traced with --kernel-probe kprobe and tracepoint, with ext4 not loaded (images on tmpfs)
# and loaded (images on ext4), and once under strace. The guest's results (captures,
# collector logs and exit statuses, strace logs, tracefs format files) land in OUT.
#
#   scripts/guest/run-kernel.sh KERNEL_DIR OUT [COLLECTOR]
#
# COLLECTOR defaults to .build/release/collector (build it with
# `swift build -c release --static-swift-stdlib --product collector`: it then needs
# only glibc, libbpf, libelf and libz, which go into the initramfs with it).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
kdir=$1; out=$2; collector=${3:-$top/.build/release/collector}
bed="$top/.testbed"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for f in "$kdir/vmlinuz" "$bed/guest/busybox" "$bed/bin/qemu-system-x86_64" "$bed/bin/qemu-io" "$collector"; do
  [ -e "$f" ] || { echo "run-kernel: missing $f (run scripts/testbed.sh, and build the collector)" >&2; exit 2; }
done

# Smaller copies: no debug info (the symbol tables stay, which the collector reads).
mkdir -p "$work/bin"
strip --strip-debug -o "$work/bin/collector" "$collector"
objcopy --strip-debug "$bed/bin/qemu-io" "$work/bin/qemu-io"
objcopy --strip-debug "$bed/bin/qemu-img" "$work/bin/qemu-img"
cp /usr/bin/strace "$work/bin/strace"

map=("init=$top/scripts/guest/kernel-init.sh" "bin/busybox=$bed/guest/busybox")
for b in "$work"/bin/*; do map+=("opt/syncamp/$(basename "$b")=$b"); done
res="$(dirname "$collector")/syncamp_Collector.resources"
for r in "$res"/*; do map+=("opt/syncamp/syncamp_Collector.resources/$(basename "$r")=$r"); done
for m in "$kdir"/modules/*; do map+=("lib/modules/$(basename "$m")=$m"); done
# Every shared library the programs load, at the path the dynamic linker looks for it.
while read -r lib; do
  map+=("${lib#/}=$(readlink -f "$lib")")
done < <(for b in "$work"/bin/*; do ldd "$b"; done | grep -oE '/[^ ]+\.so[^ ]*' | sort -u)
python3 "$top/scripts/guest/mkinitramfs.py" --map "$work/initrd.gz" "${map[@]}"

truncate -s 256M "$work/ext4.img"
mkfs.ext4 -q -F "$work/ext4.img"
truncate -s 64M "$work/out.img"

set +e
timeout 900 "$bed/bin/qemu-system-x86_64" -L "$bed/guest/fw" -accel tcg -cpu max -smp 1 -m 1536 \
  -nographic -no-reboot -vga none -nic none \
  -kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz" -append "console=ttyS0 quiet loglevel=3 panic=-1" \
  -drive "file=$work/ext4.img,format=raw,if=virtio" -drive "file=$work/out.img,format=raw,if=virtio" \
  </dev/null >"$out/console.log" 2>&1
status=$?
set -e
tar -xf "$work/out.img" -C "$out" 2>/dev/null || true
if ! grep -q SYNCAMP-GUEST-DONE "$out/console.log"; then
  echo "run-kernel: the guest did not finish (qemu exit $status); see $out/console.log" >&2
  exit 1
fi
