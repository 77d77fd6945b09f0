import Foundation
import SyncampCapture
import XCTest

/// Every probe the collector lists is attached and sees every call: its hits in the report equal what
/// bpftrace, attached to the same functions of the same process over the same run, counts.
final class ProbeAttachTests: XCTestCase {
    func testEveryListedProbeCountsWhatBpftraceCounts() throws {
        try Harness.requireTracing()
        let bpftrace = "/usr/bin/bpftrace"
        guard FileManager.default.isExecutableFile(atPath: bpftrace) else {
            throw Harness.unavailable("bpftrace is not installed (scripts/testbed.sh --deps installs it)")
        }
        let dir = try Harness.tempDir(self)
        let target = try idleQemuIO(dir)
        let capture = dir.appendingPathComponent("attach.syncamp").path
        let collector = try Background(Harness.collector, ["-p", String(target.pid), "-o", capture])
        XCTAssertTrue(collector.waitFor("fdatasync/fsync traced"), collector.stderr)
        let manifest = try CaptureReader(path: capture).manifest
        XCTAssertGreaterThanOrEqual(manifest.probes.count, 10, "the minimal set: \(manifest.probes.map(\.symbol))")

        // The same functions by name; BEGIN runs once every probe is attached. Its output goes to
        // stderr, which Background collects.
        let script = "BEGIN { printf(\"ready\\n\"); }\n"
            + manifest.probes.map { "uprobe:\(manifest.target.binaryPath):\($0.symbol)" }.joined(separator: ",\n")
            + "\n/pid == \(target.pid)/ { @[probe] = count(); }\n"
        let scriptPath = dir.appendingPathComponent("hits.bt").path
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let peer = try Background("/bin/sh", ["-c", "exec '\(bpftrace)' -B line '\(scriptPath)' 1>&2"])
        XCTAssertTrue(peer.waitFor("ready"), "bpftrace did not attach: \(peer.stderr)")

        target.release()
        target.shell.waitUntilExit()
        collector.process.waitUntilExit()
        XCTAssertEqual(collector.process.terminationStatus, 0, collector.stderr)
        XCTAssertEqual(peer.interrupt(), 0, "bpftrace failed: \(peer.stderr)")

        // "@[uprobe:/path/qemu-io:blk_co_flush]: 2"
        var counted: [String: Int] = [:]
        let pattern = try NSRegularExpression(pattern: #"@\[uprobe:[^\]]*:(\w+)\]: (\d+)"#)
        let text = peer.stderr
        for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            counted[String(text[Range(m.range(at: 1), in: text)!])] = Int(text[Range(m.range(at: 2), in: text)!])
        }
        XCTAssertGreaterThanOrEqual(counted.count, 5, "bpftrace counted too few of the probes to be an oracle: \(text)")
        let report = try Harness.report(capture)
        let hits = Dictionary(report.array("probes").compactMap { p in (p["symbol"] as? String).map { ($0, p["hits"] as? Int ?? -1) } },
                              uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(hits.count, manifest.probes.count, "the report lists every probe")
        for probe in manifest.probes {
            XCTAssertEqual(hits[probe.symbol], counted[probe.symbol] ?? 0, "hits of \(probe.symbol) against bpftrace's count")
        }
    }
}
