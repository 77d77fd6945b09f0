import Foundation
import XCTest

/// Every request kind as an op of its own, on real qemu-io runs (issue 18): discard, write-zeroes
/// (with and without unmap, and detect-zeroes), resize, a small L2 cache, and aio=io_uring.
///
/// Each scenario is set up untraced, then the same workload runs three times on copies of the
/// same image: with the minimal probe set, with `--detail`, and under strace (for io_uring, under
/// QEMU's own `luring_co_submit` trace event, whose flush requests are the fsyncs). Checked: the
/// host syncs equal that independent count; the per-op kinds and causes are the same with both
/// probe sets; every op the model predicts is as predicted, and every other op is unpredicted
/// with a reason; nothing is unattributed. Where the flush-sites reference (§5) measured the
/// workload, the causes must be its.
final class RequestKindScenarioTests: XCTestCase {
    struct Scenario {
        var size = "1G"
        var createOptions: String?
        /// qemu-io commands run untraced first (`-f qcow2 -t writeback`), one run per list.
        var setup: [[String]] = []
        /// The traced qemu-io arguments for an image path.
        var traced: (String) -> [String]
        /// The kinds of the guest requests, in order.
        var kinds: [String]
        /// Host syncs per cause, where the reference gives them.
        var causes: [String: Int]?
        /// The reason of the first op the model cannot predict; nil when it predicts every op.
        var unpredicted: String?
        var uring = false
        var binary = Harness.qemuIO
    }

    static func qio(_ cache: String, _ commands: [String], _ image: String, extra: [String] = []) -> [String] {
        ["-f", "qcow2", "-t", cache] + extra + commands.flatMap { ["-c", $0] } + [image]
    }

    static func imageOpts(_ commands: [String], _ image: String, _ opts: String) -> [String] {
        ["-t", "writeback", "--image-opts"] + commands.flatMap { ["-c", $0] } + ["driver=qcow2,file.filename=\(image),\(opts)"]
    }

    /// QEMU's own count of io_uring fsyncs: `luring_co_submit` events of type QEMU_AIO_FLUSH (8,
    /// block/raw-aio.h), printed by the log trace backend on stderr.
    func uringFsyncCount(_ args: [String]) throws -> Int {
        let r = try Harness.run(Harness.qemuIO, ["-T", "luring_co_submit"] + args)
        XCTAssertEqual(r.status, 0, r.stderr)
        let submits = r.stderr.split(separator: "\n").filter { $0.hasPrefix("luring_co_submit ") }
        XCTAssertFalse(submits.isEmpty, "no luring_co_submit trace event: is this QEMU built with the log trace backend?")
        return submits.filter { $0.hasSuffix(" type 8") }.count
    }

