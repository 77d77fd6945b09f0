import SyncampCapture
import SyncampProbePlan
import SyncampProbes
import QemuBuildFixtures
import XCTest

/// A stripped stock build (exported functions only): the exported equivalents the catalog
/// lists, and what is missing (README, Stripped binaries, 6).
final class FallbackTests: XCTestCase {
    let stock = SyntheticQemuBuild.debianStock
    let catalog = ProbeCatalog.entries.map(\.role)

    func testStockBuildFallsBackToExportedFunctions() throws {
        let plan = ProbePlan(symbols: stock, set: .detail)
        XCTAssertAccountsForEveryEntry(plan, catalog)
        XCTAssertEqual(plan.fallbacks, ["blk_pwrite", "qcow2_alloc_host_offset", "qcow2_check_refcounts"])
        let write = try plan.probe(.guestWriteCo)
        XCTAssertEqual(write.symbol.name, "blk_pwrite")
        XCTAssertTrue(write.isFallback)
        XCTAssertEqual(write.symbol.table, .dynsym)
        // blk_pwrite misses device writes: blk_aio_pwritev joins it, reading the request's size.
        let aio = try plan.probe(.guestWriteAIO)
        XCTAssertEqual(aio.symbol.name, "blk_aio_pwritev")
        XCTAssertFalse(aio.isFallback)
        XCTAssertEqual(aio.entry.derefs.map(\.name), ["bytes"])
        // No raw_co_flush_to_disk: the thread pool links host syncs.
        XCTAssertEqual(plan.symbol(.threadPoolSubmit), "thread_pool_submit_aio")
        XCTAssertEqual(Set(plan.missingRoles), [.qcow2CacheEntryFlush, .rawFlush, .workerFlush, .imageCreate, .vmdkWrite, .vmdkGrainTableUpdate,
                                               .makeEmpty, .bitmapDirectory, .bitmapDirectoryInPlace])
        XCTAssertTrue(plan.missingRequired.isEmpty, "\(plan.missingRequired)")
        let worker = try XCTUnwrap(plan.missing.first { $0.role == ProbeRole.workerFlush.rawValue })
        XCTAssertEqual(worker.symbolsTried, ["handle_aiocb_flush"])
        XCTAssertEqual(worker.reason, "no such function in the binary: worker flushes are linked to their submit in FIFO order instead of by pointer")
    }

    func testStockMinimalSetSkipsDetailOnlyEntriesRatherThanMissingThem() {
        let plan = ProbePlan(symbols: stock, set: .minimal)
        XCTAssertAccountsForEveryEntry(plan, catalog)
        XCTAssertEqual(plan.fallbacks, ["blk_pwrite", "qcow2_check_refcounts"])
        XCTAssertTrue(plan.skippedRoles.contains(.qcow2Write))
        XCTAssertTrue(plan.skippedRoles.contains(.qcow2CacheEntryFlush))
        XCTAssertFalse(plan.missingRoles.contains(.qcow2CacheEntryFlush))
        // Neither raw_co_flush_to_disk nor handle_aiocb_flush: qemu_fdatasync is in the minimal set.
        XCTAssertTrue(plan.roles.contains(.qemuFdatasync))
        XCTAssertTrue(plan.missingRoles.contains(.workerFlush))
    }

    func testBlkAioPwritevOnlyWhenThePreferredWriteProbeFallsBack() {
        let full = ProbePlan(symbols: SyntheticQemuBuild.fullSymbolTable, set: .detail)
        XCTAssertFalse(full.roles.contains(.guestWriteAIO))
        let without = ProbePlan(symbols: SyntheticQemuBuild.fullSymbolTable.without("blk_co_do_pwritev_part"), set: .detail)
        XCTAssertEqual(without.symbol(.guestWriteCo), "blk_pwrite")
        XCTAssertEqual(without.symbol(.guestWriteAIO), "blk_aio_pwritev")
        XCTAssertEqual(without.fallbacks, ["blk_pwrite"])
    }

    func testMissingEveryWriteSymbolIsARequiredProbeMissing() {
        let plan = ProbePlan(symbols: stock.without("blk_pwrite", "blk_aio_pwritev"), set: .minimal)
        XCTAssertEqual(plan.missingRequired.map(\.role), [ProbeRole.guestWriteCo.rawValue, ProbeRole.guestWriteAIO.rawValue])
        XCTAssertEqual(plan.missingRequired.first?.symbolsTried, ["blk_co_do_pwritev_part", "blk_pwrite"])
    }

    func testAFunctionPinnedByOffsetIsPlannedAtIt() throws {
        // --offset: SymbolSource hands back a symbol of table .given, which the plan uses like any other.
        var build = stock
        build.functions["handle_aiocb_flush"] = .given
        let plan = ProbePlan(symbols: build, set: .detail)
        XCTAssertEqual(try plan.probe(.workerFlush).symbol.table, .given)
        XCTAssertFalse(plan.missingRoles.contains(.workerFlush))
    }
}
