import SyncampQcow2

/// A small simulation of qcow2 metadata and QEMU 7.2's flush ordering: predicts each guest op's host syncs by cause.
///
/// The state machine of the flush-sites reference (§2), written from QEMU
/// 7.2's block/qcow2*.c and io.c:
/// - the file node is dirty after any write and a host flush is skipped when
///   it is clean (io.c:2983) or under cache=unsafe;
/// - each metadata cache (L2, refcount) is dirty or clean and may depend on
///   the other or on a flush (qcow2-cache.c:37-46): writing it back first
///   flushes what it depends on (F2/F3), `set_dependency` flushes a pending
///   opposite dependency (F10);
/// - a write into a region without an L2 table allocates one (F4-F6), an
///   allocation past the last refcount block allocates a block (F8, and the
///   undo that sets the refcount->L2 dependency), an allocating write sets
///   L2->refcount (or the lazy dirty bit, F12);
/// - a guest flush writes back L2 then refcounts and flushes (F1); write-through
///   does so after every write (F14); close flushes what is left (F13).
/// Cause names follow syncamp's tracker: a pre-flush made while writing back
/// a cache is named after the dependency, the flush a step makes itself after
/// the step.
public struct Qcow2Model: Sendable {
    enum Which { case l2, refcount }

    struct CacheState {
        var dirty = false
        var depends: Which?
        var dependsOnFlush = false
    }

    public let options: ModelOptions
    /// `options.cache.writesThrough`, read once: every write asks.
    private let writesThrough: Bool
    /// The image as the model has it now (a resize changes its size and L1).
    public private(set) var image: ImageState
    private var l2 = CacheState()
    private var refcount = CacheState()
    private var fileDirty = false
    private var lazyDirty: Bool
    private var l2Tables: Set<Int>
    /// The last table `hasL2Table` found (tables are never dropped): runs of requests stay in one table.
    private var lastL2Table = -1
    private var allocated: ClusterSet
    /// Extended L2: allocated subclusters (32 per cluster); nil for standard L2 entries.
    private var subclusters: ClusterSet?
    /// Clusters that keep their host cluster under an L2 zero flag (QCOW2_CLUSTER_ZERO_ALLOC: a
    /// write-zeroes without unmap): a write there clears the flag through link_l2, which the model does not follow.
    private var zeroAllocated = ClusterSet()
    /// Clusters a discard or write-zeroes of this run gave the zero flag: they read as zero
    /// whatever the backing file holds.
    private var readsZero = ClusterSet()
    /// `image.backingData` as a set of byte ranges (ClusterSet over bytes).
    private var backingData: ClusterSet?
    private var refcountBlocks: Set<Int>
    private var nextFree: UInt64
    /// The host syncs of the op being replayed (each step counts into it; `replay` and the public
    /// operations start it empty).
    var counts = CauseCounts()
    /// The image's geometry, read once (`ImageState`'s are computed, in another module).
    let clusterSize: UInt64
    /// Clusters one L2 table maps.
    let clustersPerTable: UInt64
    private let clustersPerRefcountBlock: UInt64
    /// Clusters per unit a request is cut into (see `unitClusters`), kept with `slices`.
    private var clustersPerUnit: UInt64 { perUnit.value }
    /// The divisors of the hot paths: bytes per cluster, clusters per unit, clusters per L2 table,
    /// bytes per L2 table, clusters per refcount block.
    private let perCluster: Divisor
    private var perUnit: Divisor
    private let perTable: Divisor
    let perTableBytes: Divisor
    private let perRefcountBlock: Divisor
    /// The sizes of the L2 and refcount caches (DriveOptions.geometry).
    public private(set) var geometry: DriveOptions.CacheGeometry
    /// The L2 cache's slices when it cannot hold every slice of the disk; nil when it can (then
    /// it never evicts and one dirty flag stands for it).
    private var slices: SliceCache?

