import SyncampCapture
import SyncampQcow2

/// Builds an analysis one capture record at a time, so a capture can be watched while it grows.
///
/// `Analysis.run` feeds a whole file through it; `analyzer live` and `analyzer
/// replay` feed records as they come and call `advance(to:)` with the clock, so
/// that ops finish (and show in `snapshot`) without waiting for later events.
///
/// ```swift
/// var p = AnalysisPipeline(manifest: reader.manifest, path: reader.path)
/// while let r = reader.next() { p.add(r) }
/// p.advance(to: nowNs)
/// print(p.snapshot.totals.hostSyncs)
/// let analysis = p.finish(damage: reader.damage)
/// ```
public struct AnalysisPipeline {
    /// What the pipeline has counted so far: the finished ops, and every host sync at its system call.
    public struct Snapshot: Sendable, Equatable {
        public var totals = Analysis.Totals()
        public var images: [ImageTotals] = []
        /// Host syncs made (counted at the system call) that are not yet under an ended op.
        public var hostSyncsInFlight = 0
        /// Disk names by image path (manifest `disks`): Prometheus labels carry them.
        public var diskNames: [String: String] = [:]
        public var events: UInt64 = 0
        public var lostEvents: UInt64 = 0
        /// Ops handed on to the totals.
        public var finishedOps = 0
        /// Ops still open (they may take more work).
        public var openOps = 0
        public var uprobeHits = 0
        /// Capture time covered, from the manifest's start to the newest event or clock tick.
        public var durationNs: UInt64 = 0
        /// Time in host syncs and device flushes per cause, and guest flush latency, of the finished ops.
        public var costs = CostBreakdown()
        /// The model's verdict on the finished ops so far.
        public var modelVerdict = ModelComparison.Verdict.unpredicted
        /// What the model predicts each configuration change would do to the finished ops.
        public var recommendations: [Recommendation] = []
    }

    public let manifest: Manifest
    /// `toolOrigin(manifest.target.command)`, found once (a lazy value was copied out per op).
    private let toolOrigin: String?
    private let limits: Analysis.Limits
    private let extraImages: [ImageState]
    private let options: ModelOptions?
    private let whatIf: ((ModelOptions) -> ModelOptions)?
    private let observe: ((GuestOp) -> Void)?
    private let observeUnplaced: ((CausalNode) -> Void)?

    private var info: Analysis.CaptureInfo
    private var window: ReorderWindow
    /// USDT captures only: names each event's coroutine before it is decoded.
    private var normaliser: USDTNormaliser?
    private var normalised: [Event] = []
    private let decoder: EventDecoder
    private var builder: TreeBuilder
    private var last: UInt64
    private var now: UInt64
    private var tally = TotalsTally()
    private var imageTally = ImageTally()
    private var model: ModelComparison?
    private var second: ModelComparison?
    /// The model once per configuration change a recommendation is made for.
    private var candidates: [(Recommendation.Knob, ModelComparison)] = []
    private var costs = CostTally()
    private var costliest: CostliestOps
    private var pinned: GuestOp?
    private var modelReady = false
    private var listed: [GuestOp] = []
    private var opCount = 0
    private var unplaced: [(node: CausalNode, reason: String)] = []
    private var unplacedCount = 0
    private var sawRequest = false
    private var housekeepingSinceRequest = 0
    private var housekeepingDuringRequests = 0

    /// Events read so far.
    public var events: UInt64 { info.events }

