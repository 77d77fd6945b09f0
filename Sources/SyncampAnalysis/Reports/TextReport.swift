import Foundation
import SyncampCapture

/// Renders an analysis for people, answer first: what was traced, the verdict, what each cause
/// costs, what to change, then the costliest ops with their trees, then the totals.
public enum TextReport {
    /// Which ops the report lists with their trees.
    public enum OpListing: Sendable, Equatable {
        /// `Analysis.costliestOps`: most host syncs first, then most time in them.
        case costliest
        /// `Analysis.ops`, in time order.
        case all
        /// `Analysis.pinnedOp`, the op of this index.
        case one(Int)
    }

    /// Characters of the traced command line shown before the rest is cut (JSON keeps it whole).
    public static let commandLineLimit = 240

    public static func render(_ a: Analysis, ops listing: OpListing = .costliest) -> String {
        var out = ""
        let m = a.manifest
        out += "syncamp report: \(a.capture.path)\n"
        out += "  target   pid \(m.target.pid) (\(m.target.mode)) \(elided(m.target.command))\n"
        out += "  binary   \(m.target.binaryPath)" + (m.qemuVersion.map { ", QEMU \($0)" } ?? "") + ", build-id \(m.target.buildID ?? "none"), "
            + (m.probeSet == "usdt" ? "QEMU's USDT probes (dtrace trace backend)"
               : m.target.hasSymtab ? "full symbol table" + (m.target.symbols.map { " from \($0)" } ?? "") : "exported symbols only") + "\n"
        if let abi = m.qemuABI { out += "  layouts  \(abi)\n" }
        if let domain = m.domain { out += "  domain   \(domain) (libvirt)\n" }
        for d in m.disks ?? [] { out += "  disk     \(d.displayName): \(d.path)" + (d.format.map { " (\($0))" } ?? "") + "\n" }
        let fallbacks = m.probes.filter(\.isFallback).map(\.symbol)
        let set = m.probeSet.map { $0 == "minimal" ? " (minimal set; --detail for per-entry cache flushes)" : " (\($0) set)" } ?? ""
        out += "  probes   \(m.probes.count) uprobes\(set)" + (fallbacks.isEmpty ? "" : " (exported fallbacks: \(fallbacks.joined(separator: ", ")))")
            + ", fdatasync/fsync via \(m.kernelProbe == "kprobe" ? "kprobes" : "syscalls tracepoints")"
            + ", coroutines via \(m.coroutineSource ?? "none")\n"
        out += kernel(m)
        out += devices(m)
        out += "  capture  \(a.capture.events) events, \(a.capture.lostEvents) lost, \(ms(a.capture.durationNs)), "
            + "ended: \(a.capture.trailerReason ?? "cut short (no trailer)")\n"
        out += "  cost     \(a.probeHitsTotal) uprobe hits"
            + (a.probeHitsPerGuestOp.map { String(format: ", %.1f per guest request", $0) } ?? "")
            + (a.singleSteppedProbeHits.map { ", \($0) of them single-stepped (a second trap each)" } ?? "") + "\n"
        if let c = a.capture.tracingCost {
            let each = c.bpfProgramRuns > 0 ? String(format: "%.2f us each; ", Double(c.bpfRunTimeNs) / Double(c.bpfProgramRuns) / 1000) : ""
            out += "           BPF programs ran \(c.bpfProgramRuns) times for \(ms(c.bpfRunTimeNs)) (\(each)the uprobe traps not included)"
                + (c.collectorCPUNs.map { ", the collector used \(ms($0)) of CPU while capturing" } ?? "") + "\n"
        }
        for w in a.warnings { out += "  WARNING  \(w)\n" }
        out += "\n" + verdict(a) + "\n" + causeCosts(a) + "\n" + recommendations(a) + "\n"
        switch listing {
        case .costliest:
            out += "costliest ops: the \(a.costliestOps.count) of \(a.opCount) with the most host syncs, then the most time in them"
                + " (--ops all: every op in time order; --op N: one op)\n"
            renderOps(a.costliestOps, into: &out)
        case .all:
            if a.opCount > a.ops.count {
                out += "(the first \(a.ops.count) of \(a.opCount) ops; every op is counted in the totals: --max-ops to list more)\n\n"
            }
            renderOps(a.ops, into: &out)
        case let .one(index):
            if let op = a.pinnedOp {
                renderOps([op], into: &out)
            } else {
                out += "no op #\(index): the capture has \(a.opCount) ops, #0 to #\(a.opCount - 1)\n"
            }
        }
        if !a.unattributed.isEmpty {
            out += "\nunattributed (could not be placed)"
                + (a.unattributedCount > a.unattributed.count ? ": the first \(a.unattributed.count) of \(a.unattributedCount)" : "") + "\n"
            for u in a.unattributed {
                out += "   \(u.reason)\n"
                render(u.node, prefix: "     ", last: true, into: &out)
            }
        }
        let t = a.totals
        let underOps = t.hostSyncsUnderRequests
        let outside = t.hostSyncsInGroups
        out += "\ntotals\n"
        out += "  guest writes         \(t.guestWrites)\n"
        out += "  guest flushes        \(t.guestFlushes)\n"
        out += "  host fdatasyncs      \(t.hostSyncs)  (\(underOps) under guest requests, \(outside) at image open/close, \(t.unattributedHostSyncs) unattributed)\n"
        if !t.causes.isEmpty {
            out += "  by cause\n"
            for c in Cause.allCases { if let n = t.causes[c] { out += "    \(c.rawValue.padding(toLength: 24, withPad: " ", startingAt: 0)) \(n)\n" } }
        }
        if a.images.count > 1 {
            out += "  by image\n"
            for i in a.images {
                out += "    \(a.disk(ofImage: i.path).map { "\($0.displayName) " } ?? "")\(i.path): \(i.guestWrites) writes, \(i.guestFlushes) flushes, \(i.hostSyncs) host syncs\n"
            }
        }
        if let amp = t.syncAmplification {
            out += "  sync amplification   \(String(format: "%.2f", amp)) host syncs per guest flush\n"
        } else {
            out += "  sync amplification   n/a (no guest flush)\n"
        }
        let untraced = Set(a.untracedLevels.map(\.name))
        if !untraced.isEmpty {
            out += "  not counted          " + KernelLevel.Name.allCases.filter(untraced.contains).map(uncounted).joined(separator: "; ")
                + " (this kernel lacks their hooks: see `kernel` above)\n"
        }
        if t.journalCommits + t.deviceFlushes + t.deviceFUAWrites > 0 || a.manifest.devices?.isEmpty == false {
            out += "  below QEMU           \(t.journalCommits) journal commits\(journalKinds(a.manifest)), \(t.deviceFlushes) device flushes, \(t.deviceFUAWrites) FUA writes"
            if t.guestFlushes > 0 {
                let g = Double(t.guestFlushes)
                out += String(format: " (per guest flush: %.2f host syncs -> %.2f commits -> %.2f device flushes)",
                              Double(t.hostSyncs) / g, Double(t.journalCommits) / g, Double(t.deviceFlushes) / g)
            }
            out += "\n"
            if t.unlinkedJournalCommits + t.unlinkedDeviceFlushes + t.unlinkedDeviceFUAWrites > 0 {
                out += "  not the target's     \(t.unlinkedJournalCommits) journal commits, \(t.unlinkedDeviceFlushes) device flushes, "
                    + "\(t.unlinkedDeviceFUAWrites) FUA writes on the same devices with no sync of the target in progress\n"
            }
        }
        for i in a.rawImages {
            out += "  raw image            \(i.path): no format-level amplification (\(i.hostSyncs) host syncs for \(i.guestFlushes) guest flushes); "
                + "the number that matters is the device level: device flushes per guest flush\n"
        }
        if let first = t.firstFlushHostSyncs {
            out += "  first guest flush    \(first) host syncs up to and including it"
                + (t.steadyStateAmplification.map { String(format: "; then %.2f per guest flush", $0) } ?? "") + "\n"
        }
        if let m = a.model, m.hasContent { out += model(m, a) }
        return out
    }

