import Foundation
import SyncampCapture
import XCTest

/// Manifests, events and whole captures for the capture-format tests.
enum CaptureFixtures {
    static let startNs: UInt64 = 5_000_000_000
    static let pid: UInt32 = 4242

    /// A small realistic probe list: a subset of the collector's catalog, ids = indices.
    static let probes: [Manifest.Probe] = [
        probe(0, .guestWriteCo, "blk_co_do_pwritev_part", []),
        probe(1, .guestFlushCo, "blk_co_flush", []),
        probe(2, .qcow2CacheWrite, "qcow2_cache_write", ["depends", "depends_on_flush", "l2_table_cache", "refcount_block_cache"]),
        probe(3, .threadPoolSubmit, "thread_pool_submit_aio", ["coroutine", "aio_type", "fd"]),
        probe(4, .workerFlush, "handle_aiocb_flush", ["aio_type", "fd"]),
        probe(5, .qemuFdatasync, "qemu_fdatasync", []),
    ]

    static func probe(_ id: Int, _ role: ProbeRole, _ symbol: String, _ derefs: [String]) -> Manifest.Probe {
        Manifest.Probe(id: id, role: role.rawValue, symbol: symbol, table: "symtab",
                       address: 0x40_0000 + UInt64(id) * 0x100, fileOffset: 0x1000 + UInt64(id) * 0x100,
                       isFallback: false, derefs: derefs)
    }

    static func manifest(probes: [Manifest.Probe] = probes) -> Manifest {
        Manifest(tool: "syncamp-collector 0.1.0", createdAt: "2024-05-01T12:00:00Z", hostname: "testhost",
                 kernelRelease: "6.8.0-test", startMonotonicNs: startNs, startRealtimeNs: 1_714_564_800_000_000_000,
                 target: .init(pid: Int32(pid), mode: "spawn", command: ["qemu-io", "-t", "writeback", "img.qcow2"],
                               binaryPath: "/usr/bin/qemu-io", buildID: "0123456789abcdef", hasSymtab: true),
                 kernelProbe: "tracepoint", probes: probes,
                 missingProbes: [.init(role: "bdrv_close_all", symbolsTried: ["bdrv_close_all"], reason: "no such function")],
                 ringBufferBytes: 1 << 20)
    }

    /// A uprobe event with every deref slot filled and marked read.
    static func uprobe(_ i: Int) -> Event {
        Event(timestamp: startNs + UInt64(i) * 1000, pid: pid, tid: 100 + UInt32(i % 3), cpu: UInt32(i % 4),
              kind: .uprobe, probeID: UInt16(i % probes.count),
              args: [0x7f00_0000_0000 + UInt64(i), UInt64(i) * 4096, 4096, 0xdead_beef_0000_0000 | UInt64(i), 5, 6],
              derefs: [0x55aa_0000 + UInt64(i), 8, 9, 0xffff_ffff_ffff_ffff], derefOK: UInt32(i) & 0xf)
    }

    static func syscallEnter(_ i: Int) -> Event {
        Event(timestamp: startNs + 500 + UInt64(i) * 1000, pid: pid, tid: 101, cpu: 1,
              kind: .syscallEnter, probeID: Syscall.fdatasync.rawValue, args: [9])
    }

    static func syscallExit(_ i: Int) -> Event {
        Event(timestamp: startNs + 900 + UInt64(i) * 1000, pid: pid, tid: 101, cpu: 1,
              kind: .syscallExit, probeID: Syscall.fsync.rawValue,
              args: [i == 0 ? UInt64(bitPattern: -5) : 0])
    }

    static let trailer = Trailer(events: 15, lostEvents: 12, endMonotonicNs: startNs + 1_000_000,
                                 reason: "target-exited", eventsPerProbe: [0: 2, 3: 1, 5: 2])

    /// The records of `standardCapture`, in file order (trailer last).
    static let standardRecords: [CaptureRecord] = {
        var r: [CaptureRecord] = []
        for i in 0..<5 {
            r.append(.event(uprobe(i)))
            r.append(.event(syscallEnter(i)))
            r.append(.event(syscallExit(i)))
            if i == 1 { r.append(.lost(cpu: 0, count: 7)) }
            if i == 2 { r.append(.note(CaptureNote(timestampNs: startNs + 2_500, kind: "detached", message: "qemu-io detached"))) }
            if i == 3 { r.append(.lost(cpu: 3, count: 12)) }
        }
        r.append(.trailer(trailer))
        return r
    }()

    /// Writes `records` (a trailer record finishes the capture; without one the writer is only flushed).
    static func write(_ records: [CaptureRecord], to path: String, manifest: Manifest = manifest()) throws {
        let w = try CaptureWriter(path: path, manifest: manifest)
        var finished = false
        for r in records {
            if case .trailer = r { finished = true }
            try w.append(r)
        }
        if !finished { try w.flush() }
    }

    /// Every record the reader returns, until it stops.
    static func readAll(_ reader: inout CaptureReader) -> [CaptureRecord] {
        var out: [CaptureRecord] = []
        while let r = reader.next() { out.append(r) }
        return out
    }

    /// End offsets of every record (manifest first), found by walking the headers independently of the reader.
    static func recordEnds(_ data: [UInt8]) -> [Int] {
        var ends: [Int] = []
        var at = CaptureFormat.fileHeaderSize
        while at + 8 <= data.count {
            let length = Int(u32(data, at + 4))
            at += 8 + length
            if at > data.count { break }
            ends.append(at)
        }
        return ends
    }

    static func u32(_ d: [UInt8], _ at: Int) -> UInt32 {
        UInt32(d[at]) | UInt32(d[at + 1]) << 8 | UInt32(d[at + 2]) << 16 | UInt32(d[at + 3]) << 24
    }

    static func putU32(_ d: inout [UInt8], _ at: Int, _ v: UInt32) {
        for i in 0..<4 { d[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }

    static func record(type: UInt32, payload: [UInt8]) -> [UInt8] {
        var r = [UInt8](repeating: 0, count: 8)
        putU32(&r, 0, type)
        putU32(&r, 4, UInt32(payload.count))
        return r + payload
    }
}

/// A fresh directory under the system temp dir, removed by `remove()`.
struct TempDir {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("syncamp-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Deterministic pseudo-random numbers (xorshift64*), so failures reproduce.
struct XorShift64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

/// Base class: one temp dir per test and the bytes of the standard capture.
class CaptureTestCase: XCTestCase {
    var dir: TempDir!

    override func setUpWithError() throws {
        dir = try TempDir()
    }

    override func tearDown() {
        dir?.remove()
        dir = nil
    }

    /// Writes the standard capture and returns its bytes.
    func standardCaptureBytes(name: String = "standard.syncamp") throws -> [UInt8] {
        let path = dir.path(name)
        try CaptureFixtures.write(CaptureFixtures.standardRecords, to: path)
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func reader(_ bytes: [UInt8]) throws -> CaptureReader {
        try CaptureReader(data: Data(bytes), path: "mem.syncamp")
    }
}
