#!/usr/bin/env bash
# The main job on an embedded default: traces a real qemu-io workload on a
# fresh qcow2 image with the collector and prints the analyzer's report.
#
#   scripts/demo.sh                 # text report
#   scripts/demo.sh --format json   # JSON report
#   scripts/demo.sh --vm            # a Linux guest doing 4 KiB writes + fsync on a virtio disk,
#                                   # traced by pid while the VM runs
#
# Builds what is missing first (apt packages, the QEMU testbed, syncamp). Root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "demo: the collector loads BPF programs and needs root; run: sudo $0" >&2
  exit 1
fi
bin=$(scripts/testbed.sh)
[ -e /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing
swift build -c release >&2
products=$(swift build -c release --show-bin-path)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin/qemu-img" create -q -f qcow2 "$work/disk.qcow2" 1G

if [ "${1:-}" = "--vm" ]; then
  shift
  guest="$(dirname "$bin")/guest"
  wait_for() {  # FILE TEXT SECONDS
    for _ in $(seq $(( $3 * 10 ))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    echo "demo: timed out waiting for '$2' in $1" >&2; return 1
  }
  mkfifo "$work/console"
  "$bin/qemu-system-x86_64" -L "$guest/fw" -accel "${SYNCAMP_VM_ACCEL:-tcg}" -m 256 -nographic -no-reboot \
    -vga none -nic none -kernel "$guest/vmlinuz" -initrd "$guest/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 syncamp.workload=raw-alloc syncamp.n=10" \
    -drive "file=$work/disk.qcow2,format=qcow2,if=none,id=disk0,cache=writeback,aio=threads" \
    -device virtio-blk-pci,drive=disk0 <"$work/console" >"$work/vm.log" 2>&1 &
  qemu=$!
  exec 3>"$work/console"
  echo "demo: booting the guest (pid $qemu)" >&2
  wait_for "$work/vm.log" SYNCAMP-READY 180
  "$products/collector" -p "$qemu" -o "$work/vm.syncamp" 2>"$work/collector.log" &
  collector=$!
  wait_for "$work/collector.log" "fdatasync/fsync traced" 60
  echo "demo: the guest writes 4 KiB to 10 new clusters of /dev/vda, each followed by fsync" >&2
  echo go >&3
  wait_for "$work/vm.log" SYNCAMP-DONE 300
  kill -INT "$collector"; wait "$collector"
  echo bye >&3; exec 3>&-; wait "$qemu" || true
  "$products/analyzer" report "$work/vm.syncamp" "$@"
  exit 0
fi

# The workload: the first write allocates an L2 table, the second a new data
# cluster, the third overwrites an allocated cluster; each is followed by a flush.
echo "demo: tracing qemu-io -t writeback: write 0 4k, flush, write 64k 4k, flush, write 0 4k, flush" >&2
"$products/collector" -o "$work/demo.syncamp" -- "$bin/qemu-io" -f qcow2 -t writeback \
  -c 'write 0 4k' -c flush -c 'write 64k 4k' -c flush -c 'write 0 4k' -c flush \
  "$work/disk.qcow2" >/dev/null
"$products/analyzer" report "$work/demo.syncamp" "$@"
