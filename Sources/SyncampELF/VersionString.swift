/// Finds the version a program prints for `--version` in its read-only data.
///
/// QEMU's programs print `<name> version <QEMU_FULL_VERSION>` and then their copyright
/// line (qemu-io.c, qemu-img.c, system/vl.c); the format string sits whole in `.rodata`,
/// in stripped binaries too: `"%s version 7.2.0 (Debian 1:7.2+dfsg-7+deb12u18)\nCopyright (c) 2003-2022 ..."`.
enum VersionString {
    /// The text after "version " on the line before the first "\nCopyright (c) ", if any.
    static func find(_ r: ByteReader, sections: [ELFSection]) -> String? {
        guard let rodata = sections.first(where: { $0.name == ".rodata" }),
              let bytes = try? r.slice(rodata.offset, rodata.size, ".rodata") else { return nil }
        let marker = Array("\nCopyright (c) ".utf8)
        let version = Array("version ".utf8)
        var i = 0
        while i + marker.count <= bytes.count {
            if bytes[i] == marker[0], bytes[i + 1] == marker[1], (2 ..< marker.count).allSatisfy({ bytes[i + $0] == marker[$0] }) {
                var start = i
                while start > 0, i - start < 160, bytes[start - 1] != 0, bytes[start - 1] != 10 { start -= 1 }
                let line = Array(bytes[start ..< i])
                if let at = (0 ... max(0, line.count - version.count)).first(where: { line.count >= version.count && Array(line[$0 ..< $0 + version.count]) == version }) {
                    let text = String(decoding: line[(at + version.count)...], as: UTF8.self)
                    if text.first?.isNumber == true { return text }
                }
            }
            i += 1
        }
        return nil
    }
}
