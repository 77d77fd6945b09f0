import SyncampAnalysis
import SyncampCapture
import XCTest

/// Causal trees: guest op -> QEMU work -> thread-pool hand-off -> worker -> host sync.
final class TreeBuilderTests: AnalysisTestCase {
    typealias F = AnalysisFixtures

    // MARK: - qemu-io "write 0 4k; flush"

    func testWriteThenFlushTotals() throws {
        let a = try F.analyse(F.writeThenFlush(), in: dir)
        XCTAssertEqual(a.totals.guestWrites, 1)
        XCTAssertEqual(a.totals.guestFlushes, 1)
        XCTAssertEqual(a.totals.hostSyncs, 5)
        XCTAssertEqual(a.totals.unattributedHostSyncs, 0)
        XCTAssertEqual(try XCTUnwrap(a.totals.syncAmplification), 5.0, accuracy: 1e-9)
        XCTAssertTrue(a.unattributed.isEmpty)
        XCTAssertNil(a.capture.damage)
        XCTAssertEqual(a.capture.trailerReason, "target-exited")
        XCTAssertEqual(a.warnings, [])
    }

    func testWriteThenFlushOps() throws {
        let a = try F.analyse(F.writeThenFlush(), in: dir)
        XCTAssertEqual(a.ops.map(\.kind), [.imageOpen, .write, .flush, .imageClose])
        XCTAssertEqual(a.ops.map(\.index), [0, 1, 2, 3])
        XCTAssertEqual(a.ops.map(\.hostSyncs), [0, 3, 2, 0])

        let write = a.ops[1]
        XCTAssertEqual(write.entry, "blk_co_do_pwritev_part")
        XCTAssertEqual(write.offset, 0)
        XCTAssertEqual(write.bytes, 4096)
        XCTAssertEqual(write.tid, F.mainTid)
        XCTAssertTrue(write.isGuestRequest)
        XCTAssertEqual(write.children.map(\.kind.name), ["qcow2_write", "qcow2_cache_write", "thread_pool_submit",
                                                    "qcow2_write_l1_entry", "thread_pool_submit", "thread_pool_submit"])
        // 1 request + qcow2 write + cache write + L1 entry + 3 × (submit, worker, qemu_fdatasync).
        XCTAssertEqual(write.probeHits, 13)

        let flush = a.ops[2]
        XCTAssertEqual(flush.entry, "blk_co_flush")
        XCTAssertEqual(flush.offset, 0)
        XCTAssertEqual(flush.bytes, 0)
        XCTAssertEqual(flush.children.map(\.kind.name), ["bdrv_co_flush", "qcow2_cache_write", "thread_pool_submit",
                                                    "bdrv_co_flush", "thread_pool_submit"])
        XCTAssertEqual(flush.probeHits, 1 + 3 + 2 * 3)

        XCTAssertEqual(a.ops[0].entry, "(before the first guest request)")
        XCTAssertEqual(a.ops[0].probeHits, 1)
        XCTAssertEqual(a.ops[3].entry, "blk_unref")
        XCTAssertEqual(a.ops[3].probeHits, 2, "blk_unref and bdrv_close_all share one close group")
        XCTAssertFalse(a.ops[3].isGuestRequest)
    }

