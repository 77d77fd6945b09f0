/// A map of a few entries, searched in the order they were added: the storage linker's state per
/// block device (a capture watches one device or a few) and per thread inside a file-system sync
/// (a few at once); the sync linker's per thread inside a sync or a flush job and per file node
/// with a flush waiting (as many as flushes in flight). No hashing: with `Dictionary`, SipHash was
/// most of each of the half dozen lookups a host sync makes there. Iteration order is insertion
/// order; the linkers' walks do not depend on it.
struct SmallMap<Key: Equatable, Value> {
    private(set) var entries: [(key: Key, value: Value)] = []

    var isEmpty: Bool { entries.isEmpty }
    var values: LazyMapSequence<[(key: Key, value: Value)], Value> { entries.lazy.map(\.value) }

    mutating func removeAll() { entries.removeAll() }

    subscript(key: Key) -> Value? {
        get { index(of: key).map { entries[$0].value } }
        set {
            if let i = index(of: key) {
                if let v = newValue { entries[i].value = v } else { entries.remove(at: i) }
            } else if let v = newValue {
                entries.append((key, v))
            }
        }
    }

    /// Removes the entry of `key`; returns its value, nil when there was none.
    @discardableResult
    mutating func removeValue(forKey key: Key) -> Value? {
        guard let i = index(of: key) else { return nil }
        return entries.remove(at: i).value
    }

    private func index(of key: Key) -> Int? {
        for i in entries.indices where entries[i].key == key { return i }
        return nil
    }
}
