import Foundation
import XCTest

/// XFS and btrfs hosts, raw images and block devices: each on a loop device the test makes,
/// traced with 20 write+flush pairs and checked against counts syncamp does not make: strace's
/// count of the same workload run again, the device's own flush counter (/sys/block/loopN/stat),
/// XFS's log forces (/sys/fs/xfs/loopN/stats/stats, `log` line: xs_log_force) and btrfs's
/// transaction commits (/sys/fs/btrfs/FSID/commit_stats, `commits`).
final class FileSystemStackTests: XCTestCase {
    let commands = (0..<20).flatMap { ["write \($0 * 64)k 4k", "flush"] }

    struct Run {
        var json: [String: Any]
        /// The device's own flush count over the run, and the file system's journal counter's.
        var deviceFlushes: Int
        var journal: Int
        /// strace's fdatasync/fsync count of the same workload on a fresh image.
        var straced: Int
    }

    override func setUpWithError() throws { try Harness.requireTracing() }

    /// Traces qemu-io on `image` (made fresh by `make`), then strace's run of the same on a second one.
    func trace(_ device: LoopDevice, format: String, make: (String) throws -> Void, image: String, again: String,
               aio: String = "threads", journal: () throws -> Int = { 0 }) throws -> Run {
        try make(image)
        XCTAssertEqual(try Harness.run("/bin/sync", []).status, 0)
        let flushes = try device.flushes(), commits = try journal()
        let capture = URL(fileURLWithPath: device.mount ?? NSTemporaryDirectory()).deletingLastPathComponent()
            .appendingPathComponent("run-\(UUID().uuidString.prefix(8)).syncamp").path
        let args = ["-f", format, "-t", "writeback", "-i", aio] + commands.flatMap { ["-c", $0] }
        let c = try Harness.run(Harness.collector, ["-o", capture, "--", Harness.qemuIO] + args + [image])
        XCTAssertEqual(c.status, 0, c.stderr)
        let run = Run(json: try Harness.report(capture), deviceFlushes: try device.flushes() - flushes,
                      journal: try journal() - commits, straced: 0)
        try make(again)
        var r = run
        r.straced = try Harness.straceSyncCount(binary: Harness.qemuIO, args: args + [again],
                                                dir: URL(fileURLWithPath: capture).deletingLastPathComponent())
        return r
    }

    func qcow2(_ path: String) throws {
        XCTAssertEqual(try Harness.run(Harness.qemuImg, ["create", "-q", "-f", "qcow2", path, "1G"]).status, 0)
    }

    func raw(_ path: String) throws {
        XCTAssertEqual(try Harness.run(Harness.qemuImg, ["create", "-q", "-f", "raw", path, "1G"]).status, 0)
    }

