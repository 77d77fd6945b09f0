@testable import SyncampAnalysis
import XCTest

/// `TreeBuilder.NodePool`: what a handed-on tree gives back, and what it must not.
final class NodePoolTests: XCTestCase {
    typealias Node = TreeBuilder.Node

    private func node(_ pool: TreeBuilder.NodePool, _ kind: NodeKind, _ t: UInt64, slot: CauseTracker.Slot? = nil) -> Node {
        pool.node(kind: kind, timeNs: t, tid: 1, symbol: nil, details: NodeDetails(), slot: slot)
    }

    /// A submit -> host sync -> fs sync -> device flush tree, as one host sync makes it.
    private func syncTree(_ pool: TreeBuilder.NodePool, slot: CauseTracker.Slot) -> (root: Node, sync: Node, fs: Node, flush: Node) {
        let root = node(pool, .flushSubmit, 1, slot: slot)
        let sync = node(pool, .hostSync, 2)
        let fs = node(pool, .fsSync, 3)
        let flush = node(pool, .deviceFlush, 4)
        fs.openedAt = 3
        // What a finished tree holds that a new node must not inherit.
        for n in [root, sync, fs, flush] {
            n.value.symbol = "old"
            n.value.details.fd = 9
            n.value.latencyNs = 7
            n.value.returnValue = -5
            n.value.cause = .l2TableAlloc
        }
        root.children.append(sync)
        sync.children.append(fs)
        fs.children.append(flush)
        return (root, sync, fs, flush)
    }

    /// A tree nothing else refers to comes back whole, and its nodes are handed out again
    /// holding only what the new caller gives (no old children, slot or open time).
    func testATreeNothingHoldsIsReused() {
        let pool = TreeBuilder.NodePool()
        var children: [Node] = []
        var ids: Set<ObjectIdentifier> = []
        do {
            let t = syncTree(pool, slot: CauseTracker.Slot(.guestFlush))
            ids = [t.root, t.sync, t.fs, t.flush].map(ObjectIdentifier.init).reduce(into: []) { $0.insert($1) }
            children = [t.root]
        }
        pool.recycle(&children)
        XCTAssertTrue(children.isEmpty)
        var again: [Node] = []
        for i in 0..<4 { again.append(node(pool, .journalCommit, 10 + UInt64(i))) }
        XCTAssertEqual(Set(again.map(ObjectIdentifier.init)), ids, "the four nodes are used again")
        for n in again {
            XCTAssertEqual(n.value, CausalNode(kind: .journalCommit, timeNs: n.value.timeNs, tid: 1),
                           "the value is the new one, nothing of the old is left")
            XCTAssertTrue((10..<14).contains(n.value.timeNs))
            XCTAssertTrue(n.children.isEmpty, "no child of the old tree is left under a reused node")
            XCTAssertNil(n.slot)
            XCTAssertNil(n.openedAt)
        }
        XCTAssertFalse(ids.contains(ObjectIdentifier(node(pool, .hostSync, 20))), "an empty pool makes a new node")
    }

    /// A node a tracker still holds (a sync whose exit has not come) is not taken back, nor is
    /// anything below it: the tracker may still add to it, and it must not show up in a new tree.
    func testANodeHeldElsewhereIsNotReused() {
        let pool = TreeBuilder.NodePool()
        var children: [Node] = []
        var held: Node?
        var heldChild: ObjectIdentifier?
        var root: ObjectIdentifier?
        do {
            let t = syncTree(pool, slot: CauseTracker.Slot(.guestFlush))
            held = t.sync
            heldChild = ObjectIdentifier(t.fs)
            root = ObjectIdentifier(t.root)
            children = [t.root]
        }
        pool.recycle(&children)
        let reused = node(pool, .hostSync, 5)
        XCTAssertEqual(ObjectIdentifier(reused), root, "only the submit above it came back")
        XCTAssertNotEqual(ObjectIdentifier(node(pool, .hostSync, 6)), heldChild)
        XCTAssertEqual(held?.children.count, 1, "the held node keeps its tree")
        XCTAssertEqual(held.map { ObjectIdentifier($0.children[0]) }, heldChild)
    }
}