    /// The command line, cut after `commandLineLimit` characters with the count of what was cut.
    static func elided(_ command: [String]) -> String {
        let line = command.joined(separator: " ")
        guard line.count > commandLineLimit else { return line }
        return String(line.prefix(commandLineLimit)) + " ... (\(line.count - commandLineLimit) more characters; --format json has them all)"
    }

    /// The answer in a few lines: host syncs per guest flush, what they cost below QEMU, the model's word.
    static func verdict(_ a: Analysis) -> String {
        let t = a.totals
        var out = "verdict\n"
        if let amp = t.syncAmplification {
            out += "  host syncs per guest flush   " + String(format: "%.2f", amp)
            if let first = t.firstFlushHostSyncs {
                out += " (\(first) up to and including the first guest flush"
                    + (t.steadyStateAmplification.map { String(format: "; then %.2f per guest flush", $0) } ?? "") + ")"
            }
            out += "\n"
            let untraced = Set(a.untracedLevels.map(\.name))
            let g = Double(t.guestFlushes)
            let commits = untraced.contains(.journal) ? "journal commits not traced" : String(format: "%.2f journal commits", Double(t.journalCommits) / g)
            let flushes = untraced.contains(.device) ? "device flushes not traced" : String(format: "%.2f device flushes", Double(t.deviceFlushes) / g)
            out += "  below it, per guest flush    \(commits), \(flushes)\n"
        } else {
            out += "  host syncs per guest flush   n/a: no guest flush (\(t.hostSyncs) host syncs, \(t.guestWrites) guest writes)\n"
        }
        out += "  model                        "
        switch ModelComparison.verdict(a.model) {
        case .matched:
            let m = a.model!
            out += "matched: \(m.matchedOps) ops as predicted"
                + (m.timingDependentCount > 0 ? ", \(m.timingDependentCount) timing-dependent" : "")
                + (m.unpredictedCount > 0 ? ", \(m.unpredictedCount) unpredicted" : "")
                + " (\(m.predictedHostSyncs) host syncs predicted, \(t.hostSyncs) observed)\n"
        case .deviating:
            let m = a.model!
            out += "deviating: \(m.deviatingCount == 1 ? "1 op differs" : "\(m.deviatingCount) ops differ") from the prediction, \(m.matchedOps) as predicted"
                + " (\(m.predictedHostSyncs) host syncs predicted, \(t.hostSyncs) observed; see `reference model` below)\n"
        case .unpredicted:
            if let m = a.model, m.unpredictedCount > 0 {
                out += "unpredicted: \(m.unpredictedCount) ops the model does not cover (reasons under `reference model` below)\n"
            } else {
                out += "unpredicted: \(noModel)\n"
            }
        }
        return out
    }