    @discardableResult
    func check(_ s: Scenario, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        func prepared(_ name: String) throws -> String {
            let image = try Harness.makeImage(dir, name: name, size: s.size, options: s.createOptions)
            for commands in s.setup {
                let r = try Harness.run(Harness.qemuIO, Self.qio("writeback", commands, image))
                XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
            }
            return image
        }
        let (minimal, _) = try Harness.traceAndReport(dir, binary: s.binary, args: s.traced(try prepared("min.qcow2")))
        let (detail, _) = try Harness.traceAndReport(dir, binary: s.binary, args: s.traced(try prepared("det.qcow2")), extra: ["--detail"])
        let counted = s.traced(try prepared("counted.qcow2"))
        let independent = s.uring ? try uringFsyncCount(counted) : try Harness.straceSyncCount(binary: s.binary, args: counted, dir: dir)
        if let causes = s.causes {
            XCTAssertEqual(independent, causes.values.reduce(0, +), "the independent count disagrees with the reference", file: file, line: line)
            XCTAssertEqual(minimal["causes"] as? [String: Int], causes, file: file, line: line)
        }
        for (json, set) in [(minimal, "minimal"), (detail, "detail")] {
            XCTAssertEqual(json.int("totals.host_fdatasyncs"), independent, "\(set): host syncs", file: file, line: line)
            XCTAssertEqual(json.int("totals.unattributed_host_syncs"), 0, "\(set)", file: file, line: line)
        }
        func perOp(_ j: [String: Any]) -> [String] {
            j.array("ops").map { "\($0["kind"] ?? "?") \(($0["causes"] as? [String: Int] ?? [:]).sorted { $0.key < $1.key })" }
        }
        XCTAssertEqual(perOp(minimal), perOp(detail), "per-op causes, minimal set vs --detail", file: file, line: line)
        let requests = minimal.array("ops").compactMap { $0["kind"] as? String }
            .filter { !["image_open", "image_close", "housekeeping"].contains($0) }
        XCTAssertEqual(requests, s.kinds, "the guest requests as ops of their kinds", file: file, line: line)
        // The model: as predicted, or unpredicted with its reason; never a deviation for a known gap.
        let model = minimal.dict("model")
        XCTAssertEqual(model["deviating_ops"] as? [Int], [], file: file, line: line)
        let ops = minimal.array("ops").filter { $0["kind"] as? String != "image_open" }
        XCTAssertEqual(ops.count, s.kinds.count + 1, "the requests and the close", file: file, line: line)
        var reasons: [String] = []
        for op in ops {
            if let p = op["predicted"] as? [String: Any] {
                XCTAssertEqual(p["causes"] as? [String: Int], op["causes"] as? [String: Int], "op \(op["index"] ?? "?")", file: file, line: line)
                XCTAssertNil(op["unpredicted"], file: file, line: line)
            } else {
                reasons.append(try XCTUnwrap(op["unpredicted"] as? String, "op \(op["index"] ?? "?") has neither a prediction nor a reason", file: file, line: line))
            }
        }
        XCTAssertEqual(reasons.first, s.unpredicted, file: file, line: line)
        XCTAssertEqual(model["unpredicted_op_count"] as? Int, reasons.count, file: file, line: line)
        return minimal
    }

    let written = [["write 0 64k", "flush"]]

    // MARK: discard (issue 18 case 3, reference §5 "discard")

    /// write, flush, discard, flush = 7: the last flush writes L2 first because the refcount cache
    /// depends on it after the decrease (F15), then its own.
    func testDiscardThenFlush() throws {
        try check(Scenario(traced: { Self.qio("writeback", ["write 0 64k", "flush", "discard 0 64k", "flush"], $0) },
                           kinds: ["write", "flush", "discard", "flush"],
                           causes: ["l2_table_alloc": 3, "refcount_dependency": 1, "guest_flush": 2, "l2_dependency": 1]))
    }

    /// Without the middle flush = 6: the discard's set_dependency flushes the refcount cache (F10b).
    func testDiscardWithoutAFlushBefore() throws {
        try check(Scenario(traced: { Self.qio("writeback", ["write 0 64k", "discard 0 64k", "flush"], $0) },
                           kinds: ["write", "discard", "flush"],
                           causes: ["l2_table_alloc": 3, "dependency_cross_flush": 1, "l2_dependency": 1, "guest_flush": 1]))
    }

    /// Issue 18 case 3b: after a discard, the next allocating write flushes L2 (F10a) in link_l2.
    func testDiscardThenAllocatingWrite() throws {
        try check(Scenario(setup: written, traced: { Self.qio("writeback", ["discard 0 64k", "write 1M 64k", "flush"], $0) },
                           kinds: ["discard", "write", "flush"]))
    }

    /// Reference §5: a discard on a fresh image still allocates its L2 table (3), and frees nothing.
    func testDiscardOnAFreshImage() throws {
        try check(Scenario(traced: { Self.qio("writeback", ["discard 0 64k", "flush"], $0) },
                           kinds: ["discard", "flush"], causes: ["l2_table_alloc": 3]))
    }

    // MARK: write-zeroes (issue 18 case 4, reference §5 "write-zeroes")

    /// Case 4b: `write -z` without unmap only sets the zero flag: the flush writes L2, 1 sync.
    func testWriteZeroesWithoutUnmap() throws {
        try check(Scenario(setup: written, traced: { Self.qio("writeback", ["write -z 512k 64k", "flush"], $0) },
                           kinds: ["write_zeroes", "flush"], causes: ["guest_flush": 1]))
    }

    /// `write -z -u` frees the cluster: like a discard, +2 at the flush.
    func testWriteZeroesWithUnmap() throws {
        let json = try check(Scenario(setup: written, traced: { Self.qio("writeback", ["write -z -u 0 64k", "flush"], $0) },
                                      kinds: ["write_zeroes", "flush"], causes: ["l2_dependency": 1, "guest_flush": 1]))
        XCTAssertEqual(json.array("ops").first { $0["kind"] as? String == "write_zeroes" }?["unmap"] as? Bool, true)
    }

