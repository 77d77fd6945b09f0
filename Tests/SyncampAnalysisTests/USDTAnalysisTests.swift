import SyncampCapture
import XCTest
@testable import SyncampAnalysis

/// Captures of QEMU's USDT probes: guest flushes inferred from cache write-backs, worker syncs linked by fd.
final class USDTAnalysisTests: AnalysisTestCase {
    typealias F = AnalysisFixtures
    static let writeCo: UInt64 = 0x560b_9fd7_8b60
    static let flushCo: UInt64 = 0x560b_9fd7_8d30
    static let blk: UInt64 = 0x560b_9fd6_0000

    /// The USDT set as the collector writes it: args in the roles' order, cache ids as constants.
    static func manifest() -> Manifest {
        var m = F.manifest(probes: F.usdtProbes)
        m.probeSet = "usdt"
        m.coroutineSource = "usdt arguments"
        return m
    }

    /// write 0 4k (a new L2 table: 3 syncs), flush (a dependency pre-flush and the flush's own), then close.
    static func trace() -> Trace {
        var t = Trace(manifest: manifest())
        t.uprobe(.backendUnref, args: [0x560b_9fd5_0000])  // a temporary BlockBackend at open
        t.uprobe(.guestWriteCo, args: [blk, 0, 4096])
        t.uprobe(.qcow2Write, args: [writeCo, 0, 4096])
        t.uprobe(.qcow2CacheWrite, args: [writeCo, 0])
        t.submit(acb: 0x7f5f_0c71_c8b0, fd: 4, coroutine: writeCo)
        t.hostSync(tid: 201, fd: 4)
        t.uprobe(.qcow2CacheWrite, args: [writeCo, 1])
        t.submit(acb: 0x7f5f_0c71_c8b0, fd: 4, coroutine: writeCo)
        t.hostSync(tid: 202, fd: 4)
        t.uprobe(.qcow2WriteL1Entry, args: [0x560b_9fd7_0000, 0])
        t.submit(acb: 0x7f5f_0c71_c700, fd: 4, aioType: 2, coroutine: writeCo)  // the L1 entry's own write
        t.submit(acb: 0x7f5f_0c71_c830, fd: 4, coroutine: writeCo)
        t.hostSync(tid: 202, fd: 4)
        t.uprobe(.qcow2WriteDone, args: [writeCo, 0])
        // qemu-io flush: write-back of L2 (which first syncs the refcount cache), then the flush's own sync.
        t.uprobe(.qcow2CacheWrite, args: [flushCo, 1])
        t.uprobe(.qcow2CacheWrite, args: [flushCo, 0])
        t.submit(acb: 0x7f5f_0c61_bd40, fd: 4, coroutine: flushCo)
        t.hostSync(tid: 201, fd: 4)
        t.uprobe(.qcow2CacheWrite, args: [flushCo, 0])
        t.submit(acb: 0x7f5f_0c61_be60, fd: 4, coroutine: flushCo)
        t.hostSync(tid: 201, fd: 4)
        // Close: write-backs of clean caches in another coroutine are close work, not a flush.
        t.uprobe(.backendUnref, args: [blk])
        t.uprobe(.qcow2CacheWrite, args: [0x560b_9fd7_9000, 1])
        t.uprobe(.qcow2CacheWrite, args: [0x560b_9fd7_9000, 0])
        return t
    }

    func testAGuestFlushIsInferredAndEachSyncNamed() throws {
        let a = try F.analyse(Self.trace(), in: dir)
        XCTAssertEqual(a.ops.map(\.kind), [.imageOpen, .write, .flush, .imageClose])
        XCTAssertEqual(a.totals.hostSyncs, 5)
        XCTAssertEqual(a.totals.unattributedHostSyncs, 0)
        XCTAssertEqual(a.ops[1].causes, [.l2TableAlloc: 3])
        XCTAssertEqual(a.ops[2].causes, [.refcountDependency: 1, .guestFlush: 1])
        XCTAssertTrue(a.ops[2].entry.contains("inferred"))
        XCTAssertEqual(a.totals.guestFlushes, 1)
        // The worker's syncs hang under the submits, matched by fd in order.
        let submits = a.ops[2].children.filter { $0.kind.name == "thread_pool_submit" }
        XCTAssertEqual(submits.map { $0.children.map(\.kind) }, [[CausalNode.hostSyncKind], [CausalNode.hostSyncKind]])
        // cache ids are named from the constants.
        XCTAssertEqual(a.ops[2].children.first?.details["cache"], "l2")
        XCTAssertTrue(a.warnings.contains { $0.contains("USDT probes") })
    }

