#!/usr/bin/env bash
# Where the collector's cost goes: the flush-heavy workload (a) of bench/overhead.sh run
# untraced, by the collector, and by the collector with one part switched off at a time
# (its hidden --ablate option): the ring-buffer output (the program returns right after
# the trap: the trap floor, what a count-only tracer pays on the same sites), the coroutine
# reads at every probe, the reads through pointers, the below-QEMU tracepoints, the writing
# of the capture file; and with every probe at its function entry (--probe-at-entry).
# Alternating rounds; prints the median per-round slowdown of each against untraced.
# It builds the collector and analyzer (release, static stdlib) and the testbed's tools first.
#
#   bench/breakdown.sh [--rounds N] [--pairs N] [--binary PATH] [--ram] [--workload flush|write]
#
# --workload write: bench/overhead.sh's write-heavy workload (b) instead, 50,000 sequential 4 KiB
#        aio_writes with aio_flush + flush every 1,000 (--writes N); the account is then per
#        1,000 writes and their flush.
#   MODES="untraced collector capture-elsewhere" bench/breakdown.sh --ram   # some runs only
#
# The `measured` runs (collector --measure-cost) also give a counted account per pair: uprobe
# hits priced per instruction class (TRAP_NS, STEP_NS: bench/uprobe-cost.sh's figures), the
# kernel's run time of the BPF programs, the collector's own CPU time. Wall-clock slowdowns
# on a 2-CPU VM vary by 15% from run to run; the counted figures do not.
#
# --binary: another qemu-io (the testbed's endbr64 build: .testbed/cet/bin/qemu-io).
# --ram: the image on ext4 on a loop device backed by tmpfs (as bench/overhead.sh --ram): the
#        same syncs, journal commits and device flushes, no disk waits to hide or blur the cost.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
rounds=5 pairs=1000 binary="" ram=0 workload=flush writes=50000
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift ;;
    --pairs) pairs=$2; shift ;;
    --binary) binary=$2; shift ;;
    --ram) ram=1 ;;
    --workload) workload=$2; shift ;;
    --writes) writes=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "breakdown: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "breakdown: needs root (uprobes, BPF); run it with sudo" >&2; exit 1; }
bin=$("$top/scripts/testbed.sh" --tools-only)
qemu_io=${binary:-$bin/qemu-io}
[ -e /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing
(cd "$top" && swift build -c release --static-swift-stdlib --product collector >/dev/null \
  && swift build -c release --static-swift-stdlib --product analyzer >/dev/null)
collector="$top/.build/release/collector"
analyzer="$top/.build/release/analyzer"
work=$(mktemp -d /var/tmp/syncamp-breakdown.XXXXXX)
. "$top/bench/ramdisk.sh"
shm=$(mktemp -d /dev/shm/syncamp-breakdown.XXXXXX)
cleanup() {
  rm -rf "$shm"
  ramdisk_unmount "$work"
  rm -rf "$work"
}
trap cleanup EXIT
[ $ram = 1 ] && ramdisk_mount "$work" breakdown
case $workload in
  flush)
    for i in $(seq 0 $((pairs - 1))); do printf 'write -q %d 4k\nflush\n' $((i * 65536)); done > "$work/cmds"
    units=$pairs unit="pair" syncs_expected=$((3 + 2 * pairs)) ;;
  write)
    awk -v n="$writes" 'BEGIN { for (i = 0; i < n; i++) { printf "aio_write -q %d 4k\n", i * 4096; if ((i + 1) % 1000 == 0) print "aio_flush\nflush" } }' > "$work/cmds"
    units=$((writes / 1000)) unit="1,000 writes + flush" syncs_expected=$((3 + 2 * (writes / 1000))) ;;
  *) echo "breakdown: unknown workload $workload (flush or write)" >&2; exit 2 ;;
esac

wait_for() {  # file pattern pid
  for _ in $(seq 300); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { echo "breakdown: tracer exited early:" >&2; cat "$1" >&2; exit 1; }
    sleep 0.05
  done
  echo "breakdown: timed out waiting for '$2' in $1" >&2; exit 1
}

