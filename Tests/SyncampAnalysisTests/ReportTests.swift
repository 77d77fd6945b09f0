import Foundation
import SyncampAnalysis
import SyncampCapture
import XCTest

/// The JSON report's stable keys, the text report's lines, and what lost events and damage add to both.
final class ReportTests: AnalysisTestCase {
    typealias F = AnalysisFixtures

    private func json(_ a: Analysis) throws -> [String: Any] {
        let text = try JSONReport.render(a)
        XCTAssertTrue(text.hasSuffix("\n"))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// The standard run with lost-events records from two CPUs, and a note.
    private func writeThenFlushWithLosses() throws -> Analysis {
        let trace = F.writeThenFlush()
        var records = trace.events.map(CaptureRecord.event)
        records.insert(.lost(cpu: 0, count: 3), at: 3)
        records.insert(.lost(cpu: 2, count: 1), at: 6)
        records.insert(.note(CaptureNote(timestampNs: trace.events[10].timestamp, kind: "signal", message: "SIGINT")), at: 12)
        records.insert(.lost(cpu: 0, count: 7), at: 20)   // cumulative: replaces CPU 0's 3
        records.insert(.lost(cpu: 1, count: 0), at: 22)
        records.append(.trailer(F.trailer(for: trace.events, lost: 9, end: F.startNs + 50_000_000)))
        return try F.analyse(trace.manifest, records, in: dir)
    }

    // MARK: - Lost events

    func testLostEventsAreTheSumOfTheLastCountPerCPU() throws {
        let a = try writeThenFlushWithLosses()
        XCTAssertEqual(a.capture.lostEvents, 8)
        XCTAssertEqual(a.capture.lostPerCPU, [0: 7, 1: 0, 2: 1])
        XCTAssertEqual(a.capture.notes.map(\.kind), ["signal"])
        let warning = try XCTUnwrap(a.warnings.first)
        XCTAssertTrue(warning.contains("8 events were lost"), warning)
        XCTAssertTrue(warning.contains("CPU 0: 7, CPU 2: 1"), warning)
        XCTAssertFalse(warning.contains("CPU 1"), "CPUs that lost nothing are not listed: \(warning)")
        XCTAssertTrue(warning.contains("--ring-buffer-mb"), warning)
        // Lost records do not disturb the trees.
        XCTAssertEqual(a.totals.hostSyncs, 5)
        XCTAssertEqual(a.ops.map(\.hostSyncs), [0, 3, 2, 0])
    }

    // MARK: - JSON

    func testJSONReportKeys() throws {
        let a = try writeThenFlushWithLosses()
        let j = try json(a)
        XCTAssertEqual(j["schema"] as? String, "syncamp.report/1")
        XCTAssertEqual(JSONReport.schema, "syncamp.report/1")

        let capture = try XCTUnwrap(j["capture"] as? [String: Any])
        XCTAssertEqual(capture["path"] as? String, "test.syncamp")
        XCTAssertEqual(capture["events"] as? Int, F.writeThenFlush().events.count)
        XCTAssertEqual(capture["lost_events"] as? Int, 8)
        XCTAssertEqual(capture["lost_per_cpu"] as? [String: Int], ["0": 7, "1": 0, "2": 1])
        XCTAssertEqual(capture["duration_ns"] as? Int, 50_000_000, "from the start to the trailer's end time")
        XCTAssertEqual(capture["cut_short"] as? Bool, false)
        XCTAssertNil(capture["damage"], "absent when the capture is whole")
        XCTAssertEqual(capture["end_reason"] as? String, "target-exited")
        XCTAssertEqual(capture["reordered_events"] as? Int, 0)
        XCTAssertEqual(capture["late_events"] as? Int, 0)

        let totals = try XCTUnwrap(j["totals"] as? [String: Any])
        XCTAssertEqual(totals["guest_writes"] as? Int, 1)
        XCTAssertEqual(totals["guest_flushes"] as? Int, 1)
        XCTAssertEqual(totals["host_fdatasyncs"] as? Int, 5)
        XCTAssertEqual(totals["unattributed_host_syncs"] as? Int, 0)
        XCTAssertEqual(try XCTUnwrap(totals["sync_amplification"] as? Double), 5.0, accuracy: 1e-9)

        let target = try XCTUnwrap(j["target"] as? [String: Any])
        XCTAssertEqual(target["pid"] as? Int, Int(F.pid))
        XCTAssertEqual(target["binary"] as? String, "/opt/qemu-7.2/bin/qemu-io")
        XCTAssertEqual(target["has_symtab"] as? Bool, true)
        XCTAssertEqual(j["kernel_probe"] as? String, "tracepoint")

        let probes = try XCTUnwrap(j["probes"] as? [[String: Any]])
        XCTAssertEqual(probes.count, F.fullProbes.count)
        let submit = try XCTUnwrap(probes.first { $0["role"] as? String == "thread_pool_submit_aio" })
        XCTAssertEqual(submit["symbol"] as? String, "thread_pool_submit_aio")
        XCTAssertEqual(submit["hits"] as? Int, 5)
        XCTAssertEqual(submit["fallback"] as? Bool, false)

        let warnings = try XCTUnwrap(j["warnings"] as? [String])
        XCTAssertTrue(warnings.contains { $0.contains("8 events were lost") })
        XCTAssertEqual((j["unattributed"] as? [Any])?.count, 0)
    }

    func testJSONReportOps() throws {
        let a = try F.analyse(F.writeThenFlush(), in: dir)
        let ops = try XCTUnwrap(try json(a)["ops"] as? [[String: Any]])
        XCTAssertEqual(ops.map { $0["kind"] as? String }, ["image_open", "write", "flush", "image_close"])
        XCTAssertEqual(ops.map { $0["index"] as? Int }, [0, 1, 2, 3])
        XCTAssertEqual(ops.map { $0["host_fdatasyncs"] as? Int }, [0, 3, 2, 0])
        let write = ops[1]
        XCTAssertEqual(write["offset"] as? Int, 0)
        XCTAssertEqual(write["bytes"] as? Int, 4096)
        XCTAssertEqual(write["entry"] as? String, "blk_co_do_pwritev_part")
        XCTAssertEqual(write["start_ns"] as? Int, Int(a.ops[1].startNs))
        XCTAssertEqual(write["end_ns"] as? Int, Int(a.ops[1].endNs))
        XCTAssertGreaterThan(a.ops[1].endNs, a.ops[1].startNs)
        XCTAssertEqual(write["tid"] as? Int, 100)
        XCTAssertEqual(write["probe_hits"] as? Int, 13)
        for op in ops {
            for key in ["kind", "offset", "bytes", "start_ns", "end_ns", "host_fdatasyncs", "children"] {
                XCTAssertNotNil(op[key], "op key \(key)")
            }
        }

        let children = try XCTUnwrap(write["children"] as? [[String: Any]])
        XCTAssertEqual(children.map { $0["kind"] as? String },
                       ["qcow2_write", "qcow2_cache_write", "thread_pool_submit", "qcow2_write_l1_entry",
                        "thread_pool_submit", "thread_pool_submit"])
        XCTAssertEqual(children[1]["details"] as? [String: String], ["cache": "refcount"])
        // submit -> worker_flush -> qemu_fdatasync -> host_sync
        let worker = try XCTUnwrap((children[2]["children"] as? [[String: Any]])?.first)
        XCTAssertEqual(worker["kind"] as? String, "worker_flush")
        XCTAssertEqual(worker["tid"] as? Int, 101)
        let qemuSync = try XCTUnwrap((worker["children"] as? [[String: Any]])?.first)
        let host = try XCTUnwrap((qemuSync["children"] as? [[String: Any]])?.first)
        XCTAssertEqual(host["kind"] as? String, "host_sync")
        XCTAssertEqual(host["latency_ns"] as? Int, 41_000)
        XCTAssertEqual(host["ret"] as? Int, 0)
        XCTAssertEqual(host["symbol"] as? String, "fdatasync")
        XCTAssertEqual(host["details"] as? [String: String], ["fd": "9", "syscall": "fdatasync"])
        XCTAssertEqual((host["children"] as? [Any])?.count, 0)
        XCTAssertNotNil(host["t_ns"])
        XCTAssertNil(worker["latency_ns"], "only host syncs have a latency")
    }

    func testSyncAmplificationIsNullWithoutAGuestFlush() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestWriteCo, args: [F.blk, 0, 4096])
        t.flushHandOff(worker: 101, acb: F.writeACB, coroutine: F.writeCoroutine, latency: 10_000)
        let a = try F.analyse(t, in: dir)
        XCTAssertNil(a.totals.syncAmplification)
        let rendered = try JSONReport.render(a)
        XCTAssertTrue(rendered.contains("\"sync_amplification\" : null"), rendered)
        let totals = try XCTUnwrap(try json(a)["totals"] as? [String: Any])
        XCTAssertTrue(totals["sync_amplification"] is NSNull)
        XCTAssertEqual(totals["host_fdatasyncs"] as? Int, 1)
    }

    func testJSONReportListsUnattributedSyncsWithReasons() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.hostSync(tid: 555, fd: 3, latency: 2_000)
        let j = try json(try F.analyse(t, in: dir))
        let unplaced = try XCTUnwrap(j["unattributed"] as? [[String: Any]])
        XCTAssertEqual(unplaced.count, 1)
        XCTAssertTrue((unplaced[0]["reason"] as? String)?.contains("thread 555") ?? false)
        let node = try XCTUnwrap(unplaced[0]["node"] as? [String: Any])
        XCTAssertEqual(node["kind"] as? String, "host_sync")
        XCTAssertEqual(node["tid"] as? Int, 555)
        XCTAssertEqual((j["totals"] as? [String: Any])?["unattributed_host_syncs"] as? Int, 1)
    }

    // MARK: - Cut short

    func testCutShortCaptureStillReportsWhatCameBefore() throws {
        let trace = F.writeThenFlush()
        let full = try F.captureBytes(trace.manifest, trace.events.map(CaptureRecord.event) + [.trailer(F.trailer(for: trace.events))], in: dir)
        // Cut 50 bytes into the event record right after the guest flush's blk_co_flush.
        let flushIndex = try XCTUnwrap(trace.events.firstIndex { $0.probeID == UInt16(trace.probe(.guestFlushCo).id) })
        let eventsStart = full.count - (trace.events.count * (8 + Event.size)) - (8 + trailerLength(full))
        let cut = eventsStart + (flushIndex + 1) * (8 + Event.size) + 50
        var reader = try CaptureReader(data: full.prefix(cut), path: "cut.syncamp")
        let a = Analysis.run(&reader)

        XCTAssertEqual(a.capture.events, UInt64(flushIndex + 1))
        XCTAssertEqual(a.ops.map(\.kind), [.imageOpen, .write, .flush])
        XCTAssertEqual(a.ops.map(\.hostSyncs), [0, 3, 0])
        XCTAssertEqual(a.totals.hostSyncs, 3)
        XCTAssertEqual(try XCTUnwrap(a.totals.syncAmplification), 3.0, accuracy: 1e-9)
        let damage = try XCTUnwrap(a.capture.damage)
        XCTAssertTrue(damage.contains("cut short"), damage)
        XCTAssertNil(a.capture.trailerReason)
        XCTAssertTrue(a.warnings.contains { $0.contains("the capture stops at byte") && $0.contains("cut short") }, "\(a.warnings)")

        let j = try json(a)
        let capture = try XCTUnwrap(j["capture"] as? [String: Any])
        XCTAssertEqual(capture["cut_short"] as? Bool, true)
        XCTAssertTrue((capture["damage"] as? String)?.contains("cut short") ?? false)
        XCTAssertNil(capture["end_reason"])
        XCTAssertEqual((j["ops"] as? [[String: Any]])?.count, 3)

        let text = TextReport.render(a)
        XCTAssertTrue(text.contains("ended: cut short (no trailer)"), text)
        XCTAssertTrue(text.contains("WARNING  the capture stops at byte"), text)
        XCTAssertTrue(text.contains("#1 write 0+4096"), text)
    }

    private func trailerLength(_ data: Data) -> Int {
        // Walk the records to find the trailer's payload length.
        let bytes = [UInt8](data)
        var at = CaptureFormat.fileHeaderSize
        var last = 0
        while at + 8 <= bytes.count {
            let length = Int(UInt32(bytes[at + 4]) | UInt32(bytes[at + 5]) << 8 | UInt32(bytes[at + 6]) << 16 | UInt32(bytes[at + 7]) << 24)
            last = length
            at += 8 + length
        }
        return last
    }

    // MARK: - Text

    func testTextReportShowsOpsHostSyncsAndTotals() throws {
        let a = try F.analyse(F.writeThenFlush(), in: dir)
        let text = TextReport.render(a, ops: .all)
        XCTAssertTrue(text.hasPrefix("syncamp report: test.syncamp\n"), text)
        XCTAssertTrue(text.contains("pid 4242 (spawn) qemu-io -t writeback -c write 0 4k -c flush img.qcow2"), text)
        XCTAssertTrue(text.contains("build-id 5f0c1e2d3a4b, full symbol table"), text)
        XCTAssertTrue(text.contains("\(F.fullProbes.count) uprobes, fdatasync/fsync via syscalls tracepoints"), text)
        XCTAssertTrue(text.contains("ended: target-exited"), text)
        XCTAssertFalse(text.contains("WARNING"), text)

        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let headers = lines.filter { $0.hasPrefix("#") }
        XCTAssertEqual(headers.count, 4, text)
        XCTAssertTrue(headers[0].hasPrefix("#0 image open at "), headers[0])
        XCTAssertTrue(headers[1].hasPrefix("#1 write 0+4096 at "), headers[1])
        XCTAssertTrue(headers[1].contains("[blk_co_do_pwritev_part] 3 host syncs on fd 9, 13 probe hits, "), headers[1])
        XCTAssertTrue(headers[2].hasPrefix("#2 flush at "), headers[2])
        XCTAssertTrue(headers[2].contains("[blk_co_flush] 2 host syncs on fd 9, 10 probe hits, "), headers[2])
        XCTAssertTrue(headers[3].hasPrefix("#3 image close at "), headers[3])
        XCTAssertTrue(headers[3].contains("[blk_unref] 0 host syncs"), headers[3])

        let hostLines = lines.filter { $0.contains("HOST fdatasync(9)") }
        XCTAssertEqual(hostLines.count, 5, text)
        XCTAssertTrue(hostLines[0].hasSuffix("HOST fdatasync(9) 0.041 ms tid 101 [l2_table_alloc]"), hostLines[0])
        XCTAssertTrue(hostLines[3].contains("HOST fdatasync(9) 0.074 ms tid 102 ["), hostLines[3])
        // Tree drawing: the host sync is three levels below the submit.
        XCTAssertTrue(lines.contains { $0.contains("thread_pool_submit arg=0x7f3a4c1fe6a0") && $0.contains("fd=9") }, text)
        XCTAssertTrue(lines.contains { $0.contains("└─ worker_flush arg=0x7f3a4c1fe6a0") }, text)
        XCTAssertTrue(lines.contains { $0.contains("qcow2_cache_write cache=l2 depends=refcount at ") }, text)

        XCTAssertTrue(text.contains("\ntotals\n"), text)
        XCTAssertTrue(text.contains("  guest writes         1\n"), text)
        XCTAssertTrue(text.contains("  guest flushes        1\n"), text)
        XCTAssertTrue(text.contains("  host fdatasyncs      5  (5 under guest requests, 0 at image open/close, 0 unattributed)\n"), text)
        XCTAssertTrue(text.contains("  sync amplification   5.00 host syncs per guest flush\n"), text)
        XCTAssertFalse(text.contains("unattributed (could not be placed)"), text)
    }

    func testTextReportWithoutFlushUnattributedAndWarnings() throws {
        var t = Trace(manifest: F.manifest(probes: F.stockProbes, missing: F.stockMissing))
        t.uprobe(.guestWriteCo, args: [F.blk, 512, 1024])
        t.hostSync(tid: 777, fd: 12, latency: 3_000, ret: -5)
        let a = try F.analyse(t, in: dir)
        let text = TextReport.render(a)
        XCTAssertTrue(text.contains("#0 write 512+1024 at "), text)
        XCTAssertTrue(text.contains("exported symbols only"), text)
        XCTAssertTrue(text.contains("(exported fallbacks: blk_pwrite, qcow2_alloc_host_offset, qcow2_check_refcounts)"), text)
        XCTAssertTrue(text.contains("WARNING  probe handle_aiocb_flush was not attached"), text)
        XCTAssertTrue(text.contains("WARNING  1 host syncs could not be placed"), text)
        XCTAssertTrue(text.contains("\nunattributed (could not be placed)\n"), text)
        XCTAssertTrue(text.contains("HOST fdatasync(12) = -5 0.003 ms tid 777"), text)
        XCTAssertTrue(text.contains("  host fdatasyncs      1  (0 under guest requests, 0 at image open/close, 1 unattributed)\n"), text)
        XCTAssertTrue(text.contains("  sync amplification   n/a (no guest flush)\n"), text)
    }

    func testTextReportMarksASyncWithoutExit() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.syscallEnter(tid: F.mainTid, fd: 9)
        let text = TextReport.render(try F.analyse(t, in: dir))
        XCTAssertTrue(text.contains("HOST fdatasync(9) (no exit captured) tid 100"), text)
    }
}
