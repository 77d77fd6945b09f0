import ArgumentParser
import Foundation
import SyncampAnalysis
import SyncampCapture
import SyncampQcow2

/// `analyzer whatif`: the capture's guest ops replayed through the model with other options.
struct WhatIfCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whatif",
        abstract: "Predict the host syncs of the same guest ops with other qcow2 or cache options.",
        discussion: """
        Replays the capture's guest writes and flushes through the built-in qcow2 \
        reference model, once as they ran and once with the options given, and \
        prints both next to what was observed.

        EXAMPLES:
          analyzer whatif run.syncamp --lazy-refcounts on
          analyzer whatif run.syncamp --preallocation metadata
          analyzer whatif run.syncamp --cache unsafe --format json
          analyzer whatif run.syncamp --l2-cache-size 1M
        """
    )

    @Argument(help: "The capture file written by `collector -o`.")
    var capture: String

    @Option(help: "lazy_refcounts: on or off.")
    var lazyRefcounts: OnOff?

    @Option(help: "preallocation: metadata (also stands for falloc and full) or off.")
    var preallocation: String?

    @Option(help: "Cache mode: writeback, writethrough, directsync, none, unsafe.")
    var cache: CacheMode?

    @Option(help: "Cluster size in bytes (a power of two, 512 to 2M); the image is then simulated as a fresh one.")
    var clusterSize: UInt64?

    @Option(help: "extended_l2: on or off; the image is then simulated as a fresh one.")
    var extendedL2: OnOff?

    @Option(help: "l2-cache-size in bytes (K, M, G suffixes); replaces cache-size and l2-cache-entry-size of the command line.")
    var l2CacheSize: String?

    @OptionGroup var source: ModelSource

    @OptionGroup var progressOption: ProgressOption

    @Option(help: "Output format: text or json.")
    var format: ReportCommand.Format = .text

    enum OnOff: String, ExpressibleByArgument { case on, off }

    func validate() throws {
        if let p = preallocation, !["metadata", "falloc", "full", "off"].contains(p) {
            throw ValidationError("--preallocation takes metadata, falloc, full or off")
        }
        if let c = clusterSize, c < 512 || c > 2 << 20 || c & (c - 1) != 0 {
            throw ValidationError("--cluster-size must be a power of two from 512 to 2097152")
        }
        if let l2 = l2CacheSize, DriveOptions.bytes(l2) == nil {
            throw ValidationError("--l2-cache-size takes a size in bytes, with an optional K, M or G suffix")
        }
    }

    func run() throws {
        var reader = try ReportCommand.open(capture)
        let lazy = lazyRefcounts.map { $0 == .on }
        let bits = clusterSize.map { UInt64.bitWidth - 1 - $0.leadingZeroBitCount }
        let cache = self.cache
        let preallocation = self.preallocation
        let extended = extendedL2.map { $0 == .on }
        let l2Cache = l2CacheSize.flatMap(DriveOptions.bytes)
        var limits = Analysis.Limits()
        limits.recommend = false
        // Both models run while the capture is read: no op has to be kept for a second pass.
        let bar = progressOption.bar(for: capture)
        let asRun = Analysis.run(&reader, images: try source.images(), options: source.options(), whatIf: { observed in
            var options = observed
            options.lazyRefcounts = lazy
            options.preallocation = preallocation
            options.clusterBits = bits
            options.extendedL2 = extended
            if let cache { options.cache = cache }
            if let l2Cache {
                options.drive.l2CacheBytes = l2Cache
                options.drive.cacheBytes = nil
                options.drive.l2CacheEntryBytes = nil
            }
            return options
        }, limits: limits, progress: bar?.update(offset:size:events:))
        bar?.done(size: reader.fileSize, events: asRun.capture.events)
        guard let observed = asRun.model, let whatIf = asRun.whatIf else {
            throw ReportCommand.fail("the capture has no image state and no cache mode for the model: pass --image PATH (the image as it was before the run) and --qemu-cache MODE")
        }
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let out = WhatIfReport(observed: asRun.totals, asRun: observed, whatIf: whatIf)
            FileHandle.standardOutput.write(try encoder.encode(out) + Data("\n".utf8))
        case .text:
            FileHandle.standardOutput.write(Data(WhatIfReport.text(observed: asRun.totals, asRun: observed, whatIf: whatIf).utf8))
        }
    }
}

