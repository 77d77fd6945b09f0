import Foundation
import SyncampAnalysis
import SyncampCapture
import SyncampQcow2
import XCTest

/// The report's answer first: cause costs from the fixture's own latencies, recommendations against
/// the flush-sites reference counts, the costliest-op order, folding, and the elided command line.
final class AnswerFirstTests: AnalysisTestCase {
    typealias F = AnalysisFixtures

    /// The standard write + flush on a fresh 1 GiB image (the image record the collector writes first).
    private func writeThenFlushOnFreshImage() throws -> Analysis {
        let trace = F.writeThenFlush()
        var records = trace.events.map(CaptureRecord.event)
        records.insert(.image(ImageState.fresh(path: "img.qcow2", size: 1 << 30)), at: 0)
        records.append(.trailer(F.trailer(for: trace.events)))
        return try F.analyse(trace.manifest, records, in: dir)
    }

    func testLatencySummaryIsNearestRank() {
        let l = LatencySummary((1...100).map { UInt64($0) }.reversed())
        XCTAssertEqual(l.count, 100)
        XCTAssertEqual(l.sumNs, 5050)
        XCTAssertEqual(l.p50Ns, 50)
        XCTAssertEqual(l.p90Ns, 90)
        XCTAssertEqual(l.p99Ns, 99)
        XCTAssertEqual(l.maxNs, 100)
        let three = LatencySummary([5, 1, 3])
        XCTAssertEqual(three.p50Ns, 3)
        XCTAssertEqual(three.p99Ns, 5)
        XCTAssertNil(LatencySummary([]).p50Ns)
    }

    func testCauseCostsAreTheFixturesLatenciesAndAddUp() throws {
        let a = try F.analyse(F.writeThenFlush(), in: dir)
        // The fixture's five syncs (41, 52, 33, 74, 26 us) all count as l2_table_alloc: it has no entry-flush events.
        XCTAssertEqual(a.costs.causes.map(\.cause), Cause.allCases.filter { a.totals.causes[$0] != nil })
        let l2 = try XCTUnwrap(a.costs.causes.first)
        XCTAssertEqual(l2.hostSyncs, 5)
        XCTAssertEqual(l2.hostSyncTime.sumNs, 226_000)
        XCTAssertEqual(l2.hostSyncTime.p50Ns, 41_000)
        XCTAssertEqual(l2.hostSyncTime.p99Ns, 74_000)
        XCTAssertEqual(a.costs.causes.map(\.hostSyncTime.sumNs).reduce(0, +), F.writeThenFlushLatencies.reduce(0, +))
        XCTAssertEqual(a.costs.hostSyncTime.sumNs, F.writeThenFlushLatencies.reduce(0, +))
        XCTAssertEqual(a.costs.share(of: l2), 1.0)
        XCTAssertEqual(a.costs.guestFlushLatency.count, 1)
        XCTAssertEqual(a.costliestOps.map(\.index), [1, 2, 0, 3], "most host syncs first, then time, then time order")
    }

    func testRecommendationsMatchTheReferenceCounts() throws {
        let a = try writeThenFlushOnFreshImage()
        XCTAssertEqual(a.model?.predictedHostSyncs, 5)
        let by = Dictionary(a.recommendations.map { ("\($0.knob.rawValue)=\($0.options?.summary[$0.knob.rawValue] ?? "-")", $0) },
                            uniquingKeysWith: { x, _ in x })
        // qcow2-flush-sites.md §5: (f) lazy_refcounts 3 + F12 1 + F1 1 + close 2 = 7; preallocation: F1 only = 1 per pair;
        // unsafe removes every row.
        XCTAssertEqual(by["lazy_refcounts=on"]?.prediction?.hostSyncs, 7)
        XCTAssertEqual(by["lazy_refcounts=on"]?.prediction?.removedHostSyncs, -2)
        XCTAssertEqual(by["preallocation=metadata"]?.prediction?.hostSyncs, 1)
        XCTAssertEqual(by["cache=unsafe"]?.prediction?.hostSyncs, 0)
        XCTAssertEqual(by["cache=unsafe"]?.prediction?.removedHostSyncs, 5)
        XCTAssertNil(by.keys.first { $0.hasPrefix("l2-cache-size") }, "the default L2 cache covers the disk: nothing to recommend")
        XCTAssertNil(by["cache=writeback"], "already write-back: not recommended")
        let removed = a.recommendations.compactMap { $0.prediction?.removedHostSyncs }
        XCTAssertEqual(removed, removed.sorted(by: >), "the most syncs removed first")

        let text = TextReport.render(a)
        // The fixture's flush syncs count as l2_table_alloc (no entry-flush events), so the model deviates on that op.
        XCTAssertTrue(text.contains("  model                        deviating: 1 op differs from the prediction, 2 as predicted"), text)
        XCTAssertTrue(text.contains("  cache=unsafe             0 host syncs (0.00 per guest flush): 5 fewer\n"), text)
        XCTAssertTrue(text.contains("trade-off: a crash leaves the image needing a repair at next open"), text)
        XCTAssertFalse(text.contains("l2-cache-size"), text)
    }

