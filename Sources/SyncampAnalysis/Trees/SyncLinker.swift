import SyncampCapture

/// Links each host sync to the QEMU work that asked for it, across threads and the kernel.
///
/// - A host sync started by `raw_co_flush_to_disk(bs)` is linked to the next
///   sync on that node's fd (its worker's fdatasync, found by fd, or by
///   `handle_aiocb_flush`'s aiocb->bs), or to the io_uring fsync the same
///   request submits next. Flushes of one node are serialized by
///   `bdrv_co_flush`, so one is pending per node at most.
/// - Without it (stock binaries), a flush job handed to the thread pool is linked to its
///   worker by pointer: `thread_pool_submit_aio`'s `arg` is `handle_aiocb_flush`'s first
///   argument. Without `handle_aiocb_flush` the worker's `qemu_fdatasync(fd)` (or, with no
///   worker-side probe at all, the system call) takes the oldest pending flush submit for that fd.
/// - A host fdatasync/fsync goes under the job running on its thread; its exit
///   pairs with its entry on the same thread (a system call cannot migrate).
/// - An io_uring fsync's completion pairs with its submit by ring and user_data.
///
/// It decides links, not causes: a linked sync takes its cause from the slot of the submit
/// it descends from (`CauseTracker`). What it cannot link it hands back as unattributed.
struct SyncLinker {
    struct Pending {
        var node: TreeBuilder.Node
        var op: TreeBuilder.OpID
        var fd: UInt32?
        /// When it came, among the raw flushes (`rawFlush`): of several that match a sync, the oldest is its.
        var order = 0
    }

    /// Whether a probe on the worker side (handle_aiocb_flush, qemu_fdatasync) links syncs to flush jobs.
    let hasWorkerProbe: Bool
    /// Whether `handle_aiocb_flush` is probed (else qemu_fdatasync links by fd, in order).
    let hasWorkerFlushProbe: Bool

    /// Flush jobs handed to the thread pool, by their RawPosixAIOData, and in submit order.
    private var pendingByArg: [UInt64: Pending] = [:]
    private var pendingFIFO: [UInt64] = []
    /// `raw_co_flush_to_disk` calls waiting for their sync, by file node.
    private var pendingRaw = SmallMap<UInt64, Pending>()
    /// Raw flushes seen so far (`Pending.order`).
    private var rawFlushes = 0
    /// The flush job each worker thread runs now.
    private var job = SmallMap<UInt32, (node: TreeBuilder.Node, op: TreeBuilder.OpID)>()
    /// Sync system calls in progress, by thread.
    private var openSyscall = SmallMap<UInt32, (node: TreeBuilder.Node, op: TreeBuilder.OpID?, start: UInt64)>()
    /// io_uring fsyncs in flight: what every kernel's submit and complete events both carry.
    private var pendingUring: [(ring: UInt64, userData: UInt64, node: TreeBuilder.Node, op: TreeBuilder.OpID?, start: UInt64)] = []
    /// What could not be linked, with the reason.
    private(set) var unattributed: [(CausalNode, String)] = []

    init(hasWorkerProbe: Bool, hasWorkerFlushProbe: Bool) {
        self.hasWorkerProbe = hasWorkerProbe
        self.hasWorkerFlushProbe = hasWorkerFlushProbe
    }

    /// The sync system call open on a thread (the file system's sync nests under it).
    func openSync(tid: UInt32) -> TreeBuilder.Node? { openSyscall[tid]?.node }
    /// The oldest io_uring fsync in flight (an io-wq worker's file-system sync nests under it).
    var uringInFlight: TreeBuilder.Node? { pendingUring.first?.node }

    // MARK: QEMU's side

    /// A flush job was handed to the thread pool (`thread_pool_submit_aio`).
    mutating func poolSubmit(_ node: TreeBuilder.Node, of op: TreeBuilder.OpID, job arg: UInt64, fd: UInt32?) {
        pendingByArg[arg] = Pending(node: node, op: op, fd: fd)
        pendingFIFO.append(arg)
    }

    /// `raw_co_flush_to_disk(bs)`: an earlier one of this node with no sync (fd_open failed) is replaced.
    mutating func rawFlush(_ node: TreeBuilder.Node, of op: TreeBuilder.OpID, node bs: UInt64, fd: UInt32?) {
        rawFlushes += 1
        pendingRaw[bs] = Pending(node: node, op: op, fd: fd, order: rawFlushes)
    }

