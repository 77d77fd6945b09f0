import SyncampCapture
import SyncampProbes

/// Builds causal trees from decoded, time-ordered events: guest op -> qcow2 work -> thread-pool
/// hand-off -> host sync -> file system -> journal -> device.
///
/// The builder dispatches each event, keeps the table of open ops and hands them on; the
/// trackers decide the rest:
/// - `OpResolver`: which op a QEMU event belongs to, by the coroutine it ran in (without
///   coroutine information: the latest op, exact only for one request at a time);
/// - `CauseTracker` (one per op): why each host sync happened (F1-F16);
/// - `SyncLinker`: which submit or job each host sync belongs to, across threads;
/// - `StorageLinker`: the file-system sync, journal commit and device flush under each host sync.
/// Anything that cannot be placed is kept in `unattributed` with a reason.
struct TreeBuilder {
    let probes: ProbeIndex
    let origin: UInt64
    /// Ops not yet handed on, by id (index order).
    private var ops = OpTable()
    private var nextIndex = 0
    private var sawGuestRequest = false
    /// Ops held, not yet handed on.
    var liveCount: Int { ops.count }
    /// Ops handed on while still waiting for a sync, because too many were in flight.
    private(set) var forcedRetirements = 0
    private(set) var hostSyncs = 0
    /// Uprobe hits per probe id (the first 256 ids counted in an array: one per event).
    private var hitsByID: [Int] = Array(repeating: 0, count: 256)
    private var hitsPastTable: [Int: Int] = [:]
    var uprobeHits: [Int: Int] {
        var hits = hitsPastTable
        for (id, n) in hitsByID.enumerated() where n > 0 { hits[id] = n }
        return hits
    }
    /// Counts that show probes reading the wrong places (ProbeSelfCheck).
    private(set) var selfCheck = ProbeSelfCheck()
    private var resolver: OpResolver
    private var linker: SyncLinker
    private let storage: StorageLinker
    /// Where new nodes come from and handed-on trees go back to (`recycle(_:)`).
    private let pool = NodePool()
    /// Journal commits, device flushes and FUA writes on watched devices that no sync of the target made.
    var unlinkedStorage: StorageLinker.Unlinked { storage.unlinked }
    private let hasEntryFlushProbe: Bool
    /// USDT captures infer guest flushes (see `inferFlush`).
    private let inferFlushes: Bool
    /// Block devices opened as images (`host_device`), by path, and the device behind each synced fd.
    private let blockDevices: [String: UInt32]
    private var deviceOfFD: [UInt32: UInt32] = [:]

    /// Whether QEMU writes through (cache=writethrough, directsync: a flush after every write),
    /// from the target's command line; nil when it does not say.
    private let writesThrough: Bool?

    /// - Parameter blockDevices: block devices the target opens as images, path -> dev_t (the manifest's
    ///   `block_device` devices): their host syncs take the device's flushes, with no file system between.
    /// - Parameter writesThrough: the cache mode's write-through, when known (`CacheMode.writesThrough`).
    init(probes: ProbeIndex, origin: UInt64, coroutines: Bool, blockDevices: [String: UInt32] = [:], writesThrough: Bool? = nil) {
        self.writesThrough = writesThrough
        self.blockDevices = blockDevices
        self.storage = StorageLinker(blockImages: Set(blockDevices.values), pool: pool)
        self.probes = probes
        self.origin = origin
        self.resolver = OpResolver(useCoroutines: coroutines)
        self.hasEntryFlushProbe = probes.has(.qcow2CacheEntryFlush)
        self.linker = SyncLinker(hasWorkerProbe: probes.has(.workerFlush) || probes.has(.qemuFdatasync),
                                 hasWorkerFlushProbe: probes.has(.workerFlush))
        self.inferFlushes = probes.isUSDT && !probes.has(.guestFlushCo) && !probes.has(.guestFlushAIO)
    }

