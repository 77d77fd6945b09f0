import Foundation
import XCTest

/// Traces real qemu-io workloads on the testbed QEMU 7.2 and checks the report against the workload,
/// against strace's count of the same run repeated, and against the counts of the flush-sites
/// reference (../shared/reference/qcow2-flush-sites.md §5).
final class QemuIOScenarioTests: XCTestCase {
    struct Outcome {
        var json: [String: Any]
        var strace: Int
        var ops: [[String: Any]] { json.array("ops") }
        func ops(_ kind: String) -> [[String: Any]] { ops.filter { $0["kind"] as? String == kind } }
    }

    /// Runs `commands` on a fresh image under the collector, and again under strace.
    func scenario(_ commands: [String], cache: String, binary: String = Harness.qemuIO,
                  imageOptions: String? = nil) throws -> Outcome {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let traced = try Harness.makeImage(dir, name: "traced.qcow2", options: imageOptions)
        let (json, _) = try Harness.traceAndReport(dir, binary: binary,
                                                   args: Harness.qemuIOArgs(cache: cache, commands: commands, image: traced))
        let counted = try Harness.makeImage(dir, name: "counted.qcow2", options: imageOptions)
        let strace = try Harness.straceSyncCount(binary: binary, args: Harness.qemuIOArgs(cache: cache, commands: commands, image: counted), dir: dir)
        let outcome = Outcome(json: json, strace: strace)
        // Invariants of every report.
        XCTAssertEqual(json["schema"] as? String, "syncamp.report/1")
        XCTAssertEqual(json.int("capture.lost_events"), 0)
        XCTAssertEqual(json.int("totals.host_fdatasyncs"), strace, "host syncs differ from strace's count of the same workload")
        XCTAssertEqual(json.int("totals.unattributed_host_syncs"), 0)
        let placed = outcome.ops.reduce(0) { $0 + (($1["host_fdatasyncs"] as? Int) ?? 0) }
        XCTAssertEqual(placed, json.int("totals.host_fdatasyncs"), "every host sync sits under an op or open/close")
        return outcome
    }

    func hostSyncs(_ op: [String: Any]) -> Int { op["host_fdatasyncs"] as? Int ?? -1 }

    /// (a) One 4 KiB write and a flush on a fresh image: l2_allocate's 3 syncs in the write, 2 in the flush.
    func testFreshImageWriteFlush() throws {
        let o = try scenario(["write 0 4k", "flush"], cache: "writeback")
        XCTAssertEqual(o.json.int("totals.guest_writes"), 1)
        XCTAssertEqual(o.json.int("totals.guest_flushes"), 1)
        XCTAssertEqual(o.json.int("totals.host_fdatasyncs"), 5)
        XCTAssertEqual(o.ops("write").map(hostSyncs), [3])
        XCTAssertEqual(o.ops("flush").map(hostSyncs), [2])
        let write = try XCTUnwrap(o.ops("write").first)
        XCTAssertEqual(write["offset"] as? Int, 0)
        XCTAssertEqual(write["bytes"] as? Int, 4096)
        XCTAssertEqual((o.json.dict("totals")["sync_amplification"] as? NSNumber)?.doubleValue, 5.0)
    }

    /// (b) The same write again on the now-allocated cluster costs only the flush's final sync.
    func testOverwriteOfAllocatedCluster() throws {
        let o = try scenario(["write 0 4k", "flush", "write 0 4k", "flush"], cache: "writeback")
        XCTAssertEqual(o.json.int("totals.guest_writes"), 2)
        XCTAssertEqual(o.json.int("totals.guest_flushes"), 2)
        XCTAssertEqual(o.json.int("totals.host_fdatasyncs"), 6)
        XCTAssertEqual(o.ops("write").map(hostSyncs), [3, 0])
        XCTAssertEqual(o.ops("flush").map(hostSyncs), [2, 1])
    }

