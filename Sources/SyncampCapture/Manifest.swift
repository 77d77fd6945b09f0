/// What a capture holds and how it was made: the first record of every capture.
///
/// Written as JSON so that a reader can show it without knowing every field;
/// unknown fields are ignored, so later versions can add fields freely.
public struct Manifest: Codable, Sendable, Equatable {
    /// The collector that wrote the capture, e.g. "syncamp-collector 0.1.0".
    public var tool: String
    public var formatVersion: UInt32
    /// Wall-clock time when the capture started, ISO 8601.
    public var createdAt: String
    public var hostname: String
    /// `uname -r` of the host.
    public var kernelRelease: String
    /// The clock of event timestamps: "CLOCK_MONOTONIC".
    public var clock: String
    /// CLOCK_MONOTONIC and CLOCK_REALTIME read together at start, to map event times to wall time.
    public var startMonotonicNs: UInt64
    public var startRealtimeNs: UInt64
    public var target: Target
    /// How fdatasync/fsync were traced: "kprobe" or "tracepoint".
    public var kernelProbe: String
    public var probes: [Probe]
    /// Probes of the catalog that could not be attached, and why.
    public var missingProbes: [MissingProbe]
    /// Size and layout version of `struct syncamp_event` records in this capture.
    public var eventSize: Int
    public var eventLayoutVersion: Int
    public var ringBufferBytes: Int
    /// How events' `coroutine` was found: "tls co_tls_current at fs-8", "uprobe qemu_coroutine_switch" or "none".
    public var coroutineSource: String?
    /// Devices whose journal commits and flush/FUA requests were recorded (the images' file systems).
    public var devices: [Device]?
    /// Storage-stack tracepoints attached (ext4, jbd2, block, io_uring), and those that could not be.
    public var storageProbes: [String]?
    public var missingStorageProbes: [String]?
    /// The target's disks as the guest, QEMU and libvirt name them (from QEMU's command line and,
    /// with `--domain`, the domain XML); nil in older captures.
    public var disks: [QemuDisk]?
    /// The libvirt domain traced (`collector --domain NAME`), if any.
    public var domain: String?
    /// The traced QEMU's version as its binary says ("7.2.0", "10.0.2 (Debian ...)"), nil if not found.
    public var qemuVersion: String?
    /// Where the probes' layouts came from ("DWARF of PATH", "built-in table for QEMU 8.0", ...).
    public var qemuABI: String?
    /// Each level below QEMU (sync system calls, file system, journal, device, io_uring): traced
    /// or not, with the hooks used and why not. Nil in captures made before levels were recorded.
    public var kernelLevels: [KernelLevel]?
    /// Images the target opens that are not qcow2 (raw files, and block devices opened as
    /// `host_device`): their host syncs are the guest's flushes one for one. Nil in older captures.
    public var rawImages: [String]?
    /// Which probe set ran: "minimal" (the default: the fewest hits per guest request that still
    /// name every cause) or "detail" (`--detail`: every catalog probe). Nil in older captures.
    public var probeSet: String?
    /// Catalog probes left out on purpose (not needed in this probe set, or covered by another probe).
    public var skippedProbes: [MissingProbe]?

    /// A block device, as the kernel's tracepoints name it.
    public struct Device: Codable, Sendable, Equatable {
        /// The kernel's dev_t: major << 20 | minor.
        public var dev: UInt32
        public var major: UInt32
        public var minor: UInt32
        /// The image files on it, or the block device itself when QEMU opens it as its image (`host_device`).
        public var images: [String]
        /// What holds the images: the file system mounted on the device (`/proc/PID/mountinfo`), or
        /// `block_device` when the image is the device itself. Nil in older captures.
        public var fileSystem: FileSystemKind?
        /// The kernel's name of the device ("loop3", "nvme0n1"), from /sys/dev/block/MAJOR:MINOR.
        public var name: String?
        /// btrfs only: the file system's fsid (/sys/fs/btrfs/FSID), which its tracepoints carry instead of a device.
        public var fsid: String?

        public init(dev: UInt32, major: UInt32, minor: UInt32, images: [String], fileSystem: FileSystemKind? = nil,
                    name: String? = nil, fsid: String? = nil) {
            self.dev = dev
            self.major = major
            self.minor = minor
            self.images = images
            self.fileSystem = fileSystem
            self.name = name
            self.fsid = fsid
        }
    }

    /// The traced process.
    public struct Target: Codable, Sendable, Equatable {
        public var pid: Int32
        /// "attach" (-p PID) or "spawn" (-- COMMAND).
        public var mode: String
        public var command: [String]
        /// The binary whose symbols were resolved.
        public var binaryPath: String
        public var buildID: String?
        /// Whether the binary has a full symbol table (.symtab) or only exported symbols.
        public var hasSymtab: Bool
        /// The separate symbol file used, and how it was found ("/usr/lib/debug/... (build-id)"), if any.
        public var symbols: String?

        public init(pid: Int32, mode: String, command: [String], binaryPath: String, buildID: String?, hasSymtab: Bool) {
            self.pid = pid
            self.mode = mode
            self.command = command
            self.binaryPath = binaryPath
            self.buildID = buildID
            self.hasSymtab = hasSymtab
        }
    }