    /// Starts an analysis of the capture described by `manifest`; the parameters are those of `Analysis.run`.
    public init(manifest: Manifest, path: String, reorderWindow: Int = 4096, images: [ImageState] = [],
                options: ModelOptions? = nil, whatIf: ((ModelOptions) -> ModelOptions)? = nil,
                limits: Analysis.Limits = Analysis.Limits(), observe: ((GuestOp) -> Void)? = nil,
                observeUnplaced: ((CausalNode) -> Void)? = nil) {
        self.manifest = manifest
        self.limits = limits
        self.extraImages = images
        self.options = options
        self.whatIf = whatIf
        self.observe = observe
        self.observeUnplaced = observeUnplaced
        info = Analysis.CaptureInfo(path: path)
        costliest = CostliestOps(limit: limits.costliestOps)
        window = ReorderWindow(capacity: reorderWindow)
        let coroutines = (manifest.coroutineSource ?? "none") != "none"
        var blockDevices: [String: UInt32] = [:]
        for d in manifest.devices ?? [] where d.fileSystem == .blockDevice {
            for image in d.images { blockDevices[image] = d.dev }
        }
        let probes = ProbeIndex(manifest: manifest)
        normaliser = probes.isUSDT ? USDTNormaliser(probes: probes) : nil
        decoder = EventDecoder(probes: probes)
        builder = TreeBuilder(probes: probes, origin: manifest.startMonotonicNs,
                              coroutines: coroutines, blockDevices: blockDevices,
                              writesThrough: CacheMode.detect(command: manifest.target.command)?.writesThrough)
        last = manifest.startMonotonicNs
        now = manifest.startMonotonicNs
        toolOrigin = Self.toolOrigin(manifest.target.command)
    }

    /// Takes one record of the capture, in file order.
    public mutating func add(_ record: CaptureRecord) {
        switch record {
        case let .event(e):
            nextEventSlot().pointee = e
            commitEvent()
        case let .lost(cpu, count):
            info.lostPerCPU[cpu] = count
        case let .note(n):
            info.notes.append(n)
            last = max(last, n.timestampNs)
        case let .fdPath(p):
            imageTally.fdPath(p)
            builder.fdPath(p)
            last = max(last, p.timestampNs)
        case let .trailer(t):
            info.trailerReason = t.reason
            info.tracingCost = t.bpfPrograms.map { Analysis.TracingCost(programs: $0, collectorCPUNs: t.collectorCPUNs) }
            last = max(last, t.endMonotonicNs)
        case let .image(state):
            info.images.append(state)
        case .unknown:
            info.unknownRecords += 1
        }
    }

    /// Where the next event is to be read in place (`CaptureReader.readEvent(into:)`), then
    /// `commitEvent()`: an event record's fast path (`add(.event(e))` is the same, with a copy).
    public mutating func nextEventSlot() -> UnsafeMutablePointer<Event> { window.nextSlot() }

    /// Takes the event read into `nextEventSlot()`.
    public mutating func commitEvent() {
        info.events += 1
        last = max(last, window.nextTimestamp)
        if let out = window.commit() { feed(out) }
        if info.events & 1023 == 0 { retire() }
    }

    /// Moves capture time on to `clockNs` (CLOCK_MONOTONIC, as the events' timestamps).
    ///
    /// Events older than `clockNs - settleNs` leave the reorder window (nothing
    /// older can still arrive once the collector has polled), and ops quiet for
    /// `Limits.quietNs` by then are handed on to the totals.
    public mutating func advance(to clockNs: UInt64, settleNs: UInt64 = 500_000_000) {
        guard clockNs > settleNs else { return }
        let settled = clockNs - settleNs
        while let e = window.release(through: settled) { feed(e) }
        now = max(now, settled)
        last = max(last, settled)
        retire()
    }

    /// What a live view shows now: the ops handed on, and the ops not handed on yet that have
    /// ended for now, each request counted together with its syncs, so that every ratio of a
    /// snapshot (host syncs per guest flush, per image, per cause) is consistent. Host syncs
    /// made but not yet under an ended op are `hostSyncsInFlight`.
    public var snapshot: Snapshot {
        var s = Snapshot()
        var totals = tally, images = imageTally, costs = costs
        for (op, summary) in builder.endedLiveOps() {
            var o = op
            images.add(&o, summary)
            totals.add(o, summary)
            costs.add(o, summary)
        }
        s.totals = totals.totals
        s.totals.hostSyncs = s.totals.hostSyncsUnderRequests + s.totals.hostSyncsInGroups + s.totals.unattributedHostSyncs
        s.totals.unlinkedJournalCommits = builder.unlinkedStorage.journalCommits
        s.totals.unlinkedDeviceFlushes = builder.unlinkedStorage.deviceFlushes
        s.totals.unlinkedDeviceFUAWrites = builder.unlinkedStorage.fuaWrites
        s.hostSyncsInFlight = max(0, builder.hostSyncs - s.totals.hostSyncs)
        s.images = images.images
        for i in s.images { if let d = manifest.disk(ofImage: i.path) { s.diskNames[i.path] = d.displayName } }
        s.events = info.events
        s.lostEvents = info.lostPerCPU.values.reduce(0, +)
        s.finishedOps = opCount
        s.openOps = builder.liveCount
        s.uprobeHits = builder.uprobeHits.values.reduce(0, +)
        s.durationNs = last >= manifest.startMonotonicNs ? last - manifest.startMonotonicNs : 0
        s.costs = costs.breakdown
        s.modelVerdict = ModelComparison.verdict(model)
        // The model's verdict and recommendations replay ops through the qcow2 model: they
        // cover the ops handed on (quiet for Limits.quietNs), not those that just ended.
        s.recommendations = recommendations
        return s
    }