    /// Issue 18 (7): the reference model's list printed a deviating op's index twice (`#3 #3 write ...`).
    func testADeviatingOpIsListedWithItsIndexOnce() throws {
        let a = try writeThenFlushOnFreshImage()
        let deviating = try XCTUnwrap(a.model?.deviatingOps)
        XCTAssertEqual(deviating.count, 1, "the fixture has one deviating op")
        let text = TextReport.render(a)
        let model = try XCTUnwrap(text.range(of: "\nreference model").map { String(text[$0.lowerBound...]) })
        for i in deviating {
            let lines = model.split(separator: "\n").filter { $0.contains("#\(i) ") }
            XCTAssertEqual(lines.count, 1, model)
            XCTAssertEqual(lines.first?.components(separatedBy: "#\(i) ").count, 2, "the index once: \(lines)")
        }
    }

    func testNoImageStateMeansNoRecommendationAndSaysWhy() throws {
        let a = try F.analyse(F.writeThenFlush(), in: dir)
        XCTAssertTrue(a.recommendations.isEmpty)
        let text = TextReport.render(a)
        XCTAssertTrue(text.contains("what to change: nothing predicted: the capture has no image state"), text)
        XCTAssertTrue(text.contains("  model                        unpredicted: "), text)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try JSONReport.render(a).utf8)) as? [String: Any])
        XCTAssertEqual((json["recommendations"] as? [Any])?.count, 0)
        XCTAssertEqual((json["verdict"] as? [String: Any])?["model"] as? String, "unpredicted")
    }

    func testTextLeadsWithTheAnswerAndListsTheCostliestOps() throws {
        let text = TextReport.render(try F.analyse(F.writeThenFlush(), in: dir))
        let order = ["\nverdict\n", "\nwhere the time goes: ", "\nwhat to change", "\ncostliest ops: ", "\ntotals\n"]
        let at = order.map { text.range(of: $0)?.lowerBound }
        XCTAssertFalse(at.contains(nil), text)
        XCTAssertEqual(at.compactMap { $0 }, at.compactMap { $0 }.sorted(), text)
        let lines = text.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("  l2_table_alloc ") && $0.contains(" 5 syncs 100% ")
                && $0.hasSuffix(" 0.226 ms (p50 0.041 ms, p99 0.074 ms)") }, text)
        let headers = lines.filter { $0.hasPrefix("#") }
        XCTAssertEqual(headers.map { String($0.prefix(3)) }, ["#1 ", "#2 ", "#0 ", "#3 "], text)
    }

    func testRunsOfOneShapeFold() throws {
        var t = Trace(manifest: F.manifest())
        for i in 0..<3 {
            t.uprobe(.guestFlushCo, args: [F.blk])
            t.hostSync(tid: F.mainTid, latency: 10_000 + UInt64(i))
        }
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(OpShape.runs(a.ops).map(\.count), [3])
        let text = TextReport.render(a, ops: .all)
        XCTAssertTrue(text.contains(" (x3: also #1, #2)\n"), text)
        XCTAssertEqual(text.split(separator: "\n").filter { $0.hasPrefix("#") }.count, 1, text)
    }

    func testLongCommandLinesAreElidedWithTheCount() throws {
        var t = F.writeThenFlush()
        var m = t.manifest
        let commands = (0..<100).flatMap { ["-c", "write \($0 * 64)k 4k", "-c", "flush"] }
        m.target.command = ["qemu-io", "-t", "writeback"] + commands + ["img.qcow2"]
        t = Trace(manifest: m)
        let a = try F.analyse(t, in: dir)
        let full = m.target.command.joined(separator: " ")
        let line = try XCTUnwrap(TextReport.render(a).split(separator: "\n").first { $0.hasPrefix("  target ") })
        XCTAssertTrue(line.hasSuffix(" ... (\(full.count - TextReport.commandLineLimit) more characters; --format json has them all)"), String(line))
        XCTAssertTrue(line.contains(String(full.prefix(TextReport.commandLineLimit))), String(line))
        XCTAssertLessThan(line.count, 400)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try JSONReport.render(a).utf8)) as? [String: Any])
        XCTAssertEqual((json["target"] as? [String: Any])?["command"] as? [String], m.target.command)
    }
}
