import SyncampProbes
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
    /// Holds the kernel's BPF run-time statistics on (`enableRunTimeStats`).
    private var statsFD: Int32 = -1
    /// "kprobe" or "tracepoint", after attachKernelProbes.
    private(set) var kernelProbe = ""
    private let verbose: Bool

    /// Opens the BPF object file, sets the target and the ring buffer size, switches off the
    /// programs this kernel cannot take (`disabledPrograms`, from KernelHookPlan), and loads it.
    /// `offsets`: where the coroutine's caller and entry argument and the AIOCB's opaque are
    /// (QemuABI); `ablate`: parts switched off for benchmarks (enum syncamp_ablate bits).
    init(objectPath: String, targetPid: Int32, ringBufferBytes: Int, coroutines: CoroutineSource,
         offsets: QemuABI.Offsets, disabledPrograms: [String], ablate: UInt32 = 0, verbose: Bool) throws {
        self.verbose = verbose
        cbpf_set_print(verbose ? 1 : 0)
        guard let obj = bpf_object__open_file(objectPath, nil) else {
            throw CollectorError.bpf("cannot open the BPF object \(objectPath): \(Self.errnoText())")
        }
        object = obj
        try Self.setRodata(obj, "target_tgid", UInt32(bitPattern: targetPid))
        try Self.setRodata(obj, "co_mode", coroutines.mode)
        if case let .threadLocal(offset, _) = coroutines {
            try Self.setRodata(obj, "co_tls_offset", offset)
        }
        try Self.setRodata(obj, "co_caller_offset", Int64(offsets.coroutineCaller))
        try Self.setRodata(obj, "co_entry_arg_offset", Int64(offsets.coroutineEntryArg))
        try Self.setRodata(obj, "aiocb_opaque_offset", Int64(offsets.aiocbOpaque))
        try Self.setRodata(obj, "ablate", ablate)
        try Self.setRodata(obj, "ring_bytes", UInt64(ringBufferBytes))
        guard let events = bpf_object__find_map_by_name(obj, "events") else {
            throw CollectorError.bpf("the BPF object has no ring buffer map `events`")
        }
        bpf_map__set_max_entries(events, UInt32(ringBufferBytes))
        for name in disabledPrograms {
            guard let prog = bpf_object__find_program_by_name(obj, name) else {
                throw CollectorError.bpf("the BPF object has no program \(name)")
            }
            bpf_program__set_autoload(prog, false)
        }
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

    /// Writes what each probe reads through pointers and where each of its arguments comes from
    /// (`argMap`: USDT argument or register index per canonical argument; `remap` for function
    /// probes whose parameters are not in canonical order) into the `probe_specs` map.
    func setProbeSpecs(_ specs: [(derefs: [DerefSpec], argMap: [UInt8?], remap: Bool)]) throws {
        let fd = bpf_object__find_map_fd_by_name(object, "probe_specs")
        guard fd >= 0 else { throw CollectorError.bpf("the BPF object has no `probe_specs` map") }
        for (id, (derefs, argMap, remap)) in specs.enumerated() {
            var spec = syncamp_probe_spec()
            withUnsafeMutableBytes(of: &spec.arg_map) { raw in
                for i in 0 ..< raw.count { raw[i] = i < argMap.count ? (argMap[i] ?? UInt8(SYNCAMP_NO_ARG)) : UInt8(SYNCAMP_NO_ARG) }
            }
            spec.remap = remap ? 1 : 0
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

    /// Attaches the fdatasync/fsync probes: kprobes where the plan loaded them (the kernel has
    /// them and --kernel-probe allows), else the syscalls tracepoints; returns the level.
    func attachKernelProbes(_ plan: KernelHookPlan) throws -> KernelLevel {
        let kprobes = plan.mode == .tracepoint ? [] : plan.loaded(.syncSyscalls).filter(\.isSyscallKprobe)
        let tracepoints = plan.loaded(.syncSyscalls).filter { !$0.isSyscallKprobe }
        var kprobeError = plan.decisions.first { $0.hook.isSyscallKprobe }?.off ?? ""
        if !kprobes.isEmpty {
            cbpf_set_quiet(plan.mode == .auto ? 1 : 0, verbose ? 1 : 0)
            defer { cbpf_set_quiet(0, verbose ? 1 : 0) }
            do {
                try attachAll(kprobes.map(\.program))
                kernelProbe = "kprobe"
                return KernelLevel(name: .syncSyscalls, traced: true, hooks: kprobes.map(\.label))
            } catch {
                kprobeError = "\(error)"
                if plan.mode == .kprobe {
                    throw CollectorError.attach("kprobes on fdatasync/fsync cannot be attached (\(kprobeError)); this kernel may lack CONFIG_KPROBES: use --kernel-probe tracepoint or auto")
                }
            }
        }
        do {
            guard tracepoints.count == KernelHooks.syscallTracepoints.count else {
                let off = plan.decisions.filter { !$0.hook.isSyscallKprobe && $0.hook.level == .syncSyscalls }
                    .compactMap(\.off)
                throw CollectorError.attach(off.first ?? "the syscalls tracepoints are not loaded")
            }
            try attachAll(tracepoints.map(\.program))
            kernelProbe = "tracepoint"
            return KernelLevel(name: .syncSyscalls, traced: true, hooks: tracepoints.map(\.label),
                               reason: kprobeError.isEmpty ? nil : "kprobes not used: \(kprobeError)")
        } catch {
            throw CollectorError.attach("neither kprobes (\(kprobeError.isEmpty ? "not tried" : kprobeError)) nor the syscalls tracepoints (\(error)) could be attached for fdatasync/fsync; check that tracefs is mounted at /sys/kernel/tracing")
        }
    }

    /// Attaches the storage-stack hooks the plan loaded, watching `devices` (and, for btrfs, their
    /// file systems' fsids); returns each level (traced or why not) and the programs attached and not, by name.
    func attachStorageProbes(_ plan: KernelHookPlan, devices: [Manifest.Device]) -> (levels: [KernelLevel], attached: [String], missing: [String]) {
        let fd = bpf_object__find_map_fd_by_name(object, "watched_devs")
        let fsids = bpf_object__find_map_fd_by_name(object, "watched_fsids")
        for device in devices {
            var dev = device.dev
            var one: UInt8 = 1
            bpf_map_update_elem(fd, &dev, &one, 0)
            if let text = device.fsid, var key = Self.fsid(text) {
                bpf_map_update_elem(fsids, &key, &dev, 0)
            }
        }
        var attached: Set<String> = [], failed: [String: String] = [:]
        cbpf_set_quiet(1, verbose ? 1 : 0)
        defer { cbpf_set_quiet(0, verbose ? 1 : 0) }
        for level in [KernelLevel.Name.fsSync, .journal, .device, .ioUring] {
            for hook in plan.loaded(level) {
                do {
                    try attachAll([hook.program])
                    attached.insert(hook.program)
                } catch {
                    failed[hook.program] = "\(hook.label) could not be attached (\(Self.errnoText()))"
                }
            }
        }
        let storage = KernelHooks.storage.map(\.program)
        return (plan.storageLevels(attached: attached, failed: failed, inUse: Set(devices.compactMap(\.fileSystem))),
                storage.filter { attached.contains($0) }, storage.filter { !attached.contains($0) })
    }

    /// The 16 bytes of a btrfs fsid written as a UUID ("0b5e...-..."), as `struct syncamp_fsid`.
    static func fsid(_ text: String) -> syncamp_fsid? {
        let hex = Array(text.filter { $0 != "-" })
        guard hex.count == 32 else { return nil }
        var key = syncamp_fsid()
        let ok = withUnsafeMutableBytes(of: &key.bytes) { raw -> Bool in
            for i in 0 ..< 16 {
                guard let b = UInt8(String(hex[2 * i ... 2 * i + 1]), radix: 16) else { return false }
                raw[i] = b
            }
            return true
        }
        return ok ? key : nil
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

    /// Turns on the kernel's run-time statistics of BPF programs (`BPF_ENABLE_STATS`,
    /// BPF_STATS_RUN_TIME: every program run, system-wide, also reads the clock twice) until
    /// `close()`. Needs Linux 5.8.
    func enableRunTimeStats() throws {
        let fd = bpf_enable_stats(BPF_STATS_RUN_TIME)
        guard fd >= 0 else {
            throw CollectorError.bpf("cannot turn on BPF run-time statistics (BPF_ENABLE_STATS, Linux 5.8): \(Self.errnoText())")
        }
        statsFD = fd
    }

    /// How often each of this session's loaded programs ran and for how long, by program name
    /// (`bpf_prog_info.run_cnt`, `run_time_ns`); counted only while `enableRunTimeStats` is on,
    /// nil when off. Programs that never ran are left out.
    func programRunTimes() -> [String: Trailer.ProgramCost]? {
        guard statsFD >= 0, let obj = object else { return nil }
        var out: [String: Trailer.ProgramCost] = [:]
        var prog = bpf_object__next_program(obj, nil)
        while let p = prog {
            let fd = bpf_program__fd(p)
            if fd >= 0 {
                var info = bpf_prog_info()
                var len = UInt32(MemoryLayout<bpf_prog_info>.size)
                if bpf_obj_get_info_by_fd(fd, &info, &len) == 0, info.run_cnt > 0 {
                    out[String(cString: bpf_program__name(p))] = Trailer.ProgramCost(runs: info.run_cnt, ns: info.run_time_ns)
                }
            }
            prog = bpf_object__next_program(obj, p)
        }
        return out
    }

    /// Detaches every probe and frees the object.
    func close() {
        if statsFD >= 0 { Foundation.close(statsFD); statsFD = -1 }
        if let rb = ringBuffer { ring_buffer__free(rb); ringBuffer = nil }
        // Closing a uprobe link waits for the kernel to let go of the uprobe (about 200 ms each
        // here): one after the other, 20 links kept every probe firing for 4 s after the capture
        // ended. Closed side by side, the waits overlap.
        let group = DispatchGroup()
        for link in links {
            nonisolated(unsafe) let l = link
            group.enter()
            Thread { bpf_link__destroy(l); group.leave() }.start()
        }
        group.wait()
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
