#!/usr/bin/env bash
# Builds the QEMU 7.2 testbed from Debian's `qemu` source package into .testbed/
# (ignored by git), reusing what is there: qemu-io and qemu-img with symbols,
# qemu-system-x86_64 with symbols, and a tiny guest (Debian's kernel, a busybox
# initramfs running scripts/guest/init.sh, SeaBIOS and QEMU's option ROMs).
#
#   scripts/testbed.sh              # build what is missing, print the bin folder
#   scripts/testbed.sh --deps       # only install the apt packages the project needs
#   scripts/testbed.sh --tools-only # qemu-io and qemu-img only
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
      libfdt-dev e2fsprogs bpftrace time util-linux gcc graphviz
      curl python3-prometheus-client make man-db groff-base systemtap-sdt-dev)

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

# qemu-system-x86_64 7.2 with symbols, from the same source tree.
build_qemu_system() {
  [ -x "$bin/qemu-system-x86_64" ] && return 0
  local srcdir
  srcdir=$(find "$bed/src" -maxdepth 1 -type d -name 'qemu-7.2*' | head -1)
  # Debian's dfsg source drops the EDK2 firmware; meson only needs the files to exist
  # (they are never built: only the qemu-system-x86_64 target is).
  for f in aarch64-code arm-code arm-vars i386-code i386-secure-code i386-vars x86_64-code x86_64-secure-code; do
    [ -e "$srcdir/pc-bios/edk2-$f.fd.bz2" ] || touch "$srcdir/pc-bios/edk2-$f.fd.bz2"
  done
  echo "testbed: building qemu-system-x86_64 in $srcdir/build-system (several minutes)" >&2
  mkdir -p "$srcdir/build-system"
  (cd "$srcdir/build-system" \
    && PATH=/usr/bin:$PATH PYTHON=/usr/bin/python3 ../configure --meson=/usr/bin/meson \
         --target-list=x86_64-softmmu --disable-user --disable-tools --disable-docs \
         --disable-install-blobs --enable-linux-io-uring --enable-linux-aio --disable-sdl \
         --disable-gtk --disable-vnc --disable-opengl --disable-spice --audio-drv-list= \
         --disable-xen --extra-cflags=-g >"$bed/sys-configure.log" 2>&1 \
    && PATH=/usr/bin:$PATH ninja -j"$(nproc)" qemu-system-x86_64 >"$bed/sys-build.log" 2>&1) || {
      echo "testbed: qemu-system build failed; see $bed/sys-configure.log and $bed/sys-build.log" >&2; exit 1; }
  cp "$srcdir/build-system/qemu-system-x86_64" "$bin/"
}

# qemu-io 7.2 built with the dtrace trace backend, as Fedora and RHEL build QEMU: its
# trace events are USDT probes (.note.stapsdt), which syncamp uses when a binary has no
# symbols. From the same source tree, in its own build folder; installed stripped.
build_qemu_dtrace() {
  [ -x "$bed/dtrace/bin/qemu-io" ] && return 0
  local srcdir
  srcdir=$(find "$bed/src" -maxdepth 1 -type d -name 'qemu-7.2*' | head -1)
  echo "testbed: building qemu-io with the dtrace trace backend in $srcdir/build-dtrace (a few minutes)" >&2
  mkdir -p "$srcdir/build-dtrace"
  (cd "$srcdir/build-dtrace" \
    && PATH=/usr/bin:$PATH PYTHON=/usr/bin/python3 ../configure --meson=/usr/bin/meson --target-list= \
         --disable-system --disable-user --enable-tools --disable-docs \
         --disable-install-blobs --enable-linux-io-uring --enable-linux-aio \
         --enable-trace-backends=dtrace,log >"$bed/dtrace-configure.log" 2>&1 \
    && PATH=/usr/bin:$PATH ninja -j"$(nproc)" qemu-io >"$bed/dtrace-build.log" 2>&1) || {
      echo "testbed: dtrace QEMU build failed; see $bed/dtrace-configure.log and $bed/dtrace-build.log" >&2; exit 1; }
  mkdir -p "$bed/dtrace/bin"
  objcopy --strip-all "$srcdir/build-dtrace/qemu-io" "$bed/dtrace/bin/qemu-io"
}

# The guest: Debian's kernel and virtio/ext4 modules, busybox, firmware, from Debian packages.
build_guest() {
  local g="$bed/guest"
  [ -f "$g/vmlinuz" ] && [ -f "$g/initrd.gz" ] && [ -f "$g/fw/bios-256k.bin" ] \
    && [ "$g/initrd.gz" -nt "$top/scripts/guest/init.sh" ] && return 0
  mkdir -p "$g/debs" "$g/fw"
  local kpkg
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$kpkg" ] || { echo "testbed: cannot find Debian's linux-image package" >&2; exit 1; }
  (cd "$g/debs" && rm -rf ex && apt-get download -qq "$kpkg" busybox-static seabios qemu-system-data >&2 2>/dev/null \
    && for d in *.deb; do dpkg-deb -x "$d" ex; done)
  local kver=${kpkg#linux-image-}
  local mods="$g/debs/ex/lib/modules/$kver/kernel"
  cp "$g/debs/ex/boot/vmlinuz-$kver" "$g/vmlinuz"
  cp "$g/debs/ex/usr/share/seabios/bios-256k.bin" "$g/fw/"
  cp "$g/debs/ex/usr/share/qemu/linuxboot_dma.bin" "$g/debs/ex/usr/share/qemu/kvmvapic.bin" "$g/fw/"
  python3 "$top/scripts/guest/mkinitramfs.py" "$g/initrd.gz" "$g/debs/ex/bin/busybox" "$top/scripts/guest/init.sh" \
    "$mods/drivers/virtio/virtio_ring.ko" "$mods/drivers/virtio/virtio.ko" \
    "$mods/drivers/virtio/virtio_pci_legacy_dev.ko" "$mods/drivers/virtio/virtio_pci_modern_dev.ko" \
    "$mods/drivers/virtio/virtio_pci.ko" "$mods/drivers/block/virtio_blk.ko" \
    "$mods/lib/crc16.ko" "$mods/fs/mbcache.ko" "$mods/fs/jbd2/jbd2.ko" "$mods/crypto/crc32c_generic.ko" \
    "$mods/fs/ext4/ext4.ko"
  rm -rf "$g/debs/ex"
}

install_deps
[ "${1:-}" = "--deps" ] && exit 0
build_qemu
build_qemu_dtrace
if [ "${1:-}" != "--tools-only" ]; then
  build_qemu_system
  build_guest
fi
echo "$bin"
