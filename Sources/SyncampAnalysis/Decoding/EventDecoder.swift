import SyncampCapture
import SyncampProbes

/// Turns capture events into `DecodedEvent`s: the one place that reads an event's raw
/// arguments (`args[]`, in each role's canonical order, ProbeRole) and the values its probe
/// read through pointers (`ProbeIndex.Values`).
struct EventDecoder {
    let probes: ProbeIndex

    init(probes: ProbeIndex) { self.probes = probes }

    func decode(_ e: Event) -> DecodedEvent {
        withUnsafePointer(to: e) { decode(at: $0) }
    }

    /// Decodes the event at `e` where it lies (the reorder window's slot): an event is 168
    /// bytes, and passing it by value copied it once more per event.
    func decode(at event: UnsafePointer<Event>) -> DecodedEvent {
        let e = EventRef(event)
        // The payload first and the event made once from it: a payload assigned into a made
        // event was built aside and copied in (a memcpy per event).
        var probeID: UInt16 = 0
        var role: ProbeRole?
        let payload: DecodedEvent.Payload
        let a = e.args
        switch e.kind {
        case .uprobe?:
            probeID = e.probeID
            if let entry = probes.entry(id: e.probeID) {
                role = entry.role
                payload = entry.role.map { qemu($0, entry, e) } ?? .otherProbe
            } else {
                payload = .otherProbe
            }
        case .syscallEnter?:
            payload = .syncEnter(call: Syscall(rawValue: e.probeID), fd: UInt32(truncatingIfNeeded: a[0]))
        case .syscallExit?:
            payload = .syncExit(returnValue: Int64(bitPattern: a[0]))
        case .uringSubmit?:
            payload = .uringSubmit(ring: a[0], userData: a[2])
        case .uringComplete?:
            payload = .uringComplete(ring: a[0], userData: a[2], result: Int32(truncatingIfNeeded: a[3]))
        case .fsSyncEnter?, .fsSyncExit?, .journalStart?, .journalFlushing?, .journalEnd?, .journalStats?,
             .deviceIssue?, .deviceComplete?:
            payload = .storage(storage(e))
        case nil:
            payload = .unknown
        }
        return DecodedEvent(timestamp: e.timestamp, tid: e.tid, probeID: probeID, role: role,
                            coroutine: .init(running: e.coroutine, caller: e.coroutineCaller,
                                             entryArgument: e.coroutineArg, opaque: e.coroutineOpaque),
                            payload: payload)
    }

    private func value(_ s: ProbeIndex.Source, _ e: EventRef) -> UInt64? { ProbeIndex.read(s, of: e.p) }

    /// A uprobe's arguments and values, by role (argument positions: ProbeRole, canonical order).
    /// Inlined into `decode`: called out of line, the probe's entry was retained and released
    /// around the call, an atomic pair per uprobe event.
    @inline(__always)
    private func qemu(_ role: ProbeRole, _ entry: ProbeIndex.Entry, _ e: EventRef) -> DecodedEvent.Payload {
        let a = e.args, v = entry.values
        func request(_ kind: GuestOp.Kind, offset: UInt64 = 0, bytes: UInt64 = 0, unmap: Bool? = nil, compressed: Bool? = nil) -> DecodedEvent.Payload {
            let binding: DecodedEvent.Binding
            if let i = RequestEntry.opaqueArgument(role) {
                binding = .opaque(a[i])
            } else if entry.runsInRequestCoroutine || role == .guestDiscardCo || role == .guestTruncateCo {
                binding = .ownCoroutine
            } else {
                binding = .nextEvent
            }
            return .request(.init(kind: kind, offset: offset, bytes: bytes, backend: a[0], unmap: unmap, compressed: compressed, binding: binding))
        }
        switch role {
        case .guestWriteAIO:
            return request(.write, offset: a[1], bytes: value(v.bytes, e) ?? 0)
        case .guestWriteCo:
            let flags = entry.flagsArgument.map { a[$0] } ?? 0
            let zero = flags & RequestEntry.zeroWriteFlag != 0
            return request(zero ? .writeZeroes : .write, offset: a[1], bytes: a[2],
                           unmap: zero ? flags & RequestEntry.mayUnmapFlag != 0 : nil,
                           compressed: !zero && flags & RequestEntry.compressedFlag != 0 ? true : nil)
        case .guestDiscardCo, .guestDiscardAIO:
            return request(.discard, offset: a[1], bytes: a[2])
        case .guestTruncateCo:
            return request(.truncate, offset: a[1])
        case .guestFlushAIO, .guestFlushCo:
            return request(.flush)
        case .qcow2WriteDone: return .writeDone
        case .imageCreate: return .imageCreate
        case .snapshotCreate, .snapshotDelete, .snapshotGoto: return .imageMaintenance(.snapshot)
        case .imageCheck: return .imageMaintenance(.imageCheck)
        case .makeEmpty: return .imageMaintenance(.makeEmpty)
        case .bitmapDirectory, .bitmapDirectoryInPlace: return .bitmapDirectory
        case .backendUnref: return .backendUnref
        case .closeAll: return .closeAll
        case .qcow2Write:
            // qcow2_alloc_host_offset (the stock fallback) takes a pointer to the byte count.
            return .qcow2Write(offset: a[1], bytes: entry.isFallback ? nil : a[2])
        case .qcow2CacheWrite:
            return .cacheWrite(cacheWrite(a[1], v, e))
        case .qcow2CacheEntryFlush:
            return .cacheEntryFlush(cacheWrite(a[1], v, e), index: UInt32(truncatingIfNeeded: a[2]))
        case .qcow2SetDependency:
            // qcow2-cache.c:270-291: flushes if the dependency has its own dependency,
            // or if the cache depends on another cache already.
            let depDepends = value(v.dependencyDepends, e) ?? 0
            let cDepends = value(v.depends, e) ?? 0
            return .setDependency(cache: cacheName(a[1], v, e), dependency: cacheName(a[2], v, e),
                                  willFlush: depDepends != 0 || (cDepends != 0 && cDepends != a[2]))
        case .qcow2WriteL1Entry: return .l1Entry(index: UInt32(truncatingIfNeeded: a[1]))
        case .qcow2MarkDirty: return .markDirty
        case .qcow2GrowL1: return .growL1
        case .qcow2RefcountArea: return .refcountArea
        case .nodeFlush: return .nodeFlush(format: value(v.format, e).map(FormatName.init(raw:)))
        case .pwriteSync: return .pwriteSync(offset: a[1], bytes: a[2])
        case .vmdkWrite: return .vmdkWrite
        case .vmdkGrainTableUpdate: return .vmdkGrainTableUpdate
        case .rawFlush:
            return .rawFlush(bs: a[0], fd: value(v.fd, e).map { UInt32(truncatingIfNeeded: $0) })
        case .threadPoolSubmit:
            return .poolSubmit(.init(arg: a[2], aioType: value(v.aioType, e), fd: value(v.fd, e).map { UInt32(truncatingIfNeeded: $0) },
                                     coroutine: value(v.coroutine, e)))
        case .workerFlush:
            return .workerFlush(arg: a[0], bs: value(v.bs, e))
        case .qemuFdatasync:
            return .qemuFdatasync(fd: UInt32(truncatingIfNeeded: a[0]))
        }
    }

