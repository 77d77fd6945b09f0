import SyncampCapture

/// Guest ops and host syncs of one image file.
public struct ImageTotals: Sendable, Equatable {
    public var path: String
    public var guestWrites = 0
    public var guestFlushes = 0
    public var hostSyncs = 0
    public var causes: [Cause: Int] = [:]

    /// Names each op's image and sums per image.
    ///
    /// The collector notes the path behind every fd the target syncs
    /// (`fd` notes: "fd=9 path=/images/a.qcow2"). An op's image is the file its
    /// host syncs went to; an op without syncs (an overwrite) takes the image of
    /// other ops on the same BlockBackend.
    static func assign(_ ops: inout [GuestOp], unattributed: [CausalNode], notes: [CaptureNote]) -> [ImageTotals] {
        var pathOfFD: [String: String] = [:]
        for n in notes where n.kind == "fd" {
            let fields = Dictionary(n.message.split(separator: " ").compactMap { part -> (String, String)? in
                guard let eq = part.firstIndex(of: "=") else { return nil }
                return (String(part[..<eq]), String(part[part.index(after: eq)...]))
            }, uniquingKeysWith: { a, _ in a })
            if let fd = fields["fd"], let path = fields["path"] { pathOfFD[fd] = path }
        }
        func image(of fds: [String: Int]) -> String? {
            guard let fd = fds.max(by: { $0.value < $1.value })?.key else { return nil }
            return pathOfFD[fd] ?? "fd \(fd)"
        }
        var order: [String] = []
        var totals: [String: ImageTotals] = [:]
        func add(_ img: String, _ update: (inout ImageTotals) -> Void) {
            if totals[img] == nil { order.append(img); totals[img] = ImageTotals(path: img) }
            update(&totals[img]!)
        }
        /// Host syncs and causes per image of one subtree.
        func syncs(_ node: CausalNode, into perImage: inout [String: [Cause: Int]]) {
            if node.kind == CausalNode.hostSyncKind, let fd = node.details["fd"] {
                perImage[pathOfFD[fd] ?? "fd \(fd)", default: [:]][node.cause ?? .unattributed, default: 0] += 1
            }
            for c in node.children { syncs(c, into: &perImage) }
        }
        var imagesOfBackend: [UInt64: [String]] = [:]
        var perOp: [[String: [Cause: Int]]] = []
        for i in ops.indices {
            var perImage: [String: [Cause: Int]] = [:]
            for c in ops[i].children { syncs(c, into: &perImage) }
            perOp.append(perImage)
            var fds: [String: Int] = [:]
            for c in ops[i].children { c.syncFDs(into: &fds) }
            ops[i].image = image(of: fds)
            if !perImage.isEmpty, ops[i].backend != 0 { imagesOfBackend[ops[i].backend] = perImage.keys.sorted() }
        }
        for i in ops.indices {
            // An op with syncs counts for every image it synced (quorum writes all children);
            // one without (an overwrite) for the images of its BlockBackend.
            var images = perOp[i].keys.sorted()
            if images.isEmpty, ops[i].backend != 0 { images = imagesOfBackend[ops[i].backend] ?? [] }
            if ops[i].image == nil { ops[i].image = images.first }
            for img in images {
                add(img) { t in
                    if ops[i].kind == .write { t.guestWrites += 1 }
                    if ops[i].kind == .flush { t.guestFlushes += 1 }
                    for (c, n) in perOp[i][img] ?? [:] { t.causes[c, default: 0] += n; t.hostSyncs += n }
                }
            }
        }
        for node in unattributed {
            var perImage: [String: [Cause: Int]] = [:]
            syncs(node, into: &perImage)
            for (img, causes) in perImage {
                add(img) { t in for (c, n) in causes { t.causes[c, default: 0] += n; t.hostSyncs += n } }
            }
        }
        return order.compactMap { totals[$0] }
    }
}

extension Analysis.Totals {
    /// Counts requests and host syncs per cause over the trees.
    init(ops: [GuestOp], unattributed: [CausalNode]) {
        self.init()
        guestWrites = ops.filter { $0.kind == GuestOp.Kind.write }.count
        guestFlushes = ops.filter { $0.kind == GuestOp.Kind.flush }.count
        for op in ops { for (c, n) in op.causes { causes[c, default: 0] += n } }
        for node in unattributed { node.causes(into: &causes) }
        unattributedHostSyncs = unattributed.reduce(0) { $0 + $1.hostSyncs }
        // The first guest flush (and the writes before it) apart from the steady state after it.
        let requests = ops.filter(\.isGuestRequest)
        if let first = requests.firstIndex(where: { $0.kind == GuestOp.Kind.flush }) {
            firstFlushHostSyncs = requests[...first].reduce(0) { $0 + $1.hostSyncs }
            let rest = requests[(first + 1)...]
            let flushes = rest.filter { $0.kind == GuestOp.Kind.flush }.count
            if flushes > 0 {
                steadyStateAmplification = Double(rest.reduce(0) { $0 + $1.hostSyncs }) / Double(flushes)
            }
        }
    }
}
