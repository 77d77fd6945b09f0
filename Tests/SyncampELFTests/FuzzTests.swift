import Foundation
import SyncampELF
import XCTest

/// Truncated and bit-flipped copies of a real binary either throw or parse; they never crash.
final class FuzzTests: XCTestCase {
    private var original: [UInt8] = []

    override func setUpWithError() throws {
        let path = try compiledFixture.get().program
        original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Parses `bytes` and, if that works, exercises every query.
    private func exercise(_ bytes: [UInt8]) -> Bool {
        guard let elf = try? ELFFile(bytes: bytes, path: "fuzz") else { return false }
        for symbol in elf.functions().prefix(50) {
            _ = elf.function(named: symbol.name)
            _ = elf.fileOffset(forAddress: symbol.address)
        }
        _ = elf.fileOffset(forAddress: .max)
        return true
    }

    func testTruncatedCopies() {
        var rng = XorShift(state: 0x5eed_cafe_f00d_0001)
        var lengths = (0..<100).map { $0 * original.count / 100 }
        lengths += (0..<100).map { _ in Int.random(in: 0..<original.count, using: &rng) }
        var parsed = 0
        for length in lengths where exercise(Array(original.prefix(length))) {
            parsed += 1
        }
        // Section headers sit at the end, so every proper prefix loses them.
        XCTAssertEqual(parsed, lengths.filter { $0 >= original.count }.count)
        XCTAssertTrue(exercise(original))
    }

    func testBitFlippedCopies() {
        var rng = XorShift(state: 0x0dd_ba11_5eed_0002)
        let sectionHeaders = Int(ELFPatch(bytes: original).sectionHeaderOffset)
        // Aim most flips at the structures the reader trusts: headers, tables, and the section headers.
        let regions = [0..<min(1024, original.count), sectionHeaders..<original.count, 0..<original.count]
        var outcomes = [false: 0, true: 0]
        for _ in 0..<200 {
            var copy = original
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let region = regions.randomElement(using: &rng)!
                copy[Int.random(in: region, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            }
            outcomes[exercise(copy), default: 0] += 1
        }
        // The flips reach both ways out: some copies still parse (every query then ran on them),
        // some throw. A reader that rejects everything, or trusts everything, fails here.
        XCTAssertGreaterThan(outcomes[true]!, 0, "no flipped copy parsed: the queries were never exercised")
        XCTAssertGreaterThan(outcomes[false]!, 0, "no flipped copy was rejected")
        print("bit flips: \(outcomes[true]!) parsed, \(outcomes[false]!) threw")
    }
}
