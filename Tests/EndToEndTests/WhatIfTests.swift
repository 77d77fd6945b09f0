import Foundation
import XCTest

/// `analyzer whatif` on a recorded fresh-image run, checked against the same workload really run with those options.
final class WhatIfTests: XCTestCase {
    let commands = (0..<10).flatMap { ["write \($0 * 64)k 4k", "flush"] }

    func observedSyncs(_ dir: URL, options: String) throws -> Int {
        let img = try Harness.makeImage(dir, name: "real-\(UUID().uuidString.prefix(6)).qcow2", options: options)
        let (json, _) = try Harness.traceAndReport(dir, binary: Harness.qemuIO,
                                                   args: Harness.qemuIOArgs(cache: "writeback", commands: commands, image: img))
        return try XCTUnwrap(json.int("totals.host_fdatasyncs"))
    }

    func testLazyRefcountsAndPreallocationPredictions() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let img = try Harness.makeImage(dir, name: "recorded.qcow2")
        let capture = dir.appendingPathComponent("recorded.syncamp").path
        let c = try Harness.run(Harness.collector, ["-o", capture, "--", Harness.qemuIO]
                                + Harness.qemuIOArgs(cache: "writeback", commands: commands, image: img))
        XCTAssertEqual(c.status, 0, c.stderr)

        let lazy = try Harness.whatIf(capture, ["--lazy-refcounts", "on"])
        XCTAssertEqual(lazy.int("observed_host_fdatasyncs"), 23)
        XCTAssertEqual(lazy.int("as_run.predicted_host_fdatasyncs"), 23)
        XCTAssertEqual(lazy.int("what_if.predicted_host_fdatasyncs"), try observedSyncs(dir, options: "lazy_refcounts=on"))

        let prealloc = try Harness.whatIf(capture, ["--preallocation", "metadata"])
        XCTAssertEqual(prealloc.int("what_if.predicted_host_fdatasyncs"), try observedSyncs(dir, options: "preallocation=metadata"))

        let unsafe = try Harness.whatIf(capture, ["--cache", "unsafe"])
        XCTAssertEqual(unsafe.int("what_if.predicted_host_fdatasyncs"), 0)

        let text = try Harness.run(Harness.analyzer, ["whatif", capture, "--lazy-refcounts", "on"]).stdout
        XCTAssertTrue(text.contains("lazy_refcounts=on"), text)
        XCTAssertTrue(text.contains("model what-if"), text)
    }
}
