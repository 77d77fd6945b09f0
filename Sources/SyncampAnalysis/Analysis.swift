import SyncampCapture
import SyncampQcow2

/// Everything a report shows about one capture.
public struct Analysis: Sendable {
    public struct Totals: Sendable, Equatable {
        public var guestWrites = 0
        public var guestFlushes = 0
        /// Every fdatasync/fsync the traced process made during the capture (kernel side).
        public var hostSyncs = 0
        /// Host syncs that could not be placed under an op or an open/close group.
        public var unattributedHostSyncs = 0
        /// Host syncs placed under guest requests, and under open, close and housekeeping groups.
        public var hostSyncsUnderRequests = 0
        public var hostSyncsInGroups = 0
        /// Host syncs per cause.
        public var causes: [Cause: Int] = [:]
        /// Host syncs of the guest requests up to and including the first guest flush (the first
        /// allocating write + fsync pays for new metadata); nil without a guest flush.
        public var firstFlushHostSyncs: Int?
        /// Host syncs per guest flush after the first one.
        public var steadyStateAmplification: Double?
        /// Below QEMU, under the target's host syncs: jbd2 commits, device flush requests, FUA writes.
        public var journalCommits = 0
        public var deviceFlushes = 0
        public var deviceFUAWrites = 0
        /// The same on the watched devices with no sync of the target in progress (other writers).
        public var unlinkedJournalCommits = 0
        public var unlinkedDeviceFlushes = 0
        public var unlinkedDeviceFUAWrites = 0
        /// host syncs / guest flushes; nil without guest flushes.
        public var syncAmplification: Double? {
            guestFlushes > 0 ? Double(hostSyncs) / Double(guestFlushes) : nil
        }
    }

    /// The tracing's own cost in one capture, as the collector measured it (Trailer): its BPF
    /// programs' runs and time (the kernel's run-time statistics; the uprobe traps themselves
    /// are not in it), and the collector's CPU time while capturing. Times in ns.
    public struct TracingCost: Sendable, Equatable {
        /// Per BPF program (its name in bpf/syncamp.bpf.c).
        public var programs: [String: Trailer.ProgramCost]
        public var collectorCPUNs: UInt64?
        public var bpfProgramRuns: UInt64 { programs.values.reduce(0) { $0 + $1.runs } }
        public var bpfRunTimeNs: UInt64 { programs.values.reduce(0) { $0 + $1.ns } }
    }

    /// What the capture file held and how well it read.
    public struct CaptureInfo: Sendable {
        public var path: String
        public var events: UInt64 = 0
        /// Summed over CPUs, from the last lost-events record of each CPU.
        public var lostEvents: UInt64 = 0
        public var lostPerCPU: [UInt32: UInt64] = [:]
        public var durationNs: UInt64 = 0
        /// Why the capture stopped before its trailer, when it did.
        public var damage: String?
        public var trailerReason: String?
        /// What the tracing cost, when the collector measured it (`collector --measure-cost`; Trailer).
        public var tracingCost: TracingCost?
        public var reorderedEvents: UInt64 = 0
        public var lateEvents: UInt64 = 0
        public var unknownRecords = 0
        public var notes: [CaptureNote] = []
        /// qcow2 images as they were when the capture started.
        public var images: [ImageState] = []
    }

    /// How much of a capture an analysis keeps to show; everything is counted in the totals.
    public struct Limits: Sendable {
        /// Ops listed in reports with their trees (the first ones, in start order).
        public var listedOps = 1000
        /// Unplaced nodes listed with their reasons.
        public var listedUnattributed = 1000
        /// An op is handed on to the totals once nothing has been placed under it for this
        /// much capture time and no sync it started is still open.
        public var quietNs: UInt64 = 2_000_000_000
        /// At most this many ops are held at once (the oldest is handed on first).
        public var maxLiveOps = 100_000
        /// The costliest ops kept with their trees, whichever their place in the capture.
        public var costliestOps = 10
        /// One op kept with its tree wherever it is in the capture (`report --op N`).
        public var pinnedOp: Int?
        /// Run the model once more per configuration change, for `Analysis.recommendations`.
        public var recommend = true

        public init(listedOps: Int = 1000, costliestOps: Int = 10, pinnedOp: Int? = nil) {
            self.listedOps = listedOps
            self.costliestOps = costliestOps
            self.pinnedOp = pinnedOp
        }
    }

