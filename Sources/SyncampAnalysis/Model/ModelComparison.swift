import SyncampQcow2

/// The reference model's predictions next to what QEMU did, per op and in total.
public struct ModelComparison: Sendable {
    /// One op's prediction.
    public struct Prediction: Sendable, Equatable {
        public var causes: [Cause: Int]
        public var hostSyncs: Int { causes.values.reduce(0, +) }
        /// Set when QEMU's own concurrency makes the count timing-dependent (a request over several
        /// L2 tables runs as parallel tasks; requests overlapped); the prediction is then a lower bound.
        public var timingDependent: Bool
    }

    public var options: ModelOptions
    /// Images the model ran on, with the state it started from.
    public var images: [ImageState]
    /// Per op index, for the ops a report lists; nil for ops the model does not cover
    /// (image open, housekeeping, unknown image).
    public var predictions: [Int: Prediction] = [:]
    public var predictedHostSyncs = 0
    public var predictedCauses: [Cause: Int] { predictedCounts.dictionary }
    private var predictedCounts = CauseTotals()
    public var matchedOps = 0
    /// Op indexes whose observed causes differ from the prediction (timing-dependent ones
    /// excepted): the first `listLimit`; `deviatingCount` counts them all.
    public var deviatingOps: [Int] = []
    public var deviatingCount = 0
    public var timingDependentOps: [Int] = []
    public var timingDependentCount = 0
    /// Ops the model cannot predict, by op index, with the reason (the first `listLimit`); counted
    /// apart from deviations: a known gap of the model is not a surprise.
    public var unpredictedOps: [Int: Unpredicted] = [:]
    public var unpredictedCount = 0
    /// Guest flushes, for the predicted amplification.
    public var guestFlushes = 0

    /// How many op indexes `deviatingOps` and `timingDependentOps` list at most.
    public static let listLimit = 1000

    /// What the model says of a capture's ops.
    public enum Verdict: String, Sendable, Equatable {
        /// Every op it placed had the causes it predicted (timing-dependent ones aside).
        case matched
        /// Some ops did not: `deviatingOps`.
        case deviating
        /// No model ran: the image state or the cache mode is unknown.
        case unpredicted
    }

    /// Whether the model has anything to say: an image it ran on, or ops it knows it cannot predict.
    public var hasContent: Bool { !images.isEmpty || unpredictedCount > 0 }

    /// The verdict on `m`, or `.unpredicted` without one.
    public static func verdict(_ m: ModelComparison?) -> Verdict {
        guard let m, !m.images.isEmpty, m.matchedOps + m.deviatingCount + m.timingDependentCount > 0 || m.unpredictedCount == 0 else { return .unpredicted }
        return m.deviatingCount == 0 ? .matched : .deviating
    }

    public var predictedAmplification: Double? {
        guestFlushes > 0 ? Double(predictedHostSyncs) / Double(guestFlushes) : nil
    }

