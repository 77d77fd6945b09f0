import Foundation
import SyncampELF
import SyncampProbes
import XCTest

/// The USDT catalog against each QEMU version's own trace events: the trace-events files
/// the testbed's dtrace builds were made from, and the `.note.stapsdt` of those builds.
final class USDTCatalogTests: XCTestCase {
    static let repo = QemuABITests.repo
    static let builds = [("7.2", ".testbed/dtrace"), ("10.0", ".testbed/qemu-10.0/dtrace")]

    /// "name(type a, type b) \"format\"" lines of a trace-events file: event name -> parameter names.
    static func events(_ path: String) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            guard let open = line.firstIndex(of: "("), let close = line[open...].firstIndex(of: ")"),
                  line.first?.isLetter == true else { continue }
            let name = String(line[..<open]).split(separator: " ").last.map(String.init) ?? ""
            let params = line[line.index(after: open) ..< close].split(separator: ",").compactMap {
                $0.split(whereSeparator: { $0 == " " || $0 == "*" }).last.map(String.init)
            }
            out[name] = params == ["void"] ? [] : params
        }
        return out
    }

    /// Every catalog event exists, under one of its names, in each version's trace-events with
    /// the catalog's arity, and the binary built from them has it with as many USDT arguments.
    func testEveryEventExistsInEachVersionWithItsArity() throws {
        for (series, relative) in Self.builds {
            let dir = Self.repo.appendingPathComponent(relative)
            let binary = dir.appendingPathComponent("bin/qemu-io").path
            guard FileManager.default.fileExists(atPath: binary) else {
                throw Prerequisite.unavailable("\(binary) is not built (run scripts/testbed.sh)")
            }
            let declared = try Self.events(dir.appendingPathComponent("trace-events/block").path)
                .merging(try Self.events(dir.appendingPathComponent("trace-events/util").path)) { a, _ in a }
            XCTAssertGreaterThan(declared.count, 100, "\(series): trace-events read")
            let notes = try ELFFile(path: binary).usdtProbes.filter { $0.provider == USDTCatalog.provider }
            for entry in USDTCatalog.entries {
                let names = USDTCatalog.names(entry).filter { declared[$0] != nil }
                XCTAssertEqual(names.count, 1, "QEMU \(series): exactly one of \(USDTCatalog.names(entry)) is declared")
                guard let name = names.first else { continue }
                XCTAssertEqual(declared[name]?.count, entry.arity, "QEMU \(series) \(name): \(declared[name] ?? [])")
                let sites = notes.filter { $0.name == name }
                XCTAssertFalse(sites.isEmpty, "QEMU \(series): \(name) is not in the binary's .note.stapsdt")
                XCTAssertTrue(sites.allSatisfy { $0.argumentCount == entry.arity }, "QEMU \(series) \(name) in .note.stapsdt")
                XCTAssertTrue(entry.args.allSatisfy { $0.map { Int($0) < entry.arity } ?? true }, "\(name): an argument beyond its arity")
            }
        }
    }

    /// QEMU renamed the thread-pool submit event after 7.2; the catalog knows both names.
    func testThreadPoolSubmitIsRenamedIn10() throws {
        let declared72 = try Self.events(Self.repo.appendingPathComponent(".testbed/dtrace/trace-events/util").path)
        let declared10 = try Self.events(Self.repo.appendingPathComponent(".testbed/qemu-10.0/dtrace/trace-events/util").path)
        XCTAssertEqual(declared72["thread_pool_submit"], ["pool", "req", "opaque"])
        XCTAssertNil(declared72["thread_pool_submit_aio"])
        XCTAssertEqual(declared10["thread_pool_submit_aio"], ["pool", "req", "opaque"])
        XCTAssertNil(declared10["thread_pool_submit"])
    }
}