    public var manifest: Manifest
    public var capture: CaptureInfo
    public var totals: Totals
    /// The first `Limits.listedOps` guest operations and open/close groups, in start order.
    public var ops: [GuestOp]
    /// All ops, listed or not.
    public var opCount: Int
    /// The first nodes that could not be placed, each with the reason.
    public var unattributed: [(node: CausalNode, reason: String)]
    /// All unplaced nodes, listed or not.
    public var unattributedCount: Int
    /// Uprobe hits per probe id.
    public var probeHits: [Int: Int]
    /// Totals per image file, in first-seen order.
    public var images: [ImageTotals]
    /// The reference model's predictions, when the image state is known.
    public var model: ModelComparison?
    /// The model run with other options (`analyzer whatif`), when asked for.
    public var whatIf: ModelComparison?
    /// Time in host syncs per cause and guest flush latency, over every op.
    public var costs: CostBreakdown
    /// What the model predicts each configuration change would do on this capture, the most
    /// host syncs removed first; empty without a model (no image state or cache mode).
    public var recommendations: [Recommendation]
    /// The `Limits.costliestOps` ops with the most host syncs (then the most time in them), costliest first.
    public var costliestOps: [GuestOp]
    /// The op `Limits.pinnedOp` asked for, if the capture has it.
    public var pinnedOp: GuestOp?
    /// Ops handed on while a sync they started was still open (more than `maxLiveOps` in flight).
    public var forcedRetirements: Int
    /// Host syncs grouped as housekeeping that started after the first guest request and
    /// before a later one.
    ///
    /// Work a request hands to a helper coroutine (quorum children, block jobs) is
    /// linked to the request through the coroutine's caller, which is seen only
    /// before the helper first yields. The minimal probe set may see the helper
    /// only after that, and the work then counts as housekeeping.
    public var housekeepingSyncsDuringRequests: Int
    /// Counts that show probes reading the wrong places for the traced QEMU.
    public var selfCheck = ProbeSelfCheck()

    /// Reads every record of a capture and builds the trees, in memory bounded by the work in flight.
    ///
    /// Ops are folded into the totals, the per-image totals and the model as soon
    /// as they can take no more work; only the first `limits.listedOps` are kept
    /// with their trees for the reports.
    /// - Parameters:
    ///   - images: image states to use instead of (or where missing from) the capture's own.
    ///   - options: the model's options, when the target's command line does not say (cache mode).
    ///   - whatIf: other options for a second model run over the same ops, made from the first's.
    ///   - observe: called with every op as it is handed on (exports), in index order.
    ///   - observeUnplaced: called with every node no op took.
    ///   - progress: called every 65,536 records with the bytes read, the file's size and the events so far.
    public static func run(_ reader: inout CaptureReader, reorderWindow: Int = 4096, images extraImages: [ImageState] = [],
                           options: ModelOptions? = nil, whatIf: ((ModelOptions) -> ModelOptions)? = nil,
                           limits: Limits = Limits(), observe: ((GuestOp) -> Void)? = nil,
                           observeUnplaced: ((CausalNode) -> Void)? = nil,
                           progress: ((_ offset: Int, _ size: Int, _ events: UInt64) -> Void)? = nil) -> Analysis {
        var pipeline = AnalysisPipeline(manifest: reader.manifest, path: reader.path, reorderWindow: reorderWindow,
                                        images: extraImages, options: options, whatIf: whatIf, limits: limits,
                                        observe: observe, observeUnplaced: observeUnplaced)
        var records = 0
        // Events are read straight into the reorder window's next slot.
        while true {
            if reader.readEvent(into: pipeline.nextEventSlot()) {
                pipeline.commitEvent()
            } else if let r = reader.next() {
                pipeline.add(r)
            } else {
                break
            }
            records += 1
            if records & 0xffff == 0 { progress?(reader.offset, reader.fileSize, pipeline.events) }
        }
        return pipeline.finish(damage: reader.damage)
    }

    /// Uprobe hits on sites the kernel single-steps (a second trap each; see the manifest's
    /// per-probe `cost`), nil for captures that predate site decoding.
    public var singleSteppedProbeHits: Int? {
        guard manifest.probes.contains(where: { $0.cost != nil }) else { return nil }
        return manifest.probes.filter { $0.cost == "single-stepped" }.reduce(0) { $0 + (probeHits[$1.id] ?? 0) }
    }