    /// Hands on every op still open and returns the analysis.
    /// - Parameter damage: where the capture stopped before its trailer, if it did.
    public mutating func finish(damage: CaptureDamage?) -> Analysis {
        while let e = window.release() { feed(e) }
        if normaliser != nil {
            normaliser!.finish(into: &normalised)
            decodeNormalised()
        }
        info.damage = damage?.description
        info.lostEvents = info.lostPerCPU.values.reduce(0, +)
        info.reorderedEvents = window.reordered
        info.lateEvents = window.lateEvents
        info.durationNs = last >= manifest.startMonotonicNs ? last - manifest.startMonotonicNs : 0
        builder.finish()
        while let op = builder.handOldest() { fold(op) }
        for u in builder.drainUnattributed() { foldUnplaced(u) }
        return Analysis(manifest: manifest, capture: info, totals: currentTotals, ops: listed, opCount: opCount,
                        unattributed: unplaced, unattributedCount: unplacedCount, probeHits: builder.uprobeHits,
                        images: imageTally.images, model: model, whatIf: second,
                        costs: costs.breakdown, recommendations: recommendations,
                        costliestOps: costliest.ops, pinnedOp: pinned,
                        forcedRetirements: builder.forcedRetirements,
                        housekeepingSyncsDuringRequests: housekeepingDuringRequests, selfCheck: builder.selfCheck)
    }

    /// The reference model, the what-if run and the recommendation runs, before any op, from
    /// the image records read so far (nil when no image state or cache mode is known).
    private func freshModels() -> (ModelComparison?, ModelComparison?, [(Recommendation.Knob, ModelComparison)]) {
        var known = info.images
        for extra in extraImages {
            known.removeAll { $0.path == extra.path }
            known.append(extra)
        }
        // Without a qcow2 image state the model still runs: it says which ops are other formats'.
        guard var o = options ?? CacheMode.detect(command: manifest.target.command).map({ ModelOptions(cache: $0) })
        else { return (nil, nil, []) }
        o.drive = DriveOptions.detect(command: manifest.target.command)
        o.cacheStartsEmpty = manifest.target.mode != "attach"
        return (ModelComparison(images: known, options: o),
                known.isEmpty ? nil : whatIf.map { ModelComparison(images: known, options: $0(o)) },
                limits.recommend && !known.isEmpty
                    ? Recommendation.candidates(images: known, asRun: o).map { ($0.0, ModelComparison(images: known, options: $0.1)) } : [])
    }

    private var recommendations: [Recommendation] {
        model.flatMap { $0.images.isEmpty ? nil : Recommendation.rank(asRun: $0, runs: candidates) } ?? []
    }

    private var currentTotals: Analysis.Totals {
        var totals = tally.totals
        totals.hostSyncs = builder.hostSyncs
        totals.unlinkedJournalCommits = builder.unlinkedStorage.journalCommits
        totals.unlinkedDeviceFlushes = builder.unlinkedStorage.deviceFlushes
        totals.unlinkedDeviceFUAWrites = builder.unlinkedStorage.fuaWrites
        return totals
    }

