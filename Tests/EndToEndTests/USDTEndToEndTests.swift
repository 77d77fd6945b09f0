import Foundation
import SyncampCapture
import SyncampELF
import XCTest

/// A QEMU built with the dtrace trace backend and stripped (as Fedora and RHEL ship it, less the
/// debuginfo) is traced through its USDT probes, with no symbol table, to the same causes.
final class USDTEndToEndTests: XCTestCase {
    static var dtraceQemuIO: String { Harness.repo.appendingPathComponent(".testbed/dtrace/bin/qemu-io").path }

    func requireDtraceBuild() throws {
        try Harness.requireTracing()
        guard FileManager.default.isExecutableFile(atPath: Self.dtraceQemuIO) else {
            throw Harness.unavailable("needs the dtrace-backend qemu-io at \(Self.dtraceQemuIO) (scripts/testbed.sh builds it)")
        }
    }

    func run(_ dir: URL, binary: String, commands: [String], extra: [String] = []) throws -> (report: [String: Any], stderr: String, capture: String) {
        let img = try Harness.makeImage(dir, name: "img-\(UUID().uuidString.prefix(8)).qcow2")
        let capture = dir.appendingPathComponent("run-\(UUID().uuidString.prefix(8)).syncamp").path
        let c = try Harness.run(Harness.collector, ["-o", capture] + extra + ["--", binary]
                                + Harness.qemuIOArgs(cache: "writeback", commands: commands, image: img))
        XCTAssertEqual(c.status, 0, c.stderr)
        return (try Harness.report(capture), c.stderr, capture)
    }

    func testTheDtraceBuildIsTracedThroughUSDTToTheSameCauses() throws {
        try requireDtraceBuild()
        let dir = try Harness.tempDir(self)
        let elf = try ELFFile(path: Self.dtraceQemuIO)
        XCTAssertFalse(elf.hasSymtab, "the dtrace build is installed stripped")
        XCTAssertNil(elf.function(named: "qcow2_cache_entry_flush"))
        XCTAssertTrue(elf.usdtProbes.contains { $0.provider == "qemu" && $0.name == "qcow2_cache_flush" })

        // A new L2 table, dependency pre-flushes and guest flushes; then steady allocating pairs.
        var commands = ["write 0 4k", "flush", "write 64k 4k", "flush"]
        for i in 2 ..< 12 { commands += ["write \(i * 65536) 4k", "flush"] }
        let reference = try run(dir, binary: Harness.qemuIO, commands: commands)
        let usdt = try run(dir, binary: Self.dtraceQemuIO, commands: commands)
        XCTAssertTrue(usdt.stderr.contains("using QEMU's USDT probes"), usdt.stderr)

        XCTAssertEqual(SymbolsEndToEndTests.summary(usdt.report), SymbolsEndToEndTests.summary(reference.report))
        XCTAssertEqual(usdt.report["causes"] as? [String: Int], ["guest_flush": 12, "refcount_dependency": 12, "l2_table_alloc": 3])
        XCTAssertEqual(usdt.report.int("totals.guest_flushes"), 12)
        XCTAssertEqual(usdt.report.int("totals.unattributed_host_syncs"), 0)
        // Every host sync strace sees for the same workload.
        let straced = try Harness.straceSyncCount(binary: Self.dtraceQemuIO,
                                                  args: Harness.qemuIOArgs(cache: "writeback", commands: commands,
                                                                           image: try Harness.makeImage(dir, name: "strace.qcow2")),
                                                  dir: dir)
        XCTAssertEqual(usdt.report.int("totals.host_fdatasyncs"), straced)

        let m = try CaptureReader(path: usdt.capture).manifest
        XCTAssertEqual(m.probeSet, "usdt")
        XCTAssertFalse(m.probes.isEmpty, "the manifest lists the probes attached")
        XCTAssertEqual(m.coroutineSource, "usdt arguments")
        XCTAssertTrue(m.probes.allSatisfy { $0.table == "usdt" && $0.symbol.hasPrefix("qemu:") }, "\(m.probes.map(\.symbol))")
        let text = try Harness.run(Harness.analyzer, ["report", usdt.capture])
        XCTAssertTrue(text.stdout.contains("guest flush inferred"), text.stdout)
        XCTAssertTrue(text.stdout.contains("WARNING  traced through QEMU's USDT probes"), text.stdout)
    }

