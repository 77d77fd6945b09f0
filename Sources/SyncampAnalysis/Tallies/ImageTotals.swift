import SyncampCapture

/// Guest ops and host syncs of one image file.
public struct ImageTotals: Sendable, Equatable {
    public var path: String
    public var guestWrites = 0
    public var guestFlushes = 0
    public var hostSyncs = 0
    public var causes: [Cause: Int] = [:]

}

/// Names each op's image and sums per image, one finished op at a time.
///
/// The collector records the path behind every fd the target syncs (FDPath records). An op's image is the file its host syncs went
/// to; an op without syncs (an overwrite) takes the images of other ops on the
/// same BlockBackend, and waits, as a count, until one of them has synced.
struct ImageTally {
    /// Images by slot (an index into `slots`), so that an op is counted without hashing its path.
    private var slots: [ImageTotals] = []
    /// Each slot's host syncs per cause, counted here and turned into `ImageTotals.causes` and
    /// `hostSyncs` when read (`images`): a dictionary update per cause per op hashed the cause each time.
    private var causesOfSlot: [CauseTotals] = []
    private var slotOfPath: [String: Int] = [:]
    /// The slot of each synced fd: its file's, or "fd N" until the collector names the file.
    private var slotOfFD: [UInt32: Int] = [:]
    private var pathOfFD: [UInt32: String] = [:]
    /// Slots in the order they were first counted.
    private var order: [Int] = []
    private var counted: [Bool] = []
    /// The images each BlockBackend synced last, sorted by path.
    private var imagesOfBackend: [UInt64: [Int]] = [:]
    /// The last backend found in `imagesOfBackend`, kept apart: a disk's ops follow each other,
    /// and most (overwrites) are counted by their backend alone.
    private var lastBackend: UInt64?
    private var lastImages: [Int] = []
    /// Ops without syncs on a BlockBackend whose images are not known yet.
    private var waiting: [UInt64: (writes: Int, flushes: Int)] = [:]

    /// Learns the file behind a synced fd.
    mutating func fdPath(_ p: FDPath) {
        let fd = UInt32(truncatingIfNeeded: p.fd)
        pathOfFD[fd] = p.path
        slotOfFD[fd] = slot(p.path)
    }

    /// Names the op's image (`op.image`) and adds the op to the images it synced.
    mutating func add(_ op: inout GuestOp, _ summary: OpSummary) {
        let kind = op.kind
        guard !summary.syncs.isEmpty else {
            // An op without syncs (an overwrite) counts for the images of its BlockBackend.
            guard op.backend != 0 else { return }
            guard selectBackend(op.backend) else {
                if op.isGuestRequest {
                    var w = waiting[op.backend] ?? (0, 0)
                    if kind == .write { w.writes += 1 } else if kind == .flush { w.flushes += 1 }
                    waiting[op.backend] = w
                }
                return
            }
            // The backend's images read where `lastImages` holds them (a copy of the list
            // counted a reference per op).
            let n = lastImages.count
            if op.image == nil, n > 0 { op.image = slots[lastImages[0]].path }
            for i in 0..<n { count(lastImages[i], kind: kind) }
            return
        }
        if let fd = Self.onlyFD(summary) {
            addSyncedOne(&op, fd: fd, summary)
            return
        }
        let perImage = syncsPerImage(summary)
        // Syncs per fd (a short list too).
        var fds: [(fd: UInt32, syncs: Int)] = []
        for s in summary.syncs {
            guard let fd = s.fd else { continue }
            if let k = fds.firstIndex(where: { $0.fd == fd }) { fds[k].syncs += 1 } else { fds.append((fd, 1)) }
        }
        // The fd with most syncs names the op's image (the lowest fd of a tie).
        if let fd = fds.max(by: { ($0.syncs, $1.fd) < ($1.syncs, $0.fd) })?.fd { op.image = pathOfFD[fd] ?? "fd \(fd)" }
        // An op with syncs counts for every image it synced (quorum writes all children).
        var images = perImage.map(\.img).sorted { slots[$0].path < slots[$1].path }
        if !images.isEmpty, op.backend != 0 {
            creditWaiting(of: op.backend, to: images)
            setImages(images, ofBackend: op.backend)
        }
        if images.isEmpty, op.backend != 0 { images = self.images(ofBackend: op.backend) ?? [] }
        if op.image == nil, let first = images.first { op.image = slots[first].path }
        for img in images {
            count(img, kind: kind)
            if let synced = perImage.first(where: { $0.img == img }) { addSyncs(synced.causes, to: img) }
        }
    }

