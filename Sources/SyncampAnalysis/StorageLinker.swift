import SyncampCapture

/// Links what happens below QEMU to the host sync that caused it: file-system sync -> journal commit -> device flush.
///
/// - `ext4_sync_file` runs on the thread that made the sync: it nests under
///   that thread's open fdatasync, or (aio=io_uring, an io-wq worker) under
///   the io_uring fsync in flight.
/// - A jbd2 commit runs on the journal thread: it is linked to the file
///   system sync in progress on the same device (QEMU serialises flushes of
///   one image, so there is one at a time per device; the transaction id
///   itself is not visible at the fsync without kprobes or fentry).
/// - A flush or FUA request goes under the commit in progress on its device,
///   else under the sync in progress there (an overwrite's fdatasync flushes
///   the device without a commit).
/// What happens on a watched device without a sync of the target in progress
/// (other processes on the same file system) is counted apart, not dropped.
final class StorageLinker {
    /// Open file-system syncs per thread and per device.
    private var syncByTid: [UInt32: TreeBuilder.Node] = [:]
    private var syncByDev: [UInt32: TreeBuilder.Node] = [:]
    private var commitByDev: [UInt32: TreeBuilder.Node] = [:]
    private var commitByKey: [UInt64: TreeBuilder.Node] = [:]
    private var requests: [UInt32: [(node: TreeBuilder.Node, start: UInt64, kind: String)]] = [:]
    /// Start times of open nodes (syncs, commits), to turn into latencies.
    private var starts: [ObjectIdentifier: UInt64] = [:]
    private(set) var unlinkedCommits = 0
    private(set) var unlinkedDeviceFlushes = 0
    private(set) var unlinkedFUAWrites = 0

    func add(_ e: Event, _ t: UInt64, openSync: (UInt32) -> TreeBuilder.Node?, pendingUring: () -> TreeBuilder.Node?) {
        let dev = UInt32(truncatingIfNeeded: e.args[0])
        switch e.kind {
        case .fsSyncEnter?:
            let node = TreeBuilder.Node(CausalNode(kind: "fs_sync", timeNs: t, tid: e.tid, symbol: "ext4_sync_file",
                                                   details: ["dev": Self.devName(dev), "ino": String(e.args[1]),
                                                             "datasync": String(e.args[2] & 1)]))
            starts[ObjectIdentifier(node)] = e.timestamp
            (openSync(e.tid) ?? pendingUring())?.children.append(node)
            syncByTid[e.tid] = node
            syncByDev[dev] = node
        case .fsSyncExit?:
            guard let node = syncByTid.removeValue(forKey: e.tid) else { return }
            let start = starts.removeValue(forKey: ObjectIdentifier(node)) ?? e.timestamp
            node.value.latencyNs = e.timestamp >= start ? e.timestamp - start : 0
            node.value.returnValue = Int64(Int32(truncatingIfNeeded: e.args[2]))
            if syncByDev[dev] === node { syncByDev[dev] = nil }
        case .journalStart?:
            let node = TreeBuilder.Node(CausalNode(kind: "journal_commit", timeNs: t, tid: e.tid, symbol: "jbd2",
                                                   details: ["dev": Self.devName(dev), "transaction": String(e.args[1])]))
            starts[ObjectIdentifier(node)] = e.timestamp
            if let sync = syncByDev[dev] { sync.children.append(node) } else { unlinkedCommits += 1 }
            commitByDev[dev] = node
            commitByKey[UInt64(dev) << 32 | (e.args[1] & 0xffff_ffff)] = node
        case .journalFlushing?:
            break
        case .journalEnd?:
            guard let node = commitByDev[dev], node.value.details["transaction"] == String(e.args[1]) else { return }
            let start = starts.removeValue(forKey: ObjectIdentifier(node)) ?? e.timestamp
            node.value.latencyNs = e.timestamp >= start ? e.timestamp - start : 0
            commitByDev[dev] = nil
        case .journalStats?:
            guard let node = commitByKey.removeValue(forKey: UInt64(dev) << 32 | (e.args[1] & 0xffff_ffff)) else { return }
            node.value.details["blocks"] = String(e.args[2])
            node.value.details["blocks_logged"] = String(e.args[3])
        case .deviceIssue?:
            let rwbs = Self.rwbs(e.args[4])
            let kind = rwbs.hasPrefix("F") ? "device_flush" : "device_fua_write"
            let node = TreeBuilder.Node(CausalNode(kind: kind, timeNs: t, tid: e.tid, symbol: "block_rq_issue",
                                                   details: ["dev": Self.devName(dev), "rwbs": rwbs, "sector": String(e.args[1])]))
            if let parent = commitByDev[dev] ?? syncByDev[dev] {
                parent.children.append(node)
            } else if kind == "device_flush" {
                unlinkedDeviceFlushes += 1
            } else {
                unlinkedFUAWrites += 1
            }
            requests[dev, default: []].append((node, e.timestamp, kind))
        case .deviceComplete?:
            let kind = Self.rwbs(e.args[4]).hasPrefix("F") ? "device_flush" : "device_fua_write"
            guard var queue = requests[dev], let i = queue.firstIndex(where: { $0.kind == kind }) else { return }
            let r = queue.remove(at: i)
            requests[dev] = queue
            r.node.value.latencyNs = e.timestamp >= r.start ? e.timestamp - r.start : 0
            if e.args[3] != 0 { r.node.value.returnValue = Int64(Int32(truncatingIfNeeded: e.args[3])) }
        default:
            break
        }
    }

    /// "major:minor" of a kernel dev_t.
    static func devName(_ dev: UInt32) -> String { "\(dev >> 20):\(dev & 0xfffff)" }

    /// The request flags as the block tracepoints spell them (up to 8 characters).
    static func rwbs(_ packed: UInt64) -> String {
        let bytes = withUnsafeBytes(of: packed.littleEndian) { Array($0) }.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}
