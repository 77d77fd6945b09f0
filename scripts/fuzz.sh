#!/usr/bin/env bash
# Fuzzes the capture reader and the whole analyzer pipeline with mutated real captures.
#
#   scripts/fuzz.sh                    # 10 minutes or 1,000,000 inputs, whichever comes first
#   scripts/fuzz.sh --seconds 20       # a short run (the test suite runs one)
#
# Every input derives from (seed, iteration); a crash prints its iteration I, and
#   .build/release/SyncampFuzz --only I --dump crash.syncamp Tests/Fixtures/*.syncamp
# writes the input that crashed. Exits non-zero on a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product SyncampFuzz >&2
exec "$(swift build -c release --show-bin-path)/SyncampFuzz" --iterations 1000000 --seconds 600 "$@" Tests/Fixtures/*.syncamp
