import SyncampAnalysis
import SyncampCapture
import XCTest

/// Overlapping requests on one thread are told apart by the coroutine each event ran in.
final class CoroutineAttributionTests: AnalysisTestCase {
    typealias F = AnalysisFixtures
    let leader: UInt64 = 0x7f3a_4c00_0a08
    let coA: UInt64 = 0x5630_9b00_a000
    let coB: UInt64 = 0x5630_9b00_b000

    func manifest(_ probes: [Manifest.Probe] = F.fullProbes, source: String? = "tls co_tls_current at fs-8") -> Manifest {
        var m = F.manifest(probes: probes)
        m.coroutineSource = source
        return m
    }

    /// Two writes in flight: B starts before A's metadata work, yet A's syncs stay under A.
    func interleavedWrites(_ m: Manifest) -> Trace {
        var t = Trace(manifest: m)
        t.running = .init(coroutine: coA, caller: leader)
        t.uprobe(.guestWriteCo, args: [F.blk, 0, 4096])
        t.running = .init(coroutine: coB, caller: leader)
        t.uprobe(.guestWriteCo, args: [F.blk, 512 << 20, 4096])
        t.running = .init(coroutine: coA, caller: leader)
        t.uprobe(.qcow2WriteL1Entry, args: [F.qcow2BS, 0])
        t.flushHandOff(worker: 101, acb: 0x7f00_0000_1000, coroutine: coA, latency: 10_000)
        t.running = .init(coroutine: coB, caller: leader)
        t.uprobe(.qcow2WriteL1Entry, args: [F.qcow2BS, 1])
        t.flushHandOff(worker: 102, acb: 0x7f00_0000_2000, coroutine: coB, latency: 10_000)
        t.running = .init(coroutine: coA, caller: leader)
        t.flushHandOff(worker: 101, acb: 0x7f00_0000_3000, coroutine: coA, latency: 10_000)
        return t
    }

    func testEventsFollowTheirCoroutine() throws {
        let a = try F.analyse(interleavedWrites(manifest()), in: dir)
        let writes = a.ops.filter { $0.kind == .write }
        XCTAssertEqual(writes.map(\.offset), [0, 512 << 20])
        XCTAssertEqual(writes.map(\.hostSyncs), [2, 1])
        XCTAssertEqual(writes.map { $0.children.filter { $0.kind.name == "qcow2_write_l1_entry" }.map { $0.details["l1_index"] } },
                       [["0"], ["1"]])
    }

    /// Without coroutine information the latest request takes everything (the documented fallback).
    func testWithoutCoroutinesTheLatestRequestTakesAll() throws {
        let a = try F.analyse(interleavedWrites(manifest(source: nil)), in: dir)
        XCTAssertEqual(a.ops.filter { $0.kind == .write }.map(\.hostSyncs), [0, 3])
    }

    /// blk_aio_pwritev runs in the caller; its coroutine is found by the AIOCB's opaque, even when
    /// the second request's coroutine runs first because the first one waits on a lock.
    func testAioRequestsClaimTheirCoroutineByOpaque() throws {
        var t = Trace(manifest: manifest(F.stockProbes, source: "uprobe qemu_coroutine_switch"))
        let opaqueA: UInt64 = 0x5630_9c00_0a00, opaqueB: UInt64 = 0x5630_9c00_0b00
        t.running = .init(coroutine: leader)
        t.uprobe(.guestWriteAIO, args: [F.blk, 0, 0x7ffd_0001, 0, 0x5630_98f1_0000, opaqueA], derefs: ["bytes": 4096])
        t.uprobe(.guestWriteAIO, args: [F.blk, 65536, 0x7ffd_0002, 0, 0x5630_98f1_0000, opaqueB], derefs: ["bytes": 4096])
        t.running = .init(coroutine: coB, caller: leader, arg: 0x7f00_0000_0b00, opaque: opaqueB)
        t.uprobe(.qcow2Write, args: [F.qcow2BS, 65536])
        t.flushHandOff(worker: 101, acb: 0x7f00_0000_4000, coroutine: coB, latency: 10_000)
        t.running = .init(coroutine: coA, caller: leader, arg: 0x7f00_0000_0a00, opaque: opaqueA)
        t.uprobe(.qcow2Write, args: [F.qcow2BS, 0])
        t.flushHandOff(worker: 101, acb: 0x7f00_0000_5000, coroutine: coA, latency: 10_000)
        t.flushHandOff(worker: 102, acb: 0x7f00_0000_6000, coroutine: coA, latency: 10_000)
        let a = try F.analyse(t, in: dir)
        let writes = a.ops.filter { $0.kind == .write }
        XCTAssertEqual(writes.map(\.bytes), [4096, 4096])
        XCTAssertEqual(writes.map(\.hostSyncs), [2, 1])
    }

    /// A coroutine entered by a request's coroutine (quorum's per-child coroutines) works for that request.
    func testChildCoroutinesBelongToTheirCaller() throws {
        var t = Trace(manifest: manifest())
        t.running = .init(coroutine: coA, caller: leader)
        t.uprobe(.guestWriteCo, args: [F.blk, 0, 4096])
        t.running = .init(coroutine: 0x5630_9b00_c000, caller: coA)
        t.flushHandOff(worker: 101, acb: 0x7f00_0000_7000, coroutine: 0x5630_9b00_c000, latency: 10_000)
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.ops.filter { $0.kind == .write }.map(\.hostSyncs), [1])
        XCTAssertEqual(a.totals.unattributedHostSyncs, 0)
    }

    /// blk_unref forgets bindings: a pooled coroutine reused for close work is close work.
    func testCloseForgetsBindings() throws {
        var t = Trace(manifest: manifest())
        t.running = .init(coroutine: coA, caller: leader)
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.running = .init(coroutine: leader)
        t.uprobe(.backendUnref, args: [F.blk])
        t.running = .init(coroutine: coA, caller: leader)
        t.flushHandOff(worker: 101, acb: 0x7f00_0000_8000, coroutine: coA, latency: 10_000)
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.ops.map(\.kind), [.flush, .imageClose])
        XCTAssertEqual(a.ops.map(\.hostSyncs), [0, 1])
        XCTAssertEqual(a.totals.causes, [.imageClose: 1])
    }
}
