import Foundation
import XCTest

/// The collector's modes and its errors, on real processes.
final class CollectorBehaviourTests: XCTestCase {
    /// `collector -p PID` attaches to a running qemu-io, which then gets its commands on stdin.
    func testAttachByPid() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let image = try Harness.makeImage(dir)
        // qemu-io reads its commands from a pipe that stays empty until the collector has
        // attached, so the collector attaches to a process that is already running and idle.
        let (json, said, qemuPid) = try Harness.traceAttached(dir, args: ["-f", "qcow2", "-t", "writeback", image],
                                                              commands: ["write 0 4k", "flush", "write 64k 4k", "flush"])
        XCTAssertTrue(said.contains("tracing pid \(qemuPid)"), said)
        XCTAssertEqual(json.int("totals.guest_writes"), 2)
        XCTAssertEqual(json.int("totals.guest_flushes"), 2)
        XCTAssertEqual(json.int("totals.host_fdatasyncs"), 3 + 2 + 2)
        XCTAssertEqual(json.int("totals.unattributed_host_syncs"), 0)
        XCTAssertEqual(json.dict("capture")["end_reason"] as? String, "target-exited")
        XCTAssertEqual(json.dict("target")["mode"] as? String, "attach")
        // qemu-io's output goes to a writable regular file (fd 1 and 2): not an image.
        let devices = try XCTUnwrap(json["devices"] as? [[String: Any]])
        XCTAssertEqual(devices.flatMap { $0["images"] as? [String] ?? [] }, [image], "\(devices)")
    }

    /// `--measure-cost` records what the kernel counted of the collector's BPF programs (every
    /// event written took at least one run) and the collector's CPU time; without it, nothing.
    func testMeasureCostRecordsTheKernelsRunCountsOfTheCollectorsPrograms() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let commands = (0 ..< 50).flatMap { ["write -q \($0 * 64)k 4k", "flush"] }
        let (json, c) = try Harness.traceAndReport(dir, binary: Harness.qemuIO,
                                                   args: Harness.qemuIOArgs(cache: "writeback", commands: commands, image: try Harness.makeImage(dir)),
                                                   extra: ["--measure-cost"])
        let capture = json.dict("capture")
        let cost = try XCTUnwrap(capture["tracing_cost"] as? [String: Any], "no tracing_cost in \(capture)")
        let events = try XCTUnwrap(capture["events"] as? Int)
        let runs = try XCTUnwrap(cost["bpf_program_runs"] as? Int)
        let runNs = try XCTUnwrap(cost["bpf_run_time_ns"] as? Int)
        let cpuNs = try XCTUnwrap(cost["collector_cpu_ns"] as? Int)
        let durationNs = try XCTUnwrap(capture["duration_ns"] as? Int)
        XCTAssertEqual(json.int("totals.host_fdatasyncs"), 3 + 2 * 50, c.stderr)
        XCTAssertGreaterThanOrEqual(runs, events, "every event written comes from a program run the kernel counted")
        // A run takes more than 10 ns and, in all, less than the capture's time on every CPU.
        XCTAssertGreaterThan(runNs, runs * 10)
        XCTAssertLessThan(runNs, durationNs * ProcessInfo.processInfo.activeProcessorCount)
        XCTAssertGreaterThan(cpuNs, 0)
        let text = try Harness.run(Harness.analyzer, ["report", try XCTUnwrap(capture["path"] as? String)])
        XCTAssertTrue(text.stdout.contains("BPF programs ran \(runs) times"), text.stdout)

        let (plain, _) = try Harness.traceAndReport(dir, binary: Harness.qemuIO,
                                                    args: Harness.qemuIOArgs(cache: "writeback", commands: ["write 0 4k", "flush"],
                                                                             image: try Harness.makeImage(dir, name: "plain.qcow2")))
        XCTAssertNil(plain.dict("capture")["tracing_cost"])
    }

    /// This kernel's kprobe support decides the kernel probe; the tracepoint fallback is what runs without it.
    func testKernelProbeFallback() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        func args(_ name: String) throws -> [String] {
            Harness.qemuIOArgs(cache: "writeback", commands: ["write 0 4k", "flush"], image: try Harness.makeImage(dir, name: name))
        }
        let hasKprobes = FileManager.default.fileExists(atPath: "/sys/kernel/tracing/kprobe_events")
        let (auto, c) = try Harness.traceAndReport(dir, binary: Harness.qemuIO, args: try args("auto.qcow2"))
        XCTAssertEqual(auto["kernel_probe"] as? String, hasKprobes ? "kprobe" : "tracepoint")
        XCTAssertTrue(c.stderr.contains(hasKprobes ? "with kprobes" : "syscalls tracepoints"), c.stderr)
        XCTAssertEqual(auto.int("totals.host_fdatasyncs"), 5)

        // Forcing tracepoints works everywhere and gives the same totals.
        let (tp, _) = try Harness.traceAndReport(dir, binary: Harness.qemuIO, args: try args("tp.qcow2"), extra: ["--kernel-probe", "tracepoint"])
        XCTAssertEqual(tp["kernel_probe"] as? String, "tracepoint")
        XCTAssertEqual(tp.int("totals.host_fdatasyncs"), 5)

        if !hasKprobes {
            let capture = dir.appendingPathComponent("kp.syncamp").path
            let r = try Harness.run(Harness.collector, ["--kernel-probe", "kprobe", "-o", capture, "--", Harness.qemuIO] + (try args("kp.qcow2")))
            XCTAssertEqual(r.status, 1)
            XCTAssertTrue(r.stderr.contains("CONFIG_KPROBES"), r.stderr)
        }
    }

    /// A binary without QEMU's symbols is refused with the names, the binary and its build-id.
    func testMissingSymbolsError() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let r = try Harness.run(Harness.collector, ["-o", dir.appendingPathComponent("x.syncamp").path, "--", "/bin/true"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("lacks the symbols"), r.stderr)
        XCTAssertTrue(r.stderr.contains("blk_co_flush"), r.stderr)
        XCTAssertTrue(r.stderr.contains("build-id"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--symbols PATH"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--offset NAME=0xOFFSET"), r.stderr)
    }

    /// An existing capture is not overwritten without --force; a pid that does not exist is named.
    func testRefusesOverwriteAndUnknownPid() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let existing = dir.appendingPathComponent("exists.syncamp").path
        XCTAssertTrue(FileManager.default.createFile(atPath: existing, contents: Data("keep".utf8)))
        let r = try Harness.run(Harness.collector, ["-o", existing, "--", "/bin/true"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("--force"), r.stderr)
        XCTAssertEqual(try String(contentsOfFile: existing, encoding: .utf8), "keep")

        let p = try Harness.run(Harness.collector, ["-p", "999999", "-o", dir.appendingPathComponent("p.syncamp").path])
        XCTAssertEqual(p.status, 1)
        XCTAssertTrue(p.stderr.contains("no process 999999"), p.stderr)
    }

    /// The text report of the fresh-image scenario shows each host fdatasync under the op that caused it.
    func testTextReportShowsTrees() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let capture = dir.appendingPathComponent("text.syncamp").path
        let args = Harness.qemuIOArgs(cache: "writeback", commands: ["write 0 4k", "flush"], image: try Harness.makeImage(dir))
        XCTAssertEqual(try Harness.run(Harness.collector, ["-o", capture, "--", Harness.qemuIO] + args).status, 0)
        let text = try Harness.run(Harness.analyzer, ["report", capture]).stdout
        // Split the report into op sections and count HOST lines in each.
        var counts: [String: Int] = [:]
        var section = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix("#") {
                section = line.split(separator: " ").dropFirst().first.map(String.init) ?? ""
            } else if line.contains("HOST fdatasync(") {
                counts[section, default: 0] += 1
            }
        }
        XCTAssertEqual(counts["write"], 3, text)
        XCTAssertEqual(counts["flush"], 2, text)
        XCTAssertTrue(text.contains("host fdatasyncs      5"), text)
        XCTAssertTrue(text.contains("sync amplification   5.00"), text)
    }
}
