import Foundation
import XCTest

/// The collector on the kernels users run: Debian's 5.10 (bullseye), 6.1 (bookworm) and
/// 6.12 (trixie), each booted under TCG by scripts/guest/run-kernel.sh with the
/// statically linked collector, the testbed's qemu-io and strace in its initramfs.
///
/// In each guest (scripts/guest/kernel-init.sh) the fresh-image scenario (`write 0 4k`,
/// `flush`) and 10 allocating write+flush pairs are traced with `--kernel-probe kprobe`
/// and `tracepoint`, first with ext4 not loaded (images on tmpfs), then with ext4 loaded
/// (images on an ext4 disk), and run once more under strace. The oracles are independent
/// of syncamp: strace's count in the same guest, the counts of the flush-sites reference
/// (../shared/reference/qcow2-flush-sites.md §5, cases (a) and (d)), the disk's own flush
/// counter (field 16 of /sys/block/vda/stat) and the journal's own transaction count
/// (/proc/fs/jbd2/vda-8/info), read before and after each run.
final class KernelGuestTests: XCTestCase {
    static var kernels: URL { Harness.repo.appendingPathComponent(".testbed/kernels") }
    /// The statically linked collector the guests run: scripts/test.sh builds it from the same
    /// sources right before the tests (`swift build -c release --static-swift-stdlib --product collector`).
    static var collector: URL { Harness.repo.appendingPathComponent(".build/release/collector") }

    /// Host syncs by cause, per op, as the reference gives them: the first write allocates
    /// an L2 table (F4-F6), every flush after an allocation costs F2 + F1.
    static let fresh = Scenario(name: "fresh", strace: 5, opCauses: [
        ["l2_table_alloc": 3], ["refcount_dependency": 1, "guest_flush": 1]])
    static let pairs = Scenario(name: "pairs", strace: 23, opCauses:
        [["l2_table_alloc": 3], ["refcount_dependency": 1, "guest_flush": 1]]
        + Array(repeating: [[:], ["refcount_dependency": 1, "guest_flush": 1]], count: 9).flatMap { $0 })

    struct Scenario {
        var name: String
        var strace: Int
        var opCauses: [[String: Int]]
    }

    func testDebian12Kernel61() throws { try checkTracing(suite: "bookworm", release: "6.1.", uringEvent: "io_uring_submit_sqe") }

    func testDebian13Kernel612() throws { try checkTracing(suite: "trixie", release: "6.12.", uringEvent: "io_uring_submit_req") }

