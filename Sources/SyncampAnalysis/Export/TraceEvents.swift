import Foundation

/// Writes a capture's ops as Chrome trace-event JSON, which ui.perfetto.dev and chrome://tracing open.
///
/// - Each op is an async slice on its thread's track (coroutines overlap on one
///   thread, so requests cannot nest as thread slices), named like the report's header.
/// - Each node with a duration (host syncs, ext4 syncs, journal commits, device
///   flushes) is a complete slice on the thread it ran on; other nodes (probe hits)
///   are instants.
/// - Flow arrows go from the op (a zero-length anchor slice at its start) to each
///   host sync under it, and from a host sync to the device flushes under it.
///
/// Times are microseconds since the capture started. Events are written as ops
/// are handed on, so memory does not grow with the capture.
public struct TraceEvents {
    private let write: (String) -> Void
    private let pid: Int
    private var first = true
    private var nextFlow = 1
    private var threads: Set<UInt32> = []

    public init(pid: Int32, write: @escaping (String) -> Void) {
        self.pid = Int(pid)
        self.write = write
        write("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n")
        emit(["ph": "M", "name": "process_name", "pid": self.pid, "tid": 0, "args": ["name": "qemu pid \(pid)"]])
    }

    /// Adds a finished op and its tree.
    public mutating func add(_ op: GuestOp) {
        let name = Self.name(op)
        let id = "op\(op.index)"
        thread(op.tid)
        emit(["ph": "b", "cat": "request", "name": name, "id": id, "pid": pid, "tid": Int(op.tid), "ts": us(op.startNs),
              "args": ["entry": op.entry, "host_syncs": op.hostSyncs, "probe_hits": op.probeHits]])
        emit(["ph": "X", "cat": "request", "name": name, "pid": pid, "tid": Int(op.tid), "ts": us(op.startNs), "dur": 0])
        for c in op.children { add(c, flowFrom: (op.tid, op.startNs)) }
        emit(["ph": "e", "cat": "request", "name": name, "id": id, "pid": pid, "tid": Int(op.tid), "ts": us(max(op.endNs, op.startNs))])
    }

    /// Adds a node no op took.
    public mutating func addUnplaced(_ node: CausalNode) {
        add(node, flowFrom: nil)
    }

    /// Closes the JSON.
    public mutating func finish() {
        write("\n]}\n")
    }

    private mutating func add(_ node: CausalNode, flowFrom: (tid: UInt32, ns: UInt64)?) {
        thread(node.tid)
        var fields: [String: Any] = [:]
        for (k, v) in node.details.strings { fields[k] = v }
        if let c = node.cause { fields["cause"] = c.rawValue }
        if let r = node.returnValue { fields["return"] = r }
        let name = node.kind == .hostSync ? "HOST " + (node.details.syscall ?? .sync).rawValue : (node.symbol ?? node.kind.name)
        if let dur = node.latencyNs {
            emit(["ph": "X", "cat": node.kind.name, "name": name, "pid": pid, "tid": Int(node.tid), "ts": us(node.timeNs),
                  "dur": Double(dur) / 1000, "args": fields])
        } else {
            emit(["ph": "i", "s": "t", "cat": node.kind.name, "name": name, "pid": pid, "tid": Int(node.tid), "ts": us(node.timeNs),
                  "args": fields])
        }
        // Arrows: request -> host sync, host sync -> device flush.
        if let from = flowFrom, node.latencyNs != nil,
           node.kind == .hostSync || node.kind == .deviceFlush || node.kind == .deviceFUAWrite {
            let id = nextFlow
            nextFlow += 1
            emit(["ph": "s", "cat": "cause", "name": "caused", "id": id, "pid": pid, "tid": Int(from.tid), "ts": us(from.ns)])
            emit(["ph": "f", "bp": "e", "cat": "cause", "name": "caused", "id": id, "pid": pid, "tid": Int(node.tid), "ts": us(node.timeNs)])
        }
        let next: (UInt32, UInt64)? = node.kind == .hostSync && node.latencyNs != nil ? (node.tid, node.timeNs) : flowFrom
        for c in node.children { add(c, flowFrom: next) }
    }

    private mutating func thread(_ tid: UInt32) {
        guard threads.insert(tid).inserted else { return }
        emit(["ph": "M", "name": "thread_name", "pid": pid, "tid": Int(tid), "args": ["name": "tid \(tid)"]])
    }

    private mutating func emit(_ event: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: event, options: [.sortedKeys]) else { return }
        write((first ? "" : ",\n") + String(decoding: data, as: UTF8.self))
        first = false
    }

    private func us(_ ns: UInt64) -> Double { Double(ns) / 1000 }

    static func name(_ op: GuestOp) -> String {
        switch op.kind {
        case .write, .discard, .writeZeroes: return "#\(op.index) \(op.kind.rawValue) \(op.offset)+\(op.bytes)"
        case .flush: return "#\(op.index) flush"
        default: return "#\(op.index) \(op.kind.rawValue)"
        }
    }
}
