import ArgumentParser

/// `analyzer`: reads syncamp captures and reports where the host syncs came from.
@main
struct AnalyzerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyzer",
        abstract: "Explain a syncamp capture: guest ops -> qcow2 metadata work -> host fdatasync.",
        discussion: """
        EXAMPLES:
          analyzer report run.syncamp                      # text report on stdout
          analyzer report run.syncamp --format json        # JSON for scripts (docs/report-format.md)
          analyzer report run.syncamp -o report.txt        # write to a file
          analyzer whatif run.syncamp --lazy-refcounts on  # would lazy_refcounts help?
        """,
        version: "0.1.0",
        subcommands: [ReportCommand.self, WhatIfCommand.self, ExportCommand.self, LiveCommand.self, ReplayCommand.self],
        defaultSubcommand: ReportCommand.self
    )
}
