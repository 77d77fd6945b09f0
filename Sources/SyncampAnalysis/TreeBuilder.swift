import SyncampCapture

/// Builds causal trees from time-ordered events: guest op -> qcow2 work -> thread-pool hand-off -> host sync.
///
/// Placement rules (v1):
/// - A guest request probe opens an op; QEMU work on submitting threads goes
///   under the latest op (qemu-io runs one request at a time; overlapping
///   requests need coroutine identity, issue 3). Work before the first request
///   forms an `image_open` group; `blk_unref`/`bdrv_close_all` open an
///   `image_close` group.
/// - A flush job handed to the thread pool is linked to its worker by pointer:
///   `thread_pool_submit_aio`'s `arg` is `handle_aiocb_flush`'s first argument.
///   Without `handle_aiocb_flush` (stock binaries) the worker's
///   `qemu_fdatasync(fd)` takes the oldest pending flush submit for that fd.
/// - A host fdatasync/fsync goes under the job running on its thread; its exit
///   pairs with its entry on the same thread (a system call cannot migrate).
/// - Anything that cannot be placed is kept in `unattributed` with a reason.
struct TreeBuilder {
    final class Node {
        var value: CausalNode
        var children: [Node] = []
        init(_ value: CausalNode) { self.value = value }
        func frozen() -> CausalNode {
            var v = value
            v.children = children.map { $0.frozen() }
            return v
        }
    }

    final class Op {
        var value: GuestOp
        var children: [Node] = []
        init(_ value: GuestOp) { self.value = value }
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
    private(set) var ops: [Op] = []
    private(set) var unattributed: [(CausalNode, String)] = []
    private(set) var hostSyncs = 0
    private(set) var uprobeHits: [Int: Int] = [:]
    private var current: Op?
    private var pendingByArg: [UInt64: PendingSubmit] = [:]
    private var pendingFIFO: [UInt64] = []
    private var job: [UInt32: (node: Node, op: Op)] = [:]
    private var openSyscall: [UInt32: (node: Node, op: Op?, start: UInt64)] = [:]

    static let qemuAIOFlush: UInt64 = 8

    init(probes: ProbeIndex, origin: UInt64) {
        self.probes = probes
        self.origin = origin
    }

    mutating func add(_ e: Event) {
        switch e.kind {
        case .uprobe: uprobe(e)
        case .syscallEnter: syscallEnter(e)
        case .syscallExit: syscallExit(e)
        case nil: break
        }
    }

    private func rel(_ t: UInt64) -> UInt64 { t >= origin ? t - origin : 0 }

    private mutating func newOp(_ kind: GuestOp.Kind, _ e: Event, entry: String, offset: UInt64 = 0, bytes: UInt64 = 0) -> Op {
        let op = Op(GuestOp(index: ops.count, kind: kind, offset: offset, bytes: bytes, startNs: rel(e.timestamp),
                            endNs: rel(e.timestamp), tid: e.tid, entry: entry, children: [], probeHits: 0))
        ops.append(op)
        return op
    }

    /// The op that receives work on submitting threads; an `image_open` group before any request.
    private mutating func currentOp(_ e: Event) -> Op {
        if let c = current { return c }
        let op = newOp(.imageOpen, e, entry: "(before the first guest request)")
        current = op
        return op
    }

    private mutating func uprobe(_ e: Event) {
        uprobeHits[Int(e.probeID), default: 0] += 1
        guard let entry = probes.entry(e), let role = entry.role else { return }
        let t = rel(e.timestamp)
        switch role {
        case .guestWriteAIO:
            current = newOp(.write, e, entry: entry.symbol, offset: e.args[1], bytes: probes.value("bytes", of: e) ?? 0)
        case .guestWriteCo:
            current = newOp(.write, e, entry: entry.symbol, offset: e.args[1], bytes: e.args[2])
        case .guestFlushAIO, .guestFlushCo:
            current = newOp(.flush, e, entry: entry.symbol)
        case .backendUnref where !ops.contains(where: \.value.isGuestRequest):
            // Opening an image releases temporary BlockBackends: still open work.
            let op = currentOp(e)
            op.value.probeHits += 1
        case .backendUnref, .closeAll:
            if current?.value.kind != .imageClose {
                current = newOp(.imageClose, e, entry: entry.symbol)
            }
            current?.value.probeHits += 1
        case .threadPoolSubmit:
            submit(e, entry)
        case .workerFlush:
            workerFlush(e, entry)
        case .qemuFdatasync:
            qemuFdatasync(e, entry)
        case .qcow2Write, .qcow2CacheWrite, .qcow2CacheEntryFlush, .qcow2WriteL1Entry, .nodeFlush:
            let op = currentOp(e)
            op.value.probeHits += 1
            op.add(Node(CausalNode(kind: role.rawValue, timeNs: t, tid: e.tid, symbol: entry.symbol,
                                   details: details(role, e))), at: t)
        }
        if role.isGuestRequest { current?.value.probeHits += 1 }
    }

