/// Follows one op's qcow2 metadata events and names the cause of each host sync it submits.
///
/// Two situations, told apart by `bdrv_co_flush` on a qcow2 node:
/// - Inside a full flush (`bdrv_co_flush(qcow2)` -> `qcow2_co_flush_to_os` ->
///   `bdrv_co_flush(file)`), the last sync is the flush's own (F1; F14 in a
///   write op; F13 at close) and any earlier ones are dependency pre-flushes
///   (F2/F3/F10). They are named when the full flush ends, because only then
///   is it known which sync was last.
/// - In the write path, the most recent marker names the sync:
///   `qcow2_write_l1_entry` (F6), `qcow2_mark_dirty` (F12),
///   `qcow2_grow_l1_table` (F7), `qcow2_refcount_area` (F9), another
///   `bdrv_co_pwrite_sync` (the refcount-table entry of a new refcount block,
///   F8), a dependency pre-flush confirmed by the write-back of the cache it
///   depends on (F2, or F11 when not inside a cache write pass), or
///   `qcow2_cache_set_dependency` with a pending opposite dependency (F10).
///   Plain cache flushes are F4/F5 of a new L2 table unless a refcount-table
///   entry write follows (then F8).
final class CauseTracker {
    /// A sync slot: the cause is filled in when known.
    final class Slot {
        var cause: Cause
        init(_ cause: Cause) { self.cause = cause }
    }

    enum Marker {
        /// A dependency pre-flush that is confirmed once `expect` is written back next.
        case dependency(expect: UInt64, cause: Cause, confirmed: Bool)
        /// depends_on_flush: confirmed by the next node flush.
        case cow(confirmed: Bool)
        /// A confirmed pre-flush reached `bdrv_co_flush(file)`: the very next event is its submit,
        /// unless the file node was clean and the flush was skipped.
        case flushing(Cause)
        case crossFlush
        case l1Entry, markDirty, growL1, refcountArea, reftableEntry
    }

    /// The cause of the last sync of a full flush in this op.
    let finalCause: Cause
    private var inFullFlush = false
    private var fullFlushSlots: [(Slot, Cause?)] = []
    private var marker: Marker?
    private var lastCache: (entry: Bool, cache: UInt64)?
    private var plainRun: [Slot] = []
    /// Without qcow2_cache_entry_flush (stock binaries), qcow2_cache_write's `depends` stands for it.
    let hasEntryFlushProbe: Bool

    init(finalCause: Cause, hasEntryFlushProbe: Bool) {
        self.finalCause = finalCause
        self.hasEntryFlushProbe = hasEntryFlushProbe
    }

    /// `bdrv_co_flush(bs)`; `isFormatNode` when bs is the qcow2 node (a full flush begins).
    func nodeFlush(isFormatNode: Bool) {
        if case .flushing? = marker { marker = nil }
        if isFormatNode {
            endFullFlush()
            inFullFlush = true
            marker = nil
            plainRun.removeAll()
        } else {
            switch marker {
            case .cow?: marker = .flushing(.cowDependsOnFlush)
            case let .dependency(_, cause, true)?: marker = .flushing(cause)
            case .crossFlush?: marker = .flushing(.dependencyCrossFlush)
            default: break
            }
        }
    }

    /// Any qcow2 event other than a node flush: a pre-flush that reached the file node and did not submit was skipped.
    private func dropSkippedFlush() {
        if case .flushing? = marker { marker = nil }
    }

    /// A new qcow2 write request chunk: the previous flush or metadata run is over.
    func qcow2Write() {
        dropSkippedFlush()
        endFullFlush()
        marker = nil
        plainRun.removeAll()
    }

    /// `qcow2_cache_write(c)` with the cache's `depends` at entry (0 when none).
    func cacheWrite(cache: UInt64, depends: UInt64, dependencyCause: Cause) {
        dropSkippedFlush()
        confirmOrDrop(nextCacheWrite: cache)
        if !hasEntryFlushProbe && depends != 0 {
            marker = .dependency(expect: depends, cause: dependencyCause, confirmed: false)
        }
        lastCache = (false, cache)
    }

