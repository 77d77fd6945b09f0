import SyncampCapture

/// Decides which op a QEMU event on a submitting thread belongs to, by the coroutine it ran in.
///
/// QEMU runs each guest request in a coroutine, and many coroutines on one
/// thread, so the thread id alone cannot say. Every event carries the running
/// coroutine (read from QEMU's `co_tls_current`, or kept from
/// `qemu_coroutine_switch`). A request whose entry point runs inside its own
/// coroutine (`blk_co_do_pwritev_part`, `blk_co_flush`) owns that coroutine
/// at once. A `blk_aio_pwritev`/`blk_aio_flush` request runs in a coroutine
/// whose entry argument is its BlkAioEmAIOCB, whose `opaque` is the opaque the
/// device passed in: each event carries that value, so the request claims the
/// coroutine by pointer, even when it waits on a lock before its first probe.
/// A synchronous `blk_pwrite` (stripped binaries; one request at a time) adopts
/// the coroutine of the very next event on its thread: the generated wrapper
/// creates the coroutine and enters it at once.
/// A coroutine entered by an owned one (its `caller`, read at each probe)
/// works for the same request: quorum's per-child coroutines, qcow2's
/// parallel write tasks.
/// Coroutines are pooled and reused: a new request rebinds one, and
/// `blk_unref`/`bdrv_close_all` forget every binding. Events of coroutines no
/// request owns go to the current group (image open, close, housekeeping).
/// Without coroutine information, the latest op owns every event.
/// Ops are named by id (`TreeBuilder.OpID`); the functions that bind a coroutine note it in the
/// op (`ops`), so that handing the op on can forget it.
struct OpResolver {
    typealias OpID = TreeBuilder.OpID
    let useCoroutines: Bool
    private var coOwner = PointerMap<OpID>()
    /// A request waiting to learn its coroutine from the next event on its thread, with the caller's coroutine.
    private var awaiting: [UInt32: (op: OpID, callerCo: UInt64)] = [:]
    /// blk_aio_* requests waiting for their coroutine, by the opaque the device passed.
    private var awaitingOpaque = PointerMap<OpID>()
    private var latest: OpID?
    /// The group receiving unowned work, if one is open.
    private(set) var group: OpID?

    init(useCoroutines: Bool) { self.useCoroutines = useCoroutines }

    /// A guest request starts; `binding` says how it finds its coroutine.
    mutating func start(_ op: OpID, _ e: DecodedEvent, binding: DecodedEvent.Binding, ops: inout TreeBuilder.OpTable) {
        latest = op
        group = nil
        guard useCoroutines else { return }
        switch binding {
        case .ownCoroutine where e.coroutine.running != 0:
            bind(e.coroutine.running, op, &ops)
        case let .opaque(opaque):
            awaitingOpaque[opaque] = op
            ops[op].opaqueKey = opaque
        case .ownCoroutine, .nextEvent:
            awaiting[e.tid] = (op, e.coroutine.running)
        }
    }

    /// Every uprobe event passes here first: the next event after a caller-context entry names its coroutine.
    mutating func observe(_ e: DecodedEvent, ops: inout TreeBuilder.OpTable) {
        guard useCoroutines else { return }
        let co = e.coroutine
        if co.running != 0, co.entryArgument != 0, !awaitingOpaque.isEmpty, let op = awaitingOpaque.removeValue(forKey: co.opaque) {
            bind(co.running, op, &ops)
        }
        guard !awaiting.isEmpty, let pending = awaiting.removeValue(forKey: e.tid) else { return }
        if co.running != 0 && co.running != pending.callerCo {
            bind(co.running, pending.op, &ops)
        }
    }

    /// A group (image open, housekeeping) receives unowned work from now on.
    mutating func setGroup(_ op: OpID) {
        group = op
        if !useCoroutines { latest = op }
    }

    /// Images are being closed: forget every binding; unowned work is close work.
    mutating func close(_ op: OpID) {
        coOwner.removeAll()
        awaiting.removeAll()
        awaitingOpaque.removeAll()
        group = op
        latest = op
    }

    /// The op that owns the event, or nil for a group to take it (an op handed on takes nothing more).
    mutating func owner(of e: DecodedEvent, ops: inout TreeBuilder.OpTable) -> OpID? {
        guard let op = find(e, &ops) else { return nil }
        return ops.isLive(op) ? op : nil
    }

    private mutating func find(_ e: DecodedEvent, _ ops: inout TreeBuilder.OpTable) -> OpID? {
        guard useCoroutines else { return latest ?? group }
        let co = e.coroutine
        if co.running == 0 { return nil }
        if let op = coOwner[co.running] { return op }
        // A coroutine a request's coroutine entered (quorum children, parallel qcow2 tasks) works for that request.
        if co.caller != 0, let op = coOwner[co.caller] {
            bind(co.running, op, &ops)
            return op
        }
        return group
    }

    private mutating func bind(_ co: UInt64, _ op: OpID, _ ops: inout TreeBuilder.OpTable) {
        coOwner[co] = op
        // An op handed on keeps no list: forgetting it already ran.
        guard ops.isLive(op) else { return }
        if ops[op].coroutine == 0 { ops[op].coroutine = co } else { ops[op].moreCoroutines.append(co) }
    }

    /// The op bound to a coroutine, if any (no caller chain, no group).
    func boundOwner(of co: UInt64, in ops: TreeBuilder.OpTable) -> OpID? {
        guard let op = coOwner[co], ops.isLive(op) else { return nil }
        return op
    }

    /// Frees a coroutine whose request is over (a pooled coroutine may next serve another).
    mutating func unbind(_ co: UInt64) {
        coOwner[co] = nil
    }

    /// Drops the bindings of an op that was handed on, so that the maps stay as small as the work in flight.
    mutating func forget(_ op: TreeBuilder.Op) {
        let id = op.id
        if op.coroutine != 0, coOwner[op.coroutine] == id { coOwner[op.coroutine] = nil }
        for co in op.moreCoroutines where coOwner[co] == id { coOwner[co] = nil }
        if let k = op.opaqueKey, awaitingOpaque[k] == id { awaitingOpaque[k] = nil }
        if !awaiting.isEmpty, let a = awaiting.first(where: { $0.value.op == id })?.key { awaiting[a] = nil }
        if latest == id { latest = nil }
        if group == id { group = nil }
    }
}
