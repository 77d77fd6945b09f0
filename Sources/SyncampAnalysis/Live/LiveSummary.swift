import Foundation

/// The screen `analyzer live` and `analyzer replay` refresh: totals per image and a progress line.
public enum LiveSummary {
    /// The summary of one snapshot, with no trailing newline.
    /// - Parameters:
    ///   - title: what is watched ("pid 1234 (qemu-io)", "replay of run.syncamp at 10x").
    ///   - status: the progress line's last part ("tracing", "collector exited", "42% read").
    public static func render(_ s: AnalysisPipeline.Snapshot, title: String, status: String) -> String {
        let t = s.totals
        var lines: [String] = []
        lines.append("syncamp \(title)")
        lines.append(progressLine(s, status: status))
        lines.append("")
        let rows: [(String, Int, Int, Int, String)] = s.images.map {
            ($0.path, $0.guestWrites, $0.guestFlushes, $0.hostSyncs, TextReport.causeList($0.causes))
        }
        let nameWidth = max(5, rows.map(\.0.count).max() ?? 0)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func num(_ v: Int, _ n: Int) -> String { let s = grouped(v); return String(repeating: " ", count: max(0, n - s.count)) + s }
        lines.append(pad("image", nameWidth) + "   writes  flushes  host syncs  by cause")
        for r in rows {
            lines.append(pad(r.0, nameWidth) + " " + num(r.1, 8) + " " + num(r.2, 8) + " " + num(r.3, 11) + "  " + r.4)
        }
        let amp = t.syncAmplification.map { String(format: "%.2f host syncs per guest flush", $0) } ?? "no guest flush yet"
        lines.append(pad("all", nameWidth) + " " + num(t.guestWrites, 8) + " " + num(t.guestFlushes, 8) + " "
                     + num(t.hostSyncs, 11) + "  " + amp)
        lines.append("below QEMU: \(grouped(t.journalCommits)) journal commits, \(grouped(t.deviceFlushes)) device flushes, "
                     + "\(grouped(t.deviceFUAWrites)) FUA writes")
        lines.append("")
        lines += answer(s)
        return lines.joined(separator: "\n")
    }

    /// The report's answer, short: model verdict, time per cause, guest flush latency, what to change.
    static func answer(_ s: AnalysisPipeline.Snapshot) -> [String] {
        let c = s.costs
        var lines = ["model: \(s.modelVerdict.rawValue)"]
        let causes = c.causes.prefix(5).map { "\($0.cause.rawValue) \(TextReport.ms($0.hostSyncTime.sumNs)) (\(grouped($0.hostSyncs)))" }
        lines.append("time in host syncs: \(TextReport.ms(c.hostSyncTime.sumNs))" + (causes.isEmpty ? "" : ": " + causes.joined(separator: ", ")))
        let f = c.guestFlushLatency
        if let p50 = f.p50Ns, let p99 = f.p99Ns {
            lines.append("guest flush latency: p50 \(TextReport.ms(p50)), p99 \(TextReport.ms(p99)) over \(grouped(f.count)) flushes")
        }
        let changes = s.recommendations.compactMap { r in
            r.prediction.map { "\(TextReport.setting(r)) \(grouped($0.hostSyncs)) (\(grouped($0.removedHostSyncs)) fewer)" }
        }
        if !changes.isEmpty { lines.append("what to change (host syncs predicted): " + changes.joined(separator: ", ")) }
        return lines
    }

    /// One line: capture time, events, losses, ops open and finished, and the status.
    public static func progressLine(_ s: AnalysisPipeline.Snapshot, status: String) -> String {
        String(format: "%.1f s", Double(s.durationNs) / 1e9)
            + ", \(grouped(Int(clamping: s.events))) events, \(grouped(Int(clamping: s.lostEvents))) lost"
            + ", \(grouped(s.finishedOps)) ops done, \(grouped(s.openOps)) open: \(status)"
    }

    /// 1234567 -> "1,234,567".
    static func grouped(_ v: Int) -> String {
        let digits = String(v.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (v < 0 ? "-" : "") + out
    }
}

extension LiveSummary {
    /// The progress bar of a long read: `reading run.syncamp [#####.....] 52% 1.2 GiB of 2.3 GiB, 9.1 M events, 4 s left`.
    public static func readingLine(path: String, offset: Int, size: Int, events: UInt64, elapsedNs: UInt64, width: Int = 20) -> String {
        let fraction = size > 0 ? min(1, max(0, Double(offset) / Double(size))) : 1
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        var line = "reading \(path) [\(bar)] " + String(format: "%3.0f%%", fraction * 100)
            + " \(bytes(offset)) of \(bytes(size)), " + String(format: "%.1f M events", Double(events) / 1e6)
        if fraction > 0.01 && fraction < 1 {
            let left = Double(elapsedNs) / 1e9 * (1 - fraction) / fraction
            line += String(format: ", %.0f s left", left.rounded(.up))
        }
        return line
    }

    static func bytes(_ n: Int) -> String {
        let d = Double(n)
        if n >= 1 << 30 { return String(format: "%.1f GiB", d / Double(1 << 30)) }
        if n >= 1 << 20 { return String(format: "%.1f MiB", d / Double(1 << 20)) }
        return String(format: "%.0f KiB", d / 1024)
    }
}
