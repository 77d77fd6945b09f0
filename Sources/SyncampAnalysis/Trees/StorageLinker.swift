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

    /// Where new nodes come from: the builder's, which takes them back (a pool of its own
    /// would never get a node back).
    private let pool: TreeBuilder.NodePool

    init(blockImages: Set<UInt32> = [], pool: TreeBuilder.NodePool) {
        self.blockImages = blockImages
        self.pool = pool
    }

    /// Open file-system syncs per thread and per device.
    private var syncByTid = SmallMap<UInt32, TreeBuilder.Node>()
    private var syncByDev = SmallMap<UInt32, TreeBuilder.Node>()
    private var commitByDev = SmallMap<UInt32, TreeBuilder.Node>()
    private var commitByKey: [UInt64: TreeBuilder.Node] = [:]
    /// Flush and FUA requests issued and not completed yet, per device (`queueOfDev` gives a
    /// device's queue in `requests`), oldest first. Changed in place: a dictionary of arrays copied
    /// the device's queue at each issue and completion. A request whose completion was not
    /// captured stays in its device's queue (and only there: one flat list made every completion
    /// on another device walk past it).
    private var queueOfDev = SmallMap<UInt32, Int>()
    private var requests: [[(node: TreeBuilder.Node, start: UInt64, kind: NodeKind)]] = []
    /// Host syncs of block devices opened as images, by device (no file system below them).
    private var hostSyncByDev = SmallMap<UInt32, TreeBuilder.Node>()
    /// The last XFS log force per thread (lsn, time): `xfs_log_force_seq` fires the tracepoint and
    /// then its `xlog_force_lsn` fires it again with the same sequence; XFS counts one force (xs_log_force).
    private var lastLogForce: [UInt32: (lsn: UInt64, ts: UInt64)] = [:]
    /// What happened on a watched device with no sync of the target in progress, counted apart.
    private(set) var unlinked = Unlinked()

    struct Unlinked {
        var journalCommits = 0
        var deviceFlushes = 0
        var fuaWrites = 0
    }

    /// Takes one storage event; `openSync` is the sync system call open on the event's thread
    /// (read only for a file-system sync's entry: the caller may pass nil for other events),
    /// `uringInFlight` the oldest io_uring fsync in flight (`SyncLinker`).
    func add(_ event: DecodedEvent.StorageEvent, at ts: UInt64, _ t: UInt64, tid: UInt32,
             openSync: TreeBuilder.Node?, uringInFlight: TreeBuilder.Node?) {
        switch event {
        case let .fsSyncEnter(fs, dev, inode, datasync):
            var details = NodeDetails()
            details.dev = dev
            details.inode = inode
            if fs != .xfs { details.datasync = datasync }
            let node = pool.node(kind: .fsSync, timeNs: t, tid: tid, symbol: Self.syncSymbol(fs), details: details)
            node.openedAt = ts
            (openSync ?? uringInFlight)?.children.append(node)
            syncByTid[tid] = node
            if dev != 0 { syncByDev[dev] = node }
        case let .fsSyncExit(dev, ret):
            guard let node = syncByTid.removeValue(forKey: tid) else { return }
            end(node, dev: dev, at: ts)
            node.value.returnValue = Int64(ret)
        case let .logForce(dev, lsn):
            // XFS's log force: linked when the syncing thread makes it.
            defer { lastLogForce[tid] = (UInt64(bitPattern: lsn), ts) }
            if let last = lastLogForce[tid], last.lsn == UInt64(bitPattern: lsn), ts - last.ts < 1_000_000 { return }
            var details = NodeDetails()
            details.dev = dev
            details.lsn = lsn
            let node = pool.node(kind: .journalCommit, timeNs: t, tid: tid, symbol: "xfs_log_force", details: details)
            guard let sync = syncByTid[tid] else { unlinked.journalCommits += 1; return }
            sync.children.append(node)
            // The log force waits for its log writes, which go under it until its sync ends.
            commitByDev[dev] = node
        case let .transactionCommit(dev, generation):
            // btrfs's transaction commit: linked when the syncing thread makes it.
            var details = NodeDetails()
            details.dev = dev
            details.generation = generation
            let node = pool.node(kind: .journalCommit, timeNs: t, tid: tid, symbol: "btrfs_transaction_commit", details: details)
            guard let sync = syncByTid[tid] else { unlinked.journalCommits += 1; return }
            sync.children.append(node)
        case let .journalStart(dev, transaction):
            var details = NodeDetails()
            details.dev = dev
            details.transaction = transaction
            let node = pool.node(kind: .journalCommit, timeNs: t, tid: tid, symbol: "jbd2", details: details)
            node.openedAt = ts
            if let sync = syncByDev[dev] { sync.children.append(node) } else { unlinked.journalCommits += 1 }
            commitByDev[dev] = node
            commitByKey[UInt64(dev) << 32 | (transaction & 0xffff_ffff)] = node
        case .journalFlushing:
            break
        case let .journalEnd(dev, transaction):
            guard let node = commitByDev[dev], node.value.details.transaction == transaction else { return }
            node.close(at: ts)
            commitByDev[dev] = nil
        case let .journalStats(dev, transaction, blocks, blocksLogged):
            guard let node = commitByKey.removeValue(forKey: UInt64(dev) << 32 | (transaction & 0xffff_ffff)) else { return }
            node.value.details.blocks = blocks
            node.value.details.blocksLogged = blocksLogged
        case let .deviceIssue(dev, sector, rwbs):
            let kind: NodeKind = rwbs.isFlush ? .deviceFlush : .deviceFUAWrite
            var details = NodeDetails()
            details.dev = dev
            details.rwbs = rwbs
            details.sector = sector
            let node = pool.node(kind: kind, timeNs: t, tid: tid, symbol: "block_rq_issue", details: details)
            if let parent = commitByDev[dev] ?? syncByDev[dev] ?? hostSyncByDev[dev]
                ?? (blockImages.contains(dev) ? uringInFlight : nil) {
                parent.children.append(node)
            } else if kind == .deviceFlush {
                unlinked.deviceFlushes += 1
            } else {
                unlinked.fuaWrites += 1
            }
            let q: Int
            if let known = queueOfDev[dev] {
                q = known
            } else {
                q = requests.count
                requests.append([])
                queueOfDev[dev] = q
            }
            requests[q].append((node, ts, kind))
        case let .deviceComplete(dev, rwbs, error):
            let kind: NodeKind = rwbs.isFlush ? .deviceFlush : .deviceFUAWrite
            guard let q = queueOfDev[dev], let i = requests[q].firstIndex(where: { $0.kind == kind }) else { return }
            let r = requests[q].remove(at: i)
            r.node.value.latencyNs = ts >= r.start ? ts - r.start : 0
            if error != 0 { r.node.value.returnValue = Int64(error) }
        }
    }

    /// A host sync of the block device `dev` (opened as the image) started: the device's flushes go under it.
    func blockDeviceSyncStarted(_ node: TreeBuilder.Node, dev: UInt32) { hostSyncByDev[dev] = node }

    /// A host sync (system call or io_uring fsync) ended: the file-system syncs under it that have no
    /// exit event of their own (XFS, btrfs) end with it.
    func hostSyncEnded(_ host: TreeBuilder.Node, at ts: UInt64) {
        for (dev, node) in hostSyncByDev.entries where node === host { hostSyncByDev[dev] = nil }
        var ended: [(tid: UInt32, node: TreeBuilder.Node)] = []  // usually none: ext4's syncs end with their own exit
        for (tid, node) in syncByTid.entries where host.children.contains(where: { $0 === node }) { ended.append((tid, node)) }
        // By thread id, whatever order the map holds them in (a dictionary's changed with the hash seed).
        for (tid, node) in ended.sorted(by: { $0.tid < $1.tid }) {
            syncByTid[tid] = nil
            end(node, dev: syncByDev.entries.first { $0.value === node }?.key ?? 0, at: ts)
        }
    }

    /// Closes a file-system sync: its latency, and the device's sync and log force, if still its own.
    private func end(_ node: TreeBuilder.Node, dev: UInt32, at ts: UInt64) {
        node.close(at: ts)
        if syncByDev[dev] === node {
            syncByDev[dev] = nil
            if let commit = commitByDev[dev], node.children.contains(where: { $0 === commit }), commit.value.details.lsn != nil {
                commitByDev[dev] = nil
            }
        }
    }

    static func syncSymbol(_ fs: DecodedEvent.FileSystem) -> String {
        switch fs {
        case .xfs: return "xfs_file_fsync"
        case .btrfs: return "btrfs_sync_file"
        case .ext4: return "ext4_sync_file"
        }
    }

}
