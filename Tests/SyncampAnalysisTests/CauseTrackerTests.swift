@testable import SyncampAnalysis
import XCTest

/// The cause tracker on event sequences taken from QEMU 7.2's code paths (qcow2-cache.c, qcow2-cluster.c,
/// qcow2-refcount.c) as the flush-sites reference traces them with gdb.
final class CauseTrackerTests: XCTestCase {
    let l2: UInt64 = 0x1000, rb: UInt64 = 0x2000

    /// Case (a)'s guest flush: the L2 write-back first flushes the refcount cache (F2), then the final flush (F1).
    func testGuestFlushWithRefcountDependency() {
        let t = CauseTracker(finalCause: .guestFlush, hasEntryFlushProbe: true)
        t.nodeFlush(isFormatNode: true)
        t.cacheWrite(cache: l2, depends: rb, dependencyCause: .refcountDependency)
        t.entryFlush(cache: l2, depends: rb, dependsOnFlush: false, dependencyCause: .refcountDependency)
        t.cacheWrite(cache: rb, depends: 0, dependencyCause: .dependencyCrossFlush)
        t.nodeFlush(isFormatNode: false)
        let first = t.submit()
        t.cacheWrite(cache: rb, depends: 0, dependencyCause: .dependencyCrossFlush)
        t.nodeFlush(isFormatNode: false)
        let last = t.submit()
        t.endFullFlush()
        XCTAssertEqual([first.cause, last.cause], [.refcountDependency, .guestFlush])
    }

    /// A dependency flush that reaches a clean file node is skipped: the next sync is not blamed on it.
    func testSkippedPreFlushDoesNotNameTheNextSync() {
        let t = CauseTracker(finalCause: .writethrough, hasEntryFlushProbe: true)
        t.cacheWrite(cache: l2, depends: rb, dependencyCause: .refcountDependency)
        t.entryFlush(cache: l2, depends: rb, dependsOnFlush: false, dependencyCause: .refcountDependency)
        t.cacheWrite(cache: rb, depends: 0, dependencyCause: .dependencyCrossFlush)
        t.nodeFlush(isFormatNode: false)      // nothing written since the last sync: no submit
        t.entryFlush(cache: l2, depends: 0, dependsOnFlush: false, dependencyCause: .refcountDependency)
        t.nodeFlush(isFormatNode: false)
        XCTAssertEqual(t.submit().cause, .l2TableAlloc)
    }

    /// A clean entry with a pending dependency does nothing; the marker must not outlive it.
    func testDependencyOfACleanEntryIsDropped() {
        let t = CauseTracker(finalCause: .writethrough, hasEntryFlushProbe: true)
        t.entryFlush(cache: l2, depends: rb, dependsOnFlush: false, dependencyCause: .refcountDependency)
        t.entryFlush(cache: l2, depends: rb, dependsOnFlush: false, dependencyCause: .refcountDependency)
        t.qcow2Write()
        t.cacheWrite(cache: rb, depends: 0, dependencyCause: .dependencyCrossFlush)
        t.nodeFlush(isFormatNode: false)
        XCTAssertEqual(t.submit().cause, .l2TableAlloc)
    }

    /// l2_allocate: refcount flush, L2 flush, synced L1 entry (F4-F6).
    func testNewL2Table() {
        let t = CauseTracker(finalCause: .writethrough, hasEntryFlushProbe: true)
        t.qcow2Write()
        t.cacheWrite(cache: rb, depends: 0, dependencyCause: .dependencyCrossFlush)
        t.nodeFlush(isFormatNode: false)
        let s1 = t.submit()
        t.cacheWrite(cache: l2, depends: 0, dependencyCause: .refcountDependency)
        t.nodeFlush(isFormatNode: false)
        let s2 = t.submit()
        t.l1Entry()
        t.pwriteSync(offset: 65536)
        t.nodeFlush(isFormatNode: false)
        let s3 = t.submit()
        XCTAssertEqual([s1.cause, s2.cause, s3.cause], [.l2TableAlloc, .l2TableAlloc, .l2TableAlloc])
    }

