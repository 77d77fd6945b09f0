#!/usr/bin/env bash
# Analyzer throughput and memory: `analyzer report` on large captures made by
# `syncamp-bench generate` from a recorded one (bench/seeds/mixed.syncamp: 100
# allocating write+flush pairs and 1,000 aio writes on the testbed's qemu-io,
# minimal probe set), pinned to one core. Prints events per second and peak RSS, and in the
# same run, on the same core, what `perf script` (the reader users know) takes to format a
# perf.data holding the same number of events (syscalls:sys_enter_getppid tracepoint
# records made by a perl loop; `perf report --stats` checks the count, none lost).
#
#   bench/analyzer.sh                  # full: 10M and 100M events (15 GB of disk for 100M)
#   bench/analyzer.sh --quick          # CI smoke: 1M events; fails if peak RSS passes 200 MiB
#
# Every run also checks that the analyzer did the whole work: the events it read are the
# generated count, and the guest requests and host syncs are the seed workload's per
# repetition (1,100 writes, 101 flushes, 3 + 101 x 2 = 205 fdatasyncs) times the repetitions.
#   bench/analyzer.sh --events "1000000 10000000"
#   bench/analyzer.sh --repeat 3       # each reader run 3 times, alternating: median and best of each
#
# This VM's speed moves by 15% and more from one run to the next (the same binary took 4.2 to
# 6.3 s on 10M events within an hour): with --repeat, the analyzer and perf script alternate on
# the same capture and data, and the table gives the median of each (the ratio is of medians)
# with the best run in brackets.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
sizes="10000000 100000000" quick=0 seed=$top/bench/seeds/mixed.syncamp repeat=1
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 sizes="1000000" ;;
    --events) sizes=$2; shift ;;
    --seed) seed=$2; shift ;;
    --repeat) repeat=$2; shift
      [[ $repeat =~ ^[1-9][0-9]*$ ]] || { echo "analyzer-bench: --repeat takes a count of runs (1 or more), not '$repeat'" >&2; exit 2; } ;;
    *) echo "analyzer-bench: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
(cd "$top" && swift build -c release --product analyzer >/dev/null && swift build -c release --product syncamp-bench >/dev/null)
work=$(mktemp -d /var/tmp/syncamp-analyzer.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0
have_perf=0
if command -v perf >/dev/null && command -v perl >/dev/null && perf record -q -e syscalls:sys_enter_getppid -o "$work/probe.data" -- true 2>/dev/null; then
  have_perf=1
else
  echo "analyzer-bench: perf (linux-perf) with tracepoint access is missing: the perf script column is left out" >&2
fi
rm -f "$work/probe.data"
echo "| events | capture | wall time | events/s (one core) | peak RSS | perf script: events/s (one core) | analyzer / perf script |"
echo "|---|---|---|---|---|---|---|"
for n in $sizes; do
  capture=$work/$n.syncamp
  "$top/.build/release/syncamp-bench" generate "$seed" --events "$n" -o "$capture" 2> "$work/generate.err" \
    || { echo "analyzer-bench: cannot generate the capture:" >&2; cat "$work/generate.err" >&2; exit 1; }
  # warm the page cache the same way for every size: the read is part of what is measured
  cat "$capture" > /dev/null
  # "wrote N events (R x P + F)": what the generator made, the count the analyzer must read back
  read -r generated repetitions < <(sed -nE 's/.*wrote ([0-9]+) events \(([0-9]+) x .*/\1 \2/p' "$work/generate.err")
  [ -n "${generated:-}" ] || { echo "analyzer-bench: no event count from the generator:" >&2; cat "$work/generate.err" >&2; exit 1; }
  perf_events=0
  if [ $have_perf = 1 ]; then
    perf record -q -e syscalls:sys_enter_getppid -m 16384 -o "$work/perf.data" -- perl -e "getppid() for 1..$generated" 2>/dev/null
    perf_events=$(perf report --stats -i "$work/perf.data" 2>/dev/null | sed -nE 's/^ *SAMPLE events: *([0-9]+).*/\1/p' | head -1)
  fi
  # One run of each reader per round, alternating: each round's pair saw the VM at about the same speed.
  times="" perf_times="" kb=0
  for ((round = 1; round <= repeat; round++)); do
    /usr/bin/time -f "%e %M" -o "$work/time" taskset -c 0 "$top/.build/release/analyzer" report "$capture" --format json > "$work/report.json" \
      || { echo "REGRESSION: analyzer report failed on $n events" >&2; exit 1; }
    read -r secs round_kb < "$work/time"
    times="$times $secs" kb=$(( round_kb > kb ? round_kb : kb ))
    if [ $have_perf = 1 ]; then
      /usr/bin/time -f "%e" -o "$work/perf.time" taskset -c 0 perf script -i "$work/perf.data" > /dev/null 2>&1
      perf_times="$perf_times $(cat "$work/perf.time")"
    fi
  done
  rm -f "$work/perf.data"
  python3 - "$work/report.json" "$capture" "$times" "$kb" "$generated" "$repetitions" "$perf_times" "${perf_events:-0}" <<'PY' || status=1
import json, os, statistics, sys
r = json.load(open(sys.argv[1])); times, kb = [float(x) for x in sys.argv[3].split()], int(sys.argv[4])
generated, reps = int(sys.argv[5]), int(sys.argv[6])
events, t = r["capture"]["events"], r["totals"]
perf_times, perf_events = [float(x) for x in sys.argv[7].split()], int(sys.argv[8])
secs = statistics.median(times)
def rate(n, s): return n / s / 1e6
def best(n, ts): return f" [best {rate(n, min(ts)):.2f} M, {len(ts)} runs]" if len(ts) > 1 else ""
perf = "n/a | n/a"
if perf_events and perf_events < generated:
    print(f"analyzer-bench: perf recorded {perf_events:,} of {generated:,} events (its buffer overflowed): the perf script figure is for that count", file=sys.stderr)
# perl itself calls getppid a few times at start: perf may record a handful more than the loop makes.
if perf_times and min(perf_times) > 0 and perf_events > 0:
    perf_secs = statistics.median(perf_times)
    perf = (f"{rate(perf_events, perf_secs):.2f} M ({perf_events:,} events, {perf_secs:.1f} s){best(perf_events, perf_times)} | "
            f"{rate(events, secs) / rate(perf_events, perf_secs):.2f}x")
print(f"| {events:,} | {os.path.getsize(sys.argv[2]) / 2**30:.2f} GiB | {secs:.1f} s | {rate(events, secs):.2f} M{best(events, times)} | {kb / 1024:.0f} MiB | {perf} |")
# The seed's workload per repetition (bench/seeds/mixed.syncamp, see the header).
want = {"events read": (events, generated), "guest writes": (t["guest_writes"], 1100 * reps),
        "guest flushes": (t["guest_flushes"], 101 * reps), "host fdatasyncs": (t["host_fdatasyncs"], 205 * reps)}
bad = [f"{k} {got:,}, expected {exp:,}" for k, (got, exp) in want.items() if got != exp]
for b in bad:
    print(f"REGRESSION: analyzer report: {b} (it did not do the whole work)", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
  if [ $quick = 1 ] && [ "$kb" -gt $((200 * 1024)) ]; then
    echo "REGRESSION: analyzer report peaked at $(( kb / 1024 )) MiB on $n events, more than 200 MiB" >&2
    status=1
  fi
  rm -f "$capture"
done
exit $status
