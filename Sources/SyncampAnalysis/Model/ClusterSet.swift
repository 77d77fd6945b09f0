import SyncampQcow2

/// A set of cluster indexes kept as sorted, disjoint, non-adjacent ranges.
struct ClusterSet: Equatable, Sendable {
    private(set) var ranges: [ImageState.ClusterRange] = []

    init(_ ranges: [ImageState.ClusterRange] = []) {
        for r in ranges { insert(r.start, r.end) }
    }

    var isEmpty: Bool { ranges.isEmpty }

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

    /// Removes [start, end), splitting ranges it cuts (in place; nothing to do when no range overlaps).
    mutating func remove(_ start: UInt64, _ end: UInt64) {
        guard start < end else { return }
        let first = firstIndex(endingAtOrAfter: start + 1)
        var last = first
        while last < ranges.count, ranges[last].start < end { last += 1 }
        guard first < last else { return }
        // What is left of the ranges [first, last) overlapping [start, end): a head and a tail at most,
        // written over them (a tail past a head cut from one range is inserted after it).
        let headStart = ranges[first].start, tailEnd = ranges[last - 1].end
        var w = first
        if headStart < start {
            ranges[w] = .init(start: headStart, end: start)
            w += 1
        }
        if tailEnd > end {
            if w < last { ranges[w] = .init(start: end, end: tailEnd) } else { ranges.insert(.init(start: end, end: tailEnd), at: w) }
            w += 1
        }
        if w < last { ranges.removeSubrange(w..<last) }
    }

    /// Whether any cluster of [start, end) is in the set.
    func intersects(_ start: UInt64, _ end: UInt64) -> Bool { missing(start, end) < end - start }
}
