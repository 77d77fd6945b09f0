/// Resolves probe symbols of the binary the probes attach to, from the binary itself,
/// a separate symbol file, or file offsets the user gave.
///
/// Uprobes attach to the binary at file offsets. The names can come from a
/// debug file or an unstripped copy of the same build (`symbols`), whose
/// addresses are mapped to offsets through the attached binary's own
/// segments; names the user pinned with an offset skip the lookup.
public struct SymbolSource: Sendable {
    /// The binary the probes attach to.
    public let binary: ELFFile
    /// A separate file with the same build's symbol table, if one is used.
    public let symbols: ELFFile?
    /// Where `symbols` came from ("--symbols", "build-id", "gnu_debuglink"), for messages and the manifest.
    public let symbolsOrigin: String?
    /// File offsets in `binary` given by name (`collector --offset NAME=0xOFFSET`).
    public let givenOffsets: [String: UInt64]

    public init(binary: ELFFile, symbols: ELFFile? = nil, symbolsOrigin: String? = nil, givenOffsets: [String: UInt64] = [:]) {
        self.binary = binary
        self.symbols = symbols
        self.symbolsOrigin = symbolsOrigin
        self.givenOffsets = givenOffsets
    }

    /// A function's symbol and its file offset in `binary`: a given offset first, then the
    /// symbol file, then the binary's own tables.
    public func function(named name: String) -> (symbol: ELFSymbol, fileOffset: UInt64)? {
        if let offset = givenOffsets[name] {
            let address = binary.address(forFileOffset: offset) ?? 0
            return (ELFSymbol(name: name, address: address, size: 0, isGlobal: false, table: .given), offset)
        }
        for file in [symbols, binary].compactMap({ $0 }) {
            if let sym = file.function(named: name), let off = binary.fileOffset(forAddress: sym.address) {
                return (sym, off)
            }
        }
        return nil
    }

    /// A thread-local variable's offset from the thread pointer, laid out by `binary`'s TLS segment.
    public func threadPointerOffset(ofThreadLocal name: String) -> Int64? {
        guard let sym = symbols?.threadLocal(named: name) ?? binary.threadLocal(named: name) else { return nil }
        return binary.threadPointerOffset(of: sym)
    }

    /// Whether a full symbol table is available (the binary's or the symbol file's).
    public var hasSymtab: Bool { binary.hasSymtab || (symbols?.hasSymtab ?? false) }
}