    /// `qcow2_cache_entry_flush(c, i)` with the cache's `depends` and `depends_on_flush` at entry.
    func entryFlush(cache: UInt64, depends: UInt64, dependsOnFlush: Bool, dependencyCause: Cause) {
        dropSkippedFlush()
        confirmOrDrop(nextCacheWrite: nil)
        let inPass = lastCache?.cache == cache
        if depends != 0 {
            marker = .dependency(expect: depends, cause: inPass ? dependencyCause : .cacheEviction, confirmed: false)
        } else if dependsOnFlush {
            marker = .cow(confirmed: false)
        }
        lastCache = (true, cache)
    }

    /// `qcow2_cache_set_dependency`; `willFlush` when a pending opposite dependency makes it flush a cache.
    func setDependency(willFlush: Bool) {
        dropSkippedFlush()
        if willFlush { marker = .crossFlush }
    }

    func l1Entry() { marker = .l1Entry }
    // (markers set below replace a skipped pre-flush as well)
    func markDirty() { marker = .markDirty }
    func growL1() { marker = .growL1 }
    func refcountArea() { marker = .refcountArea }

    /// `bdrv_co_pwrite_sync`: the refcount-table entry of a new refcount block, unless another marker explains it.
    func pwriteSync() {
        dropSkippedFlush()
        switch marker {
        case .l1Entry?, .markDirty?, .growL1?, .refcountArea?: return
        default: marker = .reftableEntry
        }
    }

    /// A flush job was handed to the thread pool: returns the slot its host sync takes its cause from.
    func submit() -> Slot {
        // Open, close and housekeeping work is named after the group, whatever flushed.
        if [.imageOpen, .imageClose, .housekeeping].contains(finalCause) { return Slot(finalCause) }
        if inFullFlush {
            let slot = Slot(finalCause)
            fullFlushSlots.append((slot, takeDependencyCause()))
            return slot
        }
        if let cause = takeDependencyCause() { return Slot(cause) }
        switch marker {
        case .l1Entry?:
            marker = nil
            plainRun.removeAll()
            return Slot(.l2TableAlloc)
        case .markDirty?:
            marker = nil
            return Slot(.lazyDirtyBit)
        case .growL1?:
            return Slot(.l1TableGrow)
        case .refcountArea?:
            return Slot(.refcountTableGrow)
        case .reftableEntry?:
            marker = nil
            for s in plainRun { s.cause = .refcountBlockAlloc }
            plainRun.removeAll()
            return Slot(.refcountBlockAlloc)
        default:
            let slot = Slot(.l2TableAlloc)
            plainRun.append(slot)
            return slot
        }
    }

    /// Names the syncs of the running full flush: the last is the flush's own, earlier ones pre-flushes.
    func endFullFlush() {
        guard inFullFlush else { return }
        for (i, (slot, cause)) in fullFlushSlots.enumerated() {
            slot.cause = i == fullFlushSlots.count - 1 ? finalCause : (cause ?? .refcountDependency)
        }
        fullFlushSlots.removeAll()
        inFullFlush = false
    }

    /// Runs `body` with the syncs of the running full flush named as `endFullFlush` would name
    /// them now, then puts their causes back: a live view of an op still in its flush.
    func asIfFullFlushEnded<T>(_ body: () -> T) -> T {
        guard inFullFlush else { return body() }
        let saved = fullFlushSlots.map(\.0.cause)
        for (i, (slot, cause)) in fullFlushSlots.enumerated() {
            slot.cause = i == fullFlushSlots.count - 1 ? finalCause : (cause ?? .refcountDependency)
        }
        defer { for (i, (slot, _)) in fullFlushSlots.enumerated() { slot.cause = saved[i] } }
        return body()
    }

    private func takeDependencyCause() -> Cause? {
        guard case let .flushing(cause)? = marker else { return nil }
        marker = nil
        return cause
    }

    /// A pending dependency marker holds only if the next cache event writes back the cache it depends on.
    private func confirmOrDrop(nextCacheWrite cache: UInt64?) {
        guard case let .dependency(expect, cause, false)? = marker else { return }
        marker = cache == expect ? .dependency(expect: expect, cause: cause, confirmed: true) : nil
    }
}
