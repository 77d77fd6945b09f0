import Foundation
import SyncampCapture
import SyncampQcow2
#if canImport(Glibc)
import Glibc
#endif

/// Finds the qcow2 images a target uses and reads their state, read-only, before tracing starts.
///
/// A started command names its images on its command line (a plain path or a
/// `filename=` option); a running process has them open (/proc/PID/fd). Paths
/// from a running process are opened through /proc/PID/root with O_NOFOLLOW,
/// so a QEMU in another mount namespace is read correctly and a symlink
/// planted by the target is not followed.
enum ImageDiscovery {
    /// Images named on a command line, resolved against the current directory.
    static func fromCommand(_ command: [String]) -> [ImageState] {
        pathsInCommand(command).filter { Qcow2Reader.isQcow2(path: $0) }.compactMap { p in
            try? Qcow2Reader.read(path: p, name: absolute(p))
        }
    }

    /// Raw images named on a command line (`-f raw` files, block devices opened as `host_device`):
    /// the existing files and block devices that are not qcow2, as absolute paths.
    static func rawFromCommand(_ command: [String]) -> [String] {
        pathsInCommand(command).filter { !Qcow2Reader.isQcow2(path: $0) }.map(absolute)
    }

    /// Options whose argument is a file QEMU reads but never syncs.
    private static let notImages: Set<String> = ["-kernel", "-initrd", "-bios", "-dtb", "-L", "-pidfile", "-D", "-T",
                                                 "-serial", "-chardev", "-monitor", "-qmp", "-trace", "-readconfig"]

    /// Existing regular files and block devices named on a command line, plainly or as `file=`,
    /// `filename=` or `file.filename=` (`--image-opts`).
    private static func pathsInCommand(_ command: [String]) -> [String] {
        var paths: [String] = []
        for (i, arg) in command.enumerated().dropFirst() where !notImages.contains(command[i - 1]) {
            var candidates = [arg]
            // `file=X` (-drive), `filename=X` (-blockdev), `file.filename=X` (--image-opts, nested nodes)
            for part in arg.split(separator: ",") {
                guard let eq = part.firstIndex(of: "=") else { continue }
                let key = part[..<eq]
                if key == "file" || key == "filename" || key.hasSuffix(".filename") { candidates.append(String(part[part.index(after: eq)...])) }
            }
            for c in candidates where !c.hasPrefix("-") && !paths.contains(c) {
                var st = stat()
                guard stat(c, &st) == 0 else { continue }
                let type = st.st_mode & S_IFMT
                if type == S_IFREG || type == S_IFBLK { paths.append(c) }
            }
        }
        return paths
    }

    private static func absolute(_ p: String) -> String {
        let a = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
        return URL(fileURLWithPath: a).resolvingSymlinksInPath().path
    }

    /// The block devices under the images, in the kernel's dev_t encoding, with their file systems:
    /// a file's st_dev and the type mountinfo gives it; a block device opened as the image, its
    /// st_rdev; a btrfs file system, the device it is mounted from (its st_dev is anonymous).
    static func devices(of paths: [String], pid: Int32?) -> [Manifest.Device] {
        let mounts = Mounts(pid: pid)
        var byDev: [UInt32: Manifest.Device] = [:]
        for image in paths {
            var st = stat()
            let path = pid.map { "/proc/\($0)/root" + image } ?? image
            guard stat(path, &st) == 0 else { continue }
            let isDevice = st.st_mode & S_IFMT == S_IFBLK
            var (major, minor) = split(isDevice ? st.st_rdev : st.st_dev)
            // A btrfs subvolume's files have an st_dev of their own, not the mount's: then the mount holding the path.
            let mount = isDevice ? nil : mounts.mount(major: major, minor: minor) ?? mounts.mount(containing: image)
            var fsid: String?
            if mount?.type == .btrfs, let source = mount?.source, let found = btrfsDevice(source: source) {
                (major, minor, fsid) = (found.major, found.minor, found.fsid)
            }
            let dev = major << 20 | minor
            byDev[dev, default: Manifest.Device(dev: dev, major: major, minor: minor, images: [],
                                                fileSystem: isDevice ? .blockDevice : mount?.type,
                                                name: deviceName(major: major, minor: minor), fsid: fsid)].images.append(image)
        }
        return byDev.values.sorted { $0.dev < $1.dev }
    }

    /// glibc's major()/minor() of a dev_t.
    private static func split(_ d: dev_t) -> (UInt32, UInt32) {
        (UInt32(truncatingIfNeeded: (d >> 8) & 0xfff | ((d >> 32) & ~0xfff)),
         UInt32(truncatingIfNeeded: (d & 0xff) | ((d >> 12) & ~0xff)))
    }

