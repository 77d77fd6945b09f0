import Foundation
import XCTest

/// `analyzer export` on a real capture: each format read back by a strict reader
/// (Graphviz itself for DOT), and their counts against the report's.
final class ExportEndToEndTests: XCTestCase {
    func testEveryFormatFromARealCapture() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let img = try Harness.makeImage(dir)
        let capture = dir.appendingPathComponent("run.syncamp").path
        let c = try Harness.run(Harness.collector, ["-o", capture, "--", Harness.qemuIO] +
                                Harness.qemuIOArgs(cache: "writeback", commands: ["write 0 4k", "flush", "write 64k 4k", "flush"], image: img))
        XCTAssertEqual(c.status, 0, c.stderr)
        let report = try Harness.report(capture)
        let hostSyncs = try XCTUnwrap(report.int("totals.host_fdatasyncs"))
        XCTAssertEqual(hostSyncs, 7)

        // folded: the counts add up to the report's host syncs, per cause too.
        let folded = try Harness.run(Harness.analyzer, ["export", capture, "--format", "folded"])
        XCTAssertEqual(folded.status, 0, folded.stderr)
        var byCause: [String: Int] = [:]
        for line in folded.stdout.split(separator: "\n") {
            let parts = line.split(separator: " ")
            XCTAssertEqual(parts.count, 2, "\(line)")
            let frames = parts[0].split(separator: ";")
            let cause = try XCTUnwrap(frames.first { $0.hasPrefix("cause:") }?.dropFirst("cause:".count))
            byCause[String(cause), default: 0] += try XCTUnwrap(Int(parts[1]))
        }
        XCTAssertEqual(byCause, report["causes"] as? [String: Int])

        // perfetto: valid JSON, one async request slice per op, an arrow and a slice per host sync.
        let tracePath = dir.appendingPathComponent("trace.json").path
        let perfetto = try Harness.run(Harness.analyzer, ["export", capture, "--format", "perfetto", "-o", tracePath])
        XCTAssertEqual(perfetto.status, 0, perfetto.stderr)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tracePath))) as? [String: Any])
        let events = try XCTUnwrap(root["traceEvents"] as? [[String: Any]])
        XCTAssertEqual(events.filter { $0["ph"] as? String == "b" }.count, report.array("ops").count)
        XCTAssertEqual(events.filter { $0["ph"] as? String == "e" }.count, report.array("ops").count)
        XCTAssertEqual(events.filter { $0["ph"] as? String == "X" && $0["cat"] as? String == "host_sync" }.count, hostSyncs)
        let deviceFlushes = events.filter { $0["ph"] as? String == "X" && $0["cat"] as? String == "device_flush" }.count
        XCTAssertEqual(events.filter { $0["ph"] as? String == "s" }.count, hostSyncs + deviceFlushes)
        XCTAssertEqual(events.filter { $0["ph"] as? String == "f" }.count, hostSyncs + deviceFlushes)

        // dot: the first op with a host sync, drawn by Graphviz.
        let dot = try Harness.run(Harness.analyzer, ["export", capture, "--format", "dot"])
        XCTAssertEqual(dot.status, 0, dot.stderr)
        XCTAssertEqual(dot.stdout.components(separatedBy: "HOST fdatasync").count - 1, 3, dot.stdout)
        let svgPath = dir.appendingPathComponent("op.dot").path
        try dot.stdout.write(toFile: svgPath, atomically: true, encoding: .utf8)
        let graphviz = try Harness.run("/usr/bin/dot", ["-Tsvg", svgPath])
        XCTAssertEqual(graphviz.status, 0, graphviz.stderr)
        XCTAssertTrue(graphviz.stdout.contains("<svg"))

        // An op that does not exist is named as such.
        let missing = try Harness.run(Harness.analyzer, ["export", capture, "--format", "dot", "--op", "999"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("no op #999"), missing.stderr)
    }
}
