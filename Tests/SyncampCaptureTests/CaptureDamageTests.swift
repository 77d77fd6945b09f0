import Foundation
import SyncampCapture
import XCTest

/// Files that are not captures, or damaged ones: typed errors up front, `damage` in the middle.
final class CaptureDamageTests: CaptureTestCase {
    // MARK: - Header and manifest

    func testWrongMagicIsNotACapture() throws {
        var bytes = try standardCaptureBytes()
        bytes[0] = UInt8(ascii: "X")
        XCTAssertThrowsError(try reader(bytes)) { error in
            XCTAssertEqual(error as? CaptureError, .notACapture(path: "mem.syncamp"))
            XCTAssertTrue("\(error)".contains("not a syncamp capture"))
        }
    }

    func testShortFileThatIsNotAMagicPrefixIsNotACapture() {
        XCTAssertThrowsError(try reader(Array("ELF".utf8))) { error in
            XCTAssertEqual(error as? CaptureError, .notACapture(path: "mem.syncamp"))
        }
    }

    func testEmptyFileIsATruncatedHeader() throws {
        let path = dir.path("empty.syncamp")
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        XCTAssertThrowsError(try CaptureReader(path: path)) { error in
            XCTAssertEqual(error as? CaptureError, .emptyOrTruncatedHeader(path: path, bytes: 0))
            XCTAssertTrue("\(error)".contains("0 bytes"))
        }
    }

