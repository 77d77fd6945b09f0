/// The file behind a file descriptor the target synced, read from `/proc/PID/fd/N` the
/// first time the fd was synced (capture record type 7).
///
/// Paths are kept byte for byte as the kernel gives them (spaces, quotes, non-ASCII);
/// captures written before this record held them in `fd` notes ("fd=9 path=/a%20b"),
/// which the reader turns into this record.
public struct FDPath: Sendable, Equatable {
    /// CLOCK_MONOTONIC of the sync that first used the fd, ns.
    public var timestampNs: UInt64
    public var fd: UInt32
    /// The path, decoded as UTF-8 ("?" when /proc could not say).
    public var path: String

    public init(timestampNs: UInt64, fd: UInt32, path: String) {
        self.timestampNs = timestampNs
        self.fd = fd
        self.path = path
    }

    /// The record's payload: u64 timestamp, u32 fd, u32 path length, the path's bytes (LE).
    var payload: [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: timestampNs.littleEndian) { out += $0 }
        withUnsafeBytes(of: fd.littleEndian) { out += $0 }
        let bytes = Array(path.utf8)
        withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { out += $0 }
        return out + bytes
    }

    /// The bytes of a payload before the path.
    static let headerSize = 16

    /// From an `fd` note of an older capture ("fd=9 path=/images/a%20b.qcow2"), whose writer
    /// escaped spaces as %20; nil for any other note.
    init?(legacyNote n: CaptureNote) {
        guard n.kind == "fd" else { return nil }
        var fields: [String: String] = [:]
        for part in n.message.split(separator: " ") {
            guard let eq = part.firstIndex(of: "=") else { continue }
            fields[String(part[..<eq])] = String(part[part.index(after: eq)...])
        }
        guard let fd = fields["fd"].flatMap(UInt32.init), let path = fields["path"] else { return nil }
        self.init(timestampNs: n.timestampNs, fd: fd, path: path.replacingOccurrences(of: "%20", with: " "))
    }
}
