import SyncampAnalysis
import SyncampCapture
import XCTest

/// The window puts events back in timestamp order, counts what arrived out of order and what came too late.
final class ReorderWindowTests: XCTestCase {
    private func event(_ t: UInt64, tid: UInt32 = 1) -> Event {
        Event(timestamp: t, pid: 1, tid: tid, cpu: 0, kind: .uprobe, probeID: 0)
    }

    private func drain(_ w: inout ReorderWindow, pushing ts: [(UInt64, UInt32)]) -> [Event] {
        var out: [Event] = []
        for (t, tid) in ts {
            if let e = w.push(event(t, tid: tid)) { out.append(e) }
        }
        while let e = w.pop() { out.append(e) }
        return out
    }

    func testOutOfOrderEventsWithinTheWindowComeOutSorted() {
        var w = ReorderWindow(capacity: 8)
        let arrivals: [UInt64] = [10, 30, 20, 40, 25, 50, 45, 60]
        let out = drain(&w, pushing: arrivals.map { ($0, 1) })
        XCTAssertEqual(out.map(\.timestamp), arrivals.sorted())
        XCTAssertEqual(w.reordered, 3, "20 after 30, 25 after 40, 45 after 50")
        XCTAssertEqual(w.lateEvents, 0)
    }

    func testWindowHoldsCapacityEventsBeforeReleasing() {
        var w = ReorderWindow(capacity: 3)
        XCTAssertEqual(w.capacity, 3)
        XCTAssertNil(w.push(event(30)))
        XCTAssertNil(w.push(event(10)))
        XCTAssertNil(w.push(event(20)))
        XCTAssertEqual(w.push(event(40))?.timestamp, 10)
        XCTAssertEqual(w.push(event(35))?.timestamp, 20)
        XCTAssertEqual(w.pop()?.timestamp, 30)
        XCTAssertEqual(w.pop()?.timestamp, 35)
        XCTAssertEqual(w.pop()?.timestamp, 40)
        XCTAssertNil(w.pop())
        XCTAssertEqual(w.reordered, 3)
        XCTAssertEqual(w.lateEvents, 0)
    }

    func testEventOlderThanOneAlreadyReleasedIsLate() {
        var w = ReorderWindow(capacity: 2)
        XCTAssertNil(w.push(event(10)))
        XCTAssertNil(w.push(event(20)))
        XCTAssertEqual(w.push(event(30))?.timestamp, 10)
        // 5 is older than 10, which already left the window: emitted anyway, counted late.
        XCTAssertEqual(w.push(event(5))?.timestamp, 5)
        XCTAssertEqual(w.lateEvents, 1)
        XCTAssertEqual(w.reordered, 1)
        XCTAssertEqual(w.pop()?.timestamp, 20)
        XCTAssertEqual(w.pop()?.timestamp, 30)
        XCTAssertEqual(w.lateEvents, 1)
    }

    func testEqualTimestampsKeepArrivalOrder() {
        var w = ReorderWindow(capacity: 16)
        let arrivals: [(UInt64, UInt32)] = [(10, 1), (10, 2), (5, 3), (10, 4), (10, 5), (5, 6), (10, 7), (10, 8), (10, 9)]
        let out = drain(&w, pushing: arrivals)
        XCTAssertEqual(out.map(\.tid), [3, 6, 1, 2, 4, 5, 7, 8, 9])
        XCTAssertEqual(w.reordered, 2)
    }

    func testEqualTimestampsKeepArrivalOrderAcrossReleases() {
        var w = ReorderWindow(capacity: 2)
        let out = drain(&w, pushing: (1 ... 20).map { (7, UInt32($0)) })
        XCTAssertEqual(out.map(\.tid), Array(1 ... 20))
        XCTAssertEqual(w.reordered, 0)
        XCTAssertEqual(w.lateEvents, 0)
    }

    func testCapacityBelowOneIsOne() {
        var w = ReorderWindow(capacity: 0)
        XCTAssertEqual(w.capacity, 1)
        XCTAssertNil(w.push(event(5)))
        XCTAssertEqual(w.push(event(3))?.timestamp, 3)
        XCTAssertEqual(w.pop()?.timestamp, 5)
    }

    func testSeededShuffleWithinTheWindowIsFullySorted() {
        // Each event is displaced by less than the window, so the output is exactly sorted.
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func rand() -> UInt64 { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state }
        var ts = (0 ..< 2000).map { UInt64($0) * 10 }
        var i = 0
        while i + 8 <= ts.count {
            // Shuffle inside consecutive blocks of 8.
            for j in stride(from: 7, to: 0, by: -1) {
                let k = Int(rand() % UInt64(j + 1))
                ts.swapAt(i + j, i + k)
            }
            i += 8
        }
        var w = ReorderWindow(capacity: 16)
        let out = drain(&w, pushing: ts.map { ($0, 1) })
        XCTAssertEqual(out.map(\.timestamp), ts.sorted())
        XCTAssertEqual(w.lateEvents, 0)
        XCTAssertGreaterThan(w.reordered, 0)
    }

    /// A copy is a value: events moved in place by the original (an out-of-order arrival, read
    /// into the slot and committed) do not change what the copy holds.
    func testACopyKeepsItsEventsWhenTheOriginalReordersInPlace() {
        var w = ReorderWindow(capacity: 3)
        for t: UInt64 in [10, 20, 30] { XCTAssertNil(w.push(event(t))) }
        w.nextSlot().pointee = event(15)
        XCTAssertEqual(w.nextTimestamp, 15, "the event written and not committed yet")
        var copy = w
        XCTAssertEqual(w.commit()?.pointee.timestamp, 10)
        var fromCopy: [UInt64] = []
        while let e = copy.pop() { fromCopy.append(e.timestamp) }
        XCTAssertEqual(fromCopy, [10, 20, 30], "the copy never took the event written into the original's slot")
        var fromOriginal: [UInt64] = []
        while let e = w.pop() { fromOriginal.append(e.timestamp) }
        XCTAssertEqual(fromOriginal, [15, 20, 30])
    }
}