    /// Why there is no model: what a user can pass to get one.
    static let noModel = "the capture has no image state or cache mode for the model (pass --image PATH, the image as it was before the run, and --qemu-cache MODE)"

    /// One line per cause, costliest first: syncs, share, time in them and in the device flushes below.
    static func causeCosts(_ a: Analysis) -> String {
        let c = a.costs
        var out = "where the time goes: \(ms(c.hostSyncTime.sumNs)) in \(a.totals.hostSyncs) host syncs"
            + (c.hostSyncTime.p50Ns.map { " (p50 \(ms($0)), p99 \(ms(c.hostSyncTime.p99Ns ?? 0)))" } ?? "") + "\n"
        for cost in c.causes {
            let share = c.share(of: cost).map { String(format: "%3.0f%%", $0 * 100) } ?? "   -"
            out += "  \(cost.cause.rawValue.padding(toLength: 22, withPad: " ", startingAt: 0))"
                + "\(String(cost.hostSyncs).leftPadded(6)) syncs \(share)  \(ms(cost.hostSyncTime.sumNs).leftPadded(12)) \(percentiles(cost.hostSyncTime))"
            let d = cost.deviceFlushTime
            if d.count > 0 { out += "; \(d.count) device flushes \(ms(d.sumNs)) \(percentiles(d))" }
            out += "\n"
        }
        let f = c.guestFlushLatency
        if f.count > 0 {
            out += "guest flush latency: p50 \(ms(f.p50Ns ?? 0)), p90 \(ms(f.p90Ns ?? 0)), p99 \(ms(f.p99Ns ?? 0)), max \(ms(f.maxNs ?? 0))"
                + " over \(f.count == 1 ? "1 flush" : "\(f.count) flushes") (entry to the return of its last host sync)\n"
        }
        return out
    }

