import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `collector` that `analyzer live` starts, with its output kept for the screen and for errors.
final class CollectorProcess: @unchecked Sendable {
    private let process = Process()
    private let lock = NSLock()
    private var lines: [String] = []
    private var reader: Thread?
    private let pipe = Pipe()

    /// Starts `collector ARGS`, its stdout and stderr (and the traced command's) going to a pipe read here.
    init(executable: String, arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = pipe
        process.standardError = pipe
        // Not the terminal: the summary owns it, and a traced command that touched it (qemu-io sets
        // terminal modes) would be stopped by SIGTTOU with its whole process group, collector included.
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw LiveError("cannot start \(executable): \(error.localizedDescription)")
        }
        let handle = pipe.fileHandleForReading
        let thread = Thread { [self] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending += chunk
                while let nl = pending.firstIndex(of: 10) {
                    let line = String(decoding: pending[pending.startIndex..<nl], as: UTF8.self)
                    pending = pending[(nl + 1)...]
                    append(line)
                }
            }
            if !pending.isEmpty { append(String(decoding: pending, as: UTF8.self)) }
        }
        thread.start()
        reader = thread
    }

    var isRunning: Bool { process.isRunning }
    var exitCode: Int32 { process.terminationStatus }

    /// Asks the collector to stop as Ctrl-C does: it detaches and writes its trailer.
    func interrupt() { if process.isRunning { kill(process.processIdentifier, SIGINT) } }

    /// Waits for it to exit and for its last output.
    func wait() {
        process.waitUntilExit()
        while let r = reader, !r.isFinished { usleep(10_000) }
    }

    /// The last `n` lines it printed.
    func lastLines(_ n: Int) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        return Array(lines.suffix(n))
    }

    /// Every line it printed (kept up to 10,000).
    var output: [String] { lastLines(10_000) }

    private func append(_ line: String) {
        lock.lock()
        lines.append(line)
        if lines.count > 20_000 { lines.removeFirst(10_000) }
        lock.unlock()
    }

    /// The collector beside this analyzer, else the first on PATH.
    static func locate() -> String? {
        let own = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [Bundle.main.executableURL?.deletingLastPathComponent(), own]
            .compactMap { $0?.appendingPathComponent("collector").path }
        for c in candidates where access(c, X_OK) == 0 { return c }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let c = "\(dir)/collector"
            if access(c, X_OK) == 0 { return c }
        }
        return nil
    }
}

/// Why `live` or `replay` could not go on: one sentence for the user.
struct LiveError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
