/// A USDT probe site read from `.note.stapsdt` (SystemTap SDT v3 notes, as `sys/sdt.h` and `dtrace -G` write them).
///
/// QEMU built with the dtrace trace backend (`--enable-trace-backends=dtrace`,
/// as Fedora and RHEL build it) has one per trace event call site, provider
/// `qemu`, named after the event. They survive `strip`, so they locate the
/// block layer's events in binaries with no symbols at all.
public struct USDTProbe: Sendable, Equatable {
    public var provider: String
    public var name: String
    /// The probe's address (link-time, adjusted for prelink through `.stapsdt.base`).
    public var address: UInt64
    /// The semaphore's address, or 0 when the probe has none.
    public var semaphore: UInt64
    /// The argument spec, for example `8@%rbx -4@%r13d`.
    public var arguments: String

    public init(provider: String, name: String, address: UInt64, semaphore: UInt64, arguments: String) {
        self.provider = provider
        self.name = name
        self.address = address
        self.semaphore = semaphore
        self.arguments = arguments
    }

    /// The number of arguments the spec lists.
    public var argumentCount: Int { arguments.split(separator: " ").count }
}

/// Reads the `.note.stapsdt` section.
enum USDTNotes {
    static let stapsdtType: UInt32 = 3

    static func read(_ r: ByteReader, sections: [ELFSection]) throws -> [USDTProbe] {
        guard let notes = sections.first(where: { $0.name == ".note.stapsdt" && $0.type == ELFSection.noteType }) else { return [] }
        // Prelink moves .stapsdt.base; every address moves with it.
        let baseSection = sections.first { $0.name == ".stapsdt.base" }
        try r.check(notes.offset, notes.size, ".note.stapsdt")
        var out: [USDTProbe] = []
        var pos: UInt64 = 0
        let size = notes.size
        while pos + 12 <= size {
            let at = notes.offset + pos
            let nameSize = UInt64(try r.u32(at, "stapsdt note"))
            let descSize = UInt64(try r.u32(at + 4, "stapsdt note"))
            let type = try r.u32(at + 8, "stapsdt note")
            let nameEnd = (12 + nameSize + 3) & ~3
            guard nameSize < size, descSize < size, pos + nameEnd + descSize <= size else {
                throw r.corrupt("stapsdt note", at: at, "has a name or descriptor that runs past .note.stapsdt")
            }
            let descStart = at + nameEnd
            if type == stapsdtType, nameSize == 8,
               Array(try r.slice(at + 12, 8, "stapsdt note")) == Array("stapsdt\0".utf8), descSize >= 24 {
                var pc = try r.u64(descStart, "stapsdt note")
                let base = try r.u64(descStart + 8, "stapsdt note")
                var semaphore = try r.u64(descStart + 16, "stapsdt note")
                if let b = baseSection, base != 0, b.addr != base {
                    pc = pc &+ (b.addr &- base)
                    if semaphore != 0 { semaphore = semaphore &+ (b.addr &- base) }
                }
                let strings = try r.slice(descStart + 24, descSize - 24, "stapsdt note")
                let parts = strings.split(separator: 0, maxSplits: 3, omittingEmptySubsequences: false)
                    .map { String(decoding: $0, as: UTF8.self) }
                if parts.count >= 3 {
                    out.append(USDTProbe(provider: parts[0], name: parts[1], address: pc, semaphore: semaphore, arguments: parts[2]))
                }
            }
            pos += (nameEnd + descSize + 3) & ~3
        }
        return out
    }
}
