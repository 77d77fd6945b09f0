import Foundation
import SyncampCapture
import XCTest

/// The collector under faults: signals, SIGKILL, a full disk, a flood, no root, two collectors at once.
final class FaultTests: XCTestCase {
    func attach(_ target: IdleTarget, _ capture: String, extra: [String] = []) throws -> Background {
        let c = try Background(Harness.collector, ["-p", String(target.pid), "-o", capture] + extra)
        XCTAssertTrue(c.waitFor("fdatasync/fsync traced"), c.stderr)
        return c
    }

    /// BPF programs and links, by id.
    struct BPFObjects {
        var programs: Set<Int> = []
        var links: Set<Int> = []
    }

    /// The programs and links a process holds, from its fds' fdinfo (the kernel's own record).
    func heldBPF(by pid: Int32) -> BPFObjects {
        var held = BPFObjects()
        let fdinfo = "/proc/\(pid)/fdinfo"
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: fdinfo)) ?? [] {
            for line in ((try? String(contentsOfFile: "\(fdinfo)/\(fd)", encoding: .utf8)) ?? "").split(separator: "\n") {
                let kv = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2, let id = Int(kv[1]) else { continue }
                if kv[0] == "prog_id" { held.programs.insert(id) }
                if kv[0] == "link_id" { held.links.insert(id) }
            }
        }
        return held
    }

    /// The programs and links loaded now, as bpftool lists them; a bpftool that fails fails the test.
    func loadedBPF(file: StaticString = #filePath, line: UInt = #line) throws -> BPFObjects {
        func ids(_ kind: String) throws -> Set<Int> {
            let r = try Harness.run("/usr/sbin/bpftool", ["--json", kind, "show"])
            XCTAssertEqual(r.status, 0, "bpftool \(kind) show failed: \(r.stderr)", file: file, line: line)
            let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]],
                                     "bpftool \(kind) show: \(r.stdout.prefix(200))", file: file, line: line)
            return Set(list.compactMap { $0["id"] as? Int })
        }
        return BPFObjects(programs: try ids("prog"), links: try ids("link"))
    }

    /// Asserts that `pid` holds BPF programs and links and that bpftool lists them as loaded; returns them.
    func assertTracing(_ pid: Int32, file: StaticString = #filePath, line: UInt = #line) throws -> BPFObjects {
        let held = heldBPF(by: pid)
        XCTAssertFalse(held.programs.isEmpty, "the collector holds no BPF program", file: file, line: line)
        XCTAssertFalse(held.links.isEmpty, "the collector holds no BPF link (no probe attached)", file: file, line: line)
        let loaded = try loadedBPF(file: file, line: line)
        XCTAssertTrue(held.programs.isSubset(of: loaded.programs), "bpftool does not list the programs", file: file, line: line)
        XCTAssertTrue(held.links.isSubset(of: loaded.links), "bpftool does not list the links", file: file, line: line)
        return held
    }

    /// Asserts that none of `held` is loaded any more (waiting up to 10 s for the kernel to free them).
    func assertGone(_ held: BPFObjects, _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
        var left = try loadedBPF(file: file, line: line)
        let deadline = Date().addingTimeInterval(10)
        while (!left.programs.isDisjoint(with: held.programs) || !left.links.isDisjoint(with: held.links)) && Date() < deadline {
            usleep(100_000)
            left = try loadedBPF(file: file, line: line)
        }
        XCTAssertEqual(left.programs.intersection(held.programs), [], "programs: " + message, file: file, line: line)
        XCTAssertEqual(left.links.intersection(held.links), [], "links: " + message, file: file, line: line)
    }

    /// The pids of a process's children (every thread's).
    func children(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { t in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(t)/children", encoding: .utf8)) ?? "")
                .split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    /// SIGKILL of `analyzer live`: the collector it started sees its parent gone, detaches and
    /// finishes the capture, so no probe outlives the analyzer; the target goes on.
    func testKillingLiveStopsTheCollectorItStarted() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let target = try idleQemuIO(dir)
        let capture = dir.appendingPathComponent("live.syncamp").path
        let live = Process()
        live.executableURL = URL(fileURLWithPath: Harness.analyzer)
        live.arguments = ["live", "-p", String(target.pid), "--capture", capture, "--interval", "0.2"]
        live.standardOutput = FileHandle.nullDevice
        live.standardError = FileHandle.nullDevice
        try live.run()
        var collector: Int32?
        let deadline = Date().addingTimeInterval(30)
        while collector == nil && Date() < deadline {
            // Tracing: the capture has its manifest, written once every probe is attached.
            if (try? CaptureReader(path: capture)) != nil { collector = children(of: live.processIdentifier).first }
            if collector == nil { usleep(100_000) }
        }
        let held = try assertTracing(try XCTUnwrap(collector, "live never started tracing"))
        kill(live.processIdentifier, SIGKILL)
        live.waitUntilExit()
        try assertGone(held, "the collector outlived the analyzer that started it")
        var reader = try CaptureReader(path: capture)
        while reader.next() != nil {}
        XCTAssertEqual(reader.trailer?.reason, "parent-exited")
        XCTAssertEqual(kill(target.pid, 0), 0, "the target keeps running")
        target.release()
    }

    /// SIGTERM: clean detach, trailer written, exit 0; the target goes on and finishes its work.
    func testSigtermDetachesCleanly() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let target = try idleQemuIO(dir)
        let capture = dir.appendingPathComponent("term.syncamp").path
        let c = try attach(target, capture)
        let held = try assertTracing(c.process.processIdentifier)
        kill(c.process.processIdentifier, SIGTERM)
        XCTAssertEqual(c.interrupt(), 0, c.stderr)
        XCTAssertEqual(kill(target.pid, 0), 0, "the target keeps running")
        let json = try Harness.report(capture)
        XCTAssertEqual(json.dict("capture")["end_reason"] as? String, "signal")
        XCTAssertEqual(json.dict("capture")["cut_short"] as? Bool, false)
        try assertGone(held, "nothing stays loaded after a clean detach")
        target.release()
        target.shell.waitUntilExit()
        XCTAssertEqual(target.shell.terminationStatus, 0, "the target finished its work unharmed")
    }

    /// SIGKILL of the collector: the kernel drops every probe with its fds; the target runs on; the cut capture reads.
    func testSigkillLeavesNoProbesAndTheCaptureReads() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let target = try idleQemuIO(dir, commands: (0..<40).flatMap { ["write \($0 * 64)k 4k", "flush"] })
        let capture = dir.appendingPathComponent("kill.syncamp").path
        let c = try attach(target, capture)
        // libbpf attaches uprobes through perf events, not tracefs (uprobe_events stays empty either way):
        // the links are what holds them, so the links are what must go.
        let held = try assertTracing(c.process.processIdentifier)
        kill(c.process.processIdentifier, SIGKILL)
        c.process.waitUntilExit()
        target.release()
        try assertGone(held, "nothing outlives the collector")
        target.shell.waitUntilExit()
        XCTAssertEqual(target.shell.terminationStatus, 0, "the target finished unharmed")
        let r = try Harness.run(Harness.analyzer, ["report", capture, "--format", "json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json.dict("capture")["cut_short"] as? Bool, true)
        XCTAssertTrue(r.stderr.contains("cut short"), r.stderr)
    }

    /// A full output disk: one clear error, exit 1; what was written reads.
    func testOutputDiskFull() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let small = dir.appendingPathComponent("small").path
        try FileManager.default.createDirectory(atPath: small, withIntermediateDirectories: true)
        XCTAssertEqual(try Harness.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", small]).status, 0)
        addTeardownBlock { _ = try? Harness.run("/bin/umount", [small]) }
        let image = try Harness.makeImage(dir)
        let capture = small + "/full.syncamp"
        let commands = (0..<200).flatMap { ["write \($0 * 64)k 4k", "flush"] }
        let r = try Harness.run(Harness.collector, ["-o", capture, "--", Harness.qemuIO]
                                + Harness.qemuIOArgs(cache: "writeback", commands: commands, image: image))
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("No space left on device"), r.stderr)
        XCTAssertTrue(r.stderr.contains("stays readable"), r.stderr)
        let report = try Harness.run(Harness.analyzer, ["report", capture, "--format", "json"])
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertTrue(report.stdout.contains("\"cut_short\" : true"), report.stdout.prefix(500).description)
    }

    /// A flood far beyond a 4 KiB ring buffer: lost events are counted per CPU, written, and warned about;
    /// with a large buffer the same workload loses nothing, and the counts add up.
    func testRingBufferOverflowIsCounted() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        // The images on a tmpfs: on a disk the collector also records that block device's flushes and
        // journal commits, whoever causes them, and other work on the machine would change the counts.
        let tmpfs = dir.appendingPathComponent("tmpfs")
        try FileManager.default.createDirectory(at: tmpfs, withIntermediateDirectories: true)
        XCTAssertEqual(try Harness.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64m", "tmpfs", tmpfs.path]).status, 0)
        addTeardownBlock { _ = try? Harness.run("/bin/umount", [tmpfs.path]) }
        let commands = Array(repeating: "write 0 512", count: 1500)
        func run(_ extra: [String]) throws -> [String: Any] {
            let image = try Harness.makeImage(tmpfs, name: "flood-\(UUID().uuidString.prefix(6)).qcow2")
            return try Harness.traceAndReport(dir, binary: Harness.qemuIO,
                                              args: Harness.qemuIOArgs(cache: "writeback", commands: commands, image: image),
                                              extra: extra).json
        }
        let small = try run(["--ring-buffer-kb", "4", "--poll-delay-ms", "50"])
        let big = try run([])
        let lost = try XCTUnwrap(small.int("capture.lost_events"))
        XCTAssertGreaterThan(lost, 0, "a 4 KiB ring buffer should overflow under this flood")
        XCTAssertEqual(big.int("capture.lost_events"), 0)
        XCTAssertEqual((small.int("capture.events") ?? 0) + lost, big.int("capture.events"), "captured + lost = all events")
        XCTAssertTrue((small["warnings"] as? [String] ?? []).contains { $0.contains("lost") })
        XCTAssertFalse((small.dict("capture")["lost_per_cpu"] as? [String: Any] ?? [:]).isEmpty)
    }

    /// Without root: one sentence on what is missing and what to do.
    func testNotRoot() throws {
        try Harness.requireTracing()
        let r = try Harness.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--",
                                                     Harness.collector, "-o", "/tmp/never.syncamp", "--", "/bin/true"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("needs root") && r.stderr.contains("sudo"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/never.syncamp"))
    }

    /// Two collectors on one pid both work and agree.
    func testTwoCollectorsOnOnePid() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let target = try idleQemuIO(dir)
        let a = dir.appendingPathComponent("a.syncamp").path, b = dir.appendingPathComponent("b.syncamp").path
        let ca = try attach(target, a), cb = try attach(target, b)
        target.release()
        target.shell.waitUntilExit()
        ca.process.waitUntilExit()
        cb.process.waitUntilExit()
        XCTAssertEqual(ca.process.terminationStatus, 0, ca.stderr)
        XCTAssertEqual(cb.process.terminationStatus, 0, cb.stderr)
        let ja = try Harness.report(a), jb = try Harness.report(b)
        XCTAssertEqual(ja.int("totals.host_fdatasyncs"), 3 + 2 + 2)
        XCTAssertEqual(jb.int("totals.host_fdatasyncs"), 3 + 2 + 2)
        XCTAssertEqual(ja["causes"] as? [String: Int], jb["causes"] as? [String: Int])
    }
}
