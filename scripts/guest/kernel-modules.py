#!/usr/bin/env python3
"""Copies kernel modules and their dependencies out of an unpacked Debian kernel package,
decompressed, with the order to load them in.

usage: kernel-modules.py MODULES_DIR OUT GROUP=MODULE[,MODULE...]...

MODULES_DIR is lib/modules/VERSION of the unpacked package (no modules.dep there: it is
made by depmod at install, so the dependencies are read from each module's .modinfo
`depends=` entry). For each GROUP, OUT/GROUP.order lists the modules to insmod, in
order, that an earlier group has not loaded; a module built into the kernel has no file
and is left out. The modules go to OUT/NAME.ko.
"""
import lzma, os, shutil, subprocess, sys

def norm(name):
    return name.replace("-", "_")

def index(root):
    found = {}
    for d, _, files in os.walk(root):
        for f in files:
            for ext in (".ko", ".ko.xz", ".ko.zst", ".ko.gz"):
                if f.endswith(ext):
                    found[norm(f[: -len(ext)])] = os.path.join(d, f)
    return found

def read(path):
    if path.endswith(".xz"):
        return lzma.decompress(open(path, "rb").read())
    if path.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout
    if path.endswith(".gz"):
        import gzip
        return gzip.decompress(open(path, "rb").read())
    return open(path, "rb").read()

def depends(data):
    for item in data.split(b"\0"):
        if item.startswith(b"depends="):
            return [norm(x) for x in item[len(b"depends="):].decode().split(",") if x]
    return []

def main(root, out, *groups):
    mods = index(root)
    os.makedirs(out, exist_ok=True)
    loaded = set()
    for g in groups:
        name, targets = g.split("=", 1)
        order = []
        def visit(m):
            if m in loaded or m not in mods:
                return
            loaded.add(m)
            data = read(mods[m])
            for d in depends(data):
                visit(d)
            with open(os.path.join(out, m + ".ko"), "wb") as f:
                f.write(data)
            order.append(m)
        for t in targets.split(","):
            visit(norm(t))
        with open(os.path.join(out, name + ".order"), "w") as f:
            f.write("".join(m + "\n" for m in order))

if __name__ == "__main__":
    main(*sys.argv[1:])
