import Foundation
import SyncampCapture
import XCTest

/// Runs the real collector and analyzer on the real QEMU testbed, as root.
///
/// Skips with the reason on a machine without root or without the testbed;
/// under CI=true those are failures, because CI must run these tests for real.
enum Harness {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let testbedBin = repo.appendingPathComponent(".testbed/bin")
    static var qemuIO: String { testbedBin.appendingPathComponent("qemu-io").path }
    static var qemuImg: String { testbedBin.appendingPathComponent("qemu-img").path }
    static let stockQemuIO = "/usr/bin/qemu-io"
    /// QEMU 10.0 (Debian 13's source) built with symbols, and Debian's stock (stripped) qemu-utils 10.0.
    static var qemuIO10: String { repo.appendingPathComponent(".testbed/qemu-10.0/bin/qemu-io").path }
    static var stockQemuIO10: String { repo.appendingPathComponent(".testbed/stock-10.0/bin/qemu-io").path }
    static var dtraceQemuIO10: String { repo.appendingPathComponent(".testbed/qemu-10.0/dtrace/bin/qemu-io").path }

    /// The folder holding the built `collector` and `analyzer` (next to the test bundle).
    static var products: URL {
        for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") {
            return b.bundleURL.deletingLastPathComponent()
        }
        return repo.appendingPathComponent(".build/debug")
    }
    static var collector: String { products.appendingPathComponent("collector").path }
    static var analyzer: String { products.appendingPathComponent("analyzer").path }

    static var inCI: Bool { Prerequisite.inCI }

    /// Skips (or fails under CI) unless root, the testbed and the built tools are there.
    static func requireTracing(file: StaticString = #filePath, line: UInt = #line) throws {
        var missing: [String] = []
        if geteuid() != 0 { missing.append("root (BPF and uprobes need it)") }
        if !FileManager.default.isExecutableFile(atPath: qemuIO) { missing.append("the QEMU testbed (run scripts/testbed.sh)") }
        if !FileManager.default.isExecutableFile(atPath: collector) { missing.append("the collector binary at \(collector)") }
        guard !missing.isEmpty else { return }
        throw unavailable("end-to-end test needs " + missing.joined(separator: " and "), file: file, line: line)
    }

    /// Skips (or fails under CI) unless `path` is an executable (`what` names it).
    static func require(_ path: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        guard !FileManager.default.isExecutableFile(atPath: path) else { return }
        throw unavailable("\(what) is missing at \(path) (run scripts/testbed.sh)", file: file, line: line)
    }

    /// Skips (or fails under CI) unless Debian's stock, stripped qemu-io is installed.
    static func requireStockQemuIO(file: StaticString = #filePath, line: UInt = #line) throws {
        guard !FileManager.default.isExecutableFile(atPath: stockQemuIO) else { return }
        throw unavailable("Debian's qemu-utils (\(stockQemuIO)) is not installed (scripts/testbed.sh --deps installs it)", file: file, line: line)
    }

    /// What a test throws when something it needs is missing (see `Prerequisite`).
    static func unavailable(_ reason: String, file: StaticString = #filePath, line: UInt = #line) -> XCTSkip {
        Prerequisite.unavailable(reason, file: file, line: line)
    }

    /// A fresh temporary folder, removed at the end of the test.
    static func tempDir(_ test: XCTestCase) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("syncamp-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a program to completion and returns its exit status and output.
    @discardableResult
    static func run(_ path: String, _ args: [String], stdin: FileHandle? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        if let stdin { p.standardInput = stdin }
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
    }

    /// Creates a fresh qcow2 image with the testbed's qemu-img.
    static func makeImage(_ dir: URL, name: String = "img.qcow2", size: String = "1G", options: String? = nil) throws -> String {
        let path = dir.appendingPathComponent(name).path
        var args = ["create", "-f", "qcow2"]
        if let options { args += ["-o", options] }
        let r = try run(qemuImg, args + [path, size])
        XCTAssertEqual(r.status, 0, r.stderr)
        return path
    }

    /// qemu-io arguments for a list of commands with an explicit cache mode.
    static func qemuIOArgs(cache: String, commands: [String], image: String) -> [String] {
        ["-f", "qcow2", "-t", cache] + commands.flatMap { ["-c", $0] } + [image]
    }

    /// Traces `binary args` with the collector and returns the JSON report as a dictionary.
    static func traceAndReport(_ dir: URL, binary: String, args: [String], extra: [String] = []) throws -> (json: [String: Any], collector: Result) {
        let capture = dir.appendingPathComponent("run-\(UUID().uuidString.prefix(8)).syncamp").path
        let c = try run(collector, ["-o", capture] + extra + ["--", binary] + args)
        XCTAssertEqual(c.status, 0, "collector failed: \(c.stderr)")
        return (try report(capture), c)
    }

    /// The analyzer's JSON report of a capture.
    static func report(_ capture: String) throws -> [String: Any] {
        let r = try run(analyzer, ["report", capture, "--format", "json"])
        XCTAssertEqual(r.status, 0, "analyzer failed: \(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        return try XCTUnwrap(obj as? [String: Any])
    }

    /// fdatasync/fsync latencies straight from the capture's system-call events (exit minus entry, per thread).
    static func rawSyncLatencies(_ capture: String) throws -> [UInt64] {
        var reader = try CaptureReader(path: capture)
        var events: [Event] = []
        while let record = reader.next() {
            if case let .event(e) = record, e.kind == .syscallEnter || e.kind == .syscallExit { events.append(e) }
        }
        var entered: [UInt32: UInt64] = [:]
        var out: [UInt64] = []
        for e in events.sorted(by: { $0.timestamp < $1.timestamp }) {
            if e.kind == .syscallEnter { entered[e.tid] = e.timestamp }
            if e.kind == .syscallExit, let t = entered.removeValue(forKey: e.tid) { out.append(e.timestamp - t) }
        }
        return out
    }

    /// `analyzer whatif CAPTURE --format json ARGS` as a dictionary.
    static func whatIf(_ capture: String, _ args: [String]) throws -> [String: Any] {
        let r = try run(analyzer, ["whatif", capture, "--format", "json"] + args)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    /// The independent count: fdatasync/fsync calls strace sees for the same workload run again.
    ///
    /// strace also records the program's exit_group, so that a run it did not trace (no log, an
    /// empty log) fails here instead of passing for a workload with no syncs (cache=unsafe).
    static func straceSyncCount(binary: String, args: [String], dir: URL,
                                file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let log = dir.appendingPathComponent("strace-\(UUID().uuidString.prefix(8)).log").path
        let r = try run("/usr/bin/strace", ["-f", "-qq", "-e", "trace=fdatasync,fsync,exit_group", "-o", log, binary] + args)
        XCTAssertEqual(r.status, 0, "strace or the traced program failed: \(r.stderr)", file: file, line: line)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        // At least one: two of QEMU's threads can both enter exit_group as the program ends (seen
        // once in CI, the second thread's call still unfinished when the first one's ended it).
        XCTAssertTrue(text.split(separator: "\n").contains { $0.contains("exit_group(") },
                      "strace did not see the program run to its end: \(text.suffix(500))", file: file, line: line)
        return syncCalls(inStraceLog: text)
    }

    /// fdatasync/fsync calls in an strace log (an interrupted call counts once, at its start).
    static func syncCalls(inStraceLog text: String) -> Int {
        text.split(separator: "\n").filter {
            ($0.contains("fdatasync(") || $0.contains("fsync(")) && !$0.contains("resumed>")
        }.count
    }
}

/// Reads nested values of a JSON report.
extension Dictionary where Key == String, Value == Any {
    func int(_ path: String) -> Int? {
        var cur: Any = self
        for k in path.split(separator: ".") {
            guard let d = cur as? [String: Any], let v = d[String(k)] else { return nil }
            cur = v
        }
        return (cur as? NSNumber)?.intValue
    }

    func dict(_ key: String) -> [String: Any] { self[key] as? [String: Any] ?? [:] }
    func array(_ key: String) -> [[String: Any]] { self[key] as? [[String: Any]] ?? [] }
}
