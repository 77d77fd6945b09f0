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
        var paths: [String] = []
        for arg in command.dropFirst() {
            var candidates = [arg]
            for part in arg.split(separator: ",") where part.contains("filename=") {
                candidates.append(String(part[part.range(of: "filename=")!.upperBound...]))
            }
            for c in candidates where !c.hasPrefix("-") && !paths.contains(c) {
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: c, isDirectory: &isDir), !isDir.boolValue, Qcow2Reader.isQcow2(path: c) {
                    paths.append(c)
                }
            }
        }
        return paths.compactMap { p in
            let absolute = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
            return try? Qcow2Reader.read(path: p, name: URL(fileURLWithPath: absolute).resolvingSymlinksInPath().path)
        }
    }

    /// The block devices holding the images (st_dev), in the kernel's dev_t encoding.
    static func devices(of images: [ImageState], pid: Int32?) -> [Manifest.Device] {
        var byDev: [UInt32: Manifest.Device] = [:]
        for image in images {
            var st = stat()
            let path = pid.map { "/proc/\($0)/root" + image.path } ?? image.path
            guard stat(path, &st) == 0 else { continue }
            let major = UInt32(truncatingIfNeeded: (st.st_dev >> 8) & 0xfff | ((st.st_dev >> 32) & ~0xfff))
            let minor = UInt32(truncatingIfNeeded: (st.st_dev & 0xff) | ((st.st_dev >> 12) & ~0xff))
            let dev = major << 20 | minor
            byDev[dev, default: Manifest.Device(dev: dev, major: major, minor: minor, images: [])].images.append(image.path)
        }
        return byDev.values.sorted { $0.dev < $1.dev }
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
}
