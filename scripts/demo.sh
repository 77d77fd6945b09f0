#!/usr/bin/env bash
# The main job on an embedded default: traces a real qemu-io workload on a
# fresh qcow2 image with the collector and prints the analyzer's report.
#
#   scripts/demo.sh                 # text report
#   scripts/demo.sh --format json   # JSON report
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

# The workload: the first write allocates an L2 table, the second a new data
# cluster, the third overwrites an allocated cluster; each is followed by a flush.
echo "demo: tracing qemu-io -t writeback: write 0 4k, flush, write 64k 4k, flush, write 0 4k, flush" >&2
"$products/collector" -o "$work/demo.syncamp" -- "$bin/qemu-io" -f qcow2 -t writeback \
  -c 'write 0 4k' -c flush -c 'write 64k 4k' -c flush -c 'write 0 4k' -c flush \
  "$work/disk.qcow2" >/dev/null
"$products/analyzer" report "$work/demo.syncamp" "$@"