run() {  # mode -> microseconds
  local mode=$1 img=$work/img.qcow2 fifo=$work/fifo tpid=""
  rm -f "$img" "$fifo" "$work/run.syncamp" "$work/tracer.err" "$work/bt.out"
  "$bin/qemu-img" create -q -f qcow2 "$img" 4G
  mkfifo "$fifo"
  ${PIN:+taskset -c $PIN} "$qemu_io" -f qcow2 -t writeback "$img" < "$fifo" > /dev/null 2>&1 &
  local qpid=$!
  exec 3> "$fifo"
  for _ in $(seq 200); do ls -l "/proc/$qpid/fd" 2>/dev/null | grep -q "$img" && break; sleep 0.02; done
  case $mode in
    untraced) ;;
    *)
      local extra=() out=$work/run.syncamp
      case $mode in
        collector) ;;
        # the collector with the kernel's BPF run-time statistics on: what its programs and
        # the collector itself cost, counted rather than timed (the accounting table)
        measured) extra=(--measure-cost) ;;
        # the capture on another file system (a tmpfs) than the image's: its writes then join
        # none of the image's journal commits
        capture-elsewhere) out=$shm/run.syncamp ;;
        at-entry) extra=(--probe-at-entry) ;;
        no-*) extra=(--ablate "${mode#no-}") ;;
      esac
      # the collector's own CPU time (user + system), for the table's last column
      /usr/bin/time -f '%U %S' -o "$work/cpu" "$collector" "${extra[@]}" -p "$qpid" -o "$out" --force 2> "$work/tracer.err" 3>&- &
      tpid=$!
      wait_for "$work/tracer.err" "tracing pid" "$tpid" ;;
  esac
  local t0 t1
  t0=$(date +%s%N)
  cat "$work/cmds" >&3
  exec 3>&-
  wait "$qpid"
  t1=$(date +%s%N)
  if [ -n "$tpid" ]; then
    wait "$tpid" || { echo "breakdown: the $mode tracer failed:" >&2; cat "$work/tracer.err" >&2; exit 1; }
  fi
  rm -f "$shm/run.syncamp"
  if [ "$mode" = collector ]; then
    # the work happened: every host sync of the workload is in the capture
    local syncs; syncs=$("$analyzer" report "$work/run.syncamp" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["host_fdatasyncs"])')
    [ "$syncs" = "$syncs_expected" ] || { echo "breakdown: the collector saw $syncs host syncs, not $syncs_expected" >&2; exit 1; }
  fi
  if [ "$mode" = measured ]; then
    "$analyzer" report "$work/run.syncamp" --format json | python3 -c '
import json, sys
c = json.load(sys.stdin)["capture"]; t = c["tracing_cost"]
print(c["events"], c["probe_hits"], c.get("single_stepped_probe_hits") or 0, t["bpf_program_runs"], t["bpf_run_time_ns"], t["collector_cpu_ns"], sep="\t")
with open(sys.argv[1], "a") as f:
    for name, p in t["programs"].items():
        print(name, p["runs"], p["run_time_ns"], sep="\t", file=f)
' "$work/programs.tsv" >> "$work/measured.tsv"
  fi
  local cpu="-"
  [ -n "$tpid" ] && cpu=$(awk '{printf "%.3f", $1 + $2}' "$work/cpu")
  echo "$(( (t1 - t0) / 1000 ))	$cpu"
}

modes=(untraced no-output collector measured capture-elsewhere no-coroutine no-derefs no-storage no-writing at-entry)
if [ -n "${MODES:-}" ]; then
  read -r -a modes <<< "$MODES"
  # every slowdown and the account compare with the untraced run of the same round
  [[ " ${modes[*]} " == *" untraced "* ]] || modes=(untraced "${modes[@]}")