    /// The kernel's name of a block device (/sys/dev/block/MAJOR:MINOR links to it).
    private static func deviceName(major: UInt32, minor: UInt32) -> String? {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/dev/block/\(major):\(minor)"))
            .map { URL(fileURLWithPath: $0).lastPathComponent }
    }

    /// The device a btrfs file system is mounted from and its fsid: /sys/fs/btrfs/FSID/devices/NAME.
    /// A btrfs on several devices is watched on the one it was mounted from.
    private static func btrfsDevice(source: String) -> (major: UInt32, minor: UInt32, fsid: String)? {
        let name = URL(fileURLWithPath: source).resolvingSymlinksInPath().lastPathComponent
        let root = "/sys/fs/btrfs"
        for fsid in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        where FileManager.default.fileExists(atPath: "\(root)/\(fsid)/devices/\(name)") {
            guard let text = try? String(contentsOfFile: "/sys/class/block/\(name)/dev", encoding: .utf8) else { continue }
            let parts = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ":").compactMap { UInt32($0) }
            guard parts.count == 2 else { continue }
            return (parts[0], parts[1], fsid)
        }
        return nil
    }

    /// The mounts a process sees (/proc/PID/mountinfo): device, file-system type and source.
    struct Mounts {
        struct Mount {
            var type: FileSystemKind
            var source: String
        }
        private var byDevice: [String: Mount] = [:]
        private var byPoint: [(point: String, mount: Mount)] = []

        init(pid: Int32?) {
            let text = (try? String(contentsOfFile: "/proc/\(pid.map(String.init) ?? "self")/mountinfo", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") {
                // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
                let fields = line.split(separator: " ", omittingEmptySubsequences: false)
                guard fields.count > 4, let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count else { continue }
                let key = String(fields[2])
                let m = Mount(type: FileSystemKind(rawValue: String(fields[dash + 1])), source: String(fields[dash + 2]))
                if byDevice[key] == nil { byDevice[key] = m }
                byPoint.append((String(fields[4]).replacingOccurrences(of: "\\040", with: " "), m))
            }
        }

        func mount(major: UInt32, minor: UInt32) -> Mount? { byDevice["\(major):\(minor)"] }

        /// The last-mounted file system whose mount point holds `path` (the longest match).
        func mount(containing path: String) -> Mount? {
            let holding = byPoint.filter { path == $0.point || path.hasPrefix($0.point == "/" ? "/" : $0.point + "/") }
            let longest = holding.map(\.point.count).max()
            return holding.last { $0.point.count == longest }?.mount
        }
    }

    /// Images a running process has open.
    static func fromProcess(_ pid: Int32) -> [ImageState] {
        let fdDir = "/proc/\(pid)/fd"
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? []
        var seen: Set<String> = []
        var states: [ImageState] = []
        for fd in fds.sorted(by: { (Int($0) ?? 0) < (Int($1) ?? 0) }) {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDir)/\(fd)"),
                  target.hasPrefix("/"), !seen.contains(target) else { continue }
            seen.insert(target)
            let inRoot = "/proc/\(pid)/root" + target
            guard Qcow2Reader.isQcow2(path: inRoot), let s = try? Qcow2Reader.read(path: inRoot, name: target, noFollow: true) else { continue }
            states.append(s)
        }
        return states
    }

    /// Raw images a running process has open for writing: block devices and regular files that
    /// are not qcow2 (a raw image is opened read-write; what QEMU only reads is never synced).
    static func rawFromProcess(_ pid: Int32) -> [String] {
        let fdDir = "/proc/\(pid)/fd"
        var paths: [String] = []
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: fdDir)) ?? [] {
            // Standard input, output and error are never an image, even when redirected to a
            // writable file (qemu-io > out.log): QEMU opens images after them.
            guard let n = Int(fd), n > 2,
                  let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(fdDir)/\(fd)"),
                  target.hasPrefix("/"), !paths.contains(target),
                  let info = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8),
                  let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags:") })
                    .flatMap({ Int($0.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8) }),
                  flags & Int(O_ACCMODE) != Int(O_RDONLY) else { continue }
            let inRoot = "/proc/\(pid)/root" + target
            var st = stat()
            guard lstat(inRoot, &st) == 0, [S_IFREG, S_IFBLK].contains(st.st_mode & S_IFMT),
                  !Qcow2Reader.isQcow2(path: inRoot) else { continue }
            paths.append(target)
        }
        return paths.sorted()
    }
}