    func testEveryHostSyncSitsUnderWorkerFlushUnderThreadPoolSubmit() throws {
        let a = try F.analyse(F.writeThenFlush(), in: dir)
        var syncs: [CausalNode] = []
        for op in a.ops where op.isGuestRequest {
            for submit in op.children where submit.kind.name == "thread_pool_submit" {
                XCTAssertEqual(submit.symbol, "thread_pool_submit_aio")
                XCTAssertEqual(submit.tid, F.mainTid)
                XCTAssertEqual(submit.details["fd"], "9")
                XCTAssertEqual(submit.details["arg"], "0x" + String(op.kind == .write ? F.writeACB : F.flushACB, radix: 16))
                XCTAssertEqual(submit.details["coroutine"],
                               "0x" + String(op.kind == .write ? F.writeCoroutine : F.flushCoroutine, radix: 16))
                let worker = try XCTUnwrap(submit.children.first)
                XCTAssertEqual(submit.children.count, 1)
                XCTAssertEqual(worker.kind.name, "worker_flush")
                XCTAssertEqual(worker.symbol, "handle_aiocb_flush")
                XCTAssertEqual(worker.details["arg"], submit.details["arg"])
                let qemuSync = try XCTUnwrap(worker.children.first)
                XCTAssertEqual(qemuSync.kind.name, "qemu_fdatasync")
                XCTAssertEqual(qemuSync.details["fd"], "9")
                XCTAssertEqual(qemuSync.tid, worker.tid)
                let host = try XCTUnwrap(qemuSync.children.first)
                XCTAssertEqual(host.kind, CausalNode.hostSyncKind)
                XCTAssertEqual(host.tid, worker.tid)
                XCTAssertTrue(host.children.isEmpty)
                syncs.append(host)
            }
        }
        XCTAssertEqual(syncs.count, 5)
        XCTAssertEqual(syncs.map(\.tid), F.writeThenFlushWorkers)
        XCTAssertEqual(syncs.map(\.latencyNs), F.writeThenFlushLatencies.map { Optional($0) }, "latency = exit - enter")
        for s in syncs {
            XCTAssertEqual(s.returnValue, 0)
            XCTAssertEqual(s.details["fd"], "9")
            XCTAssertEqual(s.details["syscall"], "fdatasync")
            XCTAssertEqual(s.symbol, "fdatasync")
        }
    }

    func testNodeTimesAndOpSpansAreRelativeToTheCaptureStart() throws {
        let trace = F.writeThenFlush()
        let a = try F.analyse(trace, in: dir)
        let rel = { (e: Event) in e.timestamp - F.startNs }
        let writeEvent = trace.events[1]
        XCTAssertEqual(a.ops[1].startNs, rel(writeEvent))
        let flushIndex = try XCTUnwrap(trace.events.firstIndex { $0.probeID == UInt16(trace.probe(.guestFlushCo).id) })
        // The write op ends at the exit of its last host sync, just before the flush request.
        XCTAssertEqual(a.ops[1].endNs, rel(trace.events[flushIndex - 1]))
        XCTAssertEqual(trace.events[flushIndex - 1].kind, .syscallExit)
        XCTAssertEqual(a.ops[2].startNs, rel(trace.events[flushIndex]))
        XCTAssertEqual(a.ops[2].endNs, rel(trace.events[trace.events.count - 3]))
        XCTAssertEqual(a.ops[1].children[0].timeNs, rel(trace.events[2]))
        XCTAssertEqual(a.capture.events, UInt64(trace.events.count))
    }

    func testCacheWriteDetailsNameTheCaches() throws {
        let a = try F.analyse(F.writeThenFlush(), in: dir)
        let writeCache = try XCTUnwrap(a.ops[1].children.first { $0.kind.name == "qcow2_cache_write" })
        XCTAssertEqual(writeCache.details.dictionary, ["cache": "refcount"])
        XCTAssertEqual(writeCache.symbol, "qcow2_cache_write")
        let flushCache = try XCTUnwrap(a.ops[2].children.first { $0.kind.name == "qcow2_cache_write" })
        XCTAssertEqual(flushCache.details.dictionary, ["cache": "l2", "depends": "refcount"])
        XCTAssertEqual(a.ops[1].children[0].details.dictionary, ["offset": "0", "bytes": "4096"])
        XCTAssertEqual(a.ops[1].children[3].details.dictionary, ["l1_index": "0"])
    }

