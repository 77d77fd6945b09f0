import Foundation
import SyncampSystem
import SystemPackage

/// The bytes of a capture, read through a window that slides forward over the file.
///
/// A capture can hold billions of bytes; the reader keeps only the record it is
/// decoding and the chunk around it in memory, so memory does not grow with
/// the capture. A capture held in memory (tests, the fuzzer) is one window.
final class ByteWindow {
    /// Total bytes: the file's size when it was opened or last refreshed, or the data's count.
    private(set) var size: Int
    private var bytes: [UInt8]
    /// Offset in the capture of `bytes[0]`.
    private var base = 0
    /// The capture file; nil for a capture held in memory.
    private let fd: FileDescriptor?
    private let chunk: Int

    init(data: Data) {
        bytes = Array(data)
        size = bytes.count
        fd = nil
        chunk = 0
    }

    init(path: String, chunk: Int = 4 << 20) throws {
        let fd: FileDescriptor
        let st: Stat
        do {
            fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
        } catch {
            throw CaptureError.cannotOpen(path: path, reason: "\(error)")
        }
        do {
            st = try fd.stat()
        } catch {
            try? fd.close()
            throw CaptureError.cannotOpen(path: path, reason: "\(error)")
        }
        if st.type == .directory {
            try? fd.close()
            throw CaptureError.cannotOpen(path: path, reason: "it is a directory")
        }
        self.fd = fd
        self.size = Int(st.size)
        self.chunk = chunk
        self.bytes = []
        bytes.reserveCapacity(chunk)
        fd.adviseSequentialRead()
    }

    deinit { try? fd?.close() }

    /// Takes in what was appended to the file since it was opened (a capture being written).
    func refresh() {
        guard let fd, let st = try? fd.stat(), Int(st.size) > size else { return }
        size = Int(st.size)
    }

    /// Makes `count` bytes at `offset` available; false when they are not all in the capture
    /// (or the file shrank, or a read failed: the reader then reports the capture as cut there).
    func ensure(_ offset: Int, _ count: Int) -> Bool {
        guard offset >= base, count >= 0, offset <= size, count <= size - offset else { return false }
        if offset + count <= base + bytes.count { return true }
        guard let fd else { return false }
        // A new window: what is left from `offset` on, then the file read on into it, up to
        // `max(count, chunk)` bytes (no zero-filling first: the reads initialise it).
        let want = min(max(count, chunk), size - offset)
        let left = max(0, bytes.count - (offset - base))
        bytes = bytes.withUnsafeBytes { old in
            [UInt8](unsafeUninitializedCapacity: max(want, left)) { buf, initialized in
                let raw = UnsafeMutableRawBufferPointer(buf)
                if left > 0 { raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: old[(offset - base)...])) }
                var have = left
                while have < want {
                    let n = (try? fd.read(fromAbsoluteOffset: Int64(offset + have),
                                          into: UnsafeMutableRawBufferPointer(rebasing: raw[have ..< want]))) ?? -1
                    if n <= 0 { break }
                    have += n
                }
                initialized = have
            }
        }
        base = offset
        return offset + count <= base + bytes.count
    }

    /// Calls `body` with `count` bytes at `offset`, which `ensure` made available.
    func withBytes<R>(_ offset: Int, _ count: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[(offset - base) ..< (offset - base + count)])) }
    }

    func u32(_ offset: Int) -> UInt32 {
        withBytes(offset, 4) { $0.loadUnaligned(as: UInt32.self) }.littleEndian
    }

    func u64(_ offset: Int) -> UInt64 {
        withBytes(offset, 8) { $0.loadUnaligned(as: UInt64.self) }.littleEndian
    }

    func data(_ offset: Int, _ count: Int) -> Data {
        withBytes(offset, count) { Data($0) }
    }
}
