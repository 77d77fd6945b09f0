#!/usr/bin/env bash
# Builds the QEMU 7.2 testbed from Debian's `qemu` source package, reusing what is
# there: qemu-io and qemu-img with symbols, qemu-system-x86_64 with symbols, and a
# tiny guest (Debian's kernel, a busybox initramfs running scripts/guest/init.sh,
# SeaBIOS and QEMU's option ROMs).
#
# Where: every build goes to its own folder in the cache (SYNCAMP_CACHE, default
# /var/cache/syncamp), named after what was built and a key: the hash of the pinned
# source tarball and of the shell function that built it. A fresh clone on the same
# machine (CI) reuses them; a changed build step or source makes a new folder; a new
# machine builds everything with this same script. .testbed/ in the clone (ignored
# by git) is a folder of symlinks into the cache, the paths the tests use.
#
#   scripts/testbed.sh              # build what is missing, print the bin folder
#   scripts/testbed.sh --deps       # only install the apt packages the project needs
#   scripts/testbed.sh --tools-only # qemu-io and qemu-img only
#   scripts/testbed.sh --kernels    # only the guest kernels (Debian's 5.10, 6.1, 6.12)
#
# The deb-src entry is derived from the machine's own apt sources at run time:
# no registry host is written into the repository.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${SYNCAMP_CACHE:-/var/cache/syncamp}
bed="$top/.testbed"
bin="$bed/bin"
logs="$cache/logs"

# The QEMU 7.2 source that is built: the upstream tarball of Debian 12's `qemu` source
# package. Debian's own patches are not applied (--skip-patches), so every Debian
# revision of 7.2 builds the same tree; the tarball's name pins it.
QEMU72_ORIG=qemu_7.2+dfsg.orig.tar.xz

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
      libfdt-dev e2fsprogs xfsprogs btrfs-progs bpftrace time util-linux gcc graphviz
      curl python3-prometheus-client make man-db groff-base systemtap-sdt-dev)

