import Foundation
import SyncampCapture
import XCTest

/// A capture cut at any byte yields every whole record before the cut, and says it was cut short.
final class CaptureCutShortTests: CaptureTestCase {
    func testEveryCutAfterTheManifestYieldsTheWholeRecordsBeforeIt() throws {
        let full = try standardCaptureBytes()
        let ends = CaptureFixtures.recordEnds(full)
        XCTAssertEqual(ends.count, CaptureFixtures.standardRecords.count + 1, "manifest + records")
        XCTAssertEqual(ends.last, full.count)
        let manifestEnd = ends[0]
        let recordEnds = Array(ends.dropFirst())

        for cut in manifestEnd ... full.count {
            var reader = try reader(Array(full.prefix(cut)))
            let records = CaptureFixtures.readAll(&reader)
            let whole = recordEnds.filter { $0 <= cut }.count
            XCTAssertEqual(records.count, whole, "cut at \(cut)")
            XCTAssertEqual(records, Array(CaptureFixtures.standardRecords.prefix(whole)), "cut at \(cut)")
            XCTAssertLessThanOrEqual(reader.offset, cut)
            if cut == full.count {
                XCTAssertNil(reader.damage)
                XCTAssertNotNil(reader.trailer)
            } else {
                let damage = try XCTUnwrap(reader.damage, "cut at \(cut)")
                XCTAssertTrue(damage.reason.contains("cut short"), "cut at \(cut): \(damage.reason)")
                XCTAssertEqual(damage.offset, recordEnds.last { $0 <= cut } ?? manifestEnd, "cut at \(cut)")
                XCTAssertTrue(damage.description.hasPrefix("at byte \(damage.offset): "))
                XCTAssertNil(reader.trailer)
            }
            XCTAssertNil(reader.next(), "a damaged reader stays stopped")
        }
    }

    func testCaptureWithoutTrailerIsCutShortAtItsEnd() throws {
        let path = dir.path("no-trailer.syncamp")
        let records = Array(CaptureFixtures.standardRecords.dropLast())
        try CaptureFixtures.write(records, to: path)
        var reader = try CaptureReader(path: path)
        XCTAssertEqual(CaptureFixtures.readAll(&reader), records)
        XCTAssertEqual(reader.damage?.offset, reader.fileSize)
        XCTAssertTrue(reader.damage?.reason.contains("without a trailer") ?? false)
    }

    func testCutInsideTheFileHeaderThrowsTruncatedHeader() throws {
        let full = try standardCaptureBytes()
        for cut in 0 ..< CaptureFormat.fileHeaderSize {
            XCTAssertThrowsError(try reader(Array(full.prefix(cut))), "cut at \(cut)") { error in
                XCTAssertEqual(error as? CaptureError, .emptyOrTruncatedHeader(path: "mem.syncamp", bytes: cut))
            }
        }
    }

    func testCutInsideTheManifestThrowsBadManifest() throws {
        let full = try standardCaptureBytes()
        let manifestEnd = CaptureFixtures.recordEnds(full)[0]
        for cut in CaptureFormat.fileHeaderSize ..< manifestEnd {
            XCTAssertThrowsError(try reader(Array(full.prefix(cut))), "cut at \(cut)") { error in
                guard case .badManifest(path: "mem.syncamp", reason: _)? = error as? CaptureError else {
                    return XCTFail("cut at \(cut): \(error)")
                }
            }
        }
    }

    func testFileCutOnDiskReadsThroughPath() throws {
        let full = try standardCaptureBytes()
        let ends = CaptureFixtures.recordEnds(full)
        let path = dir.path("cut.syncamp")
        // Cut in the middle of the fourth record after the manifest.
        try Data(full.prefix(ends[4] - 30)).write(to: URL(fileURLWithPath: path))
        var reader = try CaptureReader(path: path)
        XCTAssertEqual(CaptureFixtures.readAll(&reader), Array(CaptureFixtures.standardRecords.prefix(3)))
        XCTAssertEqual(reader.damage?.offset, ends[3])
        XCTAssertTrue(reader.damage?.reason.contains("runs past the end of the file") ?? false)
    }
}
