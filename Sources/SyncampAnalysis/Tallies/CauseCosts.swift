import Histogram

/// A set of latencies summed and summarised: how many, their sum, p50 and p99.
///
/// Percentiles are nearest-rank over the exact values (no buckets): p50 of
/// [1, 2, 3, 4] is 2, p99 of fewer than 100 values is the largest. Past
/// `LatencyDistribution.exactLimit` values they come from an HdrHistogram with three
/// significant digits (within 0.1%). All in nanoseconds; the percentiles are nil when
/// there is no value.
public struct LatencySummary: Sendable, Equatable {
    public var count = 0
    public var sumNs: UInt64 = 0
    public var p50Ns: UInt64?
    public var p90Ns: UInt64?
    public var p99Ns: UInt64?
    public var maxNs: UInt64?

    public init() {}

    /// The summary of `values` (ns), in any order.
    public init(_ values: [UInt64]) {
        guard !values.isEmpty else { return }
        let sorted = values.sorted()
        count = sorted.count
        sumNs = sorted.reduce(0, &+)
        func rank(_ p: Double) -> UInt64 { sorted[max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1)] }
        p50Ns = rank(0.50)
        p90Ns = rank(0.90)
        p99Ns = rank(0.99)
        maxNs = sorted.last
    }
}

/// Latencies as they arrive, in memory that does not grow with the capture: the exact values
/// up to `exactLimit`, then an HdrHistogram (hdrhistogram-swift, three significant digits:
/// percentiles within 0.1%; count, sum and max stay exact).
struct LatencyDistribution {
    static let exactLimit = 1 << 16
    private var exact: [UInt64] = []
    private var histogram: Histogram<UInt64>?
    /// `histogram != nil`, kept apart: asking the optional copied it for each value added (once
    /// there is a histogram, its counts retained and released: 260 instructions per value).
    private var binned = false
    private var count = 0
    private var sum: UInt64 = 0
    private var maxValue: UInt64 = 0

    mutating func add(_ v: UInt64) {
        count += 1
        sum &+= v
        maxValue = max(maxValue, v)
        if binned {
            _ = histogram!.record(v)
        } else if exact.count < Self.exactLimit {
            exact.append(v)
        } else {
            var h = Self.newHistogram()
            for x in exact { _ = h.record(x) }
            _ = h.record(v)
            exact = []
            histogram = h
            binned = true
        }
    }

    mutating func add(_ other: LatencyDistribution) {
        guard let theirs = other.histogram else {
            for x in other.exact { add(x) }
            return
        }
        var mine = histogram ?? Self.newHistogram()
        for x in exact { _ = mine.record(x) }
        mine.add(theirs)
        exact = []
        histogram = mine
        binned = true
        count += other.count
        sum &+= other.sum
        maxValue = max(maxValue, other.maxValue)
    }

    /// Sized for up to 10 s from the start (about 200 KiB), growing past it: grown from 2 ns, it
    /// was resized 15 times in a 10M-event report (0.6% of its instructions). The bucket layout,
    /// and so every percentile, depends on the lowest value and the digits, not on this size.
    private static func newHistogram() -> Histogram<UInt64> {
        var h = Histogram<UInt64>(highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .three)
        h.autoResize = true
        return h
    }

    var summary: LatencySummary {
        guard let h = histogram else { return LatencySummary(exact) }
        var s = LatencySummary()
        s.count = count
        s.sumNs = sum
        s.p50Ns = h.valueAtPercentile(50)
        s.p90Ns = h.valueAtPercentile(90)
        s.p99Ns = h.valueAtPercentile(99)
        s.maxNs = maxValue
        return s
    }
}

/// What one cause cost: its host syncs, and the time spent in them and in the device flushes below them.
public struct CauseCost: Sendable, Equatable {
    public var cause: Cause
    /// Host syncs of this cause (as `Analysis.Totals.causes`).
    public var hostSyncs: Int
    /// Latency of those host syncs (fdatasync/fsync entry to return, or io_uring submit to
    /// completion); syncs whose return was not captured count in `hostSyncs` but not here.
    public var hostSyncTime: LatencySummary
    /// Latency of the device flush requests (issue to completion) linked under those syncs.
    public var deviceFlushTime: LatencySummary
}

/// Where the time of a capture's host syncs went, per cause, and how long guest flushes took.
public struct CostBreakdown: Sendable, Equatable {
    /// Causes with at least one host sync, the costliest (sum of host-sync time) first, then by count.
    public var causes: [CauseCost] = []
    /// Every host sync with a captured return, whatever its cause.
    public var hostSyncTime = LatencySummary()
    /// Guest flushes, from the request's entry to the return of the last host sync under it
    /// (QEMU's returns are not probed, so a flush that synced nothing spans its last event).
    public var guestFlushLatency = LatencySummary()

    /// A cause's share of all host syncs (0...1); nil when there is none.
    public func share(of c: CauseCost) -> Double? {
        let all = causes.reduce(0) { $0 + $1.hostSyncs }
        return all > 0 ? Double(c.hostSyncs) / Double(all) : nil
    }
}

/// Collects the latencies of finished ops, one op at a time, for `CostBreakdown`.
struct CostTally {
    /// Per cause, by `Cause.slot`: arrays, not dictionaries, as each host sync of each op is
    /// counted here (a dictionary hashed the cause per sync).
    private var syncs = [LatencyDistribution](repeating: LatencyDistribution(), count: Cause.all.count)
    private var counts = CauseTotals()
    private var devices = [LatencyDistribution](repeating: LatencyDistribution(), count: Cause.all.count)
    private var flushes = LatencyDistribution()

    mutating func add(_ op: GuestOp, _ summary: OpSummary) {
        add(summary)
        if op.kind == .flush { flushes.add(summary.latestReturnNs >= op.startNs ? summary.latestReturnNs - op.startNs : 0) }
    }

    mutating func addUnplaced(_ summary: OpSummary) { add(summary) }

    private mutating func add(_ summary: OpSummary) {
        counts.add(summary.causes)
        for s in summary.syncs {
            if let l = s.latencyNs { syncs[s.cause.slot].add(l) }
        }
        for d in summary.deviceFlushTimes { devices[d.cause.slot].add(d.ns) }
    }

    var breakdown: CostBreakdown {
        var b = CostBreakdown()
        var causes: [CauseCost] = []
        counts.forEach { c, n in
            causes.append(CauseCost(cause: c, hostSyncs: n, hostSyncTime: syncs[c.slot].summary,
                                    deviceFlushTime: devices[c.slot].summary))
        }
        b.causes = causes.sorted {
            ($0.hostSyncTime.sumNs, $0.hostSyncs, $1.cause.rawValue) > ($1.hostSyncTime.sumNs, $1.hostSyncs, $0.cause.rawValue)
        }
        var all = LatencyDistribution()
        for d in syncs { all.add(d) }
        b.hostSyncTime = all.summary
        b.guestFlushLatency = flushes.summary
        return b
    }
}

extension GuestOp {
    /// Time spent in the host syncs of this op's tree (ns; syncs without a captured return count 0).
    public var hostSyncTimeNs: UInt64 { children.reduce(0) { $0 + $1.hostSyncTimeNs } }
}

extension CausalNode {
    var hostSyncTimeNs: UInt64 {
        (kind == .hostSync ? latencyNs ?? 0 : 0) + children.reduce(0) { $0 + $1.hostSyncTimeNs }
    }
}