    /// A worker starts a flush job (`handle_aiocb_flush(arg)`); returns the op it belongs to (the
    /// caller marks the op's work as going on: the linker holds op ids, not ops).
    mutating func workerFlush(_ node: TreeBuilder.Node, job arg: UInt64, node bs: UInt64?, tid: UInt32) -> TreeBuilder.OpID? {
        if let p = takePending(arg: arg) ?? bs.flatMap({ pendingRaw.removeValue(forKey: $0) }) {
            p.node.children.append(node)
            job[tid] = (node, p.op)
            return p.op
        }
        job[tid] = nil
        unattributed.append((node.frozen(), "worker flush job 0x\(String(arg, radix: 16)) has no thread_pool_submit_aio in the capture (submitted before the capture started?)"))
        return nil
    }

    /// `qemu_fdatasync(fd)` on a worker: the job running on its thread, or (without
    /// `handle_aiocb_flush`) the oldest pending flush job for its fd; nil when none claims it.
    mutating func linkQemuFdatasync(_ node: TreeBuilder.Node, fd: UInt32, tid: UInt32) -> TreeBuilder.OpID? {
        if let j = job[tid] {
            j.node.children.append(node)
            job[tid] = (node, j.op)
            return j.op
        }
        if !hasWorkerFlushProbe, let p = takeOldestPending(fd: fd) {
            p.node.children.append(node)
            job[tid] = (node, p.op)
            return p.op
        }
        return nil
    }

    /// A `qemu_fdatasync` no job claimed: it runs for `owner`, the op that owns its thread (the
    /// caller places the node under it), or is unattributed.
    mutating func adoptQemuFdatasync(_ node: TreeBuilder.Node, owner: TreeBuilder.OpID?, tid: UInt32) -> TreeBuilder.OpID? {
        guard let op = owner else {
            unattributed.append((node.frozen(), "qemu_fdatasync on thread \(tid) outside any known flush job"))
            return nil
        }
        job[tid] = (node, op)
        return op
    }

    /// The pending `raw_co_flush_to_disk` of an op, if it has one (its io_uring fsync is that flush's).
    mutating func takeRaw(of op: TreeBuilder.OpID) -> Pending? {
        takeOldestRaw { $0.op == op }
    }

    /// The oldest pending raw flush that `matches`, taken out. By age, not by the map's order
    /// (a dictionary's changed with the process's hash seed, and so did the op a sync went to
    /// when several raw flushes matched it).
    private mutating func takeOldestRaw(_ matches: (Pending) -> Bool) -> Pending? {
        var oldest: (bs: UInt64, order: Int)?
        for (bs, p) in pendingRaw.entries where matches(p) && p.order < (oldest?.order ?? .max) { oldest = (bs, p.order) }
        guard let bs = oldest?.bs else { return nil }
        return pendingRaw.removeValue(forKey: bs)
    }

    // MARK: The kernel's side

    /// A sync system call starts: the job running on its thread, the pending
    /// `raw_co_flush_to_disk` of its fd, or (with no worker-side probe) the oldest flush job for
    /// its fd; nil when none claims it (the caller then asks which op owns the thread).
    mutating func linkSync(_ node: TreeBuilder.Node, fd: UInt32, tid: UInt32) -> TreeBuilder.OpID? {
        var p: (node: TreeBuilder.Node, op: TreeBuilder.OpID)?
        if let j = job[tid] {
            p = (j.node, j.op)
        } else if let raw = takeRaw(fd: fd) {
            p = (raw.node, raw.op)
        } else if !hasWorkerProbe, let pending = takeOldestPending(fd: fd) {
            // No probe on the worker side (USDT captures): the oldest flush job for this fd is this sync's.
            p = (pending.node, pending.op)
        }
        guard let p else { return nil }
        p.node.children.append(node)
        return p.op
    }

    /// The sync system call is open on its thread, under `op` (nil: it goes to `unattributed` at its exit).
    mutating func syncStarted(_ node: TreeBuilder.Node, op: TreeBuilder.OpID?, tid: UInt32, at ts: UInt64) {
        // A sync still open on this thread lost its exit: keep it rather than overwrite it.
        if let stale = openSyscall[tid], stale.op == nil {
            unattributed.append((Self.unplaced(stale.node), "\(stale.node.value.symbol ?? "sync") on thread \(tid) ran outside any QEMU flush job or request (no exit captured)"))
        }
        openSyscall[tid] = (node, op, ts)
    }