    /// What every run must show: host syncs = strace's, device flushes = the device's own count,
    /// all of them linked under the target's host syncs, and the device's file system named.
    func checkCommon(_ r: Run, _ device: LoopDevice, fileSystem: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.json.int("totals.host_fdatasyncs"), r.straced, "host syncs = strace's", file: file, line: line)
        XCTAssertEqual(r.json.int("totals.unattributed_host_syncs"), 0, file: file, line: line)
        XCTAssertEqual(r.json.int("totals.device_flushes"), r.deviceFlushes, "device flushes = /sys/block/\(device.name)/stat", file: file, line: line)
        XCTAssertEqual(r.json.int("totals.unlinked_device_flushes"), 0, "every flush under a host sync", file: file, line: line)
        XCTAssertGreaterThanOrEqual(r.deviceFlushes, 20, "each guest flush flushes the device", file: file, line: line)
        let devices = r.json.array("devices")
        XCTAssertEqual(devices.first { ($0["name"] as? String) == device.name }?["file_system"] as? String, fileSystem,
                       "\(devices)", file: file, line: line)
    }

    /// The nodes of `kind` in the trees, and how many of them sit under a node of `parent`.
    func count(_ json: [String: Any], _ kind: String, under parent: String) -> (all: Int, under: Int) {
        var all = 0, under = 0
        func walk(_ n: [String: Any], _ inside: Bool) {
            let k = n["kind"] as? String
            if k == kind { all += 1; if inside { under += 1 } }
            for c in n["children"] as? [[String: Any]] ?? [] { walk(c, inside || k == parent) }
        }
        for op in json.array("ops") { for c in op["children"] as? [[String: Any]] ?? [] { walk(c, false) } }
        return (all, under)
    }

    /// An XFS on a new loop device, with no background log work (xfs_log_worker, every
    /// xfssyncd_centisecs) in the window: the setting is restored after the test.
    func xfs() throws -> LoopDevice {
        let knob = "/proc/sys/fs/xfs/xfssyncd_centisecs"
        if let old = try? String(contentsOfFile: knob, encoding: .utf8) {
            try "720000".write(toFile: knob, atomically: false, encoding: .utf8)
            addTeardownBlock { try? old.write(toFile: knob, atomically: false, encoding: .utf8) }
        }
        return try LoopDevice(self, dir: try Harness.tempDir(self), mkfs: ["/sbin/mkfs.xfs", "-q", "-f"])
    }

    /// XFS: every fdatasync is an xfs_file_fsync; those that logged metadata force the log, whose
    /// writes flush the device. Log forces = XFS's own xs_log_force count.
    func testXFSLogForcesAndDeviceFlushes() throws {
        let device = try xfs()
        let stats = "/sys/fs/xfs/\(device.name)/stats/stats"
        let logForces = { () throws -> Int in
            let line = try String(contentsOfFile: stats, encoding: .utf8).split(separator: "\n").first { $0.hasPrefix("log ") }
            return Int(line?.split(separator: " ")[4] ?? "") ?? -1  // log: writes blocks noiclogs force force_sleep
        }
        let r = try trace(device, format: "qcow2", make: qcow2, image: device.mount! + "/img.qcow2",
                          again: device.mount! + "/again.qcow2", journal: logForces)
        checkCommon(r, device, fileSystem: "xfs")
        XCTAssertEqual(r.straced, 43)
        let forces = try XCTUnwrap(r.json.int("totals.journal_commits"))
        XCTAssertEqual(forces + (r.json.int("totals.unlinked_journal_commits") ?? -1), r.journal, "log forces = xs_log_force")
        XCTAssertGreaterThanOrEqual(forces, 20, "each allocating flush logs the file's growth")
        XCTAssertLessThan(forces, 43, "overwrite-only fdatasyncs force no log")
        XCTAssertEqual(count(r.json, "fs_sync", under: "host_sync").under, 43, "one xfs_file_fsync under each host sync")
        XCTAssertEqual(count(r.json, "journal_commit", under: "fs_sync").under, forces)
    }

    /// btrfs: every fdatasync is a btrfs_sync_file, which writes its log tree and superblocks
    /// (no tracepoint) and flushes the device; transaction commits = btrfs's own commit count.
    func testBtrfsSyncsCommitsAndDeviceFlushes() throws {
        // commit=300: no periodic transaction commit lands in the window by chance.
        let device = try LoopDevice(self, dir: try Harness.tempDir(self), mkfs: ["/sbin/mkfs.btrfs", "-q", "-f"], options: "commit=300")
        let fsid = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: "/sys/fs/btrfs").first {
            FileManager.default.fileExists(atPath: "/sys/fs/btrfs/\($0)/devices/\(device.name)")
        })
        let commits = { () throws -> Int in
            let text = try String(contentsOfFile: "/sys/fs/btrfs/\(fsid)/commit_stats", encoding: .utf8)
            let line = text.split(separator: "\n").first { $0.hasPrefix("commits ") }
            return Int(line?.split(separator: " ")[1] ?? "") ?? -1
        }
        let r = try trace(device, format: "qcow2", make: qcow2, image: device.mount! + "/img.qcow2",
                          again: device.mount! + "/again.qcow2", journal: commits)
        checkCommon(r, device, fileSystem: "btrfs")
        XCTAssertEqual(r.straced, 43)
        XCTAssertEqual((r.json.int("totals.journal_commits") ?? -1) + (r.json.int("totals.unlinked_journal_commits") ?? -1), r.journal,
                       "transaction commits = btrfs's commit count")
        XCTAssertEqual(count(r.json, "fs_sync", under: "host_sync").under, 43, "one btrfs_sync_file under each host sync")
        XCTAssertEqual(count(r.json, "device_flush", under: "fs_sync").under, r.deviceFlushes, "the flushes come from the file-system syncs")
    }

    /// A raw file: one host sync per guest flush (no format-level amplification), the device level below it.
    func testRawImageOnXFS() throws {
        let device = try xfs()
        let image = device.mount! + "/img.raw"
        let r = try trace(device, format: "raw", make: raw, image: image, again: device.mount! + "/again.raw")
        checkCommon(r, device, fileSystem: "xfs")
        XCTAssertEqual(r.straced, 20, "a raw image syncs once per guest flush")
        XCTAssertEqual(r.json.array("images").first { $0["path"] as? String == image }?["format"] as? String, "raw")
    }

    /// A block device as the image (file-posix host_device): no file system between the host sync
    /// and the device, whose flushes go under the host sync; with aio=io_uring, under its fsync.
    func testHostDeviceLoop() throws {
        let device = try LoopDevice(self, dir: try Harness.tempDir(self), size: "256M")
        let r = try trace(device, format: "raw", make: { _ in }, image: device.path, again: device.path)
        checkCommon(r, device, fileSystem: "block_device")
        XCTAssertEqual(r.straced, 20)
        XCTAssertEqual(r.deviceFlushes, 20, "blkdev_fsync: one device flush per host sync")
        XCTAssertEqual(count(r.json, "device_flush", under: "host_sync").under, 20)
        XCTAssertEqual(count(r.json, "fs_sync", under: "host_sync").all, 0)

        let uring = try trace(device, format: "raw", make: { _ in }, image: device.path, again: device.path, aio: "io_uring")
        XCTAssertEqual(uring.json.int("totals.host_fdatasyncs"), 20, "io_uring fsyncs are host syncs (strace sees none)")
        XCTAssertEqual(uring.json.int("totals.device_flushes"), uring.deviceFlushes)
        XCTAssertEqual(uring.json.int("totals.unlinked_device_flushes"), 0)
        XCTAssertEqual(count(uring.json, "device_flush", under: "host_sync").under, uring.deviceFlushes)
    }

    /// The same block device found in a running process (`collector -p`, as a VM is traced): an
    /// image it has open read-write that is not qcow2.
    func testHostDeviceFoundByAttaching() throws {
        let dir = try Harness.tempDir(self)
        let device = try LoopDevice(self, dir: dir, size: "256M")
        let before = try device.flushes()
        let (json, _, _) = try Harness.traceAttached(dir, args: ["-f", "raw", "-t", "writeback", device.path],
                                                     commands: Array(commands.prefix(10)))
        let flushes = try device.flushes() - before
        XCTAssertEqual(json.int("totals.host_fdatasyncs"), 5)
        XCTAssertEqual(json.int("totals.device_flushes"), flushes, "device flushes = /sys/block/\(device.name)/stat")
        XCTAssertEqual(json.int("totals.unlinked_device_flushes"), 0)
        XCTAssertEqual(flushes, 5)
        XCTAssertEqual(json.array("devices").first?["file_system"] as? String, "block_device")
        XCTAssertEqual(json.array("images").first?["format"] as? String, "raw")
    }
}
