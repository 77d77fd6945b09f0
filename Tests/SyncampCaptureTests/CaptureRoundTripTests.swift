import Foundation
import SyncampCapture
import SyncampQcow2
import XCTest

/// What the writer writes, the reader reads back unchanged.
final class CaptureRoundTripTests: CaptureTestCase {
    func testWrittenCaptureReadsBackRecordForRecord() throws {
        let path = dir.path("round-trip.syncamp")
        let manifest = CaptureFixtures.manifest()
        try CaptureFixtures.write(CaptureFixtures.standardRecords, to: path, manifest: manifest)

        var reader = try CaptureReader(path: path)
        XCTAssertEqual(reader.path, path)
        XCTAssertEqual(reader.manifest, manifest)
        XCTAssertEqual(reader.manifest.eventSize, Event.size)
        XCTAssertEqual(reader.manifest.formatVersion, CaptureFormat.version)
        XCTAssertEqual(reader.manifest.clock, "CLOCK_MONOTONIC")
        XCTAssertNil(reader.trailer, "the trailer is only known once read")

        let records = CaptureFixtures.readAll(&reader)
        XCTAssertEqual(records.count, CaptureFixtures.standardRecords.count)
        for (i, (got, want)) in zip(records, CaptureFixtures.standardRecords).enumerated() {
            XCTAssertEqual(got, want, "record \(i)")
        }
        XCTAssertEqual(reader.trailer, CaptureFixtures.trailer)
        XCTAssertNil(reader.damage)
        XCTAssertEqual(reader.offset, reader.fileSize)
        XCTAssertNil(reader.next(), "reading past the end keeps returning nil")
        XCTAssertNil(reader.damage)
    }

    /// A record larger than the reader's 4 MiB window (an image record of a fragmented image)
    /// between events: the window grows for it and goes back to its chunk after it, and every
    /// record around it reads back unchanged.
    func testARecordLargerThanTheReadWindowReadsBackWithTheEventsAroundIt() throws {
        let path = dir.path("large-record.syncamp")
        // 200,000 separate ranges: about 6 MiB of JSON.
        let ranges = (0 ..< 200_000).map { ImageState.ClusterRange(start: UInt64($0) * 4, end: UInt64($0) * 4 + 1) }
        let image = ImageState(path: "/var/lib/vm/fragmented.qcow2", size: 1 << 40, clusterBits: 16, l1Size: 16,
                               allocatedClusters: ranges, refcountTableEntries: 1, hostClusters: 800_001, fileSize: 800_001 << 16)
        var records: [CaptureRecord] = (0 ..< 3).map { .event(CaptureFixtures.uprobe($0)) }
        records.append(.image(image))
        records += (3 ..< 2_000).map { .event(CaptureFixtures.uprobe($0)) }
        records.append(.trailer(CaptureFixtures.trailer))
        try CaptureFixtures.write(records, to: path)
        XCTAssertGreaterThan(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0, 5 << 20, "the image record alone is past the 4 MiB window")

        var reader = try CaptureReader(path: path)
        XCTAssertEqual(CaptureFixtures.readAll(&reader), records)
        XCTAssertNil(reader.damage)
        // The same through the analysis's path: events read into a slot, other records returned.
        var again = try CaptureReader(path: path)
        let slot = UnsafeMutablePointer<Event>.allocate(capacity: 1)
        defer { slot.deallocate() }
        var read: [CaptureRecord] = []
        while true {
            if again.readEvent(into: slot) {
                read.append(.event(slot.pointee))
            } else if let r = again.next() {
                read.append(r)
            } else {
                break
            }
        }
        XCTAssertEqual(read, records)
        XCTAssertNil(again.damage)
    }