    func testCacheEntryFlushDetailsAndUnreadDerefs() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestWriteCo, args: [F.blk, 65536, 512])
        t.uprobe(.qcow2CacheEntryFlush, args: [F.qcow2BS, F.l2Cache, 0xffff_ffff_0000_0003],
                 derefs: ["depends": 0, "depends_on_flush": 0x0100, "l2_table_cache": F.l2Cache, "refcount_block_cache": F.refcountCache])
        t.uprobe(.qcow2CacheEntryFlush, args: [F.qcow2BS, 0x1234, 1],
                 derefs: ["depends": F.l2Cache, "depends_on_flush": 1, "l2_table_cache": F.l2Cache, "refcount_block_cache": F.refcountCache])
        // Derefs that failed to read are not used.
        t.uprobe(.qcow2CacheWrite, args: [F.qcow2BS, F.l2Cache],
                 derefs: ["depends": F.refcountCache, "depends_on_flush": 1, "l2_table_cache": F.l2Cache, "refcount_block_cache": F.refcountCache],
                 unread: ["depends", "depends_on_flush", "l2_table_cache"])
        let a = try F.analyse(t, in: dir)
        let op = try XCTUnwrap(a.ops.first)
        XCTAssertEqual(op.offset, 65536)
        XCTAssertEqual(op.bytes, 512)
        XCTAssertEqual(op.children.map(\.details.dictionary), [
            ["cache": "l2", "index": "3"],
            ["cache": "unknown", "depends": "l2", "depends_on_flush": "true", "index": "1"],
            ["cache": "unknown"],
        ])
    }

    // MARK: - Pairing submits with workers

    func testPointerPairingBeatsThreadAndArrivalOrder() throws {
        var t = Trace(manifest: F.manifest())
        let a1: UInt64 = 0x7f3a_4c1f_e6a0, a2: UInt64 = 0x7f3a_4c0e_96a0
        t.uprobe(.guestWriteCo, args: [F.blk, 0, 4096])
        t.submit(acb: a1, coroutine: F.writeCoroutine)
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.submit(acb: a2, coroutine: F.flushCoroutine)
        // The flush's job runs first, on another worker than the write's.
        t.uprobe(.workerFlush, tid: 102, args: [a2], derefs: ["aio_type": 8, "fd": 9])
        t.uprobe(.workerFlush, tid: 101, args: [a1], derefs: ["aio_type": 8, "fd": 9])
        t.uprobe(.qemuFdatasync, tid: 101, args: [9])
        t.uprobe(.qemuFdatasync, tid: 102, args: [9])
        t.syscallEnter(tid: 102, fd: 9)
        t.syscallEnter(tid: 101, fd: 9)
        t.syscallExit(tid: 101, after: 10_000)
        t.syscallExit(tid: 102, after: 20_000)
        let a = try F.analyse(t, in: dir)

        XCTAssertEqual(a.ops.map(\.kind), [.write, .flush])
        XCTAssertEqual(a.ops.map(\.hostSyncs), [1, 1])
        let writeSync = try XCTUnwrap(a.ops[0].allNodes.first { $0.kind == CausalNode.hostSyncKind })
        let flushSync = try XCTUnwrap(a.ops[1].allNodes.first { $0.kind == CausalNode.hostSyncKind })
        XCTAssertEqual(writeSync.tid, 101)
        XCTAssertEqual(flushSync.tid, 102)
        // 102 entered first and left last: each exit pairs with the entry on its own thread.
        XCTAssertEqual(writeSync.latencyNs, 10_000)
        XCTAssertEqual(flushSync.latencyNs, 1_000 + 10_000 + 20_000)
        XCTAssertEqual(a.ops[0].children[0].children.first?.details["arg"], "0x" + String(a1, radix: 16))
        XCTAssertEqual(a.ops[1].children[0].children.first?.details["arg"], "0x" + String(a2, radix: 16))
        XCTAssertEqual(a.totals.unattributedHostSyncs, 0)
    }

    func testWorkerFlushWithoutASubmitIsUnattributed() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.worker(tid: 101, acb: 0x7f00_dead_0000)
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.ops.map(\.hostSyncs), [0])
        XCTAssertEqual(a.totals.hostSyncs, 1)
        XCTAssertEqual(a.totals.unattributedHostSyncs, 1)
        let reasons = a.unattributed.map(\.reason)
        XCTAssertTrue(reasons.contains { $0.contains("has no thread_pool_submit_aio") && $0.contains("0x7f00dead0000") }, "\(reasons)")
        XCTAssertTrue(reasons.contains { $0.contains("qemu_fdatasync on thread 101") }, "\(reasons)")
        XCTAssertTrue(reasons.contains { $0.contains("fdatasync on thread 101 ran outside") }, "\(reasons)")
        XCTAssertEqual(a.unattributed.filter { $0.node.kind == CausalNode.hostSyncKind }.count, 1)
    }

    func testStockBinaryPairsQemuFdatasyncFIFOByFd() throws {
        let manifest = F.manifest(probes: F.stockProbes, missing: F.stockMissing)
        var t = Trace(manifest: manifest)
        let acbA: UInt64 = 0x7f3a_0000_a000, acbB: UInt64 = 0x7f3a_0000_b000, acbC: UInt64 = 0x7f3a_0000_c000
        t.uprobe(.guestWriteCo, args: [F.blk, 0, 4096])
        t.submit(acb: acbA, fd: 10)                       // op 0, fd 10 (the backing file)
        t.uprobe(.guestWriteCo, args: [F.blk, 4096, 4096])
        t.submit(acb: acbB, fd: 9)                        // op 1, fd 9
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.submit(acb: acbC, fd: 9)                        // op 2, fd 9
        // Workers, without handle_aiocb_flush: only qemu_fdatasync(fd) and the system call.
        t.worker(tid: 101, acb: 0, fd: 9, latency: 11_000)   // oldest fd-9 submit: B (op 1)
        t.worker(tid: 102, acb: 0, fd: 9, latency: 22_000)   // next: C (op 2)
        t.worker(tid: 101, acb: 0, fd: 10, latency: 33_000)  // A (op 0), although it was submitted first
        let a = try F.analyse(t, in: dir)

        XCTAssertFalse(t.events.contains { $0.kind == .uprobe && manifest.probes[Int($0.probeID)].role == "handle_aiocb_flush" })
        XCTAssertEqual(a.ops.map(\.kind), [.write, .write, .flush])
        XCTAssertEqual(a.ops.map(\.hostSyncs), [1, 1, 1])
        func sync(_ op: GuestOp) -> CausalNode? { op.allNodes.first { $0.kind == CausalNode.hostSyncKind } }
        XCTAssertEqual(sync(a.ops[0])?.details["fd"], "10")
        XCTAssertEqual(sync(a.ops[0])?.latencyNs, 33_000)
        XCTAssertEqual(sync(a.ops[1])?.tid, 101)
        XCTAssertEqual(sync(a.ops[1])?.latencyNs, 11_000)
        XCTAssertEqual(sync(a.ops[2])?.tid, 102)
        XCTAssertEqual(sync(a.ops[2])?.latencyNs, 22_000)
        // submit -> qemu_fdatasync -> host sync, with no worker_flush in between.
        for op in a.ops {
            let submit = try XCTUnwrap(op.children.first { $0.kind.name == "thread_pool_submit" })
            XCTAssertEqual(submit.children.map(\.kind.name), ["qemu_fdatasync"])
            XCTAssertEqual(submit.children[0].children.map(\.kind.name), [CausalNode.hostSyncKind.name])
        }
        XCTAssertEqual(a.totals.unattributedHostSyncs, 0)
        XCTAssertTrue(a.warnings.contains { $0.contains("probe handle_aiocb_flush was not attached") })
    }

    func testStockBinaryUsesBlkAioPwritevBytesDeref() throws {
        var t = Trace(manifest: F.manifest(probes: F.stockProbes))
        t.uprobe(.guestWriteAIO, args: [F.blk, 8192, 0x7ffd_2000], derefs: ["bytes": 65536])
        t.uprobe(.qcow2Write, args: [F.qcow2BS, 8192, 0x7ffd_3000])
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.ops.count, 1)
        XCTAssertEqual(a.ops[0].kind, .write)
        XCTAssertEqual(a.ops[0].entry, "blk_aio_pwritev")
        XCTAssertEqual(a.ops[0].offset, 8192)
        XCTAssertEqual(a.ops[0].bytes, 65536)
        // qcow2_alloc_host_offset's third argument is a pointer, not a byte count.
        XCTAssertEqual(a.ops[0].children.first?.details.dictionary, ["offset": "8192"])
        XCTAssertEqual(a.ops[0].children.first?.symbol, "qcow2_alloc_host_offset")
    }

    func testNonFlushSubmitsCreateNoNodes() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestWriteCo, args: [F.blk, 0, 4096])
        t.submit(acb: 0x7f00_0000_1000, aioType: 0x0002)        // QEMU_AIO_WRITE
        t.submit(acb: 0x7f00_0000_2000, aioType: 0x0001)        // QEMU_AIO_READ
        t.submit(acb: 0x7f00_0000_3000, aioType: 0x0040)        // QEMU_AIO_WRITE_ZEROES
        t.submit(acb: 0x7f00_0000_4000, aioType: 0xdead_0000_0000_0002)  // only the low 32 bits are aio_type
        // A flush type whose aio_type could not be read is not a flush job either.
        t.uprobe(.threadPoolSubmit, args: [F.pool, F.handleAIOCBFunc, 0x7f00_0000_5000],
                 derefs: ["coroutine": F.writeCoroutine, "aio_type": 8, "fd": 9], unread: ["aio_type"])
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.ops.count, 1)
        XCTAssertEqual(a.ops[0].children, [])
        XCTAssertEqual(a.ops[0].probeHits, 1)
        XCTAssertEqual(a.probeHits[t.probe(.threadPoolSubmit).id], 5, "hits are still counted per probe")
        XCTAssertEqual(a.totals.hostSyncs, 0)
    }

    func testFlushTypeInTheHighBitsIsStillAFlush() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.submit(acb: 0x7f00_0000_1000, aioType: 0xffff_ffff_0000_0008)
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.ops[0].children.map(\.kind.name), ["thread_pool_submit"])
    }

    // MARK: - Syncs without QEMU context, open and close groups

    func testHostSyncWithoutQemuContextIsUnattributed() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestWriteCo, args: [F.blk, 0, 4096])
        t.hostSync(tid: 300, fd: 5, latency: 12_345)
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.ops.map(\.hostSyncs), [0])
        XCTAssertEqual(a.totals.hostSyncs, 1)
        XCTAssertEqual(a.totals.unattributedHostSyncs, 1)
        XCTAssertEqual(a.unattributed.count, 1)
        let u = try XCTUnwrap(a.unattributed.first)
        XCTAssertEqual(u.node.kind, CausalNode.hostSyncKind)
        XCTAssertEqual(u.node.tid, 300)
        XCTAssertEqual(u.node.details["fd"], "5")
        XCTAssertEqual(u.node.latencyNs, 12_345)
        XCTAssertTrue(u.reason.contains("thread 300"), u.reason)
        XCTAssertTrue(u.reason.contains("outside any QEMU flush job or request"), u.reason)
        XCTAssertTrue(a.warnings.contains { $0.contains("1 host syncs could not be placed") }, "\(a.warnings)")
    }

    /// A sync whose exit was lost is kept when the next sync on the same thread begins.
    func testSyncWhoseExitWasLostIsNotOverwritten() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestWriteCo, args: [F.blk, 0, 4096])
        t.syscallEnter(tid: 300, fd: 5)
        t.hostSync(tid: 300, fd: 5, latency: 1_000)
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.totals.hostSyncs, 2)
        XCTAssertEqual(a.totals.unattributedHostSyncs, 2)
        XCTAssertEqual(a.unattributed.filter { $0.reason.contains("no exit captured") }.count, 1)
    }

    func testHostSyncWithoutExitIsUnattributedAtTheEnd() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestWriteCo, args: [F.blk, 0, 4096])
        t.syscallEnter(tid: 301, fd: 7)
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.totals.unattributedHostSyncs, 1)
        let u = try XCTUnwrap(a.unattributed.first)
        XCTAssertNil(u.node.latencyNs)
        XCTAssertNil(u.node.returnValue)
        XCTAssertTrue(u.reason.contains("no exit captured"), u.reason)
    }

    func testHostSyncOnTheRequestThreadGoesUnderTheRequest() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.uprobe(.qemuFdatasync, args: [9])
        t.hostSync(tid: F.mainTid, fd: 9, latency: 9_000, ret: -5)
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.ops[0].children.map(\.kind.name), ["qemu_fdatasync"])
        let host = try XCTUnwrap(a.ops[0].children[0].children.first)
        XCTAssertEqual(host.kind, CausalNode.hostSyncKind)
        XCTAssertEqual(host.returnValue, -5, "EIO is kept")
        XCTAssertEqual(a.totals.unattributedHostSyncs, 0)
    }

    func testFsyncIsNamedAsSuch() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.syscallEnter(tid: F.mainTid, fd: 4, call: .fsync)
        t.syscallExit(tid: F.mainTid, after: 1_000, call: .fsync)
        let a = try F.analyse(t, in: dir)
        let host = try XCTUnwrap(a.ops[0].children.first)
        XCTAssertEqual(host.details.dictionary, ["fd": "4", "syscall": "fsync"])
        XCTAssertEqual(a.totals.hostSyncs, 1)
    }

    func testOpenAndCloseGroups() throws {
        var t = Trace(manifest: F.manifest())
        // Image open: metadata work and a flush job before any guest request.
        t.uprobe(.qcow2CacheWrite, args: [F.qcow2BS, F.l2Cache],
                 derefs: ["depends": 0, "depends_on_flush": 0, "l2_table_cache": F.l2Cache, "refcount_block_cache": F.refcountCache])
        t.submit(acb: 0x7f00_0000_0100, fd: 9)
        t.worker(tid: 101, acb: 0x7f00_0000_0100)
        t.uprobe(.backendUnref, args: [0x5630_0000_1111])   // a temporary BlockBackend: still open work
        t.uprobe(.guestWriteCo, args: [F.blk, 0, 512])
        t.uprobe(.backendUnref, args: [F.blk])              // after a request: close work starts
        t.uprobe(.closeAll)
        t.uprobe(.nodeFlush, args: [F.qcow2BS])
        t.submit(acb: 0x7f00_0000_0200, fd: 9)
        t.worker(tid: 102, acb: 0x7f00_0000_0200)
        let a = try F.analyse(t, in: dir)

        XCTAssertEqual(a.ops.map(\.kind), [.imageOpen, .write, .imageClose])
        XCTAssertEqual(a.ops.map(\.hostSyncs), [1, 0, 1])
        XCTAssertEqual(a.ops[0].children.map(\.kind.name), ["qcow2_cache_write", "thread_pool_submit"])
        XCTAssertEqual(a.ops[0].probeHits, 5, "cache write, submit, worker, qemu_fdatasync, blk_unref")
        XCTAssertEqual(a.ops[0].startNs, t.events[0].timestamp - F.startNs)
        XCTAssertEqual(a.ops[2].entry, "blk_unref")
        XCTAssertEqual(a.ops[2].children.map(\.kind.name), ["bdrv_co_flush", "thread_pool_submit"])
        XCTAssertEqual(a.totals.hostSyncs, 2)
        XCTAssertEqual(a.totals.guestWrites, 1)
        XCTAssertEqual(a.totals.guestFlushes, 0)
        XCTAssertNil(a.totals.syncAmplification)
        XCTAssertEqual(a.totals.unattributedHostSyncs, 0)
    }

    func testCloseAllAloneOpensACloseGroupAndANewRequestEndsIt() throws {
        var t = Trace(manifest: F.manifest())
        t.uprobe(.guestWriteCo, args: [F.blk, 0, 512])
        t.uprobe(.closeAll)
        t.uprobe(.backendUnref, args: [F.blk])
        t.uprobe(.guestFlushCo, args: [F.blk])
        t.uprobe(.backendUnref, args: [F.blk])
        let a = try F.analyse(t, in: dir)
        XCTAssertEqual(a.ops.map(\.kind), [.write, .imageClose, .flush, .imageClose])
        XCTAssertEqual(a.ops[1].entry, "bdrv_close_all")
        XCTAssertEqual(a.ops[1].probeHits, 2)
    }

    func testUnknownProbeIdsAndKindsAreCountedButNotPlaced() throws {
        let m = F.manifest()
        var events = F.writeThenFlush().events
        events.insert(Event(timestamp: events[3].timestamp, pid: F.pid, tid: 100, cpu: 0, kind: .uprobe, probeID: 63), at: 4)
        var odd = Event(timestamp: events[5].timestamp, pid: F.pid, tid: 100, cpu: 0, kind: .uprobe, probeID: 0)
        odd.rawKind = 9
        events.insert(odd, at: 6)
        let a = try F.analyse(m, events.map(CaptureRecord.event), in: dir)
        XCTAssertEqual(a.probeHits[63], 1)
        XCTAssertEqual(a.totals.hostSyncs, 5)
        XCTAssertEqual(a.ops.map(\.hostSyncs), [0, 3, 2, 0])
        XCTAssertEqual(a.capture.events, UInt64(events.count))
    }

    // MARK: - Ordering

    func testEventsRecordedOutOfOrderAreAnalysedInTimeOrder() throws {
        let trace = F.writeThenFlush()
        let inOrder = try F.analyse(trace, in: dir)
        // Each worker's handle_aiocb_flush is reserved in the ring buffer before its submit (other CPU).
        var events = trace.events
        let submitID = UInt16(trace.probe(.threadPoolSubmit).id)
        var i = 0
        var swaps = 0
        while i + 1 < events.count {
            if events[i].probeID == submitID && events[i].kind == .uprobe {
                events.swapAt(i, i + 1)
                swaps += 1
                i += 2
            } else {
                i += 1
            }
        }
        XCTAssertEqual(swaps, 5)
        let shuffled = try F.analyse(trace.manifest, events.map(CaptureRecord.event) + [.trailer(F.trailer(for: events))], in: dir)
        XCTAssertEqual(shuffled.ops, inOrder.ops)
        XCTAssertEqual(shuffled.totals, inOrder.totals)
        XCTAssertEqual(shuffled.capture.reorderedEvents, 5)
        XCTAssertEqual(shuffled.capture.lateEvents, 0)
        XCTAssertEqual(inOrder.capture.reorderedEvents, 0)
    }

    func testTooSmallAWindowCountsLateEventsAndWarns() throws {
        let trace = F.writeThenFlush()
        var events = trace.events
        // The first event arrives last: far beyond a window of 2.
        events.append(events.removeFirst())
        let a = try F.analyse(trace.manifest, events.map(CaptureRecord.event), in: dir, reorderWindow: 2)
        XCTAssertEqual(a.capture.lateEvents, 1)
        XCTAssertTrue(a.warnings.contains { $0.contains("1 events arrived too late") }, "\(a.warnings)")
    }
}
