import Foundation
import SyncampELF
import XCTest

/// `.note.stapsdt` read as readelf reads it, from a program compiled with sys/sdt.h and then stripped.
final class USDTProbeTests: XCTestCase {
    /// Two files: sys/sdt.h gives every probe of a file a semaphore or none.
    static let gatedSource = """
        #define _SDT_HAS_SEMAPHORES 1
        #include <sys/sdt.h>
        unsigned short syncamp_gated_semaphore __attribute__((section(".probes"))) = 0;
        int value;
        __attribute__((noinline)) void gated(int b) { if (syncamp_gated_semaphore) STAP_PROBE1(syncamp, gated, b); value += b; }
        """
    static let source = """
        #include <sys/sdt.h>
        extern int value;
        void gated(int b);
        __attribute__((noinline)) void work(long a, int b) { STAP_PROBE2(syncamp, plain, a, b); gated(b); }
        int main(int argc, char **argv) { (void)argv; work(argc, argc * 2); return value; }
        """

    func testProbesMatchReadelfAndSurviveStrip() throws {
        guard FileManager.default.fileExists(atPath: "/usr/include/x86_64-linux-gnu/sys/sdt.h")
                || FileManager.default.fileExists(atPath: "/usr/include/sys/sdt.h") else {
            throw Prerequisite.unavailable("sys/sdt.h is missing (apt-get install systemtap-sdt-dev; scripts/testbed.sh does)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("syncamp-usdt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = dir.appendingPathComponent("p.c").path, prog = dir.appendingPathComponent("p").path
        let stripped = dir.appendingPathComponent("p-stripped").path
        let g = dir.appendingPathComponent("g.c").path
        try Self.source.write(toFile: c, atomically: true, encoding: .utf8)
        try Self.gatedSource.write(toFile: g, atomically: true, encoding: .utf8)
        try ToolRunner.run("cc", ["-O1", "-o", prog, c, g])
        try ToolRunner.run("strip", ["-o", stripped, prog])

        let probes = try ELFFile(path: stripped).usdtProbes
        XCTAssertEqual(probes.map(\.name).sorted(), ["gated", "plain"])
        // readelf -n prints each note: Provider, Name, Location, Base, Semaphore, Arguments.
        let text = try ToolRunner.run("readelf", ["-n", stripped])
        var expected: [USDTProbe] = []
        var provider = "", name = "", location: UInt64 = 0, semaphore: UInt64 = 0
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("Provider: ") { provider = String(line.dropFirst(10)) }
            if line.hasPrefix("Name: ") { name = String(line.dropFirst(6)) }
            if line.hasPrefix("Location: ") {
                let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                location = UInt64(fields[0].dropFirst("Location: 0x".count), radix: 16) ?? 0
                semaphore = UInt64(fields[2].dropFirst("Semaphore: 0x".count), radix: 16) ?? 0
            }
            if line.hasPrefix("Arguments: ") {
                expected.append(USDTProbe(provider: provider, name: name, address: location, semaphore: semaphore,
                                          arguments: String(line.dropFirst(11))))
            }
        }
        XCTAssertEqual(expected.count, 2)
        XCTAssertEqual(probes, expected)
        let gated = try XCTUnwrap(probes.first { $0.name == "gated" })
        XCTAssertNotEqual(gated.semaphore, 0)
        XCTAssertEqual(probes.first { $0.name == "plain" }?.semaphore, 0)
        XCTAssertEqual(probes.first { $0.name == "plain" }?.argumentCount, 2)
        XCTAssertEqual(probes.first { $0.name == "plain" }?.provider, "syncamp")
        XCTAssertEqual(try ELFFile(path: prog).usdtProbes, probes)
    }
}
