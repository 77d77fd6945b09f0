import SyncampQcow2

/// One configuration change and what the reference model predicts it does to this capture's host syncs.
///
/// Made by running the model over the same guest ops with one option changed
/// (`analyzer whatif` with that one option prints the same numbers). Knobs the
/// model does not simulate are listed with `notPredicted` and no numbers.
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
        /// The model keeps every L2 slice cached: it does not simulate evictions (F11).
        case cacheEvictionsNotModelled = "cache_evictions_not_modelled"
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
        if o.cache.writesThrough { out.append((.cache, with { $0.cache = .writeback })) }
        if o.cache != .unsafe { out.append((.cache, with { $0.cache = .unsafe })) }
        return out
    }

    /// The recommendations of finished model runs, the most syncs removed first; knobs without a
    /// prediction last.
    static func rank(asRun: ModelComparison, runs: [(Knob, ModelComparison)]) -> [Recommendation] {
        var out = runs.map { knob, m in
            Recommendation(knob: knob, options: m.options,
                           prediction: Prediction(hostSyncs: m.predictedHostSyncs, amplification: m.predictedAmplification,
                                                  removedHostSyncs: asRun.predictedHostSyncs - m.predictedHostSyncs),
                           notPredicted: nil)
        }
        out.sort { ($0.prediction?.removedHostSyncs ?? 0) > ($1.prediction?.removedHostSyncs ?? 0) }
        out.append(Recommendation(knob: .l2CacheSize, options: nil, prediction: nil, notPredicted: .cacheEvictionsNotModelled))
        return out
    }
}
