import Foundation
import XCTest

/// A qemu-io that runs idle until `go` exists, then does `commands` and exits: a target to attach to.
struct IdleTarget {
    var shell: Process
    var pid: Int32
    var go: String

    func release() { FileManager.default.createFile(atPath: go, contents: Data()) }
}

extension XCTestCase {
    /// Starts a qemu-io on a fresh image in `dir` that waits, open and idle, until released.
    func idleQemuIO(_ dir: URL, commands: [String] = ["write 0 4k", "flush", "write 64k 4k", "flush"]) throws -> IdleTarget {
        let image = try Harness.makeImage(dir, name: "idle-\(UUID().uuidString.prefix(6)).qcow2")
        let go = dir.appendingPathComponent("go-\(UUID().uuidString.prefix(6))").path
        let pidFile = go + ".pid"
        let input = commands.map { $0 + "\\n" }.joined() + "quit\\n"
        let script = "(while [ ! -e '\(go)' ]; do sleep 0.05; done; printf '\(input)') | '\(Harness.qemuIO)' -f qcow2 -t writeback '\(image)' >/dev/null & echo $! > '\(pidFile)'; wait"
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", script]
        try shell.run()
        addTeardownBlock {
            FileManager.default.createFile(atPath: go, contents: Data())
            shell.waitUntilExit()
        }
        var pid: Int32?
        let deadline = Date().addingTimeInterval(30)
        while pid == nil && Date() < deadline {
            pid = Int32(((try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines))
            if pid == nil { usleep(50_000) }
        }
        return IdleTarget(shell: shell, pid: try XCTUnwrap(pid, "qemu-io did not start"), go: go)
    }
}