    public init(image: ImageState, options: ModelOptions) {
        let state = options.apply(to: image)
        self.image = state
        self.options = options
        writesThrough = options.cache.writesThrough
        lazyDirty = state.dirty
        l2Tables = Set(state.l2Tables)
        allocated = ClusterSet(state.allocatedClusters)
        if state.extendedL2 {
            subclusters = ClusterSet(state.allocatedSubclusters
                ?? state.allocatedClusters.map { .init(start: $0.start * 32, end: $0.end * 32) })
        }
        refcountBlocks = Set(state.refcountBlocks)
        nextFree = state.hostClusters
        geometry = options.drive.geometry(state)
        slices = geometry.l2CoversDisk ? nil : SliceCache(capacity: geometry.l2Entries)
        clusterSize = state.clusterSize
        clustersPerTable = state.bytesPerL2Table / state.clusterSize
        clustersPerRefcountBlock = state.clustersPerRefcountBlock
        perUnit = Divisor(Self.unitClusters(state, geometry))
        perCluster = Divisor(state.clusterSize)
        perTable = Divisor(clustersPerTable)
        perTableBytes = Divisor(clustersPerTable * state.clusterSize)
        perRefcountBlock = Divisor(state.clustersPerRefcountBlock)
        backingData = state.hasBackingFile ? state.backingData.map { ClusterSet($0) } : nil
        simpleOverwrites = Self.simpleOverwrites(slices: slices, options: options)
    }

    private static func simpleOverwrites(slices: SliceCache?, options: ModelOptions) -> Bool {
        slices == nil && !options.cache.writesThrough && !options.drive.detectZeroes
    }

    /// Whether the model knows what a COW area of this image reads as: no backing file, or one
    /// whose data ranges were recorded (and standard L2 entries: extended L2 copies subclusters).
    public var knowsCowSource: Bool { !image.hasBackingFile || backingData != nil && !image.extendedL2 }

    /// Whether an allocating write of [offset, offset + bytes) copies data (a real COW, F3):
    /// is_zero_cow (qcow2.c:2451-2466) finds a COW area of a newly allocated cluster that does not
    /// read as zero, so handle_alloc_space does not zero-fill and perform_cow copies it and sets
    /// depends_on_flush on the L2 cache (qcow2-cluster.c:1019-1021). A COW area lies within one
    /// cluster: the head of the first cluster before the write, the tail of the last after it.
    private func copiesOnWrite(offset: UInt64, bytes: UInt64, lo: UInt64, hi: UInt64) -> Bool {
        guard image.hasBackingFile, let data = backingData else { return false }
        let cs = clusterSize, end = offset + bytes
        func copies(_ a: UInt64, _ b: UInt64) -> Bool {
            allocated.missing(a / cs, a / cs + 1) == 1 && !readsZero.intersects(a / cs, a / cs + 1) && data.intersects(a, b)
        }
        if offset % cs != 0, offset / cs >= lo, offset / cs < hi, copies(offset / cs * cs, offset) { return true }
        if end % cs != 0, (end - 1) / cs >= lo, (end - 1) / cs < hi, copies(end, ((end - 1) / cs + 1) * cs) { return true }
        return false
    }

    /// Whether a cache lookup may evict: the L2 cache holds fewer slices than the disk has, or
    /// the refcount cache fewer blocks than the image has.
    public var cacheMayEvict: Bool { slices != nil || refcountCacheMayEvict }

    /// Whether the refcount cache holds fewer refcount blocks than the image has.
    public var refcountCacheMayEvict: Bool { refcountBlocks.count > geometry.refcountEntries }

    /// The unit a request is cut into (qcow2_alloc_host_offset and the discard and zero loops stop
    /// at L2 slice boundaries): a slice when the cache is simulated, else a whole L2 table.
    private static func unitClusters(_ image: ImageState, _ geometry: DriveOptions.CacheGeometry) -> UInt64 {
        !geometry.l2CoversDisk ? geometry.l2SliceBytes / (image.extendedL2 ? 16 : 8) : image.bytesPerL2Table / image.clusterSize
    }

    /// Whether a write covers more than one unit: QEMU then runs its parts as parallel tasks.
    public func writeSpansUnits(offset: UInt64, bytes: UInt64) -> Bool {
        guard inDisk(offset, bytes) else { return false }
        let per = clustersPerUnit * clusterSize
        return offset / per != (offset + bytes - 1) / per
    }

