import CBPF
import Foundation
import SyncampCapture

/// The one place syncamp talks to libbpf: open, configure, load, attach, poll, destroy.
///
/// Order as in libbpf-tools: open the object, set `const volatile` config and
/// map sizes, load, fill the probe-spec map, attach uprobes and kernel probes,
/// then poll the ring buffer until told to stop. `close()` destroys every link
/// and the object; the kernel also detaches everything if the process dies.
final class BPFSession {
    /// How the sync system calls are traced.
    enum KernelProbeMode: String, CaseIterable {
        case auto, kprobe, tracepoint
    }

    private var object: OpaquePointer?
    private var links: [OpaquePointer] = []
    private var ringBuffer: OpaquePointer?
    private var lostMapFD: Int32 = -1
    /// "kprobe" or "tracepoint", after attachKernelProbes.
    private(set) var kernelProbe = ""
    private let verbose: Bool

    /// Opens the BPF object file, sets the target and the ring buffer size, and loads it.
    init(objectPath: String, targetPid: Int32, ringBufferBytes: Int, coroutines: CoroutineSource, verbose: Bool) throws {
        self.verbose = verbose
        cbpf_set_print(verbose ? 1 : 0)
        guard let obj = bpf_object__open_file(objectPath, nil) else {
            throw CollectorError.bpf("cannot open the BPF object \(objectPath): \(Self.errnoText())")
        }
        object = obj
        try Self.setRodata(obj, "target_tgid", UInt32(bitPattern: targetPid))
        try Self.setRodata(obj, "co_mode", coroutines.mode)
        if case let .threadLocal(offset) = coroutines {
            try Self.setRodata(obj, "co_tls_offset", offset)
        }
        guard let events = bpf_object__find_map_by_name(obj, "events") else {
            throw CollectorError.bpf("the BPF object has no ring buffer map `events`")
        }
        bpf_map__set_max_entries(events, UInt32(ringBufferBytes))
        if bpf_object__load(obj) != 0 {
            throw CollectorError.bpfLoad(Self.errnoText())
        }
        lostMapFD = bpf_object__find_map_fd_by_name(obj, "lost")
    }

    deinit { close() }

