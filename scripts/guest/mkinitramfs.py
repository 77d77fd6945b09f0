#!/usr/bin/env python3
"""Writes a gzip'd newc cpio initramfs: busybox as /bin/busybox, init.sh as /init,
and the given kernel modules flat in /lib/modules. Deterministic (mtime 0).

usage: mkinitramfs.py OUT BUSYBOX INIT MODULE.ko...
"""
import gzip, os, sys

def entry(name, mode, data=b"", ino=[0]):
    ino[0] += 1
    name_b = name.encode() + b"\0"
    head = "070701" + "".join("%08X" % v for v in (
        ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
    out = head.encode() + name_b
    out += b"\0" * ((4 - len(out) % 4) % 4)
    out += data + b"\0" * ((4 - len(data) % 4) % 4)
    return out

def main(out, busybox, init, *modules):
    parts = []
    for d in ("bin", "dev", "proc", "sys", "mnt", "lib", "lib/modules"):
        parts.append(entry(d, 0o040755))
    parts.append(entry("bin/busybox", 0o100755, open(busybox, "rb").read()))
    parts.append(entry("init", 0o100755, open(init, "rb").read()))
    for m in modules:
        parts.append(entry("lib/modules/" + os.path.basename(m), 0o100644, open(m, "rb").read()))
    parts.append(entry("TRAILER!!!", 0))
    with open(out, "wb") as f:
        f.write(gzip.compress(b"".join(parts), mtime=0))

if __name__ == "__main__":
    main(*sys.argv[1:])
