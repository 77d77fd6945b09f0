import SyncampQcow2

/// A set of cluster indexes kept as sorted, disjoint, non-adjacent ranges.
struct ClusterSet: Equatable, Sendable {
    private(set) var ranges: [ImageState.ClusterRange] = []

    init(_ ranges: [ImageState.ClusterRange] = []) {
        for r in ranges { insert(r.start, r.end) }
    }

    /// The clusters of [start, end) not in the set.
    func missing(_ start: UInt64, _ end: UInt64) -> UInt64 {
        var covered: UInt64 = 0
        var i = firstIndex(endingAtOrAfter: start + 1)
        while i < ranges.count, ranges[i].start < end {
            covered += min(ranges[i].end, end) - max(ranges[i].start, start)
            i += 1
        }
        return (end - start) - covered
    }

    /// Adds [start, end), merging with touching ranges (in place: ranges stay sorted and apart).
    mutating func insert(_ start: UInt64, _ end: UInt64) {
        guard start < end else { return }
        let first = firstIndex(endingAtOrAfter: start)
        var last = first, s = start, e = end
        while last < ranges.count, ranges[last].start <= e {
            s = min(s, ranges[last].start)
            e = max(e, ranges[last].end)
            last += 1
        }
        ranges.replaceSubrange(first..<last, with: CollectionOfOne(.init(start: s, end: e)))
    }

    /// The index of the first range whose end is at or after `bound` (binary search).
    private func firstIndex(endingAtOrAfter bound: UInt64) -> Int {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].end < bound { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Removes [start, end), splitting ranges it cuts.
    mutating func remove(_ start: UInt64, _ end: UInt64) {
        guard start < end else { return }
        var kept: [ImageState.ClusterRange] = []
        for r in ranges {
            if r.end <= start || r.start >= end { kept.append(r); continue }
            if r.start < start { kept.append(.init(start: r.start, end: start)) }
            if r.end > end { kept.append(.init(start: end, end: r.end)) }
        }
        ranges = kept
    }

    /// Whether any cluster of [start, end) is in the set.
    func intersects(_ start: UInt64, _ end: UInt64) -> Bool { missing(start, end) < end - start }
}
