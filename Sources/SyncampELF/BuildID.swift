/// Finds the GNU build-id (`NT_GNU_BUILD_ID`) among an ELF file's notes.
enum BuildID {
    static let gnuBuildIDType: UInt32 = 3

    /// The build-id as lowercase hex, looked for in `.note.gnu.build-id`, then
    /// in other `SHT_NOTE` sections, then in `PT_NOTE` segments.
    static func find(_ r: ByteReader, sections: [ELFSection], segments: [ELFSegment]) throws -> String? {
        let notes = sections.filter { $0.type == ELFSection.noteType }
        let regions = notes.filter { $0.name == ".note.gnu.build-id" }.map { ($0.offset, $0.size, $0.addralign) }
            + notes.filter { $0.name != ".note.gnu.build-id" }.map { ($0.offset, $0.size, $0.addralign) }
            + segments.filter { $0.type == ELFSegment.noteType }.map { ($0.offset, $0.filesz, $0.align) }
        for (offset, size, align) in regions {
            if let id = try find(r, offset: offset, size: size, align: align == 8 ? 8 : 4) { return id }
        }
        return nil
    }

    /// Walks the notes in `size` bytes at `offset`, each padded to `align`.
    private static func find(_ r: ByteReader, offset: UInt64, size: UInt64, align: UInt64) throws -> String? {
        try r.check(offset, size, "note area")
        var pos: UInt64 = 0  // relative to `offset`; the area is known to fit in the file
        while pos < size {
            guard size - pos >= 12 else { throw r.corrupt("note", at: offset + pos, "header runs past its note area") }
            let nameSize = UInt64(try r.u32(offset + pos, "note"))
            let descSize = UInt64(try r.u32(offset + pos + 4, "note"))
            let type = try r.u32(offset + pos + 8, "note")
            guard let nameEnd = padded(pos + 12, nameSize, align), let descEnd = padded(nameEnd, descSize, align),
                  nameEnd <= size, descSize <= size - nameEnd else {
                throw r.corrupt("note", at: offset + pos, "has a name or descriptor that runs past its note area")
            }
            if type == gnuBuildIDType, nameSize == 4,
               Array(try r.slice(offset + pos + 12, 4, "note")) == Array("GNU\0".utf8) {
                let desc = try r.slice(offset + nameEnd, descSize, "note")
                return desc.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
            }
            pos = descEnd
        }
        return nil
    }

    /// `start + size` rounded up to `align`, or nil on overflow.
    private static func padded(_ start: UInt64, _ size: UInt64, _ align: UInt64) -> UInt64? {
        guard let end = checkedOffset(start, plus: size, times: 1) else { return nil }
        let (rounded, overflow) = end.addingReportingOverflow(align - 1)
        return overflow ? nil : rounded & ~(align - 1)
    }
}