    private static func percentiles(_ l: LatencySummary) -> String {
        guard let p50 = l.p50Ns, let p99 = l.p99Ns else { return "" }
        return "(p50 \(ms(p50)), p99 \(ms(p99)))"
    }

    /// Each configuration change the model predicts, the most host syncs removed first, with its trade-off.
    static func recommendations(_ a: Analysis) -> String {
        guard let m = a.model, !m.images.isEmpty else { return "what to change: nothing predicted: \(noModel)\n" }
        var out = "what to change (the model on this capture's guest ops: \(m.predictedHostSyncs) host syncs as run"
            + (m.predictedAmplification.map { String(format: ", %.2f per guest flush", $0) } ?? "") + ")\n"
        for r in a.recommendations {
            let name = setting(r).padding(toLength: 24, withPad: " ", startingAt: 0)
            if let p = r.prediction {
                let change = p.removedHostSyncs > 0 ? "\(p.removedHostSyncs) fewer"
                    : p.removedHostSyncs < 0 ? "\(-p.removedHostSyncs) more" : "no change"
                out += "  \(name) \(p.hostSyncs == 1 ? "1 host sync" : "\(p.hostSyncs) host syncs")"
                    + (p.amplification.map { String(format: " (%.2f per guest flush)", $0) } ?? "") + ": \(change)\n"
            } else {
                out += "  \(name) not predicted: " + (r.notPredicted.map(reason) ?? "") + "\n"
            }
            out += "  \("".padding(toLength: 24, withPad: " ", startingAt: 0)) trade-off: \(tradeOff(r))\n"
        }
        return out
    }

    /// `lazy_refcounts=on`, `cache=unsafe`, `l2-cache-size`.
    static func setting(_ r: Recommendation) -> String {
        guard let value = r.options?.summary[r.knob.rawValue] else { return r.knob.rawValue }
        return r.knob == .clusterSize || r.knob == .l2CacheSize ? "\(r.knob.rawValue)=\(Int(value).map(size) ?? value)" : "\(r.knob.rawValue)=\(value)"
    }

    static func size(_ bytes: Int) -> String {
        bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? "\(bytes >> 20)M" : bytes >= 1024 && bytes % 1024 == 0 ? "\(bytes >> 10)k" : "\(bytes)"
    }

    static func reason(_ r: Recommendation.NotPredicted) -> String {
        switch r {
        case .asRunUnpredicted: return "the model leaves some ops of this capture unpredicted as run (see the model's reasons), so it cannot count what a larger cache removes"
        }
    }

    /// What a change costs, in one line.
    static func tradeOff(_ r: Recommendation) -> String {
        switch r.knob {
        case .lazyRefcounts: return "a crash leaves the image needing a repair at next open (refcounts rebuilt by a full check)"
        case .preallocation: return "space on the host at creation (metadata: L2 and refcount tables; falloc/full: the data too)"
        case .clusterSize: return "a new image (qemu-img convert); each first write allocates and zero-fills a whole cluster"
        case .extendedL2: return "a new image (qemu-img convert, QEMU 5.2+); L2 tables twice as large, so half the disk per L2 table"
        case .l2CacheSize: return "memory: 1 MiB of L2 cache covers 8 GiB of disk at 64 KiB clusters"
        case .cache:
            return r.options?.cache == .unsafe ? "loses data on a host crash: guest flushes are ignored"
                : "the guest's data is safe only once it flushes (a guest without flushes loses writes on a host crash)"
        }
    }

    /// Ops with their trees, runs of ops of one shape folded into the first with a count.
    private static func renderOps(_ ops: [GuestOp], into out: inout String) {
        for run in OpShape.runs(ops) {
            let op = run.first!
            out += header(op)
            if run.count > 1 {
                let more = run.dropFirst().prefix(8).map { "#\($0.index)" }.joined(separator: ", ")
                out += " (x\(run.count): also \(more)\(run.count > 9 ? ", ..." : ""))"
            }
            out += "\n"
            renderChildren(op.children, prefix: "   ", into: &out)
        }
    }

