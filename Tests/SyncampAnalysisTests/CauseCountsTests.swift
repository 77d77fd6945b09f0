@testable import SyncampAnalysis
import XCTest

final class CauseCountsTests: XCTestCase {
    func testEachCauseHasItsOwnSlot() {
        XCTAssertEqual(Cause.allCases.map(\.slot), Array(0..<Cause.allCases.count))
    }

    func testCountsReadAsTheDictionaryTheyStandFor() {
        var c = CauseCounts()
        XCTAssertTrue(c.isEmpty)
        XCTAssertEqual(c, CauseCounts([:]))
        XCTAssertEqual(CauseCounts([.guestFlush: 0]), c, "a cause counted 0 is absent, as in a dictionary counted up from empty")
        c[.guestFlush] += 1
        c[.unattributed] += 2
        XCTAssertEqual(c.total, 3)
        XCTAssertEqual(c.dictionary, [.guestFlush: 1, .unattributed: 2])
        XCTAssertEqual(c, CauseCounts([.guestFlush: 1, .unattributed: 2]))
        XCTAssertNotEqual(c, CauseCounts([.guestFlush: 1]))
        XCTAssertNotEqual(c, CauseCounts([.guestFlush: 1, .unattributed: 2, .imageClose: 1]))
        XCTAssertNotEqual(c, CauseCounts([.guestFlush: 2, .unattributed: 1]))
        // Walked as the sums that read them walk them (`CauseTotals.forEach`).
        var walked = CauseTotals()
        walked.add(c)
        var seen: [(Cause, Int)] = []
        walked.forEach { seen.append(($0, $1)) }
        XCTAssertEqual(seen.map(\.0), [.guestFlush, .unattributed], "causes with syncs, in declaration order")
        XCTAssertEqual(seen.map(\.1), [1, 2])
        var sum = CauseCounts()
        sum.add(c)
        sum.add(c)
        XCTAssertEqual(sum.dictionary, [.guestFlush: 2, .unattributed: 4])
        XCTAssertNotEqual(sum, c)
    }

    /// A capture's totals sum ops' 32-bit counts in full-width counts: past what one op's count holds.
    func testTotalsSumPastAnOpsCountWidth() {
        var op = CauseCounts()
        op[.guestFlush] = 4_000_000_000
        op[.l2TableAlloc] = 1
        var totals = CauseTotals()
        XCTAssertEqual(totals.dictionary, [:])
        totals.add(op)
        totals.add(op)
        totals.add(CauseCounts())
        XCTAssertEqual(totals.dictionary, [.guestFlush: 8_000_000_000, .l2TableAlloc: 2])
        var seen: [Cause] = []
        totals.forEach { c, _ in seen.append(c) }
        XCTAssertEqual(seen, [.guestFlush, .l2TableAlloc], "causes with syncs, in declaration order")
    }
}
