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
    private var pathOfFD: [UInt32: String] = [:]
    private var order: [String] = []
    private var totals: [String: ImageTotals] = [:]
    private var imagesOfBackend: [UInt64: [String]] = [:]
    /// Ops without syncs on a BlockBackend whose images are not known yet.
    private var waiting: [UInt64: (writes: Int, flushes: Int)] = [:]

    /// Learns the file behind a synced fd.
    mutating func fdPath(_ p: FDPath) {
        pathOfFD[UInt32(truncatingIfNeeded: p.fd)] = p.path
    }

    /// Names the op's image (`op.image`) and adds the op to the images it synced.
    mutating func add(_ op: inout GuestOp, _ summary: OpSummary) {
        var perImage: [String: [Cause: Int]] = [:]
        syncs(summary, into: &perImage)
        var fds: [UInt32: Int] = [:]
        for s in summary.syncs { if let fd = s.fd { fds[fd, default: 0] += 1 } }
        // The fd with most syncs names the op's image (the lowest fd of a tie).
        if let fd = fds.max(by: { ($0.value, $1.key) < ($1.value, $0.key) })?.key { op.image = pathOfFD[fd] ?? "fd \(fd)" }
        // An op with syncs counts for every image it synced (quorum writes all children);
        // one without (an overwrite) for the images of its BlockBackend.
        var images = perImage.keys.sorted()
        if !images.isEmpty, op.backend != 0 {
            if imagesOfBackend[op.backend] == nil, let w = waiting.removeValue(forKey: op.backend) {
                for img in images { add(img) { t in t.guestWrites += w.writes; t.guestFlushes += w.flushes } }
            }
            imagesOfBackend[op.backend] = images
        }
        if images.isEmpty, op.backend != 0 {
            images = imagesOfBackend[op.backend] ?? []
            if images.isEmpty && op.isGuestRequest {
                var w = waiting[op.backend] ?? (0, 0)
                if op.kind == .write { w.writes += 1 } else if op.kind == .flush { w.flushes += 1 }
                waiting[op.backend] = w
            }
        }
        if op.image == nil { op.image = images.first }
        let kind = op.kind
        for img in images {
            add(img) { t in
                if kind == .write { t.guestWrites += 1 }
                if kind == .flush { t.guestFlushes += 1 }
                for (c, n) in perImage[img] ?? [:] { t.causes[c, default: 0] += n; t.hostSyncs += n }
            }
        }
    }

    /// Adds the syncs of a node no op took.
    mutating func addUnplaced(_ summary: OpSummary) {
        var perImage: [String: [Cause: Int]] = [:]
        syncs(summary, into: &perImage)
        for (img, causes) in perImage.sorted(by: { $0.key < $1.key }) {
            add(img) { t in for (c, n) in causes { t.causes[c, default: 0] += n; t.hostSyncs += n } }
        }
    }

    /// Totals per image, in first-seen order.
    var images: [ImageTotals] { order.compactMap { totals[$0] } }

    private mutating func add(_ img: String, _ update: (inout ImageTotals) -> Void) {
        if totals[img] == nil { order.append(img); totals[img] = ImageTotals(path: img) }
        update(&totals[img]!)
    }

    /// Host syncs and causes per image.
    private func syncs(_ summary: OpSummary, into perImage: inout [String: [Cause: Int]]) {
        for s in summary.syncs {
            guard let fd = s.fd else { continue }
            perImage[pathOfFD[fd] ?? "fd \(fd)", default: [:]][s.cause, default: 0] += 1
        }
    }
}