    /// The kernel and its levels below QEMU: what was traced through which hooks, and what not and why.
    static func kernel(_ m: Manifest) -> String {
        guard let levels = m.kernelLevels else { return "" }
        let traced = levels.filter(\.traced).map { l in
            l.name == .syncSyscalls ? "\(l.name.rawValue) (\(m.kernelProbe == "kprobe" ? "kprobes" : "tracepoints"))" : l.name.rawValue
        }
        var out = "  kernel   Linux \(m.kernelRelease): traced \(traced.joined(separator: ", "))\n"
        for l in levels where !l.traced {
            out += "  kernel   \(l.name.rawValue) not traced: \(l.reason ?? "no hook attached")\n"
        }
        return out
    }

    /// What a journal commit is on the images' file systems, when one of them is not ext4's jbd2.
    static func journalKinds(_ m: Manifest) -> String {
        let systems = Set((m.devices ?? []).compactMap(\.fileSystem))
        guard systems.contains(.xfs) || systems.contains(.btrfs) else { return "" }
        let kinds = [(FileSystemKind.ext4, "jbd2 commits"), (.xfs, "XFS log forces"), (.btrfs, "btrfs transaction commits")]
            .filter { systems.contains($0.0) }.map(\.1)
        return " (" + kinds.joined(separator: ", ") + ")"
    }

    /// The devices below the images and what holds the images on each.
    static func devices(_ m: Manifest) -> String {
        (m.devices ?? []).map { d in
            let fs = d.fileSystem.map { $0 == .blockDevice ? "the image itself (host_device)" : "\($0)" } ?? "unknown file system"
            return "  device   \(d.major):\(d.minor)\(d.name.map { " (\($0))" } ?? ""), \(fs): \(d.images.joined(separator: ", "))\n"
        }.joined()
    }

    /// What the totals cannot count without a level.
    static func uncounted(_ level: KernelLevel.Name) -> String {
        switch level {
        case .syncSyscalls: return "host fdatasync/fsync calls"
        case .fsSync: return "file-system syncs under host syncs"
        case .journal: return "journal commits"
        case .device: return "device flushes and FUA writes"
        case .ioUring: return "io_uring fsyncs (the host syncs of aio=io_uring)"
        }
    }

    /// The reference model next to what QEMU did.
    static func model(_ m: ModelComparison, _ a: Analysis) -> String {
        var out = "\nreference model (cache=\(m.options.cache.rawValue)"
        if let l = m.options.lazyRefcounts { out += ", lazy_refcounts=\(l ? "on" : "off")" }
        if let p = m.options.preallocation { out += ", preallocation=\(p)" }
        if let b = m.options.clusterBits { out += ", cluster_size=\(1 << b)" }
        out += ")\n"
        out += "  host fdatasyncs      predicted \(m.predictedHostSyncs), observed \(a.totals.hostSyncs)\n"
        let amp = { (v: Double?) in v.map { String(format: "%.2f", $0) } ?? "n/a" }
        out += "  sync amplification   predicted \(amp(m.predictedAmplification)), observed \(amp(a.totals.syncAmplification))\n"
        for c in Cause.allCases where m.predictedCauses[c] != nil || a.totals.causes[c] != nil {
            out += "    \(c.rawValue.padding(toLength: 24, withPad: " ", startingAt: 0)) predicted \(m.predictedCauses[c] ?? 0), observed \(a.totals.causes[c] ?? 0)\n"
        }
        out += "  ops                  \(m.matchedOps) as predicted, \(m.deviatingCount) deviating"
            + (m.timingDependentCount == 0 ? "" : ", \(m.timingDependentCount) timing-dependent (QEMU runs their parts concurrently)") + "\n"
        for i in m.deviatingOps + m.timingDependentOps {
            guard let op = a.ops.first(where: { $0.index == i }), let p = m.predictions[i] else { continue }
            out += "  \(header(op))\n"
            out += "      predicted: \(causeList(p.causes))\n"
            out += "      observed:  \(causeList(op.causes))\n"
        }
        if m.unpredictedCount > 0 {
            out += "  unpredicted          \(m.unpredictedCount) ops (not counted as deviating)\n"
            for (i, reason) in m.unpredictedOps.sorted(by: { $0.key < $1.key }) {
                guard let op = a.ops.first(where: { $0.index == i }) else { continue }
                out += "  \(header(op))\n      unpredicted: \(reason.rawValue)\n"
            }
        }
        return out
    }

    static func causeList(_ c: [Cause: Int]) -> String {
        c.isEmpty ? "no host sync" : Cause.allCases.compactMap { k in c[k].map { "\(k.rawValue) \($0)" } }.joined(separator: ", ")
    }