    mutating func add(_ e: DecodedEvent) {
        let t = rel(e.timestamp)
        switch e.payload {
        case let .syncEnter(call, fd): syncEnter(e, call: call, fd: fd)
        case let .syncExit(ret):
            if let (node, op) = linker.syncExit(tid: e.tid, at: e.timestamp, returnValue: ret) {
                touch(op, t)
                storage.hostSyncEnded(node, at: e.timestamp)
            }
        case let .uringSubmit(ring, userData): uringSubmit(e, ring: ring, userData: userData)
        case let .uringComplete(ring, userData, result):
            if let (node, op) = linker.uringComplete(ring: ring, userData: userData, result: result, at: e.timestamp) {
                touch(op, t)
                storage.hostSyncEnded(node, at: e.timestamp)
            }
        case let .storage(s):
            // Only a file-system sync's entry nests under its thread's open sync: the lookup is made for it alone.
            let openSync: Node? = if case .fsSyncEnter = s { linker.openSync(tid: e.tid) } else { nil }
            storage.add(s, at: e.timestamp, t, tid: e.tid, openSync: openSync, uringInFlight: linker.uringInFlight)
        case .unknown:
            break
        default:
            uprobe(e)
        }
    }

    /// Learns which synced fds are block devices opened as images.
    mutating func fdPath(_ p: FDPath) {
        guard !blockDevices.isEmpty else { return }
        deviceOfFD[UInt32(truncatingIfNeeded: p.fd)] = blockDevices[p.path]
    }

    private func rel(_ t: UInt64) -> UInt64 { t >= origin ? t - origin : 0 }

    /// Marks work of `op` at `t`, if it is still held (work for an op handed on changes nothing).
    private mutating func touch(_ op: OpID?, _ t: UInt64) {
        guard let op, ops.isLive(op) else { return }
        ops[op].touch(t)
    }

    /// Counts a probe hit for `op`, if it is still held.
    private mutating func hit(_ op: OpID?) {
        guard let op, ops.isLive(op) else { return }
        ops[op].value.probeHits += 1
    }

    /// The function a uprobe event's probe is on ("" for a probe the manifest does not describe).
    private func symbol(_ e: DecodedEvent) -> String { probes.symbol(id: e.probeID) }

    // MARK: Ops

    /// - Parameter request: a guest request's facts (offset, bytes, BlockBackend, unmap, compressed),
    ///   set before the op enters the table; its start event is then counted as the op's first probe hit.
    private mutating func newOp(_ kind: GuestOp.Kind, _ e: DecodedEvent, entry: String, request: DecodedEvent.Request? = nil) -> OpID {
        let final: Cause
        switch kind {
        // A write-zeroes is a write: FUA emulation flushes after it in write-through mode (F14).
        case .write, .writeZeroes: final = .writethrough
        // Discards and resizes run no flush of the format node themselves; should one run, its last sync is a flush's own.
        case .flush, .discard, .truncate: final = .guestFlush
        case .imageOpen: final = .imageOpen
        case .imageCreate: final = .imageCreate
        case .imageClose: final = .imageClose
        case .housekeeping: final = .housekeeping
        case .snapshot: final = .snapshot
        case .imageCheck: final = .imageCheck
        case .makeEmpty: final = .makeEmpty
        }
        var op = Op(GuestOp(index: nextIndex, kind: kind, offset: request?.offset ?? 0, bytes: request?.bytes ?? 0,
                            startNs: rel(e.timestamp), endNs: rel(e.timestamp), tid: e.tid, entry: entry, children: [],
                            probeHits: request == nil ? 0 : 1),
                    causes: CauseTracker.Setup(finalCause: final, hasEntryFlushProbe: hasEntryFlushProbe,
                                         // A resize's plain cache flushes are qcow2_update_options' (it recomputes the cache sizes).
                                         plainCacheFlush: kind == .truncate ? .cacheReconfigure : .l2TableAlloc,
                                         looksUpClusters: kind == .write || kind == .writeZeroes || kind == .discard))
        if let request {
            // Set here, not through the table afterwards: each write there checks that the table is not shared.
            if kind.isGuestRequest { op.value.backend = request.backend }
            op.value.unmap = request.unmap
            op.value.compressed = request.compressed
        }
        nextIndex += 1
        if op.value.isGuestRequest { sawGuestRequest = true }
        let id = op.id
        ops.append(consume op)  // moved into the table, not copied
        return id
    }

