@testable import SyncampAnalysis
import SyncampQcow2
import XCTest

/// The reference model on hand-written op streams, expectations reasoned from the qcow2 spec and
/// QEMU 7.2's flush rules (the flush-sites reference's §2 model and its §5 measured cases).
final class Qcow2ModelTests: XCTestCase {
    let GiB: UInt64 = 1 << 30, MiB: UInt64 = 1 << 20, KiB: UInt64 = 1 << 10

    func model(_ size: UInt64 = 1 << 30, clusterBits: Int = 16, refcountOrder: Int = 4, lazy: Bool = false,
               extendedL2: Bool = false, cache: CacheMode = .writeback, prealloc: String? = nil) -> Qcow2Model {
        let image = ImageState.fresh(path: "/img.qcow2", size: size, clusterBits: clusterBits, refcountOrder: refcountOrder,
                                     extendedL2: extendedL2, lazyRefcounts: lazy)
        return Qcow2Model(image: image, options: ModelOptions(cache: cache, preallocation: prealloc))
    }

    /// (a): a new L2 table in the write (F4-F6), then the refcount pre-flush and the final flush.
    func testFreshImageWriteAndFlush() {
        var m = model()
        XCTAssertEqual(m.write(offset: 0, bytes: 4 * KiB), [.l2TableAlloc: 3])
        XCTAssertEqual(m.flush(), [.refcountDependency: 1, .guestFlush: 1])
        XCTAssertEqual(m.close(), [:], "nothing is dirty after the flush")
    }

    /// (b): overwriting an allocated cluster allocates nothing; its flush is the final one only.
    func testOverwrite() {
        var m = model()
        _ = m.write(offset: 0, bytes: 4 * KiB)
        _ = m.flush()
        XCTAssertEqual(m.write(offset: 0, bytes: 4 * KiB), [:])
        XCTAssertEqual(m.flush(), [.guestFlush: 1])
        XCTAssertEqual(m.flush(), [:], "a second flush with nothing written costs nothing")
    }

    /// (d): 100 allocating write+flush pairs: 3 + 100 x 2 = 203.
    func testManyAllocatingPairs() {
        var m = model()
        var total = 0
        for i in 0..<100 {
            total += m.write(offset: UInt64(i) * 64 * KiB, bytes: 4 * KiB).values.reduce(0, +)
            total += m.flush().values.reduce(0, +)
        }
        XCTAssertEqual(total, 203)
    }

    /// (e): two L2 tables before one flush: 3 + 3 + 2.
    func testSecondL2TableWithoutAFlushBetween() {
        var m = model(2 * GiB)
        XCTAssertEqual(m.write(offset: 0, bytes: 4 * KiB), [.l2TableAlloc: 3])
        XCTAssertEqual(m.write(offset: 512 * MiB, bytes: 4 * KiB), [.l2TableAlloc: 3])
        XCTAssertEqual(m.flush(), [.refcountDependency: 1, .guestFlush: 1])
    }

    /// (f): lazy_refcounts: the dirty bit once, no refcount pre-flush, two syncs at close.
    func testLazyRefcounts() {
        var m = model(lazy: true)
        XCTAssertEqual(m.write(offset: 0, bytes: 4 * KiB), [.l2TableAlloc: 3, .lazyDirtyBit: 1])
        XCTAssertEqual(m.flush(), [.guestFlush: 1])
        XCTAssertEqual(m.write(offset: 64 * KiB, bytes: 4 * KiB), [:], "the dirty bit is set once per open")
        XCTAssertEqual(m.flush(), [.guestFlush: 1])
        XCTAssertEqual(m.close(), [.imageClose: 2])
    }

    /// (g): write-through: the flush runs inside every write.
    func testWritethrough() {
        var m = model(cache: .writethrough)
        XCTAssertEqual(m.write(offset: 0, bytes: 4 * KiB), [.l2TableAlloc: 3, .refcountDependency: 1, .writethrough: 1])
        XCTAssertEqual(m.flush(), [:])
        XCTAssertEqual(m.write(offset: 0, bytes: 4 * KiB), [.writethrough: 1])
    }

    /// (h): cache=unsafe: no host flush at all.
    func testUnsafe() {
        var m = model(cache: .unsafe)
        XCTAssertEqual(m.write(offset: 0, bytes: 4 * KiB), [:])
        XCTAssertEqual(m.flush(), [:])
        XCTAssertEqual(m.close(), [:])
    }

    /// preallocation=metadata: every table and cluster exists, each flush costs only itself.
    func testPreallocationMetadata() {
        var m = model(prealloc: "metadata")
        for i in 0..<10 {
            XCTAssertEqual(m.write(offset: UInt64(i) * 64 * KiB, bytes: 4 * KiB), [:])
            XCTAssertEqual(m.flush(), [.guestFlush: 1])
        }
    }

