import Foundation
import SyncampCapture

/// Renders an analysis as JSON with the stable keys of docs/report-format.md (schema "syncamp.report/1").
public enum JSONReport {
    public static let schema = "syncamp.report/1"

    public static func render(_ a: Analysis) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(Report(a)), as: UTF8.self) + "\n"
    }

    struct Report: Encodable {
        var schema = JSONReport.schema
        var capture: Capture
        var target: Target
        var kernel_probe: String
        /// The host's kernel and the levels below QEMU traced or not (nil before captures recorded them).
        var kernel: Kernel?
        var coroutine_source: String
        /// "minimal", "detail", or nil for captures made before probe sets existed.
        var probe_set: String?
        var probes: [Probe]
        var missing_probes: [Manifest.MissingProbe]
        var skipped_probes: [Manifest.MissingProbe]
        var totals: Totals
        var causes: [String: Int]
        var images: [Image]
        /// The devices below the images, with their file systems (nil before captures recorded devices).
        var devices: [Device]?
        var model: Model?
        /// The answer first: host syncs per guest flush, below QEMU, and the model's verdict.
        var verdict: Verdict
        /// Per cause, costliest first: syncs, share, and time in them and in the device flushes below.
        var cause_costs: [CauseCostOut]
        var host_sync_ns: Latency
        var guest_flush_latency_ns: Latency
        var recommendations: [RecommendationOut]
        /// Indexes of the costliest ops (most host syncs, then most time in them), costliest first.
        var costliest_ops: [Int]
        /// Every op and unplaced node, of which `ops` and `unattributed` list the first ones.
        var op_count: Int
        var ops: [Op]
        var unattributed_count: Int
        var unattributed: [Unplaced]
        var warnings: [String]

        init(_ a: Analysis) {
            let m = a.manifest
            capture = Capture(path: a.capture.path, events: a.capture.events, lost_events: a.capture.lostEvents,
                              lost_per_cpu: Dictionary(uniqueKeysWithValues: a.capture.lostPerCPU.map { (String($0.key), $0.value) }),
                              duration_ns: a.capture.durationNs, cut_short: a.capture.damage != nil,
                              damage: a.capture.damage, end_reason: a.capture.trailerReason,
                              reordered_events: a.capture.reorderedEvents, late_events: a.capture.lateEvents,
                              probe_hits: a.probeHitsTotal, probe_hits_per_guest_op: a.probeHitsPerGuestOp,
                              single_stepped_probe_hits: a.singleSteppedProbeHits,
                              tracing_cost: a.capture.tracingCost.map {
                                  TracingCost(bpf_program_runs: $0.bpfProgramRuns, bpf_run_time_ns: $0.bpfRunTimeNs,
                                              collector_cpu_ns: $0.collectorCPUNs,
                                              programs: $0.programs.mapValues { TracingCost.Program(runs: $0.runs, run_time_ns: $0.ns) })
                              })
            target = Target(pid: m.target.pid, mode: m.target.mode, command: m.target.command, binary: m.target.binaryPath,
                            build_id: m.target.buildID, has_symtab: m.target.hasSymtab, qemu_version: m.qemuVersion,
                            qemu_abi: m.qemuABI)
            kernel_probe = m.kernelProbe
            kernel = m.kernelLevels.map { levels in
                Kernel(release: m.kernelRelease, levels: levels.map {
                    Kernel.Level(name: $0.name.rawValue, traced: $0.traced, hooks: $0.hooks, reason: $0.reason)
                }, not_counted: a.untracedLevels.map(\.name.rawValue))
            }
            coroutine_source = m.coroutineSource ?? "none"
            probes = m.probes.map { Probe(id: $0.id, role: $0.role, symbol: $0.symbol, table: $0.table,
                                          fallback: $0.isFallback, hits: a.probeHits[$0.id] ?? 0) }
            missing_probes = m.missingProbes
            probe_set = m.probeSet
            skipped_probes = m.skippedProbes ?? []
            totals = Totals(guest_writes: a.totals.guestWrites, guest_flushes: a.totals.guestFlushes,
                            host_fdatasyncs: a.totals.hostSyncs, unattributed_host_syncs: a.totals.unattributedHostSyncs,
                            sync_amplification: a.totals.syncAmplification,
                            first_guest_flush_host_fdatasyncs: a.totals.firstFlushHostSyncs,
                            steady_state_sync_amplification: a.totals.steadyStateAmplification,
                            journal_commits: a.totals.journalCommits, device_flushes: a.totals.deviceFlushes,
                            device_fua_writes: a.totals.deviceFUAWrites,
                            unlinked_journal_commits: a.totals.unlinkedJournalCommits,
                            unlinked_device_flushes: a.totals.unlinkedDeviceFlushes,
                            unlinked_device_fua_writes: a.totals.unlinkedDeviceFUAWrites)
            causes = JSONReport.causeCounts(a.totals.causes)
            images = a.images.map { Image(path: $0.path, disk: a.disk(ofImage: $0.path).map(Disk.init), format: a.format(ofImage: $0.path)?.rawValue,
                                          guest_writes: $0.guestWrites, guest_flushes: $0.guestFlushes,
                                          host_fdatasyncs: $0.hostSyncs, causes: JSONReport.causeCounts($0.causes)) }
            devices = m.devices?.map { Device(dev: "\($0.major):\($0.minor)", name: $0.name,
                                               file_system: $0.fileSystem?.rawValue, images: $0.images) }
            model = a.model.flatMap { $0.hasContent ? Model($0, observed: a.totals) : nil }
            verdict = Verdict(a)
            cause_costs = a.costs.causes.map { CauseCostOut($0, share: a.costs.share(of: $0)) }
            host_sync_ns = Latency(a.costs.hostSyncTime)
            guest_flush_latency_ns = Latency(a.costs.guestFlushLatency)
            recommendations = a.recommendations.map(RecommendationOut.init)
            costliest_ops = a.costliestOps.map(\.index)
            ops = a.ops.map { op in
                var o = Op(op)
                o.disk = op.image.flatMap { a.disk(ofImage: $0)?.displayName }
                o.predicted = a.model?.predictions[op.index].map(Predicted.init)
                o.unpredicted = a.model?.unpredictedOps[op.index]?.rawValue
                return o
            }
            op_count = a.opCount
            unattributed_count = a.unattributedCount
            unattributed = a.unattributed.map { Unplaced(reason: $0.reason, node: Node($0.node)) }
            warnings = a.warnings
        }
    }

    static func causeCounts(_ c: [Cause: Int]) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: c.map { ($0.key.rawValue, $0.value) })
    }

    struct Verdict: Encodable {
        var host_fdatasyncs_per_guest_flush: Double?
        var first_guest_flush_host_fdatasyncs: Int?
        var steady_state_sync_amplification: Double?
        /// nil when the level was not traced or there was no guest flush.
        var journal_commits_per_guest_flush: Double?
        var device_flushes_per_guest_flush: Double?
        /// "matched", "deviating" or "unpredicted".
        var model: String

        init(_ a: Analysis) {
            let t = a.totals
            let untraced = Set(a.untracedLevels.map(\.name))
            let perFlush = { (n: Int, level: KernelLevel.Name) -> Double? in
                t.guestFlushes > 0 && !untraced.contains(level) ? Double(n) / Double(t.guestFlushes) : nil
            }
            host_fdatasyncs_per_guest_flush = t.syncAmplification
            first_guest_flush_host_fdatasyncs = t.firstFlushHostSyncs
            steady_state_sync_amplification = t.steadyStateAmplification
            journal_commits_per_guest_flush = perFlush(t.journalCommits, .journal)
            device_flushes_per_guest_flush = perFlush(t.deviceFlushes, .device)
            model = ModelComparison.verdict(a.model).rawValue
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(host_fdatasyncs_per_guest_flush, forKey: .host_fdatasyncs_per_guest_flush)
            try c.encode(first_guest_flush_host_fdatasyncs, forKey: .first_guest_flush_host_fdatasyncs)
            try c.encode(steady_state_sync_amplification, forKey: .steady_state_sync_amplification)
            try c.encode(journal_commits_per_guest_flush, forKey: .journal_commits_per_guest_flush)
            try c.encode(device_flushes_per_guest_flush, forKey: .device_flushes_per_guest_flush)
            try c.encode(model, forKey: .model)
        }

        enum CodingKeys: CodingKey {
            case host_fdatasyncs_per_guest_flush, first_guest_flush_host_fdatasyncs, steady_state_sync_amplification
            case journal_commits_per_guest_flush, device_flushes_per_guest_flush, model
        }
    }

    /// A `LatencySummary` in nanoseconds.
    struct Latency: Encodable {
        var count: Int
        var sum: UInt64
        var p50: UInt64?
        var p90: UInt64?
        var p99: UInt64?
        var max: UInt64?

        init(_ l: LatencySummary) {
            count = l.count
            sum = l.sumNs
            p50 = l.p50Ns
            p90 = l.p90Ns
            p99 = l.p99Ns
            max = l.maxNs
        }
    }

    struct CauseCostOut: Encodable {
        var cause: String
        var host_fdatasyncs: Int
        /// Of all host syncs, 0...1.
        var share: Double?
        var host_sync_ns: Latency
        var device_flush_ns: Latency

        init(_ c: CauseCost, share: Double?) {
            cause = c.cause.rawValue
            host_fdatasyncs = c.hostSyncs
            self.share = share
            host_sync_ns = Latency(c.hostSyncTime)
            device_flush_ns = Latency(c.deviceFlushTime)
        }
    }

    struct RecommendationOut: Encodable {
        var knob: String
        /// `lazy_refcounts=on`, `cache=unsafe`; the knob alone when not predicted.
        var setting: String
        var options: [String: String]?
        var predicted_host_fdatasyncs: Int?
        var predicted_sync_amplification: Double?
        var removed_host_fdatasyncs: Int?
        var not_predicted: String?
        var trade_off: String

        init(_ r: Recommendation) {
            knob = r.knob.rawValue
            setting = r.options.flatMap { $0.summary[r.knob.rawValue] }.map { "\(r.knob.rawValue)=\($0)" } ?? r.knob.rawValue
            options = r.options?.summary
            predicted_host_fdatasyncs = r.prediction?.hostSyncs
            predicted_sync_amplification = r.prediction?.amplification
            removed_host_fdatasyncs = r.prediction?.removedHostSyncs
            not_predicted = r.notPredicted?.rawValue
            trade_off = TextReport.tradeOff(r)
        }
    }

    struct Kernel: Encodable {
        var release: String
        var levels: [Level]
        /// The levels whose counts the totals lack (their hooks were missing): names as in `levels`.
        var not_counted: [String]

        struct Level: Encodable {
            var name: String
            var traced: Bool
            var hooks: [String]
            var reason: String?
        }
    }

    struct Model: Encodable {
        var options: [String: String]
        var images: [String]
        var predicted_host_fdatasyncs: Int
        var predicted_causes: [String: Int]
        var predicted_sync_amplification: Double?
        var observed_sync_amplification: Double?
        var matched_ops: Int
        var deviating_ops: [Int]
        var deviating_op_count: Int
        var timing_dependent_ops: [Int]
        var timing_dependent_op_count: Int
        /// Op index -> why the model makes no prediction for it (`ModelComparison.Unpredicted`).
        var unpredicted_ops: [String: String]
        var unpredicted_op_count: Int

        init(_ m: ModelComparison, observed: Analysis.Totals) {
            options = m.options.summary
            images = m.images.map(\.path)
            predicted_host_fdatasyncs = m.predictedHostSyncs
            predicted_causes = JSONReport.causeCounts(m.predictedCauses)
            predicted_sync_amplification = m.predictedAmplification
            observed_sync_amplification = observed.syncAmplification
            matched_ops = m.matchedOps
            deviating_ops = m.deviatingOps
            deviating_op_count = m.deviatingCount
            timing_dependent_ops = m.timingDependentOps
            timing_dependent_op_count = m.timingDependentCount
            unpredicted_ops = Dictionary(uniqueKeysWithValues: m.unpredictedOps.map { (String($0.key), $0.value.rawValue) })
            unpredicted_op_count = m.unpredictedCount
        }
    }

    struct Predicted: Encodable {
        var host_fdatasyncs: Int
        var causes: [String: Int]
        var timing_dependent: Bool

        init(_ p: ModelComparison.Prediction) {
            host_fdatasyncs = p.hostSyncs
            causes = JSONReport.causeCounts(p.causes)
            timing_dependent = p.timingDependent
        }
    }

    struct Image: Encodable {
        var path: String
        /// The disk as the guest, QEMU and libvirt name it, when known.
        var disk: Disk?
        /// "qcow2" or "raw" (a raw file or a block device), nil when unknown.
        var format: String?
        var guest_writes: Int
        var guest_flushes: Int
        var host_fdatasyncs: Int
        var causes: [String: Int]
    }

    /// A disk's names: `name` as reports print it ("vda (virtio-disk0, libvirt-1-format)").
    struct Disk: Encodable {
        var name: String
        var target: String?
        var device_id: String?
        var node_names: [String]

        init(_ d: QemuDisk) {
            name = d.displayName
            target = d.target
            device_id = d.deviceID
            node_names = d.nodeNames
        }
    }

    struct Device: Encodable {
        /// "major:minor".
        var dev: String
        var name: String?
        /// "ext4", "xfs", "btrfs", another mountinfo type, or "block_device" (the image is the device).
        var file_system: String?
        var images: [String]
    }

    struct Capture: Encodable {
        var path: String
        var events: UInt64
        var lost_events: UInt64
        var lost_per_cpu: [String: UInt64]
        var duration_ns: UInt64
        var cut_short: Bool
        var damage: String?
        var end_reason: String?
        var reordered_events: UInt64
        var late_events: UInt64
        var probe_hits: Int
        var probe_hits_per_guest_op: Double?
        /// Hits on probe sites the kernel single-steps (a second trap each); nil for older captures.
        var single_stepped_probe_hits: Int?
        /// `collector --measure-cost` only: BPF program runs and time, the collector's CPU time (ns).
        var tracing_cost: TracingCost?
    }

    struct TracingCost: Encodable {
        var bpf_program_runs: UInt64
        var bpf_run_time_ns: UInt64
        var collector_cpu_ns: UInt64?
        /// By BPF program name (bpf/syncamp.bpf.c).
        var programs: [String: Program]
        struct Program: Encodable {
            var runs: UInt64
            var run_time_ns: UInt64
        }
    }

    struct Target: Encodable {
        var pid: Int32
        var mode: String
        var command: [String]
        var binary: String
        var build_id: String?
        var has_symtab: Bool
        /// The traced QEMU's version, from its binary ("10.0.2 (Debian ...)"); nil if not found.
        var qemu_version: String?
        /// Where the probes' layouts came from ("DWARF of PATH", "built-in table for QEMU 8.0").
        var qemu_abi: String?
    }

    struct Probe: Encodable {
        var id: Int
        var role: String
        var symbol: String
        var table: String
        var fallback: Bool
        var hits: Int
    }

    struct Totals: Encodable {
        var guest_writes: Int
        var guest_flushes: Int
        var host_fdatasyncs: Int
        var unattributed_host_syncs: Int
        var sync_amplification: Double?
        var first_guest_flush_host_fdatasyncs: Int?
        var steady_state_sync_amplification: Double?
        var journal_commits: Int
        var device_flushes: Int
        var device_fua_writes: Int
        var unlinked_journal_commits: Int
        var unlinked_device_flushes: Int
        var unlinked_device_fua_writes: Int

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(guest_writes, forKey: .guest_writes)
            try c.encode(guest_flushes, forKey: .guest_flushes)
            try c.encode(host_fdatasyncs, forKey: .host_fdatasyncs)
            try c.encode(unattributed_host_syncs, forKey: .unattributed_host_syncs)
            try c.encode(sync_amplification, forKey: .sync_amplification)  // null when there is no guest flush
            try c.encode(first_guest_flush_host_fdatasyncs, forKey: .first_guest_flush_host_fdatasyncs)
            try c.encode(steady_state_sync_amplification, forKey: .steady_state_sync_amplification)
            try c.encode(journal_commits, forKey: .journal_commits)
            try c.encode(device_flushes, forKey: .device_flushes)
            try c.encode(device_fua_writes, forKey: .device_fua_writes)
            try c.encode(unlinked_journal_commits, forKey: .unlinked_journal_commits)
            try c.encode(unlinked_device_flushes, forKey: .unlinked_device_flushes)
            try c.encode(unlinked_device_fua_writes, forKey: .unlinked_device_fua_writes)
        }

        enum CodingKeys: CodingKey {
            case guest_writes, guest_flushes, host_fdatasyncs, unattributed_host_syncs, sync_amplification
            case first_guest_flush_host_fdatasyncs, steady_state_sync_amplification
            case journal_commits, device_flushes, device_fua_writes
            case unlinked_journal_commits, unlinked_device_flushes, unlinked_device_fua_writes
        }
    }

    struct Op: Encodable {
        var index: Int
        var kind: String
        var entry: String
        var offset: UInt64
        var bytes: UInt64
        /// The guest's 512-byte sector of a write (as virtio-blk requests count).
        var sector: UInt64?
        var start_ns: UInt64
        var end_ns: UInt64
        var tid: UInt32
        var host_fdatasyncs: Int
        var causes: [String: Int]
        var image: String?
        /// The image's disk name ("vda (virtio-disk0, libvirt-1-format)"), when the capture names it.
        var disk: String?
        /// write_zeroes only: whether it may unmap.
        var unmap: Bool?
        /// write only: true for a compressed write.
        var compressed: Bool?
        /// The format driver of a request that is not qcow2's ("vmdk").
        var format: String?
        /// The qemu-img subcommand that made a request, when no guest did ("qemu-img convert").
        var origin: String?
        var probe_hits: Int
        var predicted: Predicted?
        /// Why the model made no prediction for this op (`ModelComparison.Unpredicted`), when it made none.
        var unpredicted: String?
        var children: [Node]

        init(_ op: GuestOp) {
            index = op.index
            kind = op.kind.rawValue
            entry = op.entry
            offset = op.offset
            bytes = op.bytes
            sector = op.kind.hasRange ? op.offset / 512 : nil
            unmap = op.unmap
            compressed = op.compressed
            format = op.format
            origin = op.origin
            start_ns = op.startNs
            end_ns = op.endNs
            tid = op.tid
            host_fdatasyncs = op.hostSyncs
            causes = JSONReport.causeCounts(op.causes)
            image = op.image
            probe_hits = op.probeHits
            children = op.children.map(Node.init)
        }
    }

    struct Node: Encodable {
        var kind: String
        var t_ns: UInt64
        var tid: UInt32
        var symbol: String?
        var details: [String: String]
        var latency_ns: UInt64?
        var ret: Int64?
        var cause: String?
        var children: [Node]

        init(_ n: CausalNode) {
            kind = n.kind.name
            t_ns = n.timeNs
            tid = n.tid
            symbol = n.symbol
            details = Dictionary(n.details.strings, uniquingKeysWith: { a, _ in a })
            latency_ns = n.latencyNs
            ret = n.returnValue
            cause = n.cause?.rawValue
            children = n.children.map(Node.init)
        }
    }

    struct Unplaced: Encodable {
        var reason: String
        var node: Node
    }
}