    func testEveryKindOfEventKeepsAllFields() throws {
        let records = try readBack(CaptureFixtures.standardRecords)
        let events = records.compactMap { r -> Event? in if case let .event(e) = r { return e }; return nil }
        XCTAssertEqual(events.filter { $0.kind == .uprobe }.count, 5)
        XCTAssertEqual(events.filter { $0.kind == .syscallEnter }.count, 5)
        XCTAssertEqual(events.filter { $0.kind == .syscallExit }.count, 5)

        let u = try XCTUnwrap(events.first { $0.kind == .uprobe && $0.derefOK == 3 })
        XCTAssertEqual(u.args, [0x7f00_0000_0003, 3 * 4096, 4096, 0xdead_beef_0000_0003, 5, 6])
        XCTAssertEqual(u.derefs, [0x55aa_0003, 8, 9, 0xffff_ffff_ffff_ffff])
        XCTAssertTrue(u.hasDeref(0))
        XCTAssertTrue(u.hasDeref(1))
        XCTAssertFalse(u.hasDeref(2))
        XCTAssertFalse(u.hasDeref(3))
        XCTAssertFalse(u.hasDeref(4), "past the deref slots")

        let exit = try XCTUnwrap(events.first { $0.kind == .syscallExit })
        XCTAssertEqual(Int64(bitPattern: exit.args[0]), -5, "a negative return value survives")
        XCTAssertEqual(Syscall(rawValue: exit.probeID), .fsync)
    }

    func testLostNoteAndTrailerRecords() throws {
        let records = try readBack(CaptureFixtures.standardRecords)
        XCTAssertEqual(records.filter { if case .lost = $0 { return true }; return false },
                       [.lost(cpu: 0, count: 7), .lost(cpu: 3, count: 12)])
        XCTAssertTrue(records.contains(.note(CaptureNote(timestampNs: CaptureFixtures.startNs + 2_500, kind: "detached",
                                                         message: "qemu-io detached"))))
        XCTAssertEqual(records.last, .trailer(CaptureFixtures.trailer))
    }

    func testCaptureWithOnlyAManifestAndTrailer() throws {
        let records = try readBack([.trailer(CaptureFixtures.trailer)])
        XCTAssertEqual(records, [.trailer(CaptureFixtures.trailer)])
    }

