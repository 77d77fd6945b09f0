@testable import SyncampAnalysis
import XCTest

/// `Divisor`: the model's shift for a power of two, a division for anything else; the same quotients and remainders either way.
final class DivisorTests: XCTestCase {
    func testQuotientsAndRemaindersMatchDivision() {
        var rng = SystemRandomNumberGenerator()
        let divisors: [UInt64] = [1, 2, 512, 4096, 65536, 1 << 21, 1 << 40, 3, 1000, 65535, 3 * 4096, UInt64.max]
        for d in divisors {
            let divisor = Divisor(d)
            XCTAssertEqual(divisor.value, d)
            for a in [0, 1, d - 1, d, d &+ 1, UInt64.max, UInt64.max - 1] + (0..<200).map({ _ in UInt64.random(in: 0...UInt64.max, using: &rng) }) {
                XCTAssertEqual(a / divisor, a / d, "\(a) / \(d)")
                XCTAssertEqual(a % divisor, a % d, "\(a) % \(d)")
            }
        }
    }
}