    /// Why the model makes no prediction for an op.
    public enum Unpredicted: String, Sendable, Equatable, CaseIterable {
        /// A request another format driver served (vmdk): the model is qcow2's.
        case formatNotQcow2 = "format_not_qcow2"
        /// An op on an image whose state the capture has no record of (created during the
        /// capture, as convert's target, or not read at start).
        case noImageState = "no_image_state"
        /// An op the model does not replay: a shrinking resize, an internal snapshot, a check with repairs.
        case kindNotModelled = "kind_not_modelled"
        /// A write-zeroes not aligned to clusters: QEMU writes zeroed data for the partial clusters.
        case unalignedWriteZeroes = "unaligned_write_zeroes"
        /// A write into a cluster a write-zeroes left allocated under the zero flag (ZERO_ALLOC):
        /// link_l2 clears the flag, which the model does not follow.
        case zeroFlaggedCluster = "write_to_zero_flagged_cluster"
        /// An allocating write that does not cover its clusters whole on an image with a backing
        /// file whose data the capture has no record of (a chain syncamp could not read: another
        /// format than qcow2 or raw, too deep, or extended L2): whether QEMU copies from it (a
        /// real COW, F3) or zero-fills depends on that data.
        case backingFileCow = "backing_file_cow"
        /// A compressed write (qcow2_co_pwritev_compressed): how many bytes its cluster compresses
        /// to decides whether qcow2_alloc_bytes packs it into the current host cluster or takes a
        /// new one (and so when a refcount block is allocated), and an incompressible cluster is
        /// written as a normal one: the request does not say.
        case compressedWrite = "compressed_write"
        /// detect-zeroes is on: whether a write becomes a write-zeroes depends on its data.
        case detectZeroes = "detect_zeroes"
        /// The L2 cache cannot hold every slice of the disk and the traced program may look slices
        /// up outside the requests syncamp traces (reads, block-status queries: a VM, qemu-img,
        /// a qemu-io with a read or map command or commands from stdin): an untraced lookup
        /// changes which slice a later miss evicts (F11).
        case untracedCacheUse = "untraced_cache_use"
        /// The L2 cache cannot hold every slice of the disk and the capture attached to a running
        /// QEMU: which slices its cache held, dirty or not, and in what LRU order is unknown.
        case cacheContentsUnknown = "cache_contents_unknown"
        /// The L2 cache cannot hold every slice of the disk and this request overlapped another,
        /// or covers several L2 slices (QEMU runs the parts as parallel tasks): the order of the
        /// cache lookups, and so what is evicted, depends on timing.
        case concurrentCacheUse = "concurrent_cache_use"
        /// The L2 cache cannot hold every slice of the disk and the request came more than
        /// cache-clean-interval (default 600 s) after the first: the clean timer may have dropped
        /// clean slices, which changes what a miss evicts.
        case cacheCleanInterval = "cache_clean_interval"
        /// The refcount cache holds fewer refcount blocks than the image has (refcount-cache-size,
        /// cache-size, or the 4-cluster default on a large host file): which blocks QEMU's
        /// free-cluster search visits from its free_cluster_index (cluster 0 after open, and
        /// lowered by every free) depends on the host file's free clusters, which the image
        /// state does not record.
        case refcountCacheEvicts = "refcount_cache_evicts"
        /// The image holds persistent dirty bitmaps: QEMU stores them at close (and marks them in
        /// use at open) with syncs the model does not replay (F16).
        case persistentBitmaps = "persistent_bitmaps"
        /// An op after one of those on the same image: the caches' dirty state and dependencies
        /// the model would start from are unknown.
        case stateUnknown = "state_unknown_after_unmodelled_op"
    }

    /// One model per image, with the name ops know the image by.
    private struct Slot {
        var name: String
        var model: Qcow2Model
        /// The model's state is no longer known (an unmodelled op ran on the image).
        var lost = false
    }
    private var slots: [Slot] = []
    /// Where this run's ops go when it is fed alone (`add(_:observed:keepPrediction:)`).
    private var router: ModelRouter
    private var lastEnd: UInt64 = 0
    /// When the first guest request started (the clean timer's bound).
    private var firstRequestNs: UInt64?

    /// A comparison with no op yet, one model per plausible image.
    public init(images: [ImageState], options: ModelOptions) {
        self.options = options
        self.images = images.filter(\.isPlausible)
        var seen: Set<String> = []
        for image in self.images where seen.insert(image.path).inserted {
            slots.append(Slot(name: image.path, model: Qcow2Model(image: image, options: options)))
        }
        router = ModelRouter(names: slots.map(\.name))
    }

    /// Replays the ops through one model per image.
    public static func run(ops: [GuestOp], images: [ImageState], options: ModelOptions) -> ModelComparison {
        var result = ModelComparison(images: images, options: options)
        for op in ops { result.add(op) }
        return result
    }

    /// Replays one finished op (ops come in index order); `keepPrediction` keeps it in `predictions`.
    public mutating func add(_ op: GuestOp, keepPrediction: Bool = true) {
        add(op, observed: CauseCounts(op.causes), keepPrediction: keepPrediction)
    }

    /// Replays one finished op whose host syncs per cause are `observed` (`op.causes`, counted
    /// once by the caller for every model it replays the op through).
    mutating func add(_ op: GuestOp, observed: CauseCounts, keepPrediction: Bool) {
        add(op, route: router.route(op), observed: observed, keepPrediction: keepPrediction)
    }

    /// Where `op` goes, by this run's router (ops in index order): the route to replay it on this
    /// run and on the other runs over the same images (`add(_:route:observed:keepPrediction:)`),
    /// so that it is found once for all. The run that routes keeps its router up to date; the
    /// runs fed its routes are fed only that way.
    mutating func route(_ op: GuestOp) -> ModelRouter.Route { router.route(op) }

    /// Counts one finished op, routed by `route(_:)` of another run over the same images, in a run
    /// whose only use is its total of host syncs and guest flushes (a recommendation's,
    /// `Recommendation.rank`). Under cache=unsafe nothing is replayed: `hostFlush` skips every
    /// flush (bdrv_co_flush returns before the file node under BDRV_O_NO_FLUSH, io.c), so the
    /// model predicts no host sync whatever the op, and only the guest flushes are counted.
    mutating func addToTotal(_ op: GuestOp, route: ModelRouter.Route, observed: CauseCounts) {
        guard options.cache.skipsFlushes else {
            add(op, route: route, observed: observed, keepPrediction: false)
            return
        }
        if op.kind == .flush { guestFlushes += 1 }
    }

