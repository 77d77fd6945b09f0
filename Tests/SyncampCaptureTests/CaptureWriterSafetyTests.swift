#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import SyncampCapture
import XCTest

/// The writer never replaces a file unless asked, and keeps captures private (mode 0600).
final class CaptureWriterSafetyTests: CaptureTestCase {
    private func mode(_ path: String) throws -> mode_t {
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0, "stat \(path)")
        return st.st_mode & 0o7777
    }

    func testNewCaptureHasMode0600() throws {
        let path = dir.path("new.syncamp")
        let w = try CaptureWriter(path: path, manifest: CaptureFixtures.manifest())
        try w.finish(trailer: CaptureFixtures.trailer)
        XCTAssertEqual(try mode(path), 0o600)
    }

    func testExistingFileIsNotReplacedWithoutForce() throws {
        let path = dir.path("existing.syncamp")
        let original = Data("keep me".utf8)
        try original.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try CaptureWriter(path: path, manifest: CaptureFixtures.manifest())) { error in
            XCTAssertEqual(error as? CaptureError, .alreadyExists(path: path))
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), original, "the file is untouched")
    }

    func testForceReplacesAnExistingFileAndMakesItPrivate() throws {
        let path = dir.path("forced.syncamp")
        try Data(repeating: 0x41, count: 100_000).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(chmod(path, 0o644), 0)
        let w = try CaptureWriter(path: path, manifest: CaptureFixtures.manifest(), force: true)
        try w.finish(trailer: CaptureFixtures.trailer)
        XCTAssertEqual(try mode(path), 0o600)
        var r = try CaptureReader(path: path)
        XCTAssertEqual(CaptureFixtures.readAll(&r), [.trailer(CaptureFixtures.trailer)], "the old bytes are gone")
        XCTAssertNil(r.damage)
    }

    func testWriterDoesNotFollowAnExistingSymlinkWithoutForce() throws {
        let target = dir.path("target.txt")
        try Data("secret".utf8).write(to: URL(fileURLWithPath: target))
        let link = dir.path("link.syncamp")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        XCTAssertThrowsError(try CaptureWriter(path: link, manifest: CaptureFixtures.manifest())) { error in
            XCTAssertEqual(error as? CaptureError, .alreadyExists(path: link))
        }
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "secret")
    }

    func testMissingDirectoryCannotBeOpened() {
        let path = dir.path("no/such/dir/x.syncamp")
        XCTAssertThrowsError(try CaptureWriter(path: path, manifest: CaptureFixtures.manifest())) { error in
            guard case let .cannotOpen(p, reason)? = error as? CaptureError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, path)
            XCTAssertFalse(reason.isEmpty)
        }
    }

    func testHeaderAndManifestAreOnDiskAsSoonAsTheWriterIsCreated() throws {
        let path = dir.path("early.syncamp")
        let w = try CaptureWriter(path: path, manifest: CaptureFixtures.manifest())
        var r = try CaptureReader(path: path)
        XCTAssertEqual(r.manifest, CaptureFixtures.manifest())
        XCTAssertNil(r.next())
        XCTAssertTrue(r.damage?.reason.contains("cut short") ?? false)
        try w.appendEvent(CaptureFixtures.uprobe(1))
        try w.flush()
        var r2 = try CaptureReader(path: path)
        XCTAssertEqual(CaptureFixtures.readAll(&r2), [.event(CaptureFixtures.uprobe(1))])
        XCTAssertEqual(w.eventCount, 1)
    }
}
