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

    /// Removal in place against a plain set of clusters, over cuts inside, across and between
    /// ranges; and the counts of missing clusters, `missingNoting`'s too: it checks the range the
    /// last call fell in before searching, and a stale guess (after removals and merges) must
    /// never change the count.
    func testClusterSetRemoveMatchesASetOfClusters() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var s = ClusterSet(), plain = Set<UInt64>()
            for _ in 0..<24 {
                let a = UInt64.random(in: 0..<64, using: &rng), b = a + UInt64.random(in: 0..<10, using: &rng)
                switch UInt8.random(in: 0..<3, using: &rng) {
                case 0:
                    s.insert(a, b)
                    plain.formUnion(a..<b)
                case 1:
                    s.remove(a, b)
                    plain.subtract(a..<b)
                default:
                    guard a < b else { continue }
                    let expected = UInt64((a..<b).filter { !plain.contains($0) }.count)
                    XCTAssertEqual(s.missing(a, b), expected)
                    XCTAssertEqual(s.missingNoting(a, b), expected)
                    XCTAssertEqual(s.missingNoting(a, b), expected, "the same request again, from the noted range")
                    XCTAssertEqual(s.missingNoting(b - 1, b), plain.contains(b - 1) ? 0 : 1, "one inside it")
                }
                XCTAssertEqual(Set(s.ranges.flatMap { $0.start..<$0.end }), plain)
                XCTAssertTrue(zip(s.ranges, s.ranges.dropFirst()).allSatisfy { $0.end < $1.start && $0.start < $0.end })
            }
        }
    }

    /// `overwrite`, the shortcut every model run takes for most writes, against the full steps:
    /// two models get the same random writes, flushes, discards, zero writes and resizes; one
    /// tries the shortcut first on each write, the other always runs `write`. Every op's counts
    /// must agree, and so must what follows (a shortcut that forgot to dirty the file node, or
    /// took a write that allocates, shows in a later op's counts). Over configurations where the
    /// shortcut applies (write-back, extended L2, lazy refcounts) and where it must step aside
    /// (write-through, a small L2 cache, detect-zeroes).
    func testOverwriteShortcutMatchesTheSteps() {
        var rng = SystemRandomNumberGenerator()
        let KiB = self.KiB
        var shortcuts = [Int](repeating: 0, count: 6), refused = 0
        for config in 0..<6 {
            for _ in 0..<30 {
                let image = ImageState.fresh(path: "/img.qcow2", size: 16 * MiB, clusterBits: 12, refcountOrder: 4,
                                             extendedL2: config == 2, lazyRefcounts: config == 3)
                var options = ModelOptions(cache: config == 1 ? .writethrough : .writeback)
                if config == 4 { options.drive.l2CacheBytes = 8 * KiB }
                if config == 5 { options.drive.detectZeroes = true }
                var fast = Qcow2Model(image: image, options: options), steps = fast
                var size = 16 * MiB
                for _ in 0..<150 {
                    // Most requests near the start (overwrites), some anywhere and past the end.
                    let span = UInt8.random(in: 0..<5, using: &rng) > 0 ? 256 * KiB : size + 8 * KiB
                    let offset = UInt64.random(in: 0..<span, using: &rng) / 512 * 512
                    let bytes = UInt64.random(in: 1...12, using: &rng) * 512
                    switch UInt8.random(in: 0..<40, using: &rng) {
                    case 0..<30:
                        let viaShortcut: [Cause: Int]
                        if fast.overwrite(offset: offset, bytes: bytes, compressed: nil) {
                            shortcuts[config] += 1
                            viaShortcut = [:]
                        } else {
                            refused += 1
                            viaShortcut = fast.write(offset: offset, bytes: bytes)
                        }
                        XCTAssertEqual(viaShortcut, steps.write(offset: offset, bytes: bytes), "write \(offset)+\(bytes), config \(config)")
                    case 30..<36:
                        XCTAssertEqual(fast.flush(), steps.flush(), "flush, config \(config)")
                    case 36:
                        XCTAssertEqual(fast.discard(offset: offset, bytes: bytes * 16, unmap: true),
                                       steps.discard(offset: offset, bytes: bytes * 16, unmap: true))
                    case 37:
                        let aligned = offset / (4 * KiB) * (4 * KiB)
                        let unmap = Bool.random(using: &rng)
                        XCTAssertEqual(fast.writeZeroes(offset: aligned, bytes: 8 * KiB, unmap: unmap),
                                       steps.writeZeroes(offset: aligned, bytes: 8 * KiB, unmap: unmap))
                    case 38:
                        size += 4 * MiB
                        XCTAssertEqual(fast.truncate(to: size), steps.truncate(to: size))
                    default:
                        continue
                    }
                    XCTAssertFalse(fast.overwrite(offset: offset, bytes: bytes, compressed: true), "a compressed write is never an overwrite")
                }
                XCTAssertEqual(fast.close(), steps.close(), "close, config \(config)")
            }
        }
        for config in [0, 2, 3] { XCTAssertGreaterThan(shortcuts[config], 50, "config \(config): the random writes took the shortcut often") }
        for config in [1, 4, 5] { XCTAssertEqual(shortcuts[config], 0, "config \(config): never a shortcut") }
        XCTAssertGreaterThan(refused, 1000, "and often had to run the steps")
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

    /// Cache sizes as QEMU 7.2 makes them (read_cache_sizes): the default L2 cache covers a 4G
    /// disk in whole-cluster slices; 8 KiB does not, and then has two 4 KiB slices.
    func testCacheGeometry() {
        let image = ImageState.fresh(path: "/img.qcow2", size: 4 * GiB, clusterBits: 16)
        let full = DriveOptions().geometry(image)
        XCTAssertEqual(full.l2SliceBytes, 64 * KiB)
        XCTAssertEqual(full.l2Entries, 8, "512 KiB of L2 entries for 4G: 8 tables")
        XCTAssertTrue(full.l2CoversDisk)
        XCTAssertEqual(full.refcountEntries, 4)
        let small = DriveOptions(l2CacheBytes: 8192).geometry(image)
        XCTAssertEqual(small.l2SliceBytes, 4 * KiB)
        XCTAssertEqual(small.l2Entries, 2)
        XCTAssertFalse(small.l2CoversDisk)
        XCTAssertTrue(DriveOptions(l2CacheBytes: 1 << 20).geometry(image).l2CoversDisk)
        XCTAssertEqual(DriveOptions(l2CacheBytes: 64 * KiB, l2CacheEntryBytes: 16 * KiB).geometry(image).l2Entries, 4)
        // cache-size alone: the refcount cache gets its minimum (4 clusters) first when L2 cannot be whole.
        let combined = DriveOptions(cacheBytes: 320 * KiB).geometry(image)
        XCTAssertEqual(combined.refcountEntries, 4)
        XCTAssertEqual(combined.l2Entries, 16, "64 KiB left for L2, in 4 KiB slices")
        XCTAssertEqual(DriveOptions(l2CacheBytes: 1).geometry(image).l2Entries, 2, "at least two entries")

        let o = DriveOptions.detect(command: ["/x/qemu-io", "-t", "writeback", "--image-opts", "-c", "write 0 4k",
                                              "driver=qcow2,file.filename=d.qcow2,l2-cache-size=8K,detect-zeroes=unmap,discard=unmap"])
        XCTAssertEqual(o, DriveOptions(discardUnmap: true, detectZeroes: true, l2CacheBytes: 8192, untracedCacheUse: false))
        XCTAssertTrue(DriveOptions.detect(command: ["qemu-io", "-c", "read 0 4k", "-c", "write 0 4k", "a.qcow2"]).untracedCacheUse,
                      "a read looks slices up untraced")
        XCTAssertTrue(DriveOptions.detect(command: ["qemu-io", "a.qcow2"]).untracedCacheUse, "commands from stdin")
        XCTAssertTrue(DriveOptions.detect(command: ["qemu-system-x86_64", "-drive", "file=a.qcow2"]).untracedCacheUse)
        XCTAssertFalse(DriveOptions.detect(command: ["qemu-system-x86_64", "-drive", "file=a.qcow2,if=virtio"]).discardUnmap)
        XCTAssertTrue(DriveOptions.detect(command: ["qemu-io", "-f", "qcow2", "a.qcow2"]).discardUnmap, "qemu-io's default")
    }

    func smallCache(_ image: ImageState, l2: UInt64, entry: UInt64? = nil) -> Qcow2Model {
        var o = ModelOptions(cache: .writeback)
        o.drive = DriveOptions(l2CacheBytes: l2, l2CacheEntryBytes: entry, untracedCacheUse: false)
        return Qcow2Model(image: image, options: o)
    }

    /// Reference §5 "small L2 cache": two 4 KiB slices; writes at 0, 32M, 64M, 96M (one L2 table,
    /// four slices), flush = 3 + 2 evictions + 2 = 7. The new table's 16 slices pass through the
    /// cache inside l2_allocate without a sync (F4 has just flushed); the third and fourth writes
    /// each evict a dirty slice while L2 -> refcount is pending: a refcount flush each (F11).
    func testSmallL2CacheEvictions() {
        var m = smallCache(.fresh(path: "/img.qcow2", size: 4 * GiB), l2: 8 * KiB, entry: 4 * KiB)
        XCTAssertTrue(m.cacheMayEvict)
        XCTAssertEqual(m.write(offset: 0, bytes: 4 * KiB), [.l2TableAlloc: 3])
        XCTAssertEqual(m.write(offset: 32 * MiB, bytes: 4 * KiB), [:], "a clean slice is evicted")
        XCTAssertEqual(m.write(offset: 64 * MiB, bytes: 4 * KiB), [.cacheEviction: 1])
        XCTAssertEqual(m.write(offset: 96 * MiB, bytes: 4 * KiB), [.cacheEviction: 1])
        XCTAssertEqual(m.flush(), [.refcountDependency: 1, .guestFlush: 1])
        XCTAssertEqual(m.close(), [:])
    }

    /// Issue 18 case 1: the tables exist; allocating writes into three of them with an 8 KiB
    /// cache: the third evicts the first's dirty slice (F11); close writes the other two (2).
    func testSmallL2CacheOverExistingTables() {
        var image = ImageState.fresh(path: "/img.qcow2", size: 4 * GiB)
        image.l2Tables = [0, 1, 2]
        image.allocatedClusters = [.init(start: 0, end: 1), .init(start: 8192, end: 8193), .init(start: 16384, end: 16385)]
        image.hostClusters += 6
        var m = smallCache(image, l2: 8192)
        XCTAssertEqual(m.write(offset: 64 * KiB, bytes: 4 * KiB), [:])
        XCTAssertEqual(m.write(offset: 536_936_448, bytes: 4 * KiB), [:])
        XCTAssertEqual(m.write(offset: 1_073_807_360, bytes: 4 * KiB), [.cacheEviction: 1])
        XCTAssertEqual(m.close(), [.imageClose: 2])
    }

    /// Overwrites only: an evicted slice is clean, or dirty without a dependency (no sync).
    /// Cycling allocating writes through 3 slices of a 2-slice cache: after the first two,
    /// every write evicts the slice the write before last dirtied, with the dependency the
    /// previous write set: one F11 each.
    func testCyclingThroughMoreSlicesThanFit() {
        var m = smallCache(.fresh(path: "/img.qcow2", size: 4 * GiB), l2: 8 * KiB)
        XCTAssertEqual(m.write(offset: 0, bytes: 4 * KiB), [.l2TableAlloc: 3])
        var evictions = 0
        for i in 1..<12 {
            let slice = UInt64(i % 3)
            evictions += m.write(offset: slice * 32 * MiB + UInt64(i) * 64 * KiB, bytes: 4 * KiB)[.cacheEviction] ?? 0
        }
        XCTAssertEqual(evictions, 10, "every write from the third on")
        _ = m.flush()
        for i in 1..<12 {
            let slice = UInt64(i % 3)
            XCTAssertEqual(m.write(offset: slice * 32 * MiB + UInt64(i) * 64 * KiB, bytes: 4 * KiB), [:], "overwrites allocate nothing")
        }
    }

    /// What a small cache leaves unknown is unpredicted with its reason; requests over several
    /// slices and overlapping requests are timing-dependent.
    func testSmallCacheGaps() {
        let image = ImageState.fresh(path: "/img.qcow2", size: 4 * GiB)
        func op(_ i: Int, _ kind: GuestOp.Kind, _ offset: UInt64 = 0, _ bytes: UInt64 = 0, start: UInt64, end: UInt64) -> GuestOp {
            GuestOp(index: i, kind: kind, offset: offset, bytes: bytes, startNs: start, endNs: end, tid: 1, entry: "blk_co_pwritev_part",
                    children: [], probeHits: 0, image: "/img.qcow2")
        }
        var o = ModelOptions(cache: .writeback)
        o.drive = DriveOptions(l2CacheBytes: 8192, untracedCacheUse: false)
        var c = ModelComparison.run(ops: [op(0, .write, 0, 4 * KiB, start: 0, end: 10), op(1, .write, 32 * MiB - 4 * KiB, 8 * KiB, start: 20, end: 30)],
                                    images: [image], options: o)
        XCTAssertNil(c.unpredictedOps[0])
        XCTAssertEqual(c.unpredictedOps[1], .concurrentCacheUse, "two slices: parallel tasks")
        c = ModelComparison.run(ops: [op(0, .write, 0, 4 * KiB, start: 0, end: 10), op(1, .write, 64 * KiB, 4 * KiB, start: 5, end: 30)],
                                images: [image], options: o)
        XCTAssertEqual(c.unpredictedOps[1], .concurrentCacheUse, "overlapping requests")
        c = ModelComparison.run(ops: [op(0, .write, 0, 4 * KiB, start: 0, end: 10), op(1, .write, 64 * KiB, 4 * KiB, start: 700_000_000_000, end: 700_000_000_010),
                                      op(2, .flush, start: 700_000_000_020, end: 700_000_000_030)],
                                images: [image], options: o)
        XCTAssertEqual(c.unpredictedOps[1], .cacheCleanInterval)
        XCTAssertEqual(c.unpredictedOps[2], .stateUnknown)
        var attached = o
        attached.cacheStartsEmpty = false
        c = ModelComparison.run(ops: [op(0, .write, 0, 4 * KiB, start: 0, end: 10)], images: [image], options: attached)
        XCTAssertEqual(c.unpredictedOps[0], .cacheContentsUnknown)
        var vm = o
        vm.drive.untracedCacheUse = true
        c = ModelComparison.run(ops: [op(0, .write, 0, 4 * KiB, start: 0, end: 10)], images: [image], options: vm)
        XCTAssertEqual(c.unpredictedOps[0], .untracedCacheUse)
        // The default caches of a 4G image evict nothing: whatever reads or attaching.
        c = ModelComparison.run(ops: [op(0, .write, 0, 4 * KiB, start: 0, end: 10)], images: [image], options: ModelOptions(cache: .writeback))
        XCTAssertTrue(c.unpredictedOps.isEmpty)
        // The refcount cache: 4 blocks by default; a fifth makes it evict.
        var big = image
        big.refcountBlocks = [0, 1, 2, 3, 4]
        c = ModelComparison.run(ops: [op(0, .write, 0, 4 * KiB, start: 0, end: 10)], images: [big], options: ModelOptions(cache: .writeback))
        XCTAssertEqual(c.unpredictedOps[0], .refcountCacheEvicts)
    }

    /// The l2-cache-size recommendation: a cache holding the disk's slices removes the evictions.
    func testL2CacheSizeRecommendation() {
        let image = ImageState.fresh(path: "/img.qcow2", size: 4 * GiB)
        var o = ModelOptions(cache: .writeback)
        o.drive = DriveOptions(l2CacheBytes: 8192, l2CacheEntryBytes: 4096, untracedCacheUse: false)
        let candidates = Recommendation.candidates(images: [image], asRun: o)
        let l2 = candidates.first { $0.0 == .l2CacheSize }
        XCTAssertEqual(l2?.1.drive.l2CacheBytes, 512 * KiB, "8 bytes per cluster of a 4G disk")
        XCTAssertNil(Recommendation.candidates(images: [image], asRun: ModelOptions(cache: .writeback)).first { $0.0 == .l2CacheSize },
                     "the default cache already covers 4G")
        let ops = [0, 32, 64, 96].enumerated().map { i, mib in
            GuestOp(index: i, kind: .write, offset: UInt64(mib) * MiB, bytes: 4 * KiB, startNs: UInt64(i) * 10, endNs: UInt64(i) * 10 + 5,
                    tid: 1, entry: "blk_co_pwritev_part", children: [], probeHits: 0, image: "/img.qcow2")
        }
        let asRun = ModelComparison.run(ops: ops, images: [image], options: o)
        XCTAssertEqual(asRun.predictedHostSyncs, 5, "3 + 2 evictions")
        let runs = candidates.map { ($0.0, ModelComparison.run(ops: ops, images: [image], options: $0.1)) }
        let rec = Recommendation.rank(asRun: asRun, runs: runs).first { $0.knob == .l2CacheSize }
        XCTAssertEqual(rec?.prediction?.removedHostSyncs, 2)
    }

    /// Reference §5 "COW with a backing file": an overlay on a base with data in its first MiB.
    /// A partial write there copies (perform_cow sets depends_on_flush), but the L2 -> refcount
    /// dependency wins: 5, then 2 per pair (10 pairs: 23). With lazy_refcounts the first pair's F3
    /// finds the file flushed by F12 (7 with close); later pairs cost F3 + F1 (10 pairs: 25).
    /// Past the base's data the COW areas read as zero: zero-filled, no F3.
    func testBackingFileCow() {
        func overlay(lazy: Bool) -> Qcow2Model {
            var image = ImageState.fresh(path: "/o.qcow2", size: GiB, lazyRefcounts: lazy)
            image.hasBackingFile = true
            image.backingData = [.init(start: 0, end: MiB)]
            return Qcow2Model(image: image, options: ModelOptions(cache: .writeback))
        }
        var m = overlay(lazy: false)
        XCTAssertTrue(m.knowsCowSource)
        var total = 0
        for i in 0..<10 {
            total += self.total(m.write(offset: UInt64(i) * 64 * KiB, bytes: 4 * KiB)) + self.total(m.flush())
        }
        XCTAssertEqual(total + self.total(m.close()), 23)
        m = overlay(lazy: true)
        XCTAssertEqual(m.write(offset: 0, bytes: 4 * KiB), [.l2TableAlloc: 3, .lazyDirtyBit: 1])
        XCTAssertEqual(m.flush(), [.guestFlush: 1], "F3 finds the file flushed by F12")
        XCTAssertEqual(m.write(offset: 64 * KiB, bytes: 4 * KiB), [:])
        XCTAssertEqual(m.flush(), [.cowDependsOnFlush: 1, .guestFlush: 1])
        XCTAssertEqual(m.write(offset: 2 * MiB, bytes: 4 * KiB), [:])
        XCTAssertEqual(m.flush(), [.guestFlush: 1], "past the base's data: zero-filled, no COW")
        XCTAssertEqual(m.write(offset: 128 * KiB, bytes: 64 * KiB), [:])
        XCTAssertEqual(m.flush(), [.guestFlush: 1], "a whole cluster has no COW area")
        XCTAssertEqual(m.discard(offset: 192 * KiB, bytes: 64 * KiB, unmap: true), [:])
        XCTAssertEqual(m.write(offset: 192 * KiB, bytes: 4 * KiB), [:])
        XCTAssertEqual(m.flush(), [.guestFlush: 1], "a discarded cluster reads as zero over the backing file")
        XCTAssertEqual(m.close(), [.imageClose: 2])
        var unknown = ImageState.fresh(path: "/o.qcow2", size: GiB)
        unknown.hasBackingFile = true
        XCTAssertFalse(Qcow2Model(image: unknown, options: ModelOptions(cache: .writeback)).knowsCowSource)
    }
}
