import CSyncampEvent

/// One event from the BPF programs, decoded from `struct syncamp_event` (bpf/syncamp.h).
public struct Event: Sendable, Equatable {
    /// What produced an event (`enum syncamp_event_kind`).
    public enum Kind: UInt16, Sendable {
        case uprobe = 1
        case syscallEnter = 2
        case syscallExit = 3
        case fsSyncEnter = 4
        case fsSyncExit = 5
        case journalStart = 6
        case journalFlushing = 7
        case journalEnd = 8
        case journalStats = 9
        case deviceIssue = 10
        case deviceComplete = 11
        case uringSubmit = 12
        case uringComplete = 13
    }

    /// Monotonic time in nanoseconds (`bpf_ktime_get_ns`).
    public var timestamp: UInt64
    public var pid: UInt32
    public var tid: UInt32
    public var cpu: UInt32
    /// The raw kind; `kind` is nil for kinds this build does not know.
    public var rawKind: UInt16
    /// Uprobe: index into the manifest's probes. Syscalls: `Syscall` raw value.
    public var probeID: UInt16
    /// Argument registers at function entry (rdi, rsi, rdx, rcx, r8, r9); syscalls: fd or return value in args[0].
    public var args: InlineWords
    /// Values read through the probe's pointer paths (manifest `derefs`).
    public var derefs: InlineWords
    /// Bit i set when derefs[i] was read.
    public var derefOK: UInt32
    /// QEMU's running coroutine (`Coroutine *`) when the event fired; 0 if unknown or none.
    public var coroutine: UInt64
    /// The coroutine that entered `coroutine` (QEMU's `Coroutine.caller`); 0 if unknown.
    public var coroutineCaller: UInt64
    /// The coroutine's entry argument (for a `blk_aio_*` request: its BlkAioEmAIOCB); 0 if unknown.
    public var coroutineArg: UInt64
    /// `opaque` of the BlockAIOCB at `coroutineArg`: the opaque the device passed to `blk_aio_*`.
    public var coroutineOpaque: UInt64

    // Inlinable: the analyzer asks these once or more per event, from another module (out of
    // line, each call copied the 168-byte event).
    @inlinable public var kind: Kind? { Kind(rawValue: rawKind) }

    /// Whether dereference `i` of this event was read successfully.
    @inlinable public func hasDeref(_ i: Int) -> Bool { i < derefs.count && derefOK & (1 << UInt32(i)) != 0 }

    public init(timestamp: UInt64, pid: UInt32, tid: UInt32, cpu: UInt32, kind: Kind, probeID: UInt16,
                args: [UInt64] = [], derefs: [UInt64] = [], derefOK: UInt32 = 0, coroutine: UInt64 = 0,
                coroutineCaller: UInt64 = 0, coroutineArg: UInt64 = 0, coroutineOpaque: UInt64 = 0) {
        self.timestamp = timestamp
        self.pid = pid
        self.tid = tid
        self.cpu = cpu
        self.rawKind = kind.rawValue
        self.probeID = probeID
        self.args = InlineWords(args, count: Event.argCount)
        self.derefs = InlineWords(derefs, count: Event.derefCount)
        self.derefOK = derefOK
        self.coroutine = coroutine
        self.coroutineCaller = coroutineCaller
        self.coroutineArg = coroutineArg
        self.coroutineOpaque = coroutineOpaque
    }

    /// Size of the C struct this build reads and writes.
    public static let size = MemoryLayout<syncamp_event>.size
    public static let argCount = Int(SYNCAMP_MAX_ARGS)
    public static let derefCount = Int(SYNCAMP_MAX_DEREFS)
    /// The event layout version of bpf/syncamp.h.
    public static let layoutVersion = Int(SYNCAMP_EVENT_VERSION)

    /// Decodes an event from at least `Event.size` bytes (little-endian host layout).
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Event.size, let base = bytes.baseAddress else { return nil }
        self.init(timestamp: 0, pid: 0, tid: 0, cpu: 0, kind: .uprobe, probeID: 0)
        withUnsafeMutablePointer(to: &self) { Event.decode(base, into: $0) }
    }

    /// Decodes the event at `bytes` (at least `Event.size` of them) straight into `event`'s
    /// memory, field by field: the reader's fast path (built and returned, an event was
    /// copied three more times on its way into the reorder window).
    @inline(__always)
    public static func decode(_ bytes: UnsafeRawPointer, into event: UnsafeMutablePointer<Event>) {
        let raw = bytes.loadUnaligned(as: syncamp_event.self)
        event.pointee.timestamp = raw.ts_ns
        event.pointee.pid = raw.pid
        event.pointee.tid = raw.tid
        event.pointee.cpu = raw.cpu
        event.pointee.rawKind = raw.kind
        event.pointee.probeID = raw.probe_id
        event.pointee.args = InlineWords(raw.args)
        event.pointee.derefs = InlineWords(raw.derefs)
        event.pointee.derefOK = raw.deref_ok
        event.pointee.coroutine = raw.coroutine
        event.pointee.coroutineCaller = raw.coroutine_caller
        event.pointee.coroutineArg = raw.coroutine_arg
        event.pointee.coroutineOpaque = raw.coroutine_opaque
    }

    /// Encodes the event as `struct syncamp_event` bytes, as the BPF program would.
    public func encoded() -> [UInt8] {
        var raw = syncamp_event()
        raw.ts_ns = timestamp
        raw.pid = pid
        raw.tid = tid
        raw.cpu = cpu
        raw.kind = rawKind
        raw.probe_id = probeID
        raw.args = (args[0], args[1], args[2], args[3], args[4], args[5])
        raw.derefs = (derefs[0], derefs[1], derefs[2], derefs[3])
        raw.deref_ok = derefOK
        raw.coroutine = coroutine
        raw.coroutine_caller = coroutineCaller
        raw.coroutine_arg = coroutineArg
        raw.coroutine_opaque = coroutineOpaque
        return withUnsafeBytes(of: &raw) { Array($0) }
    }
}

/// The sync system calls the kernel side records (`enum syncamp_syscall`).
public enum Syscall: UInt16, Sendable, CustomStringConvertible {
    case fdatasync = 1
    case fsync = 2

    public var description: String { self == .fdatasync ? "fdatasync" : "fsync" }
}
