import Foundation
import SyncampCapture
import XCTest
@testable import SyncampAnalysis

/// The live pipeline: a capture read while it is written, snapshots as the clock moves, and what `live` shows and serves.
final class LiveAnalysisTests: AnalysisTestCase {
    typealias F = AnalysisFixtures

    /// Forty write+flush pairs (80 requests, 80 host syncs), 1 us apart.
    private func pairs() -> Trace {
        var t = Trace(manifest: StreamingAnalysisTests.minimalManifest())
        for i in 0 ..< 40 { StreamingAnalysisTests.minimalPair(&t, index: UInt64(i)) }
        return t
    }

    func testAFollowingReaderWaitsAtTheEndInsteadOfCallingTheCaptureCut() throws {
        let t = pairs()
        let path = dir.path("growing.syncamp")
        let w = try CaptureWriter(path: path, manifest: t.manifest)
        let half = t.events.count / 2
        for e in t.events[..<half] { try w.appendEvent(e) }
        try w.flush()

        var reader = try CaptureReader(path: path)
        reader.following = true
        var read = 0
        while case .event? = reader.next() { read += 1 }
        XCTAssertEqual(read, half)
        XCTAssertNil(reader.damage, "the end of a file still being written is not damage")

        // What is appended later is read by the same reader, up to the trailer.
        for e in t.events[half...] { try w.appendEvent(e) }
        try w.finish(trailer: F.trailer(for: t.events))
        var sawTrailer = false
        while let r = reader.next() {
            if case .event = r { read += 1 }
            if case .trailer = r { sawTrailer = true }
        }
        XCTAssertEqual(read, t.events.count)
        XCTAssertTrue(sawTrailer)
        XCTAssertNil(reader.damage)
    }

    func testAFollowedCaptureCutShortIsReportedOnceFollowingStops() throws {
        let t = pairs()
        let path = dir.path("cut.syncamp")
        let w = try CaptureWriter(path: path, manifest: t.manifest)
        for e in t.events { try w.appendEvent(e) }
        try w.flush()
        // Half a record more: the writer died in the middle of it.
        let h = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        h.seekToEndOfFile()
        h.write(Data([1, 0, 0, 0, 200, 0, 0, 0, 7, 7]))
        h.closeFile()

        var reader = try CaptureReader(path: path)
        reader.following = true
        var read = 0
        while case .event? = reader.next() { read += 1 }
        XCTAssertEqual(read, t.events.count)
        XCTAssertNil(reader.damage)
        reader.following = false
        XCTAssertNil(reader.next())
        XCTAssertTrue(reader.damage?.reason.contains("cut short") ?? false, "\(String(describing: reader.damage))")
    }

    func testSnapshotsGrowAsTheClockMovesAndEndAtTheWorkloadsCounts() throws {
        let t = pairs()
        var records = t.events.map(CaptureRecord.event)
        records.append(.trailer(F.trailer(for: t.events)))
        let bytes = try F.captureBytes(t.manifest, records, in: dir)

        var reader = try CaptureReader(data: bytes)
        var p = AnalysisPipeline(manifest: reader.manifest, path: "live")
        var lastEvent: UInt64 = 0
        while let r = reader.next() {
            if case let .event(e) = r { lastEvent = e.timestamp }
            if case .trailer = r { break }
            p.add(r)
        }
        // Every event is in, but the reorder window holds them and no op has been quiet for long.
        XCTAssertEqual(p.snapshot.events, UInt64(t.events.count))
        XCTAssertEqual(p.snapshot.finishedOps, 0)
        XCTAssertEqual(p.snapshot.totals.guestFlushes, 0)

        // Half a second on, the events have settled into the trees; the ops are still open.
        p.advance(to: lastEvent + 500_000_000)
        XCTAssertEqual(p.snapshot.totals.hostSyncs, 80)
        XCTAssertEqual(p.snapshot.openOps, 80)
        XCTAssertEqual(p.snapshot.finishedOps, 0)

        // Two seconds of quiet later they are finished and counted. The counts are the workload's, not
        // another run of the same pipeline: 40 writes, 40 flushes, and each flush the reference's
        // steady-state pair (flush-sites §5 (d): the refcount pre-flush F2, then the guest flush F1).
        p.advance(to: lastEvent + 3_000_000_000)
        let s = p.snapshot
        let causes: [Cause: Int] = [.refcountDependency: 40, .guestFlush: 40]
        XCTAssertEqual(s.finishedOps, 80)
        XCTAssertEqual(s.openOps, 0)
        XCTAssertEqual(s.totals.guestWrites, 40)
        XCTAssertEqual(s.totals.guestFlushes, 40)
        XCTAssertEqual(s.totals.causes, causes)
        XCTAssertEqual(s.totals.hostSyncs, 80)
        let final = p.finish(damage: nil)
        XCTAssertEqual(final.totals.causes, causes)
        XCTAssertEqual(final.totals.hostSyncs, 80)
        XCTAssertEqual(final.totals.unattributedHostSyncs, 0)
        XCTAssertEqual(final.opCount, 80)
    }

