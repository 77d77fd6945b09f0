import SyncampProbePlan
import SyncampProbes
import QemuBuildFixtures
import XCTest

/// The minimal set (the default) and `--detail` on a build with a full symbol table.
final class ProbeSetTests: XCTestCase {
    let build = SyntheticQemuBuild.fullSymbolTable
    let catalog = ProbeCatalog.entries.map(\.role)

    func testMinimalSetLeavesOutPerEntryAndPerWriteProbes() {
        let plan = ProbePlan(symbols: build, set: .minimal)
        XCTAssertAccountsForEveryEntry(plan, catalog)
        XCTAssertEqual(plan.set, .minimal)
        XCTAssertEqual(plan.manifestProbeSet, "minimal")
        XCTAssertTrue(plan.missing.isEmpty, "\(plan.missing)")
        XCTAssertTrue(plan.fallbacks.isEmpty)
        // The detail-only entries, and those raw_co_flush_to_disk stands in for.
        XCTAssertEqual(Set(plan.skippedRoles), [.guestWriteAIO, .qcow2Write, .qcow2CacheEntryFlush,
                                                .threadPoolSubmit, .workerFlush, .qemuFdatasync])
        XCTAssertEqual(plan.reason(.qcow2CacheEntryFlush), "left out of the minimal probe set (--detail attaches it)")
        XCTAssertEqual(plan.reason(.workerFlush), "left out of the minimal probe set: raw_co_flush_to_disk covers it (--detail attaches it)")
        XCTAssertEqual(plan.reason(.threadPoolSubmit), "not needed: raw_co_flush_to_disk covers it")
        XCTAssertEqual(plan.reason(.guestWriteAIO), "not needed: blk_co_do_pwritev_part covers it")
        XCTAssertEqual(plan.symbol(.guestWriteCo), "blk_co_do_pwritev_part")
        XCTAssertEqual(plan.symbol(.rawFlush), "raw_co_flush_to_disk")
    }

    func testDetailAddsThePerEntryProbesAndTheWorker() {
        let minimal = ProbePlan(symbols: build, set: .minimal)
        let detail = ProbePlan(symbols: build, set: .detail)
        XCTAssertAccountsForEveryEntry(detail, catalog)
        XCTAssertEqual(detail.manifestProbeSet, "detail")
        XCTAssertEqual(Set(detail.roles).subtracting(minimal.roles), [.qcow2Write, .qcow2CacheEntryFlush, .workerFlush, .qemuFdatasync])
        XCTAssertTrue(Set(minimal.roles).isSubset(of: detail.roles))
        // Even --detail needs no thread pool probe, nor blk_aio_pwritev, where the preferred symbols exist.
        XCTAssertEqual(Set(detail.skippedRoles), [.guestWriteAIO, .threadPoolSubmit])
        XCTAssertEqual(detail.symbol(.qcow2Write), "qcow2_co_pwritev_part")
    }

    func testPlannedProbesKeepCatalogOrder() {
        for set in [ProbeSet.minimal, .detail] {
            let plan = ProbePlan(symbols: build, set: set)
            XCTAssertEqual(plan.roles, catalog.filter(plan.roles.contains), "\(set)")
        }
    }

    func testStandInsAttachWhenWhatTheyStandInForIsMissing() {
        // Without raw_co_flush_to_disk the minimal set links host syncs through the thread pool and the worker.
        let plan = ProbePlan(symbols: build.without("raw_co_flush_to_disk"), set: .minimal)
        XCTAssertEqual(plan.missingRoles, [.rawFlush])
        XCTAssertTrue(plan.roles.contains(.threadPoolSubmit))
        XCTAssertTrue(plan.roles.contains(.workerFlush))
        XCTAssertEqual(plan.reason(.qemuFdatasync), "left out of the minimal probe set: handle_aiocb_flush covers it (--detail attaches it)")
        // Without the worker too, qemu_fdatasync links them (FIFO by fd).
        let bare = ProbePlan(symbols: build.without("raw_co_flush_to_disk", "handle_aiocb_flush"), set: .minimal)
        XCTAssertTrue(bare.roles.contains(.qemuFdatasync))
        XCTAssertEqual(bare.missingRoles, [.rawFlush, .workerFlush])
        XCTAssertTrue(bare.missingRequired.isEmpty)
    }
}
