/// Up to six 64-bit values stored inline, so that an event needs no heap allocation.
///
/// An event's argument registers and pointer-path values are read millions of
/// times per second by the analyzer; arrays would allocate twice per event.
public struct InlineWords: RandomAccessCollection, MutableCollection, Equatable, Hashable, Sendable,
                           ExpressibleByArrayLiteral, CustomStringConvertible {
    public static let capacity = 6
    @usableFromInline var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    @usableFromInline let length: UInt8

    /// `values` padded with zeros (or cut) to `count` values.
    public init<S: Sequence>(_ values: S, count: Int) where S.Element == UInt64 {
        precondition(count >= 0 && count <= Self.capacity, "InlineWords holds at most \(Self.capacity) values")
        length = UInt8(count)
        var i = 0
        for v in values where i < count {
            self[i] = v
            i += 1
        }
    }

    /// Six values as the event record holds them (`args`), with no array in between.
    public init(_ six: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)) {
        storage = six
        length = 6
    }

    /// The first four of `four` followed by zeros, `count` 4 (`derefs`).
    public init(_ four: (UInt64, UInt64, UInt64, UInt64)) {
        storage = (four.0, four.1, four.2, four.3, 0, 0)
        length = 4
    }

    public init(arrayLiteral elements: UInt64...) {
        self.init(elements, count: elements.count)
    }

    // Inlinable: the analyzer reads an event's words once or more per event, from another module.
    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { Int(length) }

    @inlinable
    public subscript(i: Int) -> UInt64 {
        get {
            precondition(i >= 0 && i < Int(length), "index \(i) out of range 0..<\(length)")
            return withUnsafeBytes(of: storage) { $0.load(fromByteOffset: i &* 8, as: UInt64.self) }
        }
        set {
            precondition(i >= 0 && i < Int(length), "index \(i) out of range 0..<\(length)")
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: newValue, toByteOffset: i &* 8, as: UInt64.self) }
        }
    }

    public static func == (a: InlineWords, b: InlineWords) -> Bool { a.elementsEqual(b) }
    public func hash(into h: inout Hasher) { for v in self { h.combine(v) } }
    public var description: String { "[" + map(String.init).joined(separator: ", ") + "]" }
}
