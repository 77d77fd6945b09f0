/// One entry of the program header table.
struct ELFSegment: Sendable {
    static let entrySize: UInt64 = 56
    static let loadType: UInt32 = 1
    static let noteType: UInt32 = 4
    static let tlsType: UInt32 = 7

    var type: UInt32
    var offset: UInt64
    var vaddr: UInt64
    var filesz: UInt64
    var memsz: UInt64
    var align: UInt64

    /// Reads the program header at `offset`.
    init(_ r: ByteReader, at offset: UInt64) throws {
        let what = "program header"
        try r.check(offset, Self.entrySize, what)
        type = try r.u32(offset, what)
        self.offset = try r.u64(offset + 8, what)
        vaddr = try r.u64(offset + 16, what)
        filesz = try r.u64(offset + 32, what)
        memsz = try r.u64(offset + 40, what)
        align = try r.u64(offset + 48, what)
    }

    /// The file offset of `address` if this segment maps it from the file.
    func fileOffset(for address: UInt64) -> UInt64? {
        guard address >= vaddr, address - vaddr < filesz else { return nil }
        let (result, overflow) = offset.addingReportingOverflow(address - vaddr)
        return overflow ? nil : result
    }

    /// Reads the program header table; `PN_XNUM` takes the count from section 0.
    static func readAll(_ r: ByteReader, _ h: ELFHeader, firstSectionInfo: UInt32?) throws -> [ELFSegment] {
        guard h.phoff != 0, h.phnum != 0 else { return [] }
        guard h.phentsize >= entrySize else {
            throw r.corrupt("program header table", at: h.phoff, "has entries of \(h.phentsize) bytes, fewer than 56")
        }
        let count = h.phnum == 0xffff ? UInt64(firstSectionInfo ?? 0xffff) : h.phnum
        guard let end = checkedOffset(h.phoff, plus: count, times: h.phentsize), end <= r.count else {
            throw r.corrupt("program header table", at: h.phoff,
                            "claims \(count) entries of \(h.phentsize) bytes, more than the \(r.count)-byte file holds")
        }
        return try (0..<count).map { try ELFSegment(r, at: h.phoff + $0 * h.phentsize) }
    }
}
