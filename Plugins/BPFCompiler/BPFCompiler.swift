import Foundation
import PackagePlugin

/// Compiles the BPF programs in `bpf/` with `clang -target bpf` and hands the
/// object to the target as a resource (read at run time through `Bundle.module`).
@main
struct BPFCompiler: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let bpfDir = context.package.directoryURL.appending(path: "bpf")
        let source = bpfDir.appending(path: "syncamp.bpf.c")
        let header = bpfDir.appending(path: "syncamp.h")
        let output = context.pluginWorkDirectoryURL.appending(path: "syncamp.bpf.o")
        let clang = try context.tool(named: "clang").url
        return [
            .buildCommand(
                displayName: "Compiling BPF program syncamp.bpf.c",
                executable: clang,
                arguments: [
                    "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
                    // asm/types.h lives in the multiarch folder on Debian.
                    "-I/usr/include/x86_64-linux-gnu", "-I", bpfDir.path(),
                    "-c", source.path(), "-o", output.path(),
                ],
                inputFiles: [source, header],
                outputFiles: [output]
            )
        ]
    }
}
