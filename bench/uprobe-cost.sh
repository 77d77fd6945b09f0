#!/usr/bin/env bash
# What one uprobe hit costs on this machine: an empty function called 100,000
# times, untraced and with a bpftrace uprobe that only counts (no output, no
# wakeup), median of 5 runs each. Prints microseconds per call.
#
#   bench/uprobe-cost.sh
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "uprobe-cost: needs root; run it with sudo" >&2; exit 1; }
command -v bpftrace >/dev/null || { echo "uprobe-cost: needs bpftrace (apt-get install bpftrace)" >&2; exit 1; }
[ -e /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing
work=$(mktemp -d /var/tmp/syncamp-uprobe.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/spin" "$top/bench/spin.c"
once() {  # traced? -> us per call
  rm -f "$work/fifo"; mkfifo "$work/fifo"
  "$work/spin" 100000 < "$work/fifo" > "$work/out" &
  local pid=$! bt=""
  exec 3> "$work/fifo"
  if [ "$1" = 1 ]; then
    bpftrace -B line -e "uprobe:$work/spin:spin_target { @hits = count(); } interval:ms:100 { printf(\"tick\n\"); }" \
      -p "$pid" > "$work/bt.out" 2>&1 3>&- &
    bt=$!
    for _ in $(seq 200); do grep -q tick "$work/bt.out" && break; sleep 0.05; done
  fi
  echo go >&3; exec 3>&-
  wait "$pid"
  [ -n "$bt" ] && { kill -INT "$bt"; wait "$bt" || true; }
  cat "$work/out"
}
plain=(); traced=()
for _ in 1 2 3 4 5; do plain+=("$(once 0)"); traced+=("$(once 1)"); done
python3 -c '
import statistics, sys
n = len(sys.argv) // 2
p = statistics.median(map(float, sys.argv[1:n + 1])); t = statistics.median(map(float, sys.argv[n + 1:]))
print(f"untraced {p:.3f} us per call, with a counting uprobe {t:.3f} us: one uprobe hit costs {t - p:.2f} us")
' "${plain[@]}" "${traced[@]}"
