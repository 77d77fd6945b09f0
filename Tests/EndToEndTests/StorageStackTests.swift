import Foundation
import XCTest

/// One host fdatasync on ext4 becomes a journal commit and device flushes: traced on an ext4 file
/// system on a loop device the test owns, checked against the device's own flush count, in every aio mode.
final class StorageStackTests: XCTestCase {
    var loop = ""
    var mount = ""

    override func setUpWithError() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let backing = dir.appendingPathComponent("backing.img").path
        XCTAssertEqual(try Harness.run("/usr/bin/truncate", ["-s", "512M", backing]).status, 0)
        let l = try Harness.run("/sbin/losetup", ["-f", "--show", backing])
        guard l.status == 0 else { throw Harness.unavailable("a loop device for the ext4 file system (losetup: \(l.stderr))") }
        loop = l.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // No lazy inode-table or journal init: it would write (and flush) in the background while we count.
        XCTAssertEqual(try Harness.run("/sbin/mkfs.ext4", ["-q", "-E", "lazy_itable_init=0,lazy_journal_init=0", loop]).status, 0)
        mount = dir.appendingPathComponent("mnt").path
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        // commit=600: no periodic journal commit lands in the window by chance, so the device's own
        // flush count over the run is exactly what the run caused.
        XCTAssertEqual(try Harness.run("/bin/mount", ["-o", "commit=600", loop, mount]).status, 0)
        addTeardownBlock { [loop, mount] in
            _ = try? Harness.run("/bin/umount", [mount])
            _ = try? Harness.run("/sbin/losetup", ["-d", loop])
        }
    }

    /// Flush requests the device completed so far (/sys/block/loopN/stat, field 16 on current kernels).
    func deviceFlushes() throws -> Int {
        let name = URL(fileURLWithPath: loop).lastPathComponent
        let fields = try String(contentsOfFile: "/sys/block/\(name)/stat", encoding: .utf8).split(separator: " ")
        return Int(fields[15]) ?? -1
    }

    /// Transactions the journal committed so far (/proc/fs/jbd2/loopN-8/info: "N transactions (M requested), ...").
    func journalTransactions() throws -> Int {
        let name = URL(fileURLWithPath: loop).lastPathComponent
        let info = try String(contentsOfFile: "/proc/fs/jbd2/\(name)-8/info", encoding: .utf8)
        return Int(info.split(separator: " ").first ?? "") ?? -1
    }

    let commands = (0..<20).flatMap { ["write \($0 * 64)k 4k", "flush"] }

    func trace(aio: String, cache: String) throws -> (json: [String: Any], deviceDelta: Int, commitDelta: Int) {
        let image = mount + "/img-\(aio).qcow2"
        XCTAssertEqual(try Harness.run(Harness.qemuImg, ["create", "-q", "-f", "qcow2", image, "1G"]).status, 0)
        XCTAssertEqual(try Harness.run("/bin/sync", []).status, 0)
        let before = try deviceFlushes()
        let commitsBefore = try journalTransactions()
        let capture = mount + "/../run-\(aio).syncamp"
        let c = try Harness.run(Harness.collector, ["-o", capture, "--", Harness.qemuIO, "-f", "qcow2", "-t", cache, "-i", aio]
                                + commands.flatMap { ["-c", $0] } + [image])
        XCTAssertEqual(c.status, 0, c.stderr)
        let after = try deviceFlushes()
        return (try Harness.report(capture), after - before, try journalTransactions() - commitsBefore)
    }

    /// aio=threads: 3 + 20 x 2 fdatasyncs; the allocating (F2) one commits the journal, the final one does not.
    func testThreadsJournalAndDeviceFlushes() throws {
        let (json, delta, commitDelta) = try trace(aio: "threads", cache: "writeback")
        XCTAssertEqual(json.int("totals.host_fdatasyncs"), 43)
        XCTAssertEqual(json.int("totals.unattributed_host_syncs"), 0)
        let linked = try XCTUnwrap(json.int("totals.device_flushes"))
        let unlinked = try XCTUnwrap(json.int("totals.unlinked_device_flushes"))
        XCTAssertEqual(linked + unlinked, delta, "device flushes against the device's own count")
        XCTAssertGreaterThanOrEqual(linked, 43, "every fdatasync flushes the device at least once")
        let commits = try XCTUnwrap(json.int("totals.journal_commits"))
        XCTAssertEqual(commits + (json.int("totals.unlinked_journal_commits") ?? 0), commitDelta,
                       "journal commits against the journal's own transaction count")
        XCTAssertGreaterThanOrEqual(commits, 20, "each allocating flush grew the file: a journal commit")
        XCTAssertLessThan(commits, 43, "overwrite-only fdatasyncs need no commit")
        // Each commit sits under a host sync's file-system sync, on the loop device.
        var commitParents = 0
        func walk(_ n: [String: Any], underSync: Bool) {
            let kind = n["kind"] as? String
            if kind == "journal_commit", underSync { commitParents += 1 }
            for c in n["children"] as? [[String: Any]] ?? [] { walk(c, underSync: underSync || kind == "fs_sync") }
        }
        for op in json.array("ops") { for c in op["children"] as? [[String: Any]] ?? [] { walk(c, underSync: false) } }
        XCTAssertEqual(commitParents, commits)
    }

    /// aio=native (O_DIRECT) flushes through the thread pool too; aio=io_uring submits IORING_OP_FSYNC and
    /// makes no fdatasync system call: the trees and totals hold in every mode.
    func testNativeAndIoUringModes() throws {
        let native = try trace(aio: "native", cache: "none")
        XCTAssertEqual(native.json.int("totals.host_fdatasyncs"), 43)
        XCTAssertEqual(native.json.int("totals.unattributed_host_syncs"), 0)
        XCTAssertEqual((native.json.int("totals.device_flushes") ?? 0) + (native.json.int("totals.unlinked_device_flushes") ?? 0),
                       native.deviceDelta)

        let uring = try trace(aio: "io_uring", cache: "writeback")
        XCTAssertEqual(uring.json.int("totals.host_fdatasyncs"), 43, "io_uring fsyncs are host syncs")
        XCTAssertEqual(uring.json.int("totals.unattributed_host_syncs"), 0)
        XCTAssertEqual(uring.json["causes"] as? [String: Int], ["l2_table_alloc": 3, "refcount_dependency": 20, "guest_flush": 20])
        XCTAssertEqual((uring.json.int("totals.device_flushes") ?? 0) + (uring.json.int("totals.unlinked_device_flushes") ?? 0),
                       uring.deviceDelta)
        var syscalls = Set<String>()
        func walk(_ n: [String: Any]) {
            if n["kind"] as? String == "host_sync", let s = (n["details"] as? [String: String])?["syscall"] { syscalls.insert(s) }
            for c in n["children"] as? [[String: Any]] ?? [] { walk(c) }
        }
        for op in uring.json.array("ops") { for c in op["children"] as? [[String: Any]] ?? [] { walk(c) } }
        XCTAssertEqual(syscalls, ["io_uring_fsync"])
    }
}
