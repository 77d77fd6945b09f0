import Foundation
import XCTest

/// A short run of the capture fuzzer (scripts/fuzz.sh runs the long one): mutated real captures
/// through the reader and the whole analyzer, never a crash.
final class FuzzSmokeTests: XCTestCase {
    func testShortFuzzRunHasNoCrash() throws {
        let fuzz = Harness.products.appendingPathComponent("SyncampFuzz").path
        guard FileManager.default.isExecutableFile(atPath: fuzz) else {
            throw Harness.unavailable("the SyncampFuzz binary is missing at \(fuzz) (swift build)")
        }
        let fixtures = Harness.repo.appendingPathComponent("Tests/Fixtures")
        let seeds = try FileManager.default.contentsOfDirectory(atPath: fixtures.path)
            .filter { $0.hasSuffix(".syncamp") }.map { fixtures.appendingPathComponent($0).path }
        XCTAssertGreaterThanOrEqual(seeds.count, 2)
        let r = try Harness.run(fuzz, ["--iterations", "3000", "--seconds", "20"] + seeds)
        XCTAssertEqual(r.status, 0, "the fuzzer crashed: \(r.stderr.suffix(2000))")
        XCTAssertTrue(r.stdout.contains("0 crashes"), r.stdout)
    }
}
