import Foundation
import SyncampQcow2
import SyncampSystem
import SystemPackage

/// Writes a capture file: header and manifest first, then events, lost counts and notes, then the trailer.
///
/// Records are buffered and written in whole records, so a capture cut short
/// (collector killed, disk full) ends on a record boundary or inside the last
/// record, and the reader recovers everything before it. The file is created
/// with mode 0600 (captures hold file paths and offsets) and never replaces an
/// existing file unless `force` is set.
public final class CaptureWriter {
    public let path: String
    /// The open capture; nil once `finish` has closed it.
    private var fd: FileDescriptor?
    private var buffer: [UInt8] = []
    private let bufferLimit: Int
    /// Events appended so far.
    public private(set) var eventCount: UInt64 = 0

    /// Creates the file and writes the header and manifest.
    public init(path: String, manifest: Manifest, force: Bool = false, bufferLimit: Int = 256 << 10) throws {
        self.path = path
        self.bufferLimit = bufferLimit
        let options: FileDescriptor.OpenOptions = [.create, .closeOnExec, force ? .truncate : .exclusiveCreate]
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(FilePath(path), .writeOnly, options: options, permissions: [.ownerReadWrite])
            // An existing file replaced with --force keeps its mode unless told otherwise
            // (a file system without modes refusing is no reason to lose the capture).
            if force { try? file.setPermissions([.ownerReadWrite]) }
        } catch Errno.fileExists {
            throw CaptureError.alreadyExists(path: path)
        } catch {
            throw CaptureError.cannotOpen(path: path, reason: "\(error)")
        }
        fd = file
        buffer.reserveCapacity(bufferLimit + 4096)
        buffer += CaptureFormat.magic
        appendU32(CaptureFormat.version)
        appendU32(0)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try appendRecord(.manifest, Array(encoder.encode(manifest)))
        try flush()
    }

    deinit { try? fd?.close() }

    /// Appends one raw `struct syncamp_event`, as it came out of the ring buffer.
    public func appendEvent(_ bytes: UnsafeRawBufferPointer) throws {
        appendHeader(.event, bytes.count)
        buffer.append(contentsOf: bytes)
        eventCount += 1
        if buffer.count >= bufferLimit { try flush() }
    }

    /// Appends one decoded event (tests and generators).
    public func appendEvent(_ event: Event) throws {
        try event.encoded().withUnsafeBytes { try appendEvent($0) }
    }

    /// Records the cumulative count of failed ring-buffer reservations on one CPU.
    public func appendLost(cpu: UInt32, count: UInt64) throws {
        var payload: [UInt8] = []
        withUnsafeBytes(of: cpu.littleEndian) { payload += $0 }
        withUnsafeBytes(of: UInt32(0)) { payload += $0 }
        withUnsafeBytes(of: count.littleEndian) { payload += $0 }
        try appendRecord(.lost, payload)
    }

    /// Records a note (target exit, detach, ...).
    public func appendNote(_ note: CaptureNote) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try appendRecord(.note, Array(encoder.encode(note)))
    }

    /// Appends the file behind a synced fd, its path byte for byte.
    public func appendFDPath(_ p: FDPath) throws {
        try appendRecord(.fdPath, p.payload)
    }

    /// Appends any record as read back from a capture (for tools that rewrite captures, and tests).
    public func append(_ record: CaptureRecord) throws {
        switch record {
        case let .event(e): try appendEvent(e)
        case let .lost(cpu, count): try appendLost(cpu: cpu, count: count)
        case let .note(n): try appendNote(n)
        case let .image(state): try appendImage(state)
        case let .fdPath(p): try appendFDPath(p)
        case let .trailer(t): try finish(trailer: t)
        case let .unknown(type, _):
            throw CaptureError.writeFailed(path: path, reason: "a record of unknown type \(type) cannot be written again")
        }
    }

    /// Records a qcow2 image's state at the start of the capture.
    public func appendImage(_ state: ImageState) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try appendRecord(.image, Array(encoder.encode(state)))
    }

    /// Writes the trailer and everything buffered, and closes the file.
    public func finish(trailer: Trailer) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try appendRecord(.trailer, Array(encoder.encode(trailer)))
        try flush()
        guard let file = fd else { return }
        fd = nil
        // A capture is only whole once the kernel says it reached the disk: fsync and close can
        // both report a write-back error (EIO, ENOSPC, EDQUOT) that write() did not. The file is
        // closed whatever fsync said, and the first failure is the one reported.
        var failure: (call: String, error: Errno)?
        do { try file.sync() } catch { failure = ("fsync", error) }
        do { try file.closeReportingErrors() } catch { failure = failure ?? ("close", error) }
        if let (call, error) = failure {
            throw CaptureError.writeFailed(path: path, reason: "\(call) failed: \(error); the capture on disk may end before its trailer")
        }
    }

    /// Writes the buffered records to the file.
    public func flush() throws {
        guard let file = fd else { return }
        defer { buffer.removeAll(keepingCapacity: true) }
        do {
            // writeAll goes on after short writes; swift-system retries EINTR.
            _ = try file.writeAll(buffer)
        } catch {
            throw CaptureError.writeFailed(path: path, reason: "\(error)")
        }
    }

    func appendRecord(_ type: CaptureFormat.RecordType, _ payload: [UInt8]) throws {
        appendHeader(type, payload.count)
        buffer += payload
        if buffer.count >= bufferLimit { try flush() }
    }

    private func appendHeader(_ type: CaptureFormat.RecordType, _ length: Int) {
        appendU32(type.rawValue)
        appendU32(UInt32(length))
    }

    private func appendU32(_ v: UInt32) {
        withUnsafeBytes(of: v.littleEndian) { buffer += $0 }
    }
}
