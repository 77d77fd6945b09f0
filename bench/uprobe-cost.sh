#!/usr/bin/env bash
# What one uprobe hit costs on this machine, per kind of instruction at the probe address:
# a tiny function called 100,000 times, untraced and with a bpftrace uprobe that only counts
# (no output, no wakeup), median of 5 runs each. The kernel emulates push, nops and relative
# branches and single-steps everything else (endbr64, mov, sub: a second trap), so the
# price depends on the first instruction. The endbr64 function is also probed at the push
# four bytes in, the site the collector picks (ProbeSite). Prints microseconds per hit for each kind.
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
once() {  # kind probe(symbol[+offset] or "") -> us per call
  rm -f "$work/fifo"; mkfifo "$work/fifo"
  "$work/spin" 100000 "$1" < "$work/fifo" > "$work/out" &
  local pid=$! bt=""
  exec 3> "$work/fifo"
  if [ -n "$2" ]; then
    bpftrace -B line -e "uprobe:$work/spin:$2 { @hits = count(); } interval:ms:100 { printf(\"tick\n\"); }" \
      -p "$pid" > "$work/bt.out" 2>&1 3>&- &
    bt=$!
    for _ in $(seq 200); do grep -q tick "$work/bt.out" && break; sleep 0.05; done
    grep -q tick "$work/bt.out" || { echo "uprobe-cost: bpftrace did not attach to $2:" >&2; cat "$work/bt.out" >&2; exit 1; }
  fi
  echo go >&3; exec 3>&-
  wait "$pid"
  if [ -n "$bt" ]; then
    kill -INT "$bt"; wait "$bt" || true
    # the probe really fired on every call
    grep -qE "@hits: 100000$" "$work/bt.out" || { echo "uprobe-cost: $2 counted $(grep @hits "$work/bt.out") hits, not 100000" >&2; exit 1; }
  fi
  cat "$work/out"
}
echo "| first instruction | handling | untraced us/call | traced us/call | us per hit |"
echo "|---|---|---|---|---|"
for spec in "push:spin_push:emulated" "nop:spin_nop:emulated" "nop5:spin_nop5:emulated (6.18: optimized)" \
            "mov:spin_mov:single-stepped" "endbr64:spin_endbr64:single-stepped" "endbr64, probed at its push:spin_endbr64_push:emulated (the site the collector picks)"; do
  IFS=: read -r label probe handling <<<"$spec"
  kind=${label%%,*}
  plain=(); traced=()
  for _ in 1 2 3 4 5; do plain+=("$(once "$kind" "")"); traced+=("$(once "$kind" "$probe")"); done
  python3 -c '
import statistics, sys
label, handling = sys.argv[1], sys.argv[2]
v = sys.argv[3:]; n = len(v) // 2
p = statistics.median(map(float, v[:n])); t = statistics.median(map(float, v[n:]))
print(f"| {label} | {handling} | {p:.3f} | {t:.3f} | {t - p:.2f} |")
' "$label" "$handling" "${plain[@]}" "${traced[@]}"
done