    private var lazy: Bool { image.lazyRefcounts }

    // MARK: Guest operations

    /// A guest write of `bytes` at `offset`: returns the host syncs it causes, by cause.
    public mutating func write(offset: UInt64, bytes: UInt64) -> [Cause: Int] {
        counts.removeAll()
        writeSteps(offset: offset, bytes: bytes)
        return counts.dictionary
    }

    /// A write the model can take without its steps: an overwrite of allocated clusters (and,
    /// with extended L2, allocated subclusters) inside the L2 table the last lookup found, with
    /// nothing that makes `writeSteps` or `gap(for:)` do more (no simulated L2 slices or
    /// zero-flagged clusters, no refcount cache that may evict, neither write-through nor
    /// detect-zeroes). Then the write only dirties the file node and predicts no host sync: this
    /// does that and returns true, with `counts` empty, just as `replay` would. Otherwise it
    /// changes nothing the model's answers depend on and returns false.
    ///
    /// Most of a guest's writes are such overwrites, and every model run replays each of them.
    @inline(__always)
    mutating func overwrite(offset: UInt64, bytes: UInt64, compressed: Bool?) -> Bool {
        guard simpleOverwrites, compressed != true, lastL2Table >= 0,
              bytes > 0, offset < image.size, bytes <= image.size - offset else { return false }
        let first = offset / perCluster, last = (offset + bytes - 1) / perCluster
        let table = UInt64(lastL2Table)
        guard first / perTable == table, last / perTable == table,
              zeroAllocated.isEmpty, !refcountCacheMayEvict,
              allocated.missingNoting(first, last + 1) == 0 else { return false }
        if subclusters != nil {
            // The subclusters `writeSteps` asks of, in the same order (the sets' hints follow the same requests).
            let sub = clusterSize / 32
            guard subclusters!.missingNoting(offset / sub, (offset + bytes - 1) / sub + 1) == 0 else { return false }
        }
        counts.removeAll()
        fileWrite()
        return true
    }

    /// What of the options lets `overwrite` run at all (set at init and resize: the L2 cache's
    /// slices, write-through, detect-zeroes).
    private var simpleOverwrites: Bool

    /// `write`, counting into `counts` as it stands (`replay` runs the steps without the dictionary).
    mutating func writeSteps(offset: UInt64, bytes: UInt64) {
        let cs = clusterSize
        let entries = clustersPerUnit
        // A request outside the virtual disk is refused by QEMU before qcow2 sees it.
        guard bytes > 0, offset < image.size, bytes <= image.size - offset else { return }
        let first = offset / perCluster, last = (offset + bytes - 1) / perCluster
        for unit in (first / perUnit)...(last / perUnit) {
            let table = unit * entries / perTable
            if !hasL2Table(Int(table)) { allocateL2Table(Int(table)) }
            useSlice(unit)  // handle_copied's get_cluster_table (qcow2-cluster.c:1523): a miss may evict (F11)
            let lo = max(first, unit * entries), hi = min(last + 1, (unit + 1) * entries)
            let missing = allocated.missingNoting(lo, hi)
            let cow = missing > 0 && copiesOnWrite(offset: offset, bytes: bytes, lo: lo, hi: hi)
            if missing > 0 { allocateHost(missing) }
            if !zeroAllocated.isEmpty { zeroAllocated.remove(lo, hi) }  // most images have no such cluster: no call
            fileWrite()  // the data, with any zero-filled COW areas (skip_cow, qcow2.c:2469-2525)
            // Extended L2: writing unallocated subclusters of an allocated cluster also goes through link_l2.
            var newSubclusters = false
            if subclusters != nil {
                let sub = cs / 32
                let sLo = max(offset / sub, lo * 32), sHi = min((offset + bytes - 1) / sub + 1, hi * 32)
                newSubclusters = subclusters!.missingNoting(sLo, sHi) > 0
                // In place (no copy of the set), and only when something is new: inserting what it holds changes nothing.
                if newSubclusters { subclusters!.insert(sLo, sHi) }
            }
            if missing > 0 || newSubclusters {
                // qcow2_alloc_cluster_link_l2: perform_cow, the dirty bit or the L2 -> refcount dependency, then the L2 entry.
                if cow { l2.dependsOnFlush = true }
                if lazy {
                    if !lazyDirty {  // qcow2_mark_dirty: a synced header write (F12)
                        fileWrite()
                        hostFlush(.lazyDirtyBit)
                        lazyDirty = true
                    }
                } else {
                    setDependency(.l2, on: .refcount)
                }
                markDirty(unit)  // link_l2's get_cluster_table: the slice is still cached
                allocated.insert(lo, hi)
            }
        }
        if writesThrough { flush(final: .writethrough) }
    }