    func testSmallWriterBufferWritesTheSameBytes() throws {
        // Notes are left out: their JSON key order is not deterministic (see the report on CaptureWriter.appendNote).
        let records = CaptureFixtures.standardRecords.filter { if case .note = $0 { return false }; return true }
        let a = dir.path("big-buffer.syncamp"), b = dir.path("tiny-buffer.syncamp")
        try CaptureFixtures.write(records, to: a)
        let w = try CaptureWriter(path: b, manifest: CaptureFixtures.manifest(), bufferLimit: 1)
        for r in records {
            try w.append(r)
        }
        XCTAssertEqual(w.eventCount, 15)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a)), try Data(contentsOf: URL(fileURLWithPath: b)))
    }

    func testRawEventBytesAreWrittenVerbatim() throws {
        let path = dir.path("raw.syncamp")
        let e = CaptureFixtures.uprobe(7)
        let w = try CaptureWriter(path: path, manifest: CaptureFixtures.manifest())
        try e.encoded().withUnsafeBytes { try w.appendEvent($0) }
        try w.finish(trailer: CaptureFixtures.trailer)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let ends = CaptureFixtures.recordEnds(bytes)
        XCTAssertEqual(ends.count, 3, "manifest, event, trailer")
        XCTAssertEqual(CaptureFixtures.u32(bytes, ends[0]), CaptureFormat.RecordType.event.rawValue)
        XCTAssertEqual(Int(CaptureFixtures.u32(bytes, ends[0] + 4)), Event.size)
        XCTAssertEqual(Array(bytes[ends[0] + 8 ..< ends[1]]), e.encoded())
    }

    func testFileHeaderLayout() throws {
        let bytes = try standardCaptureBytes()
        XCTAssertEqual(Array(bytes.prefix(8)), Array("SYNCAMP\0".utf8))
        XCTAssertEqual(CaptureFixtures.u32(bytes, 8), 1, "format version")
        XCTAssertEqual(CaptureFixtures.u32(bytes, 12), 0, "flags")
        XCTAssertEqual(CaptureFixtures.u32(bytes, 16), CaptureFormat.RecordType.manifest.rawValue)
        let manifestLength = Int(CaptureFixtures.u32(bytes, 20))
        let json = try JSONSerialization.jsonObject(with: Data(bytes[24 ..< 24 + manifestLength])) as? [String: Any]
        XCTAssertEqual(json?["eventSize"] as? Int, 144)
        XCTAssertEqual(json?["tool"] as? String, "syncamp-collector 0.1.0")
    }

    // MARK: - Event encoding

    func testEventSizeMatchesTheCStruct() {
        XCTAssertEqual(Event.size, 144)
        XCTAssertEqual(Event.argCount, 6)
        XCTAssertEqual(Event.derefCount, 4)
        XCTAssertEqual(Event.layoutVersion, 3)
        XCTAssertEqual(CaptureFixtures.uprobe(1).encoded().count, 144)
    }

    func testEventEncodedDecodesToTheSameEvent() throws {
        for e in [CaptureFixtures.uprobe(0), CaptureFixtures.uprobe(13), CaptureFixtures.syscallEnter(2), CaptureFixtures.syscallExit(0)] {
            let decoded = e.encoded().withUnsafeBytes { Event(bytes: $0) }
            XCTAssertEqual(decoded, e)
        }
    }

    func testEventFieldOffsetsAreLittleEndianCLayout() throws {
        let e = Event(timestamp: 0x0102_0304_0506_0708, pid: 0x1111_2222, tid: 0x3333_4444, cpu: 7, kind: .syscallExit,
                      probeID: 0xABCD, args: [1, 2, 3, 4, 5, 6], derefs: [10, 11, 12, 13], derefOK: 0b1010,
                      coroutine: 0x5630_9b00_1000, coroutineCaller: 0x5630_9b00_2000, coroutineArg: 0x7f00_0000_0030, coroutineOpaque: 0x7f00_0000_0040)
        let b = e.encoded()
        XCTAssertEqual(Array(b[0..<8]), [8, 7, 6, 5, 4, 3, 2, 1], "ts_ns at 0")
        XCTAssertEqual(CaptureFixtures.u32(b, 8), 0x1111_2222, "pid at 8")
        XCTAssertEqual(CaptureFixtures.u32(b, 12), 0x3333_4444, "tid at 12")
        XCTAssertEqual(CaptureFixtures.u32(b, 16), 7, "cpu at 16")
        XCTAssertEqual(CaptureFixtures.u32(b, 20), 3 | 0xABCD << 16, "kind and probe_id at 20")
        XCTAssertEqual(b[24], 1, "args[0] at 24")
        XCTAssertEqual(b[64], 6, "args[5] at 64")
        XCTAssertEqual(b[72], 10, "derefs[0] at 72")
        XCTAssertEqual(b[96], 13, "derefs[3] at 96")
        XCTAssertEqual(CaptureFixtures.u32(b, 104), 0x9b00_1000, "coroutine at 104 (low half)")
        XCTAssertEqual(CaptureFixtures.u32(b, 108), 0x5630, "coroutine at 104 (high half)")
        XCTAssertEqual(CaptureFixtures.u32(b, 112), 0x9b00_2000, "coroutine_caller at 112")
        XCTAssertEqual(CaptureFixtures.u32(b, 120), 0x30, "coroutine_arg at 120")
        XCTAssertEqual(CaptureFixtures.u32(b, 128), 0x40, "coroutine_opaque at 128")
        XCTAssertEqual(CaptureFixtures.u32(b, 136), 0b1010, "deref_ok at 136")
        XCTAssertEqual(CaptureFixtures.u32(b, 140), 0, "reserved")
    }

    func testShortArgumentListsArePaddedWithZeros() {
        let e = Event(timestamp: 1, pid: 1, tid: 1, cpu: 0, kind: .syscallEnter, probeID: 1, args: [9])
        XCTAssertEqual(e.args, [9, 0, 0, 0, 0, 0])
        XCTAssertEqual(e.derefs, [0, 0, 0, 0])
        XCTAssertEqual(e.kind, .syscallEnter)
    }

    func testUnknownEventKindIsKeptRaw() throws {
        var bytes = CaptureFixtures.uprobe(2).encoded()
        bytes[20] = 99
        bytes[21] = 0
        let e = try XCTUnwrap(bytes.withUnsafeBytes { Event(bytes: $0) })
        XCTAssertEqual(e.rawKind, 99)
        XCTAssertNil(e.kind)
        XCTAssertEqual(e.encoded(), bytes)
    }

    func testEventFromTooFewBytesIsNil() {
        let bytes = [UInt8](repeating: 0, count: Event.size - 1)
        XCTAssertNil(bytes.withUnsafeBytes { Event(bytes: $0) })
    }

    private func readBack(_ records: [CaptureRecord]) throws -> [CaptureRecord] {
        let path = dir.path("rb-\(UUID().uuidString).syncamp")
        try CaptureFixtures.write(records, to: path)
        var reader = try CaptureReader(path: path)
        let out = CaptureFixtures.readAll(&reader)
        XCTAssertNil(reader.damage)
        return out
    }
}