    /// Case 4a: detect-zeroes=unmap turns a write of zeros into an unmapping write-zeroes; the
    /// request is a write, and only its data says so: unpredicted.
    func testDetectZeroesIsUnpredicted() throws {
        try check(Scenario(setup: written,
                           traced: { Self.imageOpts(["write -P 0 0 64k", "flush"], $0, "discard=unmap,detect-zeroes=unmap") },
                           kinds: ["write", "flush"], causes: ["l2_dependency": 1, "guest_flush": 1], unpredicted: "detect_zeroes"))
    }

    // MARK: resize (issue 18 case 2)

    /// 1G -> 64G grows the L1 (F7 = 3), writes the size (1) and flushes the caches for the new
    /// options (1); the write at 60G is a new L2 table (3); the exit closes (2). strace: 10.
    func testResizeGrowsTheL1Table() throws {
        try check(Scenario(traced: { Self.qio("writeback", ["truncate 64G", "write 60G 4k"], $0) },
                           kinds: ["truncate", "write"]))
    }

    /// A resize by itself, then a flush that has nothing left to write.
    func testResizeThenFlush() throws {
        try check(Scenario(size: "512M", setup: written, traced: { Self.qio("writeback", ["truncate 768M", "flush"], $0) },
                           kinds: ["truncate", "flush"]))
    }

    // MARK: small L2 cache (issue 18 case 1, reference §5 "small L2 cache")

    /// Reference §5: 8 KiB of 4 KiB slices, writes at 0, 32M, 64M, 96M, flush: 3 + 2 evictions + 2 = 7.
    /// The model simulates the two-slice cache: predicted per op (the check compares each).
    func testSmallL2CacheEvictions() throws {
        let json = try check(Scenario(size: "4G",
                                      traced: { Self.imageOpts(["write 0 4k", "write 32M 4k", "write 64M 4k", "write 96M 4k", "flush"], $0,
                                                               "l2-cache-size=8K,l2-cache-entry-size=4K") },
                                      kinds: ["write", "write", "write", "write", "flush"],
                                      causes: ["l2_table_alloc": 3, "cache_eviction": 2, "refcount_dependency": 1, "guest_flush": 1]))
        let evictions = json.array("ops").filter { $0["kind"] as? String == "write" }.map { ($0["causes"] as? [String: Int])?["cache_eviction"] ?? 0 }
        XCTAssertEqual(evictions, [0, 0, 1, 1], "the third and fourth writes evict a dirty slice")
    }

    /// Issue 18 case 1: tables exist already; writes into three of them with an 8 KiB cache (two
    /// 4 KiB slices): the third evicts the first's dirty slice (F11); the exit writes the other two.
    func testSmallL2CacheOverExistingTables() throws {
        let json = try check(Scenario(size: "4G", setup: [["write 0 4k", "write 512M 4k", "write 1G 4k", "flush"]],
                                      traced: { Self.imageOpts(["write 64k 4k", "write 536936448 4k", "write 1073807360 4k"], $0, "l2-cache-size=8192") },
                                      kinds: ["write", "write", "write"],
                                      causes: ["cache_eviction": 1, "image_close": 2]))
        XCTAssertNil((json["causes"] as? [String: Int] ?? [:])["l2_table_alloc"], "every table exists: none is allocated")
        // The recommendation: a cache holding every slice (512 KiB for 4G) removes the eviction;
        // the same workload run with it really costs that (strace).
        let rec = json.array("recommendations").first { $0["knob"] as? String == "l2-cache-size" }
        XCTAssertEqual(rec?["setting"] as? String, "l2-cache-size=524288")
        XCTAssertEqual(rec?.int("predicted_host_fdatasyncs"), 2)
        let dir = try Harness.tempDir(self)
        let image = try Harness.makeImage(dir, name: "covered.qcow2", size: "4G")
        let r = try Harness.run(Harness.qemuIO, Self.qio("writeback", ["write 0 4k", "write 512M 4k", "write 1G 4k", "flush"], image))
        XCTAssertEqual(r.status, 0, r.stderr)
        let args = Self.imageOpts(["write 64k 4k", "write 536936448 4k", "write 1073807360 4k"], image, "l2-cache-size=524288")
        XCTAssertEqual(try Harness.straceSyncCount(binary: Harness.qemuIO, args: args, dir: dir), 2)
    }

