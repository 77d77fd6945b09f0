import Dispatch
import Foundation
import Subprocess
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The `collector` that `analyzer live` starts, with its output kept for the screen and for errors.
///
/// swift-subprocess runs it on a task: its stdout and stderr (and the traced command's) come
/// back as one stream of lines, and its exit status when it has exited and said everything.
/// `live` polls it from its own loop, so this type keeps what the task learns behind a lock.
final class CollectorProcess: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    /// Sends a signal to the collector while it runs (nil before it starts and after its output ends).
    private var signalSender: (@Sendable (Signal) -> Void)?
    private var status: TerminationStatus?
    private var failure: (any Error)?
    private var spawned = false
    private let ended = DispatchSemaphore(value: 0)

    /// Starts `collector ARGS`, its stdout and stderr (and the traced command's) going to a pipe read here.
    init(executable: String, arguments: [String]) throws {
        var options = PlatformOptions()
        // Its own process group, as Foundation's Process gave it: Ctrl-C reaches the analyzer
        // alone, which forwards it (interrupt()), and the traced command, which qemu-io makes
        // touch the terminal, is stopped by nothing.
        options.processGroupID = 0
        let started = DispatchSemaphore(value: 0)
        Task.detached { [self] in
            do {
                // Not the terminal for stdin (.none is /dev/null): the summary owns it, and a traced
                // command that touched it (qemu-io sets terminal modes) would be stopped by SIGTTOU with
                // its whole process group, collector included.
                let result = try await Subprocess.run(
                    .path(FilePath(executable)), arguments: Arguments(arguments), platformOptions: options,
                    input: .none, output: .sequence, error: .combinedWithOutput
                ) { execution in
                    self.running { signal in try? execution.send(signal: signal) }
                    self.lock.withLock { self.spawned = true }
                    started.signal()
                    defer { self.running(nil) }
                    for try await line in execution.standardOutput.strings(bufferingPolicy: .unbounded) {
                        self.append(line)
                    }
                }
                lock.withLock { status = result.terminationStatus }
            } catch {
                lock.withLock { failure = error }
                started.signal()
            }
            ended.signal()
        }
        started.wait()
        if let failure = lock.withLock({ spawned ? nil : failure }) {
            throw LiveError("cannot start \(executable): \(failure)")
        }
    }

    /// Whether it still runs (or has output not yet read).
    var isRunning: Bool { lock.withLock { status == nil && failure == nil } }

    /// Its exit code once it has ended (128 + N when signal N ended it, as a shell says).
    var exitCode: Int32 {
        lock.withLock {
            switch status {
            case let .exited(code)?: return code
            case let .signaled(signal)?: return 128 + signal
            case nil: return failure == nil ? 0 : 1
            }
        }
    }

    /// How it ended, for messages: "status 1", "signal 9", or why it could not be watched.
    var exitDescription: String {
        lock.withLock {
            switch status {
            case let .exited(code)?: return "status \(code)"
            case let .signaled(signal)?: return "signal \(signal)"
            case nil: return failure.map { "an error watching it: \($0)" } ?? "still running"
            }
        }
    }

    /// Asks the collector to stop as Ctrl-C does: it detaches and writes its trailer.
    func interrupt() { lock.withLock { signalSender }?(.interrupt) }

    /// Waits for it to exit and for its last output.
    func wait() {
        ended.wait()
        ended.signal()
    }

    /// The last `n` lines it printed.
    func lastLines(_ n: Int) -> [String] {
        lock.withLock { Array(lines.suffix(n)) }
    }

    /// Every line it printed (kept up to 10,000).
    var output: [String] { lastLines(10_000) }

    private func running(_ sender: (@Sendable (Signal) -> Void)?) {
        lock.withLock { signalSender = sender }
    }

    private func append(_ line: String) {
        lock.withLock {
            lines.append(line)
            if lines.count > 20_000 { lines.removeFirst(10_000) }
        }
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
