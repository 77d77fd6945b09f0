@testable import SyncampAnalysis
import SyncampCapture
import XCTest

/// Per-image totals (`ImageTally`): an op counts for the files its host syncs went to, and an op
/// without syncs for the files its BlockBackend synced last. Ops whose syncs all went to one fd
/// take a path of their own (`addSyncedOne`); these cases check both paths give what the images saw.
final class ImageTallyTests: XCTestCase {
    let diskA: UInt64 = 0xa000, diskB: UInt64 = 0xb000

    private func op(_ index: Int, _ kind: GuestOp.Kind, backend: UInt64, syncs: [(fd: UInt32?, cause: Cause)] = []) -> GuestOp {
        var o = GuestOp(index: index, kind: kind, offset: 0, bytes: 4096, startNs: 0, endNs: 0, tid: 1, entry: "blk_co_flush",
                        children: [], probeHits: 1)
        o.backend = backend
        o.children = syncs.map { s in
            var d = NodeDetails()
            d.fd = s.fd
            return CausalNode(kind: .hostSync, timeNs: 0, tid: 2, symbol: "fdatasync", details: d, latencyNs: 1000, cause: s.cause)
        }
        return o
    }

    /// Adds `o` and returns the image it was given.
    @discardableResult
    private func add(_ o: GuestOp, to tally: inout ImageTally) -> String? {
        var o = o
        tally.add(&o, OpSummary(o))
        return o.image
    }

    /// What an image counted.
    private struct Counts: Equatable {
        var writes = 0, flushes = 0, syncs = 0
        var causes: [Cause: Int] = [:]
    }

    private func totals(_ tally: ImageTally) -> [String: Counts] {
        Dictionary(uniqueKeysWithValues: tally.images.map {
            ($0.path, Counts(writes: $0.guestWrites, flushes: $0.guestFlushes, syncs: $0.hostSyncs, causes: $0.causes))
        })
    }

    /// A tally that knows the file behind each fd.
    private func tally(_ files: [UInt32: String]) -> ImageTally {
        var t = ImageTally()
        for (fd, path) in files.sorted(by: { $0.key < $1.key }) { t.fdPath(FDPath(timestampNs: 0, fd: fd, path: path)) }
        return t
    }

    func testOneFileOpsNameTheirImageAndTheBackendsLaterOverwrites() {
        var tally = tally([7: "/srv/a.qcow2"])
        // An overwrite before its disk synced: it waits for the disk's image.
        XCTAssertNil(add(op(0, .write, backend: diskA), to: &tally))
        XCTAssertEqual(add(op(1, .flush, backend: diskA, syncs: [(7, .l2Dependency), (7, .guestFlush)]), to: &tally), "/srv/a.qcow2")
        XCTAssertEqual(add(op(2, .write, backend: diskA), to: &tally), "/srv/a.qcow2")
        XCTAssertEqual(add(op(3, .flush, backend: diskA, syncs: [(7, .guestFlush)]), to: &tally), "/srv/a.qcow2")
        XCTAssertEqual(totals(tally), ["/srv/a.qcow2": Counts(writes: 2, flushes: 2, syncs: 3, causes: [.l2Dependency: 1, .guestFlush: 2])])
    }

    func testAFlushOfTwoFilesCountsForBothAndItsDiskKeepsBoth() {
        var tally = tally([7: "/srv/a.qcow2", 8: "/srv/b.qcow2"])
        // A quorum flush: the fd with most syncs names the op's image.
        XCTAssertEqual(add(op(0, .flush, backend: diskA, syncs: [(8, .guestFlush), (7, .l2Dependency), (7, .guestFlush)]), to: &tally),
                       "/srv/a.qcow2")
        add(op(1, .write, backend: diskA), to: &tally)
        XCTAssertEqual(totals(tally), ["/srv/a.qcow2": Counts(writes: 1, flushes: 1, syncs: 2, causes: [.l2Dependency: 1, .guestFlush: 1]),
                                       "/srv/b.qcow2": Counts(writes: 1, flushes: 1, syncs: 1, causes: [.guestFlush: 1])])
    }

    func testTwoFdsOfOneFileAndASyncWithoutFd() {
        var tally = tally([7: "/srv/a.qcow2", 9: "/srv/a.qcow2"])
        XCTAssertEqual(add(op(0, .flush, backend: diskA, syncs: [(7, .guestFlush), (9, .guestFlush)]), to: &tally), "/srv/a.qcow2")
        // A sync with no fd (an io_uring fsync whose file node was not read) counts for no image.
        add(op(1, .flush, backend: diskA, syncs: [(nil, .guestFlush), (7, .l2Dependency)]), to: &tally)
        XCTAssertEqual(totals(tally), ["/srv/a.qcow2": Counts(flushes: 2, syncs: 3, causes: [.guestFlush: 2, .l2Dependency: 1])])
    }

    /// A disk whose syncs move to another file (a block job pivoted it) counts its later
    /// overwrites for the new file; another disk in between does not mix them up.
    func testADiskThatMovesToAnotherFile() {
        var tally = tally([7: "/srv/a.qcow2", 8: "/srv/b.qcow2"])
        add(op(0, .flush, backend: diskA, syncs: [(7, .guestFlush)]), to: &tally)
        add(op(1, .flush, backend: diskB, syncs: [(8, .guestFlush)]), to: &tally)
        XCTAssertEqual(add(op(2, .write, backend: diskA), to: &tally), "/srv/a.qcow2")
        add(op(3, .flush, backend: diskA, syncs: [(8, .guestFlush)]), to: &tally)
        XCTAssertEqual(add(op(4, .write, backend: diskA), to: &tally), "/srv/b.qcow2")
        XCTAssertEqual(add(op(5, .write, backend: diskB), to: &tally), "/srv/b.qcow2")
        // An fd the collector never named is its own image until it is named.
        XCTAssertEqual(add(op(6, .flush, backend: 0, syncs: [(11, .guestFlush)]), to: &tally), "fd 11")
        XCTAssertEqual(totals(tally), ["/srv/a.qcow2": Counts(writes: 1, flushes: 1, syncs: 1, causes: [.guestFlush: 1]),
                                       "/srv/b.qcow2": Counts(writes: 2, flushes: 2, syncs: 2, causes: [.guestFlush: 2]),
                                       "fd 11": Counts(flushes: 1, syncs: 1, causes: [.guestFlush: 1])])
        XCTAssertEqual(tally.images.map(\.path), ["/srv/a.qcow2", "/srv/b.qcow2", "fd 11"])
    }
}
