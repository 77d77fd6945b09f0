import Foundation
import SyncampCapture
import SyncampELF
import XCTest

/// Stripped QEMU binaries: symbols from --symbols, from a debug file found as GDB finds it,
/// or from given offsets, give the same report as the unstripped binary.
final class SymbolsEndToEndTests: XCTestCase {
    static let commands = ["write 0 4k", "flush", "write 64k 4k", "flush"]

    /// What must not depend on where the symbols came from: totals, causes, and each op's kind and causes.
    struct Summary: Equatable {
        var hostSyncs: Int
        var causes: [String: Int]
        var ops: [String]
    }

    static func summary(_ report: [String: Any]) -> Summary {
        let ops = report.array("ops").map { op -> String in
            let causes = (op["causes"] as? [String: Int] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            return "\(op["kind"] ?? "?") \(causes.joined(separator: ","))"
        }
        return Summary(hostSyncs: report.int("totals.host_fdatasyncs") ?? -1, causes: report["causes"] as? [String: Int] ?? [:], ops: ops)
    }

    /// A stripped copy of the testbed's qemu-io (no .symtab), its debug file, and a copy with a .gnu_debuglink to it.
    struct Stripped {
        var bare: String
        var linked: String
        var debug: String
    }

    static func strip(into dir: URL) throws -> Stripped {
        let s = Stripped(bare: dir.appendingPathComponent("qemu-io.bare").path,
                         linked: dir.appendingPathComponent("bin/qemu-io").path,
                         debug: dir.appendingPathComponent("qemu-io.debug").path)
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("bin/.debug"), withIntermediateDirectories: true)
        for args in [["--only-keep-debug", Harness.qemuIO, s.debug],
                     ["--strip-all", Harness.qemuIO, s.bare],
                     ["--strip-all", "--add-gnu-debuglink=\(s.debug)", Harness.qemuIO, s.linked]] {
            let r = try Harness.run("/usr/bin/objcopy", args)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        XCTAssertFalse(try ELFFile(path: s.bare).hasSymtab)
        return s
    }

    /// Traces the workload on a fresh image with `binary` and returns the report and the collector's stderr.
    func trace(_ dir: URL, binary: String, extra: [String] = []) throws -> (report: [String: Any], stderr: String, capture: String) {
        let img = try Harness.makeImage(dir, name: "img-\(UUID().uuidString.prefix(8)).qcow2")
        let capture = dir.appendingPathComponent("run-\(UUID().uuidString.prefix(8)).syncamp").path
        let c = try Harness.run(Harness.collector, ["-o", capture] + extra + ["--", binary]
                                + Harness.qemuIOArgs(cache: "writeback", commands: Self.commands, image: img))
        XCTAssertEqual(c.status, 0, c.stderr)
        return (try Harness.report(capture), c.stderr, capture)
    }

    func testSymbolsFromACopyOrADebugFileGiveTheUnstrippedReport() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let s = try Self.strip(into: dir)
        let unstripped = try trace(dir, binary: Harness.qemuIO)
        let expected = Self.summary(unstripped.report)
        XCTAssertEqual(expected.hostSyncs, 7)

        // No symbols at all: refused, naming where a debug file was looked for.
        let none = try Harness.run(Harness.collector, ["-o", dir.appendingPathComponent("none.syncamp").path,
                                                       "--debug-dir", dir.appendingPathComponent("nowhere").path, "--", s.bare, "-c", "quit"])
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("No debug file was found (looked for \(dir.path)/nowhere/.build-id/"), none.stderr)

