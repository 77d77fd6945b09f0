/// Which image model an op is replayed on: decided once per op for every model run of an
/// analysis (the as-run model, the what-if run and each recommendation's run), which all hold
/// one model per image of the same image list and see the same ops.
///
/// What it reads is the op's own facts and what earlier ops said of its BlockBackend (the format
/// a probe named, the image its syncs went to); nothing a run's replay changes. The per-run
/// decisions (an image whose state is lost, a cache that may evict) stay with the run
/// (`ModelComparison.add(_:route:observed:keepPrediction:)`).
struct ModelRouter {
    /// Where an op goes.
    enum Target: Equatable {
        /// Another format's op (vmdk, raw ...): unpredicted, `formatNotQcow2`.
        case otherFormat
        /// A close that names no image when there are several: every image closes.
        case closeAll
        /// An unmodelled request (`ModelComparison.isUnmodelled`) on an image no op named yet:
        /// any image's state may have changed.
        case unmodelledUnknownImage
        /// The model at this index of the runs' image slots.
        case slot(Int)
        /// No model of the op's image: unpredicted `noImageState` when `reported`, else not counted.
        case noState(reported: Bool)
    }

    /// A slot that took the name an op knows its image by (`slot(for:)`): each run renames its
    /// slot and image state the same way.
    struct Rename: Equatable {
        var slot: Int
        /// The image state's path before, and the name after.
        var from, to: String
    }

    /// An op's target, with the renames looking it up made (usually none).
    struct Route {
        var target: Target
        var renames: [Rename] = []
    }

    /// The slots' image names, in the runs' slot order.
    private var names: [String]
    /// The one image, when there is one: ops that name none are its.
    private let only: Int?
    private var backends = Backends()
    /// The slot of each path ops named (nil: no model), so each path is matched once.
    private var slotOfPath: [String: Int?] = [:]
    /// The last path looked up (ops of one image follow each other).
    private var lastSlot: (path: String, slot: Int?)?
    private var renames: [Rename] = []
    /// The last op's route when it named no format and renamed nothing (an overwrite, most ops).
    /// Routing an op again right after it changes nothing (what the first routing learnt is
    /// already known), so an op with the same kind, BlockBackend and image goes the same way.
    private var repeated: (backend: UInt64, kind: GuestOp.Kind, image: String?, target: Target)?

    /// - Parameter names: the image path of each slot, in slot order (`ModelComparison`'s plausible images, once each).
    init(names: [String]) {
        self.names = names
        only = names.count == 1 ? 0 : nil
    }

    /// Where `op` goes (ops come in index order: what it says of its BlockBackend is kept for the next).
    mutating func route(_ op: GuestOp) -> Route {
        let plain = op.format == nil
        if plain, let r = repeated, r.backend == op.backend, r.kind == op.kind, r.image == op.image {
            return Route(target: r.target)
        }
        if !renames.isEmpty { renames.removeAll(keepingCapacity: true) }  // most ops rename nothing: no call
        let target = self.target(op)
        repeated = plain && renames.isEmpty ? (op.backend, op.kind, op.image, target) : nil
        return Route(target: target, renames: renames)
    }

    private mutating func target(_ op: GuestOp) -> Target {
        if op.backend != 0, let format = op.format { backends.setFormat(format, of: op.backend) }
        // Closing a qcow2 image closes its raw backing file too, whose flush names the group raw's;
        // a raw node has no metadata: the close is the qcow2 image's when the model has it.
        let closesRawBacking = op.kind == .imageClose && op.format == "raw" && op.image.map { slot(for: $0) != nil } == true
        // A request with no probe naming its format (an overwrite) is on its disk's format.
        if let format = op.format ?? (op.backend != 0 ? backends.format(of: op.backend) : nil), format != "qcow2", !closesRawBacking {
            return .otherFormat
        }
        // Closing with nothing left to sync names no image: every image is closed.
        if op.kind == .imageClose && op.image == nil && only == nil { return .closeAll }
        if op.kind.isGuestRequest, op.backend != 0, let image = op.image { backends.setImage(image, of: op.backend) }
        let image = op.image ?? (op.backend != 0 ? backends.image(of: op.backend) : nil)
        if image == nil, only == nil, ModelComparison.isUnmodelled(op.kind), !names.isEmpty { return .unmodelledUnknownImage }
        let index: Int?
        if let image { index = slot(for: image) } else { index = only }
        guard let i = index else {
            // An op that names an image the model has no state of is not guessed from another image's.
            guard let image else { return .noState(reported: false) }
            return .noState(reported: ModelComparison.isReadablePath(image) && op.kind != .imageOpen
                && op.kind != .housekeeping && op.kind != .imageCreate)
        }
        return .slot(i)
    }

    /// The model of an op's image. Ops name images by the path behind their fds, image states
    /// by the path the target was given: a relative one is matched by its suffix, once, and
    /// the model then takes the op's name for the image (a `Rename`).
    private mutating func slot(for path: String) -> Int? {
        if let last = lastSlot, last.path == path { return last.slot }
        defer { lastSlot = (path, slotOfPath[path] ?? nil) }
        if let known = slotOfPath[path] { return known }
        var found = names.firstIndex { $0 == path }
        if found == nil {
            found = names.firstIndex { path.hasSuffix("/" + $0) || $0.hasSuffix("/" + path) }
            // A path the collector could not read ("?", "fd 9") names the one image there is.
                ?? (ModelComparison.isReadablePath(path) ? nil : only)
            if let i = found {
                // A name that says nothing is not taken as the image's name.
                let key = names[i]
                let name = path.hasPrefix("/") || !path.contains(" ") && path != "?" ? path : key
                names[i] = name
                renames.append(Rename(slot: i, from: key, to: name))
                slotOfPath[name] = i
            }
        }
        slotOfPath[path] = found
        return found
    }

    /// What ops said of each BlockBackend (non-zero): the format of its image, from its ops whose
    /// probes named one (vmdk, vhdx ...), and its image, from its ops that named one. The last
    /// backend asked is kept apart: a disk's ops follow each other.
    private struct Backends {
        struct Names { var format, image: String? }
        private var names: [UInt64: Names] = [:]
        /// `names[lastID]` (0: none yet).
        private var lastID: UInt64 = 0
        private var last = Names()

        private mutating func select(_ id: UInt64) {
            guard id != lastID else { return }
            lastID = id
            last = names[id] ?? Names()
        }

        mutating func format(of id: UInt64) -> String? {
            select(id)
            return last.format
        }

        mutating func image(of id: UInt64) -> String? {
            select(id)
            return last.image
        }

        mutating func setFormat(_ format: String, of id: UInt64) {
            select(id)
            guard last.format != format else { return }
            last.format = format
            names[id] = last
        }

        mutating func setImage(_ image: String, of id: UInt64) {
            select(id)
            guard last.image != image else { return }
            last.image = image
            names[id] = last
        }
    }
}