    private static func setRodata<T>(_ obj: OpaquePointer, _ name: String, _ value: T) throws {
        var v = value
        let rc = withUnsafeBytes(of: &v) { cbpf_set_rodata(obj, name, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw CollectorError.bpf("cannot configure \(name) in the BPF object (\(rc))") }
    }

    /// Writes what each probe reads through pointers (and, for USDT probes, where each argument goes)
    /// into the `probe_specs` map.
    func setProbeSpecs(_ specs: [(derefs: [DerefSpec], usdtArgs: [UInt8?])]) throws {
        let fd = bpf_object__find_map_fd_by_name(object, "probe_specs")
        guard fd >= 0 else { throw CollectorError.bpf("the BPF object has no `probe_specs` map") }
        for (id, (derefs, usdtArgs)) in specs.enumerated() {
            var spec = syncamp_probe_spec()
            withUnsafeMutableBytes(of: &spec.usdt_args) { raw in
                for i in 0 ..< raw.count { raw[i] = i < usdtArgs.count ? (usdtArgs[i] ?? UInt8(SYNCAMP_USDT_NO_ARG)) : UInt8(SYNCAMP_USDT_NO_ARG) }
            }
            withUnsafeMutableBytes(of: &spec.derefs) { raw in
                let slots = raw.bindMemory(to: syncamp_deref.self)
                for (i, d) in derefs.prefix(Int(SYNCAMP_MAX_DEREFS)).enumerated() {
                    var slot = syncamp_deref()
                    slot.arg = d.arg
                    slot.hops = UInt8(min(d.offsets.count, Int(SYNCAMP_MAX_HOPS)))
                    slot.size = d.size
                    withUnsafeMutableBytes(of: &slot.off) { offs in
                        let o = offs.bindMemory(to: Int32.self)
                        for (h, off) in d.offsets.prefix(Int(SYNCAMP_MAX_HOPS)).enumerated() { o[h] = off }
                    }
                    slots[i] = slot
                }
            }
            var key = UInt32(id)
            if bpf_map_update_elem(fd, &key, &spec, 0) != 0 {
                throw CollectorError.bpf("cannot write probe spec \(id): \(Self.errnoText())")
            }
        }
    }

    /// Attaches the uprobe program at `fileOffset` of `binary` for `pid`; `cookie` becomes the events' probe id.
    func attachUprobe(binary: String, fileOffset: UInt64, pid: Int32, cookie: UInt64, symbol: String,
                      program: String = "syncamp_uprobe") throws {
        guard let prog = bpf_object__find_program_by_name(object, program) else {
            throw CollectorError.bpf("the BPF object has no program \(program)")
        }
        guard let link = cbpf_attach_uprobe(prog, pid, binary, Int(fileOffset), cookie) else {
            throw CollectorError.attach("cannot attach a uprobe to \(symbol) at offset 0x\(String(fileOffset, radix: 16)) of \(binary): \(Self.errnoText())")
        }
        links.append(link)
    }

    /// Attaches the USDT program to every site of `provider:event` in `binary` for `pid`; `cookie` becomes the probe id.
    func attachUSDT(binary: String, pid: Int32, provider: String, event: String, cookie: UInt64) throws {
        guard let prog = bpf_object__find_program_by_name(object, "syncamp_usdt") else {
            throw CollectorError.bpf("the BPF object has no program syncamp_usdt")
        }
        guard let link = cbpf_attach_usdt(prog, pid, binary, provider, event, cookie) else {
            throw CollectorError.attach("cannot attach to the USDT probe \(provider):\(event) of \(binary): \(Self.errnoText()) (run with -v for libbpf's reason)")
        }
        links.append(link)
    }

    /// Attaches the fdatasync/fsync probes: kprobes where the kernel has them, else the syscalls tracepoints.
    func attachKernelProbes(mode: KernelProbeMode) throws {
        let kprobes = ["syncamp_kp_fdatasync", "syncamp_krp_fdatasync", "syncamp_kp_fsync", "syncamp_krp_fsync"]
        let tracepoints = ["syncamp_tp_enter_fdatasync", "syncamp_tp_exit_fdatasync",
                           "syncamp_tp_enter_fsync", "syncamp_tp_exit_fsync"]
        var kprobeError = ""
        if mode != .tracepoint {
            cbpf_set_quiet(mode == .auto ? 1 : 0, verbose ? 1 : 0)
            defer { cbpf_set_quiet(0, verbose ? 1 : 0) }
            do {
                try attachAll(kprobes)
                kernelProbe = "kprobe"
                return
            } catch {
                kprobeError = "\(error)"
                if mode == .kprobe {
                    throw CollectorError.attach("kprobes on fdatasync/fsync cannot be attached (\(kprobeError)); this kernel may lack CONFIG_KPROBES: use --kernel-probe tracepoint or auto")
                }
            }
        }
        do {
            try attachAll(tracepoints)
            kernelProbe = "tracepoint"
        } catch {
            throw CollectorError.attach("neither kprobes (\(kprobeError.isEmpty ? "not tried" : kprobeError)) nor the syscalls tracepoints (\(error)) could be attached for fdatasync/fsync; check that tracefs is mounted at /sys/kernel/tracing")
        }
    }

    /// Attaches the storage-stack tracepoints that this kernel has; returns (attached, missing) program names.
    func attachStorageProbes(devices: [UInt32]) -> (attached: [String], missing: [String]) {
        let fd = bpf_object__find_map_fd_by_name(object, "watched_devs")
        for var dev in devices {
            var one: UInt8 = 1
            bpf_map_update_elem(fd, &dev, &one, 0)
        }
        let names = ["syncamp_fs_sync_enter", "syncamp_fs_sync_exit", "syncamp_journal_start", "syncamp_journal_flushing",
                     "syncamp_journal_end", "syncamp_journal_stats", "syncamp_device_issue", "syncamp_device_complete",
                     "syncamp_uring_submit", "syncamp_uring_complete"]
        var attached: [String] = [], missing: [String] = []
        cbpf_set_quiet(1, verbose ? 1 : 0)
        defer { cbpf_set_quiet(0, verbose ? 1 : 0) }
        for name in names {
            if (try? attachAll([name])) != nil { attached.append(name) } else { missing.append(name) }
        }
        return (attached, missing)
    }

    private func attachAll(_ names: [String]) throws {
        var made: [OpaquePointer] = []
        for name in names {
            guard let prog = bpf_object__find_program_by_name(object, name) else {
                made.forEach { bpf_link__destroy($0) }
                throw CollectorError.bpf("the BPF object has no program \(name)")
            }
            guard let link = bpf_program__attach(prog) else {
                let text = Self.errnoText()
                made.forEach { bpf_link__destroy($0) }
                throw CollectorError.attach("\(name): \(text)")
            }
            made.append(link)
        }
        links += made
    }

    /// Starts delivering ring-buffer samples to `handler` (called from `poll`/`consume` on this thread).
    func openRingBuffer(_ sink: EventSink) throws {
        let fd = bpf_object__find_map_fd_by_name(object, "events")
        let ctx = Unmanaged.passUnretained(sink).toOpaque()
        let callback: ring_buffer_sample_fn = { ctx, data, size in
            guard let ctx, let data else { return 0 }
            let sink = Unmanaged<EventSink>.fromOpaque(ctx).takeUnretainedValue()
            return sink.receive(UnsafeRawBufferPointer(start: data, count: size))
        }
        guard let rb = ring_buffer__new(fd, callback, ctx, nil) else {
            throw CollectorError.bpf("cannot open the ring buffer: \(Self.errnoText())")
        }
        ringBuffer = rb
    }

    /// Waits up to `timeoutMs` for events and delivers them; returns the number delivered or a negative errno.
    @discardableResult
    func poll(timeoutMs: Int32) -> Int32 { ring_buffer__poll(ringBuffer, timeoutMs) }

    /// Delivers every event already in the ring buffer.
    @discardableResult
    func consume() -> Int32 { ring_buffer__consume(ringBuffer) }

    /// The per-CPU counts of events lost because the ring buffer was full.
    func lostPerCPU() -> [UInt64] {
        let n = Int(libbpf_num_possible_cpus())
        guard lostMapFD >= 0, n > 0 else { return [] }
        var values = [UInt64](repeating: 0, count: n)
        var key: UInt32 = 0
        guard bpf_map_lookup_elem(lostMapFD, &key, &values) == 0 else { return [] }
        return values
    }

    /// Detaches every probe and frees the object.
    func close() {
        if let rb = ringBuffer { ring_buffer__free(rb); ringBuffer = nil }
        links.forEach { bpf_link__destroy($0) }
        links.removeAll()
        if let obj = object { bpf_object__close(obj); object = nil }
    }

    static func errnoText() -> String {
        let e = cbpf_errno()
        return "\(String(cString: strerror(e))) (errno \(e))"
    }
}

/// Receives raw events from the ring buffer callback.
final class EventSink {
    private let onEvent: (UnsafeRawBufferPointer) -> Bool

    init(onEvent: @escaping (UnsafeRawBufferPointer) -> Bool) { self.onEvent = onEvent }

    /// Returns 0 to go on, or a nonzero value that stops the current poll.
    func receive(_ bytes: UnsafeRawBufferPointer) -> Int32 { onEvent(bytes) ? 0 : -1 }
}
