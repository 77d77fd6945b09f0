/// What the totals, the per-image sums, the cost breakdown, the ranking and the model need of
/// one finished op, counted in one walk over its tree: its host syncs (fd, cause, latency),
/// the device flushes under them, the journal commits and device requests below.
///
/// Ops a report does not list are summarised straight from the builder's open tree and never
/// turned into `CausalNode` values.
struct OpSummary {
    struct Sync {
        var fd: UInt32?
        var cause: Cause
        var latencyNs: UInt64?
    }

    var hostSyncs: Int { syncs.count }
    private(set) var syncs: [Sync] = []
    /// Host syncs per cause (a fixed array: no dictionary per op; the model compares it with its prediction).
    private(set) var causes = CauseCounts()
    /// Time in host syncs (ns; syncs without a captured return count 0).
    private(set) var hostSyncTimeNs: UInt64 = 0
    /// The latest of the op's own end and every node's time (host syncs: their return).
    private(set) var latestReturnNs: UInt64
    private(set) var journalCommits = 0
    private(set) var deviceFlushes = 0
    private(set) var deviceFUAWrites = 0
    /// Device flush latencies under a host sync, with that sync's cause.
    private(set) var deviceFlushTimes: [(cause: Cause, ns: UInt64)] = []

    /// The summary of an op value and its tree.
    init(_ op: GuestOp) {
        latestReturnNs = op.endNs
        for c in op.children { add(c, under: nil) }
    }

    /// The summary of nodes no op took.
    init(unplaced node: CausalNode) {
        latestReturnNs = 0
        add(node, under: nil)
    }

    /// The summary of an op still in the builder, its host syncs' causes read from their slots
    /// (as `TreeBuilder.Op.frozenChildren` fills them in).
    init(_ op: borrowing TreeBuilder.Op) {
        latestReturnNs = op.value.endNs
        // By index: iterating `op.children` would copy the op to consume the array.
        for i in op.children.indices { add(op.children[i], slot: nil, under: nil) }
    }

    private mutating func add(_ n: CausalNode, under cause: Cause?) {
        let current = count(n.kind, n.timeNs, n.latencyNs, n.details.fd, n.cause, under: cause)
        for c in n.children { add(c, under: current) }
    }

    private mutating func add(_ n: TreeBuilder.Node, slot inherited: CauseTracker.Slot?, under cause: Cause?) {
        let slot = n.slot ?? inherited
        // The fields read one by one: `let v = n.value` copied the whole node value (and counted its references).
        let kind = n.value.kind, ownCause = n.value.cause
        let own = kind == .hostSync && ownCause == nil ? slot?.cause : ownCause
        let current = count(kind, n.value.timeNs, n.value.latencyNs, n.value.details.fd, own, under: cause)
        for c in n.children { add(c, slot: slot, under: current) }
    }

    /// Counts one node; returns the cause its children are under.
    private mutating func count(_ kind: NodeKind, _ time: UInt64, _ latency: UInt64?, _ fd: UInt32?, _ cause: Cause?,
                                under current: Cause?) -> Cause? {
        switch kind {
        case .hostSync:
            let c = cause ?? .unattributed
            // An op with syncs has two or three (a guest flush's): one allocation, not two.
            if syncs.isEmpty { syncs.reserveCapacity(4) }
            syncs.append(Sync(fd: fd, cause: c, latencyNs: latency))
            causes[c] += 1
            hostSyncTimeNs += latency ?? 0
            latestReturnNs = max(latestReturnNs, time + (latency ?? 0))
            return c
        case .journalCommit:
            journalCommits += 1
        case .deviceFlush:
            deviceFlushes += 1
            if let current, let latency {
                if deviceFlushTimes.isEmpty { deviceFlushTimes.reserveCapacity(4) }
                deviceFlushTimes.append((current, latency))
            }
        case .deviceFUAWrite:
            deviceFUAWrites += 1
        default:
            break
        }
        latestReturnNs = max(latestReturnNs, time)
        return current
    }
}
