import Foundation
import SyncampCapture
import XCTest

/// Cheap probe sites on real builds: a QEMU built with -fcf-protection=full (every function
/// starts with endbr64, which the kernel single-steps) and Debian's stock qemu-io (several
/// probed functions start with `sub rsp`). The probes move to the first instruction the
/// kernel emulates and the causes stay those of the flush-sites reference; objdump says
/// what is at the entry, strace counts the syncs.
final class ProbeSitesEndToEndTests: XCTestCase {
    static var cetQemuIO: String { Harness.repo.appendingPathComponent(".testbed/cet/bin/qemu-io").path }
    static let commands = ["write 0 4k", "flush"] + (1 ..< 10).flatMap { ["write \($0 * 64)k 4k", "flush"] }
    /// Reference (§5 (a), (d)): the first write allocates an L2 table, every flush after an allocation is F2 + F1.
    static let opCauses: [[String: Int]] = [["l2_table_alloc": 3], ["refcount_dependency": 1, "guest_flush": 1]]
        + Array(repeating: [[:], ["refcount_dependency": 1, "guest_flush": 1]], count: 9).flatMap { $0 }

    func trace(_ binary: String, extra: [String] = []) throws -> (json: [String: Any], manifest: Manifest) {
        let dir = try Harness.tempDir(self)
        let img = try Harness.makeImage(dir, name: "img.qcow2")
        let capture = dir.appendingPathComponent("run.syncamp").path
        let c = try Harness.run(Harness.collector, ["-o", capture] + extra + ["--", binary]
                                + Harness.qemuIOArgs(cache: "writeback", commands: Self.commands, image: img))
        XCTAssertEqual(c.status, 0, c.stderr)
        return (try Harness.report(capture), try CaptureReader(path: capture).manifest)
    }

    func opCauses(_ json: [String: Any]) -> [[String: Int]] {
        json.array("ops").filter { ["write", "flush"].contains($0["kind"] as? String ?? "") }.map { $0["causes"] as? [String: Int] ?? [:] }
    }

    /// The first instruction of `symbol` in `binary`, as objdump prints it.
    func objdumpFirst(_ binary: String, _ symbol: String) throws -> String {
        let r = try Harness.run("/usr/bin/objdump", ["-d", "-M", "intel", "--no-show-raw-insn", "--disassemble=\(symbol)", binary])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").filter { $0.contains(":\t") }
        return lines.first.map { String($0.split(separator: "\t").last ?? "") } ?? ""
    }

    func testEndbr64BuildIsProbedPastItsEntriesWithTheSameCauses() throws {
        try Harness.requireTracing()
        try Harness.require(Self.cetQemuIO, "QEMU 7.2 built with -fcf-protection=full")
        XCTAssertEqual(try objdumpFirst(Self.cetQemuIO, "qcow2_cache_write"), "endbr64", "the build starts its functions with endbr64")
        let moved = try trace(Self.cetQemuIO)
        let entry = try trace(Self.cetQemuIO, extra: ["--probe-at-entry"])
        // Same causes, op by op, as the reference says and as at the entries.
        XCTAssertEqual(opCauses(moved.json), Self.opCauses)
        XCTAssertEqual(opCauses(entry.json), Self.opCauses)
        XCTAssertEqual(moved.json.int("totals.unattributed_host_syncs"), 0)
        // Every probe of the minimal set moved off its endbr64 to an emulated instruction.
        let functions = moved.manifest.probes.filter { $0.table != "usdt" }
        XCTAssertGreaterThan(functions.count, 10)
        for p in functions {
            XCTAssertEqual(p.cost, "emulated", "\(p.symbol) at \(p.siteInstruction ?? "?")")
            if let e = p.entryOffset {
                XCTAssertGreaterThan(p.fileOffset, e, p.symbol)
                XCTAssertLessThan(p.fileOffset - e, 64, p.symbol)
            }
        }
        // Where objdump shows endbr64 at the entry, the probe moved; where it does not (a static
        // function whose address is never taken needs no endbr64), it stayed.
        for p in functions {
            let first = try objdumpFirst(Self.cetQemuIO, p.symbol)
            XCTAssertEqual(p.entryOffset != nil, first == "endbr64", "\(p.symbol): entry \(first), site \(p.siteInstruction ?? "?")")
        }
        XCTAssertGreaterThan(functions.filter { $0.entryOffset != nil }.count, 10, "the endbr64 entries were skipped")
        let atEntry = entry.manifest.probes.filter { $0.table != "usdt" }
        XCTAssertTrue(atEntry.allSatisfy { $0.entryOffset == nil }, "--probe-at-entry keeps every probe at its entry")
        XCTAssertGreaterThan(atEntry.filter { $0.siteInstruction == "endbr64" && $0.cost == "single-stepped" }.count, 10)
        // The report counts what each run paid in second traps: none with the sites moved, and at
        // the entries every hit on an endbr64 probe.
        XCTAssertEqual(moved.json.dict("capture")["single_stepped_probe_hits"] as? Int, 0)
        let endbrIDs = Set(atEntry.filter { $0.siteInstruction == "endbr64" }.map { String($0.id) })
        let endbrHits = entry.json.array("probes").filter { endbrIDs.contains("\($0["id"] ?? "")") }.reduce(0) { $0 + ($1["hits"] as? Int ?? 0) }
        XCTAssertGreaterThan(endbrHits, 0)
        XCTAssertEqual(entry.json.dict("capture")["single_stepped_probe_hits"] as? Int, endbrHits)
    }

    /// Debian's stock qemu-io: the coroutine comes from co_tls_current, whose offset is read from
    /// qemu_coroutine_self's code, so no probe on qemu_coroutine_switch (a hit on every switch).
    func testStockBinaryNeedsNoCoroutineSwitchProbe() throws {
        try Harness.requireTracing()
        try Harness.require(Harness.stockQemuIO, "Debian's qemu-utils")
        let run = try trace(Harness.stockQemuIO)
        XCTAssertEqual(run.manifest.coroutineSource, "tls co_tls_current at fs-8 (from qemu_coroutine_self's code)")
        XCTAssertFalse(run.manifest.probes.contains { $0.symbol == "qemu_coroutine_switch" })
        XCTAssertEqual(opCauses(run.json), Self.opCauses)
        let dir = try Harness.tempDir(self)
        let straced = try Harness.straceSyncCount(binary: Harness.stockQemuIO, args: Harness.qemuIOArgs(
            cache: "writeback", commands: Self.commands, image: try Harness.makeImage(dir, name: "s.qcow2")), dir: dir)
        XCTAssertEqual(straced, 3 + 2 * 10)
        XCTAssertEqual(run.json.int("totals.host_fdatasyncs"), straced)
        // blk_aio_pwritev starts with `sub rsp, 8` on this build: its probe sits further in.
        XCTAssertEqual(try objdumpFirst(Harness.stockQemuIO, "blk_aio_pwritev").hasPrefix("sub"), true)
        let aio = try XCTUnwrap(run.manifest.probes.first { $0.symbol == "blk_aio_pwritev" })
        XCTAssertNotNil(aio.entryOffset)
        XCTAssertEqual(aio.cost, "emulated")
    }
}
