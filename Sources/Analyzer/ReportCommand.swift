import ArgumentParser
import Foundation
import SyncampAnalysis
import SyncampCapture

/// `analyzer report`: one report of a capture, as text or JSON.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Print the verdict, the cost of each cause, what to change, and the costliest ops of a capture.",
        discussion: """
        EXAMPLES:
          analyzer report run.syncamp                 the summary and the 10 costliest ops
          analyzer report run.syncamp --ops all       every op in time order
          analyzer report run.syncamp --op 42         op #42 with its tree
          analyzer report run.syncamp --format json   everything, with the command line whole
        """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Argument(help: "The capture file written by `collector -o`.")
    var capture: String

    @Option(help: "Output format: text or json.")
    var format: Format = .text

    @Option(name: .shortAndLong, help: "Write the report to this file instead of stdout.")
    var output: String?

    @Option(help: "List at most this many ops with their trees (the first ones); every op is counted in the totals.")
    var maxOps: Int = 1000

    @Option(help: "Text: which ops to list with their trees: N (the N costliest: most host syncs, then most time in them) or all (time order).")
    var ops: String = "10"

    @Option(help: "Text: list only the op of this index, with its tree.")
    var op: Int?

    func validate() throws {
        if ops != "all" && (Int(ops).map { $0 < 0 } ?? true) {
            throw ValidationError("--ops takes a number of ops or all")
        }
    }

    @OptionGroup var source: ModelSource

    @OptionGroup var progressOption: ProgressOption

    /// Opens a capture, or exits with the reader's one-sentence error.
    static func open(_ capture: String) throws -> CaptureReader {
        do {
            return try CaptureReader(path: capture)
        } catch let error as CaptureError {
            throw fail(error.description)
        }
    }

    /// Prints `analyzer: error: ...` and returns the exit code to throw.
    static func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("analyzer: error: \(message)\n".utf8))
        return ExitCode(1)
    }

    func run() throws {
        var reader = try Self.open(capture)
        let bar = progressOption.bar(for: capture)
        let analysis = Analysis.run(&reader, images: try source.images(), options: source.options(),
                                    limits: Analysis.Limits(listedOps: max(0, maxOps), costliestOps: Int(ops) ?? 10, pinnedOp: op),
                                    progress: bar?.update(offset:size:events:))
        bar?.done(size: reader.fileSize, events: analysis.capture.events)
        let text: String
        switch format {
        case .text: text = TextReport.render(analysis, ops: op.map { .one($0) } ?? (ops == "all" ? .all : .costliest))
        case .json: text = try JSONReport.render(analysis)
        }
        if let output {
            do {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
            } catch {
                FileHandle.standardError.write(Data("analyzer: error: cannot write \(output): \(error.localizedDescription)\n".utf8))
                throw ExitCode(1)
            }
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        for w in analysis.warnings where format == .json || output != nil {
            FileHandle.standardError.write(Data("analyzer: warning: \(w)\n".utf8))
        }
    }
}