    /// 4 KiB clusters, 64 MiB: a refcount block covers 8 MiB of host file. Writing 0-9 MiB in five
    /// requests makes 5 L2 tables (15), one refcount block (its flush and table entry, 2), the undo's
    /// cross-dependency flush (1), then the flush (2): 20, as measured.
    func testRefcountBlockBoundary() {
        var m = model(64 * MiB, clusterBits: 12)
        var causes: [Cause: Int] = [:]
        for (off, len) in [(0, 2), (2, 2), (4, 2), (6, 2), (8, 1)] {
            for (c, n) in m.write(offset: UInt64(off) * MiB, bytes: UInt64(len) * MiB) { causes[c, default: 0] += n }
        }
        for (c, n) in m.flush() { causes[c, default: 0] += n }
        XCTAssertEqual(causes, [.l2TableAlloc: 15, .refcountBlockAlloc: 2, .dependencyCrossFlush: 1,
                                .refcountDependency: 1, .guestFlush: 1])
    }

    /// refcount_bits=64 shrinks a refcount block's coverage to 512 MiB at 64 KiB clusters.
    func testRefcountBlockCoverage() {
        let state = ImageState.fresh(path: "/i", size: GiB, clusterBits: 16, refcountOrder: 6)
        XCTAssertEqual(state.clustersPerRefcountBlock * state.clusterSize, 512 * MiB)
        XCTAssertEqual(ImageState.fresh(path: "/i", size: GiB).clustersPerRefcountBlock * 65536, 2 * GiB)
    }

    /// extended_l2: a write to a new subcluster of an allocated cluster updates the L2 bitmap and
    /// sets the dependency again: 5 + 2, where standard L2 entries give 5 + 1.
    func testExtendedL2Subclusters() {
        var ext = model(extendedL2: true)
        _ = ext.write(offset: 0, bytes: 4 * KiB)
        _ = ext.flush()
        XCTAssertEqual(ext.write(offset: 32 * KiB, bytes: 4 * KiB), [:])
        XCTAssertEqual(ext.flush(), [.refcountDependency: 1, .guestFlush: 1])
        var std = model()
        _ = std.write(offset: 0, bytes: 4 * KiB)
        _ = std.flush()
        _ = std.write(offset: 32 * KiB, bytes: 4 * KiB)
        XCTAssertEqual(std.flush(), [.guestFlush: 1])
    }

    /// A different cluster size simulates a fresh image of the same virtual size.
    func testWhatIfClusterSize() {
        let image = ImageState.fresh(path: "/i", size: GiB)
        var m = Qcow2Model(image: image, options: ModelOptions(cache: .writeback, clusterBits: 21))
        XCTAssertEqual(m.image.clusterSize, 2 * MiB)
        _ = m.write(offset: 0, bytes: 4 * KiB)
        _ = m.flush()
        XCTAssertEqual(m.write(offset: 64 * KiB, bytes: 4 * KiB), [:], "inside the same 2 MiB cluster")
        XCTAssertEqual(m.flush(), [.guestFlush: 1])
    }

    func testClusterSetMergesAndCountsMissing() {
        var s = ClusterSet()
        s.insert(10, 20)
        s.insert(30, 40)
        s.insert(20, 30)
        XCTAssertEqual(s.ranges, [.init(start: 10, end: 40)])
        XCTAssertEqual(s.missing(0, 50), 20)
        XCTAssertEqual(s.missing(15, 25), 0)
        s.insert(0, 5)
        XCTAssertEqual(s.ranges.count, 2)
    }

    func testCacheModeFromCommandLines() {
        XCTAssertEqual(CacheMode.detect(command: ["/usr/bin/qemu-io", "-f", "qcow2", "-t", "writeback", "img"]), .writeback)
        XCTAssertEqual(CacheMode.detect(command: ["qemu-io", "img"]), .writethrough, "qemu-io's default")
        XCTAssertEqual(CacheMode.detect(command: ["qemu-io", "-n", "img"]), CacheMode.none)
        XCTAssertEqual(CacheMode.detect(command: ["qemu-io", "--cache=unsafe", "img"]), .unsafe)
        XCTAssertEqual(CacheMode.detect(command: ["qemu-system-x86_64", "-drive", "file=a.qcow2,cache=directsync,if=virtio"]), .directsync)
        XCTAssertEqual(CacheMode.detect(command: ["qemu-system-x86_64", "-drive", "file=a.qcow2"]), .writeback)
        XCTAssertNil(CacheMode.detect(command: ["some-tool", "img"]))
    }

    // MARK: discard, write-zeroes, resize (flush-sites reference §5, measured totals with the exit)

    private func total(_ c: [Cause: Int]?) -> Int { c?.values.reduce(0, +) ?? -1 }

