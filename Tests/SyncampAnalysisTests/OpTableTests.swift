@testable import SyncampAnalysis
import XCTest

/// `TreeBuilder.OpTable`: the ring of live ops, moved in and out by id.
final class OpTableTests: XCTestCase {
    private func op(_ id: Int) -> TreeBuilder.Op {
        TreeBuilder.Op(GuestOp(index: id, kind: .write, offset: UInt64(id) * 4096, bytes: 4096, startNs: UInt64(id), endNs: UInt64(id),
                               tid: 1, entry: "blk_co_pwritev_part", children: [], probeHits: 0, image: "/srv/vm images/\(id).qcow2"),
                       causes: .init(finalCause: .guestFlush, hasEntryFlushProbe: false))
    }

    /// Ops come in and go out in id order while the ring wraps and grows several times with its
    /// oldest op in the middle of the ring: each id still reaches its own op.
    func testIdsReachTheirOpsAcrossWrapsAndGrowth() {
        var table = TreeBuilder.OpTable()
        var next = 0, removed = 0
        for round in 0..<40 {
            for _ in 0..<(25 + round * 7) {
                table.append(op(next))
                next += 1
            }
            for _ in 0..<(20 + round * 5) {
                let o = table.removeOldest()
                XCTAssertEqual(o.value.index, removed)
                XCTAssertEqual(o.value.image, "/srv/vm images/\(removed).qcow2")
                removed += 1
            }
            XCTAssertEqual(table.ids, removed..<next)
            for id in table.ids { XCTAssertEqual(table[id].value.offset, UInt64(id) * 4096) }
            XCTAssertFalse(table.isLive(removed - 1))
            XCTAssertFalse(table.isLive(next))
        }
        XCTAssertGreaterThan(table.count, 256, "the ring grew past its first capacity")
        table[next - 1].touch(1_000_000)
        XCTAssertEqual(table[next - 1].value.endNs, 1_000_000)
    }

    /// A copy of the table (a builder copied to be read) keeps the ops as they were when the original changes.
    func testACopyKeepsItsOps() {
        var table = TreeBuilder.OpTable()
        for i in 0..<300 { table.append(op(i)) }
        for _ in 0..<100 { _ = table.removeOldest() }
        let copy = table
        table[150].touch(9_999)
        _ = table.removeOldest()
        table.append(op(300))
        XCTAssertEqual(copy[150].value.endNs, 150)
        XCTAssertEqual(table[150].value.endNs, 9_999)
        XCTAssertEqual(copy.ids, 100..<300)
        XCTAssertEqual(table.ids, 101..<301)
        XCTAssertEqual(copy[100].value.index, 100)
    }
}