/// Where the model's inputs come from when the capture lacks them.
struct ModelSource: ParsableArguments {
    @Option(name: .customLong("image"), help: "A qcow2 image as it was before the run (for captures without image state); repeatable.")
    var imagePaths: [String] = []

    @Option(name: .customLong("qemu-cache"), help: "The cache mode QEMU ran with, when its command line does not say.")
    var cacheMode: CacheMode?

    func images() throws -> [ImageState] {
        try imagePaths.map { p in
            do { return try Qcow2Reader.read(path: p, name: URL(fileURLWithPath: p).resolvingSymlinksInPath().path) }
            catch let e as Qcow2Error { throw ReportCommand.fail(e.description) }
        }
    }

    func options() -> ModelOptions? { cacheMode.map { ModelOptions(cache: $0) } }
}

extension CacheMode: ExpressibleByArgument {}

/// What `whatif` prints.
struct WhatIfReport: Encodable {
    var schema = "syncamp.whatif/1"
    var observed_host_fdatasyncs: Int
    var observed_sync_amplification: Double?
    var as_run: Side
    var what_if: Side

    struct Side: Encodable {
        var options: [String: String]
        var predicted_host_fdatasyncs: Int
        var predicted_sync_amplification: Double?
        var predicted_causes: [String: Int]

        init(_ m: ModelComparison) {
            options = m.options.summary
            predicted_host_fdatasyncs = m.predictedHostSyncs
            predicted_sync_amplification = m.predictedAmplification
            predicted_causes = Dictionary(uniqueKeysWithValues: m.predictedCauses.map { ($0.key.rawValue, $0.value) })
        }
    }

    init(observed: Analysis.Totals, asRun: ModelComparison, whatIf: ModelComparison) {
        observed_host_fdatasyncs = observed.hostSyncs
        observed_sync_amplification = observed.syncAmplification
        as_run = Side(asRun)
        what_if = Side(whatIf)
    }

    static func text(observed: Analysis.Totals, asRun: ModelComparison, whatIf: ModelComparison) -> String {
        let a = Side(asRun), w = Side(whatIf)
        let amp = { (v: Double?) in v.map { String(format: "%.2f", $0) } ?? "n/a" }
        let opts = { (s: Side) in s.options.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }
        var out = "what if: \(opts(w))\n"
        out += "                       observed   model as run   model what-if\n"
        out += "  host fdatasyncs      \(pad(observed.hostSyncs))\(pad(a.predicted_host_fdatasyncs, 15))\(pad(w.predicted_host_fdatasyncs, 16))\n"
        out += "  sync amplification   \(pad(amp(observed.syncAmplification)))\(pad(amp(a.predicted_sync_amplification), 15))\(pad(amp(w.predicted_sync_amplification), 16))\n"
        for c in Cause.allCases {
            let o = observed.causes[c], p = asRun.predictedCauses[c], q = whatIf.predictedCauses[c]
            guard o != nil || p != nil || q != nil else { continue }
            out += "    \(c.rawValue.padding(toLength: 19, withPad: " ", startingAt: 0))\(pad(o ?? 0))\(pad(p ?? 0, 15))\(pad(q ?? 0, 16))\n"
        }
        return out
    }

    private static func pad(_ v: CustomStringConvertible, _ width: Int = 8) -> String {
        String(repeating: " ", count: max(0, width - v.description.count)) + v.description
    }
}
