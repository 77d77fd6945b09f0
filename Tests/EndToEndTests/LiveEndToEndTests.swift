import Foundation
import SyncampCapture
import XCTest

/// `analyzer live` on a real qemu-io: Prometheus scraped by real clients while the workload runs,
/// and `analyzer replay` showing the same totals from the kept capture.
final class LiveEndToEndTests: XCTestCase {
    /// The Prometheus project's own parser (Debian's python3-prometheus-client) turns a scrape into samples.
    static let parser = """
    import json, sys
    from prometheus_client.parser import text_string_to_metric_families
    out = []
    for f in text_string_to_metric_families(sys.stdin.read()):
        for s in f.samples:
            out.append({"family": f.name, "type": f.type, "name": s.name, "labels": s.labels, "value": s.value})
    print(json.dumps(out))
    """

    struct Sample { var name: String; var labels: [String: String]; var value: Double }

    /// Scrapes with curl and parses with prometheus_client; nil while the endpoint does not answer.
    static func scrape(_ url: String) throws -> [Sample]? {
        let body = try Harness.run("/usr/bin/curl", ["-sS", "--max-time", "5", "-D", "-", url])
        guard body.status == 0 else { return nil }
        let parts = body.stdout.components(separatedBy: "\r\n\r\n")
        XCTAssertTrue(parts[0].hasPrefix("HTTP/1.1 200"), parts[0])
        XCTAssertTrue(parts[0].contains("Content-Type: text/plain; version=0.0.4"), parts[0])
        let input = Pipe()
        let text = parts.dropFirst().joined(separator: "\r\n\r\n")
        let writer = input.fileHandleForWriting
        writer.write(Data(text.utf8))
        writer.closeFile()
        let parsed = try Harness.run("/usr/bin/python3", ["-c", parser], stdin: input.fileHandleForReading)
        XCTAssertEqual(parsed.status, 0, "prometheus_client could not parse the scrape: \(parsed.stderr)\n\(text)")
        guard parsed.status == 0 else { return nil }
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [[String: Any]])
        return list.map { Sample(name: $0["name"] as! String, labels: $0["labels"] as! [String: String],
                                 value: ($0["value"] as! NSNumber).doubleValue) }
    }

    /// The URL `analyzer live --prometheus` says it serves on (its stderr, in `errPath`).
    static func metricsAddress(_ live: Process, errPath: String, until deadline: Date) throws -> String {
        var url: String?
        while url == nil && Date() < deadline && live.isRunning {
            let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            if let r = err.range(of: "serving metrics on ") { url = String(err[r.upperBound...].prefix { !$0.isNewline }) }
            usleep(20_000)
        }
        return try XCTUnwrap(url, "no metrics address on stderr: \((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")")
    }

    static func requireParser() throws {
        let check = try Harness.run("/usr/bin/python3", ["-c", "import prometheus_client.parser"])
        guard check.status != 0 else { return }
        throw Harness.unavailable("needs /usr/bin/python3 with prometheus_client (apt-get install python3-prometheus-client; scripts/testbed.sh does)")
    }

    func testPrometheusIsScrapedWhileTheWorkloadRunsAndMatchesTheReport() throws {
        try Harness.requireTracing()
        try Self.requireParser()
        let dir = try Harness.tempDir(self)
        let img = try Harness.makeImage(dir)
        let capture = dir.appendingPathComponent("live.syncamp").path
        // 20 allocating write+flush pairs, then qemu-io idles 6 s with the image open: the
        // requests finish (2 s quiet) and are scraped while the target still runs.
        var commands: [String] = []
        for i in 0 ..< 20 { commands += ["write \(i * 65536) 4k", "flush"] }
        commands.append("sleep 6000")
        let errPath = dir.appendingPathComponent("live.err").path
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let live = Process()
        live.executableURL = URL(fileURLWithPath: Harness.analyzer)
        live.arguments = ["live", "--prometheus", "127.0.0.1:0", "--interval", "0.2", "--capture", capture, "--"]
            + [Harness.qemuIO] + Harness.qemuIOArgs(cache: "writeback", commands: commands, image: img)
        let outPath = dir.appendingPathComponent("live.out").path
        FileManager.default.createFile(atPath: outPath, contents: nil)
        live.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        live.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try live.run()
        addTeardownBlock { if live.isRunning { live.terminate() } }

        let deadline = Date().addingTimeInterval(30)
        let endpoint = try Self.metricsAddress(live, errPath: errPath, until: deadline)
        XCTAssertTrue(endpoint.hasPrefix("http://127.0.0.1:") && endpoint.hasSuffix("/metrics"), endpoint)

        // Scrape until the 40 requests are counted and handed on (the model's gauges cover the ops
        // handed on), while qemu-io is still sleeping.
        var samples: [Sample] = []
        var scrapes = 0
        var flushes = 0.0, open = 1.0
        while live.isRunning && (flushes < 20 || open > 0) && Date() < deadline {
            if let s = try Self.scrape(endpoint) {
                samples = s
                scrapes += 1
                flushes = s.first { $0.name == "syncamp_guest_requests_total" && $0.labels["kind"] == "flush" }?.value ?? 0
                open = s.first { $0.name == "syncamp_open_ops" }?.value ?? 1
            }
            usleep(200_000)
        }
        XCTAssertTrue(live.isRunning, "the workload ended before its requests were scraped")
        XCTAssertEqual(flushes, 20, "after \(scrapes) scrapes")
        live.waitUntilExit()
        XCTAssertEqual(live.terminationStatus, 0, (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")

        // The scraped counters are the report's, per image and cause.
        let report = try Harness.report(capture)
        func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            samples.first { $0.name == name && $0.labels == labels }?.value
        }
        XCTAssertEqual(value("syncamp_guest_requests_total", ["kind": "write"]), Double(report.int("totals.guest_writes") ?? -1))
        XCTAssertEqual(value("syncamp_host_syncs_total"), Double(report.int("totals.host_fdatasyncs") ?? -1))
        XCTAssertEqual(value("syncamp_host_syncs_total"), 43)
        let imagePath = URL(fileURLWithPath: img).resolvingSymlinksInPath().path
        var byCause: [String: Int] = [:]
        for s in samples where s.name == "syncamp_host_syncs_by_cause_total" {
            XCTAssertEqual(s.labels["image"], imagePath)
            byCause[s.labels["cause"] ?? "?"] = Int(s.value)
        }
        XCTAssertEqual(byCause, report["causes"] as? [String: Int])
        XCTAssertEqual(byCause, ["guest_flush": 20, "refcount_dependency": 20, "l2_table_alloc": 3])
        XCTAssertEqual(value("syncamp_lost_events_total"), 0)
        // Time per cause adds up to the fdatasync entry-to-exit time of the raw capture; the model's
        // verdict and a recommendation are gauges: preallocation leaves F1 only, one sync per flush (reference §5).
        let rawSeconds = Double(try Harness.rawSyncLatencies(capture).reduce(0, +)) / 1e9
        let causeSeconds = samples.filter { $0.name == "syncamp_host_sync_seconds_total" }.map(\.value).reduce(0, +)
        XCTAssertEqual(causeSeconds, rawSeconds, accuracy: 1e-6)
        XCTAssertEqual(value("syncamp_model_verdict", ["verdict": "matched"]), 1)
        let prealloc = value("syncamp_recommendation_predicted_host_syncs", ["knob": "preallocation", "setting": "preallocation=metadata"])
        XCTAssertEqual(prealloc, 20)
        XCTAssertEqual(prealloc, Double(try Harness.whatIf(capture, ["--preallocation", "metadata"]).int("what_if.predicted_host_fdatasyncs") ?? -1))
        let info = try XCTUnwrap(samples.first { $0.name == "syncamp_target_info" })
        XCTAssertEqual(info.labels["binary"], Harness.qemuIO)
        XCTAssertEqual(info.labels["probe_set"], "minimal")
        XCTAssertEqual(info.labels["pid"], String(try CaptureReader(path: capture).manifest.target.pid))

        // The final summary on stdout (not a terminal) names the image and the totals.
        let summary = try String(contentsOfFile: outPath, encoding: .utf8)
        XCTAssertTrue(summary.contains("syncamp live: pid "), summary)
        XCTAssertTrue(summary.contains("guest_flush 20, refcount_dependency 20, l2_table_alloc 3"), summary)
        XCTAssertTrue(summary.contains("\nmodel: matched\n"), summary)
        XCTAssertTrue(summary.contains("\nwhat to change (host syncs predicted): "), summary)

        // replay shows the same summary from the kept capture, at ten times the recorded pace.
        let started = Date()
        let replay = try Harness.run(Harness.analyzer, ["replay", capture, "--speed", "10", "--interval", "0.2"])
        let took = Date().timeIntervalSince(started)
        XCTAssertEqual(replay.status, 0, replay.stderr)
        let allLine = { (text: String) in text.split(separator: "\n").first { $0.hasPrefix("all ") }.map(String.init) }
        XCTAssertNotNil(allLine(summary))
        XCTAssertEqual(allLine(replay.stdout), allLine(summary))
        XCTAssertTrue(replay.stdout.contains("replay of \(capture) at 10x"), replay.stdout)
        // Paced: the capture spans more than 6 s, so a tenth of it cannot pass in less than 0.6 s.
        XCTAssertGreaterThan(took, 0.6)
        XCTAssertTrue(replay.stderr.contains("% read"), replay.stderr)
    }

    /// On a terminal (util-linux `script` gives one): the screen is redrawn in place, and the traced
    /// command, which would otherwise touch the terminal from a background process group and be
    /// stopped by SIGTTOU with the collector, runs to its end.
    /// Every scrape taken while 1,000 allocating write+flush pairs run (with a pause of 250 ms after
    /// every 100, so that scrapes land between them) is consistent with itself:
    /// a request is counted with its host syncs when it ends, so host syncs follow the flushes
    /// (3 for the first L2 table, then 2 per flush: the reference, §5 (d)), the causes add up to
    /// the total, and no scrape shows syncs of requests it does not count.
    func testEveryScrapeIsConsistentWithItself() throws {
        try Harness.requireTracing()
        try Self.requireParser()
        let dir = try Harness.tempDir(self)
        let img = try Harness.makeImage(dir, size: "4G")
        var commands: [String] = []
        for i in 0 ..< 1000 {
            commands += ["write -q \(i * 65536) 4k", "flush"]
            if i % 100 == 99 { commands.append("sleep 250") }
        }
        commands.append("sleep 3000")
        let errPath = dir.appendingPathComponent("live.err").path
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let live = Process()
        live.executableURL = URL(fileURLWithPath: Harness.analyzer)
        live.arguments = ["live", "--prometheus", "127.0.0.1:0", "--interval", "0.1", "--"]
            + [Harness.qemuIO] + Harness.qemuIOArgs(cache: "writeback", commands: commands, image: img)
        live.standardOutput = FileHandle.nullDevice
        live.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try live.run()
        addTeardownBlock { if live.isRunning { live.terminate() } }
        let deadline = Date().addingTimeInterval(60)
        let url = try Self.metricsAddress(live, errPath: errPath, until: deadline)
        var scrapes: [(flushes: Double, syncs: Double)] = []
        var flushes = 0.0
        while live.isRunning && flushes < 1000 && Date() < deadline {
            guard let s = try Self.scrape(url) else { usleep(50_000); continue }
            func value(_ name: String, _ labels: [String: String] = [:]) -> Double {
                s.first { $0.name == name && $0.labels == labels }?.value ?? 0
            }
            flushes = value("syncamp_guest_requests_total", ["kind": "flush"])
            let syncs = value("syncamp_host_syncs_total")
            let byCause = s.filter { $0.name == "syncamp_host_syncs_by_cause_total" }.map(\.value).reduce(0, +)
            let unattributed = value("syncamp_host_syncs_unattributed_total")
            XCTAssertEqual(byCause + unattributed, syncs, "scrape \(scrapes.count): causes add up to the total")
            if flushes >= 1 {
                // At most the one request running as the snapshot was taken lacks some of its syncs
                // (a flush has two).
                XCTAssertTrue(syncs >= 3 + 2 * flushes - 2 && syncs <= 3 + 2 * flushes,
                              "scrape \(scrapes.count): \(syncs) host syncs beside \(flushes) guest flushes")
            } else {
                XCTAssertLessThanOrEqual(syncs, 3, "scrape \(scrapes.count): syncs counted before any flush")
            }
            scrapes.append((flushes, syncs))
            usleep(30_000)
        }
        XCTAssertEqual(flushes, 1000, "every flush counted while qemu-io still runs")
        XCTAssertGreaterThanOrEqual(Set(scrapes.filter { $0.flushes > 0 && $0.flushes < 1000 }.map(\.flushes)).count, 3,
                                    "scraped while the pairs ran: \(scrapes.count) scrapes")
        live.terminate()
        live.waitUntilExit()
    }

    func testOnATerminalTheSummaryIsRedrawnAndTheCommandRunsToItsEnd() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let img = try Harness.makeImage(dir)
        let quoted = ([Harness.analyzer, "live", "--interval", "0.3", "--", Harness.qemuIO]
                      + Harness.qemuIOArgs(cache: "writeback", commands: ["write 0 4k", "flush", "sleep 1000"], image: img))
            .map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let r = try Harness.run("/usr/bin/timeout", ["60", "/usr/bin/script", "-qec", quoted, "/dev/null"])
        XCTAssertEqual(r.status, 0, "live under a terminal did not finish (124: stopped or hung): \(r.stdout.suffix(2000))")
        XCTAssertTrue(r.stdout.contains("\u{1B}[H\u{1B}[2Jsyncamp live: pid "), r.stdout)
        XCTAssertTrue(r.stdout.contains("guest_flush 1, refcount_dependency 1, l2_table_alloc 3"), r.stdout)
        XCTAssertTrue(r.stdout.contains("done (target-exited)"), r.stdout)
    }
}
