#!/usr/bin/env bash
# Instructions the analyzer executes per event (valgrind's cachegrind, no cache simulation):
# a count that does not move with the VM's speed, for comparing two builds when wall-clock
# runs on this machine vary by 15% and more. Events and their count come from `syncamp-bench
# generate` on the mixed seed, as in bench/analyzer.sh; the seed alone is run too, so that the
# fixed cost (start, manifest, the JSON of the listed ops) can be taken out.
#
#   bench/instructions.sh                          # this tree's release analyzer, 1M events
#   bench/instructions.sh --events 100000 OLD NEW  # two analyzer binaries side by side
#
# Cachegrind cannot read the Swift toolchain's DWARF: each binary is copied with its debug
# sections stripped (symbols stay) before it is run.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
events=1000000
binaries=()
while [ $# -gt 0 ]; do
  case $1 in
    --events) events=$2; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "instructions: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    *) binaries+=("$1") ;;
  esac
  shift
done
command -v valgrind >/dev/null || { echo "instructions: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
(cd "$top" && swift build -c release --product syncamp-bench >/dev/null)
if [ ${#binaries[@]} = 0 ]; then
  (cd "$top" && swift build -c release --product analyzer >/dev/null)
  binaries=("$top/.build/release/analyzer")
fi
work=$(mktemp -d /var/tmp/syncamp-instructions.XXXXXX)
trap 'rm -rf "$work"' EXIT
seed=$top/bench/seeds/mixed.syncamp
"$top/.build/release/syncamp-bench" generate "$seed" --events "$events" -o "$work/capture.syncamp" 2> "$work/generate.err" \
  || { echo "instructions: cannot generate the capture:" >&2; cat "$work/generate.err" >&2; exit 1; }
generated=$(sed -nE 's/.*wrote ([0-9]+) events.*/\1/p' "$work/generate.err")
seed_events=$("${binaries[0]}" report "$seed" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["capture"]["events"])')
count() {  # binary capture -> instructions
  strip -g -o "$work/bin" "$1"
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$work/bin" report "$2" --format json 2>&1 >/dev/null \
    | sed -nE 's/.*I +refs: +([0-9,]+).*/\1/p' | tr -d ,
}
echo "| analyzer | instructions, $generated events | instructions, seed ($seed_events events) | per event, fixed cost taken out |"
echo "|---|---|---|---|"
for b in "${binaries[@]}"; do
  full=$(count "$b" "$work/capture.syncamp")
  fixed=$(count "$b" "$seed")
  python3 -c "
import sys
b, full, fixed, n, s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f'| {b} | {full/1e6:,.0f} M | {fixed/1e6:,.0f} M | {(full - fixed) / (n - s):,.0f} |')" "$b" "$full" "$fixed" "$generated" "$seed_events"
done