    /// Whether a write of `bytes` at `offset` allocates a cluster it does not cover whole: with a
    /// backing file, whether QEMU copies the rest from it (a real COW, F3) or zero-fills
    /// (skip_cow) depends on the backing file's data, which the model does not read.
    @inline(__always)
    public func allocatesPartialCluster(offset: UInt64, bytes: UInt64) -> Bool {
        guard inDisk(offset, bytes) else { return false }
        let first = offset / perCluster, last = (offset + bytes - 1) / perCluster
        let headPartial = offset % perCluster != 0 && allocated.missing(first, first + 1) > 0
        let tailPartial = (offset + bytes) % perCluster != 0 && allocated.missing(last, last + 1) > 0
        return headPartial || tailPartial
    }

    /// Whether a write of `bytes` at `offset` touches a zero-flagged allocated cluster (then `write` is not exact).
    @inline(__always)
    public func touchesZeroAllocated(offset: UInt64, bytes: UInt64) -> Bool {
        guard !zeroAllocated.isEmpty, inDisk(offset, bytes) else { return false }
        let cs = clusterSize
        return zeroAllocated.intersects(offset / cs, (offset + bytes - 1) / cs + 1)
    }

    /// A discard of `bytes` at `offset` (qcow2_co_pdiscard -> qcow2_cluster_discard, qcow2-cluster.c:1898-2006,
    /// QCOW2_DISCARD_REQUEST, not a full discard): whole clusters only (partial ones are ignored); each
    /// L2 table touched must exist (l2_allocate, F4-F6, even if nothing is freed); an allocated cluster
    /// gets the zero flag and is freed: a refcount decrease, which sets refcount -> L2
    /// (qcow2-refcount.c:832-835, F10 when L2 -> refcount is pending), and a hole punched in the
    /// file (pass-discard-request). `unmap` is the node's discard option (BDRV_O_UNMAP): without it
    /// bdrv_co_pdiscard returns before qcow2 (io.c).
    public mutating func discard(offset: UInt64, bytes: UInt64, unmap: Bool) -> [Cause: Int] {
        counts.removeAll()
        discardSteps(offset: offset, bytes: bytes, unmap: unmap)
        return counts.dictionary
    }

    /// `discard`, counting into `counts`.
    mutating func discardSteps(offset: UInt64, bytes: UInt64, unmap: Bool) {
        guard unmap, let (lo, hi) = wholeClusters(offset: offset, bytes: bytes) else { return }
        forEachUnit(lo, hi) { model, unit, lo, hi in
            let freed = model.allocated.missing(lo, hi) < hi - lo
            if freed || model.image.hasBackingFile {
                model.markDirty(unit)
            }
            if freed {
                model.free(lo, hi)
            }
            if model.image.hasBackingFile { model.readsZero.insert(lo, hi) }  // the zero flag over the backing file
        }
    }

    /// A write-zeroes of `bytes` at `offset` (qcow2_co_pwrite_zeroes -> qcow2_subcluster_zeroize ->
    /// zero_in_l2_slice, qcow2-cluster.c:2013-2066): every cluster gets the zero flag (the L2 slice is
    /// dirtied); with `unmap` (BDRV_REQ_MAY_UNMAP, kept only when the node has discard=unmap) allocated
    /// clusters are freed as by a discard; without, they keep their host cluster. Returns nil for a
    /// request not aligned to clusters (QEMU then writes zeroed data for the partial clusters).
    public mutating func writeZeroes(offset: UInt64, bytes: UInt64, unmap: Bool) -> [Cause: Int]? {
        counts.removeAll()
        return writeZeroesSteps(offset: offset, bytes: bytes, unmap: unmap) ? counts.dictionary : nil
    }

