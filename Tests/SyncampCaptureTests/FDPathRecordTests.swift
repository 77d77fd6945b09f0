import Foundation
@testable import SyncampCapture
import XCTest

/// The file behind a synced fd, byte for byte, and the `fd` notes of older captures.
final class FDPathRecordTests: XCTestCase {
    let manifest = Manifest(tool: "t", createdAt: "2026-11-29T00:00:00Z", hostname: "h", kernelRelease: "6.18",
                            startMonotonicNs: 0, startRealtimeNs: 0,
                            target: .init(pid: 1, mode: "spawn", command: ["qemu-io"], binaryPath: "/q", buildID: nil, hasSymtab: true),
                            kernelProbe: "tracepoint", probes: [], missingProbes: [], ringBufferBytes: 4096)

    func records(_ write: (CaptureWriter) throws -> Void) throws -> [CaptureRecord] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fdpath-\(UUID().uuidString).syncamp").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let w = try CaptureWriter(path: path, manifest: manifest, force: false)
        try write(w)
        try w.finish(trailer: Trailer(events: 0, lostEvents: 0, endMonotonicNs: 1, reason: "test", eventsPerProbe: [:]))
        var r = try CaptureReader(path: path)
        var out: [CaptureRecord] = []
        while let rec = r.next() { out.append(rec) }
        XCTAssertNil(r.damage)
        return out
    }

    func testPathsWithSpacesQuotesAndNonASCIIRoundTrip() throws {
        let paths = ["/srv/vm images/i.qcow2", "/srv/a \"quoted\" 'one'.qcow2", "/srv/ünïcödé/диск.qcow2", "/srv/100%20literal.qcow2"]
        let read = try records { w in
            for (i, p) in paths.enumerated() { try w.appendFDPath(FDPath(timestampNs: UInt64(i), fd: UInt32(9 + i), path: p)) }
        }
        let got = read.compactMap { r -> FDPath? in if case let .fdPath(p) = r { return p } else { return nil } }
        XCTAssertEqual(got.count, paths.count)
        XCTAssertEqual(got.map(\.path), paths)
        XCTAssertEqual(got.map(\.fd), [9, 10, 11, 12])
    }

    /// Captures written before the record held the path in an `fd` note, with spaces as %20.
    func testOlderCapturesFdNotesComeAsRecords() throws {
        let read = try records { w in
            try w.appendNote(CaptureNote(timestampNs: 5, kind: "fd", message: "fd=9 path=/srv/vm%20images/i.qcow2"))
            try w.appendNote(CaptureNote(timestampNs: 6, kind: "detached", message: "bye"))
        }
        XCTAssertEqual(read.first, .fdPath(FDPath(timestampNs: 5, fd: 9, path: "/srv/vm images/i.qcow2")))
        XCTAssertEqual(read.dropFirst().first, .note(CaptureNote(timestampNs: 6, kind: "detached", message: "bye")))
    }

    /// A record whose path length disagrees with its size is damage, said so, not a crash.
    func testAMalformedRecordIsReportedAsDamage() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("fdpath-bad-\(UUID().uuidString).syncamp").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let w = try CaptureWriter(path: path, manifest: manifest, force: false)
        var payload = FDPath(timestampNs: 1, fd: 3, path: "/a").payload
        payload[12] = 200  // claims a 200-byte path
        try w.appendRecord(.fdPath, payload)
        try w.finish(trailer: Trailer(events: 0, lostEvents: 0, endMonotonicNs: 1, reason: "test", eventsPerProbe: [:]))
        var r = try CaptureReader(path: path)
        while r.next() != nil {}
        XCTAssertTrue(r.damage?.reason.contains("fd-path record") == true, "\(String(describing: r.damage))")
    }
}
