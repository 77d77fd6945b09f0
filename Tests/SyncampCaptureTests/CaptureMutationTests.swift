import Foundation
import SyncampCapture
import XCTest

/// Seeded random damage to a valid capture: the reader throws a `CaptureError` or reads to a clean stop, never crashes.
final class CaptureMutationTests: CaptureTestCase {
    private enum Mutation {
        case flip(at: Int, mask: UInt8)
        case truncate(at: Int)
        case insertBytes(at: Int, count: Int)
        case insertRecord(at: Int)
        case deleteBytes(at: Int, count: Int)
    }

    func testTwoThousandMutantsNeverCrashTheReader() throws {
        let original = try standardCaptureBytes()
        let ends = CaptureFixtures.recordEnds(original)
        let manifestEnd = ends[0]
        let originalRecords = CaptureFixtures.standardRecords
        var rng = XorShift64(seed: 0x5359_4E43_414D_5001)
        var opened = 0, threw = 0, cleanEnds = 0

        for mutant in 0 ..< 2000 {
            var bytes = original
            var firstChanged = Int.max
            var insertedRecords = 0
            let operations = Int.random(in: 1...4, using: &rng)
            for _ in 0 ..< operations {
                // Three quarters of the damage lands after the manifest, where the reader must recover.
                let lower = Bool.random(using: &rng) || Bool.random(using: &rng) ? min(manifestEnd, bytes.count) : 0
                let at = Int.random(in: lower ... bytes.count, using: &rng)
                let mutation: Mutation
                switch Int.random(in: 0 ..< 10, using: &rng) {
                case 0 ..< 5 where at < bytes.count:
                    mutation = .flip(at: at, mask: UInt8.random(in: 1 ... 255, using: &rng))
                case 5: mutation = .truncate(at: at)
                case 6, 7: mutation = .insertBytes(at: at, count: Int.random(in: 1 ... 16, using: &rng))
                case 8: mutation = .insertRecord(at: at)
                default: mutation = .deleteBytes(at: at, count: Int.random(in: 1 ... 16, using: &rng))
                }
                switch mutation {
                case let .flip(at, mask):
                    bytes[at] ^= mask
                    firstChanged = min(firstChanged, at)
                case let .truncate(at):
                    bytes.removeSubrange(at...)
                    firstChanged = min(firstChanged, at)
                case let .insertBytes(at, count):
                    bytes.insert(contentsOf: (0 ..< count).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }, at: at)
                    firstChanged = min(firstChanged, at)
                case let .insertRecord(at):
                    // A whole valid record (an event, a lost count) spliced in anywhere.
                    let k = Int.random(in: 1 ..< ends.count - 1, using: &rng)
                    bytes.insert(contentsOf: original[ends[k - 1] ..< ends[k]], at: at)
                    insertedRecords += 1
                    firstChanged = min(firstChanged, at)
                case let .deleteBytes(at, count):
                    bytes.removeSubrange(at ..< min(bytes.count, at + count))
                    firstChanged = min(firstChanged, at)
                }
            }

            var reader: CaptureReader
            do {
                reader = try CaptureReader(data: Data(bytes), path: "mutant-\(mutant)")
            } catch {
                threw += 1
                XCTAssertTrue(error is CaptureError, "mutant \(mutant): \(type(of: error))")
                XCTAssertLessThan(firstChanged, manifestEnd, "mutant \(mutant): an intact header and manifest must open")
                continue
            }
            opened += 1

            // Every record uses at least a record header, so this many calls must end the loop.
            let maxRecords = (bytes.count - CaptureFormat.fileHeaderSize) / CaptureFormat.recordHeaderSize
            var records: [CaptureRecord] = []
            while let r = reader.next() {
                records.append(r)
                if records.count > maxRecords { break }
            }
            XCTAssertLessThanOrEqual(records.count, maxRecords, "mutant \(mutant): the reader does not stop")
            XCTAssertLessThanOrEqual(reader.offset, reader.fileSize, "mutant \(mutant)")
            XCTAssertTrue(reader.damage != nil || (reader.trailer != nil && reader.offset == reader.fileSize),
                          "mutant \(mutant): stopped without damage or trailer")
            if reader.damage == nil { cleanEnds += 1 }

            // Records wholly before the first changed byte read exactly as in the original.
            let intact = ends.dropFirst().filter { $0 <= firstChanged }.count
            if firstChanged >= manifestEnd {
                XCTAssertEqual(reader.manifest, CaptureFixtures.manifest(), "mutant \(mutant)")
                XCTAssertGreaterThanOrEqual(records.count, intact, "mutant \(mutant)")
                XCTAssertEqual(Array(records.prefix(intact)), Array(originalRecords.prefix(intact)), "mutant \(mutant)")
            }

            // Known records cannot multiply: at most the original ones, the spliced-in ones, and one per mutation.
            let known = records.filter { if case .unknown = $0 { return false }; return true }.count
            XCTAssertLessThanOrEqual(known, originalRecords.count + insertedRecords + operations, "mutant \(mutant)")
        }

        // The loop exercised both outcomes.
        XCTAssertGreaterThan(opened, 1000)
        XCTAssertGreaterThan(threw, 50)
        XCTAssertGreaterThan(cleanEnds, 0)
    }
}
