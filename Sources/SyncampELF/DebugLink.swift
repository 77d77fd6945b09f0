/// Reads the file name stored in a `.gnu_debuglink` section.
enum DebugLink {
    /// The debug file's name (the NUL-terminated string before the CRC), if the section exists.
    static func find(_ r: ByteReader, sections: [ELFSection]) throws -> String? {
        guard let section = sections.first(where: { $0.name == ".gnu_debuglink" }), section.size > 0 else {
            return nil
        }
        let name = try r.cString(table: section.offset, size: section.size, index: 0, ".gnu_debuglink section")
        return name.isEmpty ? nil : name
    }
}
