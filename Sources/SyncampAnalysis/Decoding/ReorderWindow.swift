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
///
/// An event is 168 bytes; the analysis reads each one straight into its slot
/// (`nextSlot`, `commit`) and decodes the released one where it lies, so that an event is
/// copied once on its way from the file to the decoder.
public struct ReorderWindow {
    /// The ring's storage: `capacity + 1` slots, one free for the next event.
    private final class Ring {
        let slots: UnsafeMutablePointer<Event>
        let count: Int
        init(count: Int) {
            self.count = count
            slots = .allocate(capacity: count)
            slots.initialize(repeating: Event(timestamp: 0, pid: 0, tid: 0, cpu: 0, kind: .uprobe, probeID: 0), count: count)
        }
        init(copying other: Ring) {
            count = other.count
            slots = .allocate(capacity: count)
            slots.initialize(from: other.slots, count: count)
        }
        deinit {
            slots.deinitialize(count: count)
            slots.deallocate()
        }
    }

    public let capacity: Int
    /// `count` events sorted by timestamp, from `front` on, wrapping at the end.
    private var ring: Ring
    private var front = 0
    private var count = 0
    private var lastArrival: UInt64 = 0
    private var lastReleased: UInt64 = 0
    public private(set) var reordered: UInt64 = 0
    public private(set) var lateEvents: UInt64 = 0

    public init(capacity: Int = 4096) {
        self.capacity = max(1, capacity)
        ring = Ring(count: self.capacity + 1)
    }

    /// The ring index of the `i`th event held.
    @inline(__always)
    private func slot(_ i: Int) -> Int {
        let s = front + i
        return s < ring.count ? s : s - ring.count
    }

    /// A copy of the window shares no slots with the original (value semantics).
    @inline(__always)
    private mutating func own() {
        if !isKnownUniquelyReferenced(&ring) { ring = Ring(copying: ring) }
    }

    /// Where the next event is to be written before `commit()`; valid until the window next changes.
    public mutating func nextSlot() -> UnsafeMutablePointer<Event> {
        own()
        return ring.slots + slot(count)
    }

    /// The timestamp of the event written at `nextSlot()` and not committed yet (read in place:
    /// `nextSlot()` checks that the storage is not shared, which a read need not).
    public var nextTimestamp: UInt64 { ring.slots[slot(count)].timestamp }

    /// Takes in the event written at `nextSlot()`; returns the oldest event when the window is
    /// full, in place: valid until the window next changes.
    public mutating func commit() -> UnsafePointer<Event>? {
        own()  // an out-of-order event moves held ones: a copy taken since `nextSlot()` keeps its own
        let slots = ring.slots
        let at = slot(count)
        let t = slots[at].timestamp
        if t < lastArrival {
            reordered += 1
            let e = slots[at]
            var i = count
            while i > 0 && slots[slot(i - 1)].timestamp > t {
                slots[slot(i)] = slots[slot(i - 1)]
                i -= 1
            }
            slots[slot(i)] = e
        } else {
            lastArrival = t
        }
        count += 1
        return count > capacity ? release() : nil
    }

    /// Adds an event; returns the oldest one when the window is full.
    public mutating func push(_ e: Event) -> Event? {
        nextSlot().pointee = e
        return commit()?.pointee
    }

    /// Releases the oldest event if it is no newer than `timestamp` (live captures: events old enough
    /// that nothing older can still arrive).
    public mutating func pop(through timestamp: UInt64) -> Event? {
        release(through: timestamp)?.pointee
    }

    /// `pop(through:)` in place: the slot stays as it is until the window next changes.
    public mutating func release(through timestamp: UInt64) -> UnsafePointer<Event>? {
        guard count > 0, ring.slots[front].timestamp <= timestamp else { return nil }
        return release()
    }

    /// Releases the oldest event, or nil when empty.
    public mutating func pop() -> Event? {
        release()?.pointee
    }

    /// Releases the oldest event in place: its slot stays as it is until the window next changes
    /// (and lives as long as this window's storage: a copy of the window may take its own later).
    public mutating func release() -> UnsafePointer<Event>? {
        guard count > 0 else { return nil }
        let e = UnsafePointer(ring.slots + front)
        front = slot(1)
        count -= 1
        let t = e.pointee.timestamp
        if t < lastReleased { lateEvents += 1 }
        lastReleased = max(lastReleased, t)
        return e
    }
}
