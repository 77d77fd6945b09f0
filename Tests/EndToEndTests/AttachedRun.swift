import Foundation
import XCTest

extension Harness {
    /// Starts qemu-io idle on `args` (its output and errors go to `qemu-io.out` in `dir`, a
    /// writable regular file as a user's redirection makes; its commands come from a pipe that stays empty until the
    /// collector has attached), attaches the collector with `-p`, lets the commands run, and
    /// returns the JSON report of the capture and what the collector said on stderr.
    static func traceAttached(_ dir: URL, args: [String], commands: [String],
                              file: StaticString = #filePath, line: UInt = #line) throws -> (json: [String: Any], said: String, pid: Int32) {
        let capture = dir.appendingPathComponent("attach-\(UUID().uuidString.prefix(8)).syncamp").path
        let go = dir.appendingPathComponent("go").path
        let pidFile = dir.appendingPathComponent("pid").path
        let quoted = args.map { "'\($0)'" }.joined(separator: " ")
        let script = """
            (while [ ! -e '\(go)' ]; do sleep 0.05; done; printf '\((commands + ["quit"]).joined(separator: "\\n"))\\n') \
              | '\(qemuIO)' \(quoted) > '\(dir.appendingPathComponent("qemu-io.out").path)' 2>&1 & echo $! > '\(pidFile)'; wait
            """
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", script]
        try shell.run()
        defer { if shell.isRunning { shell.terminate() } }
        var pidText = ""
        let deadline = Date().addingTimeInterval(30)
        while pidText.isEmpty && Date() < deadline {
            pidText = ((try? String(contentsOfFile: pidFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if pidText.isEmpty { usleep(50_000) }
        }
        let qemuPid = try XCTUnwrap(Int32(pidText), "qemu-io did not start", file: file, line: line)

        let collector = Process()
        collector.executableURL = URL(fileURLWithPath: Harness.collector)
        collector.arguments = ["-p", String(qemuPid), "-o", capture]
        let err = Pipe()
        collector.standardError = err
        try collector.run()
        defer { if collector.isRunning { collector.interrupt() } }
        // Wait until the probes are attached: the collector says so on stderr.
        var said = ""
        while !said.contains("fdatasync/fsync traced"), collector.isRunning || !said.isEmpty, Date() < deadline {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            said += String(decoding: chunk, as: UTF8.self)
        }
        XCTAssertTrue(FileManager.default.createFile(atPath: go, contents: Data()), file: file, line: line)
        shell.waitUntilExit()
        collector.waitUntilExit()
        XCTAssertEqual(collector.terminationStatus, 0, file: file, line: line)
        return (try report(capture), said, qemuPid)
    }
}