    /// The op a submitting-thread event belongs to (a group is made when none owns it).
    private mutating func owner(_ e: DecodedEvent) -> OpID {
        if let op = resolver.owner(of: e, ops: &ops) { return op }
        let kind: GuestOp.Kind = sawGuestRequest ? .housekeeping : .imageOpen
        let entry = kind == .imageOpen ? "(before the first guest request)" : "(outside any guest request)"
        let group = newOp(kind, e, entry: entry)
        resolver.setGroup(group)
        return group
    }

    /// The op that owns a sync's thread, for a sync no job claims: only where coroutines say, or the op runs on that thread.
    private mutating func threadOwner(_ e: DecodedEvent) -> OpID? {
        guard let op = resolver.owner(of: e, ops: &ops), resolver.useCoroutines || ops[op].value.tid == e.tid else { return nil }
        return op
    }

    // MARK: QEMU

    private mutating func uprobe(_ e: DecodedEvent) {
        let id = Int(e.probeID)
        if id < hitsByID.count { hitsByID[id] += 1 } else { hitsPastTable[id, default: 0] += 1 }
        resolver.observe(e, ops: &ops)
        guard let role = e.role else { return }
        let t = rel(e.timestamp)
        if inferFlushes, case let .cacheWrite(c) = e.payload { inferFlush(e, isL2: c.name == .l2) }
        // Requests a qcow2 image creation makes through its own BlockBackend (header, resize) and
        // the release of that BlockBackend are part of the creation, not guest requests or a close.
        if role.isGuestRequest || role == .backendUnref, e.coroutine.running != 0,
           let create = resolver.boundOwner(of: e.coroutine.running, in: ops), ops[create].value.kind == .imageCreate {
            ops[create].value.probeHits += 1
            ops[create].touch(t)
            return
        }
        // The op this probe hit is counted for.
        let hitOp: OpID?
        switch e.payload {
        case let .request(r):
            let op = newOp(r.kind, e, entry: symbol(e), request: r)  // its hit counted there
            resolver.start(op, e, binding: r.binding, ops: &ops)
            return
        case .imageCreate:
            let op = newOp(.imageCreate, e, entry: symbol(e))
            resolver.start(op, e, binding: .ownCoroutine, ops: &ops)
            hitOp = op
        case let .imageMaintenance(kind):
            // Snapshot and check work runs in coroutines of its own that no request holds: the
            // group takes it, until a request starts or the images close.
            let op = newOp(kind, e, entry: symbol(e))
            resolver.setGroup(op)
            hitOp = op
        case .backendUnref where !sawGuestRequest:
            // Opening an image releases temporary BlockBackends: still open work.
            hitOp = owner(e)
        case .backendUnref, .closeAll:
            if resolver.group.map({ ops[$0].value.kind }) != .imageClose {
                resolver.close(newOp(.imageClose, e, entry: symbol(e)))
            }
            hitOp = resolver.group
        case .writeDone:
            // The write is over: its pooled coroutine may next serve a flush.
            let op = resolver.boundOwner(of: e.coroutine.running, in: ops)
            if let op, ops[op].value.kind == .write || ops[op].value.kind == .writeZeroes { resolver.unbind(e.coroutine.running) }
            hitOp = op
        case let .rawFlush(bs, fd):
            rawFlush(e, node: bs, fd: fd)
            return
        case let .poolSubmit(job):
            poolSubmit(e, job)
            return
        case let .workerFlush(arg, bs):
            let node = pool.node(kind: .workerFlush, timeNs: t, tid: e.tid, symbol: symbol(e), details: NodeDetails(job: arg))
            let op = linker.workerFlush(node, job: arg, node: bs, tid: e.tid)
            touch(op, t)
            hit(op)
            return
        case let .qemuFdatasync(fd):
            let node = pool.node(kind: .qemuFdatasync, timeNs: t, tid: e.tid, symbol: symbol(e), details: NodeDetails(fd: fd))
            if let op = linker.linkQemuFdatasync(node, fd: fd, tid: e.tid) {
                touch(op, t)
                hit(op)
            } else if let op = linker.adoptQemuFdatasync(node, owner: threadOwner(e), tid: e.tid) {
                ops[op].add(node, at: t)
                hit(op)
            }
            return
        case .otherProbe, .syncEnter, .syncExit, .uringSubmit, .uringComplete, .storage, .unknown:
            return
        default:
            // qcow2 (and other formats') metadata work: a leaf in the op's tree, and its cause tracker told.
            let op = owner(e)
            Self.metadata(e, at: t, in: &ops[op])  // one access to the table for all of it
            return
        }
        hit(hitOp)
    }

