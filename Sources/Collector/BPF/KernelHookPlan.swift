import SyncampCapture

/// Which kernel hooks a capture loads, decided before load from what the kernel has,
/// and the levels (KernelLevel) they give once attached.
struct KernelHookPlan {
    /// Every hook of the table with nil (load it) or why it is switched off.
    private(set) var decisions: [(hook: KernelHook, off: String?)] = []
    let mode: BPFSession.KernelProbeMode

    /// - Throws: `CollectorError.attach` for `--kernel-probe kprobe` on a kernel without kprobes.
    init(support: KernelSupport, mode: BPFSession.KernelProbeMode) throws {
        self.mode = mode
        for hook in KernelHooks.syscallKprobes {
            let off = mode == .tracepoint ? "--kernel-probe tracepoint" : support.missing(hook)
            if mode == .kprobe, let off {
                throw CollectorError.attach("kprobes on fdatasync/fsync cannot be used: \(off); use --kernel-probe tracepoint or auto")
            }
            decisions.append((hook, off))
        }
        for hook in KernelHooks.syscallTracepoints {
            decisions.append((hook, mode == .kprobe ? "--kernel-probe kprobe" : support.missing(hook)))
        }
        var served: [String: String] = [:]  // variant -> the program that serves it
        for hook in KernelHooks.storage {
            var off = support.missing(hook)
            if off == nil, let v = hook.variant {
                if let other = served[v] { off = "\(other) serves \(v) on this kernel" } else { served[v] = hook.program }
            }
            decisions.append((hook, off))
        }
    }

    /// Programs whose autoload is switched off before load.
    var disabledPrograms: [String] { decisions.filter { $0.off != nil }.map(\.hook.program) }

    /// The loaded hooks of `level`.
    func loaded(_ level: KernelLevel.Name) -> [KernelHook] {
        decisions.filter { $0.hook.level == level && $0.off == nil }.map(\.hook)
    }

    /// Every storage hook's level after attaching: traced when each of its needs (an event,
    /// whichever variant serves it) has an attached program; else the reasons of what is missing.
    ///
    /// The file-system and journal levels have hooks per file system (ext4 and jbd2, XFS, btrfs):
    /// a level is traced when the hooks of every file system in `inUse` (the images' devices)
    /// are attached and those of at least one file system are; a file system no image is on
    /// needs nothing (an XFS host without ext4 loaded traces its levels in full).
    func storageLevels(attached: Set<String>, failed: [String: String], inUse: Set<FileSystemKind> = []) -> [KernelLevel] {
        [KernelLevel.Name.fsSync, .journal, .device, .ioUring].map { level in
            let hooks = decisions.filter { $0.hook.level == level }
            let reasons = { (group: [(hook: KernelHook, off: String?)]) -> [String] in
                var needs: [String] = []
                for h in group where !needs.contains(h.hook.need) { needs.append(h.hook.need) }
                var out: [String] = []
                for need in needs where !group.contains(where: { $0.hook.need == need && attached.contains($0.hook.program) }) {
                    let why = group.filter { $0.hook.need == need }.compactMap { failed[$0.hook.program] ?? $0.off }
                        .filter { !$0.contains(" serves ") }
                    out.append(why.first ?? "\(need) could not be attached")
                }
                return out
            }
            var systems: [FileSystemKind?] = []
            for h in hooks where !systems.contains(h.hook.fileSystem) { systems.append(h.hook.fileSystem) }
            let missing = Dictionary(uniqueKeysWithValues: systems.map { fs in
                (fs ?? FileSystemKind(rawValue: ""), reasons(hooks.filter { $0.hook.fileSystem == fs }))
            })
            let perFS = systems.compactMap { $0 }
            var wanted: [String] = missing[FileSystemKind(rawValue: "")] ?? []
            if !perFS.isEmpty {
                if perFS.allSatisfy({ !(missing[$0] ?? []).isEmpty }) {
                    wanted += perFS.flatMap { missing[$0] ?? [] }  // no file system of this level is traced
                } else {
                    wanted += perFS.filter(inUse.contains).flatMap { missing[$0] ?? [] }
                }
            }
            var unique: [String] = []
            for r in wanted where !unique.contains(r) { unique.append(r) }
            return KernelLevel(name: level, traced: unique.isEmpty,
                               hooks: hooks.filter { attached.contains($0.hook.program) }.map(\.hook.label),
                               reason: unique.isEmpty ? nil : unique.joined(separator: "; "))
        }
    }
}
