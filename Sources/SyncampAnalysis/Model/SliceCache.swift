/// QEMU's qcow2 L2 cache when it cannot hold every slice of the disk: which slices it holds, which are dirty, and which one a miss evicts.
///
/// qcow2-cache.c (QEMU 7.2): `qcow2_cache_do_get` returns a cached slice or
/// replaces the entry with the lowest `lru_counter` among those nobody holds
/// (`ref == 0`); empty entries have counter 0 and go first; `qcow2_cache_put`
/// gives the entry the next counter. A request holds at most one L2 slice at
/// a time (get, change, put), so the victim is always the least recently put
/// slice: plain LRU. Slices are named by guest position (L2 table index ×
/// slices per table + slice index), one-to-one with the host offsets QEMU keys them by.
struct SliceCache: Sendable {
    let capacity: Int
    /// Slice -> its lru counter.
    private var counter: [UInt64: UInt64] = [:]
    /// lru counter -> slice, for the live entries; `oldest` is at or below the smallest key.
    private var byCounter: [UInt64: UInt64] = [:]
    private var next: UInt64 = 1
    private var oldest: UInt64 = 1
    private(set) var dirty: Set<UInt64> = []

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// A get and put of `slice`: nil on a hit or a miss that filled an empty entry; on a miss in a
    /// full cache, the slice it evicted and whether it was dirty (the caller writes it back first).
    mutating func use(_ slice: UInt64) -> (victim: UInt64, dirty: Bool)? {
        var evicted: (UInt64, Bool)?
        if let c = counter[slice] {
            byCounter[c] = nil
        } else if counter.count >= capacity {
            while byCounter[oldest] == nil { oldest += 1 }
            let victim = byCounter.removeValue(forKey: oldest)!
            counter[victim] = nil
            evicted = (victim, dirty.remove(victim) != nil)
        }
        counter[slice] = next
        byCounter[next] = slice
        next += 1
        return evicted
    }

    mutating func markDirty(_ slice: UInt64) { dirty.insert(slice) }

    /// qcow2_cache_write: every dirty slice is written back.
    mutating func clean() { dirty.removeAll() }
}
