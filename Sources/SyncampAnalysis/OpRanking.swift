/// Keeps the ops that cost most while a capture streams past: most host syncs first, then most
/// time in host syncs, then the earliest; at most `limit` of them.
struct CostliestOps {
    let limit: Int
    private(set) var ops: [GuestOp] = []

    init(limit: Int) { self.limit = limit }

    /// Whether `a` costs more than `b`.
    static func costlier(_ a: GuestOp, _ b: GuestOp) -> Bool {
        (a.hostSyncs, a.hostSyncTimeNs, b.index) > (b.hostSyncs, b.hostSyncTimeNs, a.index)
    }

    mutating func add(_ op: GuestOp) {
        guard limit > 0 else { return }
        if ops.count == limit, let last = ops.last, !Self.costlier(op, last) { return }
        let at = ops.firstIndex { Self.costlier(op, $0) } ?? ops.count
        ops.insert(op, at: at)
        if ops.count > limit { ops.removeLast() }
    }
}

/// What makes two ops the same for a listing: kind, entry, size, and their trees' node kinds,
/// probed functions and causes, with times, threads, offsets and pointers left out.
///
/// Runs of ops with one shape (a guest writing the same way again and again) are
/// listed once with a count.
public struct OpShape: Hashable, Sendable {
    struct Node: Hashable, Sendable {
        var kind: String
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