    /// `writeZeroes`, counting into `counts`; false for a request not aligned to clusters.
    mutating func writeZeroesSteps(offset: UInt64, bytes: UInt64, unmap: Bool) -> Bool {
        let cs = clusterSize
        guard inDisk(offset, bytes) else { return true }  // refused before qcow2
        guard offset % cs == 0, bytes % cs == 0 || offset + bytes == image.size, image.version >= 3 else { return false }
        guard let (lo, hi) = wholeClusters(offset: offset, bytes: bytes) else { return true }
        forEachUnit(lo, hi) { model, unit, lo, hi in
            model.markDirty(unit)
            model.readsZero.insert(lo, hi)
            if unmap {
                model.free(lo, hi)
            } else {
                model.zeroAllocated.insert(lo, hi)
            }
        }
        if writesThrough { flush(final: .writethrough) }
        return true
    }

    /// A resize to `newSize` bytes (qcow2_co_truncate, preallocation off). Growing past what the
    /// L1 table maps grows it (qcow2_grow_l1_table, F7: refcount flush, synced new table, synced
    /// header; the old table is freed: refcount -> L2); then the synced new size in the header
    /// (F16) and qcow2_update_options, which flushes the L2 and refcount caches before resizing
    /// them. Returns nil for a shrink, which the model does not follow.
    public mutating func truncate(to newSize: UInt64) -> [Cause: Int]? {
        counts.removeAll()
        return truncateSteps(to: newSize) ? counts.dictionary : nil
    }

    /// `truncate`, counting into `counts`; false for a shrink.
    mutating func truncateSteps(to newSize: UInt64) -> Bool {
        guard newSize >= image.size, newSize <= Self.maxSize else { return false }
        let perTable = image.bytesPerL2Table
        let needed = Int((newSize + perTable - 1) / perTable)
        if needed > image.l1Size {
            let cs = clusterSize
            allocateHost(max(1, (UInt64(needed) * 8 + cs - 1) / cs))
            cacheFlush(.refcount, .l1TableGrow)
            fileWrite()
            hostFlush(.l1TableGrow)  // the new table
            fileWrite()
            hostFlush(.l1TableGrow)  // l1_size and l1_table_offset in the header
            setDependency(.refcount, on: .l2)  // the old table is freed: a refcount decrease
            refcount.dirty = true
            image.l1Size = needed
        }
        fileWrite()
        hostFlush(.resizeHeader)
        cacheFlush(.l2, .cacheReconfigure)
        cacheFlush(.refcount, .cacheReconfigure)
        image.size = newSize
        // qcow2_update_options makes new, empty caches sized for the new disk.
        geometry = options.drive.geometry(image)
        slices = geometry.l2CoversDisk ? nil : SliceCache(capacity: geometry.l2Entries)
        perUnit = Divisor(Self.unitClusters(image, geometry))
        simpleOverwrites = Self.simpleOverwrites(slices: slices, options: options)
        return true
    }

    /// The largest size the model follows, the bound `ImageState.isPlausible` takes (2^60 bytes); a larger resize is not modelled.
    static let maxSize: UInt64 = 1 << 60

    /// Whether [offset, offset + bytes) is a non-empty range inside the virtual disk (QEMU refuses others).
    @inline(__always)
    private func inDisk(_ offset: UInt64, _ bytes: UInt64) -> Bool {
        bytes > 0 && offset < image.size && bytes <= image.size - offset
    }

    /// The whole clusters of a request, as [lo, hi) cluster indexes inside the disk, or nil if none.
    private func wholeClusters(offset: UInt64, bytes: UInt64) -> (UInt64, UInt64)? {
        guard inDisk(offset, bytes) else { return nil }
        let cs = clusterSize
        let end = offset + bytes
        let lo = (offset + cs - 1) / cs
        let hi = end == image.size ? (end + cs - 1) / cs : end / cs
        return lo < hi ? (lo, hi) : nil
    }

