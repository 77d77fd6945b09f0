import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SyncampSystem
import SystemPackage

/// The process being traced: found by pid, or started by the collector behind a gate.
struct Target {
    var pid: Int32
    /// How the collector reads and attaches to the binary (/proc/PID/exe, or the resolved command path).
    var binaryForProbes: String
    /// The binary's path as the target sees it, for the manifest.
    var binaryPath: String
    var command: [String]
    var mode: String
    /// Write end of the gate pipe of a spawned target; closing it lets the command exec.
    private var gate: FileDescriptor?

    /// Finds a running process.
    static func attach(pid: Int32) throws -> Target {
        do {
            try SystemCall.kill(pid, 0)
        } catch Errno.notPermitted {
            // It exists; whether it can be traced is for the probes to find out.
        } catch {
            throw CollectorError.noSuchProcess(pid)
        }
        let exe = "/proc/\(pid)/exe"
        guard let path = try? FileManager.default.destinationOfSymbolicLink(atPath: exe) else {
            throw CollectorError.cannotReadBinary("cannot read \(exe): the process may have exited, or its binary is not readable")
        }
        let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        let command = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return Target(pid: pid, binaryForProbes: exe, binaryPath: path, command: command, mode: "attach")
    }

    /// Starts `command` stopped at a gate: a shell that waits on a pipe, then execs the command.
    ///
    /// Uprobes are registered on the binary's inode and filtered by pid, so
    /// attaching them before the exec traces the command from its first instruction.
    static func spawn(command: [String]) throws -> Target {
        guard let name = command.first else { throw CollectorError.usage("no command given after --") }
        guard let path = resolve(name) else {
            throw CollectorError.spawnFailed("\(name) not found in PATH")
        }
        let gate: (readEnd: FileDescriptor, writeEnd: FileDescriptor)
        do { gate = try FileDescriptor.pipe() } catch { throw CollectorError.spawnFailed("\(error)") }
        // posix_spawn stays our own: the gate must be the child's fd 3, which neither swift-system
        // nor swift-subprocess (which only sets up fds 0-2) can arrange.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, gate.readEnd.rawValue, 3)
        posix_spawn_file_actions_addclose(&actions, gate.writeEnd.rawValue)
        let script = "read -r _ <&3; exec 3<&-; exec \"$0\" \"$@\""
        let argv = ["/bin/sh", "-c", script, path] + command.dropFirst()
        var cargs = argv.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, nil, &cargs, environ)
        try? gate.readEnd.close()
        guard rc == 0 else {
            try? gate.writeEnd.close()
            throw CollectorError.spawnFailed("\(Errno(rawValue: rc))")
        }
        var t = Target(pid: pid, binaryForProbes: path, binaryPath: path, command: command, mode: "spawn")
        t.gate = gate.writeEnd
        return t
    }

    /// Lets a spawned command run.
    mutating func release() {
        guard let gate else { return }
        // A shell that already died just finds the pipe closed: its exit is noticed as the target's.
        _ = try? gate.writeAll("go\n".utf8)
        try? gate.close()
        self.gate = nil
    }

    /// Whether the target has exited (reaping it when the collector started it).
    func hasExited() -> Bool {
        if mode == "spawn" {
            do { return try SystemCall.reapIfExited(pid) } catch { return error == .noChildProcess }
        }
        do { try SystemCall.kill(pid, 0) } catch { return error == .noSuchProcess }
        return false
    }

    private static func resolve(_ name: String) -> String? {
        if name.contains("/") { return SystemCall.isExecutable(name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if SystemCall.isExecutable(candidate) { return candidate }
        }
        return nil
    }
}