    static func header(_ op: GuestOp) -> String {
        let what: String
        switch op.kind {
        case .write: what = "write \(op.offset)+\(op.bytes)"
        case .flush: what = "flush"
        case .discard: what = "discard \(op.offset)+\(op.bytes)"
        case .writeZeroes: what = "write_zeroes \(op.offset)+\(op.bytes)" + (op.unmap == true ? " unmap" : "")
        case .write where op.compressed == true: what = "write \(op.offset)+\(op.bytes) compressed"
        case .truncate: what = "truncate to \(op.offset)"
        case .imageOpen: what = "image open"
        case .imageCreate: what = "image create"
        case .imageClose: what = "image close"
        case .housekeeping: what = "housekeeping"
        case .snapshot: what = "snapshot"
        case .imageCheck: what = "image check"
        case .makeEmpty: what = "make empty"
        }
        let described = op.origin.map { "\(what) by \($0)" } ?? what
        let syncs = (op.hostSyncs == 1 ? "1 host sync" : "\(op.hostSyncs) host syncs") + (op.image.map { " on \($0)" } ?? "")
        let time = op.hostSyncs > 0 ? ", \(ms(op.hostSyncTimeNs)) in host syncs" : ""
        return "#\(op.index) \(described) at \(ms(op.startNs)) [\(op.entry)] \(syncs), \(op.probeHits) probe hits\(time)"
    }

    private static func render(_ n: CausalNode, prefix: String, last: Bool, into out: inout String) {
        out += prefix + (last ? "└─ " : "├─ ") + line(n) + "\n"
        renderChildren(n.children, prefix: prefix + (last ? "   " : "│  "), into: &out)
    }

    /// Renders siblings, folding runs of leaf nodes that differ only in their cache index
    /// (qcow2_cache_write visits every entry; most are clean) into one line with a count.
    private static func renderChildren(_ nodes: [CausalNode], prefix: String, into out: inout String) {
        var i = 0
        while i < nodes.count {
            var j = i + 1
            while j < nodes.count, foldable(nodes[i], nodes[j]) { j += 1 }
            let last = j == nodes.count
            if j - i > 1 {
                let first = nodes[i].details.index.map(String.init) ?? "?"
                let lastIndex = nodes[j - 1].details.index.map(String.init) ?? "?"
                out += prefix + (last ? "└─ " : "├─ ") + line(nodes[i], index: "\(first)-\(lastIndex)") + " (x\(j - i))\n"
            } else {
                render(nodes[i], prefix: prefix, last: last, into: &out)
            }
            i = j
        }
    }

    private static func foldable(_ a: CausalNode, _ b: CausalNode) -> Bool {
        guard a.kind == b.kind, a.children.isEmpty, b.children.isEmpty, a.details.index != nil else { return false }
        var x = a.details, y = b.details
        x.index = nil
        y.index = nil
        return x == y
    }

    /// One node's line; `index` stands for the node's cache index (a folded run's range).
    private static func line(_ n: CausalNode, index: String? = nil) -> String {
        var strings = n.details.strings
        if let index, let i = strings.firstIndex(where: { $0.key == "index" }) { strings[i].value = index }
        let details = strings.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        if n.kind.isStorage {
            return "\(n.kind) \(details)" + (n.latencyNs.map { " \(ms($0))" } ?? "") + " tid \(n.tid)"
        }
        if n.kind == .hostSync {
            let lat = n.latencyNs.map { " \(ms($0))" } ?? " (no exit captured)"
            let ret = n.returnValue.map { $0 == 0 ? "" : " = \($0)" } ?? ""
            let cause = n.cause.map { " [\($0.rawValue)]" } ?? ""
            return "HOST \((n.details.syscall ?? .sync).rawValue)(\(n.details.fd.map(String.init) ?? "?"))\(ret)\(lat) tid \(n.tid)\(cause)"
        }
        return "\(n.kind)\(details.isEmpty ? "" : " " + details) at \(ms(n.timeNs)) tid \(n.tid)"
    }

    static func ms(_ ns: UInt64) -> String { String(format: "%.3f ms", Double(ns) / 1e6) }
}

extension String {
    /// The string right-aligned in `width` characters.
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
