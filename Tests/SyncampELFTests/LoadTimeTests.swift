import Foundation
import SyncampELF
import XCTest

/// A library with 30,000 functions in both symbol tables must load quickly.
final class LoadTimeTests: XCTestCase {
    func testThirtyThousandFunctionsLoadUnder100Milliseconds() throws {
        let directory = try ToolRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let count = 30_000
        var assembly = ".text\n"
        for i in 0..<count {
            assembly += ".globl f\(i)\n.type f\(i),@function\nf\(i): ret\n.size f\(i), .-f\(i)\n"
        }
        let source = directory.appendingPathComponent("many.s").path
        let library = directory.appendingPathComponent("libmany.so").path
        try assembly.write(toFile: source, atomically: true, encoding: .utf8)
        try ToolRunner.run("cc", ["-shared", "-nostdlib", "-Wl,--build-id", "-o", library, source])

        var best = Double.infinity
        var elf: ELFFile?
        for _ in 0..<3 {
            let start = Date()
            elf = try ELFFile(path: library)
            best = min(best, Date().timeIntervalSince(start))
        }
        let loaded = try XCTUnwrap(elf)
        XCTAssertEqual(loaded.functions().count, count, "each global is in .symtab and .dynsym at one address")
        XCTAssertEqual(loaded.function(named: "f29999")?.table, .symtab)
        XCTAssertLessThan(best, 0.1, "loading took \(Int(best * 1000)) ms")
        print("30k-function library loaded in \(String(format: "%.1f", best * 1000)) ms")
    }
}
