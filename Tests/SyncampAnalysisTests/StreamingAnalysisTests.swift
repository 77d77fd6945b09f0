import SyncampCapture
import XCTest
@testable import SyncampAnalysis

/// The minimal probe set's links, and analysis in memory bounded by the work in flight.
final class StreamingAnalysisTests: AnalysisTestCase {
    typealias F = AnalysisFixtures
    static let fd: UInt64 = 9
    static let file: UInt64 = 0x6c6966  // "fil" is enough to tell the file node from "qcow2"

    /// One guest request pair as the minimal set sees it: an allocating write, then a flush
    /// whose L2 write-back first syncs the refcount cache (2 host syncs, both through raw_co_flush_to_disk).
    static func minimalPair(_ t: inout Trace, index i: UInt64, worker: UInt32 = 101) {
        let wco = F.writeCoroutine + i * 0x10000, fco = F.flushCoroutine + i * 0x10000
        t.running = .init(coroutine: wco)
        t.uprobe(.guestWriteCo, args: [F.blk, i * 65536, 4096, 0x7ffd_1000, 0, 0])
        t.uprobe(.qcow2SetDependency, args: [F.qcow2BS, F.l2Cache, F.refcountCache])
        t.running = .init(coroutine: fco)
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.uprobe(.nodeFlush, args: [F.qcow2BS], derefs: ["format": 0x3277_6f63_71])  // "qcow2"
        t.uprobe(.qcow2CacheWrite, args: [F.qcow2BS, F.l2Cache],
                 derefs: ["depends": F.refcountCache, "depends_on_flush": 0, "l2_table_cache": F.l2Cache, "refcount_block_cache": F.refcountCache])
        t.uprobe(.qcow2CacheWrite, args: [F.qcow2BS, F.refcountCache],
                 derefs: ["depends": 0, "depends_on_flush": 0, "l2_table_cache": F.l2Cache, "refcount_block_cache": F.refcountCache])
        t.uprobe(.nodeFlush, args: [F.fileBS], derefs: ["format": 0x656c_6966])  // "file"
        t.uprobe(.rawFlush, args: [F.fileBS], derefs: ["fd": fd])
        t.hostSync(tid: worker, fd: fd)
        t.uprobe(.nodeFlush, args: [F.fileBS], derefs: ["format": 0x656c_6966])
        t.uprobe(.rawFlush, args: [F.fileBS], derefs: ["fd": fd])
        t.hostSync(tid: worker + 1, fd: fd)
    }

    static func minimalManifest() -> Manifest {
        var m = F.manifest(probes: F.minimalProbes)
        m.coroutineSource = "tls co_tls_current at fs-8"
        m.probeSet = "minimal"
        return m
    }