install_deps() {
  mkdir -p "$logs"
  local missing=()
  for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root
  echo "testbed: installing ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$logs/apt.log" 2>&1 \
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

# key NAME FUNCTION...: the cache folder for what FUNCTION builds from the pinned source.
key() {
  local name=$1; shift
  echo "$cache/$name-$( { echo "$QEMU72_ORIG"; declare -f "$@"; } | sha256sum | cut -c1-12)"
}

# link PATH TARGET: .testbed/PATH is a symlink to TARGET in the cache.
link() {
  mkdir -p "$(dirname "$bed/$1")"
  ln -sfn "$2" "$bed/$1"
}

# The unpacked 7.2 source (Debian's patches not applied), fetched once per machine.
qemu72_src() {
  local srcdir="$cache/src/qemu-7.2"
  if [ ! -f "$srcdir/VERSION" ]; then
    add_deb_src
    local ver
    ver=$(apt-cache showsrc qemu 2>/dev/null | awk '/^Version: 1:7\.2\+dfsg-/ {print $2; exit}')
    [ -n "$ver" ] || { echo "testbed: no source of qemu 7.2 in the apt sources (Debian 12's qemu source package)" >&2; exit 1; }
    echo "testbed: fetching Debian's qemu source package $ver" >&2
    rm -rf "$cache/src/dl" && mkdir -p "$cache/src/dl"
    (cd "$cache/src/dl" && apt-get source -qq --download-only "qemu=$ver" >&2)
    [ -f "$cache/src/dl/$QEMU72_ORIG" ] \
      || { echo "testbed: qemu $ver does not come from $QEMU72_ORIG; update the pin in $0" >&2; exit 1; }
    (cd "$cache/src/dl" && dpkg-source -x --skip-patches qemu_*.dsc x >&2)
    rm -rf "$srcdir" && mv "$cache/src/dl/x" "$srcdir" && rm -rf "$cache/src/dl"
  fi
  echo "$srcdir"
}

build_qemu() {
  local out; out=$(key qemu-7.2-tools build_qemu)
  if [ ! -x "$out/qemu-io" ] || [ ! -x "$out/qemu-img" ]; then
    local srcdir; srcdir=$(qemu72_src)
    echo "testbed: building qemu-io and qemu-img into $out (a few minutes)" >&2
    rm -rf "$srcdir/build" && mkdir -p "$srcdir/build"
    (cd "$srcdir/build" \
      && PATH=/usr/bin:$PATH PYTHON=/usr/bin/python3 ../configure --meson=/usr/bin/meson --target-list= \
           --disable-system --disable-user --enable-tools --disable-docs \
           --disable-install-blobs --enable-linux-io-uring --enable-linux-aio \
           --extra-cflags=-g >"$logs/tools-configure.log" 2>&1 \
      && PATH=/usr/bin:$PATH ninja -j"$(nproc)" qemu-io qemu-img >"$logs/tools-build.log" 2>&1) || {
        echo "testbed: QEMU build failed; see $logs/tools-configure.log and $logs/tools-build.log" >&2; exit 1; }
    mkdir -p "$out.tmp" && cp "$srcdir/build/qemu-io" "$srcdir/build/qemu-img" "$out.tmp/" && mv "$out.tmp" "$out"
  fi
  link bin/qemu-io "$out/qemu-io"
  link bin/qemu-img "$out/qemu-img"
}

# qemu-system-x86_64 7.2 with symbols, from the same source tree.
build_qemu_system() {
  local out; out=$(key qemu-7.2-system build_qemu_system)
  if [ ! -x "$out/qemu-system-x86_64" ]; then
    local srcdir; srcdir=$(qemu72_src)
    # Debian's dfsg source drops the EDK2 firmware; meson only needs the files to exist
    # (they are never built: only the qemu-system-x86_64 target is).
    for f in aarch64-code arm-code arm-vars i386-code i386-secure-code i386-vars x86_64-code x86_64-secure-code; do
      [ -e "$srcdir/pc-bios/edk2-$f.fd.bz2" ] || touch "$srcdir/pc-bios/edk2-$f.fd.bz2"
    done
    echo "testbed: building qemu-system-x86_64 into $out (several minutes)" >&2
    rm -rf "$srcdir/build-system" && mkdir -p "$srcdir/build-system"
    (cd "$srcdir/build-system" \
      && PATH=/usr/bin:$PATH PYTHON=/usr/bin/python3 ../configure --meson=/usr/bin/meson \
           --target-list=x86_64-softmmu --disable-user --disable-tools --disable-docs \
           --disable-install-blobs --enable-linux-io-uring --enable-linux-aio --disable-sdl \
           --disable-gtk --disable-vnc --disable-opengl --disable-spice --audio-drv-list= \
           --disable-xen --extra-cflags=-g >"$logs/sys-configure.log" 2>&1 \
      && PATH=/usr/bin:$PATH ninja -j"$(nproc)" qemu-system-x86_64 >"$logs/sys-build.log" 2>&1) || {
        echo "testbed: qemu-system build failed; see $logs/sys-configure.log and $logs/sys-build.log" >&2; exit 1; }
    mkdir -p "$out.tmp" && cp "$srcdir/build-system/qemu-system-x86_64" "$out.tmp/" && mv "$out.tmp" "$out"
  fi
  link bin/qemu-system-x86_64 "$out/qemu-system-x86_64"
}

# qemu-io 7.2 built with the dtrace trace backend, as Fedora and RHEL build QEMU: its
# trace events are USDT probes (.note.stapsdt), which syncamp uses when a binary has no
# symbols. From the same source tree, in its own build folder; installed stripped.
build_qemu_dtrace() {
  local out; out=$(key qemu-7.2-dtrace build_qemu_dtrace)
  if [ ! -x "$out/qemu-io" ]; then
    local srcdir; srcdir=$(qemu72_src)
    echo "testbed: building qemu-io with the dtrace trace backend into $out (a few minutes)" >&2
    rm -rf "$srcdir/build-dtrace" && mkdir -p "$srcdir/build-dtrace"
    (cd "$srcdir/build-dtrace" \
      && PATH=/usr/bin:$PATH PYTHON=/usr/bin/python3 ../configure --meson=/usr/bin/meson --target-list= \
           --disable-system --disable-user --enable-tools --disable-docs \
           --disable-install-blobs --enable-linux-io-uring --enable-linux-aio \
           --enable-trace-backends=dtrace,log >"$logs/dtrace-configure.log" 2>&1 \
      && PATH=/usr/bin:$PATH ninja -j"$(nproc)" qemu-io >"$logs/dtrace-build.log" 2>&1) || {
        echo "testbed: dtrace QEMU build failed; see $logs/dtrace-configure.log and $logs/dtrace-build.log" >&2; exit 1; }
    mkdir -p "$out.tmp" && objcopy --strip-all "$srcdir/build-dtrace/qemu-io" "$out.tmp/qemu-io" && mv "$out.tmp" "$out"
  fi
  link dtrace/bin/qemu-io "$out/qemu-io"
}

# The guest: Debian's kernel and virtio/ext4 modules, busybox, firmware, from Debian packages.
build_guest() {
  local kpkg
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$kpkg" ] || { echo "testbed: cannot find Debian's linux-image package" >&2; exit 1; }
  local g
  g="$(key "guest-$kpkg" build_guest)-$(cat "$top/scripts/guest/init.sh" "$top/scripts/guest/mkinitramfs.py" | sha256sum | cut -c1-8)"
  if [ ! -f "$g/vmlinuz" ] || [ ! -f "$g/initrd.gz" ] || [ ! -f "$g/fw/bios-256k.bin" ]; then
    rm -rf "$g.tmp" && mkdir -p "$g.tmp/debs" "$g.tmp/fw"
    (cd "$g.tmp/debs" && apt-get download -qq "$kpkg" busybox-static seabios qemu-system-data >&2 2>/dev/null \
      && for d in *.deb; do dpkg-deb -x "$d" ex; done) \
      || { echo "testbed: cannot download $kpkg, busybox-static, seabios, qemu-system-data" >&2; exit 1; }
    local kver=${kpkg#linux-image-}
    local ex="$g.tmp/debs/ex"
    local mods="$ex/lib/modules/$kver/kernel"
    cp "$ex/boot/vmlinuz-$kver" "$g.tmp/vmlinuz"
    cp "$ex/bin/busybox" "$g.tmp/busybox"  # also for the kernel guests' initramfs
    cp "$ex/usr/share/seabios/bios-256k.bin" "$g.tmp/fw/"
    cp "$ex/usr/share/qemu/linuxboot_dma.bin" "$ex/usr/share/qemu/kvmvapic.bin" "$g.tmp/fw/"
    python3 "$top/scripts/guest/mkinitramfs.py" "$g.tmp/initrd.gz" "$ex/bin/busybox" "$top/scripts/guest/init.sh" \
      "$mods/drivers/virtio/virtio_ring.ko" "$mods/drivers/virtio/virtio.ko" \
      "$mods/drivers/virtio/virtio_pci_legacy_dev.ko" "$mods/drivers/virtio/virtio_pci_modern_dev.ko" \
      "$mods/drivers/virtio/virtio_pci.ko" "$mods/drivers/block/virtio_blk.ko" \
      "$mods/lib/crc16.ko" "$mods/fs/mbcache.ko" "$mods/fs/jbd2/jbd2.ko" "$mods/crypto/crc32c_generic.ko" \
      "$mods/fs/ext4/ext4.ko"
    rm -rf "$g.tmp/debs" && rm -rf "$g" && mv "$g.tmp" "$g"
  fi
  link guest "$g"
}

# A private apt configuration, derived from the machine's own Debian sources, that knows
# the suites the guest kernels come from; the host's apt is left as it is and nothing is
# installed. Prints the options to give apt-get/apt-cache.
private_apt() {
  local dir="$cache/apt"
  local opts="-o Dir::Etc::SourceList=$dir/sources.list -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State=$dir/state -o Dir::State::status=$dir/state/status -o Dir::Cache=$dir/cache
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null -o APT::Architecture=amd64"
  if [ ! -f "$dir/state/lists/.updated" ]; then
    mkdir -p "$dir/state/lists/partial" "$dir/cache/archives/partial"
    touch "$dir/state/status"
    # The URI of every Debian archive the machine uses (deb822 .sources or one-line lists),
    # without the security and updates suites.
    local uris
    uris=$( { awk 'BEGIN { RS = "" } /Suites:[^\n]*(bookworm|trixie|bullseye|sid)( |$|\n)/ && !/security/ {
                     if (match($0, /URIs:[^\n]*/)) { split(substr($0, RSTART + 5, RLENGTH - 5), u, " "); for (i in u) print u[i] } }' \
                 /etc/apt/sources.list.d/*.sources 2>/dev/null
               grep -hE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
                 | grep -E '[[:space:]](bookworm|trixie|bullseye|sid)[[:space:]]' | grep -v security | awk '{print $2}'; } | sort -u)
    [ -n "$uris" ] || { echo "testbed: no Debian archive among the machine's apt sources" >&2; exit 1; }
    : >"$dir/sources.list"
    for u in $uris; do
      for suite in bullseye bookworm trixie; do echo "deb $u $suite main" >>"$dir/sources.list"; done
    done
    # shellcheck disable=SC2086
    apt-get $opts update -qq >&2 || { echo "testbed: apt-get update with $dir/sources.list failed" >&2; exit 1; }
    touch "$dir/state/lists/.updated"
  fi
  echo $opts
}

# A Debian kernel for the guest tests (Tests/EndToEndTests/KernelGuestTests.swift): the
# vmlinuz, its config, and the virtio disk and ext4 modules with their dependencies,
# decompressed, with the order to load them (base.order, ext4.order). Linked as
# .testbed/kernels/SUITE.
build_kernel() {
  local suite=$1 opts pkg
  opts=$(private_apt)
  # shellcheck disable=SC2086
  pkg=$(apt-cache $opts depends "linux-image-amd64/$suite" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || { echo "testbed: no kernel package of Debian $suite in $cache/apt/sources.list" >&2; exit 1; }
  local out; out="$(key "kernel-$pkg" build_kernel)-$(sha256sum <"$top/scripts/guest/kernel-modules.py" | cut -c1-8)"
  if [ ! -f "$out/vmlinuz" ]; then
    echo "testbed: fetching $pkg (Debian $suite) into $out" >&2
    rm -rf "$out.tmp" && mkdir -p "$out.tmp/deb"
    # shellcheck disable=SC2086
    (cd "$out.tmp/deb" && apt-get $opts download -qq "$pkg" >&2 2>/dev/null && dpkg-deb -x ./*.deb x) \
      || { echo "testbed: cannot download $pkg" >&2; exit 1; }
    local kver=${pkg#linux-image-} mods
    mods=$(find "$out.tmp/deb/x" -maxdepth 4 -type d -path "*/lib/modules/$kver" | head -1)
    cp "$out.tmp/deb/x/boot/vmlinuz-$kver" "$out.tmp/vmlinuz"
    cp "$out.tmp/deb/x/boot/config-$kver" "$out.tmp/config"
    echo "$kver" >"$out.tmp/release"
    python3 "$top/scripts/guest/kernel-modules.py" "$mods" "$out.tmp/modules" \
      base=virtio_pci,virtio_blk ext4=crc32c_generic,ext4
    rm -rf "$out.tmp/deb" "$out" && mv "$out.tmp" "$out"
  fi
  link "kernels/$suite" "$out"
}

install_deps
[ "${1:-}" = "--deps" ] && exit 0
mkdir -p "$logs"
if [ "${1:-}" = "--kernels" ]; then
  for suite in bullseye bookworm trixie; do build_kernel "$suite"; done
  exit 0
fi
# An older checkout kept the testbed itself in .testbed/: make room for the links.
[ -d "$bed/src" ] && rm -rf "$bed"
build_qemu
build_qemu_dtrace
if [ "${1:-}" != "--tools-only" ]; then
  build_qemu_system
  build_guest
  for suite in bullseye bookworm trixie; do build_kernel "$suite"; done
fi
echo "$bin"