    func testWriteBacksInTheWritesOwnCoroutineStayWithTheWrite() throws {
        var t = Trace(manifest: Self.manifest())
        t.uprobe(.guestWriteCo, args: [Self.blk, 0, 4096])
        t.uprobe(.qcow2Write, args: [Self.writeCo, 0, 4096])
        t.uprobe(.qcow2CacheWrite, args: [Self.writeCo, 0])
        t.uprobe(.qcow2CacheWrite, args: [Self.writeCo, 1])
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.ops.map(\.kind), [.write])
        XCTAssertEqual(a.totals.guestFlushes, 0)
    }

    /// Requests in flight together (qemu-io aio_write, a VM's queue): each event goes to the request
    /// whose coroutine it names, not to the latest one; a pooled coroutine freed by a finished
    /// write then serves a flush.
    func testConcurrentWritesKeepTheirOwnWorkAndAReusedCoroutineServesAFlush() throws {
        let coA: UInt64 = 0x5600_0000_a000, coB: UInt64 = 0x5600_0000_b000
        var t = Trace(manifest: Self.manifest())
        t.uprobe(.guestWriteCo, args: [Self.blk, 0, 4096])
        t.uprobe(.qcow2Write, args: [coA, 0, 4096])
        t.uprobe(.qcow2CacheWrite, args: [coA, 0])
        t.submit(acb: 0x7f00_0000_0001, fd: 4, coroutine: coA)
        // B starts while A waits for its refcount sync.
        t.uprobe(.guestWriteCo, args: [Self.blk, 65536, 4096])
        t.uprobe(.qcow2Write, args: [coB, 65536, 4096])
        t.submit(acb: 0x7f00_0000_0002, fd: 4, aioType: 2, coroutine: coB)
        t.hostSync(tid: 201, fd: 4)
        // A goes on: L2 write-back, L1 entry, while B is the latest request.
        t.uprobe(.qcow2CacheWrite, args: [coA, 1])
        t.submit(acb: 0x7f00_0000_0003, fd: 4, coroutine: coA)
        t.hostSync(tid: 202, fd: 4)
        t.uprobe(.qcow2WriteL1Entry, args: [0x560b_9fd7_0000, 0])
        t.submit(acb: 0x7f00_0000_0004, fd: 4, aioType: 2, coroutine: coA)
        t.submit(acb: 0x7f00_0000_0005, fd: 4, coroutine: coA)
        t.hostSync(tid: 201, fd: 4)
        t.uprobe(.qcow2WriteDone, args: [coB, 0])
        t.uprobe(.qcow2WriteDone, args: [coA, 0])
        // A flush in A's pooled coroutine.
        t.uprobe(.qcow2CacheWrite, args: [coA, 1])
        t.uprobe(.qcow2CacheWrite, args: [coA, 0])
        t.submit(acb: 0x7f00_0000_0006, fd: 4, coroutine: coA)
        t.hostSync(tid: 201, fd: 4)
        // And the next flush in the same coroutine again: L2 after the refcount write-back.
        t.uprobe(.qcow2CacheWrite, args: [coA, 1])
        t.uprobe(.qcow2CacheWrite, args: [coA, 0])
        t.submit(acb: 0x7f00_0000_0007, fd: 4, coroutine: coA)
        t.hostSync(tid: 202, fd: 4)
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.ops.map(\.kind), [.write, .write, .flush, .flush])
        XCTAssertEqual(a.ops[0].offset, 0)
        XCTAssertEqual(a.ops[0].causes, [.l2TableAlloc: 3])
        XCTAssertEqual(a.ops[1].causes, [:])
        XCTAssertEqual(a.ops[2].causes, [.guestFlush: 1])
        XCTAssertEqual(a.ops[3].causes, [.guestFlush: 1])
        XCTAssertEqual(a.totals.unattributedHostSyncs, 0)
    }
}
