#!/usr/bin/env bash
# Runs the whole test suite. As root on a new Debian machine it first installs
# what the tests need (apt packages, the QEMU 7.2 testbed in .testbed/), mounts
# tracefs, then builds and runs every test, the end-to-end ones for real.
# Without root, the tests that need BPF skip with the reason (under CI=true
# they fail instead).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
  scripts/testbed.sh >/dev/null
  [ -e /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing
else
  echo "test: not root: the end-to-end tests will skip (run as root to trace for real)" >&2
fi

swift build --build-tests
# The collector the kernel guest tests boot (KernelGuestTests): statically linked Swift, so it
# needs only glibc, libbpf, libelf and libz in the guest. `make install` reuses this build.
swift build -c release --static-swift-stdlib --product collector
# XCTest only (the suite has no Swift Testing tests), and a plain closing line
# with the counts, so a run that executed nothing cannot pass for a green one.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
swift test --disable-swift-testing "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# "Executed 42 tests, with 0 failures (0 unexpected)", or "..., with 2 tests skipped and 0 failures ..."
summary=$(grep -E "^\s*Executed [0-9]+ tests?" "$log" | tail -1)
total=$(sed -nE 's/^\s*Executed ([0-9]+) tests?,.*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.* ([0-9]+) failures? \(.*/\1/p' <<<"$summary")
total=${total:-0} failed=${failed:-0}
skipped=$(grep -cE "^Test Case .* skipped" "$log" || true)
# Under CI=true a skip is a failure: CI installs every prerequisite, so a skipped test is
# a check that did not run (the tests fail themselves too; this catches any that only skip).
if [ "${CI:-}" = true ] && [ "$skipped" != 0 ]; then
  echo "test: CI=true and $skipped tests skipped:" >&2
  grep -E "^Test Case .* skipped" "$log" >&2
  status=1
fi
echo "tests: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"
if [ "$total" = 0 ]; then echo "test: no test ran" >&2; exit 1; fi

# The benchmarks' quick versions (BENCHMARKS.md), so that a regression shows up in CI.
# They gate on counts (uprobe hits per guest request, lost events, peak memory), never
# on times, which they only print.
if [ $# -gt 0 ]; then
  echo "test: arguments given ($*): benchmark smoke runs skipped"
  exit "$status"
fi
# Packaging: make install into a staging folder, checked file by file (man pages render,
# completions complete, the installed collector finds its BPF object).
scripts/check-install.sh || status=1

bench_status=0
echo "test: benchmark smoke runs (bench/*.sh --quick)"
bench/analyzer.sh --quick || bench_status=1
if [ "$(id -u)" = 0 ]; then
  bench/overhead.sh --quick || bench_status=1
  bench/noloss.sh --quick || bench_status=1
elif [ "${CI:-}" = true ]; then
  echo "test: bench/overhead.sh and bench/noloss.sh need root (BPF) and CI=true is set" >&2
  bench_status=1
else
  echo "test: not root: bench/overhead.sh and bench/noloss.sh skipped (they trace with BPF)" >&2
fi
[ "$bench_status" = 0 ] || echo "test: a benchmark smoke run failed (see REGRESSION above)" >&2
[ "$status" = 0 ] && exit "$bench_status"
exit "$status"
