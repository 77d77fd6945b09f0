import SyncampQcow2

/// A set of cluster indexes kept as sorted, disjoint, non-adjacent ranges.
struct ClusterSet: Equatable, Sendable {
    private(set) var ranges: [ImageState.ClusterRange] = []
    /// The range the last `missingNoting` or `insert` ended in: a run of requests stays in one
    /// range, found there before any search. Not part of the set's value.
    private var hint = 0

    static func == (a: ClusterSet, b: ClusterSet) -> Bool { a.ranges == b.ranges }

    init(_ ranges: [ImageState.ClusterRange] = []) {
        for r in ranges { insert(r.start, r.end) }
    }

    var isEmpty: Bool { ranges.isEmpty }

    /// The clusters of [start, end) not in the set.
    func missing(_ start: UInt64, _ end: UInt64) -> UInt64 {
        missing(start, end, from: firstIndex(endingAtOrAfter: start + 1))
    }

    /// The clusters of [start, end) not in the set, `first` the first range that may cover some.
    @inline(__always)
    private func missing(_ start: UInt64, _ end: UInt64, from first: Int) -> UInt64 {
        var covered: UInt64 = 0
        var i = first
        while i < ranges.count, ranges[i].start < end {
            covered += min(ranges[i].end, end) - max(ranges[i].start, start)
            i += 1
        }
        return (end - start) - covered
    }

    /// `missing(start, end)`, remembering the range it fell in for the next call: the model's
    /// writes ask this of each request, and most requests fall in the range the last one did.
    mutating func missingNoting(_ start: UInt64, _ end: UInt64) -> UInt64 {
        if start < end, hint < ranges.count, ranges[hint].start <= start, end <= ranges[hint].end { return 0 }
        let first = firstIndex(endingAtOrAfter: start + 1)
        if first < ranges.count { hint = first }
        return missing(start, end, from: first)
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
        hint = first
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
