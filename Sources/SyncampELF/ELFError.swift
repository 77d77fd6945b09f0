/// An error raised while reading an ELF file, always naming the file.
public enum ELFError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened or read; `reason` is the `strerror` text.
    case cannotRead(path: String, reason: String)
    /// The file does not start with the ELF magic `7f 45 4c 46`.
    case notELF(path: String, reason: String)
    /// The file is ELF but not ELF64 little-endian for x86-64 or aarch64.
    case unsupported(path: String, found: String)
    /// A structure of the file lies outside it or contradicts itself.
    case corrupt(path: String, structure: String, offset: UInt64, reason: String)

    /// One sentence naming the file and the problem.
    public var description: String {
        switch self {
        case let .cannotRead(path, reason):
            return "Cannot read \(path): \(reason)."
        case let .notELF(path, reason):
            return "\(path) is not an ELF file (\(reason))."
        case let .unsupported(path, found):
            return "\(path) is not an ELF64 little-endian x86-64 or aarch64 file: found \(found)."
        case let .corrupt(path, structure, offset, reason):
            let hex = "0x" + String(offset, radix: 16)
            return "\(path) is truncated or corrupt: the \(structure) at offset \(hex) \(reason)."
        }
    }
}