    func testRawFlushLinksTheWorkersSyncByFD() throws {
        var t = Trace(manifest: Self.minimalManifest())
        Self.minimalPair(&t, index: 0)
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.totals.hostSyncs, 2)
        XCTAssertEqual(a.totals.unattributedHostSyncs, 0)
        XCTAssertEqual(a.totals.causes, [.refcountDependency: 1, .guestFlush: 1])
        let flush = try XCTUnwrap(a.ops.first { $0.kind == .flush })
        let submits = flush.children.filter { $0.kind.name == "flush_submit" }
        XCTAssertEqual(submits.count, 2)
        // Each sync hangs under the raw_co_flush_to_disk that started it, on the worker's thread.
        XCTAssertEqual(submits.map { $0.children.map(\.kind) }, [[CausalNode.hostSyncKind], [CausalNode.hostSyncKind]])
        XCTAssertEqual(submits.map { $0.children[0].tid }, [101, 102])
        XCTAssertEqual(flush.probeHits, 8)
    }

    func testListingFewerOpsKeepsEveryTotal() throws {
        var t = Trace(manifest: Self.minimalManifest())
        for i in 0 ..< 40 { Self.minimalPair(&t, index: UInt64(i)) }
        var records = t.events.map(CaptureRecord.event)
        records.append(.trailer(F.trailer(for: t.events)))
        let bytes = try F.captureBytes(t.manifest, records, in: dir)

        var all = try CaptureReader(data: bytes)
        let full = Analysis.run(&all)
        var few = try CaptureReader(data: bytes)
        var limits = Analysis.Limits(listedOps: 3)
        limits.quietNs = 1_000  // hand ops on as soon as they are quiet for 1 us of capture time
        let listed = Analysis.run(&few, limits: limits)

        XCTAssertEqual(full.ops.count, 80)
        XCTAssertEqual(listed.ops.count, 3)
        XCTAssertEqual(listed.opCount, 80)
        XCTAssertEqual(listed.ops, Array(full.ops.prefix(3)))
        XCTAssertEqual(listed.totals, full.totals)
        XCTAssertEqual(listed.totals.hostSyncs, 80)
        XCTAssertEqual(listed.totals.causes, [.refcountDependency: 40, .guestFlush: 40])
        XCTAssertEqual(listed.images, full.images)
        XCTAssertEqual(listed.probeHits, full.probeHits)
        XCTAssertEqual(listed.forcedRetirements, 0)
    }

    func testHeldOpsStayBoundedByWorkInFlight() throws {
        var t = Trace(manifest: Self.minimalManifest())
        var builder = TreeBuilder(probes: ProbeIndex(manifest: t.manifest), origin: F.startNs, coroutines: true)
        var handed = 0
        var most = 0
        for i in 0 ..< 2000 {
            t.events.removeAll()
            Self.minimalPair(&t, index: UInt64(i % 64))
            let decoder = EventDecoder(probes: ProbeIndex(manifest: t.manifest))
            for e in t.events { builder.add(decoder.decode(e)) }
            while builder.retireOldest(now: t.now, quietNs: 50_000, maxLive: 100_000) != nil { handed += 1 }
            most = max(most, builder.liveCount)
        }
        // Each pair takes about 30 us of capture time: ops older than 50 us are handed on.
        XCTAssertLessThanOrEqual(most, 8)
        builder.finish()
        while builder.handOldest() != nil { handed += 1 }
        XCTAssertEqual(handed, 4000)
        XCTAssertEqual(builder.forcedRetirements, 0)
    }

    /// Guest flush `i` in a coroutine of its own, down to `raw_co_flush_to_disk` of its file node on `fd`.
    private static func flushToRawFlush(_ t: inout Trace, _ i: Int, fd: UInt64) {
        t.running = .init(coroutine: F.flushCoroutine + UInt64(i) * 0x10000)
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.uprobe(.rawFlush, args: [F.fileBS + UInt64(i) * 0x1000], derefs: ["fd": fd])
    }

    func testTooManyOpsInFlightAreHandedOnAndCounted() throws {
        var t = Trace(manifest: Self.minimalManifest())
        var builder = TreeBuilder(probes: ProbeIndex(manifest: t.manifest), origin: F.startNs, coroutines: true)
        // Flushes whose syncs never end: each stays waiting.
        for i in 0 ..< 50 {
            Self.flushToRawFlush(&t, i, fd: 10 + UInt64(i))
            t.syscallEnter(tid: 200 + UInt32(i), fd: 10 + UInt64(i))
        }
        let decoder = EventDecoder(probes: ProbeIndex(manifest: t.manifest))
        for e in t.events { builder.add(decoder.decode(e)) }
        var handed = 0
        while builder.retireOldest(now: t.now + 10_000_000_000, quietNs: 1_000, maxLive: 20) != nil { handed += 1 }
        XCTAssertEqual(handed, 30)
        XCTAssertEqual(builder.forcedRetirements, 30)
        XCTAssertEqual(builder.liveCount, 20)
    }

    /// Several raw flushes pending on one fd (one image, several flushes in flight): a sync no job
    /// claims goes to the oldest, whatever the process's hash seed (it went to the first in the
    /// dictionary's order, which changes from run to run).
    func testASyncOnAnFdWithSeveralRawFlushesGoesToTheOldest() throws {
        var t = Trace(manifest: Self.minimalManifest())
        var builder = TreeBuilder(probes: ProbeIndex(manifest: t.manifest), origin: F.startNs, coroutines: true)
        for i in 0 ..< 8 { Self.flushToRawFlush(&t, i, fd: 10) }
        for k in 0 ..< 3 {
            t.syscallEnter(tid: 300, fd: 10)
            t.syscallExit(tid: 300, after: 1_000 + UInt64(k))
        }
        let decoder = EventDecoder(probes: ProbeIndex(manifest: t.manifest))
        for e in t.events { builder.add(decoder.decode(e)) }
        builder.finish()
        var syncsPerOp: [Int] = []
        while let op = builder.handOldest() { syncsPerOp.append(op.summary().hostSyncs) }
        XCTAssertEqual(syncsPerOp, [1, 1, 1, 0, 0, 0, 0, 0], "the three syncs go to the three oldest flushes, in order")
    }
}