    /// Replays one finished op routed by `route(_:)` of this run or of another over the same images.
    mutating func add(_ op: GuestOp, route: ModelRouter.Route, observed: CauseCounts, keepPrediction: Bool) {
        // An overwrite the model takes without its steps (`Qcow2Model.overwrite`): what the
        // general path below does for it, in short.
        if op.kind == .write, route.renames.isEmpty, case let .slot(i) = route.target, !slots[i].lost,
           slots[i].model.overwrite(offset: op.offset, bytes: op.bytes, compressed: op.compressed) {
            if firstRequestNs == nil { firstRequestNs = op.startNs }
            lastEnd = max(lastEnd, op.endNs)
            record(op, observed, nil, timingDependent: false, keep: keepPrediction)
            return
        }
        if op.kind == .flush { guestFlushes += 1 }
        for r in route.renames {
            slots[r.slot].name = r.to
            if let j = images.firstIndex(where: { $0.path == r.from }) { images[j].path = r.to }
        }
        let i: Int
        switch route.target {
        case .otherFormat:
            unpredicted(op, .formatNotQcow2)
            return
        case .closeAll:
            if slots.contains(where: \.lost) {
                unpredicted(op, .stateUnknown)
                return
            }
            var causes = CauseCounts()
            for i in slots.indices.sorted(by: { slots[$0].name < slots[$1].name }) {
                slots[i].model.counts.removeAll()
                slots[i].model.closeSteps()
                causes.add(slots[i].model.counts)
            }
            record(op, observed, causes.isEmpty ? nil : causes, timingDependent: false, keep: keepPrediction)
            return
        case .unmodelledUnknownImage:
            for i in slots.indices { slots[i].lost = true }
            unpredicted(op, .kindNotModelled)
            return
        case let .noState(reported):
            if reported { unpredicted(op, .noImageState) }
            return
        case let .slot(index):
            i = index
        }
        if slots[i].lost, op.kind != .imageOpen, op.kind != .housekeeping {
            unpredicted(op, .stateUnknown)
            return
        }
        if op.isGuestRequest, firstRequestNs == nil { firstRequestNs = op.startNs }
        if op.kind.hasRange, slots[i].model.cacheMayEvict, let reason = evictionGap(op, slot: i) {
            slots[i].lost = true
            if op.isGuestRequest { lastEnd = max(lastEnd, op.endNs) }
            unpredicted(op, reason)
            return
        }
        var timing: Bool
        switch slots[i].model.replay(op, discardUnmap: options.drive.discardUnmap) {
        case let .unpredicted(reason):
            slots[i].lost = true
            unpredicted(op, reason)
            return
        case .notAnOp:
            return
        case let .predicted(spansTables):
            timing = spansTables
        }
        // Requests that overlap another in flight interleave their metadata work.
        if op.isGuestRequest && op.startNs < lastEnd && op.kind == .write && !slots[i].model.counts.isEmpty { timing = true }
        if op.isGuestRequest { lastEnd = max(lastEnd, op.endNs) }
        // No sync predicted (most ops): the counts are not copied out (a 212-byte copy read back
        // at once stalled the store buffer on every model run).
        if slots[i].model.counts.isEmpty {
            record(op, observed, nil, timingDependent: timing, keep: keepPrediction)
        } else {
            record(op, observed, slots[i].model.counts, timingDependent: timing, keep: keepPrediction)
        }
    }

    /// What a cache that can evict makes the model unable to know for `op`, beyond the op itself (`Qcow2Model.gap`).
    @inline(__always)  // called from `add`: out of line, `self` (561 bytes) was copied per call
    private func evictionGap(_ op: GuestOp, slot i: Int) -> Unpredicted? {
        if slots[i].model.refcountCacheMayEvict { return .refcountCacheEvicts }
        if options.drive.untracedCacheUse { return .untracedCacheUse }
        if !options.cacheStartsEmpty { return .cacheContentsUnknown }
        if op.startNs < lastEnd || op.kind == .write && slots[i].model.writeSpansUnits(offset: op.offset, bytes: op.bytes) {
            return .concurrentCacheUse
        }
        let interval = options.drive.cacheCleanInterval
        if interval > 0, let first = firstRequestNs, op.startNs > first, op.startNs - first > interval * 1_000_000_000 {
            return .cacheCleanInterval
        }
        return nil
    }

    /// Whether `path` is a file name the collector read (not "?" or "fd 9"): it then names its own image.
    static func isReadablePath(_ path: String) -> Bool { path.hasPrefix("/") }

