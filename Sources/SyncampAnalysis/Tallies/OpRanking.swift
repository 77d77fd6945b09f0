/// Keeps the ops that cost most while a capture streams past: most host syncs first, then most
/// time in host syncs, then the earliest; at most `limit` of them.
struct CostliestOps {
    /// An op's rank: host syncs, time in them, and the index (earlier first).
    struct Rank: Comparable {
        var hostSyncs: Int
        var hostSyncTimeNs: UInt64
        var index: Int
        static func < (a: Rank, b: Rank) -> Bool {
            (a.hostSyncs, a.hostSyncTimeNs, b.index) < (b.hostSyncs, b.hostSyncTimeNs, a.index)
        }
    }

    let limit: Int
    private var ranked: [(rank: Rank, op: GuestOp)] = []
    /// The costliest ops, costliest first.
    var ops: [GuestOp] { ranked.map(\.op) }

    init(limit: Int) { self.limit = limit }

    /// Whether an op of this rank would be kept (its tree is then needed).
    func wouldKeep(_ rank: Rank) -> Bool {
        limit > 0 && (ranked.count < limit || ranked.last.map { $0.rank < rank } == true)
    }

    mutating func add(_ op: GuestOp, rank: Rank) {
        guard wouldKeep(rank) else { return }
        let at = ranked.firstIndex { $0.rank < rank } ?? ranked.count
        ranked.insert((rank, op), at: at)
        if ranked.count > limit { ranked.removeLast() }
    }
}

/// What makes two ops the same for a listing: kind, entry, size, and their trees' node kinds,
/// probed functions and causes, with times, threads, offsets and pointers left out.
///
/// Runs of ops with one shape (a guest writing the same way again and again) are
/// listed once with a count.
public struct OpShape: Hashable, Sendable {
    struct Node: Hashable, Sendable {
        var kind: NodeKind
        var symbol: String?
        var cause: Cause?
        var children: [Node]

        init(_ n: CausalNode) {
            kind = n.kind
            symbol = n.symbol
            cause = n.cause
            children = n.children.map(Node.init)
        }
    }

    var kind: GuestOp.Kind
    var entry: String
    var bytes: UInt64
    var image: String?
    var children: [Node]

    public init(_ op: GuestOp) {
        kind = op.kind
        entry = op.entry
        bytes = op.bytes
        image = op.image
        children = op.children.map(Node.init)
    }

    /// `ops` cut into runs of consecutive ops of one shape, in their order.
    public static func runs(_ ops: [GuestOp]) -> [ArraySlice<GuestOp>] {
        var out: [ArraySlice<GuestOp>] = []
        var start = 0
        while start < ops.count {
            let shape = OpShape(ops[start])
            var end = start + 1
            while end < ops.count, OpShape(ops[end]) == shape { end += 1 }
            out.append(ops[start..<end])
            start = end
        }
        return out
    }
}
