import SyncampCapture

/// Builds causal trees from time-ordered events: guest op -> qcow2 work -> thread-pool hand-off -> host sync.
///
/// Placement rules:
/// - QEMU work on a submitting thread goes to the op that owns the coroutine
///   it ran in (`OpResolver`). Without coroutine information it goes to the
///   latest op, which is exact only for one request at a time.
/// - A host sync started by `raw_co_flush_to_disk(bs)` is linked to the next
///   sync on that node's fd (its worker's fdatasync, found by fd, or by
///   `handle_aiocb_flush`'s aiocb->bs), or to the io_uring fsync the same
///   request submits next. Flushes of one node are serialized by
///   `bdrv_co_flush`, so one is pending per node at most.
/// - Without it (stock binaries), a flush job handed to the thread pool is linked to its worker by pointer:
///   `thread_pool_submit_aio`'s `arg` is `handle_aiocb_flush`'s first argument.
///   Without `handle_aiocb_flush` (stock binaries) the worker's
///   `qemu_fdatasync(fd)` takes the oldest pending flush submit for that fd.
/// - A host fdatasync/fsync goes under the job running on its thread; its exit
///   pairs with its entry on the same thread (a system call cannot migrate).
/// - Each sync's cause comes from the op's `CauseTracker` at submit time.
/// - Anything that cannot be placed is kept in `unattributed` with a reason.
struct TreeBuilder {
    final class Node {
        var value: CausalNode
        var children: [Node] = []
        /// Host syncs take their cause from the slot of the submit they descend from.
        var slot: CauseTracker.Slot?
        init(_ value: CausalNode, slot: CauseTracker.Slot? = nil) {
            self.value = value
            self.slot = slot
        }

        func frozen(inherited: CauseTracker.Slot? = nil) -> CausalNode {
            var v = value
            let slot = self.slot ?? inherited
            if v.kind == CausalNode.hostSyncKind, v.cause == nil { v.cause = slot?.cause }
            v.children = children.map { $0.frozen(inherited: slot) }
            return v
        }
    }

    final class Op {
        var value: GuestOp
        var children: [Node] = []
        let causes: CauseTracker
        /// Set once the op has been handed on: it takes no more work.
        var retired = false
        /// Coroutines bound to it, and the opaque it waited for, to forget when it retires.
        var coroutines: [UInt64] = []
        var opaqueKey: UInt64?
        /// USDT captures: a guest flush inferred from cache write-backs, and whether it has written back the refcount cache.
        var inferredFlush = false
        var flushWroteRefcounts = false
        init(_ value: GuestOp, causes: CauseTracker) {
            self.value = value
            self.causes = causes
        }
        func add(_ n: Node, at t: UInt64) {
            children.append(n)
            touch(t)
        }
        func touch(_ t: UInt64) { value.endNs = max(value.endNs, t) }
    }

    struct PendingSubmit {
        var node: Node
        var op: Op
        var fd: UInt64?
    }

    let probes: ProbeIndex
    let origin: UInt64
    /// Ops not yet handed on, in index order.
    private(set) var live: [Op] = []
    private var liveHead = 0
    private var nextIndex = 0
    private var sawGuestRequest = false
    /// Ops held, not yet handed on.
    var liveCount: Int { live.count - liveHead }
    /// Ops handed on while still waiting for a sync, because too many were in flight.
    private(set) var forcedRetirements = 0
    private(set) var unattributed: [(CausalNode, String)] = []
    private(set) var hostSyncs = 0
    private(set) var uprobeHits: [Int: Int] = [:]
    /// Counts that show probes reading the wrong places (ProbeSelfCheck).
    private(set) var selfCheck = ProbeSelfCheck()
    private var resolver: OpResolver
    private var pendingByArg: [UInt64: PendingSubmit] = [:]
    private var pendingFIFO: [UInt64] = []
    /// `raw_co_flush_to_disk` calls waiting for their sync, by file node.
    private var pendingRaw: [UInt64: PendingSubmit] = [:]
    private var job: [UInt32: (node: Node, op: Op)] = [:]
    private var openSyscall: [UInt32: (node: Node, op: Op?, start: UInt64)] = [:]
    private let hasEntryFlushProbe: Bool
    /// USDT captures infer guest flushes (see `inferFlush`); the coroutine of the running request.
    private let inferFlushes: Bool
    /// Whether a probe on the worker side (handle_aiocb_flush, qemu_fdatasync) links syncs to flush jobs.
    private let hasWorkerProbe: Bool
    /// USDT events waiting, per thread, for the next event that names the coroutine.
    private var held: [UInt32: [Event]] = [:]
    /// io_uring fsyncs in flight, by ring (args[0]) and user_data (args[2]): what every kernel's
    /// submit and complete events both carry (`req` is missing from one or both before 6.0).
    private var pendingUring: [(ring: UInt64, userData: UInt64, node: Node, op: Op?, start: UInt64)] = []
    let storage: StorageLinker
    /// Block devices opened as images (`host_device`), by path, and the device behind each synced fd.
    private let blockDevices: [String: UInt32]
    private var deviceOfFD: [UInt64: UInt32] = [:]

