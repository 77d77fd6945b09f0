import Foundation
import XCTest

/// A real libvirtd of the test's own (scripts/private-libvirtd.sh): Debian's daemon in a mount
/// namespace where /etc/libvirt, /run/libvirt, ... are folders of the test, started by the
/// test and stopped at its end, since these machines have no systemd to start one.
///
/// virsh and the tools under test run in its namespace (`inNamespace`), where libvirt's files
/// are at their usual paths (/run/libvirt/qemu/NAME.pid); outside they are under `dir/run`.
final class PrivateLibvirtd: @unchecked Sendable {
    static let script = Harness.repo.appendingPathComponent("scripts/private-libvirtd.sh").path
    static let tools = ["/usr/sbin/libvirtd": "libvirt-daemon", "/usr/bin/virsh": "libvirt-clients",
                        "/usr/bin/unshare": "util-linux", "/usr/bin/nsenter": "util-linux"]
    static let qemuDriver = "/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"

    let dir: URL
    private let daemon = Process()
    private let log: URL

    /// libvirtd's pid, whose mount namespace the tools enter.
    var pid: Int32 { daemon.processIdentifier }

    /// Skips (or fails under CI) unless libvirt's daemon, its QEMU driver and virsh are installed.
    static func require() throws {
        var missing = tools.filter { !FileManager.default.isExecutableFile(atPath: $0.key) }.map { "\($0.key) (\($0.value))" }
        if !FileManager.default.fileExists(atPath: qemuDriver) { missing.append("\(qemuDriver) (libvirt-daemon-driver-qemu)") }
        guard !missing.isEmpty else { return }
        throw Harness.unavailable("libvirt is not installed: no \(missing.sorted().joined(separator: ", ")) (scripts/testbed.sh --deps installs them)")
    }

    /// Starts the daemon with its files in `dir` and waits until virsh reaches it.
    init(dir: URL) throws {
        self.dir = dir
        log = dir.appendingPathComponent("libvirtd.log")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: log.path, contents: nil)
        daemon.executableURL = URL(fileURLWithPath: Self.script)
        daemon.arguments = [dir.path]
        daemon.standardOutput = try FileHandle(forWritingTo: log)
        daemon.standardError = daemon.standardOutput
        try daemon.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if daemon.isRunning, FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/libvirt-sock").path),
               (try? virsh(["list", "--all"]).status) == 0 { return }
            if !daemon.isRunning { break }
            usleep(100_000)
        }
        stop()
        throw LibvirtError(message: "libvirtd did not come up within 30 s: \(messages)")
    }

    /// What the daemon logged (its errors about dnsmasq, D-Bus and DMI on these machines are harmless).
    var messages: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// `nsenter` arguments that run `path args` in the daemon's namespace.
    func inNamespace(_ path: String, _ args: [String]) -> [String] {
        ["-t", String(pid), "-m", "--", path] + args
    }

    /// Runs virsh on the daemon (qemu:///system, in its namespace).
    @discardableResult
    func virsh(_ args: [String]) throws -> Harness.Result {
        try Harness.run("/usr/bin/nsenter", inNamespace("/usr/bin/virsh", ["-q", "-c", "qemu:///system"] + args))
    }

    /// A file libvirt keeps for a running domain (`NAME.pid`, `NAME.xml`), as seen from outside.
    func runFile(_ name: String) -> URL { dir.appendingPathComponent("run/qemu/\(name)") }

    /// SIGTERM, and SIGKILL if it has not exited after 15 s. libvirtd leaves its domains running:
    /// destroy them first.
    func stop() {
        guard daemon.isRunning else { return }
        daemon.terminate()
        let deadline = Date().addingTimeInterval(15)
        while daemon.isRunning && Date() < deadline { usleep(100_000) }
        if daemon.isRunning { kill(pid, SIGKILL); daemon.waitUntilExit() }
    }

    struct LibvirtError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
