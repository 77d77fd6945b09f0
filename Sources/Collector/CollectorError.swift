/// Why the collector cannot run, in one sentence naming what is wrong and what to do.
enum CollectorError: Error, CustomStringConvertible {
    case notRoot
    case noBTF
    case noTracefs(String)
    case noSuchProcess(Int32)
    case cannotReadBinary(String)
    case missingSymbols(binary: String, buildID: String?, version: String?, symbols: [String], looked: [String])
    case symbolsMismatch(symbols: String, symbolsID: String, binary: String, binaryID: String)
    case spawnFailed(String)
    case bpf(String)
    case bpfLoad(String)
    case attach(String)
    case usage(String)
    case kernelTooOld(release: String, feature: String, since: String)

    var description: String {
        switch self {
        case .notRoot:
            return "the collector needs root (CAP_BPF and CAP_PERFMON) to load BPF programs; run it with sudo"
        case .noBTF:
            return "this kernel has no BTF at /sys/kernel/btf/vmlinux, which the BPF programs need (CO-RE); use a kernel built with CONFIG_DEBUG_INFO_BTF=y"
        case let .noTracefs(why):
            return "tracefs is not mounted and could not be mounted (\(why)); run `mount -t tracefs nodev /sys/kernel/tracing`"
        case let .noSuchProcess(pid):
            return "there is no process \(pid); pass the pid of a running QEMU (pidof qemu-system-x86_64)"
        case let .cannotReadBinary(why):
            return why
        case let .missingSymbols(binary, buildID, version, symbols, looked):
            return "\(binary) (QEMU \(version ?? "of unknown version"), build-id \(buildID ?? "none")) lacks the symbols \(symbols.joined(separator: ", ")); is it QEMU's qemu-io, qemu-img or qemu-system? "
                + (looked.isEmpty ? "" : "No debug file was found (looked for \(looked.joined(separator: ", "))). ")
                + "Pass --symbols PATH with its debug file or an unstripped build of the same QEMU (scripts/testbed.sh builds one), --offset NAME=0xOFFSET for each, or --allow-missing to trace without them"
        case let .symbolsMismatch(symbols, symbolsID, binary, binaryID):
            return "\(symbols) has build-id \(symbolsID) but \(binary) has \(binaryID): its symbols would put the probes at wrong offsets (and could crash QEMU); pass the debug file or unstripped copy of this very build"
        case let .spawnFailed(why):
            return "cannot start the command: \(why)"
        case let .bpf(why):
            return why
        case let .bpfLoad(why):
            return "the kernel refused the BPF programs (\(why)); the lines above name the program libbpf could not load; run with -v to see the verifier log"
        case let .attach(why):
            return why
        case let .usage(why):
            return why
        case let .kernelTooOld(release, feature, since):
            return "this kernel (\(release)) lacks \(feature); that came in Linux \(since): run syncamp on Linux \(since) or later"
        }
    }
}
