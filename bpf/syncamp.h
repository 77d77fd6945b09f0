/* syncamp.h: the one definition of the events syncamp's BPF programs emit.
 *
 * Included by bpf/syncamp.bpf.c (kernel side) and, through the CBPF module,
 * by Swift (collector and capture reader). Every record is a fixed-size
 * little-endian struct; the capture file stores them as they come out of the
 * ring buffer. Change a layout only together with SYNCAMP_EVENT_VERSION.
 */
#ifndef SYNCAMP_H
#define SYNCAMP_H

/* 2: the storage stack (kinds 4-13). 3: probe_id of kinds 4-9 names the file system
 * (enum syncamp_fs; 0 = ext4, as every version 2 capture has it). */
#define SYNCAMP_EVENT_VERSION 3
#define SYNCAMP_MAX_ARGS 6
#define SYNCAMP_MAX_DEREFS 4
#define SYNCAMP_MAX_PROBES 64
#define SYNCAMP_MAX_HOPS 3

/* What produced an event. */
enum syncamp_event_kind {
	SYNCAMP_EV_UPROBE = 1,        /* entry of a QEMU function; probe_id = manifest probe index */
	SYNCAMP_EV_SYSCALL_ENTER = 2, /* fdatasync/fsync entered; probe_id = enum syncamp_syscall; args[0] = fd */
	SYNCAMP_EV_SYSCALL_EXIT = 3,  /* fdatasync/fsync returned; probe_id = enum syncamp_syscall; args[0] = return value */
	/* Below QEMU. args[] as listed; dev is the kernel's dev_t (major << 20 | minor).
	 * Kinds 4-9: probe_id = enum syncamp_fs, the file system whose tracepoint fired. */
	SYNCAMP_EV_FS_SYNC_ENTER = 4,   /* file-system sync of a file (target's threads): dev, ino, datasync;
	                                   ext4_sync_file_enter, xfs_file_fsync (datasync unknown: 2),
	                                   btrfs_sync_file (dev = the watched device of its fsid, 0 if none) */
	SYNCAMP_EV_FS_SYNC_EXIT = 5,    /* ext4_sync_file_exit: dev, ino, ret (XFS and btrfs have no exit event:
	                                   their sync ends with the host sync that made it) */
	SYNCAMP_EV_JOURNAL_START = 6,   /* journal (watched devices): jbd2_start_commit: dev, transaction, sync_commit;
	                                   xfs_log_force (XFS's journal is its log): dev, lsn, caller_ip;
	                                   btrfs_transaction_commit, at the commit's end: dev, generation */
	SYNCAMP_EV_JOURNAL_FLUSHING = 7,/* jbd2_commit_flushing: dev, transaction */
	SYNCAMP_EV_JOURNAL_END = 8,     /* jbd2_end_commit: dev, transaction */
	SYNCAMP_EV_JOURNAL_STATS = 9,   /* jbd2_run_stats: dev, tid, blocks, blocks_logged, handle_count */
	SYNCAMP_EV_DEVICE_ISSUE = 10,   /* block_rq_issue of a flush or FUA request (watched devices): dev, sector, nr_sector, bytes, rwbs (8 chars) */
	SYNCAMP_EV_DEVICE_COMPLETE = 11,/* block_rq_complete of the same: dev, sector, nr_sector, error, rwbs */
	SYNCAMP_EV_URING_SUBMIT = 12,   /* io_uring_submit_req (io_uring_submit_sqe before 6.4) of IORING_OP_FSYNC (target):
	                                   ctx, req (0 before 5.15), user_data, opcode */
	SYNCAMP_EV_URING_COMPLETE = 13, /* io_uring_complete of a submitted fsync: ctx, req (0 before 6.0), user_data, res;
	                                   a submit and its completion share ctx and user_data */
};

#define SYNCAMP_MAX_DEVICES 16
#define SYNCAMP_FSID_SIZE 16

/* The file system of a storage-stack event (its probe_id). */
enum syncamp_fs {
	SYNCAMP_FS_EXT4 = 0,  /* ext4 and its journal, jbd2 */
	SYNCAMP_FS_XFS = 1,
	SYNCAMP_FS_BTRFS = 2,
};

