import Foundation
import XCTest

/// An image in a folder whose name has a space and non-ASCII letters is reported under its
/// real path (it used to come out as `/srv/vm%20images/...`).
final class ImagePathEndToEndTests: XCTestCase {
    func testImagePathsAreReportedExactly() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self).appendingPathComponent("vm images ü")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let img = try Harness.makeImage(dir, name: "disk one.qcow2")
        let (json, _) = try Harness.traceAndReport(dir, binary: Harness.qemuIO,
                                                   args: Harness.qemuIOArgs(cache: "writeback", commands: ["write 0 4k", "flush"], image: img))
        let images = json.array("images")
        XCTAssertEqual(images.count, 1)
        XCTAssertEqual(images.first?["path"] as? String, URL(fileURLWithPath: img).resolvingSymlinksInPath().path)
        XCTAssertEqual(images.first?["host_fdatasyncs"] as? Int, 5)
        XCTAssertTrue(json.array("ops").filter { $0["kind"] as? String == "flush" }.allSatisfy { ($0["image"] as? String)?.hasSuffix("/disk one.qcow2") == true })
    }
}
