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
        for r in ranges where r.end > start && r.start < end {
            covered += min(r.end, end) - max(r.start, start)
        }
        return (end - start) - covered
    }

    /// Adds [start, end), merging with touching ranges.
    mutating func insert(_ start: UInt64, _ end: UInt64) {
        guard start < end else { return }
        var s = start, e = end
        var kept: [ImageState.ClusterRange] = []
        var placed = false
        for r in ranges {
            if r.end < s {
                kept.append(r)
            } else if r.start > e {
                if !placed { kept.append(.init(start: s, end: e)); placed = true }
                kept.append(r)
            } else {
                s = min(s, r.start)
                e = max(e, r.end)
            }
        }
        if !placed { kept.append(.init(start: s, end: e)) }
        ranges = kept
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
