import Foundation

/// Reads the function symbols of one `SHT_SYMTAB` or `SHT_DYNSYM` section.
struct SymbolTableReader {
    static let entrySize: UInt64 = 24
    static let functionType: UInt8 = 2      // STT_FUNC
    static let indirectType: UInt8 = 10     // STT_GNU_IFUNC
    static let tlsType: UInt8 = 6           // STT_TLS
    static let globalBind: UInt8 = 1        // STB_GLOBAL
    static let weakBind: UInt8 = 2          // STB_WEAK

    let reader: ByteReader
    let sections: [ELFSection]

    /// Returns the defined, non-zero function symbols of `section`, in table order.
    ///
    /// The table and its string table are bounds-checked once as a whole; each
    /// 24-byte entry then lies inside the checked table, so fields are loaded directly.
    func functions(in section: ELFSection, table: ELFSymbol.Table) throws -> [ELFSymbol] {
        try symbols(in: section, table: table) { $0 == Self.functionType || $0 == Self.indirectType }
    }

    /// Returns the defined thread-local variables (`STT_TLS`) of `section`; their
    /// value is the offset inside the module's TLS block.
    func threadLocals(in section: ELFSection, table: ELFSymbol.Table) throws -> [ELFSymbol] {
        try symbols(in: section, table: table, allowZero: true) { $0 == Self.tlsType }
    }

    private func symbols(in section: ELFSection, table: ELFSymbol.Table, allowZero: Bool = false,
                         where wanted: (UInt8) -> Bool) throws -> [ELFSymbol] {
        let what = ".\(table.rawValue) section", stringsWhat = "string table of .\(table.rawValue)"
        guard section.entsize >= Self.entrySize else {
            throw reader.corrupt(what, at: section.offset, "has entries of \(section.entsize) bytes, fewer than 24")
        }
        let entries = try reader.slice(section.offset, section.size, what)
        guard Int(section.link) < sections.count else {
            throw reader.corrupt(what, at: section.offset, "links to string table section \(section.link), which does not exist")
        }
        let strtab = sections[Int(section.link)]
        let strings = try reader.slice(strtab.offset, strtab.size, stringsWhat)
        let stride = Int(section.entsize)
        var symbols: [ELFSymbol] = []
        for at in Swift.stride(from: 0, to: entries.count - Int(Self.entrySize) + 1, by: stride) {
            let info = entries[at + 4]
            let type = info & 0xf
            guard wanted(type) else { continue }
            let shndx = UInt16(littleEndian: entries.loadUnaligned(fromByteOffset: at + 6, as: UInt16.self))
            let value = UInt64(littleEndian: entries.loadUnaligned(fromByteOffset: at + 8, as: UInt64.self))
            guard shndx != 0, value != 0 || allowZero else { continue }
            let nameIndex = Int(UInt32(littleEndian: entries.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            guard let name = Self.string(in: strings, at: nameIndex) else {
                throw reader.corrupt(stringsWhat, at: strtab.offset, "has no complete string at index \(nameIndex)")
            }
            guard !name.isEmpty else { continue }
            let bind = info >> 4
            let size = UInt64(littleEndian: entries.loadUnaligned(fromByteOffset: at + 16, as: UInt64.self))
            symbols.append(ELFSymbol(name: name, address: value, size: size,
                                     isGlobal: bind == Self.globalBind || bind == Self.weakBind, table: table))
        }
        return symbols
    }

    /// The NUL-terminated string at `index` in `strings`, or nil if it does not end inside it.
    private static func string(in strings: UnsafeRawBufferPointer, at index: Int) -> String? {
        guard index < strings.count, let base = strings.baseAddress,
              let nul = memchr(base + index, 0, strings.count - index) else { return nil }
        let length = (base + index).distance(to: UnsafeRawPointer(nul))
        return String(decoding: UnsafeRawBufferPointer(start: base + index, count: length), as: UTF8.self)
    }
}
