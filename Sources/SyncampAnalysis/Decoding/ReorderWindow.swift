import SyncampCapture

/// Puts events back into timestamp order within a bounded window.
///
/// One BPF ring buffer is filled in reservation order, which can differ from
/// timestamp order by a little across CPUs. The window holds the newest
/// `capacity` events and releases the oldest; an event older than one already
/// released cannot be placed and is counted in `lateEvents` (emitted anyway, in
/// arrival order). `reordered` counts events that did not arrive in order.
///
/// Events arrive almost sorted, so the window is a sorted run in a ring: an event in order
/// is appended, one out of order is moved back past the few newer ones, and the oldest
/// leaves from the front without moving the rest. Events with equal timestamps keep their
/// arrival order.
public struct ReorderWindow {
    public let capacity: Int
    /// `count` events sorted by timestamp, from `front` on, wrapping at the end.
    private var ring: [Event]
    private var front = 0
    private var count = 0
    private var lastArrival: UInt64 = 0
    private var lastReleased: UInt64 = 0
    public private(set) var reordered: UInt64 = 0
    public private(set) var lateEvents: UInt64 = 0

    public init(capacity: Int = 4096) {
        self.capacity = max(1, capacity)
        ring = Array(repeating: Event(timestamp: 0, pid: 0, tid: 0, cpu: 0, kind: .uprobe, probeID: 0), count: self.capacity + 1)
    }

    /// The ring index of the `i`th event held.
    @inline(__always)
    private func slot(_ i: Int) -> Int {
        let s = front + i
        return s < ring.count ? s : s - ring.count
    }

    /// Adds an event; returns the oldest one when the window is full.
    public mutating func push(_ e: Event) -> Event? {
        if e.timestamp < lastArrival {
            reordered += 1
            var i = count
            while i > 0 && ring[slot(i - 1)].timestamp > e.timestamp {
                ring[slot(i)] = ring[slot(i - 1)]
                i -= 1
            }
            ring[slot(i)] = e
        } else {
            lastArrival = e.timestamp
            ring[slot(count)] = e
        }
        count += 1
        return count > capacity ? pop() : nil
    }

    /// Releases the oldest event if it is no newer than `timestamp` (live captures: events old enough
    /// that nothing older can still arrive).
    public mutating func pop(through timestamp: UInt64) -> Event? {
        guard count > 0, ring[front].timestamp <= timestamp else { return nil }
        return pop()
    }

    /// Releases the oldest event, or nil when empty.
    public mutating func pop() -> Event? {
        guard count > 0 else { return nil }
        let e = ring[front]
        front = slot(1)
        count -= 1
        if e.timestamp < lastReleased { lateEvents += 1 }
        lastReleased = max(lastReleased, e.timestamp)
        return e
    }
}
