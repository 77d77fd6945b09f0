import ArgumentParser
import Foundation
import SyncampAnalysis
import SyncampCapture
#if canImport(Glibc)
import Glibc
#endif

/// `analyzer replay`: feeds a capture through the live pipeline at its recorded pace.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Show what `analyzer live` would have shown for a capture, at its recorded pace.",
        discussion: """
        EXAMPLES:
          analyzer replay run.syncamp                   # at the pace it was recorded
          analyzer replay run.syncamp --speed 10        # ten times faster
          analyzer replay run.syncamp --speed max --prometheus :9464
        """
    )

    /// How fast capture time passes: a factor of the recorded pace, or as fast as it reads.
    enum Speed: ExpressibleByArgument, Equatable {
        case factor(Double)
        case max

        init?(argument: String) {
            if argument == "max" { self = .max; return }
            guard let f = Double(argument.hasSuffix("x") ? String(argument.dropLast()) : argument), f > 0, f.isFinite else { return nil }
            self = .factor(f)
        }
    }

    @Argument(help: "The capture file written by `collector -o`.")
    var capture: String

    @Option(help: ArgumentHelp("1 (the recorded pace), another factor such as 10, or max.", valueName: "factor|max"))
    var speed: Speed = .factor(1)

    @OptionGroup var watch: WatchOptions

    func run() throws {
        var reader = try ReportCommand.open(capture)
        let metrics = try watch.startMetrics()
        defer { metrics?.stop() }
        Interrupt.install()
        let screen = LiveScreen(interval: watch.interval, metrics: metrics, manifest: reader.manifest)
        let start = reader.manifest.startMonotonicNs
        let speedText: String
        switch speed {
        case let .factor(f): speedText = f == 1 ? "at the recorded pace" : String(format: "at %gx", f)
        case .max: speedText = "at full speed"
        }
        let title = "replay of \(capture) \(speedText) (pid \(reader.manifest.target.pid))"
        var pipeline = AnalysisPipeline(manifest: reader.manifest, path: capture, limits: .init(listedOps: 0))
        let wallStart = CaptureClock.monotonicNs()
        var captureNow = start
        func status() -> String {
            reader.fileSize > 0 ? String(format: "%.0f%% read", 100 * Double(reader.offset) / Double(reader.fileSize)) : "reading"
        }
        while Interrupt.received == 0, let record = reader.next() {
            if let t = Self.timestamp(record), t > captureNow {
                if case let .factor(f) = speed {
                    // Wait until the wall clock has caught up with this record, refreshing meanwhile.
                    let due = wallStart + UInt64(Double(t - start) / f)
                    while Interrupt.received == 0 {
                        let now = CaptureClock.monotonicNs()
                        if now >= due { break }
                        pipeline.advance(to: start + UInt64(Double(now - wallStart) * f))
                        screen.show(pipeline.snapshot, title: title, status: status())
                        usleep(UInt32(min(due - now, 50_000_000) / 1000))
                    }
                }
                captureNow = t
            }
            pipeline.add(record)
            if case .max = speed { screen.show(pipeline.snapshot, title: title, status: status()) }
        }
        let analysis = pipeline.finish(damage: Interrupt.received == 0 ? reader.damage : nil)
        let end = Interrupt.received == 0 ? "done" : "interrupted at \(status())"
        screen.final(pipeline.snapshot, title: title, status: end)
        for w in analysis.warnings { FileHandle.standardError.write(Data("analyzer: warning: \(w)\n".utf8)) }
    }

    /// The capture time a record carries, if any.
    static func timestamp(_ r: CaptureRecord) -> UInt64? {
        switch r {
        case let .event(e): return e.timestamp
        case let .note(n): return n.timestampNs
        case let .trailer(t): return t.endMonotonicNs
        default: return nil
        }
    }
}
