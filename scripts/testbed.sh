#!/usr/bin/env bash
# Builds the testbed the end-to-end tests trace, reusing what is there:
# - QEMU 7.2 (Debian 12) and 10.0 (Debian 13) from Debian's `qemu` source packages:
#   qemu-io and qemu-img with symbols, qemu-system-x86_64 with symbols, and a stripped
#   qemu-io built with the dtrace trace backend (USDT probes, as Fedora and RHEL ship);
# - Debian's stock (stripped) qemu-utils 10.0 from bookworm-backports, unpacked, never
#   installed (the stock 7.2 is the machine's own qemu-utils);
# - a tiny guest (Debian's kernel, a busybox initramfs running scripts/guest/init.sh,
#   SeaBIOS and QEMU's option ROMs) and Debian's 5.10, 6.1 and 6.12 kernels.
#
# Where: every build goes to its own folder in the cache (SYNCAMP_CACHE, default
# /var/cache/syncamp), named after what was built and a key: the hash of the pinned
# source tarball and of the shell functions that built it. A fresh clone on the same
# machine (CI) reuses them; a changed build step or source makes a new folder; a new
# machine builds everything with this same script. .testbed/ in the clone (ignored
# by git) is a folder of symlinks into the cache, the paths the tests use:
#   .testbed/bin/{qemu-io,qemu-img,qemu-system-x86_64}      QEMU 7.2 with symbols
#   .testbed/dtrace/bin/qemu-io                             QEMU 7.2, dtrace backend, stripped
#   .testbed/qemu-10.0/bin/..., .testbed/qemu-10.0/dtrace/bin/qemu-io   the same for 10.0
#   .testbed/stock-10.0/bin/{qemu-io,qemu-img}              Debian's stock qemu-utils 10.0
#   .testbed/cet/bin/qemu-io                                QEMU 7.2 with -fcf-protection=full (endbr64)
#   .testbed/guest, .testbed/kernels/{bullseye,bookworm,trixie}
#
#   scripts/testbed.sh              # build what is missing, print the bin folder
#   scripts/testbed.sh --deps       # only install the apt packages the project needs
#   scripts/testbed.sh --tools-only # qemu-io and qemu-img (both versions) only
#   scripts/testbed.sh --kernels    # only the guest kernels (Debian's 5.10, 6.1, 6.12)
#
# Sources and packages come through a private apt configuration derived from the
# machine's own apt sources at run time: no registry host is written into the
# repository, and the machine's apt is left as it is.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache=${SYNCAMP_CACHE:-/var/cache/syncamp}
bed="$top/.testbed"
bin="$bed/bin"
logs="$cache/logs"

# The QEMU sources that are built, pinned by the upstream tarball of Debian's `qemu`
# source package. Debian's own patches are not applied (--skip-patches), so every
# Debian revision made from the same tarball builds the same tree, and an extra apt
# source never changes which QEMU is built.
qemu_orig() {
  case $1 in
    7.2) echo qemu_7.2+dfsg.orig.tar.xz ;;     # Debian 12 (bookworm)
    10.0) echo qemu_10.0.13+ds.orig.tar.xz ;;  # Debian 13 (trixie)
    *) echo "testbed: no pinned QEMU $1" >&2; exit 1 ;;
  esac
}
# Debian's stock qemu-utils 10.0, built for Debian 12 (bookworm-backports).
STOCK_QEMU_UTILS_10=1:10.0.2+ds-2+deb13u1~bpo12+1

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "testbed: installing packages needs root; run as root (sudo $0)" >&2
    exit 1
  fi
}