    /// A metadata probe's event in its op: the cause tracker told, the format it shows noted, the
    /// event kept as a leaf and its hit counted. Static: a method of `self` whose argument is in
    /// `self.ops` would copy the builder first.
    private static func metadata(_ e: DecodedEvent, at t: UInt64, in op: inout Op) {
        track(e.payload, in: op.causes())
        switch e.payload {
        case .cacheWrite, .cacheEntryFlush, .setDependency, .l1Entry, .markDirty, .growL1, .refcountArea, .qcow2Write:
            op.touchedQcow2 = true
        case .vmdkWrite, .vmdkGrainTableUpdate:
            op.value.format = "vmdk"
        case let .nodeFlush(format?):
            // A qcow2 node's flush is qcow2 work; another format's (vmdk, vdi, qed ...) names the op's format.
            if format.reads(qcow2Name) {
                op.touchedQcow2 = true
            } else if !format.isFileProtocol, let other = otherFormatNames.first(where: { format.reads($0.pattern) }) {
                op.value.format = other.name
            }
        default:
            break
        }
        op.addLeaf(e, at: t)
        op.value.probeHits += 1
    }

    private static let qcow2Name = FormatName.Pattern("qcow2")!
    /// The formats a node's flush can name besides qcow2 (names a probe can read whole).
    private static let otherFormatNames = RequestEntry.otherImageFormats.sorted().compactMap { name in
        FormatName.Pattern(name).map { (pattern: $0, name: name) }
    }

    /// USDT captures: a guest flush has no trace event of its own. qcow2's flush_to_os writes
    /// back the L2 cache, then the refcount cache (`qcow2_cache_flush(co, 1)`, then `(co, 0)`), in
    /// the flush request's coroutine. A write-back in a coroutine no request holds starts an
    /// inferred guest flush; so does an L2 write-back in a flush's coroutine after that flush
    /// wrote back its refcount cache (the pooled coroutine serves the next flush). Write
    /// requests free their coroutine at `qcow2_writev_done_req`. Not at open or close, whose
    /// work is grouped anyway.
    private mutating func inferFlush(_ e: DecodedEvent, isL2: Bool) {
        if let op = resolver.boundOwner(of: e.coroutine.running, in: ops) {
            guard ops[op].inferredFlush else { return }
            if !isL2 { ops[op].flushWroteRefcounts = true; return }
            guard ops[op].flushWroteRefcounts else { return }
        }
        guard sawGuestRequest, resolver.group.map({ ops[$0].value.kind != .imageClose }) ?? true else { return }
        let op = newOp(.flush, e, entry: "qcow2_cache_flush (guest flush inferred: no trace event)")
        ops[op].inferredFlush = true
        ops[op].flushWroteRefcounts = !isL2
        resolver.start(op, e, binding: .ownCoroutine, ops: &ops)
        ops[op].causes().nodeFlush(isFormatNode: true)
    }