    /// (d) 50 write+flush pairs, each on a new cluster: 3 + 50 x (refcount pre-flush + final flush).
    func testFiftyAllocatingWriteFlushPairs() throws {
        let commands = (0..<50).flatMap { ["write \($0 * 64)k 4k", "flush"] }
        let o = try scenario(commands, cache: "writeback")
        XCTAssertEqual(o.json.int("totals.guest_writes"), 50)
        XCTAssertEqual(o.json.int("totals.guest_flushes"), 50)
        XCTAssertEqual(o.json.int("totals.host_fdatasyncs"), 103)
        XCTAssertEqual(o.ops("flush").map(hostSyncs), Array(repeating: 2, count: 50))
        XCTAssertEqual(o.ops("write").map(hostSyncs), [3] + Array(repeating: 0, count: 49))
    }

    /// (g) Writethrough: the write carries its own flush (FUA emulation); the explicit flush finds nothing to do.
    func testWritethroughMode() throws {
        let o = try scenario(["write 0 4k", "flush"], cache: "writethrough")
        XCTAssertEqual(o.json.int("totals.guest_writes"), 1)
        XCTAssertEqual(o.json.int("totals.guest_flushes"), 1)
        XCTAssertEqual(o.json.int("totals.host_fdatasyncs"), 5)
        XCTAssertEqual(o.ops("write").map(hostSyncs), [5])
        XCTAssertEqual(o.ops("flush").map(hostSyncs), [0])
    }

    /// Debian's stock, stripped qemu-io: exported fallbacks give the same totals.
    func testStockQemuIOFreshImage() throws {
        try Harness.requireStockQemuIO()
        let o = try scenario(["write 0 4k", "flush"], cache: "writeback", binary: Harness.stockQemuIO)
        XCTAssertEqual(o.json.int("totals.guest_writes"), 1)
        XCTAssertEqual(o.json.int("totals.guest_flushes"), 1)
        XCTAssertEqual(o.json.int("totals.host_fdatasyncs"), 5)
        XCTAssertEqual(o.ops("write").map(hostSyncs), [3])
        XCTAssertEqual(o.ops("flush").map(hostSyncs), [2])
        XCTAssertEqual(o.json.dict("target")["has_symtab"] as? Bool, false)
        let fallbacks = o.json.array("probes").filter { $0["fallback"] as? Bool == true }.compactMap { $0["symbol"] as? String }
        XCTAssertTrue(fallbacks.contains("blk_pwrite"), "stock binary should use the exported blk_pwrite: \(fallbacks)")
    }

    /// The stock binary with the 50-pair and writethrough workloads.
    func testStockQemuIOFiftyPairsAndWritethrough() throws {
        try Harness.requireStockQemuIO()
        let commands = (0..<50).flatMap { ["write \($0 * 64)k 4k", "flush"] }
        let o = try scenario(commands, cache: "writeback", binary: Harness.stockQemuIO)
        XCTAssertEqual(o.json.int("totals.guest_writes"), 50)
        XCTAssertEqual(o.json.int("totals.guest_flushes"), 50)
        XCTAssertEqual(o.json.int("totals.host_fdatasyncs"), 103)
        let wt = try scenario(["write 0 4k", "flush"], cache: "writethrough", binary: Harness.stockQemuIO)
        XCTAssertEqual(wt.json.int("totals.host_fdatasyncs"), 5)
        XCTAssertEqual(wt.ops("write").map(hostSyncs), [5])
    }

    /// qemu-io's aio_write goes through blk_aio_pwritev; its aio_flush only drains (no flush), so the
    /// allocation's dirty metadata reaches the disk at close: 2 syncs in the image_close group.
    func testAsyncWriteThenClose() throws {
        let o = try scenario(["aio_write 0 4k", "aio_flush"], cache: "writeback")
        XCTAssertEqual(o.json.int("totals.guest_writes"), 1)
        XCTAssertEqual(o.json.int("totals.guest_flushes"), 0)
        XCTAssertEqual(o.json.int("totals.host_fdatasyncs"), 5)
        XCTAssertEqual(o.ops("write").map(hostSyncs), [3])
        XCTAssertEqual(o.ops("image_close").map(hostSyncs), [2])
        XCTAssertNil(o.json.dict("totals")["sync_amplification"] as? NSNumber, "no guest flush: amplification is null")
    }
}
