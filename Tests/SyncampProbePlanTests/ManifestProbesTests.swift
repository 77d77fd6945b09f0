import SyncampCapture
import SyncampProbePlan
import SyncampProbes
import QemuBuildFixtures
import XCTest

/// The manifest's probe list, as the collector writes it from the plan.
final class ManifestProbesTests: XCTestCase {
    func testIdsAreIndicesAndCarryWhatTheAnalysisReads() throws {
        var plan = ProbePlan(symbols: SyntheticQemuBuild.debianStock, set: .detail)
        plan.placeSites { p in p.entry.role == .guestFlushCo ? (4, "push %rbp", "emulated") : nil }
        let probes = plan.manifestProbes
        XCTAssertEqual(probes.map(\.id), Array(probes.indices))
        XCTAssertEqual(probes.map(\.role), plan.roles.map(\.rawValue))
        let write = try XCTUnwrap(probes.first { $0.role == ProbeRole.guestWriteCo.rawValue })
        XCTAssertEqual(write.symbol, "blk_pwrite")
        XCTAssertEqual(write.table, "dynsym")
        XCTAssertTrue(write.isFallback)
        XCTAssertNil(write.usdtArgs)
        let flush = try XCTUnwrap(probes.first { $0.role == ProbeRole.guestFlushCo.rawValue })
        XCTAssertEqual(flush.fileOffset, try plan.probe(.guestFlushCo).fileOffset)
        XCTAssertEqual(flush.entryOffset.map { $0 + 4 }, flush.fileOffset)
        XCTAssertEqual(flush.siteInstruction, "push %rbp")
        let submit = try XCTUnwrap(probes.first { $0.role == ProbeRole.threadPoolSubmit.rawValue })
        XCTAssertEqual(submit.derefs, ["coroutine", "aio_type", "fd"])
    }

    func testUSDTArgumentsWithoutASourceAreMinusOne() throws {
        let entries = [USDTEntry(role: .backendUnref, event: "blk_root_detach", arity: 3, args: [nil, 1],
                                 required: false, whenMissing: "close work is grouped with the last request")]
        let plan = ProbePlan(usdt: SyntheticQemuBuild.dtrace(), entries: entries, set: .minimal)
        XCTAssertEqual(plan.manifestProbes.first?.usdtArgs, [-1, 1])
        XCTAssertEqual(plan.manifestProbes.first?.table, "usdt")
    }
}