    /// Feeds an op's cause tracker.
    private static func track(_ payload: DecodedEvent.Payload, in causes: CauseTracker) {
        switch payload {
        case .qcow2Write:
            causes.qcow2Write()
        case let .nodeFlush(format):
            causes.nodeFlush(isFormatNode: format.map { !$0.isFileProtocol } ?? false)
        case let .cacheWrite(c):
            causes.cacheWrite(cache: c.cache, depends: c.depends, dependencyCause: Self.dependencyCause(c.name),
                              isRefcount: c.name == .refcount, dependsOnFlush: c.dependsOnFlush)
        case let .cacheEntryFlush(c, _):
            causes.entryFlush(cache: c.cache, depends: c.depends, dependsOnFlush: c.dependsOnFlush,
                              dependencyCause: Self.dependencyCause(c.name))
        case let .setDependency(_, _, willFlush): causes.setDependency(willFlush: willFlush)
        case .l1Entry: causes.l1Entry()
        case .markDirty: causes.markDirty()
        case .growL1: causes.growL1()
        case .refcountArea: causes.refcountArea()
        case let .pwriteSync(offset, _): causes.pwriteSync(offset: offset)
        case .vmdkWrite: causes.vmdkWrite()
        case .vmdkGrainTableUpdate: causes.vmdkGrainTableUpdate()
        case .bitmapDirectory: causes.bitmapDirectory()
        default: break
        }
    }

    /// F2 when the L2 cache waits on the refcount cache; F15 for the opposite (refcount waits on L2 after a decrease).
    private static func dependencyCause(_ cache: CacheName) -> Cause {
        cache == .refcount ? .l2Dependency : .refcountDependency
    }

    /// The node of a metadata probe's event kept as a leaf (`Op.probeLeaves`).
    private func probeNode(_ e: DecodedEvent) -> CausalNode {
        guard let role = e.role else { preconditionFailure("a metadata leaf is an event of a probe role (uprobe keeps no other)") }
        return CausalNode(kind: .probe(role), timeNs: rel(e.timestamp), tid: e.tid, symbol: symbol(e), details: Self.details(e))
    }

    /// The facts a QEMU work node shows.
    private static func details(_ e: DecodedEvent) -> NodeDetails {
        var d = NodeDetails()
        if e.coroutine.running != 0 { d.coroutine = e.coroutine.running }
        switch e.payload {
        case let .qcow2Write(offset, bytes):
            d.offset = offset
            d.bytes = bytes
        case let .cacheWrite(c):
            d.cache = c.name
            d.depends = c.dependsName
            d.dependsOnFlush = c.dependsOnFlush
        case let .cacheEntryFlush(c, index):
            d.cache = c.name
            d.depends = c.dependsName
            d.dependsOnFlush = c.dependsOnFlush
            d.index = index
        case let .setDependency(cache, dependency, _):
            d.cache = cache
            d.dependency = dependency
        case let .l1Entry(index):
            d.l1Index = index
        case let .nodeFlush(format):
            d.format = format
        case let .pwriteSync(offset, bytes):
            d.offset = offset
            d.bytes = bytes
        default:
            break
        }
        return d
    }

    /// `thread_pool_submit_aio`: only flush jobs lead to host syncs; read/write jobs are not tracked.
    private mutating func poolSubmit(_ e: DecodedEvent, _ job: DecodedEvent.PoolSubmit) {
        selfCheck.poolSubmits += 1
        if let t = job.aioType, !ProbeSelfCheck.isPossibleAIOType(t) { selfCheck.poolImpossibleAIOTypes += 1 }
        guard job.aioType.map({ $0 & 0xffff_ffff }) == QemuABI.aioFlush else { return }
        selfCheck.poolFlushSubmits += 1
        if let fd = job.fd, !ProbeSelfCheck.isPossibleFd(UInt64(fd)) { selfCheck.impossibleValues[.threadPoolSubmit, default: 0] += 1 }
        let op = owner(e)
        ops[op].value.probeHits += 1
        let t = rel(e.timestamp)
        var d = NodeDetails(job: job.arg)
        d.fd = job.fd
        d.submitCoroutine = job.coroutine
        // The slot first: made inside the call, after the node's value, it had that value copied once more.
        let slot = ops[op].causes().submit()
        let node = pool.node(kind: .threadPoolSubmit, timeNs: t, tid: e.tid, symbol: symbol(e), details: d, slot: slot)
        ops[op].add(node, at: t)
        linker.poolSubmit(node, of: op, job: job.arg, fd: job.fd)
    }

