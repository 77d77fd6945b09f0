import Foundation
import SyncampCapture
import SyncampELF
import SyncampProbePlan
import SyncampProbes
import QemuBuildFixtures
import XCTest

/// The synthetic builds the plan tests and the analysis tests' manifests use, against the real
/// binaries they stand for: the same choice (functions or USDT), the same probes from the same
/// symbols and tables, the same ones missing and skipped. A catalog entry whose function one of
/// these builds lacks (or exports, or renames) fails here, not in a capture.
final class SyntheticBuildTests: XCTestCase {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// What a plan is made of, without addresses (synthetic addresses are not the binary's).
    struct Shape: Equatable, CustomStringConvertible {
        var usdt: ProbeChoice.USDTReason?
        var planned: [String]
        var missing: [String]
        var skipped: [String]

        init(_ choice: ProbeChoice) {
            usdt = choice.usdt
            planned = choice.plan.planned.map {
                "\($0.entry.role.rawValue)=\($0.symbol.name) \($0.symbol.table.rawValue)\($0.isFallback ? " fallback" : "")"
                    + " derefs \($0.entry.derefs.map(\.name)) args \($0.argMap.map { "\($0)" } ?? "canonical")"
            }
            missing = choice.plan.missing.map { "\($0.role) tried \($0.symbolsTried): \($0.reason)" }
            skipped = choice.plan.skipped.map { "\($0.role): \($0.reason)" }
        }

        var description: String { "usdt \(String(describing: usdt))\n" + (planned + missing + skipped).joined(separator: "\n") }
    }

    func assertSameChoice(real relative: String, as synthetic: SyntheticQemuBuild, abi: QemuABI, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = relative.hasPrefix("/") ? relative : Self.repo.appendingPathComponent(relative).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw Prerequisite.unavailable("\(path) is missing (scripts/testbed.sh builds or installs it)")
        }
        let elf = try ELFFile(path: path)
        XCTAssertEqual(elf.hasSymtab, synthetic.hasSymtab, "\(path): symbol table", file: file, line: line)
        for set in [ProbeSet.minimal, .detail] {
            let options = ProbeChoice.Options(set: set, allowMissing: true)
            let real = Shape(try ProbeChoice(functions: SymbolSource(binary: elf), usdt: elf, abi: abi, options: options))
            let fake = Shape(try ProbeChoice(functions: synthetic, usdt: synthetic, abi: abi, options: options))
            XCTAssertEqual(real, fake, "\(path), \(set) set:\nreal: \(real)\nsynthetic: \(fake)", file: file, line: line)
        }
    }

    func testFullSymbolTableIsTheTestbedsQemuIO() throws {
        try assertSameChoice(real: ".testbed/bin/qemu-io", as: .fullSymbolTable, abi: .qemu72)
    }

    func testFullSymbolTableIsTheTestbedsQemu10IO() throws {
        try assertSameChoice(real: ".testbed/qemu-10.0/bin/qemu-io", as: .fullSymbolTable, abi: .qemu100)
    }

    func testDebianStockIsDebian12sQemuIO() throws {
        try assertSameChoice(real: "/usr/bin/qemu-io", as: .debianStock, abi: .qemu72)
    }

    func testDebianStockIsDebians10QemuIO() throws {
        try assertSameChoice(real: ".testbed/stock-10.0/bin/qemu-io", as: .debianStock, abi: .qemu100)
    }

    func testDTraceIsTheTestbedsDTraceQemuIO() throws {
        try assertSameChoice(real: ".testbed/dtrace/bin/qemu-io", as: .dtrace(.qemu72), abi: .qemu72)
    }

    func testDTraceIsTheTestbedsDTraceQemu10IO() throws {
        try assertSameChoice(real: ".testbed/qemu-10.0/dtrace/bin/qemu-io", as: .dtrace(.qemu100), abi: .qemu100)
    }
}
