#!/usr/bin/env bash
# Golden reports: every committed capture (Tests/Fixtures, bench/seeds) through every
# report and export format, compared byte for byte with Tests/Golden.
#
#   scripts/golden.sh            # check; prints a diff and exits 1 when a report changed
#   scripts/golden.sh --update   # rewrite Tests/Golden (only for a change you meant; say why in the commit)
#   ANALYZER=.build/release/analyzer scripts/golden.sh
#
# The reports are the analyzer's answers on fixed inputs: a refactor of the analysis must
# leave them identical.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
analyzer=${ANALYZER:-.build/debug/analyzer}
update=0
[ "${1:-}" = --update ] && update=1
[ -x "$analyzer" ] || { echo "golden: no analyzer at $analyzer: run 'swift build' first (or set ANALYZER)" >&2; exit 2; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for capture in Tests/Fixtures/*.syncamp bench/seeds/*.syncamp; do
  name=$(basename "$capture" .syncamp)
  # Relative paths: reports name the capture as given.
  "$analyzer" report "$capture" --progress never > "$out/$name.txt" 2> "$out/$name.stderr"
  "$analyzer" report "$capture" --progress never --ops all > "$out/$name.all.txt" 2>/dev/null
  "$analyzer" report "$capture" --progress never --format json > "$out/$name.json" 2>/dev/null
  for format in perfetto folded dot; do
    "$analyzer" export "$capture" --progress never --format $format > "$out/$name.$format" 2>/dev/null
  done
done
if [ $update = 1 ]; then
  rm -rf Tests/Golden && mkdir -p Tests/Golden && cp "$out"/* Tests/Golden/
  echo "golden: wrote $(ls Tests/Golden | wc -l) files to Tests/Golden"
  exit 0
fi
if diff -r Tests/Golden "$out" > "$out.diff"; then
  echo "golden: $(ls "$out" | wc -l) reports identical"
  rm -f "$out.diff"
else
  echo "golden: reports differ from Tests/Golden (scripts/golden.sh --update if the change is meant):"
  head -c 20000 "$out.diff"
  rm -f "$out.diff"
  exit 1
fi