    /// `raw_co_flush_to_disk(bs)`: a host sync of the file node starts; its cause is fixed now, as at a thread-pool submit.
    private mutating func rawFlush(_ e: DecodedEvent, node bs: UInt64, fd: UInt32?) {
        let op = owner(e)
        ops[op].value.probeHits += 1
        let t = rel(e.timestamp)
        if let fd, !ProbeSelfCheck.isPossibleFd(UInt64(fd)) { selfCheck.impossibleValues[.rawFlush, default: 0] += 1 }
        var d = NodeDetails(node: bs)
        d.fd = fd
        if e.coroutine.running != 0 { d.coroutine = e.coroutine.running }
        // The slot first: made inside the call, after the node's value, it had that value copied once more.
        let slot = ops[op].causes().submit()
        let node = pool.node(kind: .flushSubmit, timeNs: t, tid: e.tid, symbol: symbol(e), details: d, slot: slot)
        ops[op].add(node, at: t)
        linker.rawFlush(node, of: op, node: bs, fd: fd)
    }

    // MARK: The kernel

    private mutating func syncEnter(_ e: DecodedEvent, call: Syscall?, fd: UInt32) {
        hostSyncs += 1
        let t = rel(e.timestamp)
        let syscall: SyncCall = call.map { $0 == .fdatasync ? .fdatasync : .fsync } ?? .sync
        var d = NodeDetails(fd: fd)
        d.syscall = syscall
        let node = pool.node(kind: .hostSync, timeNs: t, tid: e.tid, symbol: syscall.rawValue, details: d)
        var op = linker.linkSync(node, fd: fd, tid: e.tid)
        touch(op, t)
        if op == nil, let owner = threadOwner(e) {
            // A sync made directly on a request's thread, not through the thread pool.
            node.value.cause = ops[owner].finalCause
            ops[owner].add(node, at: t)
            op = owner
        }
        linker.syncStarted(node, op: op, tid: e.tid, at: e.timestamp)
        if !deviceOfFD.isEmpty, let dev = deviceOfFD[fd] { storage.blockDeviceSyncStarted(node, dev: dev) }  // usually none: no hashing
    }

    /// An io_uring fsync (aio=io_uring): a host sync with no fdatasync system call.
    private mutating func uringSubmit(_ e: DecodedEvent, ring: UInt64, userData: UInt64) {
        hostSyncs += 1
        let t = rel(e.timestamp)
        var d = NodeDetails()
        d.syscall = .ioUringFsync
        d.userData = userData
        let node = pool.node(kind: .hostSync, timeNs: t, tid: e.tid, symbol: SyncCall.ioUringFsync.rawValue, details: d)
        let op = resolver.owner(of: e, ops: &ops)
        if let op {
            // raw_co_flush_to_disk of this request went to io_uring: the fsync is its sync.
            if let raw = linker.takeRaw(of: op) {
                // The file node's fd (read at raw_co_flush_to_disk) names the image, as a system call's does.
                node.value.details.fd = raw.fd
                raw.node.children.append(node)
                ops[op].touch(t)
            } else {
                node.slot = ops[op].causes().submit()
                ops[op].add(node, at: t)
            }
        }
        linker.uringSubmit(node, ring: ring, userData: userData, op: op, at: e.timestamp)
    }

    // MARK: Handing ops on

    /// Hands on the oldest op if it can take no more work; call until nil to hand on all that
    /// can, in index order (one at a time: each op is moved out of the table to its caller, never
    /// copied into a list).
    ///
    /// An op is done when no sync it started is still open and nothing was
    /// placed under it for `quietNs` of capture time. The oldest op is also
    /// handed on when more than `maxLive` are held (it is then counted in
    /// `forcedRetirements`), so memory stays bounded whatever the capture holds.
    mutating func retireOldest(now: UInt64, quietNs: UInt64, maxLive: Int) -> HandedOp? {
        guard ops.count > 0 else { return nil }
        let t = rel(now)
        let oldest = ops.first
        let endNs = ops[oldest].value.endNs
        let quiet = t >= endNs && t - endNs >= quietNs
        guard quiet || ops.count > maxLive else { return nil }
        let waiting = linker.isWaiting(oldest)
        guard !waiting || ops.count > maxLive else { return nil }
        if waiting { forcedRetirements += 1 }
        return hand(ops.removeOldest())
    }

