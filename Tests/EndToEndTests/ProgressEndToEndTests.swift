import Foundation
import XCTest

/// `--progress`: the bar on stderr of a long read, and reports that do not change because of it.
final class ProgressEndToEndTests: XCTestCase {
    func testReportShowsProgressToTheEndWithoutChangingTheReport() throws {
        let bench = Harness.products.appendingPathComponent("syncamp-bench").path
        guard FileManager.default.isExecutableFile(atPath: bench) else {
            throw Harness.unavailable("syncamp-bench is not built at \(bench) (swift build)")
        }
        let dir = try Harness.tempDir(self)
        let capture = dir.appendingPathComponent("big.syncamp").path
        let seed = Harness.repo.appendingPathComponent("bench/seeds/mixed.syncamp").path
        // Progress is reported every 65,536 records, and once more at the end.
        let g = try Harness.run(bench, ["generate", seed, "--events", "70000", "-o", capture])
        XCTAssertEqual(g.status, 0, g.stderr)

        // auto: stderr is not a terminal here, so nothing.
        let plain = try Harness.run(Harness.analyzer, ["report", capture, "--format", "json"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertFalse(plain.stderr.contains("reading "), plain.stderr)
        let shown = try Harness.run(Harness.analyzer, ["report", capture, "--format", "json", "--progress", "always"])
        XCTAssertEqual(shown.status, 0, shown.stderr)
        XCTAssertEqual(shown.stdout, plain.stdout)
        let lines = shown.stderr.split(separator: "\n").filter { $0.hasPrefix("reading \(capture) [") }
        XCTAssertGreaterThanOrEqual(lines.count, 2, shown.stderr)
        XCTAssertTrue(lines.last?.contains("] 100% ") ?? false, shown.stderr)
    }
}