/* A btrfs file system, as its tracepoints name it (fs_devices->fsid: /sys/fs/btrfs/<fsid>). */
struct syncamp_fsid {
	unsigned char bytes[SYNCAMP_FSID_SIZE];
};
#define SYNCAMP_IORING_OP_FSYNC 3

/* Which sync system call. */
enum syncamp_syscall {
	SYNCAMP_SYS_FDATASYNC = 1,
	SYNCAMP_SYS_FSYNC = 2,
};

/* How the running QEMU coroutine is found (const volatile co_mode). */
enum syncamp_co_mode {
	SYNCAMP_CO_NONE = 0,   /* not recorded */
	SYNCAMP_CO_TLS = 1,    /* read QEMU's thread-local co_tls_current at fs base + co_tls_offset */
	SYNCAMP_CO_SWITCH = 2, /* kept per thread by a uprobe on qemu_coroutine_switch(from, to, action) */
};

/* Parts of the uprobe program a benchmark switches off (const volatile ablate; bench/breakdown.sh). */
enum syncamp_ablate {
	SYNCAMP_ABLATE_OUTPUT = 1, /* return before reserving the event: the trap and the program's entry only */
	SYNCAMP_ABLATE_DEREFS = 2, /* no reads through pointers */
};

/* One event. 144 bytes. */
struct syncamp_event {
	unsigned long long ts_ns;   /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	unsigned int pid;           /* thread group id */
	unsigned int tid;           /* thread id */
	unsigned int cpu;
	unsigned short kind;        /* enum syncamp_event_kind */
	unsigned short probe_id;
	unsigned long long args[SYNCAMP_MAX_ARGS];     /* x86-64: rdi rsi rdx rcx r8 r9 */
	unsigned long long derefs[SYNCAMP_MAX_DEREFS]; /* values read through struct syncamp_deref paths */
	unsigned long long coroutine; /* QEMU's running coroutine (Coroutine *) on this thread; 0 if unknown or none */
	unsigned long long coroutine_caller; /* that coroutine's caller (Coroutine.caller): who entered it; 0 if unknown */
	unsigned long long coroutine_arg;    /* its entry argument (Coroutine.entry_arg): the BlkAioEmAIOCB of a blk_aio_* request */
	unsigned long long coroutine_opaque; /* ((BlockAIOCB *)entry_arg)->opaque: the opaque the device passed to blk_aio_* */
	unsigned int deref_ok;      /* bit i set when derefs[i] was read successfully */
	unsigned int reserved;
};

/* A pointer path read at a uprobe: with hops == 1, *(size*)(args[arg] + off[0]);
 * each further hop first loads a pointer: hops == 3 reads
 * *(size*)(*(u64*)(*(u64*)(args[arg] + off[0]) + off[1]) + off[2]). */
struct syncamp_deref {
	unsigned char arg;   /* argument register index */
	unsigned char hops;  /* 0 = unused, 1 to SYNCAMP_MAX_HOPS */
	unsigned char size;  /* 1, 2, 4 or 8 bytes at the last hop */
	unsigned char pad;
	int off[SYNCAMP_MAX_HOPS];
};

/* An entry of arg_map that leaves args[i] at 0. */
#define SYNCAMP_NO_ARG 0xff
/* What a uprobe reads, indexed by its attach cookie (the probe id). */
struct syncamp_probe_spec {
	struct syncamp_deref derefs[SYNCAMP_MAX_DEREFS];
	/* Where the event's args come from, so that they have the canonical order of
	 * the probe's role whatever the QEMU version or probe kind (derefs then index
	 * these args). USDT probes: args[i] = USDT argument arg_map[i]. Function
	 * uprobes with remap set: args[i] = argument register arg_map[i] (a function
	 * whose parameters moved, such as thread_pool_submit_aio losing `pool` in
	 * QEMU 8.0); without remap, the registers in order. */
	unsigned char arg_map[SYNCAMP_MAX_ARGS];
	unsigned char remap;
	unsigned char pad;
};

#endif /* SYNCAMP_H */