    static let qemuAIOFlush = QemuABI.aioFlush
    /// BDRV_REQ_ZERO_WRITE and BDRV_REQ_MAY_UNMAP (include/block/block-common.h: 0x2, 0x4).
    static let zeroWriteFlag: UInt64 = 0x2
    static let mayUnmapFlag: UInt64 = 0x4
    /// `format_name` of the file protocol node, as the 8 little-endian bytes the probe reads.
    static let fileFormat: UInt64 = 0x656c_6966  // "file"

    /// - Parameter blockDevices: block devices the target opens as images, path -> dev_t (the manifest's
    ///   `block_device` devices): their host syncs take the device's flushes, with no file system between.
    init(probes: ProbeIndex, origin: UInt64, coroutines: Bool, blockDevices: [String: UInt32] = [:]) {
        self.blockDevices = blockDevices
        self.storage = StorageLinker(blockImages: Set(blockDevices.values))
        self.probes = probes
        self.origin = origin
        self.resolver = OpResolver(useCoroutines: coroutines)
        self.hasEntryFlushProbe = probes.has(.qcow2CacheEntryFlush)
        self.hasWorkerProbe = probes.has(.workerFlush) || probes.has(.qemuFdatasync)
        self.inferFlushes = probes.isUSDT && !probes.has(.guestFlushCo) && !probes.has(.guestFlushAIO)
    }

    mutating func add(_ e: Event) {
        if probes.isUSDT {
            addUSDT(e)
        } else {
            dispatch(e)
        }
    }

    /// USDT captures: events name their coroutine in their arguments, and those that do not
    /// (`blk_co_pwritev`, the L1 entry) wait for the next event on their thread that does: the
    /// request's qcow2 entry, the L1 entry's own write, which follow without a yield.
    private mutating func addUSDT(_ e: Event) {
        guard e.kind == .uprobe, let entry = probes.entry(e) else {
            if held[e.tid] != nil { release(e.tid, coroutine: 0) }
            dispatch(e)
            return
        }
        switch entry.coroutineFrom {
        case "next"?:
            held[e.tid, default: []].append(e)
            // Never more than a few in a row; a thread that names no coroutine must not grow memory.
            if held[e.tid]!.count > 64 { release(e.tid, coroutine: 0) }
        case .some:
            var named = e
            named.coroutine = probes.coroutine(of: e) ?? 0
            release(e.tid, coroutine: named.coroutine)
            dispatch(named)
        case nil:
            release(e.tid, coroutine: 0)
            dispatch(e)
        }
    }

    /// Hands on the events held for a thread, with the coroutine they were waiting for.
    private mutating func release(_ tid: UInt32, coroutine: UInt64) {
        guard let events = held.removeValue(forKey: tid) else { return }
        for var e in events {
            e.coroutine = coroutine
            dispatch(e)
        }
    }

    private mutating func dispatch(_ e: Event) {
        switch e.kind {
        case .uprobe: uprobe(e)
        case .syscallEnter: syscallEnter(e)
        case .syscallExit: syscallExit(e)
        case .uringSubmit: uringSubmit(e)
        case .uringComplete: uringComplete(e)
        case .fsSyncEnter, .fsSyncExit, .journalStart, .journalFlushing, .journalEnd, .journalStats,
             .deviceIssue, .deviceComplete:
            storage.add(e, rel(e.timestamp), openSync: { tid in self.openSyscall[tid]?.node }, pendingUring: { self.pendingUring.first?.node })
        case nil: break
        }
    }

