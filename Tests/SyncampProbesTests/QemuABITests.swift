import Foundation
import SyncampELF
import SyncampElfutils
import SyncampProbes
import XCTest

/// The per-version tables of QemuABI against the DWARF of real QEMU builds (the testbed's
/// 7.2 and 10.0 qemu-io, built with -g from Debian's sources), and the DWARF reader against gdb.
final class QemuABITests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let builds = [("7.2", ".testbed/bin/qemu-io"), ("10.0", ".testbed/qemu-10.0/bin/qemu-io")]

    private func build(_ relative: String) throws -> String {
        let path = Self.repo.appendingPathComponent(relative).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw Prerequisite.unavailable("\(path) is not built (run scripts/testbed.sh)")
        }
        return path
    }

    /// Each build's version string picks the table that its DWARF agrees with, field by field.
    func testTablesMatchTheDWARFOfEachBuild() throws {
        for (series, relative) in Self.builds {
            let path = try build(relative)
            let elf = try ELFFile(path: path)
            let version = try XCTUnwrap(elf.versionString.flatMap(QemuVersion.init), path)
            XCTAssertEqual("\(version.major).\(version.minor)", series, elf.versionString ?? "")
            let table = QemuABI.table(for: version)
            let (dwarf, missing) = try XCTUnwrap(try DWARFLayout.abi(path: path, base: table), "\(path) has no DWARF")
            XCTAssertEqual(missing, [], "\(series): not found in the DWARF")
            XCTAssertEqual(dwarf.parameters.count, table.parameters.count)
            for (function, params) in table.parameters.sorted(by: { $0.key < $1.key }) {
                XCTAssertEqual(dwarf.parameters[function], params, "QEMU \(series) \(function)")
            }
            for (a, b) in zip(dwarf.offsets.fields, table.offsets.fields) {
                XCTAssertEqual(a.offset, b.offset, "QEMU \(series) \(a.structName).\(a.field)")
            }
            XCTAssertEqual(dwarf.source, .dwarf(path))
        }
    }

    /// The one layout change the probes meet: thread_pool_submit_aio lost `pool` in QEMU 8.0.
    func testThreadPoolSubmitIsRemappedFrom8On() throws {
        XCTAssertNil(QemuABI.qemu72.argumentMap("thread_pool_submit_aio"))
        XCTAssertEqual(QemuABI.qemu80.argumentMap("thread_pool_submit_aio"), [nil, 0, 1, 2, 3])
        XCTAssertNil(QemuABI.qemu80.argumentMap("qcow2_cache_write"), "unchanged functions keep their registers")
        let v10 = try XCTUnwrap(QemuVersion("10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)"))
        XCTAssertEqual(QemuABI.table(for: v10).source, .table("10.0"))
        XCTAssertEqual(QemuABI.table(for: QemuVersion("9.2.0")).source, .table("8.0"))
        XCTAssertEqual(QemuABI.table(for: QemuVersion("7.2.0")).source, .table("7.2"))
        XCTAssertEqual(QemuABI.table(for: QemuVersion("12.0.0")).source, .nearestTable("10.0"), "unknown: the newest, said so")
        XCTAssertEqual(QemuABI.table(for: QemuVersion("6.2.0")).source, .nearestTable("7.2"))
        XCTAssertEqual(QemuABI.table(for: nil).source, .nearestTable("10.0"))
    }

    /// The DWARF reader's struct offsets against gdb's `ptype /o` on the same binary.
    func testDWARFReaderAgreesWithGDB() throws {
        let path = try build(Self.builds[1].1)
        let table = QemuABI.table(for: QemuVersion("10.0.0"))
        let (dwarf, _) = try XCTUnwrap(try DWARFLayout.abi(path: path, base: table))
        let gdb = Process()
        gdb.executableURL = URL(fileURLWithPath: "/usr/bin/gdb")
        let structs = ["struct Qcow2Cache", "RawPosixAIOData", "struct Coroutine", "BDRVQcow2State"]
        gdb.arguments = ["-batch", "-nx"] + structs.flatMap { ["-ex", "ptype /o \($0)"] } + [path]
        let out = Pipe()
        gdb.standardOutput = out
        gdb.standardError = FileHandle.nullDevice
        try gdb.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        gdb.waitUntilExit()
        XCTAssertEqual(gdb.terminationStatus, 0)
        // gdb: "/*     24      |       1 */    _Bool depends_on_flush;"
        func gdbOffset(_ field: String) -> Int32? {
            for line in text.split(separator: "\n") where line.hasSuffix(" \(field);") || line.hasSuffix("*\(field);") {
                let inner = line.drop { $0 != "*" }.dropFirst().prefix { $0 != "|" }
                if let n = Int32(inner.trimmingCharacters(in: .whitespaces).split(separator: ":").first ?? "") { return n }
            }
            return nil
        }
        var checked = 0
        for f in dwarf.offsets.fields where ["Qcow2Cache", "RawPosixAIOData", "Coroutine", "BDRVQcow2State"].contains(f.structName) {
            XCTAssertEqual(gdbOffset(f.field), f.offset, "\(f.structName).\(f.field)")
            checked += 1
        }
        XCTAssertEqual(checked, 9)
    }
}