    /// The fd of every host sync of the op, when they all went to one (nil when some sync has no
    /// fd or the fds differ): then the op synced one image, and `add` needs no list.
    private static func onlyFD(_ summary: OpSummary) -> UInt32? {
        guard let fd = summary.syncs.first?.fd else { return nil }
        for s in summary.syncs where s.fd != fd { return nil }
        return fd
    }

    /// `add` for an op whose host syncs all went to `fd` (most ops with syncs): the same steps
    /// for one image without the per-op lists (four allocations per op), and the backend's
    /// images set only when they change.
    private mutating func addSyncedOne(_ op: inout GuestOp, fd: UInt32, _ summary: OpSummary) {
        let img = slot(fd: fd)
        // The fd's slot is named after its file, or "fd N" until the collector names it (`fdPath`):
        // read from there, not made again per op.
        op.image = slots[img].path
        if op.backend != 0 {
            creditWaiting(of: op.backend, to: CollectionOfOne(img))
            // `lastImages` is `imagesOfBackend[lastBackend]` (selectBackend, setImages).
            if lastBackend != op.backend || lastImages.count != 1 || lastImages[0] != img {
                setImages([img], ofBackend: op.backend)
            }
        }
        count(img, kind: op.kind)
        addSyncs(summary.causes, to: img)
    }

    /// The first time a BlockBackend's images are known: its ops that came without syncs before
    /// (`waiting`) count for them.
    private mutating func creditWaiting(of backend: UInt64, to images: some Collection<Int>) {
        guard imagesOfBackend[backend] == nil, let w = waiting.removeValue(forKey: backend) else { return }
        for img in images {
            touch(img)
            slots[img].guestWrites += w.writes
            slots[img].guestFlushes += w.flushes
        }
    }

    /// `imagesOfBackend[id]`, through `lastBackend` and `lastImages`.
    private mutating func images(ofBackend id: UInt64) -> [Int]? {
        selectBackend(id) ? lastImages : nil
    }

    /// Makes `id` the last backend (`lastImages` its images); false when its images are not known.
    private mutating func selectBackend(_ id: UInt64) -> Bool {
        if lastBackend == id { return true }
        guard let found = imagesOfBackend[id] else { return false }
        lastBackend = id
        lastImages = found
        return true
    }

    private mutating func setImages(_ images: [Int], ofBackend id: UInt64) {
        imagesOfBackend[id] = images
        lastBackend = id
        lastImages = images
    }

    /// Adds the syncs of a node no op took.
    mutating func addUnplaced(_ summary: OpSummary) {
        for (img, causes) in syncsPerImage(summary).sorted(by: { slots[$0.img].path < slots[$1.img].path }) {
            touch(img)
            addSyncs(causes, to: img)
        }
    }

    /// Totals per image, in first-seen order.
    var images: [ImageTotals] {
        order.map { i in
            var totals = slots[i]
            totals.causes = causesOfSlot[i].dictionary
            totals.hostSyncs = totals.causes.values.reduce(0, +)
            return totals
        }
    }

    private mutating func slot(_ path: String) -> Int {
        if let s = slotOfPath[path] { return s }
        slots.append(ImageTotals(path: path))
        causesOfSlot.append(CauseTotals())
        counted.append(false)
        slotOfPath[path] = slots.count - 1
        return slots.count - 1
    }

    private mutating func slot(fd: UInt32) -> Int {
        if let s = slotOfFD[fd] { return s }
        let s = slot("fd \(fd)")
        slotOfFD[fd] = s
        return s
    }

    /// Puts an image in the listing the first time something counts for it.
    private mutating func touch(_ img: Int) {
        guard !counted[img] else { return }
        counted[img] = true
        order.append(img)
    }

    private mutating func count(_ img: Int, kind: GuestOp.Kind) {
        touch(img)
        if kind == .write { slots[img].guestWrites += 1 }
        if kind == .flush { slots[img].guestFlushes += 1 }
    }

    /// Host syncs per cause of each image the syncs went to, in the order first synced: an op
    /// syncs one image or a few, so a short list, not a dictionary per op.
    private mutating func syncsPerImage(_ summary: OpSummary) -> [(img: Int, causes: CauseCounts)] {
        var perImage: [(img: Int, causes: CauseCounts)] = []
        for s in summary.syncs {
            guard let fd = s.fd else { continue }
            let img = slot(fd: fd)
            if let k = perImage.firstIndex(where: { $0.img == img }) {
                perImage[k].causes[s.cause] += 1
            } else {
                var causes = CauseCounts()
                causes[s.cause] = 1
                perImage.append((img, causes))
            }
        }
        return perImage
    }

    private mutating func addSyncs(_ causes: CauseCounts, to img: Int) {
        causesOfSlot[img].add(causes)
    }
}
