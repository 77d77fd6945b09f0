import SyncampProbePlan
import SyncampProbes
import QemuBuildFixtures
import XCTest

/// The plan on each QEMU release's ABI (QemuABI): argument maps and deref offsets.
final class QemuVersionPlanTests: XCTestCase {
    func testQemu72NeedsNoArgumentMap() {
        let plan = ProbePlan(symbols: SyntheticQemuBuild.debianStock, abi: .qemu72, set: .detail)
        XCTAssertTrue(plan.planned.allSatisfy { $0.argMap == nil })
    }

    func testQemu80MapsThreadPoolSubmitWithoutItsPool() throws {
        // thread_pool_submit_aio(func, arg, cb, opaque): the canonical (pool, func, arg, cb, opaque)
        // from registers 0-3, and no pool.
        let plan = ProbePlan(symbols: SyntheticQemuBuild.debianStock, abi: .qemu80, set: .minimal)
        XCTAssertEqual(try plan.probe(.threadPoolSubmit).argMap, [nil, 0, 1, 2, 3])
        XCTAssertEqual(plan.planned.filter { $0.argMap != nil }.map(\.entry.role), [.threadPoolSubmit])
    }

    func testQemu10MapsBlkCoPdiscardInPlace() throws {
        // blk_co_pdiscard gained a trailing flags parameter: mapped, but every canonical argument stays put.
        let plan = ProbePlan(symbols: SyntheticQemuBuild.debianStock, abi: .qemu100, set: .minimal)
        XCTAssertEqual(try plan.probe(.threadPoolSubmit).argMap, [nil, 0, 1, 2, 3])
        XCTAssertEqual(try plan.probe(.guestDiscardCo).argMap, [0, 1, 2])
        XCTAssertEqual(Set(plan.planned.filter { $0.argMap != nil }.map(\.entry.role)), [.threadPoolSubmit, .guestDiscardCo])
    }

    func testAFullSymbolTableOnQemu10MovesNoArgument() {
        // raw_co_flush_to_disk covers the thread pool, so no probe's arguments move.
        let plan = ProbePlan(symbols: SyntheticQemuBuild.fullSymbolTable, abi: .qemu100, set: .detail)
        XCTAssertFalse(plan.roles.contains(.threadPoolSubmit))
        for p in plan.planned {
            guard let map = p.argMap else { continue }
            XCTAssertEqual(map, map.indices.map { UInt8($0) }, p.symbol.name)
        }
    }

    func testDerefsTakeTheBuildsOffsets() throws {
        var abi = QemuABI.qemu72
        abi.offsets.l2TableCache = 0x60
        abi.offsets.qiovSize = 40
        let plan = ProbePlan(symbols: SyntheticQemuBuild.debianStock, abi: abi, set: .minimal)
        let cache = try plan.probe(.qcow2CacheWrite).entry.derefs.first { $0.name == "l2_table_cache" }
        XCTAssertEqual(cache?.offsets, [abi.offsets.bsOpaque, 0x60])
        XCTAssertEqual(try plan.probe(.guestWriteAIO).entry.derefs.first?.offsets, [40])
    }
}