    /// alloc_refcount_block: the new block's refcount flush, then its synced refcount-table entry (F8).
    func testNewRefcountBlockRenamesThePlainFlushBeforeIt() {
        let t = CauseTracker(finalCause: .writethrough, hasEntryFlushProbe: true)
        t.qcow2Write()
        t.cacheWrite(cache: rb, depends: 0, dependencyCause: .dependencyCrossFlush)
        t.nodeFlush(isFormatNode: false)
        let s1 = t.submit()
        t.pwriteSync(offset: 65536)
        t.nodeFlush(isFormatNode: false)
        let s2 = t.submit()
        XCTAssertEqual([s1.cause, s2.cause], [.refcountBlockAlloc, .refcountBlockAlloc])
    }

    /// A dependency pre-flush outside a cache write pass is an eviction (F11).
    func testEvictionWithPendingDependency() {
        let t = CauseTracker(finalCause: .writethrough, hasEntryFlushProbe: true)
        t.qcow2Write()
        t.entryFlush(cache: l2, depends: rb, dependsOnFlush: false, dependencyCause: .refcountDependency)
        t.cacheWrite(cache: rb, depends: 0, dependencyCause: .dependencyCrossFlush)
        t.nodeFlush(isFormatNode: false)
        XCTAssertEqual(t.submit().cause, .cacheEviction)
    }

    func testLazyDirtyBitAndCrossDependency() {
        let t = CauseTracker(finalCause: .writethrough, hasEntryFlushProbe: true)
        t.markDirty()
        t.pwriteSync(offset: 65536)
        t.nodeFlush(isFormatNode: false)
        XCTAssertEqual(t.submit().cause, .lazyDirtyBit)
        t.setDependency(willFlush: true)
        t.cacheWrite(cache: l2, depends: 0, dependencyCause: .refcountDependency)
        t.nodeFlush(isFormatNode: false)
        XCTAssertEqual(t.submit().cause, .dependencyCrossFlush)
    }

    /// Write-through: the write path's syncs keep their causes, the FUA flush's last sync is F14.
    func testWritethroughFlushInsideAWrite() {
        let t = CauseTracker(finalCause: .writethrough, hasEntryFlushProbe: true)
        t.l1Entry()
        t.nodeFlush(isFormatNode: false)
        let alloc = t.submit()
        t.nodeFlush(isFormatNode: true)
        t.nodeFlush(isFormatNode: false)
        let fua = t.submit()
        t.endFullFlush()
        XCTAssertEqual([alloc.cause, fua.cause], [.l2TableAlloc, .writethrough])
    }

    /// Stock binaries lack qcow2_cache_entry_flush: qcow2_cache_write's `depends` stands for it.
    func testStockBinaryUsesCacheWriteDepends() {
        let t = CauseTracker(finalCause: .guestFlush, hasEntryFlushProbe: false)
        t.nodeFlush(isFormatNode: true)
        t.cacheWrite(cache: l2, depends: rb, dependencyCause: .refcountDependency)
        t.cacheWrite(cache: rb, depends: 0, dependencyCause: .dependencyCrossFlush)
        t.nodeFlush(isFormatNode: false)
        let first = t.submit()
        t.nodeFlush(isFormatNode: false)
        let last = t.submit()
        t.endFullFlush()
        XCTAssertEqual([first.cause, last.cause], [.refcountDependency, .guestFlush])
    }

    /// Close, open and housekeeping work is named after its group.
    func testGroupsNameEverySync() {
        let t = CauseTracker(finalCause: .imageClose, hasEntryFlushProbe: true)
        t.nodeFlush(isFormatNode: true)
        t.entryFlush(cache: l2, depends: rb, dependsOnFlush: false, dependencyCause: .refcountDependency)
        t.cacheWrite(cache: rb, depends: 0, dependencyCause: .dependencyCrossFlush)
        t.nodeFlush(isFormatNode: false)
        let a = t.submit()
        t.markDirty()
        let b = t.submit()
        t.endFullFlush()
        XCTAssertEqual([a.cause, b.cause], [.imageClose, .imageClose])
    }
}
