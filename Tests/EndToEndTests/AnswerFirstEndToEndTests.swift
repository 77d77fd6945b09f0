import Foundation
import SyncampCapture
import XCTest

/// The report's answer first on a real capture: cause costs against the raw system-call events,
/// recommendations against `whatif` and against strace of the same workload run that way, the
/// costliest-op order against the flush-sites reference, the elided command line.
final class AnswerFirstEndToEndTests: XCTestCase {
    /// 10 x (write a new cluster, flush) on a fresh image: qcow2-flush-sites.md §5 counts 23 host syncs.
    let commands = (0..<10).flatMap { ["write \($0 * 64)k 4k", "flush"] }

    func testSummaryCostsRecommendationsAndOpsOnARealCapture() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let img = try Harness.makeImage(dir, name: "recorded.qcow2")
        let capture = dir.appendingPathComponent("recorded.syncamp").path
        let args = Harness.qemuIOArgs(cache: "writeback", commands: commands, image: img)
        let c = try Harness.run(Harness.collector, ["-o", capture, "--", Harness.qemuIO] + args)
        XCTAssertEqual(c.status, 0, c.stderr)
        let json = try Harness.report(capture)

        // Cause costs add up to the time between each fdatasync/fsync entry and exit in the raw capture.
        let raw = try Harness.rawSyncLatencies(capture)
        let costs = json.array("cause_costs")
        XCTAssertEqual(costs.compactMap { $0.int("host_fdatasyncs") }.reduce(0, +), raw.count)
        XCTAssertEqual(costs.compactMap { $0.int("host_sync_ns.sum") }.reduce(0, +), Int(raw.reduce(0, +)))
        XCTAssertEqual(json.int("host_sync_ns.sum"), Int(raw.reduce(0, +)))
        let sums = costs.compactMap { $0.int("host_sync_ns.sum") }
        XCTAssertEqual(sums, sums.sorted(by: >), "costliest cause first")
        XCTAssertEqual(json.int("guest_flush_latency_ns.count"), 10)
        XCTAssertEqual(json.dict("verdict")["model"] as? String, "matched")

        // Each prediction is what `whatif` prints for that one change; lazy_refcounts, preallocation
        // and cache=unsafe also what strace counts when the workload really runs that way.
        let recs = json.array("recommendations")
        let byKnob = Dictionary(recs.map { ($0["setting"] as? String ?? "", $0) }, uniquingKeysWith: { x, _ in x })
        let whatIfArgs: [String: [String]] = [
            "lazy_refcounts=on": ["--lazy-refcounts", "on"], "preallocation=metadata": ["--preallocation", "metadata"],
            "cluster_size=2097152": ["--cluster-size", "2097152"], "extended_l2=on": ["--extended-l2", "on"],
            "cache=unsafe": ["--cache", "unsafe"],
        ]
        XCTAssertEqual(Set(byKnob.keys), Set(whatIfArgs.keys), "the default L2 cache covers the disk: no l2-cache-size")
        for (setting, wargs) in whatIfArgs {
            let w = try Harness.whatIf(capture, wargs)
            XCTAssertEqual(byKnob[setting]?.int("predicted_host_fdatasyncs"), w.int("what_if.predicted_host_fdatasyncs"), setting)
            XCTAssertEqual(byKnob[setting]?.int("removed_host_fdatasyncs"),
                           w.int("as_run.predicted_host_fdatasyncs").flatMap { a in w.int("what_if.predicted_host_fdatasyncs").map { a - $0 } }, setting)
        }
        let real: [(String, String?, String)] = [("lazy_refcounts=on", "lazy_refcounts=on", "writeback"),
                                                 ("preallocation=metadata", "preallocation=metadata", "writeback"),
                                                 ("cache=unsafe", nil, "unsafe")]
        for (setting, options, cache) in real {
            let image = try Harness.makeImage(dir, name: "real-\(UUID().uuidString.prefix(6)).qcow2", options: options)
            let measured = try Harness.straceSyncCount(binary: Harness.qemuIO,
                                                       args: Harness.qemuIOArgs(cache: cache, commands: commands, image: image), dir: dir)
            XCTAssertEqual(byKnob[setting]?.int("predicted_host_fdatasyncs"), measured, setting)
        }

        // The costliest op is the first write: l2_allocate's 3 syncs (reference case (a)); then flushes of 2 (F2 + F1).
        let text = try Harness.run(Harness.analyzer, ["report", capture]).stdout
        let headers = text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("#") }
        XCTAssertTrue(headers.first?.contains(" write 0+4096 at ") ?? false, text)
        XCTAssertTrue(headers.first?.contains("] 3 host syncs on ") ?? false, text)
        XCTAssertTrue(headers.dropFirst().allSatisfy { $0.contains(" flush at ") && $0.contains("] 2 host syncs on ") }, text)
        let times = headers.compactMap { h in h.range(of: " probe hits, ").flatMap { Double(h[$0.upperBound...].prefix { $0 != " " }) } }
        XCTAssertEqual(times.count, headers.count, text)
        XCTAssertEqual(times.dropFirst(), times.dropFirst().sorted(by: >)[...], "flushes of equal syncs: the most time in host syncs first")
        // Folded runs count every op they stand for: the 10 costliest in all.
        let listed = headers.map { h in h.range(of: " (x").map { Int(h[$0.upperBound...].prefix { $0.isNumber }) ?? 0 } ?? 1 }
        XCTAssertEqual(listed.reduce(0, +), 10, text)

        // The command line is cut after 240 characters, with the count of what was cut.
        let full = ([Harness.qemuIO] + args).joined(separator: " ")
        let target = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("  target ") })
        XCTAssertTrue(target.hasSuffix(" \(full.prefix(240)) ... (\(full.count - 240) more characters; --format json has them all)"), String(target))
        XCTAssertEqual(json.dict("target")["command"] as? [String], [Harness.qemuIO] + args)

        // --ops all lists every op in time order; --op N one.
        let all = try Harness.run(Harness.analyzer, ["report", capture, "--ops", "all"]).stdout
        let indexes = all.split(separator: "\n").filter { $0.hasPrefix("#") }.compactMap { Int($0.dropFirst().prefix { $0.isNumber }) }
        XCTAssertEqual(indexes, indexes.sorted(), all)
        XCTAssertEqual(indexes.count, json.int("op_count"), all)
        let one = try Harness.run(Harness.analyzer, ["report", capture, "--op", "3"]).stdout
        XCTAssertEqual(one.split(separator: "\n").filter { $0.hasPrefix("#") }.map { String($0.prefix(3)) }, ["#3 "], one)
    }
}
