#!/usr/bin/env bash
# Builds the QEMU 7.2 testbed (qemu-io and qemu-img with symbols) from Debian's
# `qemu` source package into .testbed/ (ignored by git), reusing it when present.
#
#   scripts/testbed.sh          # build what is missing, print the bin folder
#   scripts/testbed.sh --deps   # only install the apt packages the project needs
#
# The deb-src entry is derived from the machine's own apt sources at run time:
# no registry host is written into the repository.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
bed="$top/.testbed"
bin="$bed/bin"

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "testbed: installing packages needs root; run as root (sudo $0)" >&2
    exit 1
  fi
}

# Packages for building syncamp itself and the QEMU testbed.
deps=(libbpf-dev libelf-dev zlib1g-dev linux-libc-dev bpftool strace
      qemu-utils dpkg-dev xz-utils ninja-build meson pkg-config python3-venv
      libglib2.0-dev libpixman-1-dev liburing-dev libaio-dev flex bison
      e2fsprogs)

install_deps() {
  mkdir -p "$bed"
  local missing=()
  for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root
  echo "testbed: installing ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$bed/apt.log" 2>&1 \
    || { echo "testbed: apt-get install failed; see $bed/apt.log" >&2; exit 1; }
}

# Adds deb-src lines that mirror the existing deb sources (deb822 or one-line form).
add_deb_src() {
  local out=/etc/apt/sources.list.d/syncamp-deb-src.sources
  [ -f "$out" ] && return 0
  need_root
  local tmp; tmp=$(mktemp)
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # keep the stanzas that list Debian suites, with their Types set to deb-src
    awk 'BEGIN { RS = ""; ORS = "\n\n" }
         { n = split($0, l, "\n"); debian = 0; out = ""
           for (i = 1; i <= n; i++) {
             if (l[i] ~ /^Suites:.*(bookworm|trixie|bullseye|sid)/) debian = 1
             if (l[i] ~ /^Types:/) l[i] = "Types: deb-src"
             out = out l[i] "\n" }
           if (debian) print out }' "$f" >>"$tmp"
  done
  if [ -f /etc/apt/sources.list ]; then
    grep -E '^deb[[:space:]]' /etc/apt/sources.list | sed 's/^deb\([[:space:]]\)/deb-src\1/' >"$out.list.tmp" || true
    if [ -s "$out.list.tmp" ]; then mv "$out.list.tmp" /etc/apt/sources.list.d/syncamp-deb-src.list; else rm -f "$out.list.tmp"; fi
  fi
  if [ -s "$tmp" ]; then mv "$tmp" "$out"; else rm -f "$tmp"; touch "$out"; fi
  apt-get update -qq >&2
}

build_qemu() {
  if [ -x "$bin/qemu-io" ] && [ -x "$bin/qemu-img" ]; then return 0; fi
  add_deb_src
  mkdir -p "$bed/src"
  local srcdir
  srcdir=$(find "$bed/src" -maxdepth 1 -type d -name 'qemu-7.2*' | head -1)
  if [ -z "$srcdir" ]; then
    echo "testbed: fetching Debian's qemu source package" >&2
    (cd "$bed/src" && apt-get source -qq --download-only qemu >&2 \
      && dpkg-source -x --skip-patches qemu_7.2*.dsc >&2)
    srcdir=$(find "$bed/src" -maxdepth 1 -type d -name 'qemu-7.2*' | head -1)
  fi
  [ -n "$srcdir" ] || { echo "testbed: no qemu 7.2 source found in $bed/src" >&2; exit 1; }
  echo "testbed: building qemu-io and qemu-img in $srcdir/build (a few minutes)" >&2
  mkdir -p "$srcdir/build"
  (cd "$srcdir/build" \
    && PATH=/usr/bin:$PATH PYTHON=/usr/bin/python3 ../configure --meson=/usr/bin/meson --target-list= \
         --disable-system --disable-user --enable-tools --disable-docs \
         --disable-install-blobs --enable-linux-io-uring --enable-linux-aio \
         --extra-cflags=-g >"$bed/configure.log" 2>&1 \
    && PATH=/usr/bin:$PATH ninja -j"$(nproc)" qemu-io qemu-img >"$bed/build.log" 2>&1) || {
      echo "testbed: QEMU build failed; see $bed/configure.log and $bed/build.log" >&2; exit 1; }
  mkdir -p "$bin"
  cp "$srcdir/build/qemu-io" "$srcdir/build/qemu-img" "$bin/"
}

install_deps
[ "${1:-}" = "--deps" ] && exit 0
build_qemu
echo "$bin"