    func testMissingFileCannotBeOpened() {
        let path = dir.path("does-not-exist.syncamp")
        XCTAssertThrowsError(try CaptureReader(path: path)) { error in
            guard case let .cannotOpen(p, _)? = error as? CaptureError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, path)
        }
    }

    func testUnknownVersionIsUnsupported() throws {
        var bytes = try standardCaptureBytes()
        CaptureFixtures.putU32(&bytes, 8, 99)
        XCTAssertThrowsError(try reader(bytes)) { error in
            XCTAssertEqual(error as? CaptureError, .unsupportedVersion(path: "mem.syncamp", found: 99))
            let text = "\(error)"
            XCTAssertTrue(text.contains("version 99"), text)
            XCTAssertTrue(text.contains("version \(CaptureFormat.version)"), text)
        }
    }

    func testManifestThatIsNotJSONIsBadManifest() throws {
        var bytes = try standardCaptureBytes()
        let manifestEnd = CaptureFixtures.recordEnds(bytes)[0]
        for i in 24 ..< manifestEnd { bytes[i] = UInt8(ascii: "#") }
        XCTAssertThrowsError(try reader(bytes)) { error in
            guard case let .badManifest(_, reason)? = error as? CaptureError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("invalid JSON"), reason)
        }
    }

    func testFirstRecordThatIsNotTheManifestIsBadManifest() throws {
        var bytes = try standardCaptureBytes()
        CaptureFixtures.putU32(&bytes, 16, CaptureFormat.RecordType.event.rawValue)
        XCTAssertThrowsError(try reader(bytes)) { error in
            guard case let .badManifest(_, reason)? = error as? CaptureError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("type 2"), reason)
        }
    }

    func testManifestLengthPastTheEndIsBadManifest() throws {
        var bytes = try standardCaptureBytes()
        CaptureFixtures.putU32(&bytes, 20, 0xFFFF_FFF0)
        XCTAssertThrowsError(try reader(bytes)) { error in
            guard case .badManifest? = error as? CaptureError else { return XCTFail("\(error)") }
        }
    }

    func testManifestWithATooSmallEventSizeIsBadManifest() throws {
        var m = CaptureFixtures.manifest()
        m.eventSize = 64
        let path = dir.path("small-events.syncamp")
        _ = try CaptureWriter(path: path, manifest: m)
        XCTAssertThrowsError(try CaptureReader(path: path)) { error in
            guard case let .badManifest(_, reason)? = error as? CaptureError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("event size 64"), reason)
        }
    }

    func testManifestWithUnknownFieldsStillReads() throws {
        let m = CaptureFixtures.manifest()
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(m)) as? [String: Any])
        json["addedInALaterVersion"] = ["x": 1]
        let payload = try [UInt8](JSONSerialization.data(withJSONObject: json))
        var bytes = CaptureFormat.magic
        bytes += [1, 0, 0, 0, 0, 0, 0, 0]
        bytes += CaptureFixtures.record(type: 1, payload: payload)
        bytes += CaptureFixtures.record(type: 2, payload: CaptureFixtures.uprobe(1).encoded())
        var r = try reader(bytes)
        XCTAssertEqual(r.manifest, m)
        XCTAssertEqual(CaptureFixtures.readAll(&r), [.event(CaptureFixtures.uprobe(1))])
    }

    // MARK: - Damage after the manifest

    func testAbsurdRecordLengthStopsReadingKeepingEarlierRecords() throws {
        var bytes = try standardCaptureBytes()
        let ends = CaptureFixtures.recordEnds(bytes)
        let k = 6  // the header of the 7th record after the manifest
        CaptureFixtures.putU32(&bytes, ends[k] + 4, 0xFFFF_FFF0)
        var r = try reader(bytes)
        XCTAssertEqual(CaptureFixtures.readAll(&r), Array(CaptureFixtures.standardRecords.prefix(k)))
        let damage = try XCTUnwrap(r.damage)
        XCTAssertEqual(damage.offset, ends[k])
        XCTAssertTrue(damage.reason.contains("damaged"), damage.reason)
        XCTAssertTrue(damage.reason.contains("\(0xFFFF_FFF0)"), damage.reason)
        XCTAssertNil(r.trailer)
    }

    func testAbsurdLengthOfAnUnknownRecordTypeIsDamage() throws {
        var bytes = try standardCaptureBytes()
        let ends = CaptureFixtures.recordEnds(bytes)
        CaptureFixtures.putU32(&bytes, ends[2], 77)
        CaptureFixtures.putU32(&bytes, ends[2] + 4, UInt32((1 << 20) + 1))
        var r = try reader(bytes)
        XCTAssertEqual(CaptureFixtures.readAll(&r).count, 2)
        XCTAssertTrue(r.damage?.reason.contains("damaged") ?? false)
    }

    func testEventRecordOfTheWrongLengthIsDamage() throws {
        var bytes = CaptureFormat.magic + [1, 0, 0, 0, 0, 0, 0, 0]
        bytes += CaptureFixtures.record(type: 1, payload: try [UInt8](JSONEncoder().encode(CaptureFixtures.manifest())))
        bytes += CaptureFixtures.record(type: 2, payload: CaptureFixtures.uprobe(0).encoded())
        let badAt = bytes.count
        bytes += CaptureFixtures.record(type: 2, payload: CaptureFixtures.uprobe(1).encoded() + [0, 0, 0, 0, 0, 0, 0, 0])
        bytes += CaptureFixtures.record(type: 2, payload: CaptureFixtures.uprobe(2).encoded())
        var r = try reader(bytes)
        XCTAssertEqual(CaptureFixtures.readAll(&r), [.event(CaptureFixtures.uprobe(0))])
        let damage = try XCTUnwrap(r.damage)
        XCTAssertEqual(damage.offset, badAt)
        XCTAssertTrue(damage.reason.contains("has 152 bytes, the manifest says 144"), damage.reason)
        XCTAssertTrue(damage.reason.contains("damaged"), damage.reason)
    }

    func testLostRecordOfTheWrongLengthIsDamage() throws {
        var bytes = CaptureFormat.magic + [1, 0, 0, 0, 0, 0, 0, 0]
        bytes += CaptureFixtures.record(type: 1, payload: try [UInt8](JSONEncoder().encode(CaptureFixtures.manifest())))
        bytes += CaptureFixtures.record(type: 3, payload: [UInt8](repeating: 1, count: 12))
        var r = try reader(bytes)
        XCTAssertEqual(CaptureFixtures.readAll(&r), [])
        XCTAssertTrue(r.damage?.reason.contains("lost-events") ?? false)
    }

    func testNoteThatIsNotJSONIsDamage() throws {
        var bytes = CaptureFormat.magic + [1, 0, 0, 0, 0, 0, 0, 0]
        bytes += CaptureFixtures.record(type: 1, payload: try [UInt8](JSONEncoder().encode(CaptureFixtures.manifest())))
        bytes += CaptureFixtures.record(type: 4, payload: Array("{not json".utf8))
        var r = try reader(bytes)
        XCTAssertEqual(CaptureFixtures.readAll(&r), [])
        XCTAssertTrue(r.damage?.reason.contains("note") ?? false)
    }

    func testSecondManifestIsDamage() throws {
        var bytes = try standardCaptureBytes()
        let ends = CaptureFixtures.recordEnds(bytes)
        let manifestRecord = Array(bytes[16 ..< ends[0]])
        bytes.insert(contentsOf: manifestRecord, at: ends[1])
        var r = try reader(bytes)
        XCTAssertEqual(CaptureFixtures.readAll(&r), Array(CaptureFixtures.standardRecords.prefix(1)))
        XCTAssertTrue(r.damage?.reason.contains("second manifest") ?? false)
    }

    func testUnknownRecordTypeIsSkippedAndReadingContinues() throws {
        var bytes = try standardCaptureBytes()
        let ends = CaptureFixtures.recordEnds(bytes)
        let unknown = CaptureFixtures.record(type: 42, payload: [UInt8](repeating: 0xAB, count: 33))
        let empty = CaptureFixtures.record(type: 0x1000, payload: [])
        bytes.insert(contentsOf: unknown + empty, at: ends[3])
        var r = try reader(bytes)
        var expected = CaptureFixtures.standardRecords
        expected.insert(contentsOf: [.unknown(type: 42, length: 33), .unknown(type: 0x1000, length: 0)], at: 3)
        XCTAssertEqual(CaptureFixtures.readAll(&r), expected)
        XCTAssertNil(r.damage)
        XCTAssertNotNil(r.trailer)
    }

    func testRecordsAfterTheTrailerAreStillRead() throws {
        var bytes = try standardCaptureBytes()
        bytes += CaptureFixtures.record(type: 2, payload: CaptureFixtures.uprobe(3).encoded())
        var r = try reader(bytes)
        let records = CaptureFixtures.readAll(&r)
        XCTAssertEqual(records.last, .event(CaptureFixtures.uprobe(3)))
        XCTAssertNil(r.damage, "a trailer was read, so the end of the file is not damage")
    }

    func testReaderOverADataSliceWithNonZeroStartIndex() throws {
        let bytes = try standardCaptureBytes()
        let padded = Data([0xEE, 0xEE, 0xEE] + bytes)
        let slice = padded[3...]
        XCTAssertEqual(slice.startIndex, 3)
        var r = try CaptureReader(data: slice)
        XCTAssertEqual(CaptureFixtures.readAll(&r), CaptureFixtures.standardRecords)
        XCTAssertNil(r.damage)
    }

    func testErrorDescriptionsAreOneActionableSentence() {
        let errors: [CaptureError] = [
            .cannotOpen(path: "/x", reason: "No such file"), .alreadyExists(path: "/x"), .notACapture(path: "/x"),
            .unsupportedVersion(path: "/x", found: 2), .emptyOrTruncatedHeader(path: "/x", bytes: 3),
            .badManifest(path: "/x", reason: "r"), .writeFailed(path: "/x", reason: "ENOSPC"),
        ]
        for e in errors {
            XCTAssertTrue(e.description.contains("/x"), e.description)
            XCTAssertFalse(e.description.contains("\n"))
        }
        XCTAssertTrue(CaptureError.alreadyExists(path: "/x").description.contains("--force"))
    }
}
