import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Checks what the collector needs from the machine before it touches BPF.
enum Preflight {
    static let tracefs = "/sys/kernel/tracing"

    /// Root, kernel BTF, and tracefs (mounted here if missing, as perf does).
    static func check() throws {
        guard geteuid() == 0 else { throw CollectorError.notRoot }
        guard FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") else { throw CollectorError.noBTF }
        if !FileManager.default.fileExists(atPath: tracefs + "/events") {
            if mount("nodev", tracefs, "tracefs", 0, nil) != 0 {
                throw CollectorError.noTracefs(String(cString: strerror(errno)))
            }
        }
    }
}
