@testable import SyncampAnalysis
import SyncampQcow2
import XCTest

/// The analysis routes each op once for all its model runs (`ModelRouter`): runs fed from one
/// router (the as-run model's, `ModelComparison.route`) must end exactly as runs that route every op themselves.
final class ModelRouterTests: XCTestCase {
    let MiB: UInt64 = 1 << 20, KiB: UInt64 = 1 << 10

    /// Ops that take every route: two images, one named by a relative path (renamed by the first op
    /// that names it), an unknown image, a vmdk disk known by its backend only after a probe named
    /// the format, an unmodelled discard on no named image, and a close naming no image.
    private var ops: [GuestOp] {
        var out: [GuestOp] = []
        func add(_ kind: GuestOp.Kind, _ offset: UInt64 = 0, _ bytes: UInt64 = 0, backend: UInt64 = 0, image: String? = nil,
                 format: String? = nil, causes: [Cause] = []) {
            let i = out.count
            var op = GuestOp(index: i, kind: kind, offset: offset, bytes: bytes, startNs: UInt64(i) * 1000,
                             endNs: UInt64(i) * 1000 + 10, tid: 1, entry: "blk_co_pwritev_part", children: [], probeHits: 0,
                             image: image)
            op.backend = backend
            op.format = format
            op.children = causes.map { CausalNode(kind: .hostSync, timeNs: op.startNs, tid: 1, symbol: "fdatasync", cause: $0) }
            out.append(op)
        }
        add(.imageOpen, image: "/srv/a.qcow2")
        add(.write, 0, 64 * KiB, backend: 1, image: "/srv/a.qcow2", causes: [.l2TableAlloc])
        add(.write, 128 * KiB, 4 * KiB, backend: 1)
        add(.flush, backend: 1, image: "/srv/a.qcow2", causes: [.refcountDependency, .guestFlush])
        add(.write, 0, 4 * KiB, backend: 2, image: "/var/lib/vm/b.qcow2", causes: [.l2TableAlloc])
        add(.write, 8 * MiB, 4 * KiB, backend: 2)
        add(.write, 0, 4 * KiB, backend: 3, image: "/srv/c.qcow2")
        add(.write, 0, 4 * KiB, backend: 4, format: "vmdk")
        add(.flush, backend: 4)
        add(.flush, backend: 2, causes: [.guestFlush])
        add(.discard, 0, 1 * MiB)
        add(.write, 0, 4 * KiB, backend: 1)
        add(.imageClose)
        return out
    }

    private func images() -> [ImageState] {
        [ImageState.fresh(path: "/srv/a.qcow2", size: 64 * MiB), ImageState.fresh(path: "b.qcow2", size: 64 * MiB)]
    }

    func testRunsSharingARouterEndAsRunsRoutingAlone() {
        let options = [ModelOptions(cache: .writeback), ModelOptions(cache: .writethrough), ModelOptions(cache: .unsafe),
                       ModelOptions(cache: .writeback, lazyRefcounts: true)]
        var alone = options.map { ModelComparison(images: images(), options: $0) }
        var shared = alone
        for op in ops {
            let observed = CauseCounts(op.causes)
            for i in alone.indices { alone[i].add(op, observed: observed, keepPrediction: true) }
            let route = shared[0].route(op)  // as the pipeline does: the as-run model routes for all
            for i in shared.indices { shared[i].add(op, route: route, observed: observed, keepPrediction: true) }
        }
        for (a, s) in zip(alone, shared) {
            XCTAssertEqual(a.predictions, s.predictions)
            XCTAssertEqual(a.unpredictedOps, s.unpredictedOps)
            XCTAssertEqual(a.images.map(\.path), s.images.map(\.path))
            XCTAssertEqual(a.predictedCauses, s.predictedCauses)
            XCTAssertEqual([a.matchedOps, a.deviatingCount, a.timingDependentCount, a.unpredictedCount, a.guestFlushes],
                           [s.matchedOps, s.deviatingCount, s.timingDependentCount, s.unpredictedCount, s.guestFlushes])
        }
        // The stream reaches every route: the relative image took the op's name, the vmdk disk and
        // the unknown image are unpredicted, the discard on no named image loses the states.
        let asRun = shared[0]
        XCTAssertEqual(asRun.images.map(\.path), ["/srv/a.qcow2", "/var/lib/vm/b.qcow2"])
        XCTAssertEqual(asRun.unpredictedOps[6], .noImageState)
        XCTAssertEqual(asRun.unpredictedOps[7], .formatNotQcow2)
        XCTAssertEqual(asRun.unpredictedOps[8], .formatNotQcow2)
        XCTAssertEqual(asRun.unpredictedOps[10], .kindNotModelled)
        XCTAssertEqual(asRun.unpredictedOps[11], .stateUnknown)
        XCTAssertEqual(asRun.unpredictedOps[12], .stateUnknown)
        XCTAssertNotNil(asRun.predictions[1])
        XCTAssertNotNil(asRun.predictions[5])
    }

