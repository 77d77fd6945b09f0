import Foundation
import QemuBuildFixtures
import SyncampAnalysis
import SyncampCapture
import SyncampELF
import SyncampProbePlan
import SyncampProbes
import XCTest

/// Manifests as the collector writes them, and event streams modelled on real qemu-io runs.
enum AnalysisFixtures {
    static let startNs: UInt64 = 10_000_000_000
    static let pid: UInt32 = 4242
    static let mainTid: UInt32 = 100

    // Pointers as they look in a real process.
    static let blk: UInt64 = 0x5630_9a2c_1e00
    static let qcow2BS: UInt64 = 0x5630_9a2d_4000
    static let fileBS: UInt64 = 0x5630_9a2e_8000
    static let l2Cache: UInt64 = 0x5630_9a31_0a00
    static let refcountCache: UInt64 = 0x5630_9a31_0b00
    static let pool: UInt64 = 0x5630_9a40_0000
    static let handleAIOCBFunc: UInt64 = 0x5630_98f1_2340
    /// `RawPosixAIOData acb` lives on the request coroutine's stack, so one request reuses one address.
    static let writeACB: UInt64 = 0x7f3a_4c1f_e6a0
    static let flushACB: UInt64 = 0x7f3a_4c0e_96a0
    static let writeCoroutine: UInt64 = 0x5630_9b00_1000
    static let flushCoroutine: UInt64 = 0x5630_9b00_2000

    /// The collector's plan for a synthetic QEMU build (QemuBuildFixtures, checked against the
    /// real binaries it stands for), as the collector writes it into the manifest: the probe
    /// catalog (ProbeCatalog) decides which probes a test's capture has, their ids and the names
    /// of what they read, so a catalog change shows here. Look probes up by role (`Trace.probe`).
    static func planned(_ build: SyntheticQemuBuild, _ set: ProbeSet) -> ProbePlan {
        ProbePlan(symbols: build, abi: .qemu72, set: set)
    }

    /// `--detail` on a QEMU 7.2 build with a full symbol table but no raw_co_flush_to_disk, so host
    /// syncs are linked through thread_pool_submit_aio and handle_aiocb_flush (the path of captures
    /// made before raw_co_flush_to_disk was probed, and of builds without it); blk_aio_pwritev is
    /// left out, since blk_co_do_pwritev_part covers it. `manifest()` does not list raw_co_flush_to_disk
    /// as missing, as those captures, whose catalog had no such entry, do not.
    static let fullPlan = planned(SyntheticQemuBuild.fullSymbolTable.without("raw_co_flush_to_disk"), .detail)
    static let fullProbes: [Manifest.Probe] = fullPlan.manifestProbes

    /// The collector's default (minimal) set on a build with symbols: no per-entry cache flushes,
    /// no qcow2 write entry; raw_co_flush_to_disk instead of the thread pool and the worker.
    static let minimalProbes: [Manifest.Probe] = planned(.fullSymbolTable, .minimal).manifestProbes

    /// `--detail` on a stock (Debian) binary: exported symbols only, no handle_aiocb_flush nor
    /// raw_co_flush_to_disk, fallbacks for writes (blk_pwrite, and blk_aio_pwritev beside it).
    static let stockPlan = planned(.debianStock, .detail)
    static let stockProbes: [Manifest.Probe] = stockPlan.manifestProbes
    static let stockMissing: [Manifest.MissingProbe] = stockPlan.missing

    /// QEMU's USDT probes (dtrace trace backend, stripped 7.2), the default set.
    static let usdtProbes: [Manifest.Probe] = ProbePlan(usdt: SyntheticQemuBuild.dtrace(.qemu72), set: .minimal).manifestProbes

    static func manifest(probes: [Manifest.Probe] = fullProbes, missing: [Manifest.MissingProbe] = []) -> Manifest {
        Manifest(tool: "syncamp-collector 0.1.0", createdAt: "2024-05-01T12:00:00Z", hostname: "testbed",
                 kernelRelease: "6.1.0-21-amd64", startMonotonicNs: startNs, startRealtimeNs: 1_714_564_800_000_000_000,
                 target: .init(pid: Int32(pid), mode: "spawn",
                               command: ["qemu-io", "-t", "writeback", "-c", "write 0 4k", "-c", "flush", "img.qcow2"],
                               binaryPath: "/opt/qemu-7.2/bin/qemu-io", buildID: "5f0c1e2d3a4b",
                               hasSymtab: probes.contains { $0.table == ELFSymbol.Table.symtab.rawValue }),
                 kernelProbe: "tracepoint", probes: probes, missingProbes: missing, ringBufferBytes: 4 << 20)
    }

