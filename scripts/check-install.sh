#!/usr/bin/env bash
# Checks `make install` into a staging folder: every file in place, the man
# pages render without errors, bash completion completes subcommands and
# options, and (as root) the installed collector traces a real qemu-io with
# the BPF object installed beside it, not the one in .build.
#   scripts/check-install.sh [CONFIG]     (default: debug, which the tests have built)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-debug}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
fail() { echo "check-install: FAILED: $*" >&2; exit 1; }

make -s install CONFIG="$config" DESTDIR="$stage" PREFIX=/usr >/dev/null
root=$stage/usr
for f in bin/collector bin/analyzer lib/syncamp/collector lib/syncamp/analyzer \
         lib/syncamp/syncamp_Collector.resources/syncamp.bpf.o \
         share/man/man1/collector.1 share/man/man1/analyzer.1 \
         share/bash-completion/completions/collector share/bash-completion/completions/analyzer \
         share/zsh/site-functions/_collector share/zsh/site-functions/_analyzer \
         share/fish/vendor_completions.d/collector.fish share/fish/vendor_completions.d/analyzer.fish; do
  [ -e "$root/$f" ] || fail "$f was not installed"
done
[ "$(readlink "$root/bin/analyzer")" = ../lib/syncamp/analyzer ] || fail "bin/analyzer is not a symlink into lib/syncamp"

# The man pages: groff must not complain, and each names every subcommand or key option.
for page in collector analyzer; do
  warnings=$(MANWIDTH=100 man --warnings=mac -l "$root/share/man/man1/$page.1" 2>&1 >/dev/null || true)
  [ -z "$warnings" ] || fail "man $page: $warnings"
done
text=$(MANWIDTH=100 man -l "$root/share/man/man1/analyzer.1" 2>/dev/null)
for word in report whatif export live replay --prometheus --speed; do
  grep -q -- "$word" <<<"$text" || fail "analyzer.1 does not mention $word"
done
MANWIDTH=100 man -l "$root/share/man/man1/collector.1" 2>/dev/null | grep -q -- "--symbols" || fail "collector.1 does not mention --symbols"

# bash completion: the installed script completes subcommands and options.
complete_words() {  # complete_words TOOL WORD... -> the candidates for the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
           f=$(complete -p "$1" | sed -E "s/.*-F ([^ ]+).*/\1/"); "$f" "$1" "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]:-}"; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$root/share/bash-completion/completions/$1" "$@"
}
subs=$(complete_words analyzer re)
grep -qx report <<<"$subs" && grep -qx replay <<<"$subs" || fail "bash completion of 'analyzer re' gave: $subs"
opts=$(complete_words collector --sym)
grep -qx -- --symbols <<<"$opts" || fail "bash completion of 'collector --sym' gave: $opts"
formats=$(complete_words analyzer export run.syncamp --format "")
grep -qx perfetto <<<"$formats" || fail "bash completion of 'analyzer export --format' gave: $formats"

"$root/bin/analyzer" --version >/dev/null || fail "the installed analyzer does not run"

# As root: the installed collector loads the BPF object installed beside it.
if [ "$(id -u)" = 0 ] && [ -x .testbed/bin/qemu-io ]; then
  .testbed/bin/qemu-img create -q -f qcow2 "$stage/img.qcow2" 1G
  strace -f -qq -e trace=openat -o "$stage/open.log" "$root/bin/collector" -o "$stage/run.syncamp" -- \
    .testbed/bin/qemu-io -f qcow2 -t writeback -c 'write 0 4k' -c flush "$stage/img.qcow2" >/dev/null 2>"$stage/collector.err" \
    || fail "the installed collector failed: $(cat "$stage/collector.err")"
  grep -q "\"$root/lib/syncamp/syncamp_Collector.resources/syncamp.bpf.o\"" "$stage/open.log" \
    || fail "the installed collector did not load its installed BPF object: $(grep bpf.o "$stage/open.log" || echo none opened)"
  syncs=$("$root/bin/analyzer" report "$stage/run.syncamp" --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["totals"]["host_fdatasyncs"])')
  [ "$syncs" = 5 ] || fail "the installed tools report $syncs host syncs for write+flush on a fresh image, not 5"
elif [ "${CI:-}" = true ]; then
  fail "CI=true but not root or no testbed: the installed collector was not run"
else
  echo "check-install: not root or no testbed: the installed collector was not run" >&2
fi
echo "check-install: ok (make install: binaries, resources, man pages, bash/zsh/fish completions)"
