import Foundation

/// A tiny C program compiled with `cc` at test time, in several variants.
struct CompiledFixture: Sendable {
    /// `-no-pie -rdynamic`: unstripped, globals also exported in `.dynsym`,
    /// and addresses differ from file offsets (text is mapped at 0x400000+).
    let program: String
    /// `program` after `strip`.
    let stripped: String
    /// `stripped` with a `.gnu_debuglink` naming `program`.
    let debugLinked: String
    /// A PIE build without `-rdynamic`, after `strip`: its `.dynsym` has none of the program's functions.
    let strippedPlain: String

    static let mainSource = """
        int syncamp_counter;
        int syncamp_other(int x);
        __attribute__((noinline)) int syncamp_global(int x) { return x * 3 + syncamp_counter; }
        static __attribute__((noinline, used)) int syncamp_static(int x) { return x + 7 + syncamp_counter; }
        /* Same name as a global function in other.c: lookups must prefer the global one. */
        static __attribute__((noinline, used)) int syncamp_dup(int x) { return x - 1 + syncamp_counter; }
        int main(int argc, char **argv) {
            (void)argv;
            return syncamp_global(argc) + syncamp_static(argc) + syncamp_dup(argc) + syncamp_other(argc);
        }
        """
    static let otherSource = """
        extern int syncamp_counter;
        __attribute__((noinline)) int syncamp_dup(int x) { return x + 1 + syncamp_counter; }
        int syncamp_other(int x) { return syncamp_dup(x) * 2; }
        """

    /// Writes the sources and runs cc, strip and objcopy in `directory`.
    static func build(in directory: URL) throws -> CompiledFixture {
        let main = directory.appendingPathComponent("main.c").path
        let other = directory.appendingPathComponent("other.c").path
        try mainSource.write(toFile: main, atomically: true, encoding: .utf8)
        try otherSource.write(toFile: other, atomically: true, encoding: .utf8)
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        let fixture = CompiledFixture(program: path("prog"), stripped: path("prog-stripped"),
                                      debugLinked: path("prog-debuglink"), strippedPlain: path("plain-stripped"))
        try ToolRunner.run("cc", ["-O1", "-no-pie", "-rdynamic", "-Wl,--build-id",
                                  "-o", fixture.program, main, other])
        try ToolRunner.run("cc", ["-O1", "-Wl,--build-id", "-o", path("plain"), main, other])
        try ToolRunner.run("strip", ["-o", fixture.stripped, fixture.program])
        try ToolRunner.run("strip", ["-o", fixture.strippedPlain, path("plain")])
        try ToolRunner.run("objcopy", ["--add-gnu-debuglink=\(fixture.program)", fixture.stripped, fixture.debugLinked])
        return fixture
    }
}

private let fixtureDirectory = FileManager.default.temporaryDirectory
    .appendingPathComponent("syncamp-elf-fixture-\(getpid())")

/// The fixture, built once per test process and removed when it exits.
let compiledFixture: Result<CompiledFixture, any Error> = Result {
    try FileManager.default.createDirectory(at: fixtureDirectory, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(at: fixtureDirectory) }
    return try CompiledFixture.build(in: fixtureDirectory)
}
