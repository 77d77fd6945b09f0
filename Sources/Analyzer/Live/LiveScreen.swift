import Foundation
import SyncampAnalysis
import SyncampCapture
#if canImport(Glibc)
import Glibc
#endif

/// Where `live` and `replay` show their summary: redrawn in place on a terminal, a progress line per interval otherwise.
final class LiveScreen {
    let intervalNs: UInt64
    private let terminal = isatty(STDOUT_FILENO) != 0
    private var lastShown: UInt64 = 0
    private let metrics: MetricsServer?
    private let info: [(String, String)]

    init(interval: Double, metrics: MetricsServer?, manifest: Manifest) {
        intervalNs = UInt64(max(0.05, interval) * 1e9)
        self.metrics = metrics
        info = PrometheusText.targetInfo(manifest)
    }

    /// Shows the snapshot when an interval has passed since the last time (or `force`), and updates
    /// the metrics. The snapshot is taken only then: it summarises every op still open, and
    /// `replay --speed max` asks after every record (taking it each time made a replay with
    /// thousands of ops open quadratic).
    func show(_ snapshot: @autoclosure () -> AnalysisPipeline.Snapshot, title: String, status: String, extra: [String] = [],
              force: Bool = false) {
        let now = CaptureClock.monotonicNs()
        guard force || now - lastShown >= intervalNs else { return }
        lastShown = now
        let s = snapshot()
        metrics?.update(PrometheusText.render(s, info: info))
        if terminal {
            var text = "\u{1B}[H\u{1B}[2J" + LiveSummary.render(s, title: title, status: status)
            if let m = metrics { text += "\nmetrics: http://\(m.address)/metrics" }
            for line in extra { text += "\n" + line }
            FileHandle.standardOutput.write(Data((text + "\n").utf8))
        } else {
            FileHandle.standardError.write(Data("analyzer: \(LiveSummary.progressLine(s, status: status))\n".utf8))
        }
    }

    /// The last summary, written in full whether or not stdout is a terminal.
    func final(_ s: AnalysisPipeline.Snapshot, title: String, status: String) {
        metrics?.update(PrometheusText.render(s, info: info))
        let clear = terminal ? "\u{1B}[H\u{1B}[2J" : ""
        FileHandle.standardOutput.write(Data((clear + LiveSummary.render(s, title: title, status: status) + "\n").utf8))
    }
}