    /// Learns which synced fds are block devices opened as images.
    mutating func fdPath(_ p: FDPath) {
        guard !blockDevices.isEmpty else { return }
        deviceOfFD[UInt64(p.fd)] = blockDevices[p.path]
    }

    /// An io_uring fsync (aio=io_uring): a host sync with no fdatasync system call.
    private mutating func uringSubmit(_ e: Event) {
        hostSyncs += 1
        let t = rel(e.timestamp)
        let node = Node(CausalNode(kind: CausalNode.hostSyncKind, timeNs: t, tid: e.tid, symbol: "io_uring_fsync",
                                   details: ["syscall": "io_uring_fsync", "user_data": hex(e.args[2])]))
        if let op = resolver.owner(of: e) {
            // raw_co_flush_to_disk of this request went to io_uring: the fsync is its sync.
            if let bs = pendingRaw.first(where: { $0.value.op === op })?.key, let raw = pendingRaw.removeValue(forKey: bs) {
                // The file node's fd (read at raw_co_flush_to_disk) names the image, as a system call's does.
                if let fd = raw.fd { node.value.details["fd"] = String(fd) }
                raw.node.children.append(node)
                op.touch(t)
            } else {
                node.slot = op.causes.submit()
                op.add(node, at: t)
            }
            pendingUring.append((e.args[0], e.args[2], node, op, e.timestamp))
        } else {
            pendingUring.append((e.args[0], e.args[2], node, nil, e.timestamp))
        }
    }

    private mutating func uringComplete(_ e: Event) {
        guard let i = pendingUring.firstIndex(where: { $0.ring == e.args[0] && $0.userData == e.args[2] }) else { return }
        let p = pendingUring.remove(at: i)
        storage.hostSyncEnded(p.node, at: e.timestamp)
        p.node.value.latencyNs = e.timestamp >= p.start ? e.timestamp - p.start : 0
        p.node.value.returnValue = Int64(Int32(truncatingIfNeeded: e.args[3]))
        if let op = p.op {
            op.touch(rel(e.timestamp))
        } else {
            unattributed.append((unplaced(p.node), "io_uring fsync request \(hex(e.args[2])) submitted outside any QEMU request"))
        }
    }

    private func rel(_ t: UInt64) -> UInt64 { t >= origin ? t - origin : 0 }