# Packages for building syncamp itself and the QEMU testbed.
deps=(libbpf-dev libelf-dev zlib1g-dev linux-libc-dev bpftool strace
      qemu-utils dpkg-dev xz-utils ninja-build meson pkg-config python3-venv python3-pip
      libglib2.0-dev libpixman-1-dev liburing-dev libaio-dev flex bison
      libfdt-dev e2fsprogs xfsprogs btrfs-progs bpftrace time util-linux gcc graphviz
      curl python3-prometheus-client make man-db groff-base systemtap-sdt-dev
      libdw-dev libdebuginfod-dev debuginfod libcapstone-dev
      libcurl4-openssl-dev   # the analyzer linked with --static-swift-stdlib (make install): FlyingFox pulls in FoundationNetworking
      libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients)  # LibvirtTests: a real libvirtd (scripts/private-libvirtd.sh) runs
                             # the testbed's QEMU; no QEMU package comes with them (--no-install-recommends)

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
    || { echo "testbed: apt-get install failed; see $logs/apt.log" >&2; exit 1; }
}

# key NAME VERSION FUNCTION...: the cache folder for what FUNCTION builds from VERSION's source.
key() {
  local name=$1 version=$2; shift 2
  local orig=""
  [ -n "$version" ] && orig=$(qemu_orig "$version")
  echo "$cache/$name-$( { echo "$orig"; declare -f "$@"; } | sha256sum | cut -c1-12)"
}

# link PATH TARGET: .testbed/PATH is a symlink to TARGET in the cache.
link() {
  mkdir -p "$(dirname "$bed/$1")"
  ln -sfn "$2" "$bed/$1"
}

# Where a version's programs are linked in .testbed/ (7.2 keeps the paths it always had).
prefix() { [ "$1" = 7.2 ] && echo "" || echo "qemu-$1/"; }

# A private apt configuration, derived from the machine's own Debian sources, that knows
# the suites the testbed takes sources, kernels and stock packages from; the host's apt
# is left as it is and nothing is installed. Prints the options to give apt-get/apt-cache.
private_apt() {
  local dir="$cache/apt"
  local opts="-o Dir::Etc::SourceList=$dir/sources.list -o Dir::Etc::SourceParts=/dev/null
    -o Dir::State=$dir/state -o Dir::State::status=$dir/state/status -o Dir::Cache=$dir/cache
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null -o APT::Architecture=amd64"
  # The URI of every Debian archive the machine uses (deb822 .sources or one-line lists),
  # without the security and updates suites.
  local uris
  uris=$( { awk 'BEGIN { RS = "" } /Suites:[^\n]*(bookworm|trixie|bullseye|sid)( |$|\n)/ && !/security/ {
                   if (match($0, /URIs:[^\n]*/)) { split(substr($0, RSTART + 5, RLENGTH - 5), u, " "); for (i in u) print u[i] } }' \
               /etc/apt/sources.list.d/*.sources 2>/dev/null
             grep -hE '^deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
               | grep -E '[[:space:]](bookworm|trixie|bullseye|sid)[[:space:]]' | grep -v security | awk '{print $2}'; } | sort -u)
  [ -n "$uris" ] || { echo "testbed: no Debian archive among the machine's apt sources" >&2; exit 1; }
  local want
  want=$(for u in $uris; do
           for suite in bullseye bookworm trixie; do echo "deb $u $suite main"; done
           for suite in bookworm trixie; do echo "deb-src $u $suite main"; done
           echo "deb $u bookworm-backports main"
         done)
  if [ ! -f "$dir/state/lists/.updated" ] || [ "$(cat "$dir/sources.list" 2>/dev/null)" != "$want" ]; then
    mkdir -p "$dir/state/lists/partial" "$dir/cache/archives/partial"
    touch "$dir/state/status"
    echo "$want" >"$dir/sources.list"
    # shellcheck disable=SC2086
    apt-get $opts update -qq >&2 || { echo "testbed: apt-get update with $dir/sources.list failed" >&2; exit 1; }
    touch "$dir/state/lists/.updated"
  fi
  echo $opts
}

