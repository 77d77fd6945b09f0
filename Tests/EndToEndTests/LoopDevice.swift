import Foundation
import XCTest

/// A loop device over a sparse file in the test's folder, with a file system on it or none,
/// detached (and unmounted) at the end of the test, also when the test fails.
struct LoopDevice {
    /// "/dev/loopN".
    let path: String
    /// Where the file system is mounted; nil for a bare device.
    let mount: String?

    var name: String { URL(fileURLWithPath: path).lastPathComponent }

    /// - Parameters:
    ///   - mkfs: the mkfs program and its arguments before the device (nil: no file system).
    ///   - options: mount options.
    init(_ test: XCTestCase, dir: URL, size: String = "512M", mkfs: [String]? = nil, options: String? = nil) throws {
        let backing = dir.appendingPathComponent("backing-\(UUID().uuidString.prefix(8)).img").path
        XCTAssertEqual(try Harness.run("/usr/bin/truncate", ["-s", size, backing]).status, 0)
        let l = try Harness.run("/sbin/losetup", ["-f", "--show", backing])
        guard l.status == 0 else { throw Harness.unavailable("a loop device (losetup: \(l.stderr))") }
        path = l.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let mkfs else {
            mount = nil
            test.addTeardownBlock { [path] in _ = try? Harness.run("/sbin/losetup", ["-d", path]) }
            return
        }
        let point = dir.appendingPathComponent("mnt-\(URL(fileURLWithPath: path).lastPathComponent)").path
        mount = point
        test.addTeardownBlock { [path] in
            _ = try? Harness.run("/bin/umount", [point])
            _ = try? Harness.run("/sbin/losetup", ["-d", path])
        }
        guard FileManager.default.isExecutableFile(atPath: mkfs[0]) else {
            throw Harness.unavailable("\(mkfs[0]) (scripts/testbed.sh installs it)")
        }
        let made = try Harness.run(mkfs[0], Array(mkfs.dropFirst()) + [path])
        XCTAssertEqual(made.status, 0, made.stderr)
        try FileManager.default.createDirectory(atPath: point, withIntermediateDirectories: true)
        let m = try Harness.run("/bin/mount", (options.map { ["-o", $0] } ?? []) + [path, point])
        XCTAssertEqual(m.status, 0, m.stderr)
    }

    /// Flush requests the device completed so far (/sys/block/loopN/stat, field 16 on current kernels).
    func flushes() throws -> Int {
        let fields = try String(contentsOfFile: "/sys/block/\(name)/stat", encoding: .utf8).split(separator: " ")
        return Int(fields[15]) ?? -1
    }
}
