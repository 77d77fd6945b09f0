/// One entry of the section header table, with its name resolved.
struct ELFSection: Sendable {
    static let entrySize: UInt64 = 64
    static let symtabType: UInt32 = 2
    static let noteType: UInt32 = 7
    static let dynsymType: UInt32 = 11

    var name = ""
    var nameIndex: UInt32
    var type: UInt32
    /// `sh_addr`: where the section is mapped (0 when it is not).
    var addr: UInt64
    var offset: UInt64
    var size: UInt64
    var link: UInt32
    var info: UInt32
    var addralign: UInt64
    var entsize: UInt64

    /// Reads the section header at `offset`.
    init(_ r: ByteReader, at offset: UInt64) throws {
        let what = "section header"
        try r.check(offset, Self.entrySize, what)
        nameIndex = try r.u32(offset, what)
        type = try r.u32(offset + 4, what)
        addr = try r.u64(offset + 16, what)
        self.offset = try r.u64(offset + 24, what)
        size = try r.u64(offset + 32, what)
        link = try r.u32(offset + 40, what)
        info = try r.u32(offset + 44, what)
        addralign = try r.u64(offset + 48, what)
        entsize = try r.u64(offset + 56, what)
    }

    /// Reads the whole section header table, handling extended numbering
    /// (`e_shnum == 0`, `e_shstrndx == SHN_XINDEX`), and names each section.
    static func readAll(_ r: ByteReader, _ h: ELFHeader) throws -> [ELFSection] {
        guard h.shoff != 0 else { return [] }
        guard h.shentsize >= entrySize else {
            throw r.corrupt("section header table", at: h.shoff, "has entries of \(h.shentsize) bytes, fewer than 64")
        }
        try r.check(h.shoff, entrySize, "section header table")
        // With more than 0xff00 sections, e_shnum is 0 and section 0's sh_size holds the count.
        let count = h.shnum != 0 ? h.shnum : try ELFSection(r, at: h.shoff).size
        guard let end = checkedOffset(h.shoff, plus: count, times: h.shentsize), end <= r.count else {
            throw r.corrupt("section header table", at: h.shoff,
                            "claims \(count) entries of \(h.shentsize) bytes, more than the \(r.count)-byte file holds")
        }
        var sections = try (0..<count).map { try ELFSection(r, at: h.shoff + $0 * h.shentsize) }
        guard let first = sections.first else { return [] }
        let strndx = h.shstrndx == 0xffff ? UInt64(first.link) : h.shstrndx
        guard strndx != 0 else { return sections }
        guard strndx < count else {
            throw r.corrupt("ELF header", at: 62, "names section \(strndx) as the section name table, but there are \(count)")
        }
        let names = sections[Int(strndx)]
        for i in sections.indices {
            let index = UInt64(sections[i].nameIndex)
            sections[i].name = try r.cString(table: names.offset, size: names.size, index: index, "section name table")
        }
        return sections
    }
}
