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
    /// The window: `filled` bytes of the capture from offset `base` on, in a buffer of `capacity`.
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    private var filled = 0
    private var base = 0
    /// The capture file; nil for a capture held in memory.
    private let fd: FileDescriptor?
    private let chunk: Int

    init(data: Data) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(1, data.count), alignment: 16)
        data.withUnsafeBytes { if let p = $0.baseAddress { buffer.copyMemory(from: p, byteCount: data.count) } }
        self.buffer = buffer
        capacity = max(1, data.count)
        filled = data.count
        size = data.count
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
        capacity = chunk
        buffer = .allocate(byteCount: chunk, alignment: 16)
        fd.adviseSequentialRead()
    }

    deinit {
        buffer.deallocate()
        try? fd?.close()
    }

    /// Takes in what was appended to the file since it was opened (a capture being written).
    func refresh() {
        guard let fd, let st = try? fd.stat(), Int(st.size) > size else { return }
        size = Int(st.size)
    }

    /// Makes `count` bytes at `offset` available; false when they are not all in the capture
    /// (or the file shrank, or a read failed: the reader then reports the capture as cut there).
    @inline(__always)
    func ensure(_ offset: Int, _ count: Int) -> Bool {
        if offset >= base, count >= 0, count <= filled - (offset - base) { return true }
        return slide(offset, count)
    }

    /// A new window: what is left from `offset` on, moved to the front, and the file read on
    /// after it, up to `max(count, chunk)` bytes.
    private func slide(_ offset: Int, _ count: Int) -> Bool {
        guard offset >= base, count >= 0, offset <= size, count <= size - offset else { return false }
        guard let fd else { return false }
        let want = min(max(count, chunk), size - offset)
        let left = max(0, filled - (offset - base))
        // A record larger than the chunk (an image record, up to 64 MiB) gets a buffer of its
        // size; the next window goes back to the chunk's, so that memory does not stay that high.
        let room = max(want, chunk)
        if want > capacity || capacity > room {
            let fresh = UnsafeMutableRawPointer.allocate(byteCount: room, alignment: 16)
            if left > 0 { fresh.copyMemory(from: buffer + (offset - base), byteCount: left) }
            buffer.deallocate()
            buffer = fresh
            capacity = room
        } else if left > 0 {
            memmove(buffer, buffer + (offset - base), left)  // the areas may overlap
        }
        var have = left
        while have < want {
            let n = (try? fd.read(fromAbsoluteOffset: Int64(offset + have),
                                  into: UnsafeMutableRawBufferPointer(start: buffer + have, count: want - have))) ?? -1
            if n <= 0 { break }
            have += n
        }
        filled = have
        base = offset
        return count <= filled
    }

    /// Calls `body` with `count` bytes at `offset`, which `ensure` made available.
    @inline(__always)
    func withBytes<R>(_ offset: Int, _ count: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        body(UnsafeRawBufferPointer(start: buffer + (offset - base), count: count))
    }

    func u32(_ offset: Int) -> UInt32 {
        (buffer + (offset - base)).loadUnaligned(as: UInt32.self).littleEndian
    }

    func u64(_ offset: Int) -> UInt64 {
        (buffer + (offset - base)).loadUnaligned(as: UInt64.self).littleEndian
    }

    func data(_ offset: Int, _ count: Int) -> Data {
        withBytes(offset, count) { Data($0) }
    }
}
