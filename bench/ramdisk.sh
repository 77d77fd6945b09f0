# Sourced by bench/overhead.sh and bench/breakdown.sh (--ram): ext4, with its journal, on a
# loop device whose backing file is in a tmpfs, mounted on a folder. fdatasync there still
# commits the journal and flushes the device, but nothing waits for a disk.
#
#   ramdisk_mount DIR NAME     # NAME: the script, for its messages
#   ramdisk_unmount DIR        # in the EXIT trap; does nothing if nothing was mounted
ramdir="" loopdev=""
ramdisk_mount() {
  ramdir=$(mktemp -d /tmp/syncamp-ram.XXXXXX)
  mount -t tmpfs -o size=3g tmpfs "$ramdir"
  truncate -s 2900M "$ramdir/disk"
  loopdev=$(losetup -f --show "$ramdir/disk")
  mkfs.ext4 -q "$loopdev"
  mount "$loopdev" "$1"
  echo "$2: images on ext4 on $loopdev, backed by tmpfs" >&2
}
ramdisk_unmount() {
  if [ -n "$loopdev" ]; then umount "$1" 2>/dev/null || true; losetup -d "$loopdev" 2>/dev/null || true; fi
  [ -n "$ramdir" ] && { umount "$ramdir" 2>/dev/null || true; rmdir "$ramdir" 2>/dev/null || true; }
  return 0
}
