// swift-tools-version: 6.0
// syncamp: shows where the disk syncs of a virtual machine come from.
import PackageDescription

let package = Package(
    name: "syncamp",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "collector", targets: ["Collector"]),
        .executable(name: "analyzer", targets: ["Analyzer"]),
        .executable(name: "syncamp-bench", targets: ["SyncampBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Kept libraries where the project is not the point: system calls with typed errors,
        // the Prometheus exposition format, a small HTTP server (no SwiftNIO), child processes.
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
        // Latency percentiles in bounded memory for long captures.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    ],
    targets: [
        // The event records shared with the BPF programs (bpf/syncamp.h), header only: what
        // everything that reads captures needs, without libbpf or its headers.
        .target(name: "CSyncampEvent", path: "Sources/CSyncampEvent"),
        // The collector's libbpf boundary: libbpf's headers and a few header-only shims.
        .target(name: "CBPF", dependencies: ["CSyncampEvent"], path: "Sources/CBPF"),

        // What the probes need to know of QEMU: probe roles, their canonical argument order,
        // QEMU versions and each version's ABI (parameters, struct offsets). Pure Swift,
        // shared by the collector and the analysis.
        .target(name: "SyncampProbes"),

        // elfutils: libdw (DWARF: a QEMU build's parameter lists and struct offsets) and
        // libdebuginfod (debug files by build-id, loaded with dlopen).
        .systemLibrary(name: "CElfutils", path: "Sources/CElfutils"),
        .target(name: "SyncampElfutils", dependencies: ["CElfutils", "SyncampProbes"]),

        // capstone: decodes the instructions at probe sites (which the kernel emulates and
        // which it single-steps) and finds co_tls_current's offset in QEMU's machine code.
        .systemLibrary(name: "CCapstone", path: "Sources/CCapstone"),
        .target(name: "SyncampMachineCode", dependencies: ["CCapstone"]),

        // qcow2 image metadata, read-only: the reference model's starting state.
        .target(name: "SyncampQcow2"),

        // The system calls swift-system does not wrap (fsync, fchmod, posix_fadvise, kill, waitpid),
        // wrapped once with typed errors and EINTR handled in one place.
        .target(name: "SyncampSystem", dependencies: [.product(name: "SystemPackage", package: "swift-system")]),

        // Capture file format and event model: pure Swift, no privileges.
        .target(name: "SyncampCapture", dependencies: [
            "CSyncampEvent", "SyncampQcow2", "SyncampProbes", "SyncampSystem",
            .product(name: "SystemPackage", package: "swift-system"),
        ], swiftSettings: [
            // The reader's window is a class read once or twice per event: its dynamic
            // exclusivity checks were 2% of the analyzer's instructions (callgrind, 1M events).
            .unsafeFlags(["-enforce-exclusivity=unchecked"]),
        ]),

        // ELF symbol tables, build-ids and file offsets for uprobes.
        .target(name: "SyncampELF"),

        // Causal trees, totals and report rendering over a capture (the Prometheus exposition
        // is written with swift-prometheus's registry).
        .target(name: "SyncampAnalysis", dependencies: [
            "SyncampCapture", "SyncampQcow2", "SyncampProbes", .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ], swiftSettings: [
            // The trees are class graphs touched once or twice per event: the dynamic exclusivity
            // checks on their properties were 3% of the analyzer's time (perf, 1M events).
            // Static checks stay.
            .unsafeFlags(["-enforce-exclusivity=unchecked"]),
        ]),

        // The collector's policy: which probes to attach to one binary (the catalog's preferred
        // symbols or exported fallbacks, the minimal set or --detail, USDT probes when symbols
        // are missing), and what to do about missing ones. No libbpf, no privileges.
        .target(name: "SyncampProbePlan", dependencies: ["SyncampProbes", "SyncampCapture", "SyncampELF"]),

        .plugin(name: "BPFCompiler", capability: .buildTool()),

        .executableTarget(
            name: "Collector",
            dependencies: [
                "CBPF", "SyncampCapture", "SyncampELF", "SyncampQcow2", "SyncampProbes", "SyncampProbePlan", "SyncampElfutils", "SyncampMachineCode",
                "SyncampSystem", .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            linkerSettings: [.linkedLibrary("bpf"), .linkedLibrary("elf"), .linkedLibrary("z")],
            plugins: ["BPFCompiler"]
        ),
        .executableTarget(
            name: "Analyzer",
            dependencies: [
                "SyncampCapture", "SyncampAnalysis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // /metrics is served by FlyingFox and the collector run with swift-subprocess:
                // only the analyzer links them, so the collector stays small and static-linkable.
                .product(name: "FlyingFox", package: "FlyingFox"), .product(name: "FlyingSocks", package: "FlyingFox"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),

        // Benchmark tools (bench/): a generator of large captures from recorded ones.
        .executableTarget(
            name: "SyncampBench",
            dependencies: ["SyncampCapture", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // Mutation fuzzer for the capture reader and the analyzer pipeline (scripts/fuzz.sh).
        .executableTarget(name: "SyncampFuzz", dependencies: ["SyncampCapture", "SyncampAnalysis"]),

        // Synthetic QEMU builds (which catalog functions and USDT notes a build has), shared by the
        // probe-plan tests and the analysis tests' manifests.
        .target(name: "QemuBuildFixtures", dependencies: ["SyncampProbePlan", "SyncampProbes", "SyncampELF"],
                path: "Tests/QemuBuildFixtures"),

        .testTarget(name: "SyncampCaptureTests", dependencies: ["SyncampCapture", "SyncampSystem", .product(name: "SystemPackage", package: "swift-system")]),
        .testTarget(name: "SyncampELFTests", dependencies: ["SyncampELF"]),
        .testTarget(name: "SyncampProbesTests", dependencies: ["SyncampProbes", "SyncampELF", "SyncampElfutils"]),
        .testTarget(name: "SyncampMachineCodeTests", dependencies: ["SyncampMachineCode", "SyncampELF"]),
        .testTarget(name: "SyncampQcow2Tests", dependencies: ["SyncampQcow2"]),
        .testTarget(name: "SyncampProbePlanTests", dependencies: ["SyncampProbePlan", "QemuBuildFixtures", "SyncampProbes", "SyncampCapture", "SyncampELF"]),
        .testTarget(name: "SyncampAnalysisTests", dependencies: ["SyncampAnalysis", "SyncampCapture", "SyncampQcow2", "SyncampProbePlan", "QemuBuildFixtures", "SyncampELF", "SyncampProbes"]),
        .testTarget(name: "EndToEndTests", dependencies: ["SyncampCapture", "SyncampELF", "SyncampQcow2"]),
    ]
)
