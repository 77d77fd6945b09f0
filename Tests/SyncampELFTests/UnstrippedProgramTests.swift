import Foundation
import SyncampELF
import XCTest

/// Checks the reader against binutils on a freshly compiled, unstripped program.
final class UnstrippedProgramTests: XCTestCase {
    private var fixture: CompiledFixture!
    private var elf: ELFFile!
    private var oracle: BinutilsOracle!

    override func setUpWithError() throws {
        fixture = try compiledFixture.get()
        elf = try ELFFile(path: fixture.program)
        oracle = BinutilsOracle(path: fixture.program)
    }

    func testGlobalAndStaticFunctionsComeFromSymtab() throws {
        XCTAssertTrue(elf.hasSymtab)
        let global = try XCTUnwrap(elf.function(named: "syncamp_global"))
        let local = try XCTUnwrap(elf.function(named: "syncamp_static"))
        XCTAssertEqual(global.table, .symtab)
        XCTAssertEqual(local.table, .symtab)
        XCTAssertTrue(global.isGlobal)
        XCTAssertFalse(local.isGlobal)
        XCTAssertEqual(global.address, try oracle.address(of: "syncamp_global"))
        XCTAssertEqual(local.address, try oracle.address(of: "syncamp_static"))
        XCTAssertGreaterThan(local.size, 0)
        XCTAssertNil(elf.function(named: "syncamp_counter"), "a data object is not a function")
        XCTAssertNil(elf.function(named: "no_such_function"))
    }

    func testFileOffsetsMatchReadelfProgramHeaders() throws {
        for name in ["syncamp_global", "syncamp_static", "main"] {
            let symbol = try XCTUnwrap(elf.function(named: name), name)
            let offset = try XCTUnwrap(elf.fileOffset(forAddress: symbol.address), name)
            XCTAssertEqual(offset, try oracle.fileOffset(of: symbol.address), name)
            XCTAssertNotEqual(offset, symbol.address, "a -no-pie build maps text above its file offset")
        }
        XCTAssertNil(elf.fileOffset(forAddress: 0x10))
        XCTAssertNil(elf.fileOffset(forAddress: .max))
    }

    func testBytesAtFileOffsetAreTheFunctionsFirstInstruction() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture.program)))
        let symbol = try XCTUnwrap(elf.function(named: "syncamp_static"))
        let offset = Int(try XCTUnwrap(elf.fileOffset(forAddress: symbol.address)))
        let instruction = try oracle.firstInstructionBytes(at: symbol.address)
        XCTAssertFalse(instruction.isEmpty, "objdump showed no instruction")
        XCTAssertEqual(Array(bytes[offset..<offset + instruction.count]), instruction)
    }

    func testBuildIDMatchesReadelf() throws {
        let expected = try XCTUnwrap(try oracle.buildID())
        XCTAssertEqual(elf.buildID, expected)
        XCTAssertEqual(try ELFFile(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: fixture.program)))).buildID,
                       expected)
    }

    func testSameNamedFunctionsPreferTheGlobalOne() throws {
        let dup = try XCTUnwrap(elf.function(named: "syncamp_dup"))
        XCTAssertTrue(dup.isGlobal)
        XCTAssertEqual(dup.address, try oracle.address(of: "syncamp_dup", types: ["T"]))
        let both = elf.functions().filter { $0.name == "syncamp_dup" && $0.table == .symtab }
        XCTAssertEqual(both.count, 2, "the static and the global syncamp_dup are both listed")
    }

    func testFunctionsAreDeduplicatedByNameAndAddress() throws {
        let all = elf.functions()
        let globals = all.filter { $0.name == "syncamp_global" }
        XCTAssertEqual(globals.map(\.table), [.symtab], "the .dynsym copy has the same name and address")
        let keys = all.map { "\($0.name)@\($0.address)" }
        XCTAssertEqual(Set(keys).count, keys.count)
        XCTAssertNil(elf.debugLink)
    }
}