    private func details(_ role: ProbeRole, _ e: Event) -> [String: String] {
        switch role {
        case .qcow2Write:
            // qcow2_alloc_host_offset (the stock fallback) takes a pointer to the byte count.
            if probes.entry(e)?.isFallback == true { return ["offset": String(e.args[1])] }
            return ["offset": String(e.args[1]), "bytes": String(e.args[2])]
        case .qcow2CacheWrite, .qcow2CacheEntryFlush:
            var d: [String: String] = ["cache": cacheName(e.args[1], e)]
            if let dep = probes.value("depends", of: e), dep != 0 { d["depends"] = cacheName(dep, e) }
            if let dof = probes.value("depends_on_flush", of: e), dof & 0xff != 0 { d["depends_on_flush"] = "true" }
            if role == .qcow2CacheEntryFlush { d["index"] = String(e.args[2] & 0xffff_ffff) }
            return d
        case .qcow2WriteL1Entry:
            return ["l1_index": String(e.args[1] & 0xffff_ffff)]
        default:
            return [:]
        }
    }

    /// "l2" or "refcount" when the pointer matches the image's caches, else "unknown".
    private func cacheName(_ ptr: UInt64, _ e: Event) -> String {
        if let l2 = probes.value("l2_table_cache", of: e), l2 == ptr { return "l2" }
        if let rc = probes.value("refcount_block_cache", of: e), rc == ptr { return "refcount" }
        return "unknown"
    }

    private mutating func submit(_ e: Event, _ entry: ProbeIndex.Entry) {
        // Only flush jobs lead to host syncs; read/write jobs are not tracked.
        guard probes.value("aio_type", of: e).map({ $0 & 0xffff_ffff }) == Self.qemuAIOFlush else { return }
        let op = currentOp(e)
        op.value.probeHits += 1
        let t = rel(e.timestamp)
        let fd = probes.value("fd", of: e).map { $0 & 0xffff_ffff }
        var d = ["arg": hex(e.args[2])]
        if let fd { d["fd"] = String(fd) }
        if let co = probes.value("coroutine", of: e) { d["coroutine"] = hex(co) }
        let node = Node(CausalNode(kind: "thread_pool_submit", timeNs: t, tid: e.tid, symbol: entry.symbol, details: d))
        op.add(node, at: t)
        pendingByArg[e.args[2]] = PendingSubmit(node: node, op: op, fd: fd)
        pendingFIFO.append(e.args[2])
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
        if let p = takePending(arg: e.args[0]) {
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
        } else if let c = current, c.value.tid == e.tid {
            c.add(node, at: t)
            c.value.probeHits += 1
            job[e.tid] = (node, c)
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
        } else if let c = current, c.value.tid == e.tid {
            c.add(node, at: t)
            op = c
        }
        // A sync still open on this thread lost its exit: keep it rather than overwrite it.
        if let stale = openSyscall[e.tid], stale.op == nil {
            unattributed.append((stale.node.frozen(), "\(stale.node.value.symbol ?? "sync") on thread \(e.tid) ran outside any QEMU flush job or request (no exit captured)"))
        }
        // Without an op, the sync goes to `unattributed` at its exit, with its latency.
        openSyscall[e.tid] = (node, op, e.timestamp)
    }

    private mutating func syscallExit(_ e: Event) {
        guard let open = openSyscall.removeValue(forKey: e.tid) else { return }
        open.node.value.latencyNs = e.timestamp >= open.start ? e.timestamp - open.start : 0
        open.node.value.returnValue = Int64(bitPattern: e.args[0])
        if let op = open.op {
            op.touch(rel(e.timestamp))
        } else {
            unattributed.append((open.node.frozen(), "\(open.node.value.symbol ?? "sync") on thread \(e.tid) ran outside any QEMU flush job or request"))
        }
        job[e.tid] = nil
    }

    /// Closes what is still open (a sync whose exit was not captured) and returns the trees.
    mutating func finish() -> (ops: [GuestOp], unattributed: [(CausalNode, String)]) {
        for (tid, open) in openSyscall where open.op == nil {
            unattributed.append((open.node.frozen(), "sync on thread \(tid) ran outside any QEMU flush job or request (no exit captured)"))
        }
        openSyscall.removeAll()
        let frozen = ops.map { op -> GuestOp in
            var v = op.value
            v.children = op.children.map { $0.frozen() }
            return v
        }
        return (frozen, unattributed)
    }

    private func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
}
