import SyncampCapture

/// Puts events back into timestamp order within a bounded window.
///
/// One BPF ring buffer is filled in reservation order, which can differ from
/// timestamp order by a little across CPUs. The window holds the newest
/// `capacity` events and releases the oldest; an event older than one already
/// released cannot be placed and is counted in `lateEvents` (emitted anyway, in
/// arrival order). `reordered` counts events that did not arrive in order.
public struct ReorderWindow {
    public let capacity: Int
    private var heap: [(Event, UInt64)] = []   // min-heap on (timestamp, sequence)
    private var sequence: UInt64 = 0
    private var lastArrival: UInt64 = 0
    private var lastReleased: UInt64 = 0
    public private(set) var reordered: UInt64 = 0
    public private(set) var lateEvents: UInt64 = 0

    public init(capacity: Int = 4096) { self.capacity = max(1, capacity) }

    /// Adds an event; returns the oldest one when the window is full.
    public mutating func push(_ e: Event) -> Event? {
        if e.timestamp < lastArrival { reordered += 1 }
        lastArrival = max(lastArrival, e.timestamp)
        heap.append((e, sequence))
        sequence += 1
        siftUp(heap.count - 1)
        return heap.count > capacity ? pop() : nil
    }

    /// Releases the oldest event, or nil when empty.
    public mutating func pop() -> Event? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let (e, _) = heap.removeLast()
        if !heap.isEmpty { siftDown(0) }
        if e.timestamp < lastReleased { lateEvents += 1 }
        lastReleased = max(lastReleased, e.timestamp)
        return e
    }

    private func less(_ a: Int, _ b: Int) -> Bool {
        let x = heap[a], y = heap[b]
        return x.0.timestamp != y.0.timestamp ? x.0.timestamp < y.0.timestamp : x.1 < y.1
    }

    private mutating func siftUp(_ i: Int) {
        var c = i
        while c > 0 {
            let p = (c - 1) / 2
            guard less(c, p) else { break }
            heap.swapAt(c, p)
            c = p
        }
    }

    private mutating func siftDown(_ i: Int) {
        var p = i
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < heap.count && less(l, m) { m = l }
            if r < heap.count && less(r, m) { m = r }
            if m == p { return }
            heap.swapAt(p, m)
            p = m
        }
    }
}
