import Foundation
import XCTest

/// Work that is not a guest request, named for what it is (issue 18; F16 of the flush-sites
/// reference): internal snapshots taken and reverted to with qemu-img, and the repair of a
/// dirty lazy_refcounts image at open.
///
/// Each workload runs three times on copies of one prepared image: with the minimal probe
/// set, with `--detail`, and under strace. Checked: the host syncs equal strace's count; the
/// per-op kinds and causes are the same with both probe sets; the syncs are the operation's
/// own (cause `snapshot` / an `image_check` op), not `image_open` or `housekeeping`; the model
/// deviates nowhere (what follows a snapshot or a repair is unpredicted, with its reason);
/// nothing is unattributed.
final class ImageMaintenanceScenarioTests: XCTestCase {
    /// Runs `binary args(image)` on three copies of the image `prepare` makes; returns the minimal set's report.
    func check(binary: String, prepare: (URL, String) throws -> Void, args: (String) -> [String],
               file: StaticString = #filePath, line: UInt = #line) throws -> (json: [String: Any], strace: Int) {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        func image(_ name: String) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try prepare(dir, path)
            return path
        }
        let (minimal, _) = try Harness.traceAndReport(dir, binary: binary, args: args(try image("min.qcow2")))
        let (detail, _) = try Harness.traceAndReport(dir, binary: binary, args: args(try image("det.qcow2")), extra: ["--detail"])
        let strace = try Harness.straceSyncCount(binary: binary, args: args(try image("counted.qcow2")), dir: dir)
        XCTAssertGreaterThan(strace, 0, "the workload syncs", file: file, line: line)
        for (json, set) in [(minimal, "minimal"), (detail, "detail")] {
            XCTAssertEqual(json.int("totals.host_fdatasyncs"), strace, "\(set): host syncs", file: file, line: line)
            XCTAssertEqual(json.int("totals.unattributed_host_syncs"), 0, "\(set)", file: file, line: line)
            XCTAssertEqual(json.dict("model")["deviating_ops"] as? [Int] ?? [], [], "\(set): a known gap is not a deviation", file: file, line: line)
        }
        func perOp(_ j: [String: Any]) -> [String] {
            j.array("ops").map { "\($0["kind"] ?? "?") \(($0["causes"] as? [String: Int] ?? [:]).sorted { $0.key < $1.key })" }
        }
        XCTAssertEqual(perOp(minimal), perOp(detail), "per-op causes, minimal set vs --detail", file: file, line: line)
        return (minimal, strace)
    }

    /// An image with 1M of data written and flushed.
    func withData(_ dir: URL, _ path: String, options: String? = nil) throws {
        let name = URL(fileURLWithPath: path).lastPathComponent
        _ = try Harness.makeImage(dir, name: name, size: "1G", options: options)
        let r = try Harness.run(Harness.qemuIO, Harness.qemuIOArgs(cache: "writeback", commands: ["write 0 1M", "flush"], image: path))
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// `qemu-img snapshot -c`: every sync is the snapshot's (its table, the refcount increments, the header).
    func testInternalSnapshotIsAnOpOfItsOwn() throws {
        let (json, strace) = try check(binary: Harness.qemuImg, prepare: { dir, path in try withData(dir, path) },
                                       args: { ["snapshot", "-c", "s1", $0] })
        let snapshots = json.array("ops").filter { $0["kind"] as? String == "snapshot" }
        XCTAssertEqual(snapshots.count, 1, "one snapshot op")
        XCTAssertEqual(snapshots.first?["entry"] as? String, "qcow2_snapshot_create")
        XCTAssertEqual(json["causes"] as? [String: Int], ["snapshot": strace], "no snapshot sync is called image_open")
    }

    /// `qemu-img snapshot -a`: reverting to a snapshot is a snapshot op too.
    func testRevertToSnapshot() throws {
        let (json, strace) = try check(binary: Harness.qemuImg, prepare: { dir, path in
            try withData(dir, path)
            XCTAssertEqual(try Harness.run(Harness.qemuImg, ["snapshot", "-c", "s1", path]).status, 0)
            let r = try Harness.run(Harness.qemuIO, Harness.qemuIOArgs(cache: "writeback", commands: ["write 512M 64k", "flush"], image: path))
            XCTAssertEqual(r.status, 0, r.stderr)
        }, args: { ["snapshot", "-a", "s1", $0] })
        let snapshots = json.array("ops").filter { $0["kind"] as? String == "snapshot" }
        XCTAssertEqual(snapshots.map { $0["entry"] as? String }, ["qcow2_snapshot_goto"])
        XCTAssertEqual(json["causes"] as? [String: Int], ["snapshot": strace])
    }

    /// A lazy_refcounts image left dirty (qemu-io `abort`) is repaired when it is opened for
    /// writing: that is an `image_check` op, and the model does not guess past it.
    func testRepairOfADirtyImageAtOpen() throws {
        let (json, _) = try check(binary: Harness.qemuIO, prepare: { dir, path in
            try withData(dir, path, options: "lazy_refcounts=on")
            // abort() leaves the dirty bit set: the process dies on purpose.
            _ = try Harness.run(Harness.qemuIO, Harness.qemuIOArgs(cache: "writeback", commands: ["write 4M 64k", "abort"], image: path))
            let info = try Harness.run(Harness.qemuImg, ["info", "--output=json", path])
            XCTAssertTrue(info.stdout.contains("\"dirty-flag\": true") || info.stdout.contains("\"corrupt\""), "the image is dirty: \(info.stdout)")
        }, args: { Harness.qemuIOArgs(cache: "writeback", commands: ["write 8M 4k", "flush"], image: $0) })
        let ops = json.array("ops")
        XCTAssertEqual(ops.first?["kind"] as? String, "image_check", "the repair runs at open, before the first request")
        XCTAssertEqual(ops.first?["entry"] as? String, "qcow2_co_check_locked")
        let requests = ops.filter { ["write", "flush"].contains($0["kind"] as? String ?? "") }
        XCTAssertEqual(requests.count, 2)
        for op in requests {
            XCTAssertNil(op["predicted"], "no prediction past a repair")
            XCTAssertEqual(op["unpredicted"] as? String, "state_unknown_after_unmodelled_op")
        }
    }

    /// `qemu-img commit`: the copy into the base is requests by qemu-img commit, and emptying the
    /// top image afterwards (`qcow2_make_empty`) is an op of its own, not the close.
    func testCommitCopiesThenEmptiesTheTop() throws {
        let (json, _) = try check(binary: Harness.qemuImg, prepare: { dir, path in
            let base = path + ".base.qcow2"
            XCTAssertEqual(try Harness.run(Harness.qemuImg, ["create", "-q", "-f", "qcow2", base, "1G"]).status, 0)
            XCTAssertEqual(try Harness.run(Harness.qemuImg, ["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", path]).status, 0)
            let r = try Harness.run(Harness.qemuIO, Harness.qemuIOArgs(cache: "writeback", commands: ["write 0 64k", "write 1M 64k", "flush"], image: path))
            XCTAssertEqual(r.status, 0, r.stderr)
        }, args: { ["commit", "-t", "writeback", $0] })
        let ops = json.array("ops")
        let copies = ops.filter { ["write", "flush"].contains($0["kind"] as? String ?? "") }
        XCTAssertFalse(copies.isEmpty)
        XCTAssertTrue(copies.allSatisfy { $0["origin"] as? String == "qemu-img commit" }, "the copy is qemu-img commit's, not a guest's")
        let empties = ops.filter { $0["kind"] as? String == "make_empty" }
        XCTAssertEqual(empties.count, 1)
        XCTAssertEqual(empties.first?["entry"] as? String, "qcow2_make_empty")
        XCTAssertGreaterThan((empties.first?["causes"] as? [String: Int])?["make_empty"] ?? 0, 0, "emptying the top syncs")
        XCTAssertTrue(ops.filter { $0["kind"] as? String == "image_close" }
            .allSatisfy { ($0["causes"] as? [String: Int])?["make_empty"] == nil })
    }

    /// Persistent dirty bitmaps: marking them in use at open and storing them at close are
    /// `bitmap` syncs, not image_open or image_close.
    func testPersistentBitmapSyncsAreNamed() throws {
        let (json, strace) = try check(binary: Harness.qemuIO, prepare: { dir, path in
            try withData(dir, path)
            XCTAssertEqual(try Harness.run(Harness.qemuImg, ["bitmap", "--add", path, "b0"]).status, 0)
        }, args: { Harness.qemuIOArgs(cache: "writeback", commands: ["write 2M 4k", "flush"], image: $0) })
        let causes = json["causes"] as? [String: Int] ?? [:]
        XCTAssertGreaterThan(causes["bitmap"] ?? 0, 0)
        XCTAssertNil(causes["image_open"], "the in-use marking at open is the bitmaps'")
        XCTAssertNil(causes["image_close"], "storing the bitmaps at close is the bitmaps'")
        XCTAssertEqual(causes.values.reduce(0, +), strace)
    }
}
