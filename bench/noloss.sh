#!/usr/bin/env bash
# No-loss ceiling: the highest sustained event rate the collector records with
# the default ring buffer and loses nothing. A small C program (bench/flood.c)
# calls fdatasync on a tmpfs file at a set rate; each call is two events (system
# call entry and exit, the syscalls tracepoints' path). The collector runs with
# --allow-missing (flood has no QEMU symbols), everything else as by default.
#
#   bench/noloss.sh            # full: rates from 50k to 2M events/s, 5 s each
#   bench/noloss.sh --quick    # CI smoke: 100k and 400k events/s for 2 s; fails on a loss at 100k
#
# Every rate also checks that the collector recorded the flood: events + lost = 2 x the
# calls flood says it made, and the host fdatasyncs are those calls (less any lost).
#   bench/noloss.sh --ring-buffer-mb 64
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
calls="25000 50000 100000 200000 300000 400000 600000 800000 1000000"
seconds=5 quick=0 ring=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 calls="50000 200000" seconds=2 ;;
    --ring-buffer-mb) ring=(--ring-buffer-mb "$2"); shift ;;
    *) echo "noloss: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "noloss: needs root (BPF); run it with sudo" >&2; exit 1; }
[ -e /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing
(cd "$top" && swift build -c release --product collector >/dev/null && swift build -c release --product analyzer >/dev/null)
work=$(mktemp -d /var/tmp/syncamp-noloss.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/flood" "$top/bench/flood.c"

status=0
echo "| events/s asked | events/s run | events | lost | lost % |"
echo "|---|---|---|---|---|"
for c in $calls; do
  rm -f "$work/fifo" "$work/run.syncamp"
  mkfifo "$work/fifo"
  "$top/.build/release/collector" --allow-missing "${ring[@]}" -o "$work/run.syncamp" -- "$work/flood" "$c" "$seconds" \
    < "$work/fifo" > "$work/flood.out" 2> "$work/collector.err" &
  cpid=$!
  exec 3> "$work/fifo"
  for _ in $(seq 200); do grep -q "tracing pid" "$work/collector.err" && break; sleep 0.05; done
  if ! grep -q "tracing pid" "$work/collector.err"; then
    echo "REGRESSION: the collector never started tracing:" >&2; cat "$work/collector.err" >&2
    kill "$cpid" 2>/dev/null; exit 1
  fi
  echo go >&3
  exec 3>&-
  wait "$cpid" || { cat "$work/collector.err" >&2; exit 1; }
  read -r events lost syncs < <("$top/.build/release/analyzer" report "$work/run.syncamp" --format json 2>/dev/null |
    python3 -c 'import json, sys; r = json.load(sys.stdin); c = r["capture"]; print(c["events"], c["lost_events"], r["totals"]["host_fdatasyncs"])')
  ran=$(grep -oE '[0-9]+ per second' "$work/flood.out" | grep -oE '^[0-9]+')
  made=$(grep -oE '^[0-9]+ calls' "$work/flood.out" | grep -oE '^[0-9]+')
  python3 -c 'import sys; a, r, e, l = map(int, sys.argv[1:]); print(f"| {2 * a:,} | {2 * r:,} | {e:,} | {l:,} | {100 * l / max(1, e + l):.2f} |")' "$c" "$ran" "$events" "$lost"
  # The flood's own count is the oracle: each call is an entry and an exit event.
  if [ -z "$made" ] || [ "$made" = 0 ]; then
    echo "REGRESSION: flood made no calls at $((2 * c)) events/s: $(cat "$work/flood.out")" >&2
    status=1
  elif [ $((events + lost)) != $((2 * made)) ] || [ "$syncs" -gt "$made" ] || [ $((syncs + lost)) -lt "$made" ]; then
    echo "REGRESSION: at $((2 * c)) events/s flood made $made calls ($((2 * made)) events) but the capture has $events events, $lost lost, $syncs host fdatasyncs" >&2
    status=1
  fi
  if [ $quick = 1 ] && [ "$c" = 50000 ] && [ "$lost" != 0 ]; then
    echo "REGRESSION: $lost events lost at 100,000 events/s with the default ring buffer" >&2
    status=1
  fi
done
exit $status
