import SyncampCapture

extension TreeBuilder {
    /// A node of an op's tree while the op is open: trackers attach children to it by reference
    /// (a host sync under its submit, a journal commit under its sync).
    final class Node {
        var value: CausalNode
        var children = Children()
        /// Host syncs take their cause from the slot of the submit they descend from.
        var slot: CauseTracker.Slot?
        /// When a node that ends later (a file-system sync, a journal commit) started, in capture
        /// time (CLOCK_MONOTONIC ns); nil once `close(at:)` has turned it into the latency.
        var openedAt: UInt64?
        init(_ value: CausalNode, slot: CauseTracker.Slot? = nil) {
            self.value = value
            self.slot = slot
        }

        /// Ends a node opened with `openedAt`: its latency is the time since (0 when it was not opened,
        /// or the clock went back).
        func close(at ts: UInt64) {
            let start = openedAt ?? ts
            openedAt = nil
            value.latencyNs = ts >= start ? ts - start : 0
        }

        /// The node as a value, its host syncs' causes filled in from the slots above them.
        func frozen(inherited: CauseTracker.Slot? = nil) -> CausalNode {
            var v = value
            let slot = self.slot ?? inherited
            if v.kind == .hostSync, v.cause == nil { v.cause = slot?.cause }
            v.children = children.map { $0.frozen(inherited: slot) }
            return v
        }
    }

    /// A node's children in the order they came. Most nodes have none or one (a host sync's
    /// file-system sync, a sync's device flush): the first is kept inline, an array is made only
    /// for a second (an array per linked node was an allocation and a free per node).
    struct Children: RandomAccessCollection {
        private var head: Node?
        private var rest: [Node] = []

        init() {}

        var startIndex: Int { 0 }
        var endIndex: Int { head == nil ? 0 : 1 + rest.count }
        subscript(i: Int) -> Node { i == 0 ? head! : rest[i - 1] }

        mutating func append(_ n: Node) {
            if head == nil { head = n } else { rest.append(n) }
        }

        /// Gives the children that nothing else refers to back to `pool`, and forgets them all.
        mutating func recycle(into pool: NodePool) {
            guard head != nil else { return }
            pool.take(&head!)
            head = nil
            if rest.isEmpty { return }
            for i in rest.indices { pool.take(&rest[i]) }
            rest = []
        }
    }

    /// An op's id in the builder: its index (`GuestOp.index`), given in start order.
    typealias OpID = Int

    /// An op while it is open: its tree, its cause tracker, and what to forget when it is handed on.
    /// A value in the builder's `OpTable`, reached by its id: what refers to an op (a coroutine
    /// binding, a pending flush job, an open system call) holds the id, not a reference to count.
    struct Op {
        var value: GuestOp
        var children: [Node] = []
        /// QEMU metadata work under the op (cache write-backs, L1 entries, node flushes ...): leaves
        /// nothing is ever linked below, so they are kept as their events and made nodes only when
        /// the tree is frozen (most ops' trees never are: a class instance, a symbol and its details
        /// less per event). `position` is the count of `children` when the leaf came, for the order.
        private(set) var probeLeaves: [(position: Int, event: DecodedEvent)] = []
        /// What its cause tracker starts from; the tracker itself is made by the first event that
        /// needs it (most ops, overwrites, never do: a class instance less per request).
        private let causeSetup: CauseTracker.Setup
        private var tracker: CauseTracker?
        /// The op's cause tracker (made on first use).
        mutating func causes() -> CauseTracker {
            if let tracker { return tracker }
            let t = CauseTracker(causeSetup)
            tracker = t
            return t
        }
        /// The cause of the last sync of a full flush in this op (`CauseTracker.finalCause`).
        var finalCause: Cause { causeSetup.finalCause }
        /// Coroutines bound to it, and the opaque it waited for, to forget when it retires: most
        /// ops bind one, kept inline (an array per op cost a malloc per request).
        var coroutine: UInt64 = 0
        var moreCoroutines: [UInt64] = []
        var opaqueKey: UInt64?
        /// USDT captures: a guest flush inferred from cache write-backs, and whether it has written back the refcount cache.
        var inferredFlush = false
        /// qcow2 metadata work ran under it (a cache write-back, an L1 entry, a qcow2 node's flush ...):
        /// its syncs may be qcow2's even when another format's node was flushed too.
        var touchedQcow2 = false
        var flushWroteRefcounts = false
        init(_ value: GuestOp, causes: CauseTracker.Setup) {
            self.value = value
            causeSetup = causes
        }

        var id: OpID { value.index }

        /// The op's work is over: the tracker names what it still held (`CauseTracker.endOp`).
        func endCauses() { tracker?.endOp() }

        /// `body`'s result as if the running full flush had ended (`CauseTracker.asIfFullFlushEnded`).
        func asIfFullFlushEnded<T>(_ body: () -> T) -> T {
            guard let tracker else { return body() }
            return tracker.asIfFullFlushEnded(body)
        }
        mutating func add(_ n: Node, at t: UInt64) {
            // A guest flush takes two or three (a submit per host sync): one allocation, not two.
            if children.isEmpty { children.reserveCapacity(4) }
            children.append(n)
            touch(t)
        }