    /// The standard "qemu-io -t writeback -c 'write 0 4k' -c flush" run (measured: 5 host fdatasyncs).
    static func writeThenFlush() -> Trace {
        var t = Trace(manifest: manifest())
        // Image open releases a temporary BlockBackend.
        t.uprobe(.backendUnref, args: [0x5630_9a2b_0000])
        // write 0 4k: l2_allocate flushes the refcount cache (1), writes the L1 entry (1), then the L2 link (1).
        t.uprobe(.guestWriteCo, args: [blk, 0, 4096, 0x7ffd_1000, 0, 0])
        t.uprobe(.qcow2Write, args: [qcow2BS, 0, 4096, 0x7ffd_1000, 0, 0])
        t.uprobe(.qcow2CacheWrite, args: [qcow2BS, refcountCache],
                 derefs: ["depends": 0, "depends_on_flush": 0, "l2_table_cache": l2Cache, "refcount_block_cache": refcountCache])
        t.flushHandOff(worker: 101, acb: writeACB, coroutine: writeCoroutine, latency: 41_000)
        t.uprobe(.qcow2WriteL1Entry, args: [qcow2BS, 0])
        t.flushHandOff(worker: 102, acb: writeACB, coroutine: writeCoroutine, latency: 52_000)
        t.flushHandOff(worker: 101, acb: writeACB, coroutine: writeCoroutine, latency: 33_000)
        // flush: the L2 cache depends on the refcount cache (1), then the file node's final flush (1).
        t.uprobe(.guestFlushCo, args: [blk])
        t.uprobe(.nodeFlush, args: [qcow2BS])
        t.uprobe(.qcow2CacheWrite, args: [qcow2BS, l2Cache],
                 derefs: ["depends": refcountCache, "depends_on_flush": 0, "l2_table_cache": l2Cache, "refcount_block_cache": refcountCache])
        t.flushHandOff(worker: 102, acb: flushACB, coroutine: flushCoroutine, latency: 74_000)
        t.uprobe(.nodeFlush, args: [fileBS])
        t.flushHandOff(worker: 101, acb: flushACB, coroutine: flushCoroutine, latency: 26_000)
        // qemu-io exits: the image is closed, nothing is dirty any more.
        t.uprobe(.backendUnref, args: [blk])
        t.uprobe(.closeAll)
        return t
    }

    static let writeThenFlushLatencies: [UInt64] = [41_000, 52_000, 33_000, 74_000, 26_000]
    static let writeThenFlushWorkers: [UInt32] = [101, 102, 101, 102, 101]

    /// Writes `records` with CaptureWriter (a trailer finishes the file) and returns the file's bytes.
    static func captureBytes(_ manifest: Manifest, _ records: [CaptureRecord], in dir: TempDir) throws -> Data {
        let path = dir.path("capture-\(UUID().uuidString).syncamp")
        let w = try CaptureWriter(path: path, manifest: manifest)
        var finished = false
        for r in records {
            if case .trailer = r { finished = true }
            try w.append(r)
        }
        if !finished { try w.flush() }
        return try Data(contentsOf: URL(fileURLWithPath: path))
    }

    static func trailer(for events: [Event], lost: UInt64 = 0, end: UInt64? = nil) -> Trailer {
        var perProbe: [Int: UInt64] = [:]
        for e in events where e.kind == .uprobe { perProbe[Int(e.probeID), default: 0] += 1 }
        return Trailer(events: UInt64(events.count), lostEvents: lost,
                       endMonotonicNs: end ?? (events.map(\.timestamp).max() ?? startNs) + 1_000_000,
                       reason: "target-exited", eventsPerProbe: perProbe)
    }

    /// Analyses a capture written from `records`.
    static func analyse(_ manifest: Manifest, _ records: [CaptureRecord], in dir: TempDir,
                        reorderWindow: Int = 4096) throws -> Analysis {
        var reader = try CaptureReader(data: captureBytes(manifest, records, in: dir), path: "test.syncamp")
        return Analysis.run(&reader, reorderWindow: reorderWindow)
    }

    /// Analyses a trace's events, finished with a trailer.
    static func analyse(_ trace: Trace, in dir: TempDir, trailer: Bool = true) throws -> Analysis {
        var records = trace.events.map(CaptureRecord.event)
        if trailer { records.append(.trailer(self.trailer(for: trace.events))) }
        return try analyse(trace.manifest, records, in: dir)
    }
}

/// Builds a time-ordered event stream against a manifest: each event 1 µs after the previous one.
struct Trace {
    let manifest: Manifest
    var now: UInt64 = AnalysisFixtures.startNs + 100_000
    var events: [Event] = []
    var step: UInt64 = 1_000
    /// The QEMU coroutine the next main-thread uprobes run in (what the BPF side reads at each probe).
    var running = Running()

    struct Running {
        var coroutine: UInt64 = 0
        var caller: UInt64 = 0
        var arg: UInt64 = 0
        var opaque: UInt64 = 0
    }

    init(manifest: Manifest) { self.manifest = manifest }

