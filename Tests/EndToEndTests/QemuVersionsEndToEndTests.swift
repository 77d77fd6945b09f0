import Foundation
import SyncampCapture
import SyncampELF
import XCTest

/// QEMU as users get it beyond the testbed's 7.2: Debian's stock (stripped) qemu-utils 10.0,
/// a stripped QEMU 10.0 built with the dtrace backend, a stripped binary whose debug file
/// comes from a debuginfod server, and a binary taken for the wrong version.
///
/// Oracles: strace's count of the same workload, and the flush-sites reference's counts
/// (fresh image: 3 + 1 + 1; N allocating pairs: 3 + 2N).
final class QemuVersionsEndToEndTests: XCTestCase {
    static func pairs(_ n: Int) -> [String] { (0 ..< n).flatMap { ["write \($0 * 64)k 4k", "flush"] } }

    /// Traces `commands` on `binary` and counts the same workload with strace.
    func traceAndCount(_ binary: String, _ commands: [String], extra: [String] = [], env: [String: String] = [:])
        throws -> (json: [String: Any], stderr: String, strace: Int, capture: String) {
        let dir = try Harness.tempDir(self)
        let img = try Harness.makeImage(dir, name: "traced.qcow2")
        let capture = dir.appendingPathComponent("run.syncamp").path
        let c = try Harness.run("/usr/bin/env", env.map { "\($0.key)=\($0.value)" } + [Harness.collector, "-o", capture] + extra
                                + ["--", binary] + Harness.qemuIOArgs(cache: "writeback", commands: commands, image: img))
        XCTAssertEqual(c.status, 0, c.stderr)
        let strace = try Harness.straceSyncCount(binary: binary, args: Harness.qemuIOArgs(
            cache: "writeback", commands: commands, image: try Harness.makeImage(dir, name: "counted.qcow2")), dir: dir)
        XCTAssertGreaterThan(strace, 0, "strace saw no sync")
        return (try Harness.report(capture), c.stderr, strace, capture)
    }

    func perOpCauses(_ json: [String: Any]) -> [[String: Int]] {
        json.array("ops").filter { ["write", "flush"].contains($0["kind"] as? String ?? "") }.map { $0["causes"] as? [String: Int] ?? [:] }
    }

    static let freshOps: [[String: Int]] = [["l2_table_alloc": 3], ["refcount_dependency": 1, "guest_flush": 1]]

    /// Debian's stock qemu-utils 10.0 (bookworm-backports): only exported symbols, and
    /// thread_pool_submit_aio without its pool argument. Before QEMU 8.0's layout was known,
    /// every host sync here was unattributed.
    func testStockQemu10() throws {
        try Harness.requireTracing()
        try Harness.require(Harness.stockQemuIO10, "Debian's stock qemu-utils 10.0")
        XCTAssertFalse(try ELFFile(path: Harness.stockQemuIO10).hasSymtab, "the stock binary is stripped")
        let fresh = try traceAndCount(Harness.stockQemuIO10, ["write 0 4k", "flush"])
        XCTAssertEqual(fresh.json.int("totals.host_fdatasyncs"), fresh.strace)
        XCTAssertEqual(fresh.strace, 5)
        XCTAssertEqual(fresh.json.int("totals.unattributed_host_syncs"), 0)
        XCTAssertEqual(perOpCauses(fresh.json), Self.freshOps)
        let target = fresh.json.dict("target")
        XCTAssertTrue((target["qemu_version"] as? String ?? "").hasPrefix("10.0.2 (Debian"), "\(target)")
        XCTAssertEqual(target["qemu_abi"] as? String, "built-in table for QEMU 10.0")
        XCTAssertTrue(fresh.stderr.contains("QEMU 10.0.2"), fresh.stderr)
        let warnings = fresh.json["warnings"] as? [String] ?? []
        XCTAssertFalse(warnings.contains { $0.contains("cannot be trusted") }, "\(warnings)")
        // What exported symbols cannot give is said: the probes the binary lacks.
        XCTAssertTrue(warnings.contains { $0.contains("raw_co_flush_to_disk was not attached") }, "\(warnings)")

        let fifty = try traceAndCount(Harness.stockQemuIO10, Self.pairs(50))
        XCTAssertEqual(fifty.strace, 103)
        XCTAssertEqual(fifty.json.int("totals.host_fdatasyncs"), fifty.strace)
        XCTAssertEqual(fifty.json.int("totals.unattributed_host_syncs"), 0)
        XCTAssertEqual(fifty.json["causes"] as? [String: Int], ["l2_table_alloc": 3, "refcount_dependency": 50, "guest_flush": 50])
    }

    /// The same binary taken for QEMU 7.2 reads the thread-pool job through the wrong register:
    /// the report must say so, naming the version and the probe, not print wrong causes silently.
    func testAWrongLayoutIsFlaggedNotPrintedAsTruth() throws {
        try Harness.requireTracing()
        try Harness.require(Harness.stockQemuIO10, "Debian's stock qemu-utils 10.0")
        let run = try traceAndCount(Harness.stockQemuIO10, Self.pairs(3), extra: ["--qemu-version", "7.2"])
        XCTAssertEqual(run.json.int("totals.host_fdatasyncs"), run.strace)
        let warnings = run.json["warnings"] as? [String] ?? []
        XCTAssertTrue(warnings.contains { $0.contains("thread_pool_submit_aio") && $0.contains("QEMU 7.2") && $0.contains("cannot be trusted") },
                      "\(warnings)")
        XCTAssertTrue(warnings.contains { $0.contains("could not be placed under a request") }, "\(warnings)")
        let text = try Harness.run(Harness.analyzer, ["report", run.capture]).stdout
        XCTAssertTrue(text.contains("WARNING  thread_pool_submit_aio "), text)
    }

