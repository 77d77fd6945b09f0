import Foundation
import XCTest

/// The one way a test says that something it needs is missing: a skip that names it on a
/// laptop, and a failure under CI=true, where scripts/test.sh installs everything the tests need.
///
/// Test targets cannot import one another, so the other test targets compile this same file
/// through a symlink (Tests/<Target>/Prerequisite.swift -> ../EndToEndTests/Prerequisite.swift).
///
///     guard FileManager.default.isExecutableFile(atPath: tool) else {
///         throw Prerequisite.unavailable("\(tool) is missing (scripts/testbed.sh --deps installs it)")
///     }
enum Prerequisite {
    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    static func unavailable(_ reason: String, file: StaticString = #filePath, line: UInt = #line) -> XCTSkip {
        if inCI { XCTFail("CI=true: " + reason, file: file, line: line) }
        return XCTSkip((inCI ? "CI=true made this a failure above: " : "skipped (a prerequisite is missing): ") + reason)
    }
}