    func testPrometheusTextHasHelpTypeAndEscapedImageLabels() throws {
        var s = AnalysisPipeline.Snapshot()
        s.totals.guestWrites = 40
        s.totals.guestFlushes = 40
        s.totals.hostSyncs = 80
        s.totals.deviceFlushes = 120
        s.events = 1234
        s.durationNs = 2_500_000_000
        var img = ImageTotals(path: "/images/a \"b\"\\c.qcow2")
        img.guestWrites = 40
        img.guestFlushes = 40
        img.hostSyncs = 80
        img.causes = [.guestFlush: 40, .refcountDependency: 40]
        s.images = [img]
        let text = PrometheusText.render(s, info: [("pid", "42"), ("probe_set", "minimal")])
        let lines = text.split(separator: "\n").map(String.init)
        // Gauges are written as swift-prometheus writes a Double (1.0); the value is what counts.
        let info = lines.first { $0.hasPrefix(#"syncamp_target_info{pid="42",probe_set="minimal"} "#) }
        XCTAssertEqual(info.flatMap { Double($0.split(separator: " ").last!) }, 1, text)
        XCTAssertTrue(lines.contains("syncamp_host_syncs_total 80"))
        XCTAssertTrue(lines.contains("syncamp_device_flushes_total 120"))
        XCTAssertTrue(lines.contains("syncamp_guest_requests_total{kind=\"flush\"} 40"))
        XCTAssertTrue(lines.contains("syncamp_capture_seconds 2.5"))
        XCTAssertTrue(lines.contains(#"syncamp_host_syncs_by_cause_total{image="/images/a \"b\"\\c.qcow2",cause="refcount_dependency"} 40"#), text)
        // Every sample belongs to a family announced just before it, with a HELP and a TYPE.
        var family = ""
        var typed: Set<String> = []
        for line in lines {
            if line.hasPrefix("# HELP ") {
                family = String(line.dropFirst(7).prefix { $0 != " " })
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                XCTAssertEqual(String(parts[2]), family)
                XCTAssertTrue(["counter", "gauge"].contains(String(parts[3])))
                if parts[3] == "counter" { XCTAssertTrue(family.hasSuffix("_total"), family) }
                typed.insert(family)
            } else {
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                XCTAssertEqual(name, family, line)
                XCTAssertTrue(typed.contains(name))
                XCTAssertNotNil(Double(line.split(separator: " ").last!), line)
            }
        }
    }

    func testTheLiveSummaryShowsEachImageAndTheProgress() {
        var s = AnalysisPipeline.Snapshot()
        s.totals.guestWrites = 1500
        s.totals.guestFlushes = 20
        s.totals.hostSyncs = 43
        s.events = 1_234_567
        s.finishedOps = 1520
        s.openOps = 2
        s.durationNs = 12_300_000_000
        var img = ImageTotals(path: "/images/a.qcow2")
        img.guestWrites = 1500
        img.guestFlushes = 20
        img.hostSyncs = 43
        img.causes = [.guestFlush: 20, .refcountDependency: 20, .l2TableAlloc: 3]
        s.images = [img]
        let text = LiveSummary.render(s, title: "live: pid 7 (qemu-io)", status: "tracing")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines[0], "syncamp live: pid 7 (qemu-io)")
        XCTAssertEqual(lines[1], "12.3 s, 1,234,567 events, 0 lost, 1,520 ops done, 2 open: tracing")
        XCTAssertEqual(lines[4], "/images/a.qcow2    1,500       20          43  guest_flush 20, refcount_dependency 20, l2_table_alloc 3")
        XCTAssertEqual(lines[5], "all                1,500       20          43  2.15 host syncs per guest flush")
    }
}

/// The progress bar's line.
final class ReadingLineTests: XCTestCase {
    func testTheBarFillsWithTheBytesReadAndEstimatesWhatIsLeft() {
        let gib = 1 << 30
        let line = LiveSummary.readingLine(path: "run.syncamp", offset: gib, size: 4 * gib, events: 9_100_000,
                                           elapsedNs: 10_000_000_000, width: 20)
        XCTAssertEqual(line, "reading run.syncamp [#####...............]  25% 1.0 GiB of 4.0 GiB, 9.1 M events, 30 s left")
        let done = LiveSummary.readingLine(path: "a", offset: 3 << 20, size: 3 << 20, events: 10, elapsedNs: 1, width: 4)
        XCTAssertEqual(done, "reading a [####] 100% 3.0 MiB of 3.0 MiB, 0.0 M events")
    }
}

/// Prometheus samples of an image carry its disk name when the capture names the disk.
final class PrometheusDiskLabelTests: XCTestCase {
    func testImageSamplesCarryTheDiskName() {
        var s = AnalysisPipeline.Snapshot()
        var a = ImageTotals(path: "/var/lib/libvirt/images/g1.qcow2")
        a.guestFlushes = 3
        a.causes = [.guestFlush: 3]
        s.images = [a, ImageTotals(path: "/srv/unnamed.qcow2")]
        s.diskNames = ["/var/lib/libvirt/images/g1.qcow2": "vda (virtio-disk0, libvirt-1-format)"]
        let text = PrometheusText.render(s)
        XCTAssertTrue(text.contains(#"syncamp_image_guest_requests_total{image="/var/lib/libvirt/images/g1.qcow2",disk="vda (virtio-disk0, libvirt-1-format)",kind="flush"} 3"#), text)
        XCTAssertTrue(text.contains(#"syncamp_host_syncs_by_cause_total{image="/var/lib/libvirt/images/g1.qcow2",disk="vda (virtio-disk0, libvirt-1-format)",cause="guest_flush"} 3"#), text)
        XCTAssertTrue(text.contains(#"syncamp_image_guest_requests_total{image="/srv/unnamed.qcow2",kind="flush"} 0"#), text)
    }
}
