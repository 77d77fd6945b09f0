import SyncampCapture

/// Makes a large capture out of a small real one by repeating its steady part.
///
/// The pattern is the run of events from the first guest request to the last
/// event before close work starts. Each repetition shifts timestamps past the
/// previous one and moves every pointer-like value (coroutines, request and
/// aiocb pointers, caches) by a fresh offset, so that pairing by pointer sees
/// new requests rather than the old ones again. Guest offsets are kept: later
/// repetitions rewrite the same clusters, as a guest rewriting its files does.
struct PatternRepeater {
    let prefix: [Event]
    let pattern: [Event]
    let suffix: [Event]
    /// Time one repetition takes, plus a gap of 1 us.
    let spanNs: UInt64

    /// Values at or above this look like user-space pointers (heap 0x55..., stacks and mmaps 0x7f...).
    static let pointerFloor: UInt64 = 1 << 44
    /// How far each repetition moves pointers: past any one process's heap, below the kernel half.
    static let pointerStride: UInt64 = 1 << 32

    /// Splits the seed's events at its first guest request and its first close probe.
    init(events: [Event], manifest: Manifest) throws {
        let roles = manifest.probes.sorted { $0.id < $1.id }.map { ProbeRole(rawValue: $0.role) }
        func role(_ e: Event) -> ProbeRole? {
            e.kind == .uprobe && Int(e.probeID) < roles.count ? roles[Int(e.probeID)] : nil
        }
        guard let first = events.firstIndex(where: { role($0)?.isGuestRequest == true }) else {
            throw GeneratorError("the seed capture has no guest request to repeat")
        }
        let close = events[first...].firstIndex(where: { role($0) == .backendUnref || role($0) == .closeAll }) ?? events.endIndex
        prefix = Array(events[..<first])
        pattern = Array(events[first ..< close])
        suffix = Array(events[close...])
        spanNs = (pattern.last!.timestamp - pattern.first!.timestamp) + 1000
    }

    /// Event `i` of repetition `rep` (0 is the seed's own).
    func event(_ i: Int, repetition rep: UInt64) -> Event {
        var e = pattern[i]
        guard rep > 0 else { return e }
        e.timestamp += rep * spanNs
        let shift = rep * Self.pointerStride
        func moved(_ v: UInt64) -> UInt64 { v >= Self.pointerFloor && v < 1 << 47 ? v &+ shift : v }
        for k in e.args.indices { e.args[k] = moved(e.args[k]) }
        for k in e.derefs.indices { e.derefs[k] = moved(e.derefs[k]) }
        e.coroutine = moved(e.coroutine)
        e.coroutineCaller = moved(e.coroutineCaller)
        e.coroutineArg = moved(e.coroutineArg)
        e.coroutineOpaque = moved(e.coroutineOpaque)
        return e
    }

    /// The suffix (close work) after `repetitions` repetitions.
    func closing(after repetitions: UInt64) -> [Event] {
        suffix.map { e in
            var e = e
            e.timestamp += (repetitions - 1) * spanNs
            return e
        }
    }
}

struct GeneratorError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
