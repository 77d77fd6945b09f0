import ArgumentParser
import Foundation
import SyncampAnalysis
import SyncampCapture
#if canImport(Glibc)
import Glibc
#endif

/// What `live` and `replay` share: how often to refresh and where to serve metrics.
struct WatchOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Serve the totals in the Prometheus text format at http://HOST:PORT/metrics.",
                               discussion: "Counters per image and cause (syncamp_host_syncs_by_cause_total{image=...,cause=...}); port 0 picks a free one and prints it.",
                               valueName: "host:port"))
    var prometheus: String?

    @Option(help: "Seconds between refreshes of the summary.")
    var interval: Double = 1

    func validate() throws {
        if !(interval > 0) { throw ValidationError("--interval must be a positive number of seconds") }
        if let p = prometheus { _ = try MetricsServer.split(p) }
    }

    /// Starts the metrics endpoint when asked for, and says where it is.
    func startMetrics() throws -> MetricsServer? {
        guard let spec = prometheus else { return nil }
        do {
            let server = try MetricsServer(listen: spec)
            FileHandle.standardError.write(Data("analyzer: serving metrics on http://\(server.address)/metrics\n".utf8))
            return server
        } catch let e as MetricsServerError {
            throw ReportCommand.fail(e.description)
        }
    }
}

/// `analyzer live`: runs the collector and shows its totals as they come.
struct LiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live",
        abstract: "Trace a QEMU and show where its syncs come from as it runs (run as root).",
        discussion: """
        Starts `collector` (the one beside this analyzer, else the first on PATH) \
        writing a capture, reads the capture as it grows, and refreshes a summary \
        per image every --interval seconds. Ctrl-C stops the collector, which \
        detaches cleanly; the final summary is printed. Keep the capture with \
        --capture FILE to see the trees later with `analyzer report FILE`.

        EXAMPLES:
          sudo analyzer live -p $(pidof qemu-system-x86_64)
          sudo analyzer live -p 1234 --prometheus :9464 --capture run.syncamp
          sudo analyzer live -- qemu-io -f qcow2 -t writeback -c 'write 0 4k' -c flush img.qcow2
        """
    )

    @Option(name: .shortAndLong, help: "Pid of a running QEMU to trace.")
    var pid: Int32?

    @Option(help: ArgumentHelp("A running libvirt domain to trace (collector --domain).", valueName: "name"))
    var domain: String?

    @Option(name: .shortAndLong, help: "Stop after this many seconds (default: until Ctrl-C or the target exits).")
    var duration: Double?

    @Option(help: "Keep the capture in this file (default: a temporary file, removed at the end).")
    var capture: String?

    @Flag(help: "Overwrite the --capture file if it exists.")
    var force = false

    @Flag(help: "Attach the collector's full probe catalog (collector --detail).")
    var detail = false

    @Option(help: ArgumentHelp("Symbols for a stripped QEMU (collector --symbols).", valueName: "path"))
    var symbols: String?

    @Flag(help: "Trace QEMU's USDT probes (collector --usdt).")
    var usdt = false

    @Option(help: "The collector to run (default: the one beside this analyzer, else PATH).")
    var collector: String?

    @OptionGroup var watch: WatchOptions

    @Argument(parsing: .postTerminator, help: "A command to start and trace (after --).")
    var command: [String] = []

    func validate() throws {
        if [pid != nil, domain != nil, !command.isEmpty].filter({ $0 }).count != 1 {
            throw ValidationError("give one of -p PID, --domain NAME or -- COMMAND")
        }
    }

    func run() throws {
        guard let exe = collector ?? CollectorProcess.locate() else {
            throw ReportCommand.fail("no collector found beside the analyzer or on PATH: build it (swift build) or give --collector PATH")
        }
        let metrics = try watch.startMetrics()
        defer { metrics?.stop() }
        var temporary: String?
        let path: String
        if let capture {
            path = capture
        } else {
            var template = Array((NSTemporaryDirectory() + "/syncamp-live-XXXXXX").utf8CString)
            guard let dir = mkdtemp(&template) else { throw ReportCommand.fail("cannot make a temporary directory: \(String(cString: strerror(errno)))") }
            temporary = String(cString: dir)
            path = temporary! + "/live.syncamp"
        }
        defer { if let t = temporary { try? FileManager.default.removeItem(atPath: t) } }

        var args = ["-o", path, "--stop-with-parent"]
        if let pid { args += ["-p", String(pid)] }
        if let domain { args += ["--domain", domain] }
        if let duration { args += ["-d", String(duration)] }
        if detail { args.append("--detail") }
        if let symbols { args += ["--symbols", symbols] }
        if usdt { args.append("--usdt") }
        if force { args.append("--force") }
        if !command.isEmpty { args += ["--"] + command }
        Interrupt.install()
        let process: CollectorProcess
        do { process = try CollectorProcess(executable: exe, arguments: args) } catch let e as LiveError { throw ReportCommand.fail(e.description) }

        var forwarded = false
        func forwardInterrupt() {
            if Interrupt.received != 0 && !forwarded { process.interrupt(); forwarded = true }
        }
        // The collector writes the manifest once its probes are attached.
        var opened: CaptureReader?
        while opened == nil {
            forwardInterrupt()
            if FileManager.default.fileExists(atPath: path), let r = try? CaptureReader(path: path) { opened = r; break }
            if !process.isRunning { break }
            usleep(50_000)
        }
        guard var reader = opened else {
            process.wait()
            for line in process.output { FileHandle.standardError.write(Data("\(line)\n".utf8)) }
            throw ReportCommand.fail("the collector exited (\(process.exitDescription)) before writing a capture: its messages are above")
        }
        reader.following = true
        let screen = LiveScreen(interval: watch.interval, metrics: metrics, manifest: reader.manifest)
        let target = reader.manifest.target
        let title = "live: pid \(target.pid) (\(URL(fileURLWithPath: target.binaryPath).lastPathComponent))"
        var pipeline = AnalysisPipeline(manifest: reader.manifest, path: path, limits: .init(listedOps: 0))
        while process.isRunning {
            forwardInterrupt()
            while let r = reader.next() { pipeline.add(r) }
            pipeline.advance(to: CaptureClock.monotonicNs())
            screen.show(pipeline.snapshot, title: title, status: forwarded ? "stopping" : "tracing",
                        extra: process.lastLines(3))
            usleep(100_000)
        }
        process.wait()
        reader.following = false
        while let r = reader.next() { pipeline.add(r) }
        let analysis = pipeline.finish(damage: reader.damage)
        screen.final(pipeline.snapshot, title: title, status: "done (\(analysis.capture.trailerReason ?? "no trailer"))")
        for w in analysis.warnings { FileHandle.standardError.write(Data("analyzer: warning: \(w)\n".utf8)) }
        if process.exitCode != 0 {
            for line in process.lastLines(20) { FileHandle.standardError.write(Data("\(line)\n".utf8)) }
            throw ReportCommand.fail("the collector exited with \(process.exitDescription): its last messages are above")
        }
        if capture != nil { FileHandle.standardError.write(Data("analyzer: capture kept in \(path): `analyzer report \(path)` shows the trees\n".utf8)) }
    }
}