    /// More slices than fit: 12 allocating writes cycling through three 4 KiB slices of a
    /// two-slice cache, a flush, then the same 12 as overwrites and a flush. From the third write
    /// on each evicts the slice dirtied two writes before, with the dependency pending: 3 + 10 +
    /// flush 2; the overwrites evict clean slices only: + flush 1 = 16.
    func testCyclingThroughMoreSlicesThanTheCacheHolds() throws {
        let writes = (0..<12).map { i in "write \(UInt64(i % 3) * 32 * 1_048_576 + UInt64(i) * 65536) 4k" }
        try check(Scenario(size: "4G",
                           traced: { Self.imageOpts(writes + ["flush"] + writes + ["flush"], $0, "l2-cache-size=8K") },
                           kinds: Array(repeating: "write", count: 12) + ["flush"] + Array(repeating: "write", count: 12) + ["flush"],
                           causes: ["l2_table_alloc": 3, "cache_eviction": 10, "refcount_dependency": 1, "guest_flush": 2]))
    }

    /// A read among the commands looks slices up untraced (it loads the slice at 32M, so the
    /// write at 64M evicts the first write's dirty slice: a sync the writes alone would not
    /// cause): the writes are unpredicted with that reason, not deviations. (The read shows as
    /// a housekeeping group with --detail only, so this compares the minimal set with strace.)
    func testSmallCacheWithAReadIsUnpredicted() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        func args(_ name: String) throws -> [String] {
            Self.imageOpts(["write 0 4k", "read 32M 4k", "write 64M 4k", "flush"], try Harness.makeImage(dir, name: name, size: "4G"), "l2-cache-size=8K")
        }
        let (json, _) = try Harness.traceAndReport(dir, binary: Harness.qemuIO, args: try args("min.qcow2"))
        XCTAssertEqual(json.int("totals.host_fdatasyncs"), try Harness.straceSyncCount(binary: Harness.qemuIO, args: try args("counted.qcow2"), dir: dir))
        let writes = json.array("ops").filter { $0["kind"] as? String == "write" }
        XCTAssertEqual(writes.map { $0["unpredicted"] as? String }, ["untraced_cache_use", "state_unknown_after_unmodelled_op"])
        XCTAssertEqual((writes.last?["causes"] as? [String: Int])?["cache_eviction"], 1)
        XCTAssertEqual(json.dict("model")["deviating_ops"] as? [Int], [])
    }

    // MARK: backing file, real COW (reference §5 "COW with a backing file ... + lazy_refcounts")

    /// A base image with data in its first MiB, for overlays.
    func baseWithData() throws -> String {
        let base = try Harness.makeImage(try Harness.tempDir(self), name: "base.qcow2", size: "1G")
        let r = try Harness.run(Harness.qemuIO, Self.qio("writeback", ["write -P 1 0 1M"], base))
        XCTAssertEqual(r.status, 0, r.stderr)
        return base
    }

    /// An overlay with lazy_refcounts on a base with data: 3 + F12 1 + F1 1, then the second
    /// pair's L2 write after a real COW first syncs the file (F3) + F1, and the exit 2 = 9. The
    /// collector records which guest bytes the backing chain holds, so the model knows the COW
    /// is real and predicts every op.
    func testBackingFileCowWithLazyRefcounts() throws {
        try check(Scenario(createOptions: "backing_file=\(try baseWithData()),backing_fmt=qcow2,lazy_refcounts=on",
                           traced: { Self.qio("writeback", ["write 0 4k", "flush", "write 64k 4k", "flush"], $0) },
                           kinds: ["write", "flush", "write", "flush"],
                           causes: ["l2_table_alloc": 3, "lazy_dirty_bit": 1, "guest_flush": 2, "cow_depends_on_flush": 1, "image_close": 2]))
    }

    /// Reference §5: 10 pairs of partial writes into the base's data on an overlay without lazy
    /// refcounts: each COW sets depends_on_flush but the refcount dependency wins: 3 + 10 x 2 = 23.
    func testBackingFileCowPairs() throws {
        let pairs = (0..<10).flatMap { ["write \($0 * 64)k 4k", "flush"] }
        try check(Scenario(createOptions: "backing_file=\(try baseWithData()),backing_fmt=qcow2",
                           traced: { Self.qio("writeback", pairs, $0) },
                           kinds: Array((0..<10).map { _ in ["write", "flush"] }.joined()),
                           causes: ["l2_table_alloc": 3, "refcount_dependency": 10, "guest_flush": 10]))
    }

    /// lazy_refcounts, partial writes inside and past the base's data, a whole-cluster write and a
    /// raw base: the write at 2M reads zeros from the base (zero-filled, no F3); 64k..128k is
    /// covered whole (no COW area); 4M+4k over a raw base's data copies. Every op predicted.
    func testBackingFileCowInsideAndPastTheData() throws {
        try check(Scenario(createOptions: "backing_file=\(try baseWithData()),backing_fmt=qcow2,lazy_refcounts=on",
                           traced: { Self.qio("writeback", ["write 0 4k", "flush", "write 2M 4k", "flush", "write 64k 64k", "flush",
                                                            "write 512k 4k", "flush"], $0) },
                           kinds: ["write", "flush", "write", "flush", "write", "flush", "write", "flush"],
                           causes: ["l2_table_alloc": 3, "lazy_dirty_bit": 1, "guest_flush": 4, "cow_depends_on_flush": 1, "image_close": 2]))
        let dir = try Harness.tempDir(self)
        let raw = dir.appendingPathComponent("base.raw").path
        let r = try Harness.run(Harness.qemuImg, ["create", "-f", "raw", raw, "8M"])
        XCTAssertEqual(r.status, 0, r.stderr)
        try check(Scenario(size: "16M", createOptions: "backing_file=\(raw),backing_fmt=raw,lazy_refcounts=on",
                           traced: { Self.qio("writeback", ["write 0 4k", "flush", "write 4M 4k", "flush", "write 12M 4k", "flush"], $0) },
                           kinds: ["write", "flush", "write", "flush", "write", "flush"],
                           causes: ["l2_table_alloc": 3, "lazy_dirty_bit": 1, "guest_flush": 3, "cow_depends_on_flush": 1, "image_close": 2]))
    }

    // MARK: compressed writes

    /// `write -c` (qcow2_co_pwritev_compressed): a compressed write is an op marked compressed;
    /// how its data compresses decides how qcow2_alloc_bytes places it, so it is unpredicted with
    /// its own reason (and the ops after it on the image, whose state is then unknown).
    func testCompressedWriteIsUnpredicted() throws {
        let json = try check(Scenario(traced: { Self.qio("writeback", ["write -c 0 64k", "flush", "write -c 64k 64k", "flush"], $0) },
                                      kinds: ["write", "flush", "write", "flush"], unpredicted: "compressed_write"))
        let writes = json.array("ops").filter { $0["kind"] as? String == "write" }
        XCTAssertEqual(writes.map { $0["compressed"] as? Bool }, [true, true])
    }

    // MARK: QEMU 10.0 (blk_co_pdiscard has a flags parameter there)

    /// The discard, write-zeroes and resize kinds on QEMU 10.0's qemu-io, with 7.2's reference counts.
    func testRequestKindsOnQemu10() throws {
        try Harness.require(Harness.qemuIO10, "QEMU 10.0's qemu-io")
        try check(Scenario(traced: { Self.qio("writeback", ["write 0 64k", "discard 0 64k", "flush"], $0) },
                           kinds: ["write", "discard", "flush"],
                           causes: ["l2_table_alloc": 3, "dependency_cross_flush": 1, "l2_dependency": 1, "guest_flush": 1],
                           binary: Harness.qemuIO10))
        try check(Scenario(setup: written, traced: { Self.qio("writeback", ["write -z -u 0 64k", "flush"], $0) },
                           kinds: ["write_zeroes", "flush"], causes: ["l2_dependency": 1, "guest_flush": 1], binary: Harness.qemuIO10))
        try check(Scenario(traced: { Self.qio("writeback", ["truncate 64G", "write 60G 4k"], $0) },
                           kinds: ["truncate", "write"], binary: Harness.qemuIO10))
    }

    // MARK: io_uring (issue 18 case 6)

    /// aio=io_uring: the same causes as the thread pool (reference (a) = 5), and the syncs name the image.
    func testIoUringSyncsHaveTheirImage() throws {
        let json = try check(Scenario(traced: { Self.qio("none", ["write 0 64k", "flush"], $0, extra: ["-i", "io_uring"]) },
                                      kinds: ["write", "flush"],
                                      causes: ["l2_table_alloc": 3, "refcount_dependency": 1, "guest_flush": 1], uring: true))
        let images = json.array("images")
        XCTAssertEqual(images.count, 1)
        XCTAssertTrue((images.first?["path"] as? String ?? "").hasSuffix("/min.qcow2"), "\(images)")
        XCTAssertEqual(images.first.flatMap { ($0["host_fdatasyncs"] as? NSNumber)?.intValue }, 5)
    }
}

