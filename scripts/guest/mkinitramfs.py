#!/usr/bin/env python3
"""Writes a gzip'd newc cpio initramfs. Deterministic (mtime 0).

usage: mkinitramfs.py OUT BUSYBOX INIT MODULE.ko...
       mkinitramfs.py --map OUT DEST=SRC...

The first form: busybox as /bin/busybox, INIT as /init, the modules flat in /lib/modules.
The second: each SRC file at DEST (parent folders made as needed; modes kept).
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

def write(out, files, executables=()):
    """files: (dest, src) pairs; dest is relative to the root. A file is executable in the
    image when its source is, or when its dest is in `executables`."""
    parts, dirs = [], set()
    for d in ("bin", "dev", "proc", "sys", "mnt", "tmp", "lib", "lib/modules"):
        dirs.add(d)
        parts.append(entry(d, 0o040755))
    for dest, src in files:
        dest = dest.lstrip("/")
        parent = os.path.dirname(dest)
        chain = []
        while parent and parent not in dirs:
            chain.append(parent)
            parent = os.path.dirname(parent)
        for d in reversed(chain):
            dirs.add(d)
            parts.append(entry(d, 0o040755))
        mode = 0o100755 if os.access(src, os.X_OK) or dest in executables else 0o100644
        parts.append(entry(dest, mode, open(src, "rb").read()))
    parts.append(entry("TRAILER!!!", 0))
    with open(out, "wb") as f:
        f.write(gzip.compress(b"".join(parts), mtime=0, compresslevel=1))

def main(args):
    if args[0] == "--map":
        write(args[1], [a.split("=", 1) for a in args[2:]], executables=("init",))
        return
    out, busybox, init, *modules = args
    write(out, [("bin/busybox", busybox), ("init", init)]
          + [("lib/modules/" + os.path.basename(m), m) for m in modules], executables=("bin/busybox", "init"))

if __name__ == "__main__":
    main(sys.argv[1:])
