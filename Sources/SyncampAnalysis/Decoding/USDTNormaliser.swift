import SyncampCapture

/// USDT captures (QEMU's dtrace trace backend): gives every event the coroutine it ran in.
///
/// Function uprobes read the running coroutine at each hit; USDT events name it in an
/// argument or a value read through one (`ProbeIndex.CoroutineSource`), and some name none
/// (`blk_co_pwritev`, the L1 entry): those wait for the next event on their thread that
/// does (the request's qcow2 entry, the L1 entry's own write, which follow without a yield).
/// Events of function-uprobe captures pass through unchanged. Shaped like `ReorderWindow`: a
/// stage between the reader and the decoder, with a bounded hold per thread.
struct USDTNormaliser {
    let probes: ProbeIndex
    /// Events waiting, per thread, for the next event that names the coroutine.
    private var held: [UInt32: [Event]] = [:]
    /// At most this many events wait on one thread: a thread that names no coroutine must not grow memory.
    static let holdLimit = 64

    init(probes: ProbeIndex) { self.probes = probes }

    /// Takes one event (in time order) and appends to `out` the events ready to decode.
    mutating func push(_ e: Event, into out: inout [Event]) {
        guard e.kind == .uprobe, let entry = probes.entry(e) else {
            release(e.tid, coroutine: 0, into: &out)
            out.append(e)
            return
        }
        switch entry.coroutineFrom {
        case .nextEvent:
            held[e.tid, default: []].append(e)
            if held[e.tid]!.count > Self.holdLimit { release(e.tid, coroutine: 0, into: &out) }
        case .argument, .value:
            var named = e
            named.coroutine = probes.coroutine(of: e) ?? 0
            release(e.tid, coroutine: named.coroutine, into: &out)
            out.append(named)
        case .none:
            release(e.tid, coroutine: 0, into: &out)
            out.append(e)
        }
    }

    /// Releases every held event (the capture ended), in thread order.
    mutating func finish(into out: inout [Event]) {
        for tid in held.keys.sorted() { release(tid, coroutine: 0, into: &out) }
    }

    /// Hands on the events held for a thread, with the coroutine they were waiting for.
    private mutating func release(_ tid: UInt32, coroutine: UInt64, into out: inout [Event]) {
        guard !held.isEmpty, let events = held.removeValue(forKey: tid) else { return }
        for var e in events {
            e.coroutine = coroutine
            out.append(e)
        }
    }
}