    /// A recommendation's run is read for its totals alone (`Recommendation.rank`): under
    /// cache=unsafe `addToTotal` replays nothing, and must end with the totals of a full replay;
    /// under other cache modes it is a full replay.
    func testARunForItsTotalEndsAsAFullReplay() {
        let options = [ModelOptions(cache: .unsafe), ModelOptions(cache: .writeback), ModelOptions(cache: .writethrough, lazyRefcounts: true)]
        var full = options.map { ModelComparison(images: images(), options: $0) }
        var total = full
        var asRun = ModelComparison(images: images(), options: ModelOptions(cache: .writeback))
        for op in ops + ops.map({ var o = $0; o.index += ops.count; return o }) {
            let observed = CauseCounts(op.causes)
            let route = asRun.route(op)
            asRun.add(op, route: route, observed: observed, keepPrediction: false)
            for i in full.indices {
                full[i].add(op, route: route, observed: observed, keepPrediction: false)
                total[i].addToTotal(op, route: route, observed: observed)
            }
        }
        for (f, t) in zip(full, total) {
            XCTAssertEqual([f.predictedHostSyncs, f.guestFlushes], [t.predictedHostSyncs, t.guestFlushes], "\(f.options.cache)")
            XCTAssertEqual(f.predictedAmplification, t.predictedAmplification)
        }
        XCTAssertEqual(total[0].guestFlushes, 6)
        XCTAssertGreaterThan(full[1].predictedHostSyncs, 0, "the ops make host syncs where flushes are not skipped")
    }

    /// Routing reads only the ops: the route of each op does not depend on which run asks.
    func testARouteNamesTheSlotOfTheImageTheBackendLastNamed() {
        var model = ModelComparison(images: images(), options: ModelOptions(cache: .writeback))
        let routes = ops.map { model.route($0) }
        XCTAssertEqual(routes[1].target, .slot(0))
        XCTAssertEqual(routes[2].target, .slot(0), "an op naming no image is on its backend's last image")
        XCTAssertEqual(routes[4].target, .slot(1))
        XCTAssertEqual(routes[4].renames, [ModelRouter.Rename(slot: 1, from: "b.qcow2", to: "/var/lib/vm/b.qcow2")])
        XCTAssertEqual(routes[5].renames, [], "a name is taken once")
        XCTAssertEqual(routes[6].target, .noState(reported: true))
        XCTAssertEqual(routes[8].target, .otherFormat, "the backend's format, named by an earlier op")
        XCTAssertEqual(routes[10].target, .unmodelledUnknownImage)
        XCTAssertEqual(routes[12].target, .closeAll)
    }

    /// An op like the one before (same kind, BlockBackend and image, no format) reuses its route;
    /// any other op in between is routed afresh, and so is the next: a backend whose image gets
    /// named routes its next overwrite to that image, not where the same op went before.
    func testAnOpLikeTheOneBeforeTakesItsRouteAndNoOtherDoes() {
        var model = ModelComparison(images: images(), options: ModelOptions(cache: .writeback))
        func op(_ kind: GuestOp.Kind, image: String? = nil, format: String? = nil) -> GuestOp {
            var o = GuestOp(index: 0, kind: kind, offset: 0, bytes: 4 * KiB, startNs: 0, endNs: 10, tid: 1,
                            entry: "blk_co_pwritev_part", children: [], probeHits: 0, image: image)
            o.backend = 9
            o.format = format
            return o
        }
        var other = op(.write, image: "/srv/a.qcow2")
        other.backend = 8
        XCTAssertEqual(model.route(other).target, .slot(0), "the path is matched here, by another backend's op")
        XCTAssertEqual(model.route(op(.write)).target, .noState(reported: false), "two images, none named for the backend")
        XCTAssertEqual(model.route(op(.write)).target, .noState(reported: false))
        XCTAssertEqual(model.route(op(.flush, image: "/srv/a.qcow2")).target, .slot(0))
        XCTAssertEqual(model.route(op(.write)).target, .slot(0), "the backend's image, named since")
        XCTAssertEqual(model.route(op(.imageClose)).target, .closeAll, "a close naming no image: another kind, another route")
        XCTAssertEqual(model.route(op(.write, image: "/var/lib/vm/b.qcow2")).target, .slot(1))
        XCTAssertEqual(model.route(op(.write, image: "/var/lib/vm/b.qcow2")).target, .slot(1))
        XCTAssertEqual(model.route(op(.discard, image: "/var/lib/vm/b.qcow2")).target, .slot(1))
        XCTAssertEqual(model.route(op(.write, format: "vmdk")).target, .otherFormat)
        XCTAssertEqual(model.route(op(.write)).target, .otherFormat, "the backend's format, named since")
    }
}
