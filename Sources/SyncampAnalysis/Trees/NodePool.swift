extension TreeBuilder {
    /// Nodes of handed-on trees, kept to be used again for new ones.
    ///
    /// Each host sync makes four nodes or so (its submit, the system call, the file system's sync,
    /// the device flush), about 240k per million events: a malloc and a free each, and freeing a
    /// tree released its nodes one by one. Once an op is counted (and its tree, if a report
    /// keeps it, turned into values), `recycle` takes back the nodes nothing else refers to;
    /// `node` hands them out again, most recently freed first (still in the cache).
    ///
    /// A node a tracker still holds (a sync whose exit has not come, a device's open commit) is
    /// not unique, so it is left to be freed as before: a recycled node is never reachable
    /// from anywhere but the pool.
    final class NodePool {
        private var free: [Node] = []
        /// The most nodes kept (a burst of freed trees beyond it is freed as usual).
        static let limit = 4096

        init() { free.reserveCapacity(Self.limit) }

        /// A node of `kind` (and `slot`), taken from the pool when it has one: a taken node's
        /// value is renewed field by field where it lies (a new `CausalNode` assigned to it was
        /// copied in and the old one destroyed, about 200 instructions per node). The value's
        /// own `children` are always empty: an open tree's are the node's `children`.
        @inline(__always)
        func node(kind: NodeKind, timeNs: UInt64, tid: UInt32, symbol: String?, details: NodeDetails,
                  slot: CauseTracker.Slot? = nil) -> Node {
            guard let n = free.popLast() else {
                return Node(CausalNode(kind: kind, timeNs: timeNs, tid: tid, symbol: symbol, details: details), slot: slot)
            }
            n.value.kind = kind
            n.value.timeNs = timeNs
            n.value.tid = tid
            n.value.symbol = symbol
            n.value.details = details
            n.value.latencyNs = nil
            n.value.returnValue = nil
            n.value.cause = nil
            n.slot = slot
            return n
        }

        /// Takes back the nodes of `children` (and below) that nothing else refers to, emptying the array.
        func recycle(_ children: inout [Node]) {
            for i in children.indices { take(&children[i]) }
            children = []
        }

        /// Takes `n` back when it is the only reference to it, after its children.
        func take(_ n: inout Node) {
            guard free.count < Self.limit, isKnownUniquelyReferenced(&n) else { return }
            n.children.recycle(into: self)
            n.slot = nil
            n.openedAt = nil
            free.append(n)
        }
    }
}