    private func cacheWrite(_ cache: UInt64, _ v: ProbeIndex.Values, _ e: EventRef) -> DecodedEvent.CacheWrite {
        let depends = value(v.depends, e) ?? 0
        return .init(cache: cache, name: cacheName(cache, v, e), depends: depends,
                     dependsName: depends != 0 ? cacheName(depends, v, e) : nil,
                     dependsOnFlush: (value(v.dependsOnFlush, e) ?? 0) & 0xff != 0)
    }

    /// Which cache `ptr` is: the image's L2 or refcount cache as the probe read them, else unknown.
    private func cacheName(_ ptr: UInt64, _ v: ProbeIndex.Values, _ e: EventRef) -> CacheName {
        if let l2 = value(v.l2TableCache, e), l2 == ptr { return .l2 }
        if let rc = value(v.refcountBlockCache, e), rc == ptr { return .refcount }
        return .unknown
    }

    /// The kernel's storage events (bpf/syncamp.bpf.c: args per kind).
    private func storage(_ e: EventRef) -> DecodedEvent.StorageEvent {
        let a = e.args
        let dev = UInt32(truncatingIfNeeded: a[0])
        switch e.kind {
        case .fsSyncEnter?:
            return .fsSyncEnter(fs: DecodedEvent.FileSystem(eventFS: e.probeID), dev: dev, inode: a[1], datasync: a[2] & 1 != 0)
        case .fsSyncExit?:
            return .fsSyncExit(dev: dev, returnValue: Int32(truncatingIfNeeded: a[2]))
        case .journalStart? where e.probeID != 0:
            return DecodedEvent.FileSystem(eventFS: e.probeID) == .xfs ? .logForce(dev: dev, lsn: Int64(bitPattern: a[1]))
                                                               : .transactionCommit(dev: dev, generation: a[1])
        case .journalStart?:
            return .journalStart(dev: dev, transaction: a[1])
        case .journalEnd?:
            return .journalEnd(dev: dev, transaction: a[1])
        case .journalStats?:
            return .journalStats(dev: dev, transaction: a[1], blocks: a[2], blocksLogged: a[3])
        case .deviceIssue?:
            return .deviceIssue(dev: dev, sector: a[1], rwbs: RWBS(packed: a[4]))
        case .deviceComplete?:
            return .deviceComplete(dev: dev, rwbs: RWBS(packed: a[4]), error: Int32(truncatingIfNeeded: a[3]))
        default:
            return .journalFlushing
        }
    }
}

/// An event read in place: the fields the decoder reads, loaded from the slot one at a time.
private struct EventRef {
    let p: UnsafePointer<Event>
    init(_ p: UnsafePointer<Event>) { self.p = p }
    var timestamp: UInt64 { p.pointee.timestamp }
    var tid: UInt32 { p.pointee.tid }
    var probeID: UInt16 { p.pointee.probeID }
    var kind: Event.Kind? { p.pointee.kind }
    var args: InlineWords { p.pointee.args }
    var coroutine: UInt64 { p.pointee.coroutine }
    var coroutineCaller: UInt64 { p.pointee.coroutineCaller }
    var coroutineArg: UInt64 { p.pointee.coroutineArg }
    var coroutineOpaque: UInt64 { p.pointee.coroutineOpaque }
}