fi
raw=$work/raw.tsv
for r in $(seq 1 "$rounds"); do
  n=${#modes[@]}
  for k in $(seq 0 $((n - 1))); do
    mode=${modes[$(( (k + r) % n ))]}
    printf '%s\t%s\t%s\n' "$r" "$mode" "$(run "$mode")" >> "$raw"
  done
  echo "breakdown: round $r/$rounds done" >&2
done
# RAW=FILE keeps each run's time and the collector's CPU (round, mode, us, s)
[ -n "${RAW:-}" ] && cp "$raw" "$RAW"
python3 - "$raw" "$units" "$qemu_io" "$work/measured.tsv" "${TRAP_NS:-600}" "${STEP_NS:-25400}" "$unit" "$workload" <<'PY'
import csv, statistics, sys
rows = [r for r in csv.reader(open(sys.argv[1]), delimiter="\t")]
base = {r[0]: int(r[2]) for r in rows if r[1] == "untraced"}
def cpu(m):
    v = [float(r[3]) for r in m if len(r) > 3 and r[3] != "-"]
    return f"{statistics.median(v):.3f} s" if v else "—"
what = {"untraced": "no tracer",
        "collector": "the collector, everything on", "no-coroutine": "without the coroutine reads",
        "no-derefs": "without the reads through pointers", "no-output": "the trap floor: the program returns at once (no event)",
        "no-storage": "without the below-QEMU tracepoints", "no-writing": "without writing the capture file",
        "at-entry": "with every probe at its function entry",
        "capture-elsewhere": "the capture on a tmpfs, not the image's file system",
        "measured": "the collector with --measure-cost (the account below)"}
unit, workload = sys.argv[7], sys.argv[8]
if workload == "flush":
    print(f"flush-heavy: {sys.argv[2]} x (write 4k to a new cluster + flush) on {sys.argv[3]}, {len(base)} rounds")
else:
    print(f"write-heavy: {sys.argv[2]} x (1,000 sequential 4k aio_writes + aio_flush + flush) on {sys.argv[3]}, {len(base)} rounds")
print("| run | median run time | median slowdown | the collector process's CPU, start-up included (user + system) |")
print("|---|---|---|---|")
for mode in dict.fromkeys(r[1] for r in rows):
    m = [r for r in rows if r[1] == mode]
    t = statistics.median(int(r[2]) for r in m) / 1e6
    ratio = statistics.median(int(r[2]) / base[r[0]] for r in m)
    print(f"| {what.get(mode, mode)} | {t:.3f} s | {'—' if mode == 'untraced' else f'{(ratio - 1) * 100:+.1f}%'} | {cpu(m)} |")
import os
if os.path.exists(sys.argv[4]) and base:
    units = int(sys.argv[2]); trap_ns = float(sys.argv[5]); step_ns = float(sys.argv[6])
    rows = [list(map(int, l.split())) for l in open(sys.argv[4]) if l.strip()]
    med = lambda i: statistics.median(r[i] for r in rows)
    untraced_us = statistics.median(base.values()) / units
    hits, stepped = med(1) / units, med(2) / units
    traps = (hits - stepped) * trap_ns / 1000 + stepped * step_ns / 1000
    bpf = med(4) / units / 1000
    collector = med(5) / units / 1000
    print()
    print(f"What tracing costs per {unit}, counted (the collector with --measure-cost, median of {len(rows)} run(s);"
          f" traps priced at bench/uprobe-cost.sh's {trap_ns:.0f} ns per emulated hit, {step_ns:.0f} ns per single-stepped one;"
          f" BPF programs as the kernel counted them, including tracepoints other processes' I/O fired on this machine):")
    print(f"| part | per {unit} | against an untraced {unit} |")
    print("|---|---|---|")
    print(f"| untraced {unit} (median run / {units}) | {untraced_us:.1f} us | |")
    print(f"| uprobe traps: {hits:.2f} hits, {stepped:.2f} single-stepped | {traps:.1f} us | {traps / untraced_us * 100:.1f}% |")
    print(f"| BPF programs: {med(3) / units:.1f} runs | {bpf:.1f} us | {bpf / untraced_us * 100:.1f}% |")
    print(f"| traps + programs (on the threads doing the work: QEMU's, jbd2, block completions) | {traps + bpf:.1f} us | {(traps + bpf) / untraced_us * 100:.1f}% |")
    print(f"| the collector's CPU while capturing, start-up left out (its own thread; competes on a 2-CPU machine) | {collector:.1f} us | {collector / untraced_us * 100:.1f}% |")
    print(f"| all | {traps + bpf + collector:.1f} us | {(traps + bpf + collector) / untraced_us * 100:.1f}% |")
    progs = {}
    for l in open(sys.argv[4].replace("measured.tsv", "programs.tsv")):
        name, runs, ns = l.split()
        progs.setdefault(name, []).append((int(runs), int(ns)))
    print()
    print(f"Per BPF program (median of the measured runs; runs and time per {unit}, time per run):")
    print(f"| program | runs per {unit} | us per {unit} | ns per run |")
    print("|---|---|---|---|")
    for name, v in sorted(progs.items(), key=lambda kv: -statistics.median(x[1] for x in kv[1])):
        runs, ns = statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)
        print(f"| {name} | {runs / units:.2f} | {ns / units / 1000:.2f} | {ns / runs:.0f} |")
PY