    /// A sync system call returns; returns its node (the file-system syncs under it end with it)
    /// and its op, if it has one.
    mutating func syncExit(tid: UInt32, at ts: UInt64, returnValue: Int64) -> (node: TreeBuilder.Node, op: TreeBuilder.OpID?)? {
        guard let open = openSyscall.removeValue(forKey: tid) else { return nil }
        open.node.value.latencyNs = ts >= open.start ? ts - open.start : 0
        open.node.value.returnValue = returnValue
        if open.op == nil {
            unattributed.append((Self.unplaced(open.node), "\(open.node.value.symbol ?? "sync") on thread \(tid) ran outside any QEMU flush job or request"))
        }
        job[tid] = nil
        return (open.node, open.op)
    }

    /// An io_uring fsync was submitted, for `op` if a request's coroutine submitted it.
    mutating func uringSubmit(_ node: TreeBuilder.Node, ring: UInt64, userData: UInt64, op: TreeBuilder.OpID?, at ts: UInt64) {
        pendingUring.append((ring, userData, node, op, ts))
    }

    /// An io_uring fsync completed; returns its node and its op, if it has one.
    mutating func uringComplete(ring: UInt64, userData: UInt64, result: Int32, at ts: UInt64) -> (node: TreeBuilder.Node, op: TreeBuilder.OpID?)? {
        guard let i = pendingUring.firstIndex(where: { $0.ring == ring && $0.userData == userData }) else { return nil }
        let p = pendingUring.remove(at: i)
        p.node.value.latencyNs = ts >= p.start ? ts - p.start : 0
        p.node.value.returnValue = Int64(result)
        if p.op == nil {
            unattributed.append((Self.unplaced(p.node), "io_uring fsync request 0x\(String(userData, radix: 16)) submitted outside any QEMU request"))
        }
        return (p.node, p.op)
    }

    // MARK: Ops and the end

    /// Whether a sync or job `op` started is still open.
    func isWaiting(_ op: TreeBuilder.OpID) -> Bool {
        // Asked of every op handed on, and most come when nothing is open: no walk then.
        if pendingByArg.isEmpty && pendingRaw.isEmpty && job.isEmpty && openSyscall.isEmpty && pendingUring.isEmpty { return false }
        return pendingByArg.values.contains { $0.op == op } || pendingRaw.values.contains { $0.op == op }
            || job.values.contains { $0.op == op } || openSyscall.values.contains { $0.op == op }
            || pendingUring.contains { $0.op == op }
    }

    /// Nodes that could not be linked so far, with the reason; the linker forgets them.
    mutating func drainUnattributed() -> [(CausalNode, String)] {
        defer { unattributed.removeAll(keepingCapacity: true) }
        return unattributed
    }

    /// Closes what is still open at the end of the capture: syncs whose exit or completion was not captured.
    mutating func finish() {
        // By thread id, whatever order the map holds them in.
        for (tid, open) in openSyscall.entries.sorted(by: { $0.key < $1.key }) where open.op == nil {
            unattributed.append((Self.unplaced(open.node), "sync on thread \(tid) ran outside any QEMU flush job or request (no exit captured)"))
        }
        openSyscall.removeAll()
        for p in pendingUring where p.op == nil {
            unattributed.append((Self.unplaced(p.node), "io_uring fsync request 0x\(String(p.userData, radix: 16)) submitted outside any QEMU request (no completion captured)"))
        }
        pendingUring.removeAll()
    }

    static func unplaced(_ node: TreeBuilder.Node) -> CausalNode {
        node.value.cause = .unattributed
        return node.frozen()
    }

    /// The pending `raw_co_flush_to_disk` of the file with this fd.
    private mutating func takeRaw(fd: UInt32) -> Pending? {
        takeOldestRaw { $0.fd == fd }
    }

    /// The oldest pending flush job for this fd (or of an unknown fd).
    private mutating func takeOldestPending(fd: UInt32) -> Pending? {
        guard let arg = pendingFIFO.first(where: { pendingByArg[$0]?.fd == nil || pendingByArg[$0]?.fd == fd }) else { return nil }
        return takePending(arg: arg)
    }

    private mutating func takePending(arg: UInt64) -> Pending? {
        guard let p = pendingByArg.removeValue(forKey: arg) else { return nil }
        if let i = pendingFIFO.firstIndex(of: arg) { pendingFIFO.remove(at: i) }
        return p
    }
}