    /// Request kinds that change the image's metadata (an unknown image may be any of them).
    static func isUnmodelled(_ kind: GuestOp.Kind) -> Bool {
        kind == .discard || kind == .writeZeroes || kind == .truncate || kind == .snapshot || kind == .imageCheck
            || kind == .makeEmpty
    }

    private mutating func unpredicted(_ op: GuestOp, _ reason: Unpredicted) {
        unpredictedCount += 1
        if unpredictedOps.count < Self.listLimit { unpredictedOps[op.index] = reason }
    }

    /// Counts a prediction of `causes` (nil: no host sync) against what was `observed`.
    private mutating func record(_ op: GuestOp, _ observed: CauseCounts, _ causes: CauseCounts?, timingDependent: Bool, keep: Bool) {
        if keep { predictions[op.index] = Prediction(causes: causes?.dictionary ?? [:], timingDependent: timingDependent) }
        let matched: Bool
        if let causes {
            predictedHostSyncs += causes.total
            predictedCounts.add(causes)
            matched = causes == observed
        } else {
            matched = observed.isEmpty
        }
        if matched {
            matchedOps += 1
        } else if timingDependent {
            timingDependentCount += 1
            if timingDependentOps.count < Self.listLimit { timingDependentOps.append(op.index) }
        } else {
            deviatingCount += 1
            if deviatingOps.count < Self.listLimit { deviatingOps.append(op.index) }
        }
    }
}

extension Qcow2Model {
    /// What replaying one op gave.
    enum Replay {
        /// Host syncs per cause, in `counts`; `spansTables` when a write covers more than one L2
        /// table (QEMU runs those parts as parallel tasks: the count is then timing-dependent).
        case predicted(spansTables: Bool)
        /// The model cannot know (its state is then lost).
        case unpredicted(ModelComparison.Unpredicted)
        /// Not a request the model replays (image open, housekeeping, creation).
        case notAnOp
    }

    /// Replays one op on this image in place.
    mutating func replay(_ op: GuestOp, discardUnmap: Bool) -> Replay {
        if let reason = gap(for: op) { return .unpredicted(reason) }
        counts.removeAll()
        switch op.kind {
        case .write:
            let (end, overflow) = op.offset.addingReportingOverflow(op.bytes)
            let spans = op.bytes > 0 && !overflow && op.offset / perTableBytes != (end - 1) / perTableBytes
            writeSteps(offset: op.offset, bytes: op.bytes)
            return .predicted(spansTables: spans)
        case .flush:
            flush(final: .guestFlush)
            return .predicted(spansTables: false)
        case .imageClose:
            closeSteps()
            return .predicted(spansTables: false)
        case .discard:
            discardSteps(offset: op.offset, bytes: op.bytes, unmap: discardUnmap)
            return .predicted(spansTables: false)
        case .writeZeroes:
            // BDRV_REQ_MAY_UNMAP is dropped on a node without discard=unmap (io.c, bdrv_co_do_pwrite_zeroes).
            guard writeZeroesSteps(offset: op.offset, bytes: op.bytes, unmap: op.unmap == true && discardUnmap) else {
                return .unpredicted(.unalignedWriteZeroes)
            }
            return .predicted(spansTables: false)
        case .truncate:
            guard truncateSteps(to: op.offset) else { return .unpredicted(.kindNotModelled) }
            return .predicted(spansTables: false)
        case .snapshot, .imageCheck, .makeEmpty:
            // Shared clusters, a reverted L1 table, repaired refcounts: what follows is not the state the model holds.
            return .unpredicted(.kindNotModelled)
        case .imageOpen, .housekeeping, .imageCreate:
            return .notAnOp
        }
    }

    /// What the model cannot know about an op before running it, if anything.
    @inline(__always)  // called from `replay`: out of line, the model (680 bytes) was copied per call
    func gap(for op: GuestOp) -> ModelComparison.Unpredicted? {
        switch op.kind {
        case .write, .writeZeroes, .discard:
            if op.kind == .write && op.compressed == true { return .compressedWrite }
            if op.kind == .write && options.drive.detectZeroes { return .detectZeroes }
            if op.kind == .write && !knowsCowSource && allocatesPartialCluster(offset: op.offset, bytes: op.bytes) {
                return .backingFileCow
            }
            if op.kind == .write && touchesZeroAllocated(offset: op.offset, bytes: op.bytes) { return .zeroFlaggedCluster }
            return nil
        case .imageClose:
            // Storing persistent bitmaps at close syncs their directory and the header.
            return (image.persistentBitmaps ?? 0) > 0 ? .persistentBitmaps : nil
        default:
            return nil
        }
    }
}