# qemu_src VERSION: the unpacked source of the pinned tarball (Debian's patches not
# applied), fetched once per machine; prints its folder.
qemu_src() {
  local version=$1 orig srcdir="$cache/src/qemu-$1"
  orig=$(qemu_orig "$version")
  if [ ! -f "$srcdir/VERSION" ] || [ "$(cat "$srcdir/.orig" 2>/dev/null)" != "$orig" ]; then
    local opts ver
    opts=$(private_apt)
    # The source package version made from the pinned tarball.
    # shellcheck disable=SC2086
    ver=$(apt-cache $opts showsrc qemu 2>/dev/null | awk -v orig="$orig" '
            /^Package:/ { v = "" } /^Version:/ { v = $2 } index($0, " " orig) && v != "" { print v; exit }')
    [ -n "$ver" ] || { echo "testbed: no qemu source package made from $orig in $cache/apt/sources.list; update the pin in $0" >&2; exit 1; }
    echo "testbed: fetching Debian's qemu source package $ver" >&2
    rm -rf "$cache/src/dl-$version" && mkdir -p "$cache/src/dl-$version"
    # shellcheck disable=SC2086
    (cd "$cache/src/dl-$version" && apt-get $opts source -qq --download-only "qemu=$ver" >&2 2>/dev/null \
      && dpkg-source -x --skip-patches qemu_*.dsc x >&2) || { echo "testbed: cannot fetch qemu $ver" >&2; exit 1; }
    local x="$cache/src/dl-$version/x"
    # QEMU 8 and later configure meson and pycotap in their own venv from python/wheels,
    # which Debian's +ds tarball leaves out: the versions QEMU pins (pythondeps.toml).
    if [ -f "$x/pythondeps.toml" ]; then
      local pins
      pins=$(sed -nE 's/^(meson|pycotap) *= *\{.*installed = "([^"]+)".*/\1==\2/p' "$x/pythondeps.toml")
      # shellcheck disable=SC2086
      python3 -m pip download -q --no-deps -d "$x/python/wheels" $pins >&2 \
        || { echo "testbed: pip download $pins failed" >&2; exit 1; }
    fi
    # Firmware the dfsg/ds tarballs drop; meson only needs the files to exist (they are never built).
    for f in aarch64-code arm-code arm-vars i386-code i386-secure-code i386-vars x86_64-code x86_64-secure-code \
             loongarch64-code loongarch64-vars riscv-code riscv-vars; do
      [ -e "$x/pc-bios/edk2-$f.fd.bz2" ] || touch "$x/pc-bios/edk2-$f.fd.bz2"
    done
    echo "$orig" >"$x/.orig"
    rm -rf "$srcdir" && mv "$x" "$srcdir" && rm -rf "$cache/src/dl-$version"
  fi
  echo "$srcdir"
}

# configure_qemu VERSION SRCDIR BUILDDIR LOG ARGS...: QEMU's configure, with Debian 12's meson
# for 7.2 and QEMU's own venv (meson from python/wheels) for later versions.
configure_qemu() {
  local version=$1 srcdir=$2 build=$3 log=$4; shift 4
  local meson=()
  [ "$version" = 7.2 ] && meson=(--meson=/usr/bin/meson)
  rm -rf "$build" && mkdir -p "$build"
  (cd "$build" && PATH=/usr/bin:$PATH PYTHON=/usr/bin/python3 "$srcdir/configure" "${meson[@]}" \
     --disable-docs --disable-install-blobs --enable-linux-io-uring --enable-linux-aio "$@" >"$log" 2>&1)
}

# build_qemu VERSION: qemu-io and qemu-img with symbols.
build_qemu() {
  local version=$1 out; out=$(key "qemu-$version-tools" "$version" build_qemu configure_qemu)
  if [ ! -x "$out/qemu-io" ] || [ ! -x "$out/qemu-img" ]; then
    local srcdir; srcdir=$(qemu_src "$version")
    echo "testbed: building QEMU $version's qemu-io and qemu-img into $out (a few minutes)" >&2
    (configure_qemu "$version" "$srcdir" "$srcdir/build" "$logs/$version-tools-configure.log" \
       --target-list= --disable-system --disable-user --enable-tools --extra-cflags=-g \
      && cd "$srcdir/build" && PATH=/usr/bin:$PATH ninja -j"$(nproc)" qemu-io qemu-img >"$logs/$version-tools-build.log" 2>&1) || {
        echo "testbed: QEMU $version build failed; see $logs/$version-tools-configure.log and $logs/$version-tools-build.log" >&2; exit 1; }
    mkdir -p "$out.tmp" && cp "$srcdir/build/qemu-io" "$srcdir/build/qemu-img" "$out.tmp/" && mv "$out.tmp" "$out"
  fi
  link "$(prefix "$version")bin/qemu-io" "$out/qemu-io"
  link "$(prefix "$version")bin/qemu-img" "$out/qemu-img"
}

# build_qemu_system VERSION: qemu-system-x86_64 with symbols, from the same source tree.
build_qemu_system() {
  local version=$1 out; out=$(key "qemu-$version-system" "$version" build_qemu_system configure_qemu)
  if [ ! -x "$out/qemu-system-x86_64" ]; then
    local srcdir; srcdir=$(qemu_src "$version")
    echo "testbed: building QEMU $version's qemu-system-x86_64 into $out (several minutes)" >&2
    (configure_qemu "$version" "$srcdir" "$srcdir/build-system" "$logs/$version-system-configure.log" \
       --target-list=x86_64-softmmu --disable-user --disable-tools --disable-sdl \
       --disable-gtk --disable-vnc --disable-opengl --disable-spice --audio-drv-list= \
       --disable-xen --extra-cflags=-g \
      && cd "$srcdir/build-system" && PATH=/usr/bin:$PATH ninja -j"$(nproc)" qemu-system-x86_64 >"$logs/$version-system-build.log" 2>&1) || {
        echo "testbed: QEMU $version qemu-system build failed; see $logs/$version-system-configure.log and $logs/$version-system-build.log" >&2; exit 1; }
    mkdir -p "$out.tmp" && cp "$srcdir/build-system/qemu-system-x86_64" "$out.tmp/" && mv "$out.tmp" "$out"
  fi
  link "$(prefix "$version")bin/qemu-system-x86_64" "$out/qemu-system-x86_64"
}

# build_qemu_dtrace VERSION: qemu-io built with the dtrace trace backend, as Fedora and RHEL
# build QEMU: its trace events are USDT probes (.note.stapsdt), which syncamp uses when a
# binary has no symbols. From the same source tree, in its own build folder; installed
# stripped, with QEMU's trace-events files beside it (the events the binary was built with).
build_qemu_dtrace() {
  local version=$1 out; out=$(key "qemu-$version-dtrace" "$version" build_qemu_dtrace configure_qemu)
  if [ ! -x "$out/qemu-io" ]; then
    local srcdir; srcdir=$(qemu_src "$version")
    echo "testbed: building QEMU $version's qemu-io with the dtrace trace backend into $out (a few minutes)" >&2
    (configure_qemu "$version" "$srcdir" "$srcdir/build-dtrace" "$logs/$version-dtrace-configure.log" \
       --target-list= --disable-system --disable-user --enable-tools --enable-trace-backends=dtrace,log \
      && cd "$srcdir/build-dtrace" && PATH=/usr/bin:$PATH ninja -j"$(nproc)" qemu-io >"$logs/$version-dtrace-build.log" 2>&1) || {
        echo "testbed: QEMU $version dtrace build failed; see $logs/$version-dtrace-configure.log and $logs/$version-dtrace-build.log" >&2; exit 1; }
    mkdir -p "$out.tmp/trace-events"
    objcopy --strip-all "$srcdir/build-dtrace/qemu-io" "$out.tmp/qemu-io"
    cp "$srcdir/block/trace-events" "$out.tmp/trace-events/block"
    cp "$srcdir/util/trace-events" "$out.tmp/trace-events/util"
    mv "$out.tmp" "$out"
  fi
  link "$(prefix "$version")dtrace/bin/qemu-io" "$out/qemu-io"
  link "$(prefix "$version")dtrace/trace-events" "$out/trace-events"
}

# build_qemu_cet VERSION: qemu-io with symbols, built with -fcf-protection=full as current
# distribution builds are (Ubuntu, Fedora): every function starts with endbr64, which the
# kernel single-steps under a uprobe. For the probe-site tests and benchmarks.
build_qemu_cet() {
  local version=$1 out; out=$(key "qemu-$version-cet" "$version" build_qemu_cet configure_qemu)
  if [ ! -x "$out/qemu-io" ]; then
    local srcdir; srcdir=$(qemu_src "$version")
    echo "testbed: building QEMU $version's qemu-io with -fcf-protection=full into $out (a few minutes)" >&2
    (configure_qemu "$version" "$srcdir" "$srcdir/build-cet" "$logs/$version-cet-configure.log" \
       --target-list= --disable-system --disable-user --enable-tools --extra-cflags="-g -fcf-protection=full" \
      && cd "$srcdir/build-cet" && PATH=/usr/bin:$PATH ninja -j"$(nproc)" qemu-io >"$logs/$version-cet-build.log" 2>&1) || {
        echo "testbed: QEMU $version cet build failed; see $logs/$version-cet-configure.log and $logs/$version-cet-build.log" >&2; exit 1; }
    mkdir -p "$out.tmp" && cp "$srcdir/build-cet/qemu-io" "$out.tmp/" && mv "$out.tmp" "$out"
  fi
  link "$(prefix "$version")cet/bin/qemu-io" "$out/qemu-io"
}

# Debian's stock qemu-utils 10.0 (stripped, as users get it), unpacked from its .deb.
fetch_stock_qemu_utils() {
  local out; out=$(key "stock-qemu-utils-$STOCK_QEMU_UTILS_10" "" fetch_stock_qemu_utils)
  if [ ! -x "$out/usr/bin/qemu-io" ]; then
    local opts; opts=$(private_apt)
    echo "testbed: unpacking Debian's qemu-utils $STOCK_QEMU_UTILS_10 into $out" >&2
    rm -rf "$out.tmp" && mkdir -p "$out.tmp/deb"
    # shellcheck disable=SC2086
    (cd "$out.tmp/deb" && apt-get $opts download -qq "qemu-utils=$STOCK_QEMU_UTILS_10" >&2 2>/dev/null \
      && dpkg-deb -x ./*.deb "$out.tmp") || { echo "testbed: cannot download qemu-utils $STOCK_QEMU_UTILS_10" >&2; exit 1; }
    rm -rf "$out.tmp/deb" && mv "$out.tmp" "$out"
  fi
  link stock-10.0/bin/qemu-io "$out/usr/bin/qemu-io"
  link stock-10.0/bin/qemu-img "$out/usr/bin/qemu-img"
}

# The guest: Debian's kernel and virtio/ext4 modules, busybox, firmware, from Debian packages.
build_guest() {
  local kpkg
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$kpkg" ] || { echo "testbed: cannot find Debian's linux-image package" >&2; exit 1; }
  local g
  g="$(key "guest-$kpkg" "" build_guest)-$(cat "$top/scripts/guest/init.sh" "$top/scripts/guest/mkinitramfs.py" | sha256sum | cut -c1-8)"
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
  local out; out="$(key "kernel-$pkg" "" build_kernel)-$(sha256sum <"$top/scripts/guest/kernel-modules.py" | cut -c1-8)"
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
for version in 7.2 10.0; do
  build_qemu "$version"
  build_qemu_dtrace "$version"
done
build_qemu_cet 7.2
fetch_stock_qemu_utils
if [ "${1:-}" != "--tools-only" ]; then
  for version in 7.2 10.0; do build_qemu_system "$version"; done
  build_guest
  for suite in bullseye bookworm trixie; do build_kernel "$suite"; done
fi
echo "$bin"
