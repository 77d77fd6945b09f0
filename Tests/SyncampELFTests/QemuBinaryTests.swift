import Foundation
import SyncampELF
import XCTest

/// Checks the reader on qemu-io, the binary syncamp actually probes, when it is present.
final class QemuBinaryTests: XCTestCase {
    static let stockPath = "/usr/bin/qemu-io"
    /// The unstripped build in the package's `.testbed` directory.
    static let testbedPath = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".testbed/bin/qemu-io").path

    func testStockQemuIOResolvesExportsFromDynsym() throws {
        guard FileManager.default.fileExists(atPath: Self.stockPath) else {
            throw Prerequisite.unavailable("\(Self.stockPath) is not installed (scripts/testbed.sh installs qemu-utils)")
        }
        let elf = try ELFFile(path: Self.stockPath)
        XCTAssertFalse(elf.hasSymtab)
        let write = try XCTUnwrap(elf.function(named: "qcow2_cache_write"))
        XCTAssertEqual(write.table, .dynsym)
        XCTAssertTrue(write.isGlobal)
        let oracle = BinutilsOracle(path: Self.stockPath)
        XCTAssertEqual(write.address, try oracle.address(of: "qcow2_cache_write", dynamic: true))
        XCTAssertEqual(elf.fileOffset(forAddress: write.address), try oracle.fileOffset(of: write.address))
        XCTAssertNil(elf.function(named: "qcow2_cache_entry_flush"), "static: only in the stripped .symtab")
        XCTAssertEqual(elf.buildID, try oracle.buildID())
        XCTAssertNotNil(elf.debugLink)
    }

    func testTestbedQemuIOResolvesStaticsFromSymtab() throws {
        guard FileManager.default.fileExists(atPath: Self.testbedPath) else {
            throw Prerequisite.unavailable("\(Self.testbedPath) is not built (root: scripts/testbed.sh)")
        }
        let elf = try ELFFile(path: Self.testbedPath)
        XCTAssertTrue(elf.hasSymtab)
        let flush = try XCTUnwrap(elf.function(named: "qcow2_cache_entry_flush"))
        XCTAssertEqual(flush.table, .symtab)
        XCTAssertFalse(flush.isGlobal)
        let oracle = BinutilsOracle(path: Self.testbedPath)
        let address = try XCTUnwrap(try oracle.address(of: "qcow2_cache_entry_flush"))
        XCTAssertEqual(flush.address, address)
        XCTAssertEqual(elf.fileOffset(forAddress: flush.address), try oracle.fileOffset(of: address))
        XCTAssertEqual(elf.buildID, try oracle.buildID())
    }
}
