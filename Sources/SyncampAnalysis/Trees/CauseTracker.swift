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
        case l1Entry, markDirty, refcountArea, reftableEntry
        /// Inside qcow2_grow_l1_table; `headerWritten` once its synced header write (l1_size,
        /// l1_table_offset) ran: the sync after it is the growth's last.
        case growL1(headerWritten: Bool)
        /// qcow2_co_truncate's synced write of the new size.
        case resizeHeader
        /// vmdk_L2update: its flush of the file follows.
        case vmdkGrainTable
    }

    /// The op's write went to the vmdk driver: its syncs are vmdk's.
    private var vmdk = false

    /// The cause of the last sync of a full flush in this op.
    let finalCause: Cause
    private var inFullFlush = false
    private var fullFlushSlots: [(Slot, Cause?)] = []
    private var marker: Marker?
    /// Set once the op rewrote the persistent bitmaps' directory (F16).
    private var bitmapStore = false
    private var lastCache: (entry: Bool, cache: UInt64)?
    private var plainRun: [Slot] = []
    /// Plain slots that followed a write-back of the refcount cache (what an eviction's dependency flush does).
    private var afterRefcountWrite: Set<ObjectIdentifier> = []
    private var lastCacheWriteWasRefcount = false
    /// Without qcow2_cache_entry_flush (stock binaries), qcow2_cache_write's `depends` stands for it.
    let hasEntryFlushProbe: Bool
    /// The cause of a plain cache flush with no marker: F4/F5 of a new L2 table in requests,
    /// the options update's cache flushes in a resize.
    let plainCacheFlush: Cause

    /// QCowHeader byte offsets (docs/interop/qcow2.txt): `size` (8 bytes) and `l1_size` (then l1_table_offset).
    static let headerSizeOffset: UInt64 = 24
    static let headerL1SizeOffset: UInt64 = 36

    /// Whether plain cache flushes left unexplained at the end are evictions (requests that look up
    /// L2 slices: writes, write-zeroes, discards).
    let looksUpClusters: Bool

    init(finalCause: Cause, hasEntryFlushProbe: Bool, plainCacheFlush: Cause = .l2TableAlloc, looksUpClusters: Bool = false) {
        self.finalCause = finalCause
        self.hasEntryFlushProbe = hasEntryFlushProbe
        self.plainCacheFlush = plainCacheFlush
        self.looksUpClusters = looksUpClusters
    }

    /// What a tracker starts from (the parameters of `init`), kept by an op until its first
    /// event needs the tracker.
    struct Setup {
        var finalCause: Cause
        var hasEntryFlushProbe: Bool
        var plainCacheFlush: Cause = .l2TableAlloc
        var looksUpClusters = false
    }

    convenience init(_ s: Setup) {
        self.init(finalCause: s.finalCause, hasEntryFlushProbe: s.hasEntryFlushProbe, plainCacheFlush: s.plainCacheFlush,
                  looksUpClusters: s.looksUpClusters)
    }

    /// `bdrv_co_flush(bs)`; `isFormatNode` when bs is the qcow2 node (a full flush begins).
    func nodeFlush(isFormatNode: Bool) {
        if case .flushing? = marker { marker = nil }
        if isFormatNode {
            endFullFlush()
            closePlainRun()
            inFullFlush = true
            marker = nil
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

    /// `qcow2_cache_write(c)` with the cache's `depends` at entry (0 when none); `isRefcount` when c
    /// is the refcount block cache.
    /// `dependsOnFlush` is the cache's depends_on_flush at entry (a real COW happened, F3).
    func cacheWrite(cache: UInt64, depends: UInt64, dependencyCause: Cause, isRefcount: Bool = false, dependsOnFlush: Bool = false) {
        lastCacheWriteWasRefcount = isRefcount
        dropSkippedFlush()
        confirmOrDrop(nextCacheWrite: cache)
        if !hasEntryFlushProbe && depends != 0 {
            marker = .dependency(expect: depends, cause: dependencyCause, confirmed: false)
        } else if !hasEntryFlushProbe && dependsOnFlush {
            // The first dirty entry's write-back flushes the file first (qcow2-cache.c:194-198).
            marker = .cow(confirmed: false)
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
    /// `vmdk_co_pwritev`: the request is the vmdk driver's.
    func vmdkWrite() { vmdk = true }
    /// `vmdk_L2update`.
    func vmdkGrainTableUpdate() {
        vmdk = true
        marker = .vmdkGrainTable
    }
    // (markers set below replace a skipped pre-flush as well)
    func markDirty() { marker = .markDirty }
    /// `update_ext_header_and_dir`: the bitmaps' directory is rewritten; its cache flushes and
    /// synced header follow, and the rest of the op (a close, a bitmap removal) syncs nothing
    /// more in practice: every later sync of the op is the bitmaps'.
    func bitmapDirectory() { bitmapStore = true }
    func growL1() { marker = .growL1(headerWritten: false) }
    func refcountArea() { marker = .refcountArea }

    /// `bdrv_co_pwrite_sync(child, offset, ...)`: the refcount-table entry of a new refcount block,
    /// unless another marker explains it; at the header's `size` field, a resize's (F16).
    func pwriteSync(offset: UInt64) {
        dropSkippedFlush()
        switch marker {
        case .growL1?:
            if offset == Self.headerL1SizeOffset { marker = .growL1(headerWritten: true) }
        case .l1Entry?, .markDirty?, .refcountArea?: return
        default: marker = offset == Self.headerSizeOffset ? .resizeHeader : .reftableEntry
        }
    }

    /// A flush job was handed to the thread pool: returns the slot its host sync takes its cause from.
    func submit() -> Slot {
        // A cache flush ends in one sync: the refcount write-back explains this one at most.
        let afterRefcount = lastCacheWriteWasRefcount
        lastCacheWriteWasRefcount = false
        // Open, close and housekeeping work is named after the group, whatever flushed.
        if bitmapStore { return Slot(.bitmap) }
        switch finalCause {  // a switch, not an array literal's contains: that allocated an array per submit
        case .imageOpen, .imageClose, .housekeeping, .imageCreate, .snapshot, .imageCheck, .makeEmpty: return Slot(finalCause)
        default: break
        }
        if inFullFlush {
            let slot = Slot(finalCause)
            // A guest flush submits two or three: one allocation, not two.
            if fullFlushSlots.isEmpty { fullFlushSlots.reserveCapacity(4) }
            fullFlushSlots.append((slot, takeDependencyCause()))
            return slot
        }
        if let cause = takeDependencyCause() { return Slot(cause) }
        if vmdk {
            // vmdk_pwritev syncs twice at most: vmdk_L2update's flush, and vmdk_write_cid's synced
            // descriptor (the only bdrv_pwrite_sync on its path).
            defer { marker = nil }
            switch marker {
            case .vmdkGrainTable?: return Slot(.vmdkGrainTable)
            case .reftableEntry?, .resizeHeader?: return Slot(.vmdkDescriptor)
            default: return Slot(.formatMetadata)
            }
        }
        switch marker {
        case .l1Entry?:
            marker = nil
            // The plain flushes before it were l2_allocate's (F4, F5): with several L2 tables or
            // quorum children in one op their coroutines interleave, so an eviction before a new
            // table in the same op is not told from it.
            afterRefcountWrite.removeAll()
            plainRun.removeAll()
            return Slot(.l2TableAlloc)
        case .markDirty?:
            marker = nil
            return Slot(.lazyDirtyBit)
        case let .growL1(headerWritten)?:
            if headerWritten { marker = nil }
            return Slot(.l1TableGrow)
        case .resizeHeader?:
            marker = nil
            return Slot(.resizeHeader)
        case .refcountArea?:
            return Slot(.refcountTableGrow)
        case .reftableEntry?:
            marker = nil
            for s in plainRun { s.cause = .refcountBlockAlloc }
            plainRun.removeAll()
            return Slot(.refcountBlockAlloc)
        default:
            let slot = Slot(plainCacheFlush)
            plainRun.append(slot)
            if afterRefcount { afterRefcountWrite.insert(ObjectIdentifier(slot)) }
            return slot
        }
    }

    /// The op is over: plain cache flushes no new L2 table (F6) or refcount block (F8) explained
    /// were the dependency flushes of a cache miss evicting a dirty slice (F11). Without
    /// `qcow2_cache_entry_flush` (the minimal set) that is the only way to tell them.
    func endOp() {
        endFullFlush()
        closePlainRun()
    }

    private func closePlainRun() {
        if looksUpClusters { for s in plainRun where afterRefcountWrite.contains(ObjectIdentifier(s)) { s.cause = .cacheEviction } }
        plainRun.removeAll()
        afterRefcountWrite.removeAll()
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
