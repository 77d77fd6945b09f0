import SyncampProbes
import SyncampProbePlan
import ArgumentParser
import CSyncampEvent
import Foundation
import SyncampCapture
import SyncampELF
import SyncampElfutils
#if canImport(Glibc)
import Glibc
#endif

/// `collector`: traces a QEMU process's block layer and sync system calls into a capture file.
@main
struct CollectorCommand: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "collector",
        abstract: "Record where a QEMU process's disk syncs come from (run as root).",
        discussion: """
        Attaches entry uprobes to QEMU's block layer (guest requests, qcow2 metadata \
        caches, the thread pool, qemu_fdatasync) and kernel probes on fdatasync/fsync, \
        and writes every event to a capture file for `analyzer report`.

        EXAMPLES:
          sudo collector -p $(pidof qemu-system-x86_64) -o run.syncamp        # until Ctrl-C
          sudo collector -p 1234 -d 30 -o run.syncamp                         # for 30 seconds
          sudo collector --domain guest1 -o run.syncamp                       # a libvirt domain
          sudo collector -o run.syncamp -- qemu-io -f qcow2 -t writeback \\
               -c 'write 0 4k' -c flush img.qcow2                             # start and trace a command
        """,
        version: version
    )

    @Option(name: .shortAndLong, help: "Pid of a running QEMU to trace.")
    var pid: Int32?

    @Option(help: ArgumentHelp("A running libvirt domain to trace (its QEMU's pid from /run/libvirt/qemu/NAME.pid); reports name its disks as the guest sees them (vda).",
                               valueName: "name"))
    var domain: String?

    @Option(help: ArgumentHelp("Where libvirt keeps its running domains' files (tests).", visibility: .hidden))
    var libvirtRunDir: String = LibvirtDomain.runDirectory

    @Option(name: .shortAndLong, help: "Capture file to write (mode 0600; never overwritten without --force).")
    var output: String = "run.syncamp"

    @Option(name: .shortAndLong, help: "Stop after this many seconds (default: until Ctrl-C or the target exits).")
    var duration: Double?

    @Option(name: [.customLong("symbols"), .customLong("binary")],
            help: ArgumentHelp("Read symbols from this file: an unstripped copy of the target's binary or its separate debug file (same build-id).",
                               discussion: "Symbols are found in this order: --symbols; for a stripped target, its debug file by build-id and .gnu_debuglink under --debug-dir, beside the binary and in its .debug folder, as GDB does; the debuginfod servers of DEBUGINFOD_URLS, by build-id; --offset for each function; QEMU's USDT probes (dtrace backend); the exported functions.",
                               valueName: "path"))
    var symbols: String?

    @Option(help: ArgumentHelp("Where to look for debug files (repeatable; default /usr/lib/debug).", valueName: "dir"))
    var debugDir: [String] = []

    @Option(help: ArgumentHelp("Attach the probe of function NAME at this file offset of the target's binary, as uprobe:BINARY:0xOFFSET does (repeatable).",
                               discussion: "For binaries with neither symbols nor a debug file: take the offsets from a build you can inspect (nm, or the manifest of a capture of it).",
                               valueName: "name=[binary:]0xoffset"))
    var offset: [String] = []

    @Flag(help: ArgumentHelp("Attach every probe of the catalog, not only the minimal set.",
                             discussion: "The default set is the fewest probes that still name every cause (about 5.5 uprobe hits per guest request on an allocating write+flush workload, 1.1 per plain write); --detail adds per-entry cache flushes, qcow2 write entries and the worker's qemu_fdatasync (about 20 more hits per guest flush) for fuller trees and cache-eviction (F11) causes."))
    var detail = false

    @Flag(help: ArgumentHelp("Use QEMU's USDT probes (a QEMU built with --enable-trace-backends=dtrace) instead of function uprobes.",
                             discussion: "Chosen by itself when the binary lacks the functions' symbols but has USDT probes; they need no symbols. Guest flushes have no trace event and are inferred, and requests are told apart by order only."))
    var usdt = false

    @Option(name: .customLong("qemu-version"),
            help: ArgumentHelp("Take the target for this QEMU version (7.2, 10.0.2, ...) instead of the one its binary names, and use that version's built-in layouts rather than its DWARF.",
                               discussion: "For a binary whose version string is missing or wrong. The report warns when the layouts do not fit what the probes see.",
                               valueName: "version"))
    var qemuVersionOption: String?

    @Flag(help: "Trace even when probes are missing from the binary (warn instead of failing).")
    var allowMissing = false

    @Flag(help: "Overwrite the output file if it exists.")
    var force = false

    @Option(help: "How to trace fdatasync/fsync: auto (kprobe, else tracepoint), kprobe, tracepoint.")
    var kernelProbe: String = "auto"

    @Option(help: "Ring buffer size in MiB (a power of two).")
    var ringBufferMB: Int = 16

    @Option(help: ArgumentHelp("Ring buffer size in KiB instead (a power of two, at least 4): small buffers lose events under load, which tests use.", visibility: .hidden))
    var ringBufferKB: Int?

    @Option(help: ArgumentHelp("Sleep this many ms between ring-buffer polls (tests: a slow consumer).", visibility: .hidden))
    var pollDelayMs: UInt32 = 0

    @Flag(help: ArgumentHelp("Stop when the process that started the collector exits (analyzer live), so no probe outlives it.", visibility: .hidden))
    var stopWithParent = false

    @Flag(help: ArgumentHelp("Attach every function probe at its entry, even where it is single-stepped (benchmarks).", visibility: .hidden))
    var probeAtEntry = false

    @Option(help: ArgumentHelp("Switch parts off to measure what each costs (bench/breakdown.sh): coroutine, derefs, output, storage, writing.", visibility: .hidden))
    var ablate: String = ""

    @Flag(help: ArgumentHelp("Measure what tracing costs: the time the BPF programs run and the collector's CPU time, in the capture's trailer (the report's cost line).",
                             discussion: "Turns on the kernel's BPF run-time statistics (BPF_ENABLE_STATS, Linux 5.8) for the capture: while on, every BPF program on the machine also reads the clock twice per run."))
    var measureCost = false

    @Flag(name: .shortAndLong, help: "Show libbpf's messages.")
    var verbose = false

    @Argument(parsing: .postTerminator, help: "A command to start and trace (after --).")
    var command: [String] = []

    mutating func validate() throws {
        if [pid != nil, domain != nil, !command.isEmpty].filter({ $0 }).count != 1 {
            throw ValidationError("give one of -p PID, --domain NAME or -- COMMAND")
        }
        if BPFSession.KernelProbeMode(rawValue: kernelProbe) == nil {
            throw ValidationError("--kernel-probe takes auto, kprobe or tracepoint")
        }
        if ringBufferMB < 1 || ringBufferMB & (ringBufferMB - 1) != 0 {
            throw ValidationError("--ring-buffer-mb must be a power of two, at least 1")
        }
        if let kb = ringBufferKB, kb < 4 || kb & (kb - 1) != 0 {
            throw ValidationError("--ring-buffer-kb must be a power of two, at least 4")
        }
    }

    func run() throws {
        do {
            try capture()
        } catch let error as CollectorError {
            FileHandle.standardError.write(Data("collector: error: \(error)\n".utf8))
            throw ExitCode(1)
        } catch let error as CaptureError {
            FileHandle.standardError.write(Data("collector: error: \(error)\n".utf8))
            throw ExitCode(1)
        } catch let error as ELFError {
            FileHandle.standardError.write(Data("collector: error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    private func capture() throws {
        let parent = getppid()  // before anything slow: the parent whose exit --stop-with-parent watches
        try Preflight.check()
        if !force && FileManager.default.fileExists(atPath: output) {
            throw CaptureError.alreadyExists(path: output)
        }
        let domainPid = try domain.map { try LibvirtDomain.pid(of: $0, runDirectory: libvirtRunDir) }
        let target = try (pid ?? domainPid).map(Target.attach(pid:)) ?? Target.spawn(command: command)
        var started = target.mode == "spawn"
        defer { if started { kill(target.pid, SIGKILL); _ = waitpid(target.pid, nil, 0) } }

        let elf = try ELFFile(path: target.binaryForProbes)
        let source = try symbolSource(binary: elf, target: target)
        // Which QEMU this is, and where its functions' parameters and fields are: its DWARF (or
        // its debug file's) when it has one, else the table of its version.
        let qemuVersion = try qemuVersionOption.map { v in
            guard let parsed = QemuVersion(v) else { throw CollectorError.usage("--qemu-version takes a version such as 7.2 or 10.0.2, not \(v)") }
            return parsed
        } ?? elf.versionString.flatMap(QemuVersion.init)
        let abi = qemuABI(version: qemuVersion, dwarf: source.symbols?.path ?? target.binaryForProbes)
        note("QEMU \(qemuVersion?.full ?? "of unknown version (no version string in the binary)")"
             + (qemuVersionOption == nil ? "" : " (--qemu-version)") + "; layouts from the \(abi.source)")
        let choice: ProbeChoice
        do throws(ProbeChoice.Failure) {
            choice = try ProbeChoice(functions: source, usdt: elf, abi: abi,
                                     options: .init(set: detail ? .detail : .minimal, forceUSDT: usdt,
                                                    pinnedOffsets: !offset.isEmpty, allowMissing: allowMissing))
        } catch .noUSDTProbes {
            throw CollectorError.usage("--usdt: \(target.binaryPath) has no USDT probes of provider qemu (QEMU built without --enable-trace-backends=dtrace)")
        } catch let .missingRequired(lacking, usdt) {
            // Where a debug file was looked for, when the function probes lacked their symbols.
            let looked = !usdt && source.symbols == nil && !elf.hasSymtab
                ? DebugFileLocator.candidates(for: elf, binaryPath: target.binaryPath, directories: debugDirectories).map(\.path) : []
            throw CollectorError.missingSymbols(binary: target.binaryPath, buildID: elf.buildID, version: qemuVersion?.full,
                                                symbols: lacking.flatMap(\.symbolsTried), looked: looked)
        }
        var plan = choice.plan
        if let why = choice.usdt {
            note("using QEMU's USDT probes (dtrace trace backend)" + (why == .requested ? "" : ": the binary lacks the symbols of function probes")
                 + "; guest flushes are inferred (see README, Stripped binaries)")
        }
        if !choice.toleratedMissing.isEmpty {
            let names = choice.toleratedMissing.flatMap(\.symbolsTried)
            note("warning: \(target.binaryPath) lacks \(names.joined(separator: ", ")); tracing without them (--allow-missing)")
        }

        guard let objectPath = Bundle.module.path(forResource: "syncamp.bpf", ofType: "o") else {
            throw CollectorError.bpf("the BPF object syncamp.bpf.o is missing from the collector's resources; rebuild with swift build")
        }
        // USDT events name their coroutine in their arguments (the analysis reads it there), and the
        // binary has no co_tls_current symbol: nothing to read per event.
        // Cheap probe sites: past a single-stepped first instruction (endbr64, sub) to the first
        // one the kernel emulates, where that changes nothing the probe reads.
        let sites = try? ProbeSites(path: target.binaryForProbes, binary: elf)
        if let sites { plan.placeSites { sites.placement(of: $0, abi: abi, atEntry: probeAtEntry) } }
        let coroutines = plan.isUSDT ? CoroutineSource.none : CoroutineSource(symbols: source, sites: sites)
        // What this kernel has, checked before load: one missing hook never stops the others.
        let kernel = KernelSupport()
        try kernel.requireCore(functionProbes: !plan.isUSDT)
        let hooks = try KernelHookPlan(support: kernel, mode: BPFSession.KernelProbeMode(rawValue: kernelProbe)!)
        let unused = plan.isUSDT && !kernel.hasAttachCookie ? ["syncamp_uprobe"] : []
        let parts = Set(ablate.split(separator: ",").map(String.init))
        let bpf = try BPFSession(objectPath: objectPath, targetPid: target.pid,
                                 ringBufferBytes: ringBufferBytes, coroutines: parts.contains("coroutine") ? .none : coroutines,
                                 offsets: abi.offsets, disabledPrograms: hooks.disabledPrograms + unused
                                    + (parts.contains("storage") ? KernelHooks.storage.map(\.program) : []),
                                 ablate: (parts.contains("output") ? UInt32(SYNCAMP_ABLATE_OUTPUT.rawValue) : 0)
                                    | (parts.contains("derefs") ? UInt32(SYNCAMP_ABLATE_DEREFS.rawValue) : 0),
                                 verbose: verbose)
        if measureCost { try bpf.enableRunTimeStats() }
        try bpf.setProbeSpecs(plan.planned.map { p in
            p.usdtEvent != nil ? (p.entry.derefs, p.usdtArgs, false) : (p.entry.derefs, p.argMap ?? [], p.argMap != nil)
        })
        for (id, p) in plan.planned.enumerated() {
            if let event = p.usdtEvent {
                try bpf.attachUSDT(binary: target.binaryForProbes, pid: target.pid, provider: USDTCatalog.provider,
                                   event: event, cookie: UInt64(id))
            } else {
                try bpf.attachUprobe(binary: target.binaryForProbes, fileOffset: p.fileOffset, pid: target.pid,
                                     cookie: UInt64(id), symbol: p.symbol.name)
            }
        }
        if case let .switchProbe(offset) = coroutines {
            try bpf.attachUprobe(binary: target.binaryForProbes, fileOffset: offset, pid: target.pid, cookie: 0,
                                 symbol: "qemu_coroutine_switch", program: "syncamp_co_switch")
        }
        let syscalls = try bpf.attachKernelProbes(hooks)

        // The images as they are before the target touches them (spawn) or when tracing starts (attach).
        let images = target.mode == "spawn" ? ImageDiscovery.fromCommand(target.command) : ImageDiscovery.fromProcess(target.pid)
        let rawImages = target.mode == "spawn" ? ImageDiscovery.rawFromCommand(target.command) : ImageDiscovery.rawFromProcess(target.pid)
        let devices = ImageDiscovery.devices(of: images.map(\.path) + rawImages, pid: target.mode == "spawn" ? nil : target.pid)
        let storage = bpf.attachStorageProbes(hooks, devices: devices)
        var manifest = makeManifest(target: target, elf: elf, plan: plan, kernelProbe: bpf.kernelProbe)
        manifest.target.hasSymtab = source.hasSymtab
        manifest.target.symbols = source.symbols.map { "\($0.path) (\(source.symbolsOrigin ?? "given"))" }
        manifest.coroutineSource = plan.isUSDT ? "usdt arguments" : coroutines.manifestDescription
        manifest.devices = devices
        manifest.rawImages = rawImages
        manifest.storageProbes = storage.attached
        manifest.missingStorageProbes = storage.missing
        manifest.kernelLevels = [syscalls] + storage.levels
        manifest.probeSet = plan.manifestProbeSet
        manifest.skippedProbes = plan.skipped
        manifest.qemuVersion = qemuVersion?.full
        manifest.domain = domain
        manifest.disks = disks(command: target.command)
        manifest.qemuABI = abi.source.description
        let writer = try CaptureWriter(path: output, manifest: manifest, force: force)
        for image in images { try writer.appendImage(image) }
        let fallbacks = plan.fallbacks
        if let file = source.symbols {
            note("symbols from \(file.path) (\(source.symbolsOrigin ?? "given"), build-id \(file.buildID ?? "none"))")
        }
        if !source.givenOffsets.isEmpty {
            note("probes at given offsets: " + source.givenOffsets.sorted { $0.key < $1.key }
                .map { "\($0.key)=0x\(String($0.value, radix: 16))" }.joined(separator: ", "))
        }
        note("tracing pid \(target.pid) (\(target.binaryPath), build-id \(elf.buildID ?? "none")): "
             + "\(plan.planned.count) uprobes (\(plan.set.rawValue) set)"
             + (fallbacks.isEmpty ? "" : ", exported fallbacks \(fallbacks.joined(separator: ", "))")
             + (plan.missing.isEmpty ? "" : ", missing \(plan.missing.map(\.role).joined(separator: ", "))"))
        if !images.isEmpty { note("image state recorded for \(images.map(\.path).joined(separator: ", "))") }
        if !devices.isEmpty {
            note("journal commits and device flushes recorded on " + devices.map {
                "\($0.major):\($0.minor)" + ($0.fileSystem.map { " (\($0))" } ?? "")
            }.joined(separator: ", "))
        }
        note("fdatasync/fsync traced with \(bpf.kernelProbe == "kprobe" ? "kprobes" : "syscalls tracepoints (kprobes unavailable or not requested)")"
             + " on Linux \(kernel.release)")
        for level in storage.levels where !level.traced {
            note("\(level.name.rawValue) not traced: \(level.reason ?? "no hook attached")")
        }

        StopSignal.install()
        let session = CaptureSession(bpf: bpf, writer: writer, target: target, duration: duration)
        session.pollDelayMs = pollDelayMs
        session.discardEvents = parts.contains("writing")
        for p in manifest.probes where p.role == ProbeRole.rawFlush.rawValue {
            if let slot = p.derefs.firstIndex(of: "fd") { session.fdDerefSlots[UInt16(p.id)] = slot }
        }
        if stopWithParent { session.parent = parent }
        started = false  // from here the target runs on its own; it is not killed at the end
        let trailer = try session.run()
        bpf.close()
        if trailer.lostEvents > 0 {
            note("warning: lost \(trailer.lostEvents) events (ring buffer full); the trees may be incomplete: raise --ring-buffer-mb")
        }
        note("wrote \(trailer.events) events to \(output) (\(trailer.reason))")
    }

    /// The ABI of the traced build: from DWARF at `dwarf` (the binary or its symbol file) when it
    /// has debug info, else the table of `version`; what DWARF lacks keeps the table's value.
    private func qemuABI(version: QemuVersion?, dwarf path: String) -> QemuABI {
        let table = QemuABI.table(for: version)
        guard qemuVersionOption == nil else { return table }
        do {
            guard let (abi, missing) = try DWARFLayout.abi(path: path, base: table) else { return table }
            if !missing.isEmpty {
                note("the DWARF of \(path) lacks \(missing.joined(separator: ", ")): the \(table.source) gives them")
            }
            return abi
        } catch {
            note("warning: \(error); using the \(table.source)")
            return table
        }
    }

    /// The disks of QEMU's command line, with libvirt's target and alias where the domain XML names them.
    private func disks(command: [String]) -> [QemuDisk] {
        var disks = QemuDisks.parse(command)
        guard let domain else { return disks }
        let named = LibvirtDomain.disks(of: domain, runDirectory: libvirtRunDir)
        for i in disks.indices {
            guard let n = named[disks[i].path] else { continue }
            disks[i].target = n.target
            if disks[i].deviceID == nil { disks[i].deviceID = n.alias }
        }
        return disks
    }

    private var debugDirectories: [String] { debugDir.isEmpty ? DebugFileLocator.defaultDirectories : debugDir }

    /// Where the probes' symbols come from: --symbols, a debug file found for a stripped binary, the binary itself; plus --offset.
    private func symbolSource(binary elf: ELFFile, target: Target) throws -> SymbolSource {
        let offsets = try OffsetOption.parse(offset, binary: elf, binaryPath: target.binaryPath)
        if let path = symbols {
            let file = try ELFFile(path: path)
            guard DebugFileLocator.matches(file, elf) else {
                throw CollectorError.symbolsMismatch(symbols: path, symbolsID: file.buildID ?? "none",
                                                     binary: target.binaryPath, binaryID: elf.buildID ?? "none")
            }
            if !file.hasSymtab { note("warning: \(path) has no symbol table (.symtab): only its exported symbols can be used") }
            return SymbolSource(binary: elf, symbols: file, symbolsOrigin: "--symbols", givenOffsets: offsets)
        }
        if !elf.hasSymtab, let found = DebugFileLocator.find(for: elf, binaryPath: target.binaryPath, directories: debugDirectories) {
            return SymbolSource(binary: elf, symbols: found.file, symbolsOrigin: found.how, givenOffsets: offsets)
        }
        // No local debug file: the debuginfod servers of DEBUGINFOD_URLS, by build-id.
        if !elf.hasSymtab, let id = elf.buildID {
            switch Debuginfod.fetchDebugInfo(buildID: id) {
            case let .found(path):
                let file = try ELFFile(path: path)
                if DebugFileLocator.matches(file, elf) {
                    note("debug file of build-id \(id) fetched from debuginfod: \(path)")
                    return SymbolSource(binary: elf, symbols: file, symbolsOrigin: "debuginfod", givenOffsets: offsets)
                }
                note("warning: debuginfod gave \(path) for build-id \(id), with build-id \(file.buildID ?? "none"): not used")
            case .noServers:
                break
            case let .unavailable(why):
                note("DEBUGINFOD_URLS is set but libdebuginfod cannot be loaded (\(why)): install libdebuginfod1")
            case let .notFound(why):
                note("no debug file for build-id \(id) from debuginfod (\(why))")
            }
        }
        return SymbolSource(binary: elf, givenOffsets: offsets)
    }

    private var ringBufferBytes: Int { ringBufferKB.map { $0 << 10 } ?? ringBufferMB << 20 }

    private func makeManifest(target: Target, elf: ELFFile, plan: ProbePlan, kernelProbe: String) -> Manifest {
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let host = withUnsafeBytes(of: &u.nodename) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let formatter = ISO8601DateFormatter()
        return Manifest(
            tool: "syncamp-collector \(Self.version)", createdAt: formatter.string(from: Date()),
            hostname: host, kernelRelease: release,
            startMonotonicNs: CaptureClock.monotonicNs(), startRealtimeNs: CaptureClock.realtimeNs(),
            target: .init(pid: target.pid, mode: target.mode, command: target.command, binaryPath: target.binaryPath,
                          buildID: elf.buildID, hasSymtab: elf.hasSymtab),
            kernelProbe: kernelProbe, probes: plan.manifestProbes, missingProbes: plan.missing,
            ringBufferBytes: ringBufferBytes)
    }

    private func note(_ s: String) {
        FileHandle.standardError.write(Data("collector: \(s)\n".utf8))
    }
}