/// Issue 18 case 8: a vmdk image's syncs are named for vmdk's own metadata, never with qcow2's
/// causes, and the qcow2 model leaves its ops unpredicted with that reason.
///
/// Expected from block/vmdk.c (QEMU 7.2): each write to a new grain ends in vmdk_L2update, which
/// writes the grain table entry and its redundant copy and flushes the file (1 sync); the first
/// write after open also rewrites the descriptor's CID with bdrv_pwrite_sync (1 sync). Guest
/// flushes then find the file clean.
final class VmdkScenarioTests: XCTestCase {
    func check(cache: String, commands: [String], causes: [String: Int], file: StaticString = #filePath, line: UInt = #line) throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        func image(_ name: String) throws -> [String] {
            let path = dir.appendingPathComponent(name).path
            let r = try Harness.run(Harness.qemuImg, ["create", "-f", "vmdk", path, "1G"])
            XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
            return ["-f", "vmdk", "-t", cache] + commands.flatMap { ["-c", $0] } + [path]
        }
        let (minimal, _) = try Harness.traceAndReport(dir, binary: Harness.qemuIO, args: try image("min.vmdk"))
        let (detail, _) = try Harness.traceAndReport(dir, binary: Harness.qemuIO, args: try image("det.vmdk"), extra: ["--detail"])
        let strace = try Harness.straceSyncCount(binary: Harness.qemuIO, args: try image("counted.vmdk"), dir: dir)
        XCTAssertEqual(strace, causes.values.reduce(0, +), "strace disagrees with vmdk.c's sync sites", file: file, line: line)
        for json in [minimal, detail] {
            XCTAssertEqual(json.int("totals.host_fdatasyncs"), strace, file: file, line: line)
            XCTAssertEqual(json.int("totals.unattributed_host_syncs"), 0, file: file, line: line)
            XCTAssertEqual(json["causes"] as? [String: Int], causes, file: file, line: line)
        }
        func perOp(_ j: [String: Any]) -> [String] {
            j.array("ops").map { "\($0["kind"] ?? "?") \(($0["causes"] as? [String: Int] ?? [:]).sorted { $0.key < $1.key })" }
        }
        XCTAssertEqual(perOp(minimal), perOp(detail), "per-op causes, minimal set vs --detail", file: file, line: line)
        let requests = minimal.array("ops").filter { ["write", "flush"].contains($0["kind"] as? String ?? "") }
        XCTAssertEqual(requests.count, commands.count, file: file, line: line)
        for op in requests {
            XCTAssertNil(op["predicted"], file: file, line: line)
            XCTAssertEqual(op["unpredicted"] as? String, "format_not_qcow2", "op \(op["index"] ?? "?")", file: file, line: line)
        }
        XCTAssertEqual(minimal.dict("verdict")["model"] as? String, "unpredicted", file: file, line: line)
    }

    /// The issue's case: two allocating writes, each followed by a flush: 2 grain tables + 1 descriptor = 3.
    func testGrainTableAndDescriptorSyncs() throws {
        try check(cache: "writeback", commands: ["write 0 4k", "flush", "write 64k 4k", "flush"],
                  causes: ["vmdk_grain_table": 2, "vmdk_descriptor": 1])
    }

    /// Write-through: the overwrite of an allocated grain costs only the FUA emulation's flush (F14);
    /// after an allocating write the file is already clean.
    func testWritethroughOverwrite() throws {
        try check(cache: "writethrough", commands: ["write 0 4k", "write 0 4k", "write 1M 64k"],
                  causes: ["vmdk_grain_table": 2, "vmdk_descriptor": 1, "writethrough": 1])
    }
}

