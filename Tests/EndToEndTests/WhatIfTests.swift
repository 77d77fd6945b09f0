import Foundation
import XCTest

/// `analyzer whatif` on a recorded fresh-image run, checked against the same workload really run with those
/// options and counted by strace (not by syncamp, whose pipeline the prediction shares).
final class WhatIfTests: XCTestCase {
    let commands = (0..<10).flatMap { ["write \($0 * 64)k 4k", "flush"] }

    /// The host syncs of the workload really run with `options` (and `cache`), as strace counts them.
    func straced(_ dir: URL, options: String? = nil, cache: String = "writeback") throws -> Int {
        let img = try Harness.makeImage(dir, name: "real-\(UUID().uuidString.prefix(6)).qcow2", options: options)
        return try Harness.straceSyncCount(binary: Harness.qemuIO, args: Harness.qemuIOArgs(cache: cache, commands: commands, image: img),
                                           dir: dir)
    }

    func testLazyRefcountsAndPreallocationPredictions() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let img = try Harness.makeImage(dir, name: "recorded.qcow2")
        let capture = dir.appendingPathComponent("recorded.syncamp").path
        let c = try Harness.run(Harness.collector, ["-o", capture, "--", Harness.qemuIO]
                                + Harness.qemuIOArgs(cache: "writeback", commands: commands, image: img))
        XCTAssertEqual(c.status, 0, c.stderr)

        // The reference's counts for these 10 pairs (flush-sites §5: default 23, lazy_refcounts (d)-pattern
        // 3 + 1 + 10 + 2 = 16, preallocation 10, unsafe 0) hold for the real runs, so the oracle is sound.
        let real = (asRun: try straced(dir), lazy: try straced(dir, options: "lazy_refcounts=on"),
                    prealloc: try straced(dir, options: "preallocation=metadata"), unsafe: try straced(dir, cache: "unsafe"))
        XCTAssertEqual([real.asRun, real.lazy, real.prealloc, real.unsafe], [23, 16, 10, 0], "strace against the reference")

        let lazy = try Harness.whatIf(capture, ["--lazy-refcounts", "on"])
        XCTAssertEqual(lazy.int("observed_host_fdatasyncs"), real.asRun)
        XCTAssertEqual(lazy.int("as_run.predicted_host_fdatasyncs"), real.asRun)
        XCTAssertEqual(lazy.int("what_if.predicted_host_fdatasyncs"), real.lazy)

        let prealloc = try Harness.whatIf(capture, ["--preallocation", "metadata"])
        XCTAssertEqual(prealloc.int("what_if.predicted_host_fdatasyncs"), real.prealloc)

        let unsafe = try Harness.whatIf(capture, ["--cache", "unsafe"])
        XCTAssertEqual(unsafe.int("what_if.predicted_host_fdatasyncs"), real.unsafe)

        let text = try Harness.run(Harness.analyzer, ["whatif", capture, "--lazy-refcounts", "on"]).stdout
        XCTAssertTrue(text.contains("lazy_refcounts=on"), text)
        XCTAssertTrue(text.contains("model what-if"), text)
    }
}