    /// Runs `body` per unit (L2 slice or table) of clusters [lo, hi), after get_cluster_table:
    /// allocating a missing table, then looking the slice up.
    private mutating func forEachUnit(_ lo: UInt64, _ hi: UInt64, _ body: (inout Qcow2Model, UInt64, UInt64, UInt64) -> Void) {
        let entries = clustersPerUnit, perTable = clustersPerTable
        for unit in (lo / entries)...((hi - 1) / entries) {
            let table = unit * entries / perTable
            if !hasL2Table(Int(table)) { allocateL2Table(Int(table)) }
            useSlice(unit)
            body(&self, unit, max(lo, unit * entries), min(hi, (unit + 1) * entries))
        }
    }

    // MARK: L2 slices (F11)

    /// qcow2_cache_get + put of one L2 slice: a miss in a full cache writes its victim back first
    /// when it is dirty (qcow2_cache_entry_flush: the pending dependency or depends_on_flush, then the write).
    private mutating func useSlice(_ unit: UInt64, evictionCause: Cause = .cacheEviction) {
        guard slices != nil else { return }
        guard let e = slices!.use(unit), e.dirty else { return }  // in place: no copy of the cache
        entryFlush(.l2, evictionCause)
        l2.dirty = !(slices?.dirty.isEmpty ?? true)
    }

    /// qcow2_cache_entry_mark_dirty on the L2 slice of `unit` (the whole cache's flag without slices).
    private mutating func markDirty(_ unit: UInt64) {
        slices?.markDirty(unit)
        l2.dirty = true
    }

    /// qcow2_free_any_cluster for the allocated clusters of [lo, hi): refcount decrease
    /// (refcount -> L2) and a punched hole (a write to the file node).
    private mutating func free(_ lo: UInt64, _ hi: UInt64) {
        guard allocated.missing(lo, hi) < hi - lo else { return }
        allocated.remove(lo, hi)
        zeroAllocated.remove(lo, hi)
        // update_refcount sets the dependency when it loads the block, then changes it (qcow2-refcount.c:832-866).
        setDependency(.refcount, on: .l2)
        refcount.dirty = true
        fileWrite()
    }

    /// A guest flush: returns its host syncs by cause.
    public mutating func flush() -> [Cause: Int] {
        counts.removeAll()
        flush(final: .guestFlush)
        return counts.dictionary
    }

    /// Closing the image (qemu-io exit, device unplug): qcow2_inactivate and bdrv_close.
    public mutating func close() -> [Cause: Int] {
        counts.removeAll()
        closeSteps()
        return counts.dictionary
    }

    /// `close`, counting into `counts`: its syncs all as `.imageClose`.
    mutating func closeSteps() {
        flush(final: .imageClose)
        cacheFlush(.l2, .imageClose)
        cacheFlush(.refcount, .imageClose)
        if lazyDirty {  // qcow2_mark_clean: write everything, then the header
            lazyDirty = false
            cacheWrite(.l2)
            cacheWrite(.refcount)
            hostFlush(.imageClose)
            fileWrite()
        }
        hostFlush(.imageClose)
        // Everything at close is close work, whatever step flushed (as the tracker names group syncs).
        let total = counts.total
        counts.removeAll()
        counts[.imageClose] = total
    }

    // MARK: Steps

    mutating func flush(final: Cause) {
        cacheWrite(.l2)
        if !lazyDirty { cacheWrite(.refcount) }
        hostFlush(final)
    }

    /// l2_allocate (qcow2-cluster.c:271-378): refcount flush, L2 flush, synced L1 entry.
    private mutating func allocateL2Table(_ index: Int) {
        allocateHost(1)
        cacheFlush(.refcount, .l2TableAlloc)
        // qcow2_cache_get_empty for every slice of the new table (qcow2-cluster.c:313-349).
        let perTable = clustersPerTable / clustersPerUnit
        for s in 0..<(slices == nil ? 1 : perTable) {
            let unit = UInt64(index) * perTable + s
            useSlice(unit, evictionCause: .l2TableAlloc)
            markDirty(unit)
        }
        cacheFlush(.l2, .l2TableAlloc)
        fileWrite()
        hostFlush(.l2TableAlloc)
        l2Tables.insert(index)
    }