    /// 5.10 has no BPF attach cookies: the collector stops with one sentence that names the
    /// feature and the version that has it, never "the kernel refused the BPF programs".
    func testDebian11Kernel510StopsNamingTheFeature() throws {
        let out = try boot("bullseye")
        XCTAssertTrue(try String(contentsOf: out.appendingPathComponent("release"), encoding: .utf8).hasPrefix("5.10."))
        let logs = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix("-kprobe.log") || $0.hasSuffix("-tracepoint.log") }
        XCTAssertEqual(logs.count, 8, "8 collector runs (2 scenarios x 2 modes x 2 file systems)")
        for log in logs {
            let status = try text(out, log.replacingOccurrences(of: ".log", with: ".status"))
            let stderr = try text(out, log)
            XCTAssertEqual(status, "1", log)
            XCTAssertTrue(stderr.contains("bpf_get_attach_cookie") && stderr.contains("Linux 5.15"), "\(log): \(stderr)")
            XCTAssertFalse(stderr.contains("refused"), stderr)
            XCTAssertEqual(stderr.split(separator: "\n").filter { $0.hasPrefix("collector: error:") }.count, 1, stderr)
        }
    }

    private func checkTracing(suite: String, release: String, uringEvent: String) throws {
        let out = try boot(suite)
        XCTAssertTrue(try text(out, "release").hasPrefix(release))
        let dir = try Harness.tempDir(self)
        for fs in ["tmpfs", "ext4"] {
            for scenario in [Self.fresh, Self.pairs] {
                XCTAssertEqual(try text(out, "\(fs)-\(scenario.name).strace.status"), "0", "strace failed in the guest")
                let straced = try text(out, "\(fs)-\(scenario.name).strace").split(separator: "\n")
                    .filter { ($0.contains("fdatasync(") || $0.contains("fsync(")) && !$0.contains("resumed>") }.count
                XCTAssertEqual(straced, scenario.strace, "\(suite) \(fs) \(scenario.name): strace's count in the guest")
                for mode in ["kprobe", "tracepoint"] {
                    let name = "\(fs)-\(scenario.name)-\(mode)"
                    XCTAssertEqual(try text(out, "\(name).status"), "0", (try? text(out, "\(name).log")) ?? "")
                    let r = try Harness.report(out.appendingPathComponent("\(name).syncamp").path)
                    XCTAssertEqual(r["kernel_probe"] as? String, mode, name)
                    XCTAssertEqual(r.int("totals.host_fdatasyncs"), straced, "\(suite) \(name): host syncs = strace's")
                    XCTAssertEqual(r.int("totals.unattributed_host_syncs"), 0, name)
                    let ops = r.array("ops").filter { $0["kind"] as? String == "write" || $0["kind"] as? String == "flush" }
                    XCTAssertEqual(ops.count, scenario.opCauses.count, name)
                    for (op, expected) in zip(ops, scenario.opCauses) {
                        XCTAssertEqual(op["causes"] as? [String: Int], expected, "\(suite) \(name) op \(op["index"] ?? "?")")
                    }
                    try checkLevels(r, fs: fs, name: "\(suite) \(name)", uringEvent: uringEvent)
                    if fs == "ext4" { try checkStorage(r, out: out, name: name, dir: dir) }
                }
            }
            // aio=io_uring: the host syncs are io_uring fsyncs, each paired with its completion.
            let name = "\(fs)-uring"
            XCTAssertEqual(try text(out, "\(name).status"), "0", (try? text(out, "\(name).log")) ?? "")
            let r = try Harness.report(out.appendingPathComponent("\(name).syncamp").path)
            XCTAssertEqual(r.int("totals.host_fdatasyncs"), Self.fresh.strace, "\(suite) \(name)")
            XCTAssertEqual(r["causes"] as? [String: Int], ["l2_table_alloc": 3, "refcount_dependency": 1, "guest_flush": 1], name)
            let syncs = r.array("ops").flatMap { hostSyncs($0["children"] as? [[String: Any]] ?? []) }
            XCTAssertEqual(syncs.count, 5, name)
            XCTAssertTrue(syncs.allSatisfy { $0["symbol"] as? String == "io_uring_fsync" && $0["latency_ns"] is NSNumber },
                          "\(name): every io_uring fsync is paired with its completion")
            try checkLevels(r, fs: fs, name: "\(suite) \(name)", uringEvent: uringEvent)
        }
        // The io_uring submit event this kernel has, and the variant the collector attached.
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("formats/ext4-io_uring_\(uringEvent)").path))
    }

    /// ext4 not loaded: its levels are off with the reason and the totals say what they miss;
    /// loaded: every level is traced. io_uring through the variant this kernel has.
    private func checkLevels(_ r: [String: Any], fs: String, name: String, uringEvent: String) throws {
        let kernel = r.dict("kernel")
        let levels = Dictionary(uniqueKeysWithValues: kernel.array("levels").map { ($0["name"] as? String ?? "?", $0) })
        XCTAssertEqual(Set(levels.keys), ["sync_syscalls", "fs_sync", "journal", "device", "io_uring"], name)
        let off = fs == "tmpfs" ? ["fs_sync", "journal"] : []
        for (level, l) in levels {
            XCTAssertEqual(l["traced"] as? Bool, !off.contains(level), "\(name) \(level): \(l)")
        }
        XCTAssertEqual(kernel["not_counted"] as? [String], off, name)
        if fs == "tmpfs" {
            XCTAssertTrue((levels["fs_sync"]?["reason"] as? String ?? "").contains("ext4"), name)
            XCTAssertTrue((levels["journal"]?["reason"] as? String ?? "").contains("jbd2"), name)
        }
        XCTAssertTrue((levels["io_uring"]?["hooks"] as? [String] ?? []).contains("io_uring:\(uringEvent)"), name)
    }

    /// Device flushes and journal commits = the disk's and the journal's own counts of the same run.
    private func checkStorage(_ r: [String: Any], out: URL, name: String, dir: URL) throws {
        func delta(_ what: String) throws -> Int {
            let before = try XCTUnwrap(Int(try text(out, "\(name).before.\(what)")), "\(name) \(what)")
            let after = try XCTUnwrap(Int(try text(out, "\(name).after.\(what)")), "\(name) \(what)")
            return after - before
        }
        let flushes = try delta("flushes"), commits = try delta("commits")
        XCTAssertGreaterThan(flushes, 0, "\(name): the disk counted no flush")
        XCTAssertGreaterThan(commits, 0, "\(name): the journal committed nothing")
        XCTAssertEqual((r.int("totals.device_flushes") ?? -1) + (r.int("totals.unlinked_device_flushes") ?? -1), flushes,
                       "\(name): device flushes = /sys/block/vda/stat's flush count")
        XCTAssertEqual((r.int("totals.journal_commits") ?? -1) + (r.int("totals.unlinked_journal_commits") ?? -1), commits,
                       "\(name): journal commits = jbd2's transaction count")
    }

    private func hostSyncs(_ nodes: [[String: Any]]) -> [[String: Any]] {
        nodes.flatMap { n in (n["kind"] as? String == "host_sync" ? [n] : []) + hostSyncs(n["children"] as? [[String: Any]] ?? []) }
    }

    private func text(_ dir: URL, _ name: String) throws -> String {
        try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Boots the suite's kernel and returns the folder with what the guest wrote.
    private func boot(_ suite: String) throws -> URL {
        let kernel = Self.kernels.appendingPathComponent(suite)
        var missing: [String] = []
        if !FileManager.default.fileExists(atPath: kernel.appendingPathComponent("vmlinuz").path) {
            missing.append("Debian's \(suite) kernel in \(kernel.path) (run scripts/testbed.sh)")
        }
        if !FileManager.default.isExecutableFile(atPath: TestVM.qemu) { missing.append("the testbed's qemu-system-x86_64") }
        if !FileManager.default.isExecutableFile(atPath: Self.collector.path) {
            missing.append("the static collector (swift build -c release --static-swift-stdlib --product collector)")
        }
        if !missing.isEmpty { throw Harness.unavailable("the kernel guest tests need " + missing.joined(separator: " and ")) }
        let out = try Harness.tempDir(self).appendingPathComponent(suite)
        let r = try Harness.run("/bin/bash", [Harness.repo.appendingPathComponent("scripts/guest/run-kernel.sh").path,
                                              kernel.path, out.path, Self.collector.path])
        XCTAssertEqual(r.status, 0, "the \(suite) guest failed: \(r.stderr)\n" + ((try? text(out, "console.log")) ?? ""))
        return out
    }
}