    /// One attached uprobe; its index in `probes` is the `probeID` of its events.
    public struct Probe: Codable, Sendable, Equatable {
        public var id: Int
        /// What the probe means to the analysis (`ProbeRole` raw value).
        public var role: String
        public var symbol: String
        /// "symtab" or "dynsym".
        public var table: String
        public var address: UInt64
        public var fileOffset: UInt64
        /// True when the catalog's preferred symbol was missing and this exported equivalent was used.
        public var isFallback: Bool
        /// Names of the values in `Event.derefs`, in order (e.g. "coroutine").
        public var derefs: [String]
        /// USDT probes: for each of the role's args, the trace event's argument placed there (-1: none).
        public var usdtArgs: [Int]?
        /// Named values the probe's event gives as constants instead of reading them (USDT: cache ids).
        public var constants: [String: UInt64]?
        /// USDT probes: where the running coroutine is: "arg0" (an argument), "deref:NAME" (a value read
        /// through one), "next" (the next event on the thread that names one), nil (not in a coroutine).
        public var coroutineFrom: String?
        /// The function entry's file offset when the probe sits further in (`fileOffset`): the first
        /// instruction there that the kernel emulates (see the collector's ProbeSites). Nil: at the entry.
        public var entryOffset: UInt64?
        /// The instruction at the probe's site ("push rbp", "endbr64") and what a hit on it costs:
        /// "emulated" (push, nop, relative branch) or "single-stepped" (a second trap). Nil in older captures.
        public var siteInstruction: String?
        public var cost: String?

        public init(id: Int, role: String, symbol: String, table: String, address: UInt64, fileOffset: UInt64,
                    isFallback: Bool, derefs: [String], usdtArgs: [Int]? = nil, constants: [String: UInt64]? = nil,
                    coroutineFrom: String? = nil, entryOffset: UInt64? = nil, siteInstruction: String? = nil, cost: String? = nil) {
            self.entryOffset = entryOffset
            self.siteInstruction = siteInstruction
            self.cost = cost
            self.coroutineFrom = coroutineFrom
            self.usdtArgs = usdtArgs
            self.constants = constants
            self.id = id
            self.role = role
            self.symbol = symbol
            self.table = table
            self.address = address
            self.fileOffset = fileOffset
            self.isFallback = isFallback
            self.derefs = derefs
        }
    }

    /// A catalog probe that is not in this capture.
    public struct MissingProbe: Codable, Sendable, Equatable {
        public var role: String
        public var symbolsTried: [String]
        public var reason: String

        public init(role: String, symbolsTried: [String], reason: String) {
            self.role = role
            self.symbolsTried = symbolsTried
            self.reason = reason
        }
    }

    public init(tool: String, createdAt: String, hostname: String, kernelRelease: String,
                startMonotonicNs: UInt64, startRealtimeNs: UInt64, target: Target, kernelProbe: String,
                probes: [Probe], missingProbes: [MissingProbe], ringBufferBytes: Int) {
        self.tool = tool
        self.formatVersion = CaptureFormat.version
        self.createdAt = createdAt
        self.hostname = hostname
        self.kernelRelease = kernelRelease
        self.clock = "CLOCK_MONOTONIC"
        self.startMonotonicNs = startMonotonicNs
        self.startRealtimeNs = startRealtimeNs
        self.target = target
        self.kernelProbe = kernelProbe
        self.probes = probes
        self.missingProbes = missingProbes
        self.eventSize = Event.size
        self.eventLayoutVersion = Event.layoutVersion
        self.ringBufferBytes = ringBufferBytes
    }
}

extension Manifest {
    /// The disk whose image is `path` (an absolute path; the command line's may be relative to
    /// where the target was started), if the manifest names it.
    public func disk(ofImage path: String) -> QemuDisk? {
        disks?.first { $0.path == path || (!$0.path.hasPrefix("/") && path.hasSuffix("/" + $0.path)) }
    }
}

/// Something that happened during a capture, recorded in time order with the events.
public struct CaptureNote: Codable, Sendable, Equatable {
    public var timestampNs: UInt64
    /// "target-exited", "detached", "signal", ...
    public var kind: String
    public var message: String

    public init(timestampNs: UInt64, kind: String, message: String) {
        self.timestampNs = timestampNs
        self.kind = kind
        self.message = message
    }
}

/// Totals written last by a collector that ended cleanly.
public struct Trailer: Codable, Sendable, Equatable {
    public var events: UInt64
    /// Ring-buffer reservations that failed, summed over CPUs.
    public var lostEvents: UInt64
    public var endMonotonicNs: UInt64
    /// Why the capture ended: "target-exited", "duration", "signal".
    public var reason: String
    /// Events per probe id (uprobes) as counted by the collector.
    public var eventsPerProbe: [Int: UInt64]
    /// What the tracing cost, when the collector measured it (`collector --measure-cost`): how
    /// often each of its BPF programs ran and for how long, by program name in bpf/syncamp.bpf.c
    /// (the kernel's `bpf_prog_info.run_cnt` and `run_time_ns`, BPF_ENABLE_STATS; programs that
    /// never ran left out), and the collector's own CPU time (user + system, getrusage) from its
    /// first poll of the ring buffer to the end. Nil otherwise.
    public var bpfPrograms: [String: ProgramCost]?
    public var collectorCPUNs: UInt64?

    /// One BPF program's runs and their total time (ns).
    public struct ProgramCost: Codable, Sendable, Equatable {
        public var runs: UInt64
        public var ns: UInt64
        public init(runs: UInt64, ns: UInt64) {
            self.runs = runs
            self.ns = ns
        }
    }

    public init(events: UInt64, lostEvents: UInt64, endMonotonicNs: UInt64, reason: String, eventsPerProbe: [Int: UInt64],
                bpfPrograms: [String: ProgramCost]? = nil, collectorCPUNs: UInt64? = nil) {
        self.events = events
        self.lostEvents = lostEvents
        self.endMonotonicNs = endMonotonicNs
        self.reason = reason
        self.eventsPerProbe = eventsPerProbe
        self.bpfPrograms = bpfPrograms
        self.collectorCPUNs = collectorCPUNs
    }
}