    /// Whether the L2 table `index` exists.
    private mutating func hasL2Table(_ index: Int) -> Bool {
        if index == lastL2Table { return true }
        guard l2Tables.contains(index) else { return false }
        lastL2Table = index
        return true
    }

    /// qcow2_alloc_clusters: `n` host clusters at the end of the file; a refcount block where none covers them.
    private mutating func allocateHost(_ n: UInt64) {
        let per = clustersPerRefcountBlock
        var start = nextFree
        let blocks = (start / perRefcountBlock)...((start + n - 1) / perRefcountBlock)
        for block in blocks where !refcountBlocks.contains(Int(block)) {
            allocateRefcountBlock(Int(block))
            // The new block takes the first cluster it covers; the allocation is retried after it.
            start = max(start, block * per + 1)
        }
        refcount.dirty = true
        nextFree = start + n
    }

    /// alloc_refcount_block (qcow2-refcount.c:304-513), self-describing case, then the EAGAIN undo.
    private mutating func allocateRefcountBlock(_ index: Int) {
        cacheFlush(.l2, .refcountBlockAlloc)
        refcount.dirty = true
        cacheFlush(.refcount, .refcountBlockAlloc)
        if index >= image.refcountTableEntries {  // qcow2_refcount_area: grow the table (F9)
            cacheFlush(.refcount, .refcountTableGrow)
            fileWrite()
            hostFlush(.refcountTableGrow)
            fileWrite()
            hostFlush(.refcountTableGrow)
        }
        fileWrite()
        hostFlush(.refcountBlockAlloc)  // the refcount-table entry, bdrv_pwrite_sync
        refcountBlocks.insert(index)
        // The partial increment is undone: update_refcount(decrease) sets refcount -> L2.
        refcount.dirty = true
        setDependency(.refcount, on: .l2)
    }

    private mutating func hostFlush(_ cause: Cause) {
        guard !options.cache.skipsFlushes, fileDirty else { return }
        counts[cause] += 1
        fileDirty = false
    }

    private mutating func fileWrite() { fileDirty = true }

    private subscript(_ w: Which) -> CacheState {
        get { w == .l2 ? l2 : refcount }
        set { if w == .l2 { l2 = newValue } else { refcount = newValue } }
    }

    /// qcow2_cache_entry_flush for the dirty entries of a cache (qcow2-cache.c:180-254).
    private mutating func cacheWrite(_ w: Which) {
        guard self[w].dirty else { return }
        entryFlush(w, w == .l2 ? .refcountDependency : .l2Dependency)
        self[w].dirty = false
        if w == .l2 { slices?.clean() }
    }

    /// qcow2_cache_entry_flush of one dirty entry: what it depends on first, then its write.
    private mutating func entryFlush(_ w: Which, _ dependencyCause: Cause) {
        if let dep = self[w].depends {
            cacheFlush(dep, dependencyCause)
            self[w].depends = nil
            self[w].dependsOnFlush = false
        } else if self[w].dependsOnFlush {
            hostFlush(.cowDependsOnFlush)
            self[w].dependsOnFlush = false
        }
        fileWrite()
    }

    /// qcow2_cache_flush: write back, then flush the file.
    private mutating func cacheFlush(_ w: Which, _ cause: Cause) {
        cacheWrite(w)
        hostFlush(cause)
    }

    /// qcow2_cache_set_dependency (qcow2-cache.c:270-291).
    private mutating func setDependency(_ c: Which, on x: Which) {
        if let d = self[x].depends {
            cacheFlush(d, .dependencyCrossFlush)
            self[x].depends = nil
            self[x].dependsOnFlush = false
        }
        if let d = self[c].depends, d != x {
            cacheFlush(d, .dependencyCrossFlush)
            self[c].depends = nil
            self[c].dependsOnFlush = false
        }
        self[c].depends = x
    }
}