        /// Adds a metadata probe's event as a leaf at the end of the op's children (`probeLeaves`).
        mutating func addLeaf(_ e: DecodedEvent, at t: UInt64) {
            // A guest flush writes back about eight (bench/seeds/mixed.syncamp): one allocation, not four.
            if probeLeaves.isEmpty { probeLeaves.reserveCapacity(8) }
            probeLeaves.append((children.count, e))
            touch(t)
        }
        mutating func touch(_ t: UInt64) { value.endNs = max(value.endNs, t) }

        /// Renames the causes of the op's host syncs (their slots, and causes set on the node).
        func renameCauses(_ rename: (Cause) -> Cause) {
            func walk(_ n: Node) {
                if let slot = n.slot { slot.cause = rename(slot.cause) }
                if let c = n.value.cause { n.value.cause = rename(c) }
                for c in n.children { walk(c) }
            }
            for n in children { walk(n) }
        }

        /// The op's tree as values, in the order its nodes and leaves came; `leaf` makes a leaf's node.
        func frozenChildren(_ leaf: (DecodedEvent) -> CausalNode) -> [CausalNode] {
            guard !probeLeaves.isEmpty else { return children.map { $0.frozen() } }
            var out: [CausalNode] = []
            out.reserveCapacity(children.count + probeLeaves.count)
            var l = 0
            for (i, c) in children.enumerated() {
                while l < probeLeaves.count, probeLeaves[l].position <= i {
                    out.append(leaf(probeLeaves[l].event))
                    l += 1
                }
                out.append(c.frozen())
            }
            for rest in probeLeaves[l...] { out.append(leaf(rest.event)) }
            return out
        }
    }

    /// The ops not handed on yet, by id. Ops start in id order and are handed on oldest first,
    /// so the table is a window over the ids [first, first + count). An id below the window is an
    /// op handed on: asked of, it is not live (`isLive`); work arriving for it is dropped by the
    /// caller, as work for an op already counted changes nothing.
    struct OpTable {
        /// The ops in a ring whose capacity is a power of two, oldest at `front`: an op is moved
        /// in and out of its slot, never shifted or wrapped in an Optional (an array of `Op?`
        /// checked the tag at every access and moved the window down every thousand ops).
        private final class Ring {
            private(set) var slots: UnsafeMutablePointer<Op>
            private(set) var capacity: Int
            var front = 0
            var count = 0

            init(capacity: Int) {
                self.capacity = capacity
                slots = .allocate(capacity: capacity)
            }

            init(copying other: Ring) {
                capacity = other.capacity
                slots = .allocate(capacity: capacity)
                front = other.front
                count = other.count
                for i in 0..<count { (slots + other.slot(i)).initialize(to: other.slots[other.slot(i)]) }
            }

            deinit {
                for i in 0..<count { (slots + slot(i)).deinitialize(count: 1) }
                slots.deallocate()
            }

            /// The slot of the `i`th op held, oldest first.
            @inline(__always)
            func slot(_ i: Int) -> Int { (front &+ i) & (capacity &- 1) }

            /// Twice the room, the ops moved down in order.
            func grow() {
                let bigger = UnsafeMutablePointer<Op>.allocate(capacity: capacity * 2)
                for i in 0..<count { (bigger + i).moveInitialize(from: slots + slot(i), count: 1) }
                slots.deallocate()
                slots = bigger
                capacity *= 2
                front = 0
            }
        }

        private var ring = Ring(capacity: 256)
        /// The id of the oldest op held.
        private(set) var first = 0

        var count: Int { ring.count }
        /// The ids of the ops held, oldest first.
        var ids: Range<OpID> { first ..< first + count }

        @inline(__always)
        func isLive(_ id: OpID) -> Bool { id >= first && id - first < count }

        /// A table is copied only by a builder copied to be read: it shares the ring until either changes.
        @inline(__always)
        private mutating func own() {
            if !isKnownUniquelyReferenced(&ring) { ring = Ring(copying: ring) }
        }

        /// Adds the newest op; its id must follow the last one's.
        mutating func append(_ op: consuming Op) {
            precondition(op.id == first + count, "ops enter the table in id order")
            own()
            if ring.count == ring.capacity { ring.grow() }
            (ring.slots + ring.slot(ring.count)).initialize(to: op)
            ring.count += 1
        }

        /// A live op (`isLive(id)`: a precondition), read and changed in place.
        subscript(id: OpID) -> Op {
            _read {
                precondition(isLive(id), "op \(id) is not in the table")
                yield ring.slots[ring.slot(id - first)]
            }
            _modify {
                precondition(isLive(id), "op \(id) is not in the table")
                own()
                yield &ring.slots[ring.slot(id - first)]
            }
        }

        /// Moves the oldest op out of the table.
        mutating func removeOldest() -> Op {
            precondition(count > 0, "no op to remove")
            own()
            let op = (ring.slots + ring.front).move()
            ring.front = ring.slot(1)
            ring.count -= 1
            first += 1
            return op
        }
    }
}