    private mutating func newOp(_ kind: GuestOp.Kind, _ e: Event, entry: String, offset: UInt64 = 0, bytes: UInt64 = 0) -> Op {
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
        }
        let op = Op(GuestOp(index: nextIndex, kind: kind, offset: offset, bytes: bytes, startNs: rel(e.timestamp),
                            endNs: rel(e.timestamp), tid: e.tid, entry: entry, children: [], probeHits: 0),
                    causes: CauseTracker(finalCause: final, hasEntryFlushProbe: hasEntryFlushProbe,
                                         // A resize's plain cache flushes are qcow2_update_options' (it recomputes the cache sizes).
                                         plainCacheFlush: kind == .truncate ? .cacheReconfigure : .l2TableAlloc,
                                         looksUpClusters: kind == .write || kind == .writeZeroes || kind == .discard))
        if kind.isGuestRequest { op.value.backend = e.args[0] }
        nextIndex += 1
        if op.value.isGuestRequest { sawGuestRequest = true }
        live.append(op)
        return op
    }

    /// The op a submitting-thread event belongs to (a group is made when none owns it).
    private mutating func owner(_ e: Event) -> Op {
        if let op = resolver.owner(of: e) { return op }
        let kind: GuestOp.Kind = sawGuestRequest ? .housekeeping : .imageOpen
        let entry = kind == .imageOpen ? "(before the first guest request)" : "(outside any guest request)"
        let group = newOp(kind, e, entry: entry)
        resolver.setGroup(group)
        return group
    }

    private mutating func uprobe(_ e: Event) {
        uprobeHits[Int(e.probeID), default: 0] += 1
        resolver.observe(e)
        guard let entry = probes.entry(e), let role = entry.role else { return }
        let t = rel(e.timestamp)
        if inferFlushes { inferFlush(role, e) }
        // The op this probe hit is counted for.
        let hitOp: Op?
        // Requests a qcow2 image creation makes through its own BlockBackend (header, resize) and
        // the release of that BlockBackend are part of the creation, not guest requests or a close.
        if role.isGuestRequest || role == .backendUnref, e.coroutine != 0,
           let create = resolver.boundOwner(of: e.coroutine), create.value.kind == .imageCreate {
            create.value.probeHits += 1
            create.touch(t)
            return
        }
        switch role {
        case .imageCreate:
            let op = newOp(.imageCreate, e, entry: entry.symbol)
            resolver.start(op, e, inRequestCoroutine: true)
            hitOp = op
        case .guestWriteAIO:
            let op = newOp(.write, e, entry: entry.symbol, offset: e.args[1], bytes: probes.value("bytes", of: e) ?? 0)
            resolver.start(op, e, inRequestCoroutine: false, opaque: e.args[5])  // (blk, offset, qiov, flags, cb, opaque)
            hitOp = op
        case .guestWriteCo:
            // blk_co_pwrite_zeroes reaches blk_co_do_pwritev_part with BDRV_REQ_ZERO_WRITE (flags, the 6th argument).
            let flags = entry.symbol == "blk_co_do_pwritev_part" || entry.symbol == "blk_co_pwritev_part" ? e.args[5] : 0
            let zero = flags & Self.zeroWriteFlag != 0
            let op = newOp(zero ? .writeZeroes : .write, e, entry: entry.symbol, offset: e.args[1], bytes: e.args[2])
            if zero { op.value.unmap = flags & Self.mayUnmapFlag != 0 }
            resolver.start(op, e, inRequestCoroutine: OpResolver.runsInRequestCoroutine(entry.symbol))
            hitOp = op
        case .guestDiscardCo:
            let op = newOp(.discard, e, entry: entry.symbol, offset: e.args[1], bytes: e.args[2])
            resolver.start(op, e, inRequestCoroutine: true)
            hitOp = op
        case .guestDiscardAIO:
            let op = newOp(.discard, e, entry: entry.symbol, offset: e.args[1], bytes: e.args[2])
            resolver.start(op, e, inRequestCoroutine: false, opaque: e.args[4])  // (blk, offset, bytes, cb, opaque)
            hitOp = op
        case .guestTruncateCo:
            // `offset` is the new size in bytes.
            let op = newOp(.truncate, e, entry: entry.symbol, offset: e.args[1])
            resolver.start(op, e, inRequestCoroutine: true)
            hitOp = op
        case .guestFlushAIO:
            let op = newOp(.flush, e, entry: entry.symbol)
            resolver.start(op, e, inRequestCoroutine: false, opaque: e.args[2])  // (blk, cb, opaque)
            hitOp = op
        case .guestFlushCo:
            let op = newOp(.flush, e, entry: entry.symbol)
            resolver.start(op, e, inRequestCoroutine: OpResolver.runsInRequestCoroutine(entry.symbol))
            hitOp = op
        case .backendUnref where !sawGuestRequest:
            // Opening an image releases temporary BlockBackends: still open work.
            hitOp = owner(e)
        case .backendUnref, .closeAll:
            if resolver.group?.value.kind != .imageClose {
                resolver.close(newOp(.imageClose, e, entry: entry.symbol))
            }
            hitOp = resolver.group
        case .qcow2WriteDone:
            // The write is over: its pooled coroutine may next serve a flush.
            let op = resolver.boundOwner(of: e.coroutine)
            if let op, op.value.kind == .write || op.value.kind == .writeZeroes { resolver.unbind(e.coroutine) }
            hitOp = op
        case .rawFlush:
            rawFlush(e, entry)
            return
        case .threadPoolSubmit:
            submit(e, entry)
            return
        case .workerFlush:
            workerFlush(e, entry)
            return
        case .qemuFdatasync:
            qemuFdatasync(e, entry)
            return
        case .qcow2Write, .qcow2CacheWrite, .qcow2CacheEntryFlush, .qcow2WriteL1Entry, .nodeFlush,
             .qcow2SetDependency, .qcow2MarkDirty, .qcow2GrowL1, .qcow2RefcountArea, .pwriteSync,
             .vmdkWrite, .vmdkGrainTableUpdate:
            let op = owner(e)
            track(role, e, in: op.causes)
            if role == .vmdkWrite || role == .vmdkGrainTableUpdate { op.value.format = "vmdk" }
            // A flush of a format node other than qcow2 (vmdk, vdi, qed ...) names the op's format.
            if role == .nodeFlush, let f = probes.value("format", of: e).map(formatName), f != "file", f != "qcow2", f != "?" {
                op.value.format = f
            }
            op.add(Node(CausalNode(kind: role.rawValue, timeNs: t, tid: e.tid, symbol: entry.symbol,
                                   details: details(role, e))), at: t)
            hitOp = op
        }
        hitOp?.value.probeHits += 1
    }

    /// USDT captures: a guest flush has no trace event of its own. qcow2's flush_to_os writes
    /// back the L2 cache, then the refcount cache (`qcow2_cache_flush(co, 1)`, then `(co, 0)`), in
    /// the flush request's coroutine. A write-back in a coroutine no request holds starts an
    /// inferred guest flush; so does an L2 write-back in a flush's coroutine after that flush
    /// wrote back its refcount cache (the pooled coroutine serves the next flush). Write
    /// requests free their coroutine at `qcow2_writev_done_req`. Not at open or close, whose
    /// work is grouped anyway.
    private mutating func inferFlush(_ role: ProbeRole, _ e: Event) {
        switch role {
        case .qcow2CacheWrite:
            let isL2 = e.args[1] == 1
            if let op = resolver.boundOwner(of: e.coroutine) {
                guard op.inferredFlush else { return }
                if !isL2 { op.flushWroteRefcounts = true; return }
                guard op.flushWroteRefcounts else { return }
            }
            guard sawGuestRequest, resolver.group.map({ $0.value.kind != .imageClose }) ?? true else { return }
            let op = newOp(.flush, e, entry: "qcow2_cache_flush (guest flush inferred: no trace event)")
            op.value.backend = 0
            op.inferredFlush = true
            op.flushWroteRefcounts = !isL2
            resolver.start(op, e, inRequestCoroutine: true)
            op.causes.nodeFlush(isFormatNode: true)
        default:
            break
        }
    }

    /// Feeds an op's cause tracker.
    private func track(_ role: ProbeRole, _ e: Event, in causes: CauseTracker) {
        switch role {
        case .qcow2Write:
            causes.qcow2Write()
        case .nodeFlush:
            let format = probes.value("format", of: e)
            causes.nodeFlush(isFormatNode: format.map { $0 & 0xffff_ffff_ff != Self.fileFormat } ?? false)
        case .qcow2CacheWrite:
            causes.cacheWrite(cache: e.args[1], depends: probes.value("depends", of: e) ?? 0,
                              dependencyCause: dependencyCause(cache: e.args[1], e), isRefcount: cacheName(e.args[1], e) == "refcount",
                              dependsOnFlush: (probes.value("depends_on_flush", of: e) ?? 0) & 0xff != 0)
        case .qcow2CacheEntryFlush:
            causes.entryFlush(cache: e.args[1], depends: probes.value("depends", of: e) ?? 0,
                              dependsOnFlush: (probes.value("depends_on_flush", of: e) ?? 0) & 0xff != 0,
                              dependencyCause: dependencyCause(cache: e.args[1], e))
        case .qcow2SetDependency:
            // qcow2-cache.c:270-291: flushes if the dependency has its own dependency,
            // or if the cache depends on another cache already.
            let depDepends = probes.value("dependency_depends", of: e) ?? 0
            let cDepends = probes.value("depends", of: e) ?? 0
            causes.setDependency(willFlush: depDepends != 0 || (cDepends != 0 && cDepends != e.args[2]))
        case .qcow2WriteL1Entry: causes.l1Entry()
        case .qcow2MarkDirty: causes.markDirty()
        case .qcow2GrowL1: causes.growL1()
        case .qcow2RefcountArea: causes.refcountArea()
        case .pwriteSync: causes.pwriteSync(offset: e.args[1])
        case .vmdkWrite: causes.vmdkWrite()
        case .vmdkGrainTableUpdate: causes.vmdkGrainTableUpdate()
        default: break
        }
    }

    /// F2 when the L2 cache waits on the refcount cache; F15 for the opposite (refcount waits on L2 after a decrease).
    private func dependencyCause(cache: UInt64, _ e: Event) -> Cause {
        cacheName(cache, e) == "refcount" ? .l2Dependency : .refcountDependency
    }

    private func details(_ role: ProbeRole, _ e: Event) -> [String: String] {
        var d: [String: String] = [:]
        if e.coroutine != 0 { d["co"] = hex(e.coroutine) }
        switch role {
        case .qcow2Write:
            d["offset"] = String(e.args[1])
            // qcow2_alloc_host_offset (the stock fallback) takes a pointer to the byte count.
            if probes.entry(e)?.isFallback != true { d["bytes"] = String(e.args[2]) }
        case .qcow2CacheWrite, .qcow2CacheEntryFlush:
            d["cache"] = cacheName(e.args[1], e)
            if let dep = probes.value("depends", of: e), dep != 0 { d["depends"] = cacheName(dep, e) }
            if let dof = probes.value("depends_on_flush", of: e), dof & 0xff != 0 { d["depends_on_flush"] = "true" }
            if role == .qcow2CacheEntryFlush { d["index"] = String(e.args[2] & 0xffff_ffff) }
        case .qcow2SetDependency:
            d["cache"] = cacheName(e.args[1], e)
            d["dependency"] = cacheName(e.args[2], e)
        case .qcow2WriteL1Entry:
            d["l1_index"] = String(e.args[1] & 0xffff_ffff)
        case .nodeFlush:
            if let f = probes.value("format", of: e) { d["node"] = formatName(f) }
        case .pwriteSync:
            d["offset"] = String(e.args[1])
            d["bytes"] = String(e.args[2])
        default:
            break
        }
        return d
    }

    /// "l2" or "refcount" when the pointer matches the image's caches, else "unknown".
    private func cacheName(_ ptr: UInt64, _ e: Event) -> String {
        if let l2 = probes.value("l2_table_cache", of: e), l2 == ptr { return "l2" }
        if let rc = probes.value("refcount_block_cache", of: e), rc == ptr { return "refcount" }
        return "unknown"
    }

    private func formatName(_ v: UInt64) -> String {
        let bytes = withUnsafeBytes(of: v.littleEndian) { Array($0) }.prefix { $0 != 0 }
        return bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) ? String(decoding: bytes, as: UTF8.self) : "?"
    }

    private mutating func submit(_ e: Event, _ entry: ProbeIndex.Entry) {
        // Only flush jobs lead to host syncs; read/write jobs are not tracked.
        selfCheck.poolSubmits += 1
        if let t = probes.value("aio_type", of: e), !ProbeSelfCheck.isPossibleAIOType(t) { selfCheck.poolImpossibleAIOTypes += 1 }
        guard probes.value("aio_type", of: e).map({ $0 & 0xffff_ffff }) == Self.qemuAIOFlush else { return }
        selfCheck.poolFlushSubmits += 1
        if let fd = probes.value("fd", of: e), !ProbeSelfCheck.isPossibleFd(fd) { selfCheck.impossibleValues[.threadPoolSubmit, default: 0] += 1 }
        let op = owner(e)
        op.value.probeHits += 1
        let t = rel(e.timestamp)
        let fd = probes.value("fd", of: e).map { $0 & 0xffff_ffff }
        var d = ["arg": hex(e.args[2])]
        if let fd { d["fd"] = String(fd) }
        if let co = probes.value("coroutine", of: e) { d["coroutine"] = hex(co) }
        let node = Node(CausalNode(kind: "thread_pool_submit", timeNs: t, tid: e.tid, symbol: entry.symbol, details: d),
                        slot: op.causes.submit())
        op.add(node, at: t)
        pendingByArg[e.args[2]] = PendingSubmit(node: node, op: op, fd: fd)
        pendingFIFO.append(e.args[2])
    }

    /// `raw_co_flush_to_disk(bs)`: a host sync of the file node starts; its cause is fixed now, as at a thread-pool submit.
    private mutating func rawFlush(_ e: Event, _ entry: ProbeIndex.Entry) {
        let op = owner(e)
        op.value.probeHits += 1
        let t = rel(e.timestamp)
        let fd = probes.value("fd", of: e).map { $0 & 0xffff_ffff }
        if let fd, !ProbeSelfCheck.isPossibleFd(fd) { selfCheck.impossibleValues[.rawFlush, default: 0] += 1 }
        var d = ["bs": hex(e.args[0])]
        if let fd { d["fd"] = String(fd) }
        if e.coroutine != 0 { d["co"] = hex(e.coroutine) }
        let node = Node(CausalNode(kind: "flush_submit", timeNs: t, tid: e.tid, symbol: entry.symbol, details: d),
                        slot: op.causes.submit())
        op.add(node, at: t)
        // An earlier one of this node with no sync (fd_open failed) is replaced.
        pendingRaw[e.args[0]] = PendingSubmit(node: node, op: op, fd: fd)
    }

    /// The pending `raw_co_flush_to_disk` of the file with this fd.
    private mutating func takeRaw(fd: UInt64) -> PendingSubmit? {
        guard let bs = pendingRaw.first(where: { $0.value.fd == fd })?.key else { return nil }
        return pendingRaw.removeValue(forKey: bs)
    }

    private mutating func takePending(arg: UInt64) -> PendingSubmit? {
        guard let p = pendingByArg.removeValue(forKey: arg) else { return nil }
        if let i = pendingFIFO.firstIndex(of: arg) { pendingFIFO.remove(at: i) }
        return p
    }

    private mutating func workerFlush(_ e: Event, _ entry: ProbeIndex.Entry) {
        let t = rel(e.timestamp)
        let node = Node(CausalNode(kind: "worker_flush", timeNs: t, tid: e.tid, symbol: entry.symbol,
                                   details: ["arg": hex(e.args[0])]))
        if let p = takePending(arg: e.args[0]) ?? probes.value("bs", of: e).flatMap({ pendingRaw.removeValue(forKey: $0) }) {
            p.node.children.append(node)
            p.op.touch(t)
            p.op.value.probeHits += 1
            job[e.tid] = (node, p.op)
        } else {
            job[e.tid] = nil
            unattributed.append((node.frozen(), "worker flush job \(hex(e.args[0])) has no thread_pool_submit_aio in the capture (submitted before the capture started?)"))
        }
    }

    private mutating func qemuFdatasync(_ e: Event, _ entry: ProbeIndex.Entry) {
        let t = rel(e.timestamp)
        let fd = e.args[0] & 0xffff_ffff
        let node = Node(CausalNode(kind: "qemu_fdatasync", timeNs: t, tid: e.tid, symbol: entry.symbol,
                                   details: ["fd": String(fd)]))
        if let j = job[e.tid] {
            j.node.children.append(node)
            j.op.touch(t)
            j.op.value.probeHits += 1
            job[e.tid] = (node, j.op)
        } else if !probes.has(.workerFlush),
                  let arg = pendingFIFO.first(where: { pendingByArg[$0]?.fd == nil || pendingByArg[$0]?.fd == fd }),
                  let p = takePending(arg: arg) {
            p.node.children.append(node)
            p.op.touch(t)
            p.op.value.probeHits += 1
            job[e.tid] = (node, p.op)
        } else if let op = resolver.owner(of: e), resolver.useCoroutines || op.value.tid == e.tid {
            op.add(node, at: t)
            op.value.probeHits += 1
            job[e.tid] = (node, op)
        } else {
            unattributed.append((node.frozen(), "qemu_fdatasync on thread \(e.tid) outside any known flush job"))
        }
    }

    private mutating func syscallEnter(_ e: Event) {
        hostSyncs += 1
        let t = rel(e.timestamp)
        let name = Syscall(rawValue: e.probeID)?.description ?? "sync"
        let node = Node(CausalNode(kind: CausalNode.hostSyncKind, timeNs: t, tid: e.tid, symbol: name,
                                   details: ["fd": String(e.args[0] & 0xffff_ffff), "syscall": name]))
        var op: Op?
        if let j = job[e.tid] {
            j.node.children.append(node)
            j.op.touch(t)
            op = j.op
        } else if let p = takeRaw(fd: e.args[0] & 0xffff_ffff) {
            p.node.children.append(node)
            p.op.touch(t)
            op = p.op
        } else if !hasWorkerProbe,
                  let arg = pendingFIFO.first(where: { pendingByArg[$0]?.fd == nil || pendingByArg[$0]?.fd == e.args[0] & 0xffff_ffff }),
                  let p = takePending(arg: arg) {
            // No probe on the worker side (USDT captures): the oldest flush job for this fd is this sync's.
            p.node.children.append(node)
            p.op.touch(t)
            op = p.op
        } else if let o = resolver.owner(of: e), resolver.useCoroutines || o.value.tid == e.tid {
            // A sync made directly on a request's thread, not through the thread pool.
            node.value.cause = o.causes.finalCause
            o.add(node, at: t)
            op = o
        }
        // A sync still open on this thread lost its exit: keep it rather than overwrite it.
        if let stale = openSyscall[e.tid], stale.op == nil {
            unattributed.append((unplaced(stale.node), "\(stale.node.value.symbol ?? "sync") on thread \(e.tid) ran outside any QEMU flush job or request (no exit captured)"))
        }
        // Without an op, the sync goes to `unattributed` at its exit, with its latency.
        openSyscall[e.tid] = (node, op, e.timestamp)
        if let dev = deviceOfFD[e.args[0] & 0xffff_ffff] { storage.blockDeviceSyncStarted(node, dev: dev) }
    }

    private mutating func syscallExit(_ e: Event) {
        guard let open = openSyscall.removeValue(forKey: e.tid) else { return }
        storage.hostSyncEnded(open.node, at: e.timestamp)
        open.node.value.latencyNs = e.timestamp >= open.start ? e.timestamp - open.start : 0
        open.node.value.returnValue = Int64(bitPattern: e.args[0])
        if let op = open.op {
            op.touch(rel(e.timestamp))
        } else {
            unattributed.append((unplaced(open.node), "\(open.node.value.symbol ?? "sync") on thread \(e.tid) ran outside any QEMU flush job or request"))
        }
        job[e.tid] = nil
    }

    private func unplaced(_ node: Node) -> CausalNode {
        node.value.cause = .unattributed
        return node.frozen()
    }

    /// Hands on the oldest ops that can take no more work, in index order.
    ///
    /// An op is done when no sync it started is still open and nothing was
    /// placed under it for `quietNs` of capture time. The oldest op is also
    /// handed on when more than `maxLive` are held (it is then counted in
    /// `forcedRetirements`), so memory stays bounded whatever the capture holds.
    mutating func retire(now: UInt64, quietNs: UInt64, maxLive: Int) -> [GuestOp] {
        var out: [GuestOp] = []
        let t = rel(now)
        while liveHead < live.count {
            let op = live[liveHead]
            let quiet = t >= op.value.endNs && t - op.value.endNs >= quietNs
            let waiting = isWaiting(op)
            guard (quiet && !waiting) || live.count - liveHead > maxLive else { break }
            if waiting { forcedRetirements += 1 }
            out.append(hand(op))
            liveHead += 1
        }
        if liveHead > 1024 && liveHead * 2 > live.count {
            live.removeFirst(liveHead)
            liveHead = 0
        }
        return out
    }

    /// Nodes that could not be placed so far, with the reason; the builder forgets them.
    mutating func drainUnattributed() -> [(CausalNode, String)] {
        defer { unattributed.removeAll(keepingCapacity: true) }
        return unattributed
    }

    /// Whether a sync or job this op started is still open.
    private func isWaiting(_ op: Op) -> Bool {
        pendingByArg.values.contains { $0.op === op } || pendingRaw.values.contains { $0.op === op }
            || job.values.contains { $0.op === op } || openSyscall.values.contains { $0.op === op }
            || pendingUring.contains { $0.op === op }
    }

    private mutating func hand(_ op: Op) -> GuestOp {
        op.causes.endOp()
        op.retired = true
        resolver.forget(op)
        var v = op.value
        v.children = op.children.map { $0.frozen() }
        return v
    }

    /// The ops not handed on yet that have ended for now (no sync they started is still open),
    /// as they stand, in start order: a live view counts them with their syncs, and counts
    /// them again as they are then, if more work arrives for them.
    func endedLiveOps() -> [GuestOp] {
        live[liveHead...].filter { !isWaiting($0) }.map { op in
            op.causes.asIfFullFlushEnded {
                var v = op.value
                v.children = op.children.map { $0.frozen() }
                return v
            }
        }
    }

    /// Closes what is still open (a sync whose exit was not captured) and returns the ops not handed on yet.
    mutating func finish() -> (ops: [GuestOp], unattributed: [(CausalNode, String)]) {
        for tid in held.keys.sorted() { release(tid, coroutine: 0) }
        for (tid, open) in openSyscall where open.op == nil {
            unattributed.append((unplaced(open.node), "sync on thread \(tid) ran outside any QEMU flush job or request (no exit captured)"))
        }
        openSyscall.removeAll()
        for p in pendingUring where p.op == nil {
            unattributed.append((unplaced(p.node), "io_uring fsync request \(hex(p.userData)) submitted outside any QEMU request (no completion captured)"))
        }
        pendingUring.removeAll()
        let rest = live[liveHead...].map { hand($0) }
        live.removeAll()
        liveHead = 0
        return (rest, drainUnattributed())
    }

    private func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
}
