import SyncampCapture

/// Decides which op a QEMU event on a submitting thread belongs to, by the coroutine it ran in.
///
/// QEMU runs each guest request in a coroutine, and many coroutines on one
/// thread, so the thread id alone cannot say. Every event carries the running
/// coroutine (read from QEMU's `co_tls_current`, or kept from
/// `qemu_coroutine_switch`). A request whose entry point runs inside its own
/// coroutine (`blk_co_do_pwritev_part`, `blk_co_flush`) owns that coroutine
/// at once; one whose entry point runs in the caller (`blk_aio_pwritev`,
/// `blk_aio_flush`, `blk_pwrite`) adopts the first other coroutine that runs
/// on its thread next, which is the one QEMU creates and enters for it.
/// Coroutines are pooled and reused: a new request rebinds one, and
/// `blk_unref`/`bdrv_close_all` forget every binding. Events of coroutines no
/// request owns go to the current group (image open, close, housekeeping).
/// Without coroutine information, the latest op owns every event.
struct OpResolver {
    let useCoroutines: Bool
    private var coOwner: [UInt64: TreeBuilder.Op] = [:]
    /// Requests waiting to learn their coroutine, per thread, with the caller's coroutine.
    private var awaiting: [UInt32: [(op: TreeBuilder.Op, callerCo: UInt64)]] = [:]
    private var latest: TreeBuilder.Op?
    /// The group receiving unowned work, if one is open.
    private(set) var group: TreeBuilder.Op?

    init(useCoroutines: Bool) { self.useCoroutines = useCoroutines }

    /// Entry points that run inside the request's own coroutine.
    static func runsInRequestCoroutine(_ symbol: String) -> Bool {
        symbol == "blk_co_do_pwritev_part" || symbol == "blk_co_flush" || symbol == "blk_co_pwritev_part"
    }

    /// A guest request starts.
    mutating func start(_ op: TreeBuilder.Op, _ e: Event, inRequestCoroutine: Bool) {
        latest = op
        group = nil
        guard useCoroutines else { return }
        if inRequestCoroutine && e.coroutine != 0 {
            coOwner[e.coroutine] = op
        } else {
            awaiting[e.tid, default: []].append((op, e.coroutine))
        }
    }

    /// A group (image open, housekeeping) receives unowned work from now on.
    mutating func setGroup(_ op: TreeBuilder.Op) {
        group = op
        if !useCoroutines { latest = op }
    }

    /// Images are being closed: forget every binding; unowned work is close work.
    mutating func close(_ op: TreeBuilder.Op) {
        coOwner.removeAll()
        awaiting.removeAll()
        group = op
        latest = op
    }

    /// The op that owns the event, or nil for a group to take it.
    mutating func owner(of e: Event) -> TreeBuilder.Op? {
        guard useCoroutines else { return latest ?? group }
        if e.coroutine == 0 { return nil }
        if var queue = awaiting[e.tid], let first = queue.first, first.callerCo != e.coroutine {
            queue.removeFirst()
            awaiting[e.tid] = queue.isEmpty ? nil : queue
            coOwner[e.coroutine] = first.op
            return first.op
        }
        if let op = coOwner[e.coroutine] { return op }
        return group
    }
}
