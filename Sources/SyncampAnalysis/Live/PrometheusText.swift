import Prometheus
import SyncampCapture

/// Renders a pipeline snapshot in the Prometheus text exposition format (version 0.0.4),
/// with swift-prometheus's registry and metric types.
///
/// Counters are labelled by image file, so one scrape config watches every
/// image of every QEMU on a host; the per-cause counter names the flush site
/// (`cause="refcount_dependency"`). Only finished ops are counted per image and
/// cause. A request is counted together with its host syncs once it has ended (no sync of
/// it still open; later work adjusts both), so every ratio of one scrape is consistent;
/// `syncamp_host_syncs_in_flight` counts the syncs made but not yet under an ended request.
/// Each exposition comes from a registry filled from one snapshot, so a scrape never mixes
/// two snapshots either.
///
/// ```
/// syncamp_host_syncs_by_cause_total{image="/images/a.qcow2",cause="guest_flush"} 20
/// ```
public enum PrometheusText {
    /// The exposition, with `# HELP` and `# TYPE` for every family that has samples
    /// (families in the registry's order, not this one's).
    /// - Parameters:
    ///   - labels: labels added to every sample.
    ///   - info: the labels of `syncamp_target_info` (which QEMU is traced, and how), if any.
    public static func render(_ s: AnalysisPipeline.Snapshot, labels: [(String, String)] = [], info: [(String, String)] = []) -> String {
        let registry = PrometheusCollectorRegistry()
        /// A family of samples: counters count up from zero, so each one is incremented once by its value.
        func family(_ name: String, _ type: Kind, _ help: String, _ samples: [([(String, String)], Double)]) {
            let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
            for (l, v) in samples {
                switch type {
                case .counter:
                    let counter = registry.makeCounter(descriptor: descriptor, labels: labels + l)
                    if v == v.rounded(), abs(v) < 1e15 { counter.increment(by: Int64(v)) } else { counter.increment(by: v) }
                case .gauge:
                    registry.makeGauge(descriptor: descriptor, labels: labels + l).set(to: v)
                }
            }
        }
        let t = s.totals
        /// An image's labels: its path and, when the capture names it, its disk ("vda (virtio-disk0, ...)").
        func image(_ path: String) -> [(String, String)] { [("image", path)] + (s.diskNames[path].map { [("disk", $0)] } ?? []) }
        family("syncamp_guest_requests_total", .counter, "Guest requests finished, by kind (write, flush).",
               [([("kind", "write")], Double(t.guestWrites)), ([("kind", "flush")], Double(t.guestFlushes))])
        family("syncamp_host_syncs_total", .counter, "Host syncs (fdatasync/fsync, io_uring fsyncs) of the traced QEMU under ended requests, open/close groups or unattributed.",
               [([], Double(t.hostSyncs))])
        family("syncamp_host_syncs_in_flight", .gauge, "Host syncs made whose request has not ended yet.",
               [([], Double(s.hostSyncsInFlight))])
        family("syncamp_host_syncs_unattributed_total", .counter, "Host syncs of finished work that could not be placed under a guest request or open/close.",
               [([], Double(t.unattributedHostSyncs))])
        family("syncamp_journal_commits_total", .counter, "jbd2 commits under the traced QEMU's host syncs.",
               [([], Double(t.journalCommits))])
        family("syncamp_device_flushes_total", .counter, "Device cache flush requests under the traced QEMU's host syncs.",
               [([], Double(t.deviceFlushes))])
        family("syncamp_device_fua_writes_total", .counter, "FUA writes under the traced QEMU's host syncs.",
               [([], Double(t.deviceFUAWrites))])
        family("syncamp_image_guest_requests_total", .counter, "Guest requests finished, by image file and kind.",
               s.images.flatMap { i in [(image(i.path) + [("kind", "write")], Double(i.guestWrites)),
                                        (image(i.path) + [("kind", "flush")], Double(i.guestFlushes))] })
        family("syncamp_host_syncs_by_cause_total", .counter, "Host syncs of finished work, by image file and cause (qcow2 flush site).",
               s.images.flatMap { i in
                   Cause.allCases.compactMap { c in i.causes[c].map { (image(i.path) + [("cause", c.rawValue)], Double($0)) } }
               })
        let c = s.costs
        family("syncamp_host_sync_seconds_total", .counter, "Time in host syncs of finished work, by cause (qcow2 flush site).",
               c.causes.map { ([("cause", $0.cause.rawValue)], Double($0.hostSyncTime.sumNs) / 1e9) })
        family("syncamp_device_flush_seconds_total", .counter, "Time in device flushes under host syncs of finished work, by the syncs' cause.",
               c.causes.map { ([("cause", $0.cause.rawValue)], Double($0.deviceFlushTime.sumNs) / 1e9) })
        let quantiles: [(String, UInt64?)] = [("0.5", c.guestFlushLatency.p50Ns), ("0.9", c.guestFlushLatency.p90Ns),
                                              ("0.99", c.guestFlushLatency.p99Ns)]
        family("syncamp_guest_flush_latency_seconds", .gauge, "Guest flush latency of the finished flushes, by quantile (entry to the return of its last host sync).",
               quantiles.compactMap { q, v in v.map { ([("quantile", q)], Double($0) / 1e9) } })
        if let amp = t.syncAmplification {
            family("syncamp_host_syncs_per_guest_flush", .gauge, "Host syncs per guest flush so far.", [([], amp)])
        }
        family("syncamp_model_verdict", .gauge, "The reference model's verdict on the finished ops (1 for the current one: matched, deviating, unpredicted).",
               [([("verdict", s.modelVerdict.rawValue)], 1)])
        let predicted = s.recommendations.compactMap { r in r.prediction.map { (r, $0) } }
        family("syncamp_recommendation_predicted_host_syncs", .gauge, "Host syncs the model predicts for the finished ops with one configuration change.",
               predicted.map { ([("knob", $0.0.knob.rawValue), ("setting", TextReport.setting($0.0))], Double($0.1.hostSyncs)) })
        family("syncamp_recommendation_removed_host_syncs", .gauge, "Host syncs one configuration change would remove from the finished ops, by the model (negative: adds).",
               predicted.map { ([("knob", $0.0.knob.rawValue), ("setting", TextReport.setting($0.0))], Double($0.1.removedHostSyncs)) })
        family("syncamp_events_total", .counter, "Events read from the capture.", [([], Double(s.events))])
        family("syncamp_lost_events_total", .counter, "Events lost because the ring buffer was full.", [([], Double(s.lostEvents))])
        family("syncamp_uprobe_hits_total", .counter, "Uprobe hits (each costs the traced thread a trap).", [([], Double(s.uprobeHits))])
        family("syncamp_open_ops", .gauge, "Guest requests and open/close groups that may still take work.", [([], Double(s.openOps))])
        family("syncamp_capture_seconds", .gauge, "Capture time covered so far.", [([], Double(s.durationNs) / 1e9)])
        if !info.isEmpty {
            family("syncamp_target_info", .gauge, "The traced QEMU: pid, binary, build-id and probe set (always 1).", [(info, 1)])
        }
        return registry.emitToString()
    }

    /// The two metric types syncamp exposes.
    enum Kind { case counter, gauge }

    /// The labels of `syncamp_target_info` for a capture.
    public static func targetInfo(_ m: Manifest) -> [(String, String)] {
        [("pid", String(m.target.pid)), ("binary", m.target.binaryPath), ("build_id", m.target.buildID ?? ""),
         ("probe_set", m.probeSet ?? "")]
    }
}
