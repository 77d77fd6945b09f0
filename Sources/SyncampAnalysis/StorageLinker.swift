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
/// - XFS: `xfs_file_fsync` on the syncing thread, then its log force
///   (`xfs_log_force`) on the same thread; the log's flush and FUA writes
///   go under that log force. btrfs: `btrfs_sync_file` on the syncing thread;
///   its log-tree and superblock writes flush the device under it, and a
///   transaction commit on the same thread (a full commit instead of the log
///   tree) under it too. Neither has an exit event: their syncs end with the
///   host sync that made them (`hostSyncEnded`).
/// - A host sync of a block device opened as the image (`host_device`) has
///   no file system below it: the device's flushes go under that host sync.
/// What happens on a watched device without a sync of the target in progress
/// (other processes on the same file system, XFS's and btrfs's background
/// workers) is counted apart, not dropped.
final class StorageLinker {
    /// Block devices opened as images (`host_device`): an io_uring fsync names no fd, so their
    /// flushes go under the io_uring fsync in flight when no host sync of theirs is known.
    private let blockImages: Set<UInt32>

    init(blockImages: Set<UInt32> = []) { self.blockImages = blockImages }

    /// Open file-system syncs per thread and per device.
    private var syncByTid: [UInt32: TreeBuilder.Node] = [:]
    private var syncByDev: [UInt32: TreeBuilder.Node] = [:]
    private var commitByDev: [UInt32: TreeBuilder.Node] = [:]
    private var commitByKey: [UInt64: TreeBuilder.Node] = [:]
    private var requests: [UInt32: [(node: TreeBuilder.Node, start: UInt64, kind: String)]] = [:]
    /// Host syncs of block devices opened as images, by device (no file system below them).
    private var hostSyncByDev: [UInt32: TreeBuilder.Node] = [:]
    /// The last XFS log force per thread (lsn, time): `xfs_log_force_seq` fires the tracepoint and
    /// then its `xlog_force_lsn` fires it again with the same sequence; XFS counts one force (xs_log_force).
    private var lastLogForce: [UInt32: (lsn: UInt64, ts: UInt64)] = [:]
    /// Start times of open nodes (syncs, commits), to turn into latencies.
    private var starts: [ObjectIdentifier: UInt64] = [:]
    private(set) var unlinkedCommits = 0
    private(set) var unlinkedDeviceFlushes = 0
    private(set) var unlinkedFUAWrites = 0

    func add(_ e: Event, _ t: UInt64, openSync: (UInt32) -> TreeBuilder.Node?, pendingUring: () -> TreeBuilder.Node?) {
        let dev = UInt32(truncatingIfNeeded: e.args[0])
        switch e.kind {
        case .fsSyncEnter?:
            let fs = FileSystemKind(eventFS: e.probeID) ?? .ext4
            var details = ["dev": Self.devName(dev), "ino": String(e.args[1])]
            if fs != .xfs { details["datasync"] = String(e.args[2] & 1) }
            let node = TreeBuilder.Node(CausalNode(kind: "fs_sync", timeNs: t, tid: e.tid, symbol: Self.syncSymbol(fs),
                                                   details: details))
            starts[ObjectIdentifier(node)] = e.timestamp
            (openSync(e.tid) ?? pendingUring())?.children.append(node)
            syncByTid[e.tid] = node
            if dev != 0 { syncByDev[dev] = node }
        case .fsSyncExit?:
            guard let node = syncByTid.removeValue(forKey: e.tid) else { return }
            end(node, dev: dev, at: e.timestamp)
            node.value.returnValue = Int64(Int32(truncatingIfNeeded: e.args[2]))
        case .journalStart? where e.probeID != 0:
            // XFS's log force and btrfs's transaction commit: linked when the syncing thread makes them.
            let fs = FileSystemKind(eventFS: e.probeID)
            if fs == .xfs {
                defer { lastLogForce[e.tid] = (e.args[1], e.timestamp) }
                if let last = lastLogForce[e.tid], last.lsn == e.args[1], e.timestamp - last.ts < 1_000_000 { return }
            }
            let details = fs == .xfs ? ["dev": Self.devName(dev), "lsn": String(Int64(bitPattern: e.args[1]))]
                                     : ["dev": Self.devName(dev), "generation": String(e.args[1])]
            let node = TreeBuilder.Node(CausalNode(kind: "journal_commit", timeNs: t, tid: e.tid,
                                                   symbol: fs == .xfs ? "xfs_log_force" : "btrfs_transaction_commit", details: details))
            guard let sync = syncByTid[e.tid] else { unlinkedCommits += 1; return }
            sync.children.append(node)
            // The log force waits for its log writes, which go under it until its sync ends.
            if fs == .xfs { commitByDev[dev] = node }
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
            if let parent = commitByDev[dev] ?? syncByDev[dev] ?? hostSyncByDev[dev]
                ?? (blockImages.contains(dev) ? pendingUring() : nil) {
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

    /// A host sync of the block device `dev` (opened as the image) started: the device's flushes go under it.
    func blockDeviceSyncStarted(_ node: TreeBuilder.Node, dev: UInt32) { hostSyncByDev[dev] = node }

    /// A host sync (system call or io_uring fsync) ended: the file-system syncs under it that have no
    /// exit event of their own (XFS, btrfs) end with it.
    func hostSyncEnded(_ host: TreeBuilder.Node, at ts: UInt64) {
        for (dev, node) in hostSyncByDev where node === host { hostSyncByDev[dev] = nil }
        for (tid, node) in syncByTid where host.children.contains(where: { $0 === node }) {
            syncByTid[tid] = nil
            end(node, dev: syncByDev.first { $0.value === node }?.key ?? 0, at: ts)
        }
    }

    /// Closes a file-system sync: its latency, and the device's sync and log force, if still its own.
    private func end(_ node: TreeBuilder.Node, dev: UInt32, at ts: UInt64) {
        let start = starts.removeValue(forKey: ObjectIdentifier(node)) ?? ts
        node.value.latencyNs = ts >= start ? ts - start : 0
        if syncByDev[dev] === node {
            syncByDev[dev] = nil
            if let commit = commitByDev[dev], node.children.contains(where: { $0 === commit }), commit.value.symbol == "xfs_log_force" {
                commitByDev[dev] = nil
            }
        }
    }

    static func syncSymbol(_ fs: FileSystemKind) -> String {
        switch fs {
        case .xfs: return "xfs_file_fsync"
        case .btrfs: return "btrfs_sync_file"
        default: return "ext4_sync_file"
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
