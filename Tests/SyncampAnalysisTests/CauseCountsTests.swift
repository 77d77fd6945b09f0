@testable import SyncampAnalysis
import XCTest

final class CauseCountsTests: XCTestCase {
    func testEachCauseHasItsOwnSlot() {
        XCTAssertEqual(Cause.allCases.map(\.slot), Array(0..<Cause.allCases.count))
    }

    func testCountsReadAsTheDictionaryTheyStandFor() {
        var c = CauseCounts()
        XCTAssertTrue(c.isEmpty)
        XCTAssertTrue(c.matches([:]))
        XCTAssertFalse(c.matches([.guestFlush: 0]), "a cause counted 0 is absent, as in a dictionary counted up from empty")
        c[.guestFlush] += 1
        c[.unattributed] += 2
        XCTAssertEqual(c.total, 3)
        XCTAssertEqual(c.dictionary, [.guestFlush: 1, .unattributed: 2])
        XCTAssertTrue(c.matches([.guestFlush: 1, .unattributed: 2]))
        XCTAssertFalse(c.matches([.guestFlush: 1]))
        XCTAssertFalse(c.matches([.guestFlush: 1, .unattributed: 2, .imageClose: 1]))
        XCTAssertFalse(c.matches([.guestFlush: 2, .unattributed: 1]))
        var sum = CauseCounts()
        sum.add(c)
        sum.add(c)
        XCTAssertEqual(sum.dictionary, [.guestFlush: 2, .unattributed: 4])
        XCTAssertNotEqual(sum, c)
    }
}
