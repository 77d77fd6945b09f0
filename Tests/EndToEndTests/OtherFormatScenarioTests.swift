import Foundation
import XCTest

/// Issue 18: causes belong to the format that caused them. vhdx (its log) and qed (its
/// need-check header bit) sync in their own write paths; those syncs are `format_metadata` under
/// ops of that format, never one of qcow2's causes (F2-F12, F15), and the qcow2 model leaves the
/// requests unpredicted (`format_not_qcow2`). Checked against strace, minimal set = `--detail`.
final class OtherFormatScenarioTests: XCTestCase {
    static let genericCauses: Set<String> = ["format_metadata", "guest_flush", "housekeeping", "image_open", "image_close"]

    func check(format: String, commands: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        func image(_ name: String) throws -> [String] {
            let path = dir.appendingPathComponent(name).path
            let r = try Harness.run(Harness.qemuImg, ["create", "-f", format, path, "1G"])
            XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
            return ["-f", format, "-t", "writeback"] + commands.flatMap { ["-c", $0] } + [path]
        }
        let (minimal, _) = try Harness.traceAndReport(dir, binary: Harness.qemuIO, args: try image("min.\(format)"))
        let (detail, _) = try Harness.traceAndReport(dir, binary: Harness.qemuIO, args: try image("det.\(format)"), extra: ["--detail"])
        let strace = try Harness.straceSyncCount(binary: Harness.qemuIO, args: try image("counted.\(format)"), dir: dir)
        XCTAssertGreaterThan(strace, 0, file: file, line: line)
        for json in [minimal, detail] {
            XCTAssertEqual(json.int("totals.host_fdatasyncs"), strace, file: file, line: line)
            XCTAssertEqual(json.int("totals.unattributed_host_syncs"), 0, file: file, line: line)
            let causes = Set((json["causes"] as? [String: Int] ?? [:]).keys)
            XCTAssertTrue(causes.isSubset(of: Self.genericCauses), "qcow2 causes under \(format): \(causes.subtracting(Self.genericCauses))", file: file, line: line)
        }
        func perOp(_ j: [String: Any]) -> [String] {
            j.array("ops").map { "\($0["kind"] ?? "?") \(($0["causes"] as? [String: Int] ?? [:]).sorted { $0.key < $1.key })" }
        }
        XCTAssertEqual(perOp(minimal), perOp(detail), "per-op causes, minimal set vs --detail", file: file, line: line)
        XCTAssertEqual(minimal.dict("model")["deviating_ops"] as? [Int] ?? [], [], file: file, line: line)
        return minimal
    }

    /// vhdx writes its log and flushes inside every allocating write (block/vhdx-log.c).
    func testVhdxLogSyncsAreItsOwn() throws {
        let json = try check(format: "vhdx", commands: ["write 0 4k", "flush", "write 64M 4k", "flush"])
        let writes = json.array("ops").filter { $0["kind"] as? String == "write" }
        XCTAssertEqual(writes.count, 2)
        for w in writes {
            XCTAssertEqual(w["format"] as? String, "vhdx")
            XCTAssertGreaterThan((w["causes"] as? [String: Int])?["format_metadata"] ?? 0, 0, "the log's syncs are in the write")
            XCTAssertEqual(w["unpredicted"] as? String, "format_not_qcow2")
        }
    }

    /// qed sets its need-check bit in the header, synced, on the first allocating write.
    func testQedHeaderSyncIsItsOwn() throws {
        let json = try check(format: "qed", commands: ["write 0 4k", "flush", "write 64M 4k", "flush"])
        for op in json.array("ops") where ["write", "flush"].contains(op["kind"] as? String ?? "") {
            XCTAssertEqual(op["unpredicted"] as? String, "format_not_qcow2", "op \(op["index"] ?? "?")")
        }
    }
}
