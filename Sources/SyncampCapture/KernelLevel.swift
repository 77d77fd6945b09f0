/// A level of the host below QEMU that the collector traces through kernel hooks, and
/// whether this capture has it.
///
/// The collector checks each hook before loading (its tracepoint in tracefs, its record
/// type in the kernel's or a module's BTF, kprobe support) and switches off what the
/// kernel lacks, so one missing hook never stops the others. Reports list the levels
/// and say what the totals cannot count because of a missing one.
public struct KernelLevel: Codable, Sendable, Equatable {
    /// The levels, from the system call down.
    public enum Name: String, Codable, Sendable, CaseIterable {
        /// fdatasync/fsync entry and exit (kprobes on the syscall, or the `syscalls` tracepoints).
        case syncSyscalls = "sync_syscalls"
        /// The file system's sync of the image file (`ext4:ext4_sync_file_enter/exit`).
        case fsSync = "fs_sync"
        /// Journal commits on the image's device (`jbd2:jbd2_start_commit` ... `jbd2_run_stats`).
        case journal
        /// Flush and FUA requests on the image's device (`block:block_rq_issue/complete`).
        case device
        /// IORING_OP_FSYNC requests, QEMU's host syncs with aio=io_uring
        /// (`io_uring:io_uring_submit_req`, `io_uring_submit_sqe` before 6.4, `io_uring_complete`).
        case ioUring = "io_uring"
    }

    public var name: Name
    /// True when every hook the level needs is attached.
    public var traced: Bool
    /// The hooks attached, as "category:event" for tracepoints and "kprobe:function" for kprobes.
    public var hooks: [String]
    /// Why the level (or part of it) is not traced: one sentence naming what the kernel lacks.
    public var reason: String?

    public init(name: Name, traced: Bool, hooks: [String], reason: String? = nil) {
        self.name = name
        self.traced = traced
        self.hooks = hooks
        self.reason = reason
    }
}
