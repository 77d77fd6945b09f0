import Foundation
import SyncampAnalysis
import SyncampCapture

/// syncamp-fuzz: feeds mutated captures through the capture reader and the whole analyzer pipeline.
///
/// Each input is derived deterministically from (seed, iteration), so a crash
/// at iteration I is reproduced with `--only I --dump FILE`. Mutations aim at
/// what a reader must survive: record lengths and types, truncation, bit
/// flips, inserted and deleted bytes, records spliced from elsewhere.
///
///   syncamp-fuzz [--iterations N] [--seconds S] [--seed X] [--only I --dump FILE] SEED.syncamp...
struct Options {
    var iterations = 100_000
    var seconds = 600.0
    var seed: UInt64 = 0x5eed
    var only: Int?
    var dump: String?
    var seeds: [String] = []

    init(_ args: [String]) {
        var i = 0
        while i < args.count {
            let a = args[i]
            let next = i + 1 < args.count ? args[i + 1] : ""
            switch a {
            case "--iterations": iterations = Int(next) ?? iterations; i += 1
            case "--seconds": seconds = Double(next) ?? seconds; i += 1
            case "--seed": seed = UInt64(next) ?? seed; i += 1
            case "--only": only = Int(next); i += 1
            case "--dump": dump = next; i += 1
            default: seeds.append(a)
            }
            i += 1
        }
    }
}

/// xorshift64*: small, fast, deterministic.
struct Rng {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}

/// Offsets of record headers in a well-formed capture (for aimed mutations).
func recordOffsets(_ d: [UInt8]) -> [Int] {
    var out: [Int] = []
    var at = CaptureFormat.fileHeaderSize
    while at + 8 <= d.count {
        out.append(at)
        let len = Int(UInt32(d[at + 4]) | UInt32(d[at + 5]) << 8 | UInt32(d[at + 6]) << 16 | UInt32(d[at + 7]) << 24)
        at += 8 + len
    }
    return out
}

func mutate(_ base: [UInt8], _ other: [UInt8], _ rng: inout Rng) -> [UInt8] {
    var d = base
    let headers = recordOffsets(base)
    for _ in 0...rng.below(4) {
        guard !d.isEmpty else { break }
        switch rng.below(8) {
        case 0:  // flip bits
            let i = rng.below(d.count)
            d[i] ^= UInt8(truncatingIfNeeded: 1 << rng.below(8))
        case 1:  // a record length: 0, tiny, huge, off by one
            if let h = headers.randomElement(using: &rng), h + 8 <= d.count {
                let choices: [UInt32] = [0, 1, 7, 0xffff_ffff, 0x7fff_ffff, UInt32(rng.below(1 << 20))]
                let v = choices[rng.below(choices.count)]
                for k in 0..<4 { d[h + 4 + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
            }
        case 2:  // a record type
            if let h = headers.randomElement(using: &rng), h + 4 <= d.count { d[h] = UInt8(rng.below(10)) }
        case 3:  // truncate
            d = Array(d.prefix(rng.below(d.count + 1)))
        case 4:  // insert bytes
            let at = rng.below(d.count + 1)
            d.insert(contentsOf: (0..<rng.below(32)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        case 5:  // delete bytes
            let at = rng.below(d.count)
            d.removeSubrange(at..<min(d.count, at + 1 + rng.below(64)))
        case 6:  // splice a slice of another seed
            if !other.isEmpty {
                let from = rng.below(other.count), len = rng.below(min(4096, other.count - from) + 1)
                let at = rng.below(d.count + 1)
                d.insert(contentsOf: other[from..<from + len], at: at)
            }
        default:  // an event's kind, probe id or pointer fields
            let field = [20, 21, 22, 23, 24, 32, 104, 112][rng.below(8)]
            if let h = headers.randomElement(using: &rng), h + 8 + field < d.count {
                d[h + 8 + field] = UInt8(truncatingIfNeeded: rng.next())
            }
        }
    }
    return d
}

extension Array {
    func randomElement(using rng: inout Rng) -> Element? { isEmpty ? nil : self[rng.below(count)] }
}

/// The pipeline under test: read, analyse (with the model), render both reports.
func run(_ input: [UInt8]) -> Bool {
    guard var reader = try? CaptureReader(data: Data(input), path: "<fuzz>") else { return false }
    let analysis = Analysis.run(&reader, reorderWindow: 64)
    _ = TextReport.render(analysis)
    _ = try? JSONReport.render(analysis)
    return true
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let seeds = options.seeds.compactMap { try? [UInt8](Data(contentsOf: URL(fileURLWithPath: $0))) }
guard !seeds.isEmpty else {
    FileHandle.standardError.write(Data("syncamp-fuzz: give at least one seed capture (Tests/Fixtures/*.syncamp)\n".utf8))
    exit(2)
}
func input(_ i: Int) -> [UInt8] {
    var rng = Rng(state: options.seed &+ UInt64(i) &* 0x9e37_79b9_7f4a_7c15 | 1)
    let base = seeds[rng.below(seeds.count)]
    return mutate(base, seeds[rng.below(seeds.count)], &rng)
}
if let only = options.only {
    let data = input(only)
    if let dump = options.dump { try? Data(data).write(to: URL(fileURLWithPath: dump)) }
    print("input \(only): \(data.count) bytes, \(run(data) ? "read" : "refused")")
    exit(0)
}
let start = Date()
var read = 0, refused = 0, i = 0
for s in seeds { precondition(run(s), "a seed capture does not read") }
while i < options.iterations && Date().timeIntervalSince(start) < options.seconds {
    if run(input(i)) { read += 1 } else { refused += 1 }
    i += 1
}
let elapsed = Date().timeIntervalSince(start)
print("syncamp-fuzz: \(i) inputs in \(String(format: "%.1f", elapsed)) s (\(Int(Double(i) / max(elapsed, 0.001))) per second): \(read) read (whole or in part), \(refused) refused with an error, 0 crashes")
