import Foundation
import SyncampQcow2

/// One record read from a capture, after the manifest.
public enum CaptureRecord: Sendable, Equatable {
    case event(Event)
    /// Cumulative failed reservations on `cpu`.
    case lost(cpu: UInt32, count: UInt64)
    case note(CaptureNote)
    case trailer(Trailer)
    /// A qcow2 image's state when the capture started.
    case image(ImageState)
    /// A record of a type this build does not know: skipped, counted.
    case unknown(type: UInt32, length: Int)
}

/// Where and why a capture stopped before its trailer.
public struct CaptureDamage: Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: String

    public var description: String { "at byte \(offset): \(reason)" }
}

/// Reads a capture file record by record, validating every length before using it.
///
/// The reader never trusts a length it has not checked against what remains
/// of the file and the limit for its record type. A file cut short yields
/// every whole record before the cut; `damage` then says where and why.
public struct CaptureReader {
    public let path: String
    public let manifest: Manifest
    /// Set when reading stopped before a trailer: the file was cut short or is damaged.
    public private(set) var damage: CaptureDamage?
    /// Set once the trailer has been read.
    public private(set) var trailer: Trailer?
    /// Bytes in the file.
    public var fileSize: Int { data.count }
    /// Bytes consumed so far.
    public private(set) var offset: Int

    private let data: Data

    /// Opens a capture file and reads its header and manifest.
    public init(path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            let reason = (error as NSError).localizedDescription
            throw CaptureError.cannotOpen(path: path, reason: reason)
        }
        try self.init(data: data, path: path)
    }

    /// Reads a capture held in memory.
    public init(data: Data, path: String = "<memory>") throws {
        self.path = path
        self.data = data
        let magic = CaptureFormat.magic
        if data.count < magic.count || !data.prefix(magic.count).elementsEqual(magic) {
            if data.count < magic.count && data.elementsEqual(magic.prefix(data.count)) {
                throw CaptureError.emptyOrTruncatedHeader(path: path, bytes: data.count)
            }
            throw CaptureError.notACapture(path: path)
        }
        guard data.count >= CaptureFormat.fileHeaderSize else {
            throw CaptureError.emptyOrTruncatedHeader(path: path, bytes: data.count)
        }
        let version = Self.u32(data, 8)
        guard version == CaptureFormat.version else {
            throw CaptureError.unsupportedVersion(path: path, found: version)
        }
        offset = CaptureFormat.fileHeaderSize
        guard data.count - offset >= CaptureFormat.recordHeaderSize else {
            throw CaptureError.badManifest(path: path, reason: "the file ends before the manifest record")
        }
        let type = Self.u32(data, offset)
        let length = Int(Self.u32(data, offset + 4))
        guard type == CaptureFormat.RecordType.manifest.rawValue else {
            throw CaptureError.badManifest(path: path, reason: "the first record has type \(type), not the manifest")
        }
        guard length <= CaptureFormat.maxPayload(for: .manifest),
              length <= data.count - offset - CaptureFormat.recordHeaderSize else {
            throw CaptureError.badManifest(path: path, reason: "its length \(length) runs past the end of the file")
        }
        let start = data.startIndex + offset + CaptureFormat.recordHeaderSize
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data[start ..< start + length])
        } catch {
            throw CaptureError.badManifest(path: path, reason: "invalid JSON: \(error)")
        }
        guard manifest.eventSize >= Event.size, manifest.eventSize <= CaptureFormat.maxPayload(for: .event) else {
            throw CaptureError.badManifest(path: path, reason: "event size \(manifest.eventSize) is not a size this build reads (at least \(Event.size))")
        }
        offset += CaptureFormat.recordHeaderSize + length
    }

    /// Returns the next record, or nil at the end of the file or at the first damage.
    public mutating func next() -> CaptureRecord? {
        guard damage == nil else { return nil }
        let remaining = data.count - offset
        if remaining == 0 {
            if trailer == nil { damage = CaptureDamage(offset: offset, reason: "the file ends without a trailer: the capture was cut short") }
            return nil
        }
        guard remaining >= CaptureFormat.recordHeaderSize else {
            damage = CaptureDamage(offset: offset, reason: "the file ends inside a record header: the capture was cut short")
            return nil
        }
        let rawType = Self.u32(data, offset)
        let length = Int(Self.u32(data, offset + 4))
        let type = CaptureFormat.RecordType(rawValue: rawType)
        let limit = type.map(CaptureFormat.maxPayload(for:)) ?? CaptureFormat.maxPayload(for: .note)
        guard length <= limit else {
            damage = CaptureDamage(offset: offset, reason: "a record of type \(rawType) claims \(length) bytes, more than the \(limit) allowed: the file is damaged")
            return nil
        }
        guard length <= remaining - CaptureFormat.recordHeaderSize else {
            damage = CaptureDamage(offset: offset, reason: "the last record (\(length) bytes) runs past the end of the file: the capture was cut short")
            return nil
        }
        let start = offset + CaptureFormat.recordHeaderSize
        let recordOffset = offset
        offset = start + length
        switch type {
        case .event:
            guard length == manifest.eventSize else {
                return fail(recordOffset, "an event record has \(length) bytes, the manifest says \(manifest.eventSize)")
            }
            let event = data.withUnsafeBytes { Event(bytes: UnsafeRawBufferPointer(rebasing: $0[start ..< start + length])) }
            return event.map(CaptureRecord.event)
        case .lost:
            guard length == 16 else { return fail(recordOffset, "a lost-events record has \(length) bytes, not 16") }
            return .lost(cpu: Self.u32(data, start), count: Self.u64(data, start + 8))
        case .note:
            guard let note = try? JSONDecoder().decode(CaptureNote.self, from: slice(start, length)) else {
                return fail(recordOffset, "a note record is not valid JSON")
            }
            return .note(note)
        case .trailer:
            guard let t = try? JSONDecoder().decode(Trailer.self, from: slice(start, length)) else {
                return fail(recordOffset, "the trailer is not valid JSON")
            }
            trailer = t
            return .trailer(t)
        case .image:
            guard let state = try? JSONDecoder().decode(ImageState.self, from: slice(start, length)) else {
                return fail(recordOffset, "an image record is not valid JSON")
            }
            return .image(state)
        case .manifest:
            return fail(recordOffset, "a second manifest record")
        case nil:
            return .unknown(type: rawType, length: length)
        }
    }

    private mutating func fail(_ at: Int, _ reason: String) -> CaptureRecord? {
        damage = CaptureDamage(offset: at, reason: reason + ": the file is damaged")
        return nil
    }

    private func slice(_ start: Int, _ length: Int) -> Data {
        data[data.startIndex + start ..< data.startIndex + start + length]
    }

    private static func u32(_ d: Data, _ at: Int) -> UInt32 {
        d.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) }.littleEndian
    }

    private static func u64(_ d: Data, _ at: Int) -> UInt64 {
        d.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) }.littleEndian
    }
}