/// Issue 18 case 5: qemu-img's own work is named for what it is. Creating the target image
/// (`qcow2_co_create`: its header writes and the resize to the disk size, which grows the L1,
/// F7) is one `image_create` op, not guest writes and a close; the target had no state at the
/// start, so the model predicts none of its ops and says so, rather than guess from the source.
final class QemuImgScenarioTests: XCTestCase {
    func trace(_ args: [String], in dir: URL, detail: Bool) throws -> [String: Any] {
        try Harness.traceAndReport(dir, binary: Harness.qemuImg, args: args, extra: detail ? ["--detail"] : []).json
    }

    func check(_ args: (URL, String) -> [String], setup: (URL) throws -> Void, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        try setup(dir)
        let minimal = try trace(args(dir, "min.qcow2"), in: dir, detail: false)
        let detail = try trace(args(dir, "det.qcow2"), in: dir, detail: true)
        let strace = try Harness.straceSyncCount(binary: Harness.qemuImg, args: args(dir, "counted.qcow2"), dir: dir)
        for json in [minimal, detail] {
            XCTAssertEqual(json.int("totals.host_fdatasyncs"), strace, file: file, line: line)
            XCTAssertEqual(json.int("totals.unattributed_host_syncs"), 0, file: file, line: line)
        }
        func perOp(_ j: [String: Any]) -> [String] {
            j.array("ops").map { "\($0["kind"] ?? "?") \(($0["causes"] as? [String: Int] ?? [:]).sorted { $0.key < $1.key })" }
        }
        XCTAssertEqual(perOp(minimal), perOp(detail), "per-op causes, minimal set vs --detail", file: file, line: line)
        let ops = minimal.array("ops")
        let creates = ops.filter { $0["kind"] as? String == "image_create" }
        XCTAssertEqual(creates.count, 1, "one image creation", file: file, line: line)
        XCTAssertTrue(ops.allSatisfy { $0["kind"] as? String != "truncate" }, "the creation's resize is not a request", file: file, line: line)
        let target = ops.filter { ($0["image"] as? String ?? "").hasSuffix("/min.qcow2") && $0["kind"] as? String != "image_create" }
        for op in target {
            XCTAssertNil(op["predicted"], file: file, line: line)
            XCTAssertEqual(op["unpredicted"] as? String, "no_image_state", file: file, line: line)
        }
        XCTAssertEqual(minimal.dict("model")["deviating_ops"] as? [Int] ?? [], [], file: file, line: line)
        return minimal
    }