    /// QEMU 10.0 built with the dtrace backend, stripped: its renamed thread-pool event is found,
    /// and the causes are those of the reference (and of the function probes).
    func testUSDTOnQemu10() throws {
        try Harness.requireTracing()
        try Harness.require(Harness.dtraceQemuIO10, "QEMU 10.0's dtrace-backend qemu-io")
        try Harness.require(Harness.qemuIO10, "QEMU 10.0's qemu-io")
        let commands = Self.pairs(12)
        let usdt = try traceAndCount(Harness.dtraceQemuIO10, commands)
        XCTAssertTrue(usdt.stderr.contains("using QEMU's USDT probes"), usdt.stderr)
        XCTAssertEqual(usdt.strace, 3 + 2 * 12)
        XCTAssertEqual(usdt.json.int("totals.host_fdatasyncs"), usdt.strace)
        XCTAssertEqual(usdt.json.int("totals.unattributed_host_syncs"), 0)
        XCTAssertEqual(usdt.json["causes"] as? [String: Int], ["guest_flush": 12, "refcount_dependency": 12, "l2_table_alloc": 3])
        let symbols = usdt.json.array("probes").compactMap { $0["symbol"] as? String }
        XCTAssertTrue(symbols.contains("qemu:thread_pool_submit_aio"), "\(symbols)")
        let functions = try traceAndCount(Harness.qemuIO10, commands)
        XCTAssertEqual(perOpCauses(usdt.json), perOpCauses(functions.json), "USDT and function probes op by op")
    }

    /// A stripped binary with no local debug file: the debug file comes by build-id from a
    /// debuginfod server (a local `debuginfod` serving an `objcopy --only-keep-debug` file), and
    /// the full function probe set runs, with layouts from that file's DWARF.
    func testDebugFileFromDebuginfod() throws {
        try Harness.requireTracing()
        try Harness.require("/usr/bin/debuginfod", "debuginfod (Debian package debuginfod)")
        let dir = try Harness.tempDir(self)
        let served = dir.appendingPathComponent("served")
        try FileManager.default.createDirectory(at: served, withIntermediateDirectories: true)
        let stripped = dir.appendingPathComponent("qemu-io").path
        XCTAssertEqual(try Harness.run("/usr/bin/objcopy", ["--only-keep-debug", Harness.qemuIO, served.appendingPathComponent("qemu-io.debug").path]).status, 0)
        XCTAssertEqual(try Harness.run("/usr/bin/objcopy", ["--strip-all", Harness.qemuIO, stripped]).status, 0)
        let buildID = try XCTUnwrap(try ELFFile(path: stripped).buildID)
        let port = 20000 + Int(getpid() % 10000)
        let server = try Background("/usr/bin/debuginfod", ["-F", served.path, "-p", String(port), "-d",
                                                           dir.appendingPathComponent("db.sqlite").path, "-t", "0", "-g", "0"])
        defer { _ = server.interrupt() }
        // Wait until the server has indexed the debug file.
        var indexed = false
        for _ in 0 ..< 100 {
            let r = try Harness.run("/usr/bin/curl", ["-sf", "-o", "/dev/null", "http://127.0.0.1:\(port)/buildid/\(buildID)/debuginfo"])
            if r.status == 0 { indexed = true; break }
            usleep(100_000)
        }
        XCTAssertTrue(indexed, "debuginfod never served the debug file: \(server.stderr)")
        let env = ["DEBUGINFOD_URLS": "http://127.0.0.1:\(port)", "DEBUGINFOD_CACHE_PATH": dir.appendingPathComponent("cache").path]
        let run = try traceAndCount(stripped, ["write 0 4k", "flush"], env: env)
        XCTAssertTrue(run.stderr.contains("fetched from debuginfod"), run.stderr)
        XCTAssertEqual(run.json.int("totals.host_fdatasyncs"), run.strace)
        XCTAssertEqual(run.json.int("totals.unattributed_host_syncs"), 0)
        XCTAssertEqual(perOpCauses(run.json), Self.freshOps)
        let probes = run.json.array("probes").compactMap { $0["symbol"] as? String }
        XCTAssertTrue(probes.contains("raw_co_flush_to_disk"), "the static functions, from the fetched debug file: \(probes)")
        XCTAssertTrue((run.json.dict("target")["qemu_abi"] as? String ?? "").hasPrefix("DWARF of \(dir.appendingPathComponent("cache").path)"))
        // Without the server: no debug file, and the collector says what it lacks.
        let without = try Harness.run(Harness.collector, ["-o", dir.appendingPathComponent("none.syncamp").path, "--", stripped,
                                                          "-f", "qcow2", "-t", "writeback", "-c", "flush",
                                                          try Harness.makeImage(dir, name: "none.qcow2")])
        XCTAssertEqual(without.status, 1, "a stripped build without symbols is refused: \(without.stderr)")
    }
}
