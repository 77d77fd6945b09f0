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
        public var reorderedEvents: UInt64 = 0
        public var lateEvents: UInt64 = 0
        public var unknownRecords = 0
        public var notes: [CaptureNote] = []
        /// qcow2 images as they were when the capture started.
        public var images: [ImageState] = []
    }

    public var manifest: Manifest
    public var capture: CaptureInfo
    public var totals: Totals
    /// Guest operations and open/close groups, in start order.
    public var ops: [GuestOp]
    /// Nodes that could not be placed, each with the reason.
    public var unattributed: [(node: CausalNode, reason: String)]
    /// Uprobe hits per probe id.
    public var probeHits: [Int: Int]
    /// Totals per image file, in first-seen order.
    public var images: [ImageTotals]
    /// The reference model's predictions, when the image state is known.
    public var model: ModelComparison?

    /// Reads every record of a capture and builds the trees.
    /// - Parameters:
    ///   - images: image states to use instead of (or where missing from) the capture's own.
    ///   - cache: the cache mode QEMU ran with, when its command line does not say.
    public static func run(_ reader: inout CaptureReader, reorderWindow: Int = 4096, images extraImages: [ImageState] = [],
                           options: ModelOptions? = nil) -> Analysis {
        let manifest = reader.manifest
        var info = CaptureInfo(path: reader.path)
        var window = ReorderWindow(capacity: reorderWindow)
        let coroutines = (manifest.coroutineSource ?? "none") != "none"
        var builder = TreeBuilder(probes: ProbeIndex(manifest: manifest), origin: manifest.startMonotonicNs,
                                  coroutines: coroutines)
        var last: UInt64 = manifest.startMonotonicNs
        while let record = reader.next() {
            switch record {
            case let .event(e):
                info.events += 1
                last = max(last, e.timestamp)
                if let out = window.push(e) { builder.add(out) }
            case let .lost(cpu, count):
                info.lostPerCPU[cpu] = count
            case let .note(n):
                info.notes.append(n)
                last = max(last, n.timestampNs)
            case let .trailer(t):
                info.trailerReason = t.reason
                last = max(last, t.endMonotonicNs)
            case let .image(state):
                info.images.append(state)
            case .unknown:
                info.unknownRecords += 1
            }
        }
        while let e = window.pop() { builder.add(e) }
        info.damage = reader.damage?.description
        info.lostEvents = info.lostPerCPU.values.reduce(0, +)
        info.reorderedEvents = window.reordered
        info.lateEvents = window.lateEvents
        info.durationNs = last >= manifest.startMonotonicNs ? last - manifest.startMonotonicNs : 0
        let hits = builder.uprobeHits
        let hostSyncs = builder.hostSyncs
        let linker = builder.storage
        var (ops, unattributed) = builder.finish()
        let images = ImageTotals.assign(&ops, unattributed: unattributed.map(\.0), notes: info.notes)
        var totals = Totals(ops: ops, unattributed: unattributed.map(\.0))
        totals.hostSyncs = hostSyncs
        let all = ops.flatMap(\.children) + unattributed.map(\.0)
        totals.journalCommits = all.reduce(0) { $0 + $1.count("journal_commit") }
        totals.deviceFlushes = all.reduce(0) { $0 + $1.count("device_flush") }
        totals.deviceFUAWrites = all.reduce(0) { $0 + $1.count("device_fua_write") }
        totals.unlinkedJournalCommits = linker.unlinkedCommits
        totals.unlinkedDeviceFlushes = linker.unlinkedDeviceFlushes
        totals.unlinkedDeviceFUAWrites = linker.unlinkedFUAWrites
        var known = info.images
        for extra in extraImages {
            known.removeAll { $0.path == extra.path }
            known.append(extra)
        }
        var model: ModelComparison?
        if !known.isEmpty, let options = options ?? CacheMode.detect(command: manifest.target.command).map({ ModelOptions(cache: $0) }) {
            // Ops name images by the path behind their fds; states name them as the target did.
            let named = known.map { state -> ImageState in
                var s = state
                if let match = images.first(where: { $0.path == state.path || $0.path.hasSuffix("/" + state.path) || state.path.hasSuffix("/" + $0.path) }) {
                    s.path = match.path
                }
                return s
            }
            model = ModelComparison.run(ops: ops, images: named, options: options)
        }
        return Analysis(manifest: manifest, capture: info, totals: totals, ops: ops,
                        unattributed: unattributed.map { (node: $0.0, reason: $0.1) }, probeHits: hits,
                        images: images, model: model)
    }

    /// Uprobe hits in the capture, and per guest request: what tracing cost (a hit is about 5 us here).
    public var probeHitsTotal: Int { probeHits.values.reduce(0, +) }
    public var probeHitsPerGuestOp: Double? {
        let requests = totals.guestWrites + totals.guestFlushes
        return requests > 0 ? Double(probeHitsTotal) / Double(requests) : nil
    }

    /// Host syncs grouped as housekeeping that started between the first guest request and the last one's end.
    ///
    /// Work a request hands to a helper coroutine (quorum children, block jobs) is
    /// linked to the request through the coroutine's caller, which is seen only
    /// before the helper first yields. The minimal probe set may see the helper
    /// only after that, and the work then counts as housekeeping.
    public var housekeepingSyncsDuringRequests: Int {
        // A request's end is only its last event seen, so the span of all requests is used.
        let requests = ops.filter(\.isGuestRequest)
        guard let first = requests.map(\.startNs).min(), let last = requests.map(\.endNs).max() else { return 0 }
        return ops.filter { $0.kind == .housekeeping && $0.hostSyncs > 0 && first <= $0.startNs && $0.startNs <= last }
            .reduce(0) { $0 + $1.hostSyncs }
    }

    /// Warnings every report shows: lost events, damage, unplaced syncs, missing probes.
    public var warnings: [String] {
        var w: [String] = []
        if capture.lostEvents > 0 {
            let cpus = capture.lostPerCPU.filter { $0.value > 0 }.sorted { $0.key < $1.key }
                .map { "CPU \($0.key): \($0.value)" }.joined(separator: ", ")
            w.append("\(capture.lostEvents) events were lost (ring buffer full; \(cpus)): the trees may be incomplete; capture again with a larger --ring-buffer-mb")
        }
        if let d = capture.damage {
            w.append("the capture was read up to \(d); what came before is reported")
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
        let helper = housekeepingSyncsDuringRequests
        if helper > 0 {
            w.append("\(helper) host syncs ran outside any request's coroutine while guest requests were being served, and count as housekeeping: "
                     + (manifest.probeSet == "minimal"
                        ? "if the requests hand work to helper coroutines (quorum, block jobs), capture with --detail to link it to them"
                        : "work of helper coroutines that could not be linked to a request"))
        }
        for m in manifest.missingProbes {
            w.append("probe \(m.role) was not attached (tried \(m.symbolsTried.joined(separator: ", "))): \(m.reason)")
        }
        return w
    }
}