    /// The issue's case: a 64M source with 1M of data converted to a new qcow2.
    func testConvertCreatesTheTargetAndCopies() throws {
        let json = try check({ dir, name in
            ["convert", "-t", "writeback", "-f", "qcow2", "-O", "qcow2", dir.appendingPathComponent("src.qcow2").path,
             dir.appendingPathComponent(name).path]
        }, setup: { dir in
            let src = try Harness.makeImage(dir, name: "src.qcow2", size: "64M")
            let r = try Harness.run(Harness.qemuIO, ["-f", "qcow2", "-t", "writeback", "-c", "write 0 1M", src])
            XCTAssertEqual(r.status, 0, r.stderr)
        })
        let writes = json.array("ops").filter { $0["kind"] as? String == "write" }
        XCTAssertEqual(writes.count, 1, "the copy of the 1M of data, after the creation")
        XCTAssertEqual(writes.first?["origin"] as? String, "qemu-img convert", "convert's copy, not a guest's write")
    }

    /// qemu-img create alone: everything it syncs is the creation.
    func testCreateIsOneOp() throws {
        let json = try check({ dir, name in ["create", "-f", "qcow2", dir.appendingPathComponent(name).path, "64M"] }, setup: { _ in })
        XCTAssertEqual(json.array("ops").filter { ($0["kind"] as? String).map { ["write", "flush", "truncate"].contains($0) } ?? false }.count, 0)
        XCTAssertEqual((json["causes"] as? [String: Int] ?? [:]).keys.sorted().filter { $0 != "image_close" && $0 != "image_open" }, ["image_create"])
    }
}
