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
swift test "$@"
