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
    /// The file behind a synced fd (older captures' `fd` notes come as this too).
    case fdPath(FDPath)
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
    public var fileSize: Int { window.size }
    /// Bytes consumed so far.
    public private(set) var offset: Int

    /// Whether the file is still being written (`analyzer live`): at its end, `next()` then
    /// returns nil without calling the capture cut short, and a later call reads what was appended.
    public var following = false

    private let window: ByteWindow
    /// The manifest's event size, and an event record's with its header.
    private let eventSize: Int
    private let eventRecordSize: Int

    /// Opens a capture file and reads its header and manifest; records are then read in chunks.
    public init(path: String) throws {
        try self.init(window: ByteWindow(path: path), path: path)
    }

    /// Reads a capture held in memory.
    public init(data: Data, path: String = "<memory>") throws {
        try self.init(window: ByteWindow(data: data), path: path)
    }

    private init(window: ByteWindow, path: String) throws {
        self.path = path
        self.window = window
        let magic = CaptureFormat.magic
        let head = window.ensure(0, min(window.size, CaptureFormat.fileHeaderSize)) ? window.data(0, min(window.size, CaptureFormat.fileHeaderSize)) : Data()
        if head.count < magic.count || !head.prefix(magic.count).elementsEqual(magic) {
            if head.count < magic.count && head.elementsEqual(magic.prefix(head.count)) {
                throw CaptureError.emptyOrTruncatedHeader(path: path, bytes: head.count)
            }
            throw CaptureError.notACapture(path: path)
        }
        guard window.size >= CaptureFormat.fileHeaderSize else {
            throw CaptureError.emptyOrTruncatedHeader(path: path, bytes: window.size)
        }
        let version = window.u32(8)
        guard version == CaptureFormat.version else {
            throw CaptureError.unsupportedVersion(path: path, found: version)
        }
        offset = CaptureFormat.fileHeaderSize
        guard window.ensure(offset, CaptureFormat.recordHeaderSize) else {
            throw CaptureError.badManifest(path: path, reason: "the file ends before the manifest record")
        }
        let type = window.u32(offset)
        let length = Int(window.u32(offset + 4))
        guard type == CaptureFormat.RecordType.manifest.rawValue else {
            throw CaptureError.badManifest(path: path, reason: "the first record has type \(type), not the manifest")
        }
        let start = offset + CaptureFormat.recordHeaderSize
        guard length <= CaptureFormat.maxPayload(for: .manifest), window.ensure(start, length) else {
            throw CaptureError.badManifest(path: path, reason: "its length \(length) runs past the end of the file")
        }
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: window.data(start, length))
        } catch {
            throw CaptureError.badManifest(path: path, reason: "invalid JSON: \(error)")
        }
        guard manifest.eventSize >= Event.size, manifest.eventSize <= CaptureFormat.maxPayload(for: .event) else {
            throw CaptureError.badManifest(path: path, reason: "event size \(manifest.eventSize) is not a size this build reads (at least \(Event.size))")
        }
        offset += CaptureFormat.recordHeaderSize + length
        eventSize = manifest.eventSize
        eventRecordSize = CaptureFormat.recordHeaderSize + manifest.eventSize
    }

    /// The analysis's hot path: when the next record is an event whole in the read window (nearly
    /// every record), decodes it straight into `slot` (an event is 168 bytes: returned through a
    /// `CaptureRecord` it was copied three times), moves past it and returns true. Otherwise reads
    /// nothing and returns false: `next()` then returns that record (an event too, when this path
    /// could not take it: following a growing file, the window's end), the end or the damage.
    @inline(__always)
    public mutating func readEvent(into slot: UnsafeMutablePointer<Event>) -> Bool {
        guard !following, damage == nil, window.ensure(offset, eventRecordSize),
              window.u32(offset) == CaptureFormat.RecordType.event.rawValue, Int(window.u32(offset + 4)) == eventSize
        else { return false }
        window.withBytes(offset + CaptureFormat.recordHeaderSize, eventSize) { Event.decode($0.baseAddress!, into: slot) }
        offset += eventRecordSize
        return true
    }

    /// Returns the next record, or nil at the end of the file or at the first damage.
    ///
    /// When `following`, nil at the end only means "nothing more yet".
    public mutating func next() -> CaptureRecord? {
        guard damage == nil else { return nil }
        if following {
            if !hasWholeRecord() { window.refresh() }
            guard trailer == nil, hasWholeRecord() else { return nil }
        }
        let remaining = window.size - offset
        if remaining == 0 {
            if trailer == nil { damage = CaptureDamage(offset: offset, reason: "the file ends without a trailer: the capture was cut short") }
            return nil
        }
        guard remaining >= CaptureFormat.recordHeaderSize else {
            damage = CaptureDamage(offset: offset, reason: "the file ends inside a record header: the capture was cut short")
            return nil
        }
        guard window.ensure(offset, CaptureFormat.recordHeaderSize) else {
            damage = CaptureDamage(offset: offset, reason: "the file could not be read here (it shrank while being read?)")
            return nil
        }
        let rawType = window.u32(offset)
        let length = Int(window.u32(offset + 4))
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
        guard window.ensure(start, length) else {
            damage = CaptureDamage(offset: offset, reason: "the last record (\(length) bytes) could not be read: the capture was cut short")
            return nil
        }
        let recordOffset = offset
        offset = start + length
        switch type {
        case .event:
            guard length == manifest.eventSize else {
                return fail(recordOffset, "an event record has \(length) bytes, the manifest says \(manifest.eventSize)")
            }
            // The manifest's event size is at least Event.size (checked at open).
            return window.withBytes(start, length) { Event(bytes: $0) }.map { .event($0) }
        case .lost:
            guard length == 16 else { return fail(recordOffset, "a lost-events record has \(length) bytes, not 16") }
            return .lost(cpu: window.u32(start), count: window.u64(start + 8))
        case .note:
            guard let note = try? JSONDecoder().decode(CaptureNote.self, from: slice(start, length)) else {
                return fail(recordOffset, "a note record is not valid JSON")
            }
            return FDPath(legacyNote: note).map(CaptureRecord.fdPath) ?? .note(note)
        case .fdPath:
            guard length >= FDPath.headerSize else { return fail(recordOffset, "an fd-path record has \(length) bytes, fewer than \(FDPath.headerSize)") }
            let pathLength = Int(window.u32(start + 12))
            guard pathLength == length - FDPath.headerSize else {
                return fail(recordOffset, "an fd-path record says its path has \(pathLength) bytes in a record of \(length)")
            }
            let path = String(decoding: slice(start + FDPath.headerSize, pathLength), as: UTF8.self)
            return .fdPath(FDPath(timestampNs: window.u64(start), fd: window.u32(start + 8), path: path))
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

    /// Whether a whole record (header and payload) is in the file at `offset`.
    private func hasWholeRecord() -> Bool {
        let remaining = window.size - offset
        guard remaining >= CaptureFormat.recordHeaderSize, window.ensure(offset, CaptureFormat.recordHeaderSize) else { return false }
        return Int(window.u32(offset + 4)) <= remaining - CaptureFormat.recordHeaderSize
    }

    private mutating func fail(_ at: Int, _ reason: String) -> CaptureRecord? {
        damage = CaptureDamage(offset: at, reason: reason + ": the file is damaged")
        return nil
    }

    private func slice(_ start: Int, _ length: Int) -> Data {
        window.data(start, length)
    }
}
