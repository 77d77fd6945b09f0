import SyncampELF
import SyncampProbePlan
import SyncampProbes
import QemuBuildFixtures
import XCTest

/// QEMU's trace events as USDT probes: names per release, arity checks, what the manifest records.
final class USDTPlanTests: XCTestCase {
    func testEveryCatalogEventIsPlannedWithItsArgumentsAndCoroutine() throws {
        let plan = ProbePlan(usdt: SyntheticQemuBuild.dtrace(), set: .detail)
        XCTAssertTrue(plan.missing.isEmpty, "\(plan.missing)")
        XCTAssertEqual(plan.roles, USDTCatalog.entries.map(\.role))
        let submit = try plan.probe(.threadPoolSubmit)
        XCTAssertEqual(submit.usdtEvent, "thread_pool_submit")
        XCTAssertEqual(submit.symbol.table, .usdt)
        XCTAssertEqual(submit.coroutineFrom, "deref:coroutine")
        XCTAssertEqual(submit.entry.derefs.map(\.name), ["coroutine", "aio_type", "fd"])
        let cache = try plan.probe(.qcow2CacheWrite)
        XCTAssertEqual(cache.constants, ["l2_table_cache": 1, "refcount_block_cache": 0])
        XCTAssertEqual(try plan.probe(.backendUnref).usdtArgs, [1])
    }

    func testQemu10NamesAreFound() throws {
        let plan = ProbePlan(usdt: SyntheticQemuBuild.dtrace(.qemu100), set: .minimal)
        XCTAssertTrue(plan.missing.isEmpty, "\(plan.missing)")
        XCTAssertEqual(try plan.probe(.threadPoolSubmit).usdtEvent, "thread_pool_submit_aio")
        XCTAssertEqual(plan.symbol(.threadPoolSubmit), "qemu:thread_pool_submit_aio")
    }

    func testAnEventOfAnotherArityIsMissingNotMisread() {
        let build = SyntheticQemuBuild.dtrace().with(usdt: [SyntheticQemuBuild.usdtProbe("blk_co_pwritev", arity: 4, index: 0)])
        let plan = ProbePlan(usdt: build, set: .minimal)
        let write = plan.missing.first { $0.role == ProbeRole.guestWriteCo.rawValue }
        XCTAssertEqual(write?.reason, "the binary's blk_co_pwritev has 4 arguments, not the 5 syncamp reads (another QEMU version's event): guest writes are not seen")
        XCTAssertFalse(plan.roles.contains(.guestWriteCo))
    }

    func testAbsentEventListsEveryNameTried() {
        let plan = ProbePlan(usdt: SyntheticQemuBuild(functions: [:], hasSymtab: false), set: .minimal)
        let submit = plan.missing.first { $0.role == ProbeRole.threadPoolSubmit.rawValue }
        XCTAssertEqual(submit?.symbolsTried, ["qemu:thread_pool_submit", "qemu:thread_pool_submit_aio"])
    }

    func testOneProbeStandsForEverySiteOfItsEvent() throws {
        var probes = SyntheticQemuBuild.dtrace().usdtProbes
        probes.append(SyntheticQemuBuild.usdtProbe("qcow2_cache_flush", arity: 2, index: 50))
        let plan = ProbePlan(usdt: SyntheticQemuBuild.dtrace().with(usdt: probes), set: .minimal)
        XCTAssertEqual(plan.planned.filter { $0.entry.role == .qcow2CacheWrite }.count, 1)
        XCTAssertEqual(try plan.probe(.qcow2CacheWrite).symbol.size, 2, "the symbol's size counts the sites")
    }

    func testUSDTProbesSitOnEmulatedNops() {
        var plan = ProbePlan(usdt: SyntheticQemuBuild.dtrace(), set: .minimal)
        plan.placeSites { _ in XCTFail("USDT probes are not decoded"); return nil }
        XCTAssertTrue(plan.planned.allSatisfy { $0.cost == "emulated" && $0.siteInstruction == "nop" && $0.entryOffset == nil })
    }
}
