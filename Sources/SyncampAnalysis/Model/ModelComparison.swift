import SyncampQcow2

/// The reference model's predictions next to what QEMU did, per op and in total.
public struct ModelComparison: Sendable {
    /// One op's prediction.
    public struct Prediction: Sendable, Equatable {
        public var causes: [Cause: Int]
        public var hostSyncs: Int { causes.values.reduce(0, +) }
        /// Set when QEMU's own concurrency makes the count timing-dependent (a request over several
        /// L2 tables runs as parallel tasks; requests overlapped); the prediction is then a lower bound.
        public var timingDependent: Bool
    }

    public var options: ModelOptions
    /// Images the model ran on, with the state it started from.
    public var images: [ImageState]
    /// Per op index; nil for ops the model does not cover (image open, housekeeping, unknown image).
    public var predictions: [Int: Prediction]
    public var predictedHostSyncs: Int
    public var predictedCauses: [Cause: Int]
    public var matchedOps: Int
    /// Op indexes whose observed causes differ from the prediction (timing-dependent ones excepted).
    public var deviatingOps: [Int]
    public var timingDependentOps: [Int]
    /// Guest flushes, for the predicted amplification.
    public var guestFlushes: Int

    public var predictedAmplification: Double? {
        guestFlushes > 0 ? Double(predictedHostSyncs) / Double(guestFlushes) : nil
    }

    /// Replays the ops through one model per image.
    public static func run(ops: [GuestOp], images: [ImageState], options: ModelOptions) -> ModelComparison {
        var models: [String: Qcow2Model] = [:]
        let images = images.filter(\.isPlausible)
        for image in images { models[image.path] = Qcow2Model(image: image, options: options) }
        let only = images.count == 1 ? images[0].path : nil
        var result = ModelComparison(options: options, images: images, predictions: [:], predictedHostSyncs: 0,
                                     predictedCauses: [:], matchedOps: 0, deviatingOps: [], timingDependentOps: [],
                                     guestFlushes: ops.filter { $0.kind == .flush }.count)
        var lastEnd: UInt64 = 0
        for op in ops {
            if op.kind == .imageClose && op.image == nil && only == nil {
                // Closing with nothing left to sync names no image: every image is closed.
                var causes: [Cause: Int] = [:]
                for path in models.keys.sorted() {
                    for (c, n) in models[path]!.close() { causes[c, default: 0] += n }
                }
                result.record(op, Prediction(causes: causes, timingDependent: false))
                continue
            }
            let path = op.image ?? only
            guard var model = path.flatMap({ models[$0] }) else { continue }
            var causes: [Cause: Int]
            var timing = false
            switch op.kind {
            case .write:
                causes = model.write(offset: op.offset, bytes: op.bytes)
                let perTable = model.image.bytesPerL2Table
                let (end, overflow) = op.offset.addingReportingOverflow(op.bytes)
                timing = op.bytes > 0 && !overflow && op.offset / perTable != (end - 1) / perTable
            case .flush:
                causes = model.flush()
            case .imageClose:
                causes = model.close()
            case .imageOpen, .housekeeping:
                continue
            }
            // Requests that overlap another in flight interleave their metadata work.
            if op.isGuestRequest && op.startNs < lastEnd && op.kind == .write && causes.values.reduce(0, +) > 0 { timing = true }
            if op.isGuestRequest { lastEnd = max(lastEnd, op.endNs) }
            models[path!] = model
            result.record(op, Prediction(causes: causes, timingDependent: timing))
        }
        return result
    }

    private mutating func record(_ op: GuestOp, _ p: Prediction) {
        predictions[op.index] = p
        predictedHostSyncs += p.hostSyncs
        for (c, n) in p.causes { predictedCauses[c, default: 0] += n }
        if op.causes == p.causes {
            matchedOps += 1
        } else if p.timingDependent {
            timingDependentOps.append(op.index)
        } else {
            deviatingOps.append(op.index)
        }
    }
}
