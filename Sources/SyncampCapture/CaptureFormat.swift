/// The constants of the syncamp capture file format, version 1.
///
/// A capture is `magic` (8 bytes), the format version (u32 LE), a flags word
/// (u32 LE, 0), then records. Each record is a type (u32 LE), a payload length
/// (u32 LE) and the payload. The first record is the manifest; the last, when
/// the collector ended cleanly, is the trailer. See docs/capture-format.md.
public enum CaptureFormat {
    /// The 8 bytes every capture starts with.
    public static let magic: [UInt8] = Array("SYNCAMP\0".utf8)
    /// The format version this build writes and reads.
    public static let version: UInt32 = 1
    /// Bytes before the first record: magic, version, flags.
    public static let fileHeaderSize = 16
    /// Bytes of a record header: type and length.
    public static let recordHeaderSize = 8

    /// The kinds of record.
    public enum RecordType: UInt32, Sendable {
        /// JSON `Manifest`; always the first record.
        case manifest = 1
        /// One BPF event, the raw `struct syncamp_event` (manifest `eventSize` bytes).
        case event = 2
        /// Ring-buffer reservations that failed on one CPU: u32 cpu, u32 0, u64 cumulative count.
        case lost = 3
        /// JSON `CaptureNote`: something that happened while capturing (target exit, detach).
        case note = 4
        /// JSON `Trailer`: totals, written last by a collector that ended cleanly.
        case trailer = 5
        /// JSON `ImageState`: a qcow2 image's metadata when the capture started.
        case image = 6
        /// `FDPath`: the file behind a synced fd (u64 timestamp, u32 fd, u32 length, the path's bytes).
        case fdPath = 7
    }

    /// The largest payload accepted for a record type; anything larger is damage, not data.
    public static func maxPayload(for type: RecordType) -> Int {
        switch type {
        case .manifest: return 16 << 20
        case .event: return 4096
        case .lost: return 16
        case .note, .trailer: return 1 << 20
        case .image: return 64 << 20
        case .fdPath: return FDPath.headerSize + 4096
        }
    }
}
