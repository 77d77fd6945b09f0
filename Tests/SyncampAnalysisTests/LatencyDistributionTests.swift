@testable import SyncampAnalysis
import XCTest

/// Latencies in bounded memory: exact below the limit, within 0.1% past it (HdrHistogram).
final class LatencyDistributionTests: XCTestCase {
    func testExactBelowTheLimit() {
        var d = LatencyDistribution()
        let values: [UInt64] = (1...1000).map { UInt64($0) * 7919 % 100_003 }
        for v in values { d.add(v) }
        XCTAssertEqual(d.summary, LatencySummary(values))
    }

    func testPastTheLimitCountSumAndMaxStayExactAndPercentilesWithinATenthOfAPercent() {
        var d = LatencyDistribution()
        let n = LatencyDistribution.exactLimit * 3
        for i in 1...n { d.add(UInt64(i) * 1000) }
        let s = d.summary
        let exact = LatencySummary((1...n).map { UInt64($0) * 1000 })
        XCTAssertEqual(s.count, exact.count)
        XCTAssertEqual(s.sumNs, exact.sumNs)
        XCTAssertEqual(s.maxNs, exact.maxNs)
        for (got, want) in [(s.p50Ns, exact.p50Ns), (s.p90Ns, exact.p90Ns), (s.p99Ns, exact.p99Ns)] {
            let g = Double(got!), w = Double(want!)
            XCTAssertLessThanOrEqual(abs(g - w) / w, 0.001, "\(g) vs \(w)")
        }
    }

    func testMergingKeepsEveryValue() {
        var a = LatencyDistribution(), b = LatencyDistribution(), all = LatencyDistribution()
        for i in 1...(LatencyDistribution.exactLimit + 10) { a.add(UInt64(i)); all.add(UInt64(i)) }
        for i in 1...100 { b.add(UInt64(i) * 3); all.add(UInt64(i) * 3) }
        var merged = LatencyDistribution()
        merged.add(b)
        merged.add(a)
        XCTAssertEqual(merged.summary.count, all.summary.count)
        XCTAssertEqual(merged.summary.sumNs, all.summary.sumNs)
        XCTAssertEqual(merged.summary.maxNs, all.summary.maxNs)
        XCTAssertEqual(merged.summary.p50Ns, all.summary.p50Ns)
    }

    /// Values added after a merge that binned go to the histogram too, and values past the size
    /// the histogram starts with (10 s) are kept within a tenth of a percent.
    func testValuesAddedAfterABinningMergeAndPastTenSecondsAreKept() {
        var a = LatencyDistribution(), merged = LatencyDistribution()
        var values: [UInt64] = []
        for i in 1...(LatencyDistribution.exactLimit + 10) { a.add(UInt64(i)); values.append(UInt64(i)) }
        merged.add(a)
        for i in 1...LatencyDistribution.exactLimit {
            let v = UInt64(i) * 1_000_000  // up to 65.5 s
            merged.add(v)
            values.append(v)
        }
        let s = merged.summary, exact = LatencySummary(values)
        XCTAssertEqual(s.count, exact.count)
        XCTAssertEqual(s.maxNs, exact.maxNs)
        for (got, want) in [(s.p50Ns, exact.p50Ns), (s.p90Ns, exact.p90Ns), (s.p99Ns, exact.p99Ns)] {
            let g = Double(got!), w = Double(want!)
            XCTAssertLessThanOrEqual(abs(g - w) / w, 0.001, "\(g) vs \(w)")
        }
    }
}