        for symbols in [Harness.qemuIO, s.debug] {
            let run = try trace(dir, binary: s.bare, extra: ["--symbols", symbols])
            XCTAssertEqual(Self.summary(run.report), expected, "--symbols \(symbols)")
            XCTAssertTrue(run.stderr.contains("symbols from \(symbols) (--symbols"), run.stderr)
            // The same probes at the same offsets, and the coroutine read from the same TLS slot.
            let a = try CaptureReader(path: unstripped.capture).manifest, b = try CaptureReader(path: run.capture).manifest
            XCTAssertEqual(b.probes.map(\.fileOffset), a.probes.map(\.fileOffset))
            XCTAssertEqual(b.coroutineSource, a.coroutineSource)
            XCTAssertEqual(b.target.symbols, "\(symbols) (--symbols)")
        }
    }

    func testADebugFileIsFoundByBuildIDOrDebugLink() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let s = try Self.strip(into: dir)
        let expected = Self.summary(try trace(dir, binary: Harness.qemuIO).report)

        // build-id: DIR/.build-id/xx/rest.debug under --debug-dir.
        let id = try XCTUnwrap(try ELFFile(path: s.bare).buildID)
        let debugRoot = dir.appendingPathComponent("debug")
        let byID = debugRoot.appendingPathComponent(".build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug")
        try FileManager.default.createDirectory(at: byID.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: s.debug, toPath: byID.path)
        let viaID = try trace(dir, binary: s.bare, extra: ["--debug-dir", debugRoot.path])
        XCTAssertEqual(Self.summary(viaID.report), expected)
        XCTAssertTrue(viaID.stderr.contains("symbols from \(byID.path) (build-id"), viaID.stderr)

        // .gnu_debuglink: the named file in the binary's .debug folder.
        let inDotDebug = dir.appendingPathComponent("bin/.debug/qemu-io.debug").path
        try FileManager.default.moveItem(atPath: s.debug, toPath: inDotDebug)
        let viaLink = try trace(dir, binary: s.linked, extra: ["--debug-dir", dir.appendingPathComponent("nowhere").path])
        XCTAssertEqual(Self.summary(viaLink.report), expected)
        XCTAssertTrue(viaLink.stderr.contains("symbols from \(inDotDebug) (gnu_debuglink"), viaLink.stderr)
    }

    func testSymbolsOfAnotherBuildAreRefused() throws {
        try Harness.requireTracing()
        guard FileManager.default.fileExists(atPath: Harness.stockQemuIO) else {
            throw Harness.unavailable("no stock qemu-io to stand for another build (scripts/testbed.sh installs qemu-utils)")
        }
        let dir = try Harness.tempDir(self)
        let out = dir.appendingPathComponent("x.syncamp").path
        let r = try Harness.run(Harness.collector, ["-o", out, "--symbols", Harness.stockQemuIO, "--", Harness.qemuIO, "-c", "quit"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("wrong offsets"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testGivenOffsetsTraceABinaryWithNoSymbolsAtAll() throws {
        try Harness.requireTracing()
        let dir = try Harness.tempDir(self)
        let s = try Self.strip(into: dir)
        let unstripped = try trace(dir, binary: Harness.qemuIO)
        // The offsets as `nm` and the segments give them: here from the unstripped run's manifest,
        // and qemu_coroutine_switch (the coroutine source without a symbol table) from the debug file.
        let manifest = try CaptureReader(path: unstripped.capture).manifest
        var offsets = manifest.probes.map { "\($0.symbol)=\(s.bare):0x\(String($0.fileOffset, radix: 16))" }
        let debug = try ELFFile(path: s.debug), bare = try ELFFile(path: s.bare)
        let sw = try XCTUnwrap(debug.function(named: "qemu_coroutine_switch"))
        offsets.append("qemu_coroutine_switch=0x\(String(try XCTUnwrap(bare.fileOffset(forAddress: sw.address)), radix: 16))")
        let run = try trace(dir, binary: s.bare, extra: ["--debug-dir", dir.appendingPathComponent("nowhere").path]
                            + offsets.flatMap { ["--offset", $0] })
        XCTAssertTrue(run.stderr.contains("probes at given offsets: "), run.stderr)
        XCTAssertEqual(Self.summary(run.report).causes, Self.summary(unstripped.report).causes)
        XCTAssertEqual(Self.summary(run.report).hostSyncs, 7)
        let m = try CaptureReader(path: run.capture).manifest
        XCTAssertEqual(m.coroutineSource, "uprobe qemu_coroutine_switch (no TLS symbol, and qemu_coroutine_self's code did not give it)")
        XCTAssertEqual(Set(m.probes.map(\.table)), ["given"])

        // An offset outside the binary, or a name syncamp does not probe, is refused with the reason.
        let bad = try Harness.run(Harness.collector, ["-o", dir.appendingPathComponent("b.syncamp").path,
                                                      "--offset", "qcow2_cache_write=0xffffffff0", "--", s.bare, "-c", "quit"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("not a file offset inside a loaded segment"), bad.stderr)
        let name = try Harness.run(Harness.collector, ["-o", dir.appendingPathComponent("n.syncamp").path,
                                                       "--offset", "main=0x1000", "--", s.bare, "-c", "quit"])
        XCTAssertEqual(name.status, 1)
        XCTAssertTrue(name.stderr.contains("main is not a function syncamp probes"), name.stderr)
    }
}
