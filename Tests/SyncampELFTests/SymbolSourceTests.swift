import Foundation
import SyncampELF
import XCTest

/// Symbols of a stripped program from its debug file, found as GDB finds it, at the offsets binutils gives.
final class SymbolSourceTests: XCTestCase {
    private var fixture: CompiledFixture!
    private var dir: URL!

    override func setUpWithError() throws {
        fixture = try compiledFixture.get()
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("syncamp-symsrc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: dir)
    }

    func testAStaticFunctionOfAStrippedProgramResolvesThroughItsDebugFile() throws {
        let stripped = try ELFFile(path: fixture.stripped)
        let debug = dir.appendingPathComponent("prog.debug").path
        try ToolRunner.run("objcopy", ["--only-keep-debug", fixture.program, debug])
        let source = SymbolSource(binary: stripped, symbols: try ELFFile(path: debug), symbolsOrigin: "--symbols")
        XCTAssertNil(SymbolSource(binary: stripped).function(named: "syncamp_static"))
        let found = try XCTUnwrap(source.function(named: "syncamp_static"))
        let oracle = BinutilsOracle(path: fixture.program)
        XCTAssertEqual(found.symbol.address, try oracle.address(of: "syncamp_static"))
        XCTAssertEqual(found.fileOffset, try oracle.fileOffset(of: found.symbol.address))
        XCTAssertEqual(found.symbol.table, .symtab)
        XCTAssertTrue(source.hasSymtab)
    }

    func testAGivenOffsetWinsAndMapsBackToItsAddress() throws {
        let stripped = try ELFFile(path: fixture.stripped)
        let oracle = BinutilsOracle(path: fixture.program)
        let address = try XCTUnwrap(try oracle.address(of: "syncamp_static"))
        let offset = try XCTUnwrap(try oracle.fileOffset(of: address))
        let source = SymbolSource(binary: stripped, givenOffsets: ["syncamp_static": offset])
        let found = try XCTUnwrap(source.function(named: "syncamp_static"))
        XCTAssertEqual(found.fileOffset, offset)
        XCTAssertEqual(found.symbol.address, address)
        XCTAssertEqual(found.symbol.table, .given)
        XCTAssertEqual(stripped.address(forFileOffset: offset), address)
        XCTAssertNil(stripped.address(forFileOffset: 1 << 40))
    }

    func testTheLocatorLooksWhereGDBLooksAndChecksTheBuildID() throws {
        let linked = try ELFFile(path: fixture.debugLinked)
        let id = try XCTUnwrap(linked.buildID)
        let root = dir.appendingPathComponent("debug").path
        let binaryPath = dir.appendingPathComponent("bin/prog-debuglink").path
        let candidates = DebugFileLocator.candidates(for: linked, binaryPath: binaryPath, directories: [root])
        XCTAssertEqual(candidates.map(\.path), [
            "\(root)/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug",
            "\(dir.path)/bin/prog",
            "\(dir.path)/bin/.debug/prog",
            "\(root)\(dir.path)/bin/prog",
        ])
        XCTAssertEqual(candidates.map(\.how), ["build-id", "gnu_debuglink", "gnu_debuglink", "gnu_debuglink"])
        XCTAssertNil(DebugFileLocator.find(for: linked, binaryPath: binaryPath, directories: [root]))

        // The debug-linked name in .debug/ is found; a file of another build in the build-id slot is passed over.
        try FileManager.default.createDirectory(atPath: "\(dir.path)/bin/.debug", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture.program, toPath: "\(dir.path)/bin/.debug/prog")
        try FileManager.default.createDirectory(atPath: "\(root)/.build-id/\(id.prefix(2))", withIntermediateDirectories: true)
        let other = dir.appendingPathComponent("other")
        try FileManager.default.createDirectory(at: other, withIntermediateDirectories: true)
        try "int main(void) { return 0; }".write(toFile: other.appendingPathComponent("o.c").path, atomically: true, encoding: .utf8)
        try ToolRunner.run("cc", ["-Wl,--build-id", "-o", other.appendingPathComponent("o").path, other.appendingPathComponent("o.c").path])
        try FileManager.default.copyItem(atPath: other.appendingPathComponent("o").path, toPath: candidates[0].path)
        XCTAssertFalse(DebugFileLocator.matches(try ELFFile(path: candidates[0].path), linked))
        let found = try XCTUnwrap(DebugFileLocator.find(for: linked, binaryPath: binaryPath, directories: [root]))
        XCTAssertEqual(found.file.path, "\(dir.path)/bin/.debug/prog")
        XCTAssertEqual(found.how, "gnu_debuglink")
    }
}