    /// Requests in flight together (aio_write): each op keeps its own syncs because the events name their
    /// coroutines; flushes in pooled coroutines are still found. The expected counts are the workload's
    /// (flush-sites §5): the write at 0 allocates the one L2 table (3 syncs) while the others wait for the
    /// image lock and then only dirty the caches (0); each flush is F2 + F1; strace counts the same run.
    /// blk_co_pwritev's flags come with the event: a write-zeroes is an op of its kind through
    /// USDT as through function probes, with the same host syncs. (A guest flush right after a
    /// write-zeroes is not told from it: no trace event ends a write-zeroes, so the flush's cache
    /// write-backs in the same pooled coroutine stay with it; the totals are the same.)
    func testWriteZeroesIsItsOwnKindThroughUSDT() throws {
        try requireDtraceBuild()
        let dir = try Harness.tempDir(self)
        let commands = ["write 0 64k", "flush", "write -z 512k 64k", "write -z -u 1M 64k", "flush", "write 2M 4k", "flush"]
        let reference = try run(dir, binary: Harness.qemuIO, commands: commands)
        let usdt = try run(dir, binary: Self.dtraceQemuIO, commands: commands)
        func kinds(_ r: [String: Any]) -> [String] {
            r.array("ops").compactMap { $0["kind"] as? String }.filter { !["image_open", "image_close", "housekeeping"].contains($0) }
        }
        XCTAssertEqual(kinds(reference.report), ["write", "flush", "write_zeroes", "write_zeroes", "flush", "write", "flush"])
        XCTAssertEqual(kinds(usdt.report).filter { $0 == "write_zeroes" }.count, 2)
        XCTAssertEqual(usdt.report.array("ops").filter { $0["kind"] as? String == "write_zeroes" }.map { $0["unmap"] as? Bool },
                       [false, true])
        XCTAssertEqual(usdt.report.int("totals.host_fdatasyncs"), reference.report.int("totals.host_fdatasyncs"))
        XCTAssertEqual(usdt.report.int("totals.unattributed_host_syncs"), 0)
    }

    func testConcurrentRequestsAreToldApartByCoroutine() throws {
        try requireDtraceBuild()
        let dir = try Harness.tempDir(self)
        var commands = (0 ..< 8).map { "aio_write -q \($0 * 65536) 4k" } + ["aio_flush"]
        commands += (8 ..< 12).map { "aio_write -q \($0 * 65536) 4k" } + ["aio_flush", "flush", "write -q 1M 4k", "flush"]
        let usdt = try run(dir, binary: Self.dtraceQemuIO, commands: commands)
        let straced = try Harness.straceSyncCount(binary: Self.dtraceQemuIO,
                                                  args: Harness.qemuIOArgs(cache: "writeback", commands: commands,
                                                                           image: try Harness.makeImage(dir, name: "strace.qcow2")),
                                                  dir: dir)
        XCTAssertEqual(straced, 3 + 2 * 2, "strace against the reference")
        XCTAssertEqual(usdt.report.int("totals.host_fdatasyncs"), straced)
        XCTAssertEqual(usdt.report.int("totals.unattributed_host_syncs"), 0)
        XCTAssertEqual(usdt.report.int("totals.guest_writes"), 13)
        XCTAssertEqual(usdt.report.int("totals.guest_flushes"), 2, "aio_flush only drains; the two flushes are the flush commands")
        let ops = usdt.report.array("ops")
        let writes = Dictionary(ops.filter { $0["kind"] as? String == "write" }.map { ($0["offset"] as? Int ?? -1, $0) },
                                uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(Set(writes.keys), Set((0 ..< 12).map { $0 * 65536 } + [1 << 20]), "one op per write, at its own offset")
        for (offset, w) in writes {
            XCTAssertEqual(w["causes"] as? [String: Int], offset == 0 ? ["l2_table_alloc": 3] : [:], "write at \(offset)")
        }
        let flushes = ops.filter { $0["kind"] as? String == "flush" }
        XCTAssertEqual(flushes.count, 2)
        for f in flushes { XCTAssertEqual(f["causes"] as? [String: Int], ["refcount_dependency": 1, "guest_flush": 1]) }
    }

    func testUSDTCanBeAskedForAndIsRefusedWhereThereIsNone() throws {
        try requireDtraceBuild()
        let dir = try Harness.tempDir(self)
        // The testbed's qemu-io has symbols but no USDT probes (log backend only).
        let none = try Harness.run(Harness.collector, ["-o", dir.appendingPathComponent("n.syncamp").path, "--usdt",
                                                       "--", Harness.qemuIO, "-c", "quit"])
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("has no USDT probes of provider qemu"), none.stderr)
        // --detail adds the per-entry write-backs, which fire only for dirty entries.
        let detail = try run(dir, binary: Self.dtraceQemuIO, commands: ["write 0 4k", "flush"], extra: ["--usdt", "--detail"])
        XCTAssertEqual(detail.report["causes"] as? [String: Int], ["guest_flush": 1, "refcount_dependency": 1, "l2_table_alloc": 3])
        let m = try CaptureReader(path: detail.capture).manifest
        XCTAssertTrue(m.probes.contains { $0.symbol == "qemu:qcow2_cache_entry_flush" })
    }
}