    /// Uprobe hits in the capture, and per guest request: what tracing cost (a hit is about 5 us here).
    public var probeHitsTotal: Int { probeHits.values.reduce(0, +) }
    public var probeHitsPerGuestOp: Double? {
        let requests = totals.guestWrites + totals.guestFlushes
        return requests > 0 ? Double(probeHitsTotal) / Double(requests) : nil
    }

    /// The levels below QEMU this capture did not trace (the kernel lacked their hooks): the
    /// totals cannot count what they would have seen. Empty for captures that predate levels.
    /// The image format of a synced file: qcow2 when the capture holds its qcow2 state, raw when
    /// the collector found it is not qcow2 (a raw file or a block device); nil when unknown.
    /// The disk an image is, as the guest, QEMU and libvirt name it (manifest `disks`), if known.
    public func disk(ofImage path: String) -> QemuDisk? { manifest.disk(ofImage: path) }

    public func format(ofImage path: String) -> ImageFormat? {
        if capture.images.contains(where: { $0.path == path }) { return .qcow2 }
        if manifest.rawImages?.contains(path) == true { return .raw }
        return nil
    }

    /// How an image stores the guest's disk.
    public enum ImageFormat: String, Sendable {
        /// Metadata (L1/L2 tables, refcounts) whose ordering costs host syncs of its own.
        case qcow2
        /// The guest's blocks as they are: one host sync per guest flush, no format-level amplification.
        case raw
    }

    /// The synced images that are raw.
    public var rawImages: [ImageTotals] { images.filter { format(ofImage: $0.path) == .raw } }

    public var untracedLevels: [KernelLevel] { (manifest.kernelLevels ?? []).filter { !$0.traced } }

    /// Warnings every report shows: lost events, damage, unplaced syncs, missing probes.
    public var warnings: [String] {
        var w: [String] = []
        if capture.lostEvents > 0 {
            let cpus = capture.lostPerCPU.filter { $0.value > 0 }.sorted { $0.key < $1.key }
                .map { "CPU \($0.key): \($0.value)" }.joined(separator: ", ")
            w.append("\(capture.lostEvents) events were lost (ring buffer full; \(cpus)): the trees may be incomplete; capture again with a larger --ring-buffer-mb")
        }
        if let d = capture.damage {
            w.append("the capture stops \(d); what came before is reported")
        }
        if capture.lateEvents > 0 {
            w.append("\(capture.lateEvents) events arrived too late to be put in time order; they were placed in arrival order")
        }
        let placed = totals.causes.values.reduce(0, +)
        if placed < totals.hostSyncs {
            w.append("\(totals.hostSyncs - placed) host syncs were counted at the system call but their events were lost, so they are in no tree")
        }
        if totals.unattributedHostSyncs > 0 {
            w.append("\(totals.unattributedHostSyncs) host syncs could not be placed under a guest request or open/close: see `unattributed`")
        }
        if forcedRetirements > 0 {
            w.append("\(forcedRetirements) ops were closed while a sync they started was still open (more than \(Limits().maxLiveOps) ops in flight): syncs that ended after that count as unattributed")
        }
        let helper = housekeepingSyncsDuringRequests
        if helper > 0 {
            w.append("\(helper) host syncs ran outside any request's coroutine while guest requests were being served, and count as housekeeping: "
                     + (manifest.probeSet == "minimal"
                        ? "if the requests hand work to helper coroutines (quorum, block jobs), capture with --detail to link it to them"
                        : "work of helper coroutines that could not be linked to a request"))
        }
        if manifest.probeSet == "usdt" {
            w.append("traced through QEMU's USDT probes, which carry less than function probes: guest flushes have no trace event and were inferred from qcow2 cache write-backs, guest writes and L1 entries take the coroutine of the next event on their thread, and F3, F7-F12 count as refcount_dependency or l2_table_alloc; use a QEMU with symbols (or --symbols) for exact trees")
        }
        let qemu = "QEMU \(manifest.qemuVersion ?? "of unknown version")" + (manifest.qemuABI.map { " (layouts from the \($0))" } ?? "")
        w += selfCheck.warnings(hostSyncs: totals.hostSyncs, unattributed: totals.unattributedHostSyncs, qemu: qemu)
        for m in manifest.missingProbes {
            w.append("probe \(m.role) was not attached (tried \(m.symbolsTried.joined(separator: ", "))): \(m.reason)")
        }
        return w
    }
}
