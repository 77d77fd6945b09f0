import Foundation
import XCTest

/// A real QEMU 7.2 system emulator running the busybox test guest (scripts/guest/init.sh).
///
/// The guest says SYNCAMP-READY on its serial console, waits for a line, runs
/// its workload, says SYNCAMP-DONE with the fsyncs it issued, waits for another
/// line and powers off; so a test can attach the collector to a running VM,
/// let the guest work, detach while the guest still runs, and then let it go.
final class TestVM: @unchecked Sendable {
    struct Disk {
        var path: String
        var id: String
        var iothread = false
        /// Defined as libvirt does: two -blockdev JSON nodes (`libvirt-N-storage`, `libvirt-N-format`)
        /// and a JSON -device naming the format node, with `id` as the device's id.
        var libvirtShape = false
    }

    static var qemu: String { Harness.testbedBin.appendingPathComponent("qemu-system-x86_64").path }
    /// QEMU 10.0's system emulator, with symbols.
    static var qemu10: String { Harness.repo.appendingPathComponent(".testbed/qemu-10.0/bin/qemu-system-x86_64").path }
    static var guest: URL { Harness.repo.appendingPathComponent(".testbed/guest") }

    let process = Process()
    private let input = Pipe()
    private let console = OutputBuffer()

    var pid: Int32 { process.processIdentifier }

    /// Skips (or fails under CI) unless the system emulator and the guest are built.
    static func require() throws {
        try Harness.requireTracing()
        let missing = [qemu, guest.appendingPathComponent("vmlinuz").path, guest.appendingPathComponent("initrd.gz").path]
            .filter { !FileManager.default.fileExists(atPath: $0) }
        guard !missing.isEmpty else { return }
        let reason = "the VM testbed is missing \(missing.joined(separator: ", ")) (root/testbed: run scripts/testbed.sh)"
        throw Harness.unavailable(reason)
    }

    /// - Parameter qemu: the system emulator (the testbed's QEMU 7.2 by default).
    init(disks: [Disk], workload: String, n: Int, qemu: String = TestVM.qemu) throws {
        // TCG by default: KVM inside these VMs is there but hangs the guest. SYNCAMP_VM_ACCEL=kvm where it works.
        let accel = ProcessInfo.processInfo.environment["SYNCAMP_VM_ACCEL"] ?? "tcg"
        var args = ["-L", Self.guest.appendingPathComponent("fw").path, "-accel", accel,
                    "-m", "256", "-nographic", "-no-reboot", "-vga", "none", "-nic", "none",
                    "-kernel", Self.guest.appendingPathComponent("vmlinuz").path,
                    "-initrd", Self.guest.appendingPathComponent("initrd.gz").path,
                    "-append", "console=ttyS0 quiet panic=-1 syncamp.workload=\(workload) syncamp.n=\(n) syncamp.disks=\(disks.count)"]
        if disks.contains(where: \.iothread) { args += ["-object", "iothread,id=io0"] }
        for (n, d) in disks.enumerated() {
            if d.libvirtShape {
                let node = "libvirt-\(n + 1)"
                // As libvirt 9.0 (Debian 12) writes them for a <disk> without <driver cache=...>
                // (LibvirtTests runs the real one): -device in JSON too.
                args += ["-blockdev", #"{"driver":"file","filename":"\#(d.path)","node-name":"\#(node)-storage","auto-read-only":true,"discard":"unmap"}"#,
                         "-blockdev", #"{"node-name":"\#(node)-format","read-only":false,"driver":"qcow2","file":"\#(node)-storage","backing":null}"#,
                         "-device", #"{"driver":"virtio-blk-pci","drive":"\#(node)-format","id":"\#(d.id)","bootindex":1"#
                            + (d.iothread ? #","iothread":"io0"}"# : "}")]
                continue
            }
            args += ["-drive", "file=\(d.path),format=qcow2,if=none,id=\(d.id),cache=writeback,aio=threads",
                     "-device", "virtio-blk-pci,drive=\(d.id)" + (d.iothread ? ",iothread=io0" : "")]
        }
        process.executableURL = URL(fileURLWithPath: qemu)
        process.arguments = args
        process.standardInput = input
        process.standardOutput = console.pipe
        process.standardError = console.pipe
        try process.run()
    }

    deinit {
        if process.isRunning { process.terminate() }
        console.stop()
    }

    /// Everything the VM printed so far.
    var output: String { console.text }

    /// Waits for a console line containing `marker` and returns it.
    func waitFor(_ marker: String, timeout: TimeInterval = 180) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            // Whole lines only: the console may have delivered half of the marker's line so far.
            // (The serial console ends lines with "\r\n", one Character: split on isNewline.)
            let text = output
            var lines = text.split(whereSeparator: \.isNewline)
            if let last = text.last, !last.isNewline, !lines.isEmpty { lines.removeLast() }
            if let line = lines.first(where: { $0.contains(marker) }) { return String(line) }
            if !process.isRunning { break }
            usleep(100_000)
        }
        throw VMError(message: "no \(marker) from the guest within \(Int(timeout)) s; console:\n\(output.suffix(3000))")
    }

    /// Types a line on the guest's console.
    func send(_ line: String) { input.fileHandleForWriting.write(Data((line + "\n").utf8)) }

    /// Lets the guest power off and waits for QEMU to exit.
    func finish() {
        send("bye")
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline { usleep(100_000) }
        if process.isRunning { process.terminate() }
    }

    struct VMError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

/// A background process whose stderr is collected (collector, strace).
final class Background: @unchecked Sendable {
    let process = Process()
    private let err = OutputBuffer()

    init(_ path: String, _ args: [String]) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = args
        process.standardError = err.pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    var stderr: String { err.text }

    /// strace counting fdatasync/fsync into `log`, attached to every thread `pid` has now and
    /// (-f) every thread they create; waits half a second for it to attach (asynchronously).
    static func straceSyncs(of pid: Int32, log: String) throws -> Background {
        let tids = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        let strace = try Background("/usr/bin/strace", ["-f", "-qq", "-e", "trace=fdatasync,fsync", "-o", log]
                                    + tids.flatMap { ["-p", $0] })
        usleep(500_000)
        return strace
    }

    func waitFor(_ marker: String, timeout: TimeInterval = 60) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if stderr.contains(marker) { return true }
            if !process.isRunning { return stderr.contains(marker) }
            usleep(50_000)
        }
        return false
    }

    /// SIGINT, then waits for the exit; returns the exit status.
    func interrupt() -> Int32 {
        if process.isRunning { process.interrupt() }
        process.waitUntilExit()
        err.stop()
        return process.terminationStatus
    }
}

/// A pipe whose output is collected as it comes, readable at any time.
final class OutputBuffer: @unchecked Sendable {
    let pipe = Pipe()
    private let lock = NSLock()
    private var buffer = ""

    init() {
        pipe.fileHandleForReading.readabilityHandler = { [weak self] h in
            let data = h.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock()
            self.buffer += String(decoding: data, as: UTF8.self)
            self.lock.unlock()
        }
    }

    /// Everything read so far.
    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return buffer
    }

    func stop() { pipe.fileHandleForReading.readabilityHandler = nil }
}
