import SyncampCapture
import SyncampProbePlan
import SyncampProbes
import QemuBuildFixtures
import XCTest

/// Function probes or USDT probes, and failing or tracing on when required probes are missing.
final class ProbeChoiceTests: XCTestCase {
    /// A stripped dtrace build: no functions at all, QEMU's trace events as USDT probes.
    let dtrace = SyntheticQemuBuild.dtrace()
    /// A stripped build with neither symbols nor USDT probes.
    let bare = SyntheticQemuBuild(functions: [:], hasSymtab: false)

    func choose(_ build: SyntheticQemuBuild, _ options: ProbeChoice.Options = .init()) throws(ProbeChoice.Failure) -> ProbeChoice {
        try ProbeChoice(functions: build, usdt: build, abi: .qemu72, options: options)
    }

    func failure(_ build: SyntheticQemuBuild, _ options: ProbeChoice.Options = .init()) -> ProbeChoice.Failure? {
        do { _ = try choose(build, options); return nil } catch { return error }
    }

    func testFunctionProbesWhenTheSymbolsAreThere() throws {
        let choice = try choose(.fullSymbolTable)
        XCTAssertNil(choice.usdt)
        XCTAssertFalse(choice.plan.isUSDT)
        XCTAssertTrue(choice.toleratedMissing.isEmpty)
    }

    func testUSDTWhenRequiredSymbolsAreMissingAndTheBinaryHasUSDTProbes() throws {
        let choice = try choose(dtrace)
        XCTAssertEqual(choice.usdt, .functionSymbolsMissing)
        XCTAssertTrue(choice.plan.isUSDT)
        XCTAssertEqual(choice.plan.manifestProbeSet, "usdt")
        XCTAssertEqual(choice.plan.symbol(.guestWriteCo), "qemu:blk_co_pwritev")
        XCTAssertTrue(choice.toleratedMissing.isEmpty)
    }

    func testExportedFunctionsThatCoverTheRequiredProbesWinOverUSDT() throws {
        // A stock build that also has USDT probes keeps its function probes: only a required
        // probe without a symbol switches to USDT.
        let both = SyntheticQemuBuild.debianStock.with(usdt: dtrace.usdtProbes)
        let choice = try choose(both)
        XCTAssertNil(choice.usdt)
        XCTAssertEqual(choice.plan.fallbacks, ["blk_pwrite", "qcow2_check_refcounts"])
    }

    func testPinnedOffsetsKeepFunctionProbes() {
        // --offset means the user wants function probes: no switch to USDT, the missing ones fail.
        guard case let .missingRequired(lacking, usdt) = failure(dtrace, .init(pinnedOffsets: true)) else {
            return XCTFail("expected missing required probes")
        }
        XCTAssertFalse(usdt)
        XCTAssertTrue(lacking.contains { $0.role == ProbeRole.guestWriteCo.rawValue })
    }

    func testUSDTRequestedUsesThemEvenWithSymbols() throws {
        let choice = try choose(SyntheticQemuBuild.fullSymbolTable.with(usdt: dtrace.usdtProbes), .init(forceUSDT: true))
        XCTAssertEqual(choice.usdt, .requested)
        XCTAssertTrue(choice.plan.isUSDT)
    }

    func testUSDTRequestedWithoutUSDTProbesFails() {
        XCTAssertEqual(failure(.fullSymbolTable, .init(forceUSDT: true)), .noUSDTProbes)
    }

    func testMissingRequiredProbesFailWithoutAllowMissing() {
        guard case let .missingRequired(lacking, usdt) = failure(bare) else { return XCTFail("expected a failure") }
        XCTAssertFalse(usdt)
        let required = ProbeCatalog.entries.filter(\.required).map(\.role.rawValue)
        XCTAssertEqual(lacking.map(\.role), required)
        XCTAssertEqual(lacking.flatMap(\.symbolsTried).first, "blk_co_do_pwritev_part")
    }

    func testAllowMissingTracesWithoutThemAndSaysWhich() throws {
        let choice = try choose(bare, .init(allowMissing: true))
        XCTAssertNil(choice.usdt)
        XCTAssertTrue(choice.plan.planned.isEmpty)
        XCTAssertEqual(choice.toleratedMissing.map(\.role), ProbeCatalog.entries.filter(\.required).map(\.role.rawValue))
    }

    func testMissingRequiredUSDTProbesFailUnlessAllowed() throws {
        // A dtrace build whose thread_pool_submit event has another version's arity.
        var probes = dtrace.usdtProbes.filter { $0.name != "thread_pool_submit" }
        probes.append(SyntheticQemuBuild.usdtProbe("thread_pool_submit", arity: 2, index: 99))
        let odd = dtrace.with(usdt: probes)
        guard case let .missingRequired(lacking, usdt) = failure(odd) else { return XCTFail("expected a failure") }
        XCTAssertTrue(usdt)
        XCTAssertEqual(lacking.map(\.role), [ProbeRole.threadPoolSubmit.rawValue])
        XCTAssertEqual(lacking.first?.symbolsTried, ["qemu:thread_pool_submit"])
        let allowed = try choose(odd, .init(allowMissing: true))
        XCTAssertEqual(allowed.usdt, .functionSymbolsMissing)
        XCTAssertEqual(allowed.toleratedMissing.map(\.role), [ProbeRole.threadPoolSubmit.rawValue])
    }

    func testTheSetAppliesToUSDTProbesToo() throws {
        let minimal = try choose(dtrace, .init(set: .minimal))
        let detail = try choose(dtrace, .init(set: .detail))
        XCTAssertEqual(minimal.plan.skippedRoles, [.qcow2CacheEntryFlush])
        XCTAssertEqual(Set(detail.plan.roles).subtracting(minimal.plan.roles), [.qcow2CacheEntryFlush])
        XCTAssertEqual(detail.plan.manifestProbeSet, "usdt")
    }
}
