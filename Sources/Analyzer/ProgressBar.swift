import ArgumentParser
import Foundation
import SyncampAnalysis
import SyncampCapture
#if canImport(Glibc)
import Glibc
#endif

/// `--progress`: a progress bar on stderr for reads that take a while.
struct ProgressOption: ParsableArguments {
    enum Mode: String, ExpressibleByArgument, CaseIterable {
        /// On a terminal, once a read has taken more than 2 s.
        case auto
        /// From the start, on a terminal or not (a line per update when not).
        case always
        case never
    }

    @Option(help: "Progress bar on stderr: auto (on a terminal, for reads longer than 2 s), always or never.")
    var progress: Mode = .auto

    /// The reporter for one capture, or nil when there is nothing to show.
    func bar(for path: String) -> ProgressBar? {
        progress == .never ? nil : ProgressBar(path: path, mode: progress)
    }
}

/// Draws the progress of a capture read on stderr, at most a few times a second.
final class ProgressBar {
    private let path: String
    private let mode: ProgressOption.Mode
    private let terminal = isatty(STDERR_FILENO) != 0
    private let start = CaptureClock.monotonicNs()
    private var lastDrawn: UInt64 = 0
    private var shown = false

    init(path: String, mode: ProgressOption.Mode) {
        self.path = path
        self.mode = mode
    }

    /// Called by `Analysis.run` every 65,536 records.
    func update(offset: Int, size: Int, events: UInt64) {
        let now = CaptureClock.monotonicNs()
        if mode == .auto && (!terminal || now - start < 2_000_000_000) { return }
        guard !shown || now - lastDrawn >= 250_000_000 else { return }
        draw(LiveSummary.readingLine(path: path, offset: offset, size: size, events: events, elapsedNs: now - start))
        lastDrawn = now
    }

    /// Shows 100% (when the bar was shown or asked for always) and ends the line.
    func done(size: Int, events: UInt64) {
        guard shown || mode == .always else { return }
        draw(LiveSummary.readingLine(path: path, offset: size, size: size, events: events, elapsedNs: CaptureClock.monotonicNs() - start))
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func draw(_ line: String) {
        shown = true
        FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
    }
}
