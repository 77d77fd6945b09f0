@testable import SyncampAnalysis
import XCTest

/// `SmallMap`, the storage linker's per-device and per-thread maps: the same answers as a
/// `Dictionary` under any mix of sets, removals and lookups.
final class SmallMapTests: XCTestCase {
    func testMatchesADictionary() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            var small = SmallMap<UInt32, Int>(), dict: [UInt32: Int] = [:]
            for step in 0..<200 {
                let key = UInt32.random(in: 0..<12, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0:
                    small[key] = step
                    dict[key] = step
                case 1:
                    small[key] = nil
                    dict[key] = nil
                case 2:
                    XCTAssertEqual(small.removeValue(forKey: key), dict.removeValue(forKey: key))
                default:
                    XCTAssertEqual(small[key], dict[key])
                }
                XCTAssertEqual(small.isEmpty, dict.isEmpty)
                XCTAssertEqual(Dictionary(uniqueKeysWithValues: small.entries.map { ($0.key, $0.value) }), dict)
            }
        }
    }

    /// Entries stay in the order their keys were first added; setting a key again keeps its place.
    func testEntriesKeepTheirOrder() {
        var m = SmallMap<UInt32, String>()
        m[7] = "a"
        m[3] = "b"
        m[9] = "c"
        m[3] = "B"
        m[7] = nil
        XCTAssertEqual(m.entries.map(\.key), [3, 9])
        XCTAssertEqual(m.entries.map(\.value), ["B", "c"])
    }
}