    /// §5 discard: `write 0 64k` `flush` `discard 0 64k` `flush` = 7; without the middle flush 6 (F10b).
    func testDiscardAfterAFlushAndWithoutOne() {
        var m = model()
        XCTAssertEqual(total(m.write(offset: 0, bytes: 64 * KiB)) + total(m.flush()), 5)
        XCTAssertEqual(m.discard(offset: 0, bytes: 64 * KiB, unmap: true), [:])
        XCTAssertEqual(m.flush(), [.l2Dependency: 1, .guestFlush: 1], "the refcount cache waits for L2 after the decrease (F15)")
        XCTAssertEqual(m.close(), [:])

        var n = model()
        XCTAssertEqual(n.write(offset: 0, bytes: 64 * KiB), [.l2TableAlloc: 3])
        XCTAssertEqual(n.discard(offset: 0, bytes: 64 * KiB, unmap: true), [.dependencyCrossFlush: 1])
        XCTAssertEqual(n.flush(), [.l2Dependency: 1, .guestFlush: 1])
        XCTAssertEqual(n.close(), [:])
    }

    /// §5: a discard on a fresh image allocates the L2 table (3) and changes nothing else; flush 0.
    /// With discard=ignore it never reaches qcow2.
    func testDiscardOnAFreshImageAndIgnored() {
        var m = model()
        XCTAssertEqual(m.discard(offset: 0, bytes: 64 * KiB, unmap: true), [.l2TableAlloc: 3])
        XCTAssertEqual(m.flush(), [:])
        var n = model()
        XCTAssertEqual(n.discard(offset: 0, bytes: 64 * KiB, unmap: false), [:])
        XCTAssertEqual(n.flush(), [:])
    }

    /// §5 write-zeroes: after write+flush, `write -z` = +1 (the zero flag in L2), `-z -u` = +2 (freed);
    /// on a fresh image 3 + 1 = 4, with or without -u.
    func testWriteZeroes() {
        for (unmap, flush) in [(false, 1), (true, 2)] {
            var m = model()
            _ = m.write(offset: 0, bytes: 64 * KiB)
            _ = m.flush()
            XCTAssertEqual(m.writeZeroes(offset: 0, bytes: 64 * KiB, unmap: unmap), [:])
            XCTAssertEqual(total(m.flush()), flush, "unmap \(unmap)")
        }
        for unmap in [false, true] {
            var m = model()
            XCTAssertEqual(total(m.writeZeroes(offset: 0, bytes: 64 * KiB, unmap: unmap)) + total(m.flush()), 4)
        }
        var m = model()
        XCTAssertNil(m.writeZeroes(offset: 4 * KiB, bytes: 4 * KiB, unmap: false), "partial clusters are written as data")
    }

    /// Issue 18 (2): growing a 1G image to 64G grows its L1 (F7: refcount flush, table, header),
    /// writes the size (F16) and flushes the caches for the options update; the write at 60G is
    /// then a new L2 table. strace counts 10 with the exit's 2.
    func testResizeGrowsTheL1() {
        var m = model(GiB)
        XCTAssertEqual(m.truncate(to: 64 * GiB), [.l1TableGrow: 3, .resizeHeader: 1, .cacheReconfigure: 1])
        XCTAssertEqual(m.image.l1Size, 128)
        XCTAssertEqual(m.write(offset: 60 * GiB, bytes: 4 * KiB), [.l2TableAlloc: 3])
        XCTAssertEqual(total(m.close()), 2)
        XCTAssertNil(m.truncate(to: GiB), "a shrink is not modelled")
    }

    /// Cache sizes: the default L2 cache covers a 4G disk; 8 KiB does not.
    func testSmallCachesAreKnownGaps() {
        let image = ImageState.fresh(path: "/img.qcow2", size: 4 * GiB, clusterBits: 16)
        XCTAssertFalse(DriveOptions().l2CacheMayEvict(image))
        XCTAssertTrue(DriveOptions(l2CacheBytes: 8192).l2CacheMayEvict(image))
        XCTAssertFalse(DriveOptions(l2CacheBytes: 1 << 20).l2CacheMayEvict(image))
        let o = DriveOptions.detect(command: ["/x/qemu-io", "-t", "writeback", "--image-opts",
                                              "driver=qcow2,file.filename=d.qcow2,l2-cache-size=8K,detect-zeroes=unmap,discard=unmap"])
        XCTAssertEqual(o, DriveOptions(discardUnmap: true, detectZeroes: true, l2CacheBytes: 8192))
        XCTAssertFalse(DriveOptions.detect(command: ["qemu-system-x86_64", "-drive", "file=a.qcow2,if=virtio"]).discardUnmap)
        XCTAssertTrue(DriveOptions.detect(command: ["qemu-io", "-f", "qcow2", "a.qcow2"]).discardUnmap, "qemu-io's default")
    }
}
