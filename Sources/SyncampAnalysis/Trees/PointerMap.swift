/// A map from 64-bit keys (QEMU pointers: coroutines, opaques) to values, for the lookups the
/// tree builder makes on every QEMU event.
///
/// `Dictionary` hashes each key with SipHash (about 95 instructions per lookup here, callgrind);
/// pointers are already well spread, so a multiplicative hash and linear probing in two flat
/// arrays do the same work in a few. Deletion shifts the probe run back (no tombstones), so
/// a map that sees millions of inserts and removes stays as small as what it holds.
/// Iteration order is not offered: nothing that reads these maps depends on one.
struct PointerMap<Value> {
    /// Keys of the occupied slots; `empty` marks a free one (key 0 is kept in `zeroValue`).
    private var keys: [UInt64]
    private var values: [Value?]
    private var zeroValue: Value?
    private var mask: Int
    private var shift: UInt64
    private(set) var count = 0

    private static var empty: UInt64 { 0 }

    init() {
        keys = Array(repeating: Self.empty, count: 16)
        values = Array(repeating: nil, count: 16)
        mask = 15
        shift = 64 - 4
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The slot holding `key`, or the free slot where it would go.
    @inline(__always)
    private func probe(_ key: UInt64) -> (slot: Int, found: Bool) {
        var i = home(key)
        while true {
            let k = keys[i]
            if k == key { return (i, true) }
            if k == Self.empty { return (i, false) }
            i = (i + 1) & mask
        }
    }

    subscript(key: UInt64) -> Value? {
        get {
            if key == 0 { return zeroValue }
            let (i, found) = probe(key)
            return found ? values[i] : nil
        }
        set {
            guard let newValue else {
                removeValue(forKey: key)
                return
            }
            if key == 0 {
                if zeroValue == nil { count += 1 }
                zeroValue = newValue
                return
            }
            let (i, found) = probe(key)
            if found {
                values[i] = newValue
                return
            }
            keys[i] = key
            values[i] = newValue
            count += 1
            // At most half full: a miss (most lookups of a coroutine no request holds) probes 2.5 slots on average, not 8.5.
            if count * 2 > keys.count { grow() }
        }
    }

    @discardableResult
    mutating func removeValue(forKey key: UInt64) -> Value? {
        if key == 0 {
            guard let v = zeroValue else { return nil }
            zeroValue = nil
            count -= 1
            return v
        }
        let at = probe(key)
        guard at.found else { return nil }
        var i = at.slot
        let old = values[i]
        count -= 1
        // Backward-shift deletion: move later entries of the run into the hole when their home allows.
        var j = i
        while true {
            j = (j + 1) & mask
            let k = keys[j]
            if k == Self.empty { break }
            let h = home(k)
            // The entry at j may move to i when its home is not in the cyclic range (i, j].
            let inRange = i <= j ? (h > i && h <= j) : (h > i || h <= j)
            if !inRange {
                keys[i] = k
                values[i] = values[j]
                i = j
            }
        }
        keys[i] = Self.empty
        values[i] = nil
        return old
    }

    mutating func removeAll() {
        for i in keys.indices where keys[i] != Self.empty {
            keys[i] = Self.empty
            values[i] = nil
        }
        zeroValue = nil
        count = 0
    }

    private mutating func grow() {
        let oldKeys = keys, oldValues = values
        let size = keys.count * 2
        keys = Array(repeating: Self.empty, count: size)
        values = Array(repeating: nil, count: size)
        mask = size - 1
        shift -= 1
        for (k, v) in zip(oldKeys, oldValues) where k != Self.empty {
            let (i, _) = probe(k)
            keys[i] = k
            values[i] = v
        }
    }
}
