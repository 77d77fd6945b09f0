import Foundation
import SyncampCapture
import XCTest
@testable import SyncampAnalysis

/// Exports checked by strict readers of their formats (and by Graphviz when it is installed).
final class ExportTests: AnalysisTestCase {
    typealias F = AnalysisFixtures

    func analysis() throws -> Analysis {
        try F.analyse(F.writeThenFlush(), in: dir)
    }

    func testFoldedStacksCountEveryHostSyncByCausePath() throws {
        let a = try analysis()
        var stacks = FoldedStacks()
        for op in a.ops { stacks.add(op) }
        var total = 0
        var byCause: [String: Int] = [:]
        for line in stacks.render().split(separator: "\n") {
            // flamegraph.pl's grammar: frames without spaces, joined by ';', a space, a positive count.
            let parts = line.split(separator: " ")
            XCTAssertEqual(parts.count, 2, "\(line)")
            let frames = parts[0].split(separator: ";", omittingEmptySubsequences: false)
            XCTAssertFalse(frames.contains { $0.isEmpty }, "\(line)")
            let count = try XCTUnwrap(Int(parts[1]))
            XCTAssertGreaterThan(count, 0)
            XCTAssertEqual(frames.last, "fdatasync")
            byCause["\(frames[0]);\(frames[1])", default: 0] += count
            total += count
        }
        XCTAssertEqual(total, a.totals.hostSyncs)
        // Per op kind and cause, the same counts as the ops' own.
        var expected: [String: Int] = [:]
        for op in a.ops { for (c, n) in op.causes { expected["\(op.kind.rawValue);cause:\(c.rawValue)", default: 0] += n } }
        XCTAssertEqual(byCause, expected)
        XCTAssertEqual(byCause["write;cause:l2_table_alloc"], 3)
        XCTAssertTrue(stacks.render().contains("write;cause:l2_table_alloc;thread_pool_submit_aio;handle_aiocb_flush;qemu_fdatasync;fdatasync 3\n"))
    }

    func testFoldedFramesHaveNoSeparators() {
        XCTAssertEqual(FoldedStacks.frame("a b;c\nd"), "a_b_c_d")
    }

    func testPerfettoJSONIsWellFormedTraceEvents() throws {
        let a = try analysis()
        var text = ""
        var trace = TraceEvents(pid: 4242) { text += $0 }
        for op in a.ops { trace.add(op) }
        trace.finish()
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let events = try XCTUnwrap(root["traceEvents"] as? [[String: Any]])
        var open: [String: Int] = [:]
        var flows: [Int: [String: Double]] = [:]
        var hostSlices = 0
        for e in events {
            let ph = try XCTUnwrap(e["ph"] as? String)
            XCTAssertTrue(["M", "b", "e", "X", "i", "s", "f"].contains(ph), "unknown phase \(ph)")
            XCTAssertNotNil(e["pid"] as? Int, "\(e)")
            XCTAssertNotNil(e["tid"] as? Int, "\(e)")
            XCTAssertNotNil(e["name"] as? String, "\(e)")
            if ph == "M" { continue }
            let ts = try XCTUnwrap(e["ts"] as? Double, "\(e)")
            XCTAssertGreaterThanOrEqual(ts, 0)
            switch ph {
            case "b": open[try XCTUnwrap(e["id"] as? String), default: 0] += 1
            case "e": open[try XCTUnwrap(e["id"] as? String), default: 0] -= 1
            case "X":
                XCTAssertGreaterThanOrEqual(try XCTUnwrap(e["dur"] as? Double), 0)
                if e["cat"] as? String == CausalNode.hostSyncKind.name { hostSlices += 1 }
            case "i": XCTAssertEqual(e["s"] as? String, "t")
            case "s", "f":
                let id = try XCTUnwrap(e["id"] as? Int)
                flows[id, default: [:]][ph] = ts
                if ph == "f" { XCTAssertEqual(e["bp"] as? String, "e") }
            default: break
            }
        }
        XCTAssertEqual(Set(open.values), [0], "every async slice begun is ended")
        XCTAssertEqual(open.count, a.ops.count)
        XCTAssertEqual(hostSlices, 5)
        XCTAssertEqual(flows.count, 5, "one arrow per host sync")
        for (id, f) in flows {
            let s = try XCTUnwrap(f["s"], "flow \(id) has no start"), e = try XCTUnwrap(f["f"], "flow \(id) has no end")
            XCTAssertLessThanOrEqual(s, e, "flow \(id) goes back in time")
        }
    }

    func testDotGraphOfOneOp() throws {
        let a = try analysis()
        let write = try XCTUnwrap(a.ops.first { $0.kind == .write })
        let dot = DotGraph.render(write)
        XCTAssertTrue(dot.hasPrefix("digraph op\(write.index) {\n"))
        XCTAssertTrue(dot.hasSuffix("}\n"))
        // Every edge joins declared nodes; the host syncs are there with their causes.
        let declared = Set(dot.split(separator: "\n").compactMap { l -> String? in
            let t = l.trimmingCharacters(in: .whitespaces)
            return t.hasPrefix("n") && t.contains(" [label=") ? String(t.prefix { $0 != " " }) : nil
        })
        let edges = dot.split(separator: "\n").filter { $0.contains("->") }
        XCTAssertGreaterThan(declared.count, 3, "the write's node and its three host syncs at least")
        XCTAssertEqual(edges.count, declared.count - 1, "a tree: one edge into every node but the root")
        for line in edges {
            let ends = line.replacingOccurrences(of: ";", with: "").split(separator: "-").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " >")) }
            XCTAssertTrue(ends.allSatisfy(declared.contains), "\(line)")
        }
        XCTAssertEqual(dot.components(separatedBy: "HOST fdatasync").count - 1, 3)
        XCTAssertEqual(dot.components(separatedBy: "cause: l2_table_alloc").count - 1, 3)

        // Graphviz itself, when installed (CI installs it with the testbed).
        let dotBinary = "/usr/bin/dot"
        guard FileManager.default.isExecutableFile(atPath: dotBinary) else {
            throw Prerequisite.unavailable("graphviz (/usr/bin/dot) is not installed: the DOT text was checked without it (scripts/testbed.sh --deps installs it)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: dotBinary)
        p.arguments = ["-Tsvg"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = errors
        try p.run()
        input.fileHandleForWriting.write(Data(dot.utf8))
        try input.fileHandleForWriting.close()
        let svg = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        XCTAssertTrue(svg.contains("<svg"))
    }
}
