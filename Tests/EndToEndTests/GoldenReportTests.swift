import Foundation
import XCTest

/// The analyzer's answers on fixed inputs: every committed capture (Tests/Fixtures,
/// bench/seeds) in every report and export format, byte for byte as in Tests/Golden
/// (`scripts/golden.sh`). Needs no root: it only reads captures.
final class GoldenReportTests: XCTestCase {
    func testEveryCommittedCaptureReportsAsFrozen() throws {
        try Harness.require(Harness.analyzer, "the analyzer build (swift build)")
        let r = try Harness.run("/usr/bin/env", ["ANALYZER=\(Harness.analyzer)",
                                                  Harness.repo.appendingPathComponent("scripts/golden.sh").path])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("63 reports identical"), "every capture and format compared: \(r.stdout)")
    }
}
