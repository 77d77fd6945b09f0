import ArgumentParser
import Foundation
import SyncampAnalysis
import SyncampCapture

/// `analyzer export`: a capture in the formats other tools read.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a capture for Perfetto, flame graphs or Graphviz.",
        discussion: """
        FORMATS:
          perfetto  Chrome trace-event JSON: open it in ui.perfetto.dev (or chrome://tracing). \
        Requests are async slices, syncs and device flushes slices on their threads, \
        with flow arrows from each request to its host syncs and on to the device flushes.
          folded    one line per cause path with its count of host syncs, for \
        flamegraph.pl, inferno or speedscope.
          dot       one op's tree for Graphviz (--op N; default: the first op with a host sync).

        EXAMPLES:
          analyzer export run.syncamp --format perfetto -o trace.json
          analyzer export run.syncamp --format folded | flamegraph.pl > syncs.svg
          analyzer export run.syncamp --format dot --op 2 | dot -Tsvg > op2.svg
        """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case perfetto, folded, dot
    }

    @Argument(help: "The capture file written by `collector -o`.")
    var capture: String

    @Option(help: "perfetto, folded or dot.")
    var format: Format

    @Option(name: .shortAndLong, help: "Write to this file instead of stdout.")
    var output: String?

    @Option(help: "The op to draw (dot): its index in the report.")
    var op: Int?

    @OptionGroup var progressOption: ProgressOption

    func validate() throws {
        if op != nil && format != .dot { throw ValidationError("--op goes with --format dot") }
    }

    func run() throws {
        var reader = try ReportCommand.open(capture)
        let sink = try Sink(path: output)
        defer { sink.close() }
        let bar = progressOption.bar(for: capture)
        let progress = bar?.update(offset:size:events:)
        var events: UInt64 = 0
        defer { bar?.done(size: reader.fileSize, events: events) }
        switch format {
        case .perfetto:
            var trace = TraceEvents(pid: reader.manifest.target.pid, write: sink.write)
            events = Analysis.run(&reader, limits: .init(listedOps: 0), observe: { trace.add($0) },
                             observeUnplaced: { trace.addUnplaced($0) }, progress: progress).capture.events
            trace.finish()
        case .folded:
            var stacks = FoldedStacks()
            events = Analysis.run(&reader, limits: .init(listedOps: 0), observe: { stacks.add($0) },
                             observeUnplaced: { stacks.addUnplaced($0) }, progress: progress).capture.events
            sink.write(stacks.render())
        case .dot:
            var found: GuestOp?
            let wanted = op
            events = Analysis.run(&reader, limits: .init(listedOps: 0), observe: { o in
                guard found == nil else { return }
                if let wanted { if o.index == wanted { found = o } } else if o.hostSyncs > 0 { found = o }
            }, progress: progress).capture.events
            guard let found else {
                throw ReportCommand.fail(op.map { "the capture has no op #\($0): `analyzer report` lists them" }
                                         ?? "the capture has no op with a host sync: pass --op N")
            }
            sink.write(DotGraph.render(found))
        }
    }
}

/// Standard output or a file, written in chunks.
final class Sink {
    private let handle: FileHandle
    private var buffer = ""
    private let ownsHandle: Bool

    init(path: String?) throws {
        guard let path else {
            handle = .standardOutput
            ownsHandle = false
            return
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw ReportCommand.fail("cannot write \(path): check that its folder exists and is writable")
        }
        handle = h
        ownsHandle = true
    }

    func write(_ s: String) {
        buffer += s
        if buffer.utf8.count >= 1 << 20 { flush() }
    }

    func flush() {
        handle.write(Data(buffer.utf8))
        buffer = ""
    }

    func close() {
        flush()
        if ownsHandle { try? handle.close() }
    }
}
