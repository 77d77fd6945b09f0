@testable import SyncampAnalysis
import XCTest

/// The tree builder's pointer map holds what a Dictionary would, through growth and removals.
final class PointerMapTests: XCTestCase {
    func testRandomInsertsAndRemovesMatchADictionary() {
        var rng = SystemRandomNumberGenerator()
        var map = PointerMap<Int>()
        var reference: [UInt64: Int] = [:]
        // Few distinct keys (collisions, long probe runs, key 0) and many operations.
        let pool: [UInt64] = (0..<300).map { i in i == 0 ? 0 : (i % 3 == 0 ? UInt64(i) << 4 : UInt64.random(in: 1...UInt64.max, using: &rng)) }
        for step in 0..<200_000 {
            let k = pool.randomElement(using: &rng)!
            switch Int.random(in: 0..<4, using: &rng) {
            case 0, 1:
                map[k] = step
                reference[k] = step
            case 2:
                XCTAssertEqual(map.removeValue(forKey: k), reference.removeValue(forKey: k))
            default:
                XCTAssertEqual(map[k], reference[k])
            }
            if step % 50_000 == 49_999 {
                map.removeAll()
                reference.removeAll()
            }
            XCTAssertEqual(map.count, reference.count)
        }
        for k in pool { XCTAssertEqual(map[k], reference[k], "key \(k)") }
    }

    func testSettingNilRemoves() {
        var map = PointerMap<String>()
        map[0x7f00_1234_5000] = "a"
        map[0] = "zero"
        XCTAssertEqual(map.count, 2)
        map[0x7f00_1234_5000] = nil
        map[0] = nil
        XCTAssertTrue(map.isEmpty)
        XCTAssertNil(map[0x7f00_1234_5000])
    }
}
