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
    /// USDT probe sites from `.note.stapsdt` (QEMU built with the dtrace trace backend).
    public let usdtProbes: [USDTProbe]
    /// The version the program prints for `--version`, from its `.rodata` (see `VersionString`):
    /// "7.2.0" or "10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)"; nil if not found.
    public let versionString: String?

    private let segments: [ELFSegment]
    private let index: SymbolIndex
    private let threadLocals: [String: ELFSymbol]

    /// Reads and parses the file at `path`.
    public init(path: String) throws {
        try self.init(bytes: try FileBytes.read(path), path: path)
    }

    /// Parses an in-memory image; `path` names it in errors and in `path`.
    public init(bytes: [UInt8], path: String = "<memory>") throws {
        self.path = path
        let parsed = try bytes.withUnsafeBytes { try Parsed(ByteReader(bytes: $0, path: path)) }
        (buildID, hasSymtab, debugLink, segments, index, threadLocals, usdtProbes) =
            (parsed.buildID, parsed.hasSymtab, parsed.debugLink, parsed.segments, parsed.index, parsed.threadLocals, parsed.usdt)
        versionString = parsed.versionString
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

    /// The offset from the thread pointer (x86-64 `fs` base) of a thread-local
    /// variable of this executable, as the dynamic linker lays out its static TLS
    /// block (TLS variant II: the executable's block ends at the thread pointer).
    ///
    /// Only for the main executable (module 1), which is what QEMU's
    /// coroutine-local `co_tls_current` lives in. Nil if the variable or the
    /// `PT_TLS` segment is missing (stripped binaries).
    public func threadPointerOffset(ofThreadLocal name: String) -> Int64? {
        threadLocals[name].flatMap(threadPointerOffset(of:))
    }

    /// A thread-local variable's symbol (`STT_TLS`; its address is the offset in the TLS block).
    public func threadLocal(named name: String) -> ELFSymbol? {
        threadLocals[name]
    }

    /// The offset from the thread pointer of a thread-local variable laid out by this
    /// executable's `PT_TLS` segment (the symbol may come from a separate debug file).
    public func threadPointerOffset(of symbol: ELFSymbol) -> Int64? {
        guard let tls = segments.first(where: { $0.type == ELFSegment.tlsType }) else { return nil }
        let align = max(tls.align, 1)
        guard align & (align - 1) == 0, tls.memsz < 1 << 32, symbol.address < tls.memsz else { return nil }
        // glibc _dl_determine_tlsoffset: off = roundup(memsz - firstbyte, align) + firstbyte,
        // firstbyte = -p_vaddr mod align; the variable sits at tp - off + st_value.
        let firstByte = (align - tls.vaddr % align) % align
        let rounded = (tls.memsz - min(firstByte, tls.memsz) + align - 1) / align * align
        let blockOffset = Int64(rounded + firstByte)
        return Int64(symbol.address) - blockOffset
    }

    /// Converts a file offset into the virtual address a `PT_LOAD` segment maps it to; nil if none does.
    public func address(forFileOffset offset: UInt64) -> UInt64? {
        for segment in segments where segment.type == ELFSegment.loadType {
            if offset >= segment.offset && offset - segment.offset < segment.filesz { return segment.vaddr + (offset - segment.offset) }
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
    var threadLocals: [String: ELFSymbol] = [:]
    var usdt: [USDTProbe] = []
    var versionString: String?

    init(_ r: ByteReader) throws {
        let header = try ELFHeader(r)
        let sections = try ELFSection.readAll(r, header)
        segments = try ELFSegment.readAll(r, header, firstSectionInfo: sections.first?.info)
        buildID = try BuildID.find(r, sections: sections, segments: segments)
        debugLink = try DebugLink.find(r, sections: sections)
        usdt = try USDTNotes.read(r, sections: sections)
        versionString = VersionString.find(r, sections: sections)
        let symtab = sections.first { $0.type == ELFSection.symtabType }
        let dynsym = sections.first { $0.type == ELFSection.dynsymType }
        hasSymtab = symtab.map { $0.size >= 2 * SymbolTableReader.entrySize } ?? false
        let reader = SymbolTableReader(reader: r, sections: sections)
        index = SymbolIndex(symtab: try symtab.map { try reader.functions(in: $0, table: .symtab) } ?? [],
                            dynsym: try dynsym.map { try reader.functions(in: $0, table: .dynsym) } ?? [])
        for table in [(symtab, ELFSymbol.Table.symtab), (dynsym, .dynsym)] {
            guard let section = table.0 else { continue }
            for v in try reader.threadLocals(in: section, table: table.1) where threadLocals[v.name] == nil {
                threadLocals[v.name] = v
            }
        }
    }
}
