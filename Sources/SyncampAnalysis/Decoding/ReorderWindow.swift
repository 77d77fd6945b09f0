import SyncampCapture

/// Puts events back into timestamp order within a bounded window.
///
/// One BPF ring buffer is filled in reservation order, which can differ from
/// timestamp order by a little across CPUs. The window holds the newest
/// `capacity` events and releases the oldest; an event older than one already
/// released cannot be placed and is counted in `lateEvents` (emitted anyway, in
/// arrival order). `reordered` counts events that did not arrive in order.
///
/// Events arrive almost sorted, so the window is a sorted run: an event in
/// order is appended, one out of order is moved back past the few newer ones.
/// Events with equal timestamps keep their arrival order.
public struct ReorderWindow {
    public let capacity: Int
    /// Sorted by timestamp from `head` on; slots before `head` are released.
    private var run: [Event] = []
    private var head = 0
    private var lastArrival: UInt64 = 0
    private var lastReleased: UInt64 = 0
    public private(set) var reordered: UInt64 = 0
    public private(set) var lateEvents: UInt64 = 0

    public init(capacity: Int = 4096) {
        self.capacity = max(1, capacity)
        run.reserveCapacity(2 * self.capacity + 1)
    }

    /// Adds an event; returns the oldest one when the window is full.
    public mutating func push(_ e: Event) -> Event? {
        if e.timestamp < lastArrival {
            reordered += 1
            var i = run.count
            while i > head && run[i - 1].timestamp > e.timestamp { i -= 1 }
            run.insert(e, at: i)
        } else {
            lastArrival = e.timestamp
            run.append(e)
        }
        return run.count - head > capacity ? pop() : nil
    }

    /// Releases the oldest event if it is no newer than `timestamp` (live captures: events old enough
    /// that nothing older can still arrive).
    public mutating func pop(through timestamp: UInt64) -> Event? {
        guard head < run.count, run[head].timestamp <= timestamp else { return nil }
        return pop()
    }

    /// Releases the oldest event, or nil when empty.
    public mutating func pop() -> Event? {
        guard head < run.count else { return nil }
        let e = run[head]
        head += 1
        if head == run.count {
            run.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= capacity {
            run.removeFirst(head)
            head = 0
        }
        if e.timestamp < lastReleased { lateEvents += 1 }
        lastReleased = max(lastReleased, e.timestamp)
        return e
    }
}
