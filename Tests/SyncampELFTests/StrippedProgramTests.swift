import SyncampELF
import XCTest

/// Checks what the reader still finds once the program is stripped.
final class StrippedProgramTests: XCTestCase {
    private var fixture: CompiledFixture!

    override func setUpWithError() throws {
        fixture = try compiledFixture.get()
    }

    func testStrippedProgramResolvesExportedFunctionsFromDynsym() throws {
        let full = try ELFFile(path: fixture.program)
        let elf = try ELFFile(path: fixture.stripped)
        XCTAssertFalse(elf.hasSymtab)
        XCTAssertNil(elf.function(named: "syncamp_static"), "static functions go with .symtab")
        let global = try XCTUnwrap(elf.function(named: "syncamp_global"))
        XCTAssertEqual(global.table, .dynsym)
        XCTAssertTrue(global.isGlobal)
        XCTAssertEqual(global.address, try BinutilsOracle(path: fixture.stripped).address(of: "syncamp_global", dynamic: true))
        XCTAssertEqual(global.address, full.function(named: "syncamp_global")?.address)
        XCTAssertEqual(elf.fileOffset(forAddress: global.address), full.fileOffset(forAddress: global.address))
        XCTAssertEqual(elf.buildID, full.buildID, "strip keeps the build-id note")
        XCTAssertTrue(elf.functions().allSatisfy { $0.table == .dynsym })
    }

    func testStrippedProgramWithoutRdynamicHasNoProgramFunctions() throws {
        let elf = try ELFFile(path: fixture.strippedPlain)
        XCTAssertFalse(elf.hasSymtab)
        XCTAssertNil(elf.function(named: "syncamp_global"))
        XCTAssertNil(elf.function(named: "syncamp_static"))
        XCTAssertEqual(elf.buildID, try BinutilsOracle(path: fixture.strippedPlain).buildID())
    }

    func testDebugLinkNamesTheDebugFile() throws {
        XCTAssertNil(try ELFFile(path: fixture.stripped).debugLink)
        XCTAssertEqual(try ELFFile(path: fixture.debugLinked).debugLink, "prog")
    }
}
