import SyncampQcow2

/// One configuration change and what the reference model predicts it does to this capture's host syncs.
///
/// Made by running the model over the same guest ops with one option changed
/// (`analyzer whatif` with that one option prints the same numbers). A knob whose
/// effect the model cannot count on this capture is listed with `notPredicted` and no numbers.
public struct Recommendation: Sendable, Equatable {
    /// The qcow2 and QEMU options a recommendation can change, named as QEMU names them.
    public enum Knob: String, Sendable, CaseIterable {
        case lazyRefcounts = "lazy_refcounts"
        case preallocation
        case clusterSize = "cluster_size"
        case extendedL2 = "extended_l2"
        case l2CacheSize = "l2-cache-size"
        case cache
    }

    /// Why a knob has no prediction.
    public enum NotPredicted: String, Sendable {
        /// The model leaves some of this capture's ops unpredicted as run (their reasons are the
        /// model's), so a count with the change would not compare with one as run.
        case asRunUnpredicted = "as_run_unpredicted"
    }

    /// What the model predicts with the change, for the whole capture.
    public struct Prediction: Sendable, Equatable {
        public var hostSyncs: Int
        /// Predicted host syncs per guest flush; nil without a guest flush.
        public var amplification: Double?
        /// The model's own count as run minus `hostSyncs`: the syncs the change removes on this
        /// workload (negative when it adds some).
        public var removedHostSyncs: Int
    }

    public var knob: Knob
    /// The options as run with this one change (`ModelOptions.summary` names the new setting);
    /// nil for a knob without a prediction.
    public var options: ModelOptions?
    public var prediction: Prediction?
    public var notPredicted: NotPredicted?

    /// The changes worth asking the model about for these images and options, each as the
    /// options to run it with: only changes from what the images and the command line already have.
    static func candidates(images: [ImageState], asRun o: ModelOptions) -> [(Knob, ModelOptions)] {
        let images = images.filter(\.isPlausible)
        var out: [(Knob, ModelOptions)] = []
        func with(_ change: (inout ModelOptions) -> Void) -> ModelOptions { var x = o; change(&x); return x }
        if images.contains(where: { !$0.lazyRefcounts }) { out.append((.lazyRefcounts, with { $0.lazyRefcounts = true })) }
        if images.contains(where: { !$0.isFullyAllocated }) { out.append((.preallocation, with { $0.preallocation = "metadata" })) }
        if images.contains(where: { $0.clusterBits < 21 }) { out.append((.clusterSize, with { $0.clusterBits = 21 })) }
        if images.contains(where: { !$0.extendedL2 }) { out.append((.extendedL2, with { $0.extendedL2 = true })) }
        // An L2 cache that holds every slice of the largest disk (QEMU clamps a larger setting).
        if let cover = images.filter({ !o.drive.geometry($0).l2CoversDisk }).map(Self.l2CacheCovering).max() {
            out.append((.l2CacheSize, with {
                $0.drive.l2CacheBytes = cover
                $0.drive.cacheBytes = nil
                $0.drive.l2CacheEntryBytes = nil
            }))
        }
        if o.cache.writesThrough { out.append((.cache, with { $0.cache = .writeback })) }
        if o.cache != .unsafe { out.append((.cache, with { $0.cache = .unsafe })) }
        return out
    }

    /// The L2 cache bytes that hold every L2 entry of `image`, rounded up to whole clusters as
    /// read_cache_sizes does (qcow2.c:882-889).
    static func l2CacheCovering(_ image: ImageState) -> UInt64 {
        let cs = image.clusterSize
        let entries = (image.size + cs - 1) / cs
        return (entries * (image.extendedL2 ? 16 : 8) + cs - 1) / cs * cs
    }

    /// The recommendations of finished model runs, the most syncs removed first; knobs without a
    /// prediction last. A larger L2 cache is predicted only when every op was predicted as run:
    /// the ops its evictions made unpredictable would otherwise count on one side only.
    static func rank(asRun: ModelComparison, runs: [(Knob, ModelComparison)]) -> [Recommendation] {
        var out: [Recommendation] = []
        var unpredicted: [Recommendation] = []
        for (knob, m) in runs {
            if knob == .l2CacheSize && asRun.unpredictedCount > 0 {
                unpredicted.append(Recommendation(knob: knob, options: m.options, prediction: nil, notPredicted: .asRunUnpredicted))
                continue
            }
            out.append(Recommendation(knob: knob, options: m.options,
                                      prediction: Prediction(hostSyncs: m.predictedHostSyncs, amplification: m.predictedAmplification,
                                                             removedHostSyncs: asRun.predictedHostSyncs - m.predictedHostSyncs),
                                      notPredicted: nil))
        }
        out.sort { ($0.prediction?.removedHostSyncs ?? 0) > ($1.prediction?.removedHostSyncs ?? 0) }
        return out + unpredicted
    }
}
