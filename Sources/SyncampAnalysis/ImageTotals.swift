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
        var imageOfBackend: [UInt64: String] = [:]
        for i in ops.indices {
            var fds: [String: Int] = [:]
            for c in ops[i].children { c.syncFDs(into: &fds) }
            ops[i].image = image(of: fds)
            if let img = ops[i].image, ops[i].backend != 0 { imageOfBackend[ops[i].backend] = img }
        }
        var order: [String] = []
        var totals: [String: ImageTotals] = [:]
        for i in ops.indices {
            if ops[i].image == nil, ops[i].backend != 0 { ops[i].image = imageOfBackend[ops[i].backend] }
            guard let img = ops[i].image else { continue }
            if totals[img] == nil { order.append(img); totals[img] = ImageTotals(path: img) }
            if ops[i].kind == .write { totals[img]!.guestWrites += 1 }
            if ops[i].kind == .flush { totals[img]!.guestFlushes += 1 }
            totals[img]!.hostSyncs += ops[i].hostSyncs
            for (c, n) in ops[i].causes { totals[img]!.causes[c, default: 0] += n }
        }
        for node in unattributed {
            var fds: [String: Int] = [:]
            node.syncFDs(into: &fds)
            guard let img = image(of: fds) else { continue }
            if totals[img] == nil { order.append(img); totals[img] = ImageTotals(path: img) }
            totals[img]!.hostSyncs += node.hostSyncs
            totals[img]!.causes[.unattributed, default: 0] += node.hostSyncs
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
    }
}
