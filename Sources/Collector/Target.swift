import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
    private var gate: Int32 = -1

    /// Finds a running process.
    static func attach(pid: Int32) throws -> Target {
        guard kill(pid, 0) == 0 || errno == EPERM else { throw CollectorError.noSuchProcess(pid) }
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
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw CollectorError.spawnFailed(String(cString: strerror(errno))) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 3)
        posix_spawn_file_actions_addclose(&actions, fds[1])
        let script = "read -r _ <&3; exec 3<&-; exec \"$0\" \"$@\""
        let argv = ["/bin/sh", "-c", script, path] + command.dropFirst()
        var cargs = argv.map { strdup($0) } + [nil]
        defer { cargs.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &actions, nil, &cargs, environ)
        close(fds[0])
        guard rc == 0 else {
            close(fds[1])
            throw CollectorError.spawnFailed(String(cString: strerror(rc)))
        }
        var t = Target(pid: pid, binaryForProbes: path, binaryPath: path, command: command, mode: "spawn")
        t.gate = fds[1]
        return t
    }

    /// Lets a spawned command run.
    mutating func release() {
        guard gate >= 0 else { return }
        _ = "go\n".withCString { write(gate, $0, 3) }
        close(gate)
        gate = -1
    }

    /// Whether the target has exited (reaping it when the collector started it).
    func hasExited() -> Bool {
        if mode == "spawn" {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            return r == pid || (r < 0 && errno == ECHILD)
        }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    private static func resolve(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}
