/// An ELF64 little-endian (x86-64 or aarch64) file's function symbols, build-id
/// and load segments, read once and kept in memory.
public struct ELFFile: Sendable {
    /// The path the file was read from, or the name given for in-memory bytes.
    public let path: String
    /// The hex of the `NT_GNU_BUILD_ID` note, if the file has one.
    public let buildID: String?
    /// Whether a `.symtab` with at least one real entry exists (the file is unstripped).
    public let hasSymtab: Bool
    /// The file name in `.gnu_debuglink`, if any.
    public let debugLink: String?

    private let segments: [ELFSegment]
    private let index: SymbolIndex

    /// Reads and parses the file at `path`.
    public init(path: String) throws {
        try self.init(bytes: try FileBytes.read(path), path: path)
    }

    /// Parses an in-memory image; `path` names it in errors and in `path`.
    public init(bytes: [UInt8], path: String = "<memory>") throws {
        self.path = path
        let parsed = try bytes.withUnsafeBytes { try Parsed(ByteReader(bytes: $0, path: path)) }
        (buildID, hasSymtab, debugLink, segments, index) =
            (parsed.buildID, parsed.hasSymtab, parsed.debugLink, parsed.segments, parsed.index)
    }

    /// Looks up a function symbol (`STT_FUNC` or `STT_GNU_IFUNC`, defined, non-zero
    /// address), preferring `.symtab` over `.dynsym` and, among same-named ones,
    /// the first global one.
    public func function(named name: String) -> ELFSymbol? {
        index.function(named: name)
    }

    /// Converts a virtual address into a file offset through the `PT_LOAD`
    /// segment that maps it from the file; nil if none does.
    public func fileOffset(forAddress address: UInt64) -> UInt64? {
        for segment in segments where segment.type == ELFSegment.loadType {
            if let offset = segment.fileOffset(for: address) { return offset }
        }
        return nil
    }

    /// All function symbols of both tables, `.symtab` first, deduplicated by name and address.
    public func functions() -> [ELFSymbol] {
        index.all
    }
}

/// Everything `ELFFile` keeps, parsed from the raw bytes.
private struct Parsed {
    var buildID: String?
    var hasSymtab: Bool
    var debugLink: String?
    var segments: [ELFSegment]
    var index: SymbolIndex

    init(_ r: ByteReader) throws {
        let header = try ELFHeader(r)
        let sections = try ELFSection.readAll(r, header)
        segments = try ELFSegment.readAll(r, header, firstSectionInfo: sections.first?.info)
        buildID = try BuildID.find(r, sections: sections, segments: segments)
        debugLink = try DebugLink.find(r, sections: sections)
        let symtab = sections.first { $0.type == ELFSection.symtabType }
        let dynsym = sections.first { $0.type == ELFSection.dynsymType }
        hasSymtab = symtab.map { $0.size >= 2 * SymbolTableReader.entrySize } ?? false
        let reader = SymbolTableReader(reader: r, sections: sections)
        index = SymbolIndex(symtab: try symtab.map { try reader.functions(in: $0, table: .symtab) } ?? [],
                            dynsym: try dynsym.map { try reader.functions(in: $0, table: .dynsym) } ?? [])
    }
}