    func probe(_ role: ProbeRole) -> Manifest.Probe {
        guard let p = manifest.probes.first(where: { $0.role == role.rawValue }) else {
            fatalError("role \(role) is not in the manifest")
        }
        return p
    }

    static func cpu(_ tid: UInt32) -> UInt32 { tid % 4 }

    /// A uprobe hit; `derefs` by the names of the manifest's probe, each marked as read.
    @discardableResult
    mutating func uprobe(_ role: ProbeRole, tid: UInt32 = AnalysisFixtures.mainTid, args: [UInt64] = [],
                         derefs: [String: UInt64] = [:], unread: Set<String> = []) -> Event {
        let p = probe(role)
        var values = [UInt64](repeating: 0, count: Event.derefCount)
        var ok: UInt32 = 0
        for (name, v) in derefs {
            guard let slot = p.derefs.firstIndex(of: name) else { fatalError("\(p.symbol) has no deref \(name)") }
            values[slot] = v
            if !unread.contains(name) { ok |= 1 << UInt32(slot) }
        }
        now += step
        let r = tid == AnalysisFixtures.mainTid ? running : Running()
        let e = Event(timestamp: now, pid: AnalysisFixtures.pid, tid: tid, cpu: Self.cpu(tid), kind: .uprobe,
                      probeID: UInt16(p.id), args: args, derefs: values, derefOK: ok, coroutine: r.coroutine,
                      coroutineCaller: r.caller, coroutineArg: r.arg, coroutineOpaque: r.opaque)
        events.append(e)
        return e
    }

    mutating func syscallEnter(tid: UInt32, fd: UInt64, call: Syscall = .fdatasync) {
        now += step
        events.append(Event(timestamp: now, pid: AnalysisFixtures.pid, tid: tid, cpu: Self.cpu(tid), kind: .syscallEnter,
                            probeID: call.rawValue, args: [fd]))
    }

    mutating func syscallExit(tid: UInt32, ret: Int64 = 0, after latency: UInt64, call: Syscall = .fdatasync) {
        now += latency
        events.append(Event(timestamp: now, pid: AnalysisFixtures.pid, tid: tid, cpu: Self.cpu(tid), kind: .syscallExit,
                            probeID: call.rawValue, args: [UInt64(bitPattern: ret)]))
    }

    /// A host sync system call on `tid`: enter, then exit `latency` ns later.
    mutating func hostSync(tid: UInt32, fd: UInt64 = 9, latency: UInt64 = 30_000, ret: Int64 = 0) {
        syscallEnter(tid: tid, fd: fd)
        syscallExit(tid: tid, ret: ret, after: latency)
    }

    /// `thread_pool_submit_aio` of a flush job (aio_type 8; arg = the RawPosixAIOData pointer).
    mutating func submit(tid: UInt32 = AnalysisFixtures.mainTid, acb: UInt64, fd: UInt64 = 9, aioType: UInt64 = 8,
                         coroutine: UInt64 = AnalysisFixtures.writeCoroutine) {
        uprobe(.threadPoolSubmit, tid: tid,
               args: [AnalysisFixtures.pool, AnalysisFixtures.handleAIOCBFunc, acb, 0x5630_98f1_4560, 0x7f3a_4c1f_e800, 0],
               derefs: ["coroutine": coroutine, "aio_type": aioType, "fd": fd])
    }

    /// The worker side of a flush job: handle_aiocb_flush (when probed), qemu_fdatasync, the system call.
    mutating func worker(tid: UInt32, acb: UInt64, fd: UInt64 = 9, latency: UInt64 = 30_000, ret: Int64 = 0) {
        if manifest.probes.contains(where: { $0.role == ProbeRole.workerFlush.rawValue }) {
            uprobe(.workerFlush, tid: tid, args: [acb], derefs: ["aio_type": 8, "fd": fd])
        }
        uprobe(.qemuFdatasync, tid: tid, args: [fd])
        hostSync(tid: tid, fd: fd, latency: latency, ret: ret)
    }

    /// A whole flush hand-off: submit on the main thread, the job on a worker.
    mutating func flushHandOff(worker tid: UInt32, acb: UInt64, fd: UInt64 = 9, coroutine: UInt64, latency: UInt64) {
        submit(acb: acb, fd: fd, coroutine: coroutine)
        worker(tid: tid, acb: acb, fd: fd, latency: latency)
    }
}

/// A fresh directory under the system temp dir, removed by `remove()`.
struct TempDir {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("syncamp-analysis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Base class: one temp dir per test.
class AnalysisTestCase: XCTestCase {
    var dir: TempDir!

    override func setUpWithError() throws { dir = try TempDir() }

    override func tearDown() {
        dir?.remove()
        dir = nil
    }
}

extension CausalNode {
    /// Every node of the subtree, depth first, this one first.
    var all: [CausalNode] { [self] + children.flatMap(\.all) }
}

extension GuestOp {
    var allNodes: [CausalNode] { children.flatMap(\.all) }
}