    /// Nodes that could not be placed so far, with the reason; the builder forgets them.
    mutating func drainUnattributed() -> [(CausalNode, String)] { linker.drainUnattributed() }

    /// An op handed on: its value without its tree, the summary of its tree, and the tree on demand.
    /// The builder's op, moved out of its table.
    struct HandedOp {
        private var source: Op

        init(_ source: consuming Op) { self.source = source }

        /// The summary of its tree (one walk: call once).
        func summary() -> OpSummary { OpSummary(source) }
        /// The op, `children` empty until the caller sets its tree (`tree(_:)`), read and changed
        /// where it lies: the op is never copied or moved out (a move left a placeholder op to
        /// make and destroy, five references to count per op).
        var op: GuestOp {
            _read { yield source.value }
            _modify { yield &source.value }
        }
        /// `body` with the op where it lies (a `_read` of `op` passed on copied it).
        func withOp<R>(_ body: (borrowing GuestOp) -> R) -> R { body(source.value) }
        /// The op's tree as values (causes filled in); `leaf` makes a metadata leaf's node (`TreeBuilder.tree(of:)`).
        func tree(_ leaf: (DecodedEvent) -> CausalNode) -> [CausalNode] { source.frozenChildren(leaf) }
        /// Gives its open tree's nodes back to `pool` (`TreeBuilder.recycle(_:)`).
        mutating func recycle(into pool: NodePool) { pool.recycle(&source.children) }
    }

    /// A handed-on op's tree as values (causes filled in).
    func tree(of op: HandedOp) -> [CausalNode] { op.tree(probeNode) }

    /// Takes back the nodes of a counted op's tree for new trees (`NodePool`): call once the op
    /// and its summary are counted and its tree, if kept, is made (`tree(of:)`). In place: the op
    /// passed on (consumed) was moved once more, 212 bytes.
    func recycle(_ op: inout HandedOp) { op.recycle(into: pool) }

    private mutating func hand(_ op: consuming Op) -> HandedOp {
        // Taken out of the table already: nothing can reach it by id any more.
        op.endCauses()
        // Groups (open, close ...) name their syncs after the group already; only requests are renamed.
        if op.value.isGuestRequest, !op.touchedQcow2, let format = op.value.format, format != "qcow2", format != "vmdk" {
            // Another format driver (vhdx, qed, vdi ...) made these syncs: none is qcow2's, and a
            // full flush inside its write is its own metadata flush unless QEMU writes through.
            let writesThrough = self.writesThrough
            op.renameCauses { c in
                c.isQcow2Metadata || (c == .writethrough && writesThrough != true) ? .formatMetadata : c
            }
        }
        resolver.forget(op)
        return HandedOp(op)
    }

    /// The ops not handed on yet that have ended for now (no sync they started is still open),
    /// as they stand, in start order, each with the summary of its tree (no tree is made: a live
    /// view takes a snapshot per record it reads): a live view counts them with their syncs, and
    /// counts them again as they are then, if more work arrives for them.
    func endedLiveOps() -> [(op: GuestOp, summary: OpSummary)] {
        ops.ids.filter { !linker.isWaiting($0) }.map { id in
            let op = ops[id]
            return op.asIfFullFlushEnded { (op.value, OpSummary(op)) }
        }
    }

    /// Closes what is still open (a sync whose exit was not captured, now in `drainUnattributed`);
    /// `handOldest()` then hands on the ops not handed on yet.
    mutating func finish() { linker.finish() }

    /// Hands on the oldest op whatever it waits for (at the end of the capture); nil when none is left.
    mutating func handOldest() -> HandedOp? {
        guard ops.count > 0 else { return nil }
        return hand(ops.removeOldest())
    }
}

extension NodeDetails {
    init(job: UInt64) {
        self.init()
        self.job = job
    }

    init(node: UInt64) {
        self.init()
        self.node = node
    }

    init(fd: UInt32) {
        self.init()
        self.fd = fd
    }
}
