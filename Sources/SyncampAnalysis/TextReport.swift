import Foundation
import SyncampCapture

/// Renders an analysis for people: what was traced, one tree per guest operation, totals.
public enum TextReport {
    public static func render(_ a: Analysis) -> String {
        var out = ""
        let m = a.manifest
        out += "syncamp report: \(a.capture.path)\n"
        out += "  target   pid \(m.target.pid) (\(m.target.mode)) \(m.target.command.joined(separator: " "))\n"
        out += "  binary   \(m.target.binaryPath), build-id \(m.target.buildID ?? "none"), "
            + (m.probeSet == "usdt" ? "QEMU's USDT probes (dtrace trace backend)"
               : m.target.hasSymtab ? "full symbol table" + (m.target.symbols.map { " from \($0)" } ?? "") : "exported symbols only") + "\n"
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
            + (a.probeHitsPerGuestOp.map { String(format: ", %.1f per guest request", $0) } ?? "") + "\n"
        for w in a.warnings { out += "  WARNING  \(w)\n" }
        out += "\n"
        if a.opCount > a.ops.count {
            out += "(the first \(a.ops.count) of \(a.opCount) ops; every op is counted in the totals: --max-ops to list more)\n\n"
        }
        for op in a.ops {
            out += header(op) + "\n"
            renderChildren(op.children, prefix: "   ", into: &out)
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
                out += "    \(i.path): \(i.guestWrites) writes, \(i.guestFlushes) flushes, \(i.hostSyncs) host syncs\n"
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
        if let m = a.model { out += model(m, a) }
        return out
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
            out += "  #\(i) \(header(op))\n"
            out += "      predicted: \(causeList(p.causes))\n"
            out += "      observed:  \(causeList(op.causes))\n"
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
        case .imageOpen: what = "image open"
        case .imageClose: what = "image close"
        case .housekeeping: what = "housekeeping"
        }
        let syncs = (op.hostSyncs == 1 ? "1 host sync" : "\(op.hostSyncs) host syncs") + (op.image.map { " on \($0)" } ?? "")
        return "#\(op.index) \(what) at \(ms(op.startNs)) [\(op.entry)] \(syncs), \(op.probeHits) probe hits"
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
                let indexes = nodes[i..<j].compactMap { $0.details["index"] }
                var first = nodes[i]
                first.details["index"] = "\(indexes.first ?? "?")-\(indexes.last ?? "?")"
                out += prefix + (last ? "└─ " : "├─ ") + line(first) + " (x\(j - i))\n"
            } else {
                render(nodes[i], prefix: prefix, last: last, into: &out)
            }
            i = j
        }
    }

    private static func foldable(_ a: CausalNode, _ b: CausalNode) -> Bool {
        guard a.kind == b.kind, a.children.isEmpty, b.children.isEmpty, a.details["index"] != nil else { return false }
        var x = a.details, y = b.details
        x["index"] = nil
        y["index"] = nil
        return x == y
    }

    private static func line(_ n: CausalNode) -> String {
        if ["fs_sync", "journal_commit", "device_flush", "device_fua_write"].contains(n.kind) {
            let details = n.details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return "\(n.kind) \(details)" + (n.latencyNs.map { " \(ms($0))" } ?? "") + " tid \(n.tid)"
        }
        if n.kind == CausalNode.hostSyncKind {
            let lat = n.latencyNs.map { " \(ms($0))" } ?? " (no exit captured)"
            let ret = n.returnValue.map { $0 == 0 ? "" : " = \($0)" } ?? ""
            let cause = n.cause.map { " [\($0.rawValue)]" } ?? ""
            return "HOST \(n.details["syscall"] ?? "sync")(\(n.details["fd"] ?? "?"))\(ret)\(lat) tid \(n.tid)\(cause)"
        }
        let details = n.details.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "\(n.kind)\(details.isEmpty ? "" : " " + details) at \(ms(n.timeNs)) tid \(n.tid)"
    }

    static func ms(_ ns: UInt64) -> String { String(format: "%.3f ms", Double(ns) / 1e6) }
}
