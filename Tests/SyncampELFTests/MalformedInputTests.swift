import Foundation
import SyncampELF
import XCTest

/// Malformed files must throw the right `ELFError`, never crash.
final class MalformedInputTests: XCTestCase {
    private var real: ELFPatch!

    override func setUpWithError() throws {
        let path = try compiledFixture.get().program
        real = ELFPatch(bytes: try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// Asserts that parsing `bytes` throws an error matching `expected` whose description names the file and mentions `words`.
    private func assertError(_ bytes: [UInt8], _ words: [String], file: StaticString = #filePath, line: UInt = #line,
                             _ expected: (ELFError) -> Bool) {
        XCTAssertThrowsError(try ELFFile(bytes: bytes, path: "/tmp/bad.elf"), file: file, line: line) { error in
            guard let error = error as? ELFError else { return XCTFail("not an ELFError: \(error)", file: file, line: line) }
            XCTAssertTrue(expected(error), "unexpected \(error)", file: file, line: line)
            for word in ["/tmp/bad.elf"] + words {
                XCTAssertTrue(error.description.contains(word), "'\(error)' lacks '\(word)'", file: file, line: line)
            }
        }
    }

    private func patched(_ offset: Int, width: Int, _ value: UInt64) -> [UInt8] {
        var copy = real!
        copy.write(offset, width: width, value)
        return copy.bytes
    }

    func testNotELF() {
        assertError([], ["not an ELF file", "empty"]) { if case .notELF = $0 { true } else { false } }
        assertError(Array("MZ this is not an ELF file at all".utf8), ["not an ELF file", "4d 5a"]) {
            if case .notELF = $0 { true } else { false }
        }
    }

    func testUnsupportedClassEncodingAndMachine() {
        assertError(patched(4, width: 1, 1), ["ELFCLASS32"]) { if case .unsupported = $0 { true } else { false } }
        assertError(patched(5, width: 1, 2), ["big-endian"]) { if case .unsupported = $0 { true } else { false } }
        assertError(patched(18, width: 2, 40), ["machine 40 (ARM)"]) { if case .unsupported = $0 { true } else { false } }
    }

    func testTruncatedHeader() {
        assertError(Array(real.bytes.prefix(40)), ["ELF header", "truncated"]) {
            if case .corrupt(_, "ELF header", 0, _) = $0 { true } else { false }
        }
        assertError(Array(real.bytes.prefix(10)), ["ELF identification"]) { if case .corrupt = $0 { true } else { false } }
    }

    func testSectionHeadersPastTheEnd() {
        let beyond = UInt64(real.bytes.count + 4096)
        assertError(patched(40, width: 8, beyond), ["section header table", "0x" + String(beyond, radix: 16)]) {
            if case .corrupt(_, "section header table", beyond, _) = $0 { true } else { false }
        }
        assertError(patched(40, width: 8, .max - 10), ["section header table"]) { if case .corrupt = $0 { true } else { false } }
    }

    func testAbsurdCounts() {
        assertError(patched(60, width: 2, 0xffff), ["section header table", "65535 entries"]) {
            if case .corrupt(_, "section header table", _, _) = $0 { true } else { false }
        }
        assertError(patched(56, width: 2, 0xfffe), ["program header table", "65534 entries"]) {
            if case .corrupt(_, "program header table", _, _) = $0 { true } else { false }
        }
        assertError(patched(62, width: 2, 0xfff0), ["section name table"]) { if case .corrupt = $0 { true } else { false } }
    }

    func testStringsRunningOffTheirTable() throws {
        let shstrtab = try XCTUnwrap(real.sectionHeader(named: ".shstrtab"))
        assertError(patched(shstrtab + 32, width: 8, 3), ["section name table"]) {
            if case .corrupt(_, "section name table", _, _) = $0 { true } else { false }
        }
        let strtab = try XCTUnwrap(real.sectionHeader(named: ".strtab"))
        assertError(patched(strtab + 32, width: 8, 8), ["string table of .symtab"]) {
            if case .corrupt(_, "string table of .symtab", _, _) = $0 { true } else { false }
        }
        let symtab = try XCTUnwrap(real.sectionHeader(named: ".symtab"))
        assertError(patched(symtab + 32, width: 8, .max), [".symtab section"]) { if case .corrupt = $0 { true } else { false } }
    }

    func testUnreadableFiles() throws {
        XCTAssertThrowsError(try ELFFile(path: "/nonexistent/syncamp.elf")) { error in
            XCTAssertEqual(error as? ELFError, .cannotRead(path: "/nonexistent/syncamp.elf",
                                                          reason: "cannot open: No such file or directory"))
            XCTAssertTrue("\(error)".contains("/nonexistent/syncamp.elf"))
        }
        XCTAssertThrowsError(try ELFFile(path: "/tmp")) { error in
            XCTAssertTrue("\(error)".contains("Is a directory"), "\(error)")
        }
    }

    func testHeaderOnlyFileHasNothing() throws {
        var header = real!
        header.bytes = Array(header.bytes.prefix(64))
        header.write(32, width: 8, 0)  // e_phoff
        header.write(40, width: 8, 0)  // e_shoff
        let elf = try ELFFile(bytes: header.bytes)
        XCTAssertNil(elf.buildID)
        XCTAssertFalse(elf.hasSymtab)
        XCTAssertEqual(elf.functions(), [])
        XCTAssertNil(elf.fileOffset(forAddress: 0x1000))
    }
}