    /// Reorder window -> (USDT normaliser) -> decoder -> tree builder.
    private mutating func feed(_ e: UnsafePointer<Event>) {
        now = max(now, e.pointee.timestamp)
        guard normaliser != nil else {
            builder.add(decoder.decode(at: e))
            return
        }
        normaliser!.push(e.pointee, into: &normalised)
        decodeNormalised()
    }

    private mutating func decodeNormalised() {
        for e in normalised { builder.add(decoder.decode(e)) }
        normalised.removeAll(keepingCapacity: true)
    }

    private mutating func retire() {
        while let op = builder.retireOldest(now: now, quietNs: limits.quietNs, maxLive: limits.maxLiveOps) { fold(op) }
        for u in builder.drainUnattributed() { foldUnplaced(u) }
    }

    /// The qemu-img subcommand a capture traced ("qemu-img convert"), whose requests are not a guest's.
    private static func toolOrigin(_ command: [String]) -> String? {
        guard command.first?.split(separator: "/").last?.hasPrefix("qemu-img") == true,
              let sub = command.dropFirst().first(where: { !$0.hasPrefix("-") }) else { return nil }
        return "qemu-img " + sub
    }

    /// Hands one finished op to the totals, the per-image sums, the costs, the ranking and the
    /// models. Its tree is turned into values only when something keeps it: the listing, the
    /// costliest ops, the pinned op, an observer.
    private mutating func fold(_ finished: consuming TreeBuilder.HandedOp) {
        let summary = finished.summary()
        if finished.op.isGuestRequest, let toolOrigin { finished.op.origin = toolOrigin }
        imageTally.add(&finished.op, summary)
        let keep = listed.count < limits.listedOps
        let index = finished.op.index
        let rank = CostliestOps.Rank(hostSyncs: summary.hostSyncs, hostSyncTimeNs: summary.hostSyncTimeNs, index: index)
        if keep || index == limits.pinnedOp || observe != nil || costliest.wouldKeep(rank) {
            let tree = builder.tree(of: finished)
            finished.op.children = tree
        }
        finished.withOp { count($0, summary, rank: rank, keep: keep) }
        builder.recycle(&finished)
    }

    /// `fold` once the op is final: a borrowed value from here on, read where it lies (a `var`
    /// whose address had been lent was copied, 146 bytes, before each call that read it).
    private mutating func count(_ op: borrowing GuestOp, _ summary: borrowing OpSummary, rank: CostliestOps.Rank, keep: Bool) {
        tally.add(op, summary)
        costs.add(op, summary)
        costliest.add(op, rank: rank)
        if op.index == limits.pinnedOp { pinned = copy op }
        observe?(op)
        if !modelReady {
            // Image records come first in a capture: by the first finished op they are all read.
            modelReady = true
            (model, second, candidates) = freshModels()
        }
        if op.isGuestRequest {
            sawRequest = true
            housekeepingDuringRequests += housekeepingSinceRequest
            housekeepingSinceRequest = 0
        } else if op.kind == .housekeeping && sawRequest {
            housekeepingSinceRequest += summary.hostSyncs
        }
        if model != nil {
            // The as-run model routes each op once for every run (they hold the same images). In
            // place, and the observed counts read once (each `summary.causes` argument was a 212-byte copy).
            let route = model!.route(op)
            let observed = summary.causes
            model!.add(op, route: route, observed: observed, keepPrediction: keep)
            if second != nil { second!.add(op, route: route, observed: observed, keepPrediction: keep) }
            // Through one buffer: indexing the array checked that it was not shared, per run.
            candidates.withUnsafeMutableBufferPointer { runs in
                for i in runs.indices { runs[i].1.addToTotal(op, route: route, observed: observed) }
            }
        }
        if keep { listed.append(copy op) }
        opCount += 1
    }

    private mutating func foldUnplaced(_ u: (CausalNode, String)) {
        let summary = OpSummary(unplaced: u.0)
        imageTally.addUnplaced(summary)
        tally.addUnplaced(summary)
        costs.addUnplaced(summary)
        observeUnplaced?(u.0)
        if unplaced.count < limits.listedUnattributed { unplaced.append((node: u.0, reason: u.1)) }
        unplacedCount += 1
    }
}
